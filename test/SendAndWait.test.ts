/**
 * `Runtime.sendAndWait`: answers when the event is consumed (with the snapshot after it) or
 * discarded (with the reason), on both stores; `expectVersion` refuses an event for an
 * execution that moved on; a timeout leaves the event standing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Store } from "proctor"
import { runtimeLayer } from "./fixtures/procedures.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const Ping = Schema.TaggedStruct("Ping", {})
const Finish = Schema.TaggedStruct("Finish", {})
const Late = Schema.TaggedStruct("Late", {})

/** works 5 s, listens for pings until `Finish`, closes in 5 s */
const Desk = Procedure.make("desk", {
  version: 1,
  input: Schema.Struct({}),
  context: Schema.Struct({ pings: Schema.Number }),
  events: Schema.Union(Ping, Finish, Late),
  init: () => ({ pings: 0 })
}, {
  initial: "work",
  states: {
    work: Procedure.step({ run: () => Effect.sleep("5 seconds"), next: "listen" }),
    listen: Procedure.wait({ on: { Ping: { goto: "listen", update: (_, c) => ({ pings: c.pings + 1 }) }, Finish: "closing" } }),
    closing: Procedure.step({ run: () => Effect.sleep("5 seconds"), next: "done" }),
    done: Procedure.final()
  }
})

const stores: ReadonlyArray<readonly [string, () => Layer.Layer<Runtime.Runtime | Store.Store, unknown>]> = [
  ["memory", () => runtimeLayer([Desk])],
  ["SQLite", () => Runtime.layer({ procedures: [Desk] }).pipe(Layer.provideMerge(layerTempSqlite()))]
]

/** An execution of Desk waiting in `listen` (seq 2). */
const listening = Effect.gen(function*() {
  const id = yield* Runtime.start(Desk, {})
  yield* TestClock.adjust("5 seconds")
  assert.strictEqual((yield* Runtime.get(id)).state, "listen")
  return id
})

describe("sendAndWait", () => {
  for (const [name, layer] of stores) {
    it.effect(`${name}: answers Consumed with the snapshot after the event's transition`, () =>
      Effect.gen(function*() {
        const id = yield* listening
        const result = yield* Runtime.sendAndWait(id, { _tag: "Ping" })
        assert.strictEqual(result._tag, "Consumed")
        assert.deepStrictEqual(result.snapshot.context, { pings: 1 })
        assert.strictEqual(result.snapshot.seq, 3)
        assert.deepStrictEqual(result.snapshot, yield* Runtime.get(id))
      }).pipe(Effect.provide(layer())))

    it.effect(`${name}: an event still in the inbox when the execution ends answers Discarded (EventDiscarded)`, () =>
      Effect.gen(function*() {
        const id = yield* listening
        assert.strictEqual((yield* Runtime.sendAndWait(id, { _tag: "Finish" }))._tag, "Consumed")
        // `closing` runs: the ping waits in the inbox, and the end discards it
        const waiting = yield* Effect.fork(Runtime.sendAndWait(id, { _tag: "Ping" }))
        yield* TestClock.adjust("5 seconds")
        const result = yield* Fiber.join(waiting)
        assert.strictEqual(result._tag, "Discarded")
        if (result._tag !== "Discarded") return
        assert.strictEqual(result.reason.tag, "EventDiscarded")
        assert.strictEqual(result.snapshot.status, "succeeded")
        assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => e.tag), ["EventDiscarded"])
      }).pipe(Effect.provide(layer())))

    it.effect(`${name}: expectVersion refuses an event for an execution that moved on, when it is applied`, () =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Desk, {})
        // seq 1 now; by the time the ping is applied (after `work`), the execution is at seq 2
        const waiting = yield* Effect.fork(Runtime.sendAndWait(id, { _tag: "Ping" }, { expectVersion: 1 }))
        yield* TestClock.adjust("5 seconds")
        const error = yield* Effect.flip(Fiber.join(waiting))
        assert.strictEqual(error._tag, "VersionConflict")
        if (error._tag !== "VersionConflict") return
        assert.deepStrictEqual([error.expected, error.actual], [1, 2])
        assert.match(error.message, /Runtime\.get/)
        const after = yield* Runtime.get(id)
        assert.deepStrictEqual([after.seq, after.context], [2, { pings: 0 }])
        assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => e.tag), ["VersionConflict"])
      }).pipe(Effect.provide(layer())))
  }

  it.effect("an event the state reached later does not accept answers Discarded with the reason", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Desk, {})
      // accepted while `work` runs; `listen` does not take it
      const waiting = yield* Effect.fork(Runtime.sendAndWait(id, { _tag: "Late" }))
      yield* TestClock.adjust("5 seconds")
      const result = yield* Fiber.join(waiting)
      assert.strictEqual(result._tag, "Discarded")
      if (result._tag !== "Discarded") return
      assert.strictEqual(result.reason.tag, "InvalidTransition")
      assert.match(result.reason.message, /not accepted in state "listen"/)
      assert.strictEqual(result.snapshot.state, "listen")
    }).pipe(Effect.provide(runtimeLayer([Desk]))))

  it.effect("refused at once, with nothing enqueued: an ended execution, an event the waiting state does not take, a stale expectVersion", () =>
    Effect.gen(function*() {
      const id = yield* listening
      assert.strictEqual((yield* Effect.flip(Runtime.sendAndWait(id, { _tag: "Late" })))._tag, "InvalidTransition")
      const stale = yield* Effect.flip(Runtime.sendAndWait(id, { _tag: "Ping" }, { expectVersion: 1 }))
      assert.strictEqual(stale._tag, "VersionConflict")
      const ok = yield* Runtime.sendAndWait(id, { _tag: "Ping" }, { expectVersion: 2 })
      assert.deepStrictEqual([ok._tag, ok.snapshot.context], ["Consumed", { pings: 1 }])
      yield* Runtime.cancel(id)
      assert.strictEqual((yield* Effect.flip(Runtime.sendAndWait(id, { _tag: "Ping" })))._tag, "InvalidTransition")
      assert.deepStrictEqual(yield* Runtime.errors(id), [])
    }).pipe(Effect.provide(runtimeLayer([Desk]))))

  it.effect("a timeout fails with SendTimeout and the event still stands: it is consumed later", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Desk, {})
      const waiting = yield* Effect.fork(Runtime.sendAndWait(id, { _tag: "Ping" }, { timeout: "1 second" }))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(waiting))
      assert.strictEqual(error._tag, "SendTimeout")
      assert.match(error.message, /still stands/)
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual((yield* Runtime.get(id)).context, { pings: 1 })
    }).pipe(Effect.provide(runtimeLayer([Desk]))))

  it.effect("a passivated execution is woken and answers", () =>
    Effect.gen(function*() {
      const id = yield* listening
      // no timer: it left memory
      assert.strictEqual(yield* Effect.flatMap(Runtime.Runtime, (r) => r.activeCount), 0)
      const result = yield* Runtime.sendAndWait(id, { _tag: "Finish" })
      assert.deepStrictEqual([result._tag, result.snapshot.state], ["Consumed", "closing"])
    }).pipe(Effect.provide(runtimeLayer([Desk]))))
})
