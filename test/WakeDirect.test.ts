/**
 * An event sent to a passivated execution is taken in the sender's fiber (its transition
 * committed there, `src/internal/wakeDirect.ts`) without giving up any promise of the
 * queued path: events are consumed in order (an event already in the inbox goes first),
 * nothing of the execution runs until that commit is done (a command sent meanwhile waits
 * for it), and what the transition function does not turn into a transition (a guard that
 * says no) is the actor's to discard, with its error entry.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const A = Schema.TaggedStruct("A", {})
const B = Schema.TaggedStruct("B", {})
const Go = Schema.TaggedStruct("Go", { n: Schema.Number })

/** waits for A, B or Go (a Go below 10 is refused by its guard); Go leads to a one-second step */
const Gate = Procedure.make("wake-direct-gate", {
  version: 1,
  input: Schema.Struct({}),
  context: Schema.Struct({ n: Schema.Number }),
  events: Schema.Union(A, B, Go),
  init: () => ({ n: 0 })
}, {
  initial: "waiting",
  states: {
    waiting: Procedure.wait({
      on: { A: "gotA", B: "gotB", Go: { guard: (e, _c) => e.n >= 10, goto: "work", update: (e) => ({ n: e.n }) } }
    }),
    work: Procedure.step({ run: () => Effect.sleep("1 second"), next: "done" }),
    gotA: Procedure.final(),
    gotB: Procedure.final(),
    done: Procedure.final()
  }
})

/** the store, with every commit of an event's transition held until `gate` opens (when given) */
const heldStore = (base: Layer.Layer<Store.Store, unknown>, gate?: Deferred.Deferred<void>) =>
  Layer.effect(
    Store.Store,
    Effect.map(Store.Store, (inner): Store.StoreService => ({
      ...inner,
      commit: (c) => gate !== undefined && c.transition !== undefined && c.transition.cause.startsWith("event:") ? Effect.zipRight(Deferred.await(gate), inner.commit(c)) : inner.commit(c)
    }))
  ).pipe(Layer.provideMerge(base))

const stores: ReadonlyArray<readonly [string, () => Layer.Layer<Store.Store, unknown>]> = [
  ["memory", () => Store.layerMemory],
  ["SQLite", () => layerTempSqlite()]
]

const layer = (base: Layer.Layer<Store.Store, unknown>, gate?: Deferred.Deferred<void>) =>
  Runtime.layer({ procedures: [Gate] }).pipe(Layer.provideMerge(heldStore(base, gate)))

/** starts an execution of Gate and waits until it has left memory */
const passivated = Effect.gen(function*() {
  const id = yield* Runtime.start(Gate, {})
  const runtime = yield* Runtime.Runtime
  while ((yield* runtime.activeCount) > 0) yield* Effect.yieldNow()
  assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
  return id
})

describe("an event sent to a passivated execution", () => {
  for (const [name, store] of stores) {
    it.effect(`${name}: does not overtake an event already in the inbox`, () =>
      Effect.gen(function*() {
        const id = yield* passivated
        // an event accepted before (by a runtime that crashed before its actor consumed it)
        const inner = yield* Store.Store
        yield* inner.enqueue(id, { _tag: "A" }, 0)
        yield* Runtime.send(id, { _tag: "B" })
        const ended = yield* Runtime.await(id)
        assert.strictEqual(ended.state, "gotA")
        const errors = yield* Runtime.errors(id)
        assert.deepStrictEqual(errors.map((e) => e.tag), ["EventDiscarded"])
      }).pipe(Effect.provide(layer(store()))))

    it.effect(`${name}: a command sent while its transition commits is served after it, by the run that goes on`, () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        yield* Effect.gen(function*() {
          const id = yield* passivated
          const sent = yield* Effect.fork(Runtime.send(id, { _tag: "Go", n: 12 }))
          while ((yield* (yield* Runtime.Runtime).activeCount) === 0) yield* Effect.yieldNow()
          const cancelled = yield* Effect.fork(Runtime.cancel(id))
          yield* Effect.yieldNow()
          // the cancel waits for the event's commit: the execution has not moved yet
          assert.strictEqual((yield* Runtime.get(id)).state, "waiting")
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(sent)
          assert.strictEqual((yield* Fiber.join(cancelled)).status, "cancelled")
          const history = yield* Runtime.history(id)
          assert.deepStrictEqual(history.map((t) => [t.cause, t.to]), [["start", "waiting"], ["event:Go", "work"], ["cancel", "work"]])
        }).pipe(Effect.provide(layer(store(), gate)))
      }))

    it.effect(`${name}: a transition to a step goes on in a run; a guard's refusal is discarded by the actor`, () =>
      Effect.gen(function*() {
        const id = yield* passivated
        yield* Runtime.send(id, { _tag: "Go", n: 3 })
        const runtime = yield* Runtime.Runtime
        while ((yield* runtime.activeCount) > 0) yield* Effect.yieldNow()
        const refused = yield* Runtime.get(id)
        assert.deepStrictEqual([refused.status, refused.state], ["waiting", "waiting"])
        assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => e.state), ["waiting"])
        yield* Runtime.send(id, { _tag: "Go", n: 12 })
        yield* TestClock.adjust("1 second")
        const ended = yield* Runtime.await(id)
        assert.deepStrictEqual([ended.state, ended.context], ["done", { n: 12 }])
      }).pipe(Effect.provide(layer(store()))))
  }
})
