/**
 * What Cluster.layer's ownership loop does with the executions of a shard it gained: it
 * resumes them as recovery does, their snapshots read in one getMany (one query) while other
 * actors of this runtime run, not one get each. A get per execution made a failover of 1,000
 * executions starve the cluster's lease refresh (docs/scale-out.md, failover at scale).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, TestClock } from "effect"
import type { Store as StoreNs } from "proctor"
import { Runtime, Store } from "proctor"
import type { Holder } from "../src/internal/clusterHooks.js"
import { ClusterHooks } from "../src/internal/clusterHooks.js"
import { all, Journal, Slow } from "./fixtures/procedures.js"

const runtimeOn = (store: StoreNs.StoreService, scope: Scope.CloseableScope, holder?: Holder) =>
  Effect.gen(function*() {
    const entries = yield* Layer.build(Journal.layer).pipe(Effect.scoped)
    const hooks = holder === undefined ? Layer.empty : Layer.succeed(ClusterHooks, holder)
    const layer = Runtime.layer({ procedures: all, recover: holder === undefined }).pipe(
      Layer.provide(Layer.succeed(Store.Store, store)),
      Layer.provide(Layer.succeedContext(entries)),
      Layer.provide(hooks)
    )
    const ctx = yield* Layer.buildWithScope(layer, scope)
    return ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
  })

describe("Cluster: resuming a gained shard's executions", () => {
  it.effect("reads their snapshots in one getMany while other actors run, not one get each", () =>
    Effect.gen(function*() {
      const inner = yield* Store.makeMemory
      const seen = { get: 0, getMany: [] as Array<number> }
      const store: StoreNs.StoreService = {
        ...inner,
        get: (id) => Effect.zipRight(Effect.sync(() => void seen.get++), inner.get(id)),
        getMany: (ids) => Effect.zipRight(Effect.sync(() => void seen.getMany.push(ids.length)), inner.getMany!(ids))
      }
      // another runner's executions, in flight when it died
      const scope1 = yield* Scope.make()
      const r1 = yield* runtimeOn(store, scope1)
      const ids = yield* Effect.forEach([0, 1, 2, 3, 4], (n) => r1.start(Slow, { n }))
      yield* TestClock.adjust("1 second")
      yield* Scope.close(scope1, Exit.void)

      const holder: Holder = { current: undefined, route: undefined }
      const scope2 = yield* Scope.make()
      const r2 = yield* runtimeOn(store, scope2, holder)
      // this runner's own execution, in memory
      const own = yield* r2.start(Slow, { n: 9 })
      seen.get = 0
      yield* holder.current!.resume(ids)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* r2.activeCount, 6)
      assert.deepStrictEqual(seen.getMany, [5])
      assert.strictEqual(seen.get, 0)
      yield* TestClock.adjust("10 seconds")
      for (const id of [...ids, own]) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      yield* Scope.close(scope2, Exit.void)
    }))
})
