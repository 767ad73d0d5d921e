/**
 * Issue 11, item 9: a definition changed under the same name and version. An execution
 * stores the shape of the definition it started on; a runtime whose definition of that
 * name@version has another shape leaves it as it is (no run, no defect) and refuses
 * operations on it with a typed error that says to bump the version. On memory and SQLite.
 */
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, Scope, TestClock } from "effect"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import { tempDir } from "./fixtures/sqlTemp.js"

const Ctx = Schema.Struct({ n: Schema.Number })
const Approve = Schema.TaggedStruct("Approve", {})

const make = (review: "review" | "approval"): Procedure.Procedure<"deploy", { readonly n: number }, { readonly n: number }, typeof Approve.Type, never> =>
  Procedure.make("deploy", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
    initial: "pick",
    states: {
      pick: Procedure.step({
        run: ({ context }: Procedure.StepArgs<{ readonly n: number }>) => context.n > 0 ? Effect.as(Effect.sleep("1 hour"), 0) : Effect.succeed(0),
        timeout: "2 hours",
        next: review
      }),
      [review]: Procedure.wait({ on: { Approve: "done" } }),
      done: Procedure.final()
    }
  } as never)
const V1 = make("review")
/** the same name and version, with `review` renamed */
const V1Renamed = make("approval")

/** polls with the clock moved a little each time, so that a store's own fibers get their turn */
const until = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean): Effect.Effect<A, E, R> => {
  const polled: Effect.Effect<A, E, R> = Effect.zipLeft(effect, TestClock.adjust("1 millis"))
  return Effect.repeat(polled, { until: done })
}

const runtimeOn = (store: Store.StoreService, procedures: ReadonlyArray<Procedure.Any>, scope: Scope.Scope) =>
  Layer.buildWithScope(Runtime.layer({ procedures }).pipe(Layer.provide(Layer.succeed(Store.Store, store))), scope)

const scenario = (store: Store.StoreService) =>
  Effect.gen(function*() {
    // the first deployment: one execution waits in "review", one runs a long step
    const first = yield* Scope.make()
    const ctx1 = yield* runtimeOn(store, [V1], first)
    const waiting = yield* Effect.provide(Runtime.start(V1, { n: 0 }), ctx1)
    const running = yield* Effect.provide(Runtime.start(V1, { n: 1 }), ctx1)
    yield* until(Effect.provide(Runtime.get(waiting), ctx1), (s) => s.status === "waiting")
    const before = yield* Effect.all([store.get(waiting), store.get(running)])
    assert.isString(before[0].pipe((o) => o._tag === "Some" ? o.value.fingerprint : undefined))
    yield* Scope.close(first, Effect.void as never)

    // redeployed with the state renamed, under the same name@version
    const second = yield* Scope.make()
    const ctx2 = yield* runtimeOn(store, [V1Renamed], second)
    yield* TestClock.adjust("2 hours")
    const w = yield* Effect.provide(Runtime.get(waiting), ctx2)
    assert.strictEqual(w.status, "waiting")
    assert.strictEqual(w.state, "review")
    const sent = yield* Effect.flip(Effect.provide(Runtime.send(waiting, { _tag: "Approve" }), ctx2))
    assert.strictEqual(sent._tag, "InvalidTransition")
    assert.match(sent.message, /Procedure deploy version 1 changed since this execution started/)
    assert.match(sent.message, /new version and keep the old one registered/)
    for (const command of [Runtime.skip(waiting, "done"), Runtime.cancel(running), Runtime.pause(running)]) {
      const e = yield* Effect.flip(Effect.provide(command, ctx2))
      assert.strictEqual(e._tag, "InvalidTransition")
      assert.match(e.message, /changed since this execution started/)
    }
    // both left as they were: nothing ran, nothing failed
    const after = yield* Effect.all([store.get(waiting), store.get(running)])
    assert.deepStrictEqual(after, before)
    assert.deepStrictEqual(yield* store.errors(running), [])
    assert.deepStrictEqual((yield* store.history(running)).length, 1)
    // new executions run on the new shape
    const fresh = yield* Effect.provide(Runtime.start(V1Renamed, { n: 0 }), ctx2)
    assert.strictEqual((yield* until(Effect.provide(Runtime.get(fresh), ctx2), (s) => s.status === "waiting")).state, "approval")
    yield* Scope.close(second, Effect.void as never)

    // with both versions registered again, the old executions finish on the old shape
    const third = yield* Scope.make()
    const ctx3 = yield* runtimeOn(store, [V1], third)
    yield* Effect.provide(Runtime.send(waiting, { _tag: "Approve" }), ctx3)
    assert.strictEqual((yield* until(Effect.provide(Runtime.get(waiting), ctx3), (s) => s.status === "succeeded")).state, "done")
    // a row stored before fingerprints were kept is taken as it is
    const stored = before[0]._tag === "Some" ? before[0].value : assert.fail("missing")
    const { fingerprint: _, ...unprinted } = { ...stored, id: "old-row" }
    yield* store.create(unprinted, { executionId: "old-row", seq: 1, from: "", to: "review", status: "waiting", cause: "start", at: 0, duration: 0 })
    yield* Effect.provide(Runtime.send("old-row", { _tag: "Approve" }), ctx3)
    assert.strictEqual((yield* until(Effect.provide(Runtime.get("old-row"), ctx3), (s) => s.status === "succeeded")).state, "done")
    yield* Scope.close(third, Effect.void as never)
  })

describe("a definition changed under the same name and version", () => {
  it.effect("memory: in-flight executions are left untouched and operations fail with a typed error", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* scenario(store)
    }).pipe(Effect.provide(Store.layerMemory)))

  it.scoped("SQLite: the fingerprint is stored, and a restart on the changed definition leaves the executions alone", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const store = yield* Layer.build(SqlStore.layerSqlite({ filename: path.join(dir, "store.db") })).pipe(
        Effect.map((ctx) => ctx.unsafeMap.get(Store.Store.key) as Store.StoreService)
      )
      yield* scenario(store)
    }))
})
