/**
 * Issue 16, item 2: a rollout's health beyond the failure rate, on virtual time: a version
 * slower than the p99 bar is reverted, and one whose executions the supervisor restarts;
 * a slow dependency of both versions is not the new one's fault. The health checks commit
 * nothing unless they decide something, and a runtime restarted mid-phase resumes the hold
 * with the time that was left.
 */
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Effect, Exit, Layer, Schedule, Schema, Scope as S, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"

const Input = Schema.Struct({ n: Schema.Number })

/** version `version` of "app": one step taking `millis` */
const app = (version: number, millis: number) =>
  Procedure.make("app", { version, input: Input, context: Input }, {
    initial: "work",
    states: {
      work: Procedure.step({ run: () => Effect.sleep(`${millis} millis`), retry: Schedule.stop, timeout: "1 minute", next: "done" }),
      done: Procedure.final()
    }
  })

const V1 = app(1, 100)
const Slow = app(2, 3000)
const Quick = app(2, 100)
const SlowV1 = app(1, 3000)

const settle = Effect.repeat(TestClock.adjust("10 millis"), { times: 20 })

const startMany = (first: number, count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => first + i), (n) => Runtime.start(V1, { n }, { id: `app-${n}` }), { discard: true })

const status = Effect.map(Runtime.rollouts("app"), (rs) => rs[0]!)

const layer = (v1: Procedure.Any, v2: Procedure.Any, store: Layer.Layer<Store.Store> = Store.layerMemory) =>
  Runtime.layer({ procedures: [v1, v2] }).pipe(Layer.provide(store))

describe("Rollout health", () => {
  it.effect("a version whose step takes longer than the p99 bar is reverted, with the state and its p99 in the reason", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [50, 100], hold: "10 minutes", revertWhen: { p99: "2 seconds" } })
      yield* startMany(0, 100)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const r = yield* status
      assert.deepStrictEqual([r.state, r.phase, r.share], ["reverted", 1, 0])
      assert.match(r.reason!, /^version 2's state work took 3s at p99 over \d+ visits in phase 1 \(50%\), above 2s \(version 1's 100ms\)$/)
      assert.strictEqual(r.health?.to.states?.["work"], 3000)
      assert.strictEqual(r.health?.from.states?.["work"], 100)
    }).pipe(Effect.provide(layer(V1, Slow))))

  it.effect("whole executions have their own bar; a version as slow as the old one is not reverted and reaches 100%", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(SlowV1, { to: 2, phases: [50, 100], hold: "1 minute", revertWhen: { p99: { execution: "2 seconds" } } })
      for (let round = 0; round < 14; round++) {
        // ids of their own: the same routing every run, enough of each version in each window
        yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => round * 10 + i), (n) => Runtime.start(SlowV1, { n }, { id: `slow-${n}` }), { discard: true })
        yield* TestClock.adjust("10 seconds")
      }
      yield* settle
      const r = yield* status
      assert.deepStrictEqual([r.state, r.share, r.reason], ["completed", 100, undefined], r.reason)
      assert.isTrue(r.health!.to.p99! >= 3000 && r.health!.from.p99! >= 3000)
    }).pipe(Effect.provide(layer(SlowV1, Slow))))

  it.effect("the execution bar reverts a version slower end to end than the old one", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [50, 100], hold: "10 minutes", revertWhen: { p99: { execution: "2 seconds" } } })
      yield* startMany(0, 100)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const r = yield* status
      assert.strictEqual(r.state, "reverted")
      assert.match(r.reason!, /^version 2's executions took 3s at p99 over \d+ in phase 1 \(50%\), above 2s \(version 1's 100ms\)$/)
    }).pipe(Effect.provide(layer(V1, Slow))))

  /** a store whose first commit of each version-2 step dies: the supervisor restarts those executions */
  const crashingV2 = Layer.effect(
    Store.Store,
    Effect.map(Store.makeMemory, (store) => {
      const crashed = new Set<string>()
      return {
        ...store,
        commit: (c: Store.Commit) =>
          Effect.suspend(() => {
            if (c.snapshot.procedure === "app" && c.snapshot.version === 2 && c.transition?.cause === "step" && !crashed.has(c.snapshot.id)) {
              crashed.add(c.snapshot.id)
              return Effect.die(new Error("injected defect"))
            }
            return store.commit(c)
          })
      }
    })
  )

  it.effect("a version whose executions the supervisor restarts more than `restarts` times in a phase is reverted", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [50, 100], hold: "10 minutes", revertWhen: { restarts: 3 } })
      yield* startMany(0, 40)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const r = yield* status
      assert.strictEqual(r.state, "reverted")
      assert.match(r.reason!, /^the supervisor restarted version 2's executions \d+ times in phase 1 \(50%\), above 3 \(version 1: 0 over \d+ executions\)$/)
    }).pipe(Effect.provide(layer(V1, Quick, crashingV2))))

  it.effect("a check that decides nothing commits nothing: ten minutes of a phase write no history; its health is in the status", () =>
    Effect.gen(function*() {
      const started = yield* Runtime.rollout(V1, { to: 2, phases: [10, 100], hold: "10 minutes" })
      yield* startMany(0, 50)
      yield* TestClock.adjust("9 minutes")
      const r = yield* status
      assert.strictEqual(r.phase, 1)
      assert.strictEqual((yield* Runtime.history(started.id)).length, 1)
      assert.strictEqual((r.health!.from.ended) + (r.health!.to.ended), 50)
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.strictEqual((yield* status).phase, 2)
      // the start, and the Advance event that began phase 2
      assert.deepStrictEqual((yield* Runtime.history(started.id)).map((t) => [t.cause, t.to]), [["start", "holding"], ["event:Advance", "holding"]])
    }).pipe(Effect.provide(layer(V1, Quick))))

  it.effect("pause stops the hold's clock: resumed, the phase holds for what was left", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [10, 100], hold: "1 minute" })
      yield* TestClock.adjust("30 seconds")
      yield* Runtime.controlRollout("app", "pause")
      yield* TestClock.adjust("10 minutes")
      yield* Runtime.controlRollout("app", "resume")
      yield* TestClock.adjust("25 seconds")
      yield* settle
      assert.deepStrictEqual([(yield* status).state, (yield* status).phase], ["holding", 1])
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.strictEqual((yield* status).phase, 2)
    }).pipe(Effect.provide(layer(V1, Quick))))

  it.effect("a runtime restarted mid-phase resumes the hold with the time that was left, and routes by the phase's share at once", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory
      const build = (scope: Scope.CloseableScope) =>
        Effect.map(Layer.buildWithScope(layer(V1, Quick, Layer.succeed(Store.Store, store)), scope), (ctx) => ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService)
      const scope1 = yield* S.make()
      const r1 = yield* build(scope1)
      const started = yield* r1.rollout(V1, { to: 2, phases: [100], hold: "1 minute" })
      yield* TestClock.adjust("40 seconds")
      yield* S.close(scope1, Exit.void)
      yield* TestClock.adjust("10 seconds")
      const scope2 = yield* S.make()
      const r2 = yield* build(scope2)
      const id = yield* r2.start(V1, { n: 1 })
      assert.strictEqual((yield* r2.get(id)).version, 2)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* r2.rollouts("app"))[0]!.state, "holding")
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.strictEqual((yield* r2.rollouts("app"))[0]!.state, "completed")
      assert.deepStrictEqual((yield* r2.history(started.id)).map((t) => t.to), ["holding", "completed"])
      yield* S.close(scope2, Exit.void)
    }))
})
