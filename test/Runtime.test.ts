import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Schedule, Schema, Scope, Stream, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import {
  all,
  Approval,
  Branching,
  Business,
  journal,
  Journal,
  Linear,
  Looping,
  makeFlaky,
  Manual,
  runtimeLayer,
  Saga,
  Slow,
  Timeouts
} from "./fixtures/procedures.js"

const states = (id: string) => Effect.map(Runtime.history(id), (h) => h.map((t) => t.to))

describe("Runtime: the five patterns", () => {
  it.effect("linear A -> B -> C -> done", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 0 })
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.strictEqual(final.state, "done")
      assert.deepStrictEqual(yield* states(id), ["a", "b", "c", "done"])
      assert.deepStrictEqual(yield* journal, ["a", "b", "c"])
      const history = yield* Runtime.history(id)
      assert.deepStrictEqual(history.map((t) => t.seq), [1, 2, 3, 4])
      assert.deepStrictEqual(history.map((t) => t.cause), ["start", "step", "step", "step"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("ids the runtime makes are distinct UUID v7s, time-ordered by start", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("1000 days")
      const first = yield* Runtime.start(Linear, { n: 0 })
      const second = yield* Runtime.start(Linear, { n: 1 })
      yield* TestClock.adjust("1 millis")
      const third = yield* Runtime.start(Linear, { n: 2 })
      const v7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
      for (const id of [first, second, third]) assert.match(id, v7)
      assert.notStrictEqual(first, second)
      // the first 48 bits are the start time in ms
      const snapshot = yield* Runtime.get(third)
      assert.strictEqual(parseInt(third.replace("-", "").slice(0, 12), 16), snapshot.startedAt)
      assert.isTrue(second.slice(0, 13) < third.slice(0, 13))
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("branching A -> (even | odd) -> D", () =>
    Effect.gen(function*() {
      const even = yield* Runtime.start(Branching, { n: 2 })
      const odd = yield* Runtime.start(Branching, { n: 3 })
      yield* Runtime.await(even)
      yield* Runtime.await(odd)
      assert.deepStrictEqual(yield* states(even), ["a", "even", "d", "done"])
      assert.deepStrictEqual(yield* states(odd), ["a", "odd", "d", "done"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("looping A -> B -> A until the exit condition", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Looping, { n: 0 })
      const final = yield* Runtime.await(id)
      assert.deepStrictEqual(final.context, { n: 3 })
      assert.deepStrictEqual(yield* states(id), ["a", "b", "a", "b", "a", "b", "done"])
      assert.deepStrictEqual(yield* journal, ["a0", "a1", "a2"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("error recovery: B fails with a transient error, is retried on its Schedule and succeeds", () => {
    const Flaky = makeFlaky(2)
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Flaky, { n: 0 })
      yield* TestClock.adjust("500 millis")
      assert.strictEqual((yield* Runtime.get(id)).status, "running")
      assert.deepStrictEqual(yield* journal, ["a", "b#1"])
      yield* TestClock.adjust("2 seconds")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.deepStrictEqual(yield* journal, ["a", "b#1", "b#2", "b#3"])
      const errors = yield* Runtime.errors(id)
      assert.deepStrictEqual(errors.map((e) => [e.state, e.attempt, e.tag, e.transient]), [
        ["b", 1, "Flaky", true],
        ["b", 2, "Flaky", true]
      ])
    }).pipe(Effect.provide(runtimeLayer([Flaky])))
  })

  it.effect("timeout: B runs past its timeout and goes to the error state", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Timeouts, { n: 0 })
      yield* TestClock.adjust("5 seconds")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.state, "timedOut")
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "ExecutionError")
      const errors = yield* Runtime.errors(id)
      assert.strictEqual(errors.length, 1)
      assert.strictEqual(errors[0]!.tag, "TimeoutError")
      assert.match(errors[0]!.message, /ran past its timeout of 5s/)
      assert.deepStrictEqual(yield* states(id), ["a", "b", "timedOut"])
    }).pipe(Effect.provide(runtimeLayer(all))))
})

describe("Runtime: retries and errors", () => {
  it.effect("retries stop at the configured maximum with MaxRetriesExceeded carrying the last error", () => {
    const Flaky = makeFlaky(100, Schedule.recurs(2))
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Flaky, { n: 0 })
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "MaxRetriesExceeded")
      assert.match(final.error!.message, /gave up after 3 attempts/)
      assert.match(final.error!.message, /Flaky/)
      assert.deepStrictEqual(yield* journal, ["a", "b#1", "b#2", "b#3"])
      assert.strictEqual(final.attempt, 3)
    }).pipe(Effect.provide(runtimeLayer([Flaky])))
  })

  it.effect("business (non-transient) errors are not retried", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Business, { n: 0 })
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "ExecutionError")
      assert.match(final.error!.message, /card declined/)
      assert.deepStrictEqual(yield* journal, ["a"])
      const errors = yield* Runtime.errors(id)
      assert.deepStrictEqual(errors.map((e) => [e.tag, e.transient]), [["Rejected", false]])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("a defect in a step, or a run that throws, is a failure of that step, not retried", () => {
    const Dies = Procedure.make("dies", { version: 1, input: Schema.Undefined, context: Schema.Undefined }, {
      initial: "a",
      states: {
        a: Procedure.step({ run: () => Effect.die(new Error("boom")), next: "done" }),
        done: Procedure.final()
      }
    })
    const Throws = Procedure.make("throws", { version: 1, input: Schema.Undefined, context: Schema.Undefined }, {
      initial: "a",
      states: {
        a: Procedure.step({
          run: (): Effect.Effect<void> => {
            throw new Error("thrown, not returned")
          },
          next: "done"
        }),
        done: Procedure.final()
      }
    })
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Dies, undefined)
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.match(final.error!.message, /boom/)
      const thrown = yield* Runtime.await(yield* Runtime.start(Throws, undefined))
      assert.strictEqual(thrown.status, "failed")
      assert.match(thrown.error!.message, /thrown, not returned/)
      assert.deepStrictEqual((yield* Runtime.errors(thrown.id)).map((e) => e.attempt), [1])
    }).pipe(Effect.provide(runtimeLayer([Dies, Throws])))
  })
})


describe("Runtime: compensation", () => {
  it.effect("a step failing for good runs the compensations in reverse order, then ends failed", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 0 })
      yield* Runtime.send(id, { _tag: "Go" })
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.state, "d")
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "d", "undo c", "undo b", "undo a"])
      const store = yield* Store.Store
      const done = yield* store.compensations(id)
      assert.deepStrictEqual(done.map((c) => [c.state, c.ok]), [["c", true], ["b", true], ["a", true]])
      const history = yield* Runtime.history(id)
      assert.deepStrictEqual(history.slice(-2).map((t) => [t.cause, t.status]), [["failure", "compensating"], [
        "compensated",
        "failed"
      ]])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("rollback on request undoes completed steps in reverse order and ends rolled_back", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 0 })
      yield* Effect.yieldNow()
      yield* waitFor(id, (s) => s.status === "waiting")
      yield* Runtime.rollback(id)
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "rolled_back")
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b", "undo a"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("a failing compensation is recorded and does not stop the others", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 2 })
      yield* waitFor(id, (s) => s.status === "waiting")
      yield* Runtime.rollback(id)
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "rolled_back")
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo a"])
      const store = yield* Store.Store
      assert.deepStrictEqual((yield* store.compensations(id)).map((c) => [c.state, c.ok]), [["c", true], ["b", false], [
        "a",
        true
      ]])
      const errors = yield* Runtime.errors(id)
      assert.strictEqual(errors.length, 1)
      assert.match(errors[0]!.message, /compensation failed: .*undo b broke/)
    }).pipe(Effect.provide(runtimeLayer(all))))
})

const waitFor = (id: string, p: (s: { readonly status: string; readonly state: string }) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      const s = yield* Runtime.get(id)
      if (p(s)) return s
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`execution ${id} never reached the expected state`)
  })

describe("Runtime: operator commands", () => {
  it.effect("pause interrupts a running step; resume re-runs it with the same idempotency key", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Slow, { n: 0 })
      yield* TestClock.adjust("1 second")
      const paused = yield* Runtime.pause(id)
      assert.strictEqual(paused.status, "paused")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Runtime.get(id)).status, "paused")
      assert.deepStrictEqual(yield* journal, ["a#1"])
      const resumed = yield* Runtime.resume(id)
      assert.strictEqual(resumed.status, "running")
      yield* TestClock.adjust("10 seconds")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.deepStrictEqual(yield* journal, ["a#1", "a#1"])
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.cause), ["start", "pause", "resume", "step"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("pause and resume a waiting execution: its timer fires after resume if it fell due", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "x" })
      yield* Runtime.pause(id)
      yield* TestClock.adjust("25 hours")
      assert.strictEqual((yield* Runtime.get(id)).status, "paused")
      yield* Runtime.resume(id)
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.state, "escalated")
      assert.strictEqual(final.outcome, "escalated")
      assert.strictEqual(final.status, "succeeded")
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("commands a status does not allow fail with InvalidTransition saying what to do", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "x" })
      const resume = yield* Effect.flip(Runtime.resume(id))
      assert.strictEqual(resume._tag, "InvalidTransition")
      assert.match(resume.message, /Only a paused execution can be resumed/)
      const retry = yield* Effect.flip(Runtime.retry(id))
      assert.strictEqual(retry._tag, "InvalidTransition")
      yield* Runtime.pause(id)
      const again = yield* Effect.flip(Runtime.pause(id))
      assert.match(again.message, /already paused; call resume/)
      const cancelled = yield* Runtime.cancel(id)
      assert.strictEqual(cancelled.status, "cancelled")
      for (const op of [Runtime.pause(id), Runtime.resume(id), Runtime.cancel(id), Runtime.rollback(id), Runtime.skip(id, "approved")]) {
        const e = yield* Effect.flip(op)
        assert.strictEqual(e._tag, "InvalidTransition")
      }
      const ended = yield* Effect.flip(Runtime.send(id, { _tag: "Approve", by: "ann" }))
      assert.strictEqual(ended._tag, "InvalidTransition")
      assert.match(ended.message, /already ended/)
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("cancel a running execution: the step stops and no compensation runs", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Slow, { n: 0 })
      yield* TestClock.adjust("1 second")
      yield* Runtime.cancel(id)
      yield* TestClock.adjust("1 minute")
      const final = yield* Runtime.get(id)
      assert.strictEqual(final.status, "cancelled")
      assert.deepStrictEqual(yield* journal, ["a#1"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("manual intervention, then retry, then skip", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Manual, { n: 1 })
      const stopped = yield* waitFor(id, (s) => s.status === "needs_intervention")
      assert.strictEqual(stopped.state, "a")
      assert.strictEqual((yield* Runtime.get(id)).error?.tag, "ManualIntervention")
      assert.match((yield* Runtime.get(id)).error!.message, /needs a person at state "a": .*needs a look.*Runtime.retry/)
      yield* Runtime.retry(id)
      yield* waitFor(id, (s) => s.status === "needs_intervention")
      assert.deepStrictEqual(yield* journal, ["a#1", "a#1"])
      const skipped = yield* Runtime.skip(id, "other")
      assert.strictEqual(skipped.state, "other")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.deepStrictEqual(yield* journal, ["a#1", "a#1", "other"])
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => `${t.cause}:${t.to}`), [
        "start:a",
        "failure:a",
        "retry:a",
        "failure:a",
        "skip:other",
        "step:done"
      ])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("skip to a state that does not exist names the states", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Manual, { n: 1 })
      yield* waitFor(id, (s) => s.status === "needs_intervention")
      const e = yield* Effect.flip(Runtime.skip(id, "nope"))
      assert.strictEqual(e._tag, "InvalidTransition")
      assert.match(e.message, /the states are a, b, other, done/)
    }).pipe(Effect.provide(runtimeLayer(all))))
})

describe("Runtime: events and input", () => {
  it.effect("an event is decoded, consumed once and updates the context", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "spec" })
      yield* Runtime.send(id, { _tag: "Approve", by: "ann" })
      const final = yield* Runtime.await(id)
      assert.deepStrictEqual(final.context, { doc: "spec", approvedBy: "ann" })
      const history = yield* Runtime.history(id)
      assert.deepStrictEqual(history[1]!.event, { _tag: "Approve", by: "ann" })
      assert.strictEqual(history[1]!.cause, "event:Approve")
      const store = yield* Store.Store
      assert.deepStrictEqual(yield* store.inbox(id, 10), [])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("an event that fails its Schema gives ValidationError and changes nothing", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "spec" })
      const before = yield* Runtime.get(id)
      for (const bad of [{ _tag: "Approve", by: "" }, { _tag: "Approve" }, { _tag: "Nope" }, "Approve", null]) {
        const e = yield* Effect.flip(Runtime.send(id, bad))
        assert.strictEqual(e._tag, "ValidationError")
      }
      const e = yield* Effect.flip(Runtime.send(id, { _tag: "Approve", by: "" }))
      assert.match(e.message, /event given to procedure "approval" does not match its Schema/)
      assert.deepStrictEqual(yield* Runtime.get(id), before)
      const store = yield* Store.Store
      assert.deepStrictEqual(yield* store.inbox(id, 10), [])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("an event the waiting state does not accept is refused", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 0 })
      yield* waitFor(id, (s) => s.status === "waiting")
      yield* Runtime.send(id, { _tag: "Approve", by: "ann" })
      assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("events sent before the wait state is reached are kept in order and consumed there", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 0 })
      yield* Runtime.send(id, { _tag: "Approve", by: "first" })
      yield* Runtime.send(id, { _tag: "Go" })
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.cause).slice(-1), ["event:Approve"])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("bad input gives ValidationError and stores nothing", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Runtime.start(Linear, { n: "one" } as never))
      assert.strictEqual(e._tag, "ValidationError")
      assert.match(e.message, /input given to procedure "linear"/)
      assert.deepStrictEqual(yield* Runtime.list(), [])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("start with an idempotency key twice returns the same execution", () =>
    Effect.gen(function*() {
      const a = yield* Runtime.start(Approval, { doc: "x" }, { idempotencyKey: "k1" })
      const b = yield* Runtime.start(Approval, { doc: "x" }, { idempotencyKey: "k1" })
      assert.strictEqual(a, b)
      assert.strictEqual((yield* Runtime.list()).length, 1)
      const c = yield* Runtime.start(Approval, { doc: "x" }, { id: "fixed" })
      assert.strictEqual(c, "fixed")
      const dup = yield* Effect.flip(Runtime.start(Approval, { doc: "x" }, { id: "fixed" }))
      assert.strictEqual(dup._tag, "InvalidTransition")
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("unknown ids fail with ExecutionNotFound", () =>
    Effect.gen(function*() {
      const ops = [
        Runtime.get("nope"),
        Runtime.send("nope", { _tag: "Approve", by: "x" }),
        Runtime.pause("nope"),
        Runtime.resume("nope"),
        Runtime.cancel("nope"),
        Runtime.rollback("nope"),
        Runtime.retry("nope"),
        Runtime.skip("nope", "a"),
        Runtime.history("nope"),
        Runtime.errors("nope"),
        Runtime.await("nope")
      ]
      for (const op of ops) {
        const e = yield* Effect.flip(op)
        assert.strictEqual(e._tag, "ExecutionNotFound")
        assert.match(e.message, /No execution with id "nope"/)
      }
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("a procedure that is not registered cannot be started", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Runtime.start(Approval, { doc: "x" }))
      assert.strictEqual(e._tag, "DefinitionError")
      assert.match(e.message, /not registered with this runtime/)
    }).pipe(Effect.provide(runtimeLayer([Linear]))))
})

describe("Runtime: timers, passivation, watch", () => {
  it.effect("a wait's timer fires after its delay", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "x" })
      yield* TestClock.adjust("23 hours")
      assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
      yield* TestClock.adjust("1 hour")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.state, "escalated")
      assert.strictEqual((yield* Runtime.history(id))[1]!.cause, "timer")
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("waiting executions hold no fiber; an event wakes them", () =>
    Effect.gen(function*() {
      const runtime = yield* Runtime.Runtime
      const ids = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), (i) =>
        Runtime.start(Approval, { doc: `d${i}` }))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* runtime.activeCount, 0)
      yield* Runtime.send(ids[7]!, { _tag: "Approve", by: "ann" })
      const final = yield* Runtime.await(ids[7]!)
      assert.strictEqual(final.status, "succeeded")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* runtime.activeCount, 0)
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("with passivation off, waiting executions stay in memory: events, commands and timers wake them without a reload", () => {
    // counts the store's reads of one execution: the operations read it once each; an actor that
    // reloaded on waking would read it once more
    let gets = 0
    const counting = Layer.effect(Store.Store, Effect.map(Store.Store, (inner) => ({ ...inner, get: (id: string) => Effect.zipRight(Effect.sync(() => gets++), inner.get(id)) })))
    const layer = Runtime.layer({ procedures: all, passivation: { enabled: false } }).pipe(
      Layer.provideMerge(Layer.provide(counting, Store.layerMemory)),
      Layer.provideMerge(Journal.layer)
    )
    return Effect.gen(function*() {
      const runtime = yield* Runtime.Runtime
      const [a, b, c] = yield* Effect.forEach(["a", "b", "c"], (doc) => Runtime.start(Approval, { doc }))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* runtime.activeCount, 3)
      gets = 0
      yield* Runtime.pause(a!)
      yield* Runtime.resume(a!)
      yield* Runtime.send(b!, { _tag: "Approve", by: "ann" })
      assert.strictEqual((yield* Runtime.await(b!)).state, "approved")
      yield* TestClock.adjust("24 hours")
      assert.strictEqual((yield* Runtime.await(c!)).state, "escalated")
      assert.strictEqual((yield* Runtime.await(a!)).state, "escalated")
      // pause, resume, send: one read each; the awaits: one each
      assert.strictEqual(gets, 3 + 3)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* runtime.activeCount, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("watch streams every committed change", () =>
    Effect.gen(function*() {
      const collected = yield* Stream.take(Runtime.watch(), 4).pipe(Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("1 millis")
      const id = yield* Runtime.start(Linear, { n: 0 })
      const events = Chunk.toReadonlyArray(yield* Fiber.join(collected))
      assert.deepStrictEqual(events.map((e) => [e.executionId, e.state, e.status]), [
        [id, "a", "running"],
        [id, "b", "running"],
        [id, "c", "running"],
        [id, "done", "succeeded"]
      ])
    }).pipe(Effect.provide(runtimeLayer(all))))
})

describe("Runtime: scale and supervision", () => {
  it.effect("1,000 concurrent executions all finish correctly", () =>
    Effect.gen(function*() {
      const ids = yield* Effect.forEach(Array.from({ length: 1000 }, (_, i) => i), (n) => Runtime.start(Looping, { n: n % 3 }), {
        concurrency: "unbounded"
      })
      const finals = yield* Effect.forEach(ids, (id) => Runtime.await(id), { concurrency: "unbounded" })
      assert.strictEqual(finals.length, 1000)
      for (const f of finals) {
        assert.strictEqual(f.status, "succeeded")
        assert.deepStrictEqual(f.context, { n: 3 })
      }
      const histories = yield* Effect.forEach(ids, (id) => Runtime.history(id))
      for (const [i, h] of histories.entries()) {
        assert.deepStrictEqual(h.map((t) => t.seq), h.map((_, j) => j + 1))
        assert.strictEqual(h.length, 1 + 2 * (3 - (i % 3)))
      }
    }).pipe(Effect.provide(runtimeLayer(all))))

  /** A store whose commits die `failures` times (a defect in the runtime's own machinery). */
  const faultyStore = (failures: number) =>
    Layer.effect(
      Store.Store,
      Effect.map(Store.makeMemory, (store) => {
        let left = failures
        return {
          ...store,
          commit: (c: Store.Commit) =>
            Effect.suspend(() => {
              // fail the second commit of an execution (the first step's transition), `failures` times
              if (c.transition?.cause === "step" && c.snapshot.seq === 2 && left > 0) {
                left--
                return Effect.die(new Error(`injected defect ${failures - left}`))
              }
              return store.commit(c)
            })
        }
      })
    )

  const supervised = (failures: number) =>
    Runtime.layer({
      procedures: [Linear],
      supervision: { maxRestarts: 3, within: "1 minute", backoff: "1 second" }
    }).pipe(Layer.provideMerge(faultyStore(failures)), Layer.provideMerge(Journal.layer))

  it.effect("a runtime defect restarts the actor from its last committed state, with backoff", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 0 })
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(yield* journal, ["a"])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* journal, ["a", "a"])
      yield* TestClock.adjust("2 seconds")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      // the step whose commit was lost ran again; every committed transition is there once
      assert.deepStrictEqual(yield* journal, ["a", "a", "a", "b", "c"])
      assert.deepStrictEqual(yield* states(id), ["a", "b", "c", "done"])
    }).pipe(Effect.provide(supervised(2))))

  it.effect("after the intensity limit the execution is failed with a clear error", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 0 })
      yield* TestClock.adjust("1 minute")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "RuntimeDefect")
      assert.match(final.error!.message, /failed 3 times within 1m and gave up: injected defect/)
      assert.deepStrictEqual(yield* journal, ["a", "a", "a", "a"])
    }).pipe(Effect.provide(supervised(100))))
})

describe("Runtime: shutdown and recovery", () => {
  it.effect("closing the runtime's scope stops the actors; a new runtime on the same store resumes them", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory
      const journalLayer = Journal.layer
      const shared = Layer.succeed(Store.Store, store)
      const entries = yield* Effect.map(Layer.build(journalLayer).pipe(Effect.scoped), (ctx) => ctx)
      // loadConcurrency 1: recovery loads the executions one at a time, and still resumes them all
      const layer = Runtime.layer({ procedures: all, loadConcurrency: 1 }).pipe(
        Layer.provide(shared),
        Layer.provide(Layer.succeedContext(entries))
      )
      const scope1 = yield* Scope.make()
      const rt1 = yield* Layer.buildWithScope(layer, scope1)
      const r1 = rt1.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
      const slow = yield* r1.start(Slow, { n: 0 })
      const approval = yield* r1.start(Approval, { doc: "x" })
      const more = yield* Effect.forEach(Array.from({ length: 20 }, (_, n) => n), (n) => r1.start(Slow, { n }))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope1, Exit.void)
      assert.strictEqual((yield* store.get(slow)).pipe((o) => o._tag === "Some" && o.value.status), "running")
      const scope2 = yield* Scope.make()
      const rt2 = yield* Layer.buildWithScope(layer, scope2)
      const r2 = rt2.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* r2.await(slow)).status, "succeeded")
      for (const id of more) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      yield* r2.send(approval, { _tag: "Approve", by: "ann" })
      assert.strictEqual((yield* r2.await(approval)).status, "succeeded")
      yield* Scope.close(scope2, Exit.void)
    }))

  it.effect("recovery resumes at most recoverWindow executions at once, the rest as those finish", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory
      const entries = yield* Layer.build(Journal.layer).pipe(Effect.scoped)
      const layer = (window: number) =>
        Runtime.layer({ procedures: all, recoverWindow: window }).pipe(
          Layer.provide(Layer.succeed(Store.Store, store)),
          Layer.provide(Layer.succeedContext(entries))
        )
      const runtimeIn = (scope: Scope.CloseableScope, window: number) =>
        Effect.map(Layer.buildWithScope(layer(window), scope), (ctx) => ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService)
      const scope1 = yield* Scope.make()
      const r1 = yield* runtimeIn(scope1, 100)
      const ids = yield* Effect.forEach(Array.from({ length: 7 }, (_, n) => n), (n) => r1.start(Slow, { n }))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* r1.activeCount, 7)
      yield* Scope.close(scope1, Exit.void)
      // 7 running executions, a window of 3: three waves of 10 seconds (the step sleeps 10 s)
      const scope2 = yield* Scope.make()
      const r2 = yield* runtimeIn(scope2, 3)
      const seen: Array<number> = []
      for (let wave = 0; wave < 3; wave++) {
        yield* TestClock.adjust("1 millis")
        seen.push(yield* r2.activeCount)
        yield* TestClock.adjust("10 seconds")
      }
      assert.deepStrictEqual(seen, [3, 3, 1])
      for (const id of ids) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      yield* Scope.close(scope2, Exit.void)
    }))
})
