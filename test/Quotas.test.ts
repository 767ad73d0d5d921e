/**
 * Quotas on `Runtime.start` (`Runtime.layer({ quotas })`): per tenant and per procedure, a
 * start rate and a number of executions under way. A start over one is refused with
 * `QuotaExceeded` carrying `retryAfter`, or waits for room up to `waitForQuota`; room under
 * `concurrent` comes back when an execution ends. On virtual time. With PROCTOR_TEST_PG_URL,
 * two runtimes on one Postgres database start a tenant's executions at once.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Layer, Redacted, Schema, TestClock } from "effect"
import type { Runtime as R } from "proctor"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import { cliWords } from "../src/cli/text.js"
import { freshPgPrefix } from "./fixtures/sqlPg.js"

const Go = Schema.TaggedStruct("Go", {})

/** waits for `Go`, so it stays under way until told */
const Job = Procedure.make("job", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Go }, {
  initial: "wait",
  states: {
    wait: Procedure.wait({ on: { Go: "done" } }),
    done: Procedure.final()
  }
})
const Other = Procedure.make("other", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "done",
  states: { done: Procedure.final() }
})

const layerWith = (quotas: R.Options["quotas"]) =>
  Runtime.layer({ procedures: [Job, Other], quotas }).pipe(Layer.provideMerge(Store.layerMemory))

const refusal = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected a refusal")
    if (Exit.isSuccess(exit)) throw new Error("not refused")
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    return error as { readonly _tag: string; readonly retryAfter: Duration.Duration; readonly limit: string; readonly message: string }
  })

describe("tenant quotas", () => {
  it.effect("concurrent: the tenant's N+1th execution under way is refused, and room comes back when one ends", () =>
    Effect.gen(function*() {
      const first = yield* Runtime.start(Job, {}, { tenant: "acme" })
      yield* Runtime.start(Job, {}, { tenant: "acme" })
      const refused = yield* refusal(Runtime.start(Job, {}, { tenant: "acme" }))
      assert.strictEqual(refused._tag, "QuotaExceeded")
      assert.strictEqual(refused.limit, "concurrent")
      assert.match(refused.message, /tenant "acme" has 2 executions under way that have not ended; nothing was written/)
      // other tenants, and starts without a tenant, are not counted against acme
      yield* Runtime.start(Job, {}, { tenant: "globex" })
      yield* Runtime.start(Job, {}, {})
      assert.strictEqual((yield* Runtime.list({ tenant: "acme" })).length, 2)
      // one ends: room for one more
      yield* Runtime.send(first, Go.make({}))
      yield* Runtime.await(first)
      yield* Runtime.start(Job, {}, { tenant: "acme" })
      assert.strictEqual((yield* refusal(Runtime.start(Job, {}, { tenant: "acme" })))._tag, "QuotaExceeded")
    }).pipe(Effect.provide(layerWith({ tenants: { default: { concurrent: 2 } } }))))

  it.effect("concurrent with waitForQuota: the start waits until an execution of the tenant ends, within the bound", () =>
    Effect.gen(function*() {
      const first = yield* Runtime.start(Job, {}, { tenant: "acme" })
      const waiting = yield* Effect.fork(Runtime.start(Job, {}, { tenant: "acme", waitForQuota: "10 seconds" }))
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual((yield* Runtime.list({ tenant: "acme" })).length, 1)
      yield* Runtime.send(first, Go.make({}))
      yield* Runtime.await(first)
      yield* TestClock.adjust("1 millis")
      const second = yield* waiting.await
      assert.isTrue(Exit.isSuccess(second))
      // and a bounded wait that sees no room ends in the refusal
      const late = yield* Effect.fork(Runtime.start(Job, {}, { tenant: "acme", waitForQuota: "2 seconds" }))
      yield* TestClock.adjust("5 seconds")
      const exit = yield* late.await
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.provide(layerWith({ tenants: { byTenant: { acme: { concurrent: 1 } } } }))))

  it.effect("rate: a token bucket of starts per tenant; retryAfter says when the next turn comes", () =>
    Effect.gen(function*() {
      const rate = { tokenBucket: { capacity: 2, refill: { tokens: 1, every: "10 seconds" } } } as const
      yield* Effect.gen(function*() {
        yield* Runtime.start(Other, {}, { tenant: "acme" })
        yield* Runtime.start(Other, {}, { tenant: "acme" })
        const refused = yield* refusal(Runtime.start(Other, {}, { tenant: "acme" }))
        assert.strictEqual(refused.limit, "rate")
        assert.strictEqual(Duration.toMillis(refused.retryAfter), 10_000)
        assert.match(refused.message, /tenant "acme" is over its start rate \(2 at once, refilled at 1 per 10s\); nothing was written/)
        assert.match(refused.message, /Retry after 10s/)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(Duration.toMillis((yield* refusal(Runtime.start(Other, {}, { tenant: "acme" }))).retryAfter), 6000)
        // a refused start used no turn: at 10 s exactly one is back
        yield* TestClock.adjust("6 seconds")
        yield* Runtime.start(Other, {}, { tenant: "acme" })
        assert.strictEqual((yield* refusal(Runtime.start(Other, {}, { tenant: "acme" })))._tag, "QuotaExceeded")
        // waitForQuota: waits for the turn when it comes within the bound
        const waited = yield* Effect.fork(Runtime.start(Other, {}, { tenant: "acme", waitForQuota: "1 minute" }))
        yield* TestClock.adjust("10 seconds")
        assert.isTrue(Exit.isSuccess(yield* waited.await))
        assert.strictEqual((yield* Runtime.list({ tenant: "acme" })).length, 4)
      }).pipe(Effect.provide(layerWith({ tenants: { default: { rate } } })))
    }))

  it.effect("per procedure: a sliding window of starts of one procedure, whatever the tenant", () =>
    Effect.gen(function*() {
      yield* Runtime.start(Other, {}, { tenant: "a" })
      yield* Runtime.start(Other, {}, { tenant: "b" })
      const refused = yield* refusal(Runtime.start(Other, {}))
      assert.match(refused.message, /procedure "other" is over its start rate/)
      yield* Runtime.start(Job, {})
      yield* TestClock.adjust("1 minute")
      yield* Runtime.start(Other, {})
    }).pipe(Effect.provide(layerWith({ procedures: { other: { rate: { slidingWindow: { limit: 2, window: "1 minute" } } } } }))))

  it.effect("a quota that cannot work is refused when the runtime is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(layerWith({ tenants: { default: { concurrent: 0 } } }))))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /quotas\.tenants\.default\.concurrent/)
    }))

  it("the CLI says it in its own words", () => {
    const message = "Starting \"job\" was refused: tenant \"acme\" has 2 executions under way that have not ended; nothing was written. " +
      "Retry after 1s (or when one of them ends), or pass `waitForQuota` to Runtime.start to wait for room."
    assert.strictEqual(
      cliWords(message, "QuotaExceeded"),
      "Starting \"job\" was refused: tenant \"acme\" has 2 executions under way that have not ended; nothing was written. " +
        "Run the command again after 1s (or when one of them ends)."
    )
  })
})

const pgUrl = process.env.PROCTOR_TEST_PG_URL
describe.skipIf(pgUrl === undefined)("tenant quotas on a shared Postgres database", () => {
  it.scoped("two runtimes starting a tenant's executions at once never have more under way than its `concurrent`", () =>
    Effect.gen(function*() {
      const url = Redacted.make(pgUrl!)
      const prefix = yield* Effect.provide(freshPgPrefix, yield* Layer.build(PgClient.layer({ url })))
      // each runtime with a pool of its own, as two processes would have
      const runtime = Runtime.layer({ procedures: [Job], quotas: { tenants: { default: { concurrent: 3 } } } }).pipe(
        Layer.provideMerge(SqlStore.layer({ prefix })),
        Layer.provide(PgClient.layer({ url }))
      )
      const [a, b] = [yield* Layer.build(runtime), yield* Layer.build(runtime)]
      const tenants = Array.from({ length: 8 }, (_, i) => `tenant-${i}`)
      // every tenant's twelve starts at once, six through each runtime
      const results = yield* Effect.forEach(tenants, (tenant) =>
        Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i % 2 === 0 ? a : b),
          (on) => Effect.either(Effect.provide(Runtime.start(Job, {}, { tenant }), on)),
          { concurrency: "unbounded" }
        ), { concurrency: "unbounded" })
      for (const [i, tenant] of tenants.entries()) {
        const started = results[i]!.filter(Either.isRight)
        const refused = results[i]!.filter(Either.isLeft).map((e) => e.left)
        assert.strictEqual(started.length, 3, `${tenant}: ${started.length} started`)
        assert.deepStrictEqual(refused.map((e) => [e._tag, e._tag === "QuotaExceeded" ? e.limit : undefined]), Array(9).fill(["QuotaExceeded", "concurrent"]))
        const underWay = yield* Effect.provide(Runtime.list({ tenant, status: "waiting" }), a)
        assert.strictEqual(underWay.length, 3, tenant)
      }
      // one ends (on the runtime that runs it): the other runtime's next start takes its place, and no more
      const k = results[0]!.findIndex(Either.isRight)
      const [owner, other] = k % 2 === 0 ? [a, b] : [b, a]
      const ended = Either.getOrThrow(results[0]![k]!)
      yield* Effect.provide(Effect.zipRight(Runtime.send(ended, Go.make({})), Runtime.await(ended)), owner)
      yield* Effect.provide(Runtime.start(Job, {}, { tenant: tenants[0] }), other)
      assert.strictEqual((yield* Effect.exit(Effect.provide(Runtime.start(Job, {}, { tenant: tenants[0] }), owner)))._tag, "Failure")
      // an idempotent start asked of both runtimes gets the one execution, counted once
      const once = { tenant: "idempotent", idempotencyKey: "order-1" }
      const [x, y] = yield* Effect.all([Effect.provide(Runtime.start(Job, {}, once), a), Effect.provide(Runtime.start(Job, {}, once), b)], { concurrency: 2 })
      assert.strictEqual(x, y)
      assert.strictEqual((yield* Effect.provide(Runtime.list({ tenant: "idempotent" }), a)).length, 1)
    }), 60_000)
})
