/**
 * Dependencies (`Dependency.make`, named by steps): the circuit breaker opens, fails
 * attempts fast with `CircuitOpen` (transient: the retry Schedule backs off), lets probes
 * through after its cool-down and closes; the bulkhead bounds the attempts running at once
 * and refuses past its queue; the rate limits (token bucket, sliding window) space the
 * calls. All on virtual time: the times asserted are the TestClock's.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Duration} from "effect";
import { Cause, Clock, Effect, Exit, Layer, Schedule, Schema, TestClock } from "effect"
import type { Dependency as D } from "proctor"
import { Dependency, Procedure, Runtime, Store } from "proctor"

/** the fake service: when it was called, whether it is down, how many calls are in flight */
const service = { calls: [] as Array<number>, down: false, inFlight: 0, maxInFlight: 0, holdFor: 0 }
const reset = () => Object.assign(service, { calls: [], down: false, inFlight: 0, maxInFlight: 0, holdFor: 0 })

class ServiceDown extends Schema.TaggedError<ServiceDown>()("ServiceDown", {}) {}

const call = Effect.gen(function*() {
  service.calls.push(yield* Clock.currentTimeMillis)
  service.inFlight++
  service.maxInFlight = Math.max(service.maxInFlight, service.inFlight)
  yield* Effect.sleep(service.holdFor).pipe(Effect.ensuring(Effect.sync(() => void service.inFlight--)))
  if (service.down) return yield* new ServiceDown()
})

/** one step calling the service through `dependency`, retried every `every` */
const caller = (name: string, dependency: D.Dependency, options?: { readonly every?: Duration.DurationInput; readonly timeout?: Duration.DurationInput }) =>
  Procedure.make(name, { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
    initial: "call",
    states: {
      call: Procedure.step({
        dependency,
        run: () => call,
        transient: ["ServiceDown"],
        timeout: options?.timeout ?? "1 minute",
        retry: Schedule.spaced(options?.every ?? "1 second").pipe(Schedule.intersect(Schedule.recurs(100))),
        next: "done"
      }),
      done: Procedure.final()
    }
  })

const layerOf = (...procedures: ReadonlyArray<Procedure.Any>) =>
  Runtime.layer({ procedures }).pipe(Layer.provideMerge(Store.layerMemory))

const statusOf = (name: string) =>
  Effect.map(Runtime.dependencies, (all) => all.find((d) => d.name === name)!)

const errorTags = (id: string) => Effect.map(Runtime.errors(id), (es) => es.map((e) => e.tag))

describe("circuit breaker", () => {
  const Payments = Dependency.make("payments", { breaker: { consecutiveFailures: 3, coolDown: "10 seconds" } })
  const Pay = caller("pay", Payments)

  it.effect("opens after 3 failures in a row, fails fast while open, probes after its cool-down, closes when a probe succeeds", () =>
    Effect.gen(function*() {
      reset()
      service.down = true
      const id = yield* Runtime.start(Pay, {})
      yield* TestClock.adjust("2 seconds")
      // attempts at 0, 1 s and 2 s called the service and failed: the third opened the breaker
      assert.deepStrictEqual(service.calls, [0, 1000, 2000])
      const open = yield* statusOf("payments")
      assert.strictEqual(open.breaker?.state, "open")
      assert.strictEqual(open.breaker?.probeAt, 12_000)
      // while open, the attempts fail fast without a call, as transient errors the Schedule retries
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(service.calls, [0, 1000, 2000])
      assert.strictEqual((yield* Runtime.get(id)).status, "running")
      const tags = yield* errorTags(id)
      assert.deepStrictEqual(tags.slice(0, 3), ["ServiceDown", "ServiceDown", "ServiceDown"])
      assert.isTrue(tags.slice(3).length >= 8 && tags.slice(3).every((t) => t === "CircuitOpen"), tags.join(","))
      assert.strictEqual((yield* statusOf("payments")).refused.CircuitOpen, tags.length - 3)
      // at 12 s one probe goes through; the service is still down, so it opens again until 22 s
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(service.calls, [0, 1000, 2000, 12_000])
      assert.strictEqual((yield* statusOf("payments")).breaker?.probeAt, 22_000)
      service.down = false
      yield* TestClock.adjust("9 seconds")
      assert.deepStrictEqual(service.calls, [0, 1000, 2000, 12_000])
      // the probe at 22 s succeeds: closed, and the execution goes on
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(service.calls, [0, 1000, 2000, 12_000, 22_000])
      const closed = yield* statusOf("payments")
      assert.strictEqual(closed.breaker?.state, "closed")
      // closed -> open -> half-open -> open -> half-open -> closed
      assert.strictEqual(closed.breaker?.changes, 5)
      assert.strictEqual((yield* Runtime.get(id)).status, "succeeded")
    }).pipe(Effect.provide(layerOf(Pay))))

  it.effect("opens on a failure rate over its window; a business error counts as an answer", () =>
    Effect.gen(function*() {
      reset()
      const Search = Dependency.make("search", { breaker: { failureRate: 0.5, window: 4, coolDown: "1 minute" } })
      let n = 0
      const Find = Procedure.make("find", { version: 1, input: Schema.Struct({ fail: Schema.Literal("transient", "business", "no") }), context: Schema.Struct({ fail: Schema.String }) }, {
        initial: "call",
        states: {
          call: Procedure.step({
            dependency: Search,
            run: ({ context }): Effect.Effect<void, ServiceDown | string> => {
              n++
              return context.fail === "transient" ? Effect.fail(new ServiceDown()) : context.fail === "business" ? Effect.fail("NotFound") : Effect.void
            },
            transient: ["ServiceDown"],
            retry: Schedule.stop,
            next: "done"
          }),
          done: Procedure.final()
        }
      })
      yield* Effect.gen(function*() {
        // 4 calls: 2 business errors, 1 transient failure, 1 success: 25% failed, still closed
        for (const fail of ["business", "transient", "business", "no"] as const) yield* Runtime.await(yield* Runtime.start(Find, { fail }))
        assert.strictEqual((yield* statusOf("search")).breaker?.state, "closed")
        assert.strictEqual((yield* statusOf("search")).failures, 1)
        // one more transient failure: 2 of the last 4 failed (the first call left the window), at the rate: open
        yield* Runtime.await(yield* Runtime.start(Find, { fail: "transient" }))
        assert.strictEqual((yield* statusOf("search")).breaker?.state, "open")
        const refused = yield* Runtime.await(yield* Runtime.start(Find, { fail: "no" }))
        assert.strictEqual(refused.status, "failed")
        assert.strictEqual(refused.error?.tag, "MaxRetriesExceeded")
        assert.match(refused.error!.message, /circuit breaker of dependency "search" is open/)
        assert.strictEqual(n, 5)
      }).pipe(Effect.provide(layerOf(Find)))
    }))

  it.effect("half-open lets `probes` calls through, one at a time each, and needs all of them to succeed", () =>
    Effect.gen(function*() {
      reset()
      const Mail = Dependency.make("mail", { breaker: { consecutiveFailures: 1, coolDown: "5 seconds", probes: 2 } })
      const Send = caller("send", Mail)
      yield* Effect.gen(function*() {
        service.down = true
        service.holdFor = 500
        yield* Runtime.start(Send, {})
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* statusOf("mail")).breaker?.state, "open")
        service.down = false
        // three executions want to call at 5.5 s: two probes go through, the third is refused
        const more = [yield* Runtime.start(Send, {}), yield* Runtime.start(Send, {})]
        yield* TestClock.adjust("5 seconds")
        const probing = yield* statusOf("mail")
        assert.strictEqual(probing.breaker?.state, "half-open")
        assert.deepStrictEqual(service.calls.filter((t) => t >= 5000).length, 2)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* statusOf("mail")).breaker?.state, "closed")
        yield* TestClock.adjust("5 seconds")
        for (const id of more) assert.strictEqual((yield* Runtime.get(id)).status, "succeeded")
      }).pipe(Effect.provide(layerOf(Send)))
    }))
})

describe("bulkhead", () => {
  const Reports = Dependency.make("reports", { bulkhead: { concurrency: 2, queue: 1 } })
  const Report = caller("report", Reports, { every: "20 seconds" })

  it.effect("runs at most `concurrency` attempts at once, queues `queue` more, and refuses the next with BulkheadFull", () =>
    Effect.gen(function*() {
      reset()
      service.holdFor = 10_000
      const ids: Array<string> = []
      for (let i = 0; i < 4; i++) ids.push(yield* Runtime.start(Report, {}))
      yield* TestClock.adjust("1 millis")
      const full = yield* statusOf("reports")
      assert.deepStrictEqual(full.bulkhead, { running: 2, queued: 1, concurrency: 2, queue: 1 })
      assert.strictEqual(full.refused.BulkheadFull, 1)
      assert.deepStrictEqual(yield* errorTags(ids[3]!), ["BulkheadFull"])
      assert.deepStrictEqual(service.calls, [0, 0])
      // the queued attempt runs when a slot frees, at 10 s; the refused one retries at 20 s
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(service.calls, [0, 0, 10_000])
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(service.calls, [0, 0, 10_000, 20_000])
      assert.strictEqual(service.maxInFlight, 2)
      for (const id of ids) assert.strictEqual((yield* Runtime.get(id)).status, "succeeded")
      assert.deepStrictEqual((yield* statusOf("reports")).bulkhead, { running: 0, queued: 0, concurrency: 2, queue: 1 })
    }).pipe(Effect.provide(layerOf(Report))))

  it.effect("the attempt's timeout covers the time queued; a timed-out waiter leaves the queue", () =>
    Effect.gen(function*() {
      reset()
      service.holdFor = 10_000
      const Slow = Dependency.make("slow", { bulkhead: { concurrency: 1, queue: 5 } })
      const Wait = caller("wait", Slow, { timeout: "4 seconds", every: "1 minute" })
      yield* Effect.gen(function*() {
        yield* Runtime.start(Wait, {})
        const second = yield* Runtime.start(Wait, {})
        yield* TestClock.adjust("5 seconds")
        // the second waited in the queue from 0 and timed out at 4 s without calling
        assert.deepStrictEqual(service.calls, [0])
        assert.deepStrictEqual(yield* errorTags(second), ["TimeoutError"])
        assert.strictEqual((yield* statusOf("slow")).bulkhead?.queued, 0)
      }).pipe(Effect.provide(layerOf(Wait)))
    }))
})

describe("rate limits", () => {
  it.effect("token bucket: bursts up to its capacity, then one call per refill", () =>
    Effect.gen(function*() {
      reset()
      const Api = Dependency.make("api", { rateLimit: { tokenBucket: { capacity: 2, refill: { tokens: 1, every: "1 second" } } } })
      const Fetch = caller("fetch", Api)
      yield* Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* Runtime.start(Fetch, {})
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(service.calls, [0, 0, 1000, 2000, 3000])
        assert.strictEqual((yield* statusOf("api")).rateLimit?.available, 2)
      }).pipe(Effect.provide(layerOf(Fetch)))
    }))

  it.effect("sliding window: at most `limit` calls in any span of `window`", () =>
    Effect.gen(function*() {
      reset()
      const Sms = Dependency.make("sms", { rateLimit: { slidingWindow: { limit: 2, window: "10 seconds" } } })
      const Text = caller("text", Sms)
      yield* Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* Runtime.start(Text, {})
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(service.calls, [0, 0, 10_000, 10_000, 20_000])
      }).pipe(Effect.provide(layerOf(Text)))
    }))

  it.effect("a turn after the attempt's timeout is refused at once with RateLimited, and retried", () =>
    Effect.gen(function*() {
      reset()
      const Geo = Dependency.make("geo", { rateLimit: { tokenBucket: { capacity: 1, refill: { tokens: 1, every: "10 seconds" } } } })
      const Locate = caller("locate", Geo, { timeout: "1500 millis", every: "5 seconds" })
      yield* Effect.gen(function*() {
        yield* Runtime.start(Locate, {})
        const second = yield* Runtime.start(Locate, {})
        yield* TestClock.adjust("30 seconds")
        assert.deepStrictEqual(service.calls, [0, 10_000])
        assert.deepStrictEqual(yield* errorTags(second), ["RateLimited", "RateLimited"])
        const [first] = yield* Runtime.errors(second)
        assert.match(first!.message, /lets the next call through in 10s/)
        assert.strictEqual((yield* Runtime.get(second)).status, "succeeded")
      }).pipe(Effect.provide(layerOf(Locate)))
    }))
})

describe("registration", () => {
  const refused = (procedures: ReadonlyArray<Procedure.Any>) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(layerOf(...procedures))))
      assert.isTrue(Exit.isFailure(exit))
      return Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
    })

  it.effect("two different dependencies of one name are refused", () =>
    Effect.gen(function*() {
      const a = caller("a", Dependency.make("db", { bulkhead: { concurrency: 1 } }))
      const b = caller("b", Dependency.make("db", { bulkhead: { concurrency: 2 } }))
      assert.match(yield* refused([a, b]), /another dependency named "db" is registered already/)
    }))

  it.effect("options that cannot work are refused, naming the field", () =>
    Effect.gen(function*() {
      assert.match(yield* refused([caller("c", Dependency.make("x", { bulkhead: { concurrency: 0 } }))]), /bulkhead\.concurrency/)
      assert.match(yield* refused([caller("d", Dependency.make("y", { breaker: { coolDown: "-1 seconds" } }))]), /breaker\.coolDown/)
      assert.match(yield* refused([caller("e", Dependency.make("z", { breaker: { failureRate: 2, coolDown: "1 second" } }))]), /breaker\.failureRate/)
    }))
})
