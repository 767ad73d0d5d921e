/**
 * A step's `retry` Schedule bounds its attempts however often the process restarts or the
 * execution is paused: the Schedule's state is rebuilt from the stored attempt count.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schedule, Scope, TestClock } from "effect"
import { Runtime, Store } from "proctor"
import { Journal, journal, makeFlaky, runtimeLayer } from "./fixtures/procedures.js"

/** `b` always fails with a transient error; at most 1 + 3 attempts, a second apart. */
const Flaky = makeFlaky(1_000, Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(3))))

describe("Retry limits hold across restarts", () => {
  it.scoped("a process that dies after every attempt: Schedule.recurs(3) still means at most 4 attempts", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory
      const journalContext = yield* Layer.build(Journal.layer)
      const layer = Runtime.layer({ procedures: [Flaky] }).pipe(
        Layer.provide(Layer.succeed(Store.Store, store)),
        Layer.provide(Layer.succeedContext(journalContext))
      )
      let id = ""
      // each life of the runtime makes one attempt, then dies during the backoff
      for (let life = 0; life < 8; life++) {
        const scope = yield* Scope.make()
        const runtime = Runtime.Runtime.pipe(Effect.provide(yield* Layer.buildWithScope(layer, scope)))
        if (life === 0) id = yield* Effect.flatMap(runtime, (r) => r.start(Flaky, { n: 0 }))
        yield* TestClock.adjust("500 millis")
        yield* Scope.close(scope, Exit.void)
      }
      const final = (yield* store.get(id)).pipe((o) => o._tag === "Some" ? o.value : undefined)!
      assert.deepStrictEqual(yield* Effect.provide(journal, journalContext), ["a", "b#1", "b#2", "b#3", "b#4"])
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "MaxRetriesExceeded")
      assert.strictEqual(final.attempt, 4)
    }))

  it.effect("pause and resume after every attempt: still at most 4 attempts", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Flaky, { n: 0 })
      for (let round = 0; round < 8; round++) {
        yield* TestClock.adjust("100 millis")
        const s = yield* Runtime.get(id)
        if (s.status !== "running") break
        yield* Runtime.pause(id)
        yield* Runtime.resume(id)
      }
      yield* TestClock.adjust("10 seconds")
      const final = yield* Runtime.get(id)
      assert.deepStrictEqual(yield* journal, ["a", "b#1", "b#2", "b#3", "b#4"])
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "MaxRetriesExceeded")
      assert.match(final.error!.message, /gave up after 4 attempts/)
    }).pipe(Effect.provide(runtimeLayer([Flaky]))))
})
