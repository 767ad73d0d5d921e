/**
 * Resuming many executions at once (src/internal/resume.ts): recovery after a restart, and
 * a cluster runner's gained shards. The executions are started a page at a time with a turn
 * of the event loop between pages, so that timers and I/O keep running during a burst of
 * tens of thousands (a cluster's lease refresh missed its deadline when 10,000 were started
 * in one synchronous step); and each execution started by the burst re-enters its step, then
 * waits until the burst has started the rest before it commits the step's outcome.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Scope, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import type { Store as StoreNs } from "proctor"

/** what each step saw: the execution, the state, and whether the event loop had had a turn since the burst began */
const seen: Array<{ readonly id: string; readonly state: string; readonly turned: boolean }> = []
const world = { holdA: true, turned: false }

const Two = Procedure.make("two", { version: 1, input: Schema.Struct({ n: Schema.Number }), context: Schema.Struct({ n: Schema.Number }) }, {
  initial: "a",
  states: {
    a: Procedure.step({
      run: ({ executionId }) =>
        Effect.suspend(() => {
          seen.push({ id: executionId, state: "a", turned: world.turned })
          return world.holdA ? Effect.sleep("1 hour") : Effect.void
        }),
      timeout: "2 hours",
      next: "b"
    }),
    b: Procedure.step({
      run: ({ executionId }) => Effect.sync(() => void seen.push({ id: executionId, state: "b", turned: world.turned })),
      next: "done"
    }),
    done: Procedure.final()
  }
})

const runtimeOn = (store: StoreNs.StoreService, scope: Scope.CloseableScope) =>
  Effect.map(
    Layer.buildWithScope(Runtime.layer({ procedures: [Two] }).pipe(Layer.provide(Layer.succeed(Store.Store, store))), scope),
    (ctx) => ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
  )

describe("Resuming many executions at once", () => {
  it.effect("a burst gives the event loop turns, and every execution re-enters its step before any moves on", () =>
    Effect.gen(function*() {
      // three pages of executions, in flight in step a when their runtime closed
      const n = 1_200
      const memory = yield* Store.makeMemory
      // how many executions had re-entered a when each commit of a's outcome was made
      const reenteredAtCommit: Array<number> = []
      const store: StoreNs.StoreService = {
        ...memory,
        commit: (commit) =>
          Effect.suspend(() => {
            if (commit.transition?.from === "a") reenteredAtCommit.push(seen.filter((s) => s.state === "a").length)
            return memory.commit(commit)
          })
      }
      const scope1 = yield* Scope.make()
      const r1 = yield* runtimeOn(store, scope1)
      const ids = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => r1.start(Two, { n: i }))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope1, Exit.void)
      assert.strictEqual(seen.length, n)

      seen.length = 0
      world.holdA = false
      // a callback of the event loop queued before recovery starts: it runs at the burst's first turn
      setImmediate(() => void (world.turned = true))
      const scope2 = yield* Scope.make()
      const r2 = yield* runtimeOn(store, scope2)
      yield* TestClock.adjust("1 second")
      for (const id of ids) assert.strictEqual((yield* r2.await(id)).status, "succeeded")

      const order = seen.map((s) => s.state)
      assert.strictEqual(order.filter((s) => s === "a").length, n)
      // the burst's executions all re-entered a before the first of them went on to b
      assert.strictEqual(order.lastIndexOf("a"), n - 1)
      assert.strictEqual(order.indexOf("b"), n)
      // and none committed a's outcome before all had re-entered it (their commits would compete with the starts)
      assert.strictEqual(reenteredAtCommit.length, n)
      assert.isTrue(reenteredAtCommit.every((k) => k === n))
      // and the event loop had turns while they were being started, not only after
      const reentered = seen.filter((s) => s.state === "a")
      assert.isFalse(reentered[0]!.turned)
      assert.isTrue(reentered[n - 1]!.turned)
      yield* Scope.close(scope2, Exit.void)
    }))
})
