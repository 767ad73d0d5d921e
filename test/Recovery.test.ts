import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, TestClock } from "effect"
import type { StoreError } from "proctor"
import { Runtime, Store } from "proctor"
import type { Store as StoreNs } from "proctor"
import { all, Approval, Journal, Slow } from "./fixtures/procedures.js"

/** A memory store that counts the reads of recovery and keeps every failed commit; `afterGetMany` runs after a bulk read. */
const counting = (afterGetMany: Effect.Effect<void> = Effect.void) =>
  Effect.map(Store.makeMemory, (inner) => {
    const seen = { get: 0, getMany: [] as Array<number>, failedCommits: [] as Array<StoreError> }
    const store: StoreNs.StoreService = {
      ...inner,
      get: (id) => Effect.zipRight(Effect.sync(() => void seen.get++), inner.get(id)),
      getMany: (ids) => Effect.zipLeft(Effect.zipRight(Effect.sync(() => void seen.getMany.push(ids.length)), inner.getMany!(ids)), afterGetMany),
      commit: (commit) => Effect.tapError(inner.commit(commit), (error) => Effect.sync(() => void seen.failedCommits.push(error)))
    }
    return { store, seen }
  })

const runtimeOn = (store: StoreNs.StoreService, scope: Scope.CloseableScope) =>
  Effect.gen(function*() {
    const entries = yield* Layer.build(Journal.layer).pipe(Effect.scoped)
    const layer = Runtime.layer({ procedures: all }).pipe(Layer.provide(Layer.succeed(Store.Store, store)), Layer.provide(Layer.succeedContext(entries)))
    const ctx = yield* Layer.buildWithScope(layer, scope)
    return ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
  })

describe("Runtime: recovery reads in bulk", () => {
  it.effect("recovery reads the executions it resumes in one getMany, not one get each", () =>
    Effect.gen(function*() {
      const { seen, store } = yield* counting()
      const scope1 = yield* Scope.make()
      const r1 = yield* runtimeOn(store, scope1)
      const ids = yield* Effect.forEach([0, 1, 2, 3, 4], (n) => r1.start(Slow, { n }))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope1, Exit.void)
      seen.get = 0
      const scope2 = yield* Scope.make()
      const r2 = yield* runtimeOn(store, scope2)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* r2.activeCount, 5)
      assert.deepStrictEqual(seen.getMany, [5])
      assert.strictEqual(seen.get, 0)
      yield* TestClock.adjust("10 seconds")
      for (const id of ids) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      assert.deepStrictEqual(seen.failedCommits, [])
      yield* Scope.close(scope2, Exit.void)
    }))

  it.effect("an execution that an actor moved between recovery's read and the window's start is loaded again, not resumed from the stale read", () =>
    Effect.gen(function*() {
      // the bulk read is followed by turns of the scheduler, in which the timers' fiber wakes
      // the execution (its timer is due) and its actor consumes the event waiting in its inbox
      const { seen, store } = yield* counting(Effect.repeatN(Effect.yieldNow(), 200))
      const scope1 = yield* Scope.make()
      const r1 = yield* runtimeOn(store, scope1)
      const id = yield* r1.start(Approval, { doc: "x" })
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope1, Exit.void)
      yield* store.enqueue(id, { _tag: "Approve", by: "ann" }, 0)
      yield* TestClock.adjust("25 hours")
      const scope2 = yield* Scope.make()
      const r2 = yield* runtimeOn(store, scope2)
      yield* TestClock.adjust("1 second")
      const final = yield* r2.await(id)
      assert.deepStrictEqual(seen.getMany, [1])
      // consumed once, by the actor the timer woke; resumed from the stale read (still
      // waiting, its timer due), a second actor would have fired the timer on top of it
      assert.strictEqual(final.state, "approved")
      assert.deepStrictEqual(seen.failedCommits, [])
      assert.deepStrictEqual((yield* r2.history(id)).map((t) => t.cause), ["start", "event:Approve"])
      yield* Scope.close(scope2, Exit.void)
    }))
})
