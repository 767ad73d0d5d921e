/**
 * Semantics 9: every event `send` accepted ends either consumed or discarded with an
 * `EventDiscarded` error entry, exactly once; an ended execution's inbox is empty.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, FiberId, Layer, Schema } from "effect"
import { InvalidTransition, Procedure, Runtime, Store } from "proctor"
import { runtimeLayer } from "./fixtures/procedures.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const Ping = Schema.TaggedStruct("Ping", { n: Schema.Number })
const Done = Schema.TaggedStruct("Done", {})

/** Counts pings until `Done` ends it. */
const Pinger = Procedure.make("pinger", {
  version: 1,
  input: Schema.Struct({}),
  context: Schema.Struct({ pings: Schema.Number }),
  events: Schema.Union(Ping, Done),
  init: () => ({ pings: 0 })
}, {
  initial: "listen",
  states: {
    listen: Procedure.wait({ on: { Ping: { goto: "listen", update: (_, c) => ({ pings: c.pings + 1 }) }, Done: "done" } }),
    done: Procedure.final()
  }
})

const stores: ReadonlyArray<readonly [string, () => Layer.Layer<Runtime.Runtime | Store.Store, unknown>]> = [
  ["memory", () => runtimeLayer([Pinger])],
  ["SQLite", () => Runtime.layer({ procedures: [Pinger] }).pipe(Layer.provideMerge(layerTempSqlite()))]
]

/** What became of each event: how many times it was consumed, and how many times discarded. */
const outcomes = (id: string) =>
  Effect.gen(function*() {
    const consumed = new Map<string, number>()
    const discarded = new Map<string, number>()
    for (const t of yield* Runtime.history(id)) {
      if (t.event === undefined) continue
      const key = JSON.stringify(t.event)
      consumed.set(key, (consumed.get(key) ?? 0) + 1)
    }
    for (const e of yield* Runtime.errors(id)) {
      if (e.tag !== "EventDiscarded") continue
      const key = /Its body: (.*)$/.exec(e.message)![1]!
      discarded.set(key, (discarded.get(key) ?? 0) + 1)
    }
    const store = yield* Store.Store
    return { consumed, discarded, inbox: yield* store.inbox(id, 10_000) }
  })

const isEnded = (exit: Exit.Exit<void, unknown>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error instanceof InvalidTransition &&
  exit.cause.error.hint === "It has already ended and takes no more events."

describe("Inbox: accepted events are consumed or discarded, never lost", () => {
  for (const [name, layer] of stores) {
    it.effect(`${name}: send(Done) then send(Ping) back to back: Ping is discarded with an EventDiscarded entry`, () =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Pinger, {})
        yield* Runtime.send(id, { _tag: "Done" })
        const second = yield* Effect.exit(Runtime.send(id, { _tag: "Ping", n: 1 }))
        const final = yield* Runtime.await(id)
        assert.strictEqual(final.status, "succeeded")
        assert.deepStrictEqual(final.context, { pings: 0 })
        const { discarded, inbox } = yield* outcomes(id)
        assert.deepStrictEqual(inbox, [])
        // the second send came before the end was committed: it was accepted, so it is logged
        assert.isTrue(Exit.isSuccess(second))
        assert.deepStrictEqual([...discarded], [[`{"_tag":"Ping","n":1}`, 1]])
        const [entry] = (yield* Runtime.errors(id)).filter((e) => e.tag === "EventDiscarded")
        assert.include(entry!.message, `event "Ping"`)
        assert.include(entry!.message, "the execution ended with status succeeded before consuming it")
        // once it has ended, send refuses
        assert.isTrue(isEnded(yield* Effect.exit(Runtime.send(id, { _tag: "Ping", n: 2 }))))
      }).pipe(Effect.provide(layer())))

    it.effect(`${name}: many concurrent sends to an execution that ends on one of them: each accepted one consumed or discarded, once`, () =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Pinger, {})
        const events = Array.from({ length: 400 }, (_, n) => n === 150 ? { _tag: "Done" } : { _tag: "Ping", n })
        const exits = yield* Effect.forEach(events, (event) => Effect.exit(Runtime.send(id, event)), { concurrency: "unbounded" })
        const final = yield* Runtime.await(id)
        assert.strictEqual(final.status, "succeeded")
        const { consumed, discarded, inbox } = yield* outcomes(id)
        assert.deepStrictEqual(inbox, [])
        let accepted = 0
        for (const [i, exit] of exits.entries()) {
          const key = JSON.stringify(events[i])
          const fate = (consumed.get(key) ?? 0) + (discarded.get(key) ?? 0)
          if (Exit.isSuccess(exit)) {
            accepted++
            assert.strictEqual(fate, 1, `accepted ${key} consumed ${consumed.get(key) ?? 0}, discarded ${discarded.get(key) ?? 0}`)
          } else {
            assert.isTrue(isEnded(exit), `refused ${key} with ${String(exit.cause)}`)
            assert.strictEqual(fate, 0, `refused ${key} but it was consumed or logged`)
          }
        }
        assert.strictEqual(consumed.get(`{"_tag":"Done"}`), 1)
        assert.strictEqual([...consumed.values()].reduce((a, b) => a + b, 0) + [...discarded.values()].reduce((a, b) => a + b, 0), accepted)
        assert.strictEqual((final.context as { pings: number }).pings, consumed.size - 1)
      }).pipe(Effect.provide(layer())))
  }

  it.effect("a send that read the execution before it ended is refused by the store, with the same InvalidTransition", () => {
    // the store holds back the enqueue of Ping until the test lets it go
    const gate = Deferred.unsafeMake<void>(FiberId.none)
    const gated = Layer.effect(
      Store.Store,
      Effect.map(Store.makeMemory, (store) => ({
        ...store,
        enqueue: (id: string, event: unknown, at: number) =>
          (event as { _tag?: unknown })._tag === "Ping"
            ? Effect.zipRight(Deferred.await(gate), store.enqueue(id, event, at))
            : store.enqueue(id, event, at)
      }))
    )
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Pinger, {})
      const late = yield* Effect.fork(Effect.exit(Runtime.send(id, { _tag: "Ping", n: 1 })))
      yield* Effect.yieldNow()
      yield* Runtime.send(id, { _tag: "Done" })
      assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
      yield* Deferred.succeed(gate, undefined)
      assert.isTrue(isEnded(yield* Fiber.join(late)))
      const store = yield* Store.Store
      assert.deepStrictEqual(yield* store.inbox(id, 10), [])
      assert.deepStrictEqual(yield* Runtime.errors(id), [])
      // kept in memory: a passivated execution takes an event in the sender's fiber, with no enqueue (test/WakeDirect)
    }).pipe(Effect.provide(Runtime.layer({ procedures: [Pinger], passivation: { enabled: false } }).pipe(Layer.provideMerge(gated))))
  })
})
