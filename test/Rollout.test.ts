/**
 * Issue 16, item 2: phased rollouts with automatic revert, on virtual time. A rollout is an
 * execution of the runtime's own `proctor.rollout`; starts of the procedure are routed by
 * the current phase's share; a version that fails 20% of the time is reverted by itself,
 * a healthy one reaches 100%; pause, advance and revert by hand.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

const Input = Schema.Struct({ n: Schema.Number })

/** version `version` of "app": one step, failing when `fails(n)` */
const app = (version: number, fails: (n: number) => boolean) =>
  Procedure.make("app", { version, input: Input, context: Input }, {
    initial: "work",
    states: {
      work: Procedure.step({
        run: ({ context }) => fails(context.n) ? Effect.fail(new Boom()) : Effect.void,
        retry: Schedule.stop,
        next: "done"
      }),
      done: Procedure.final()
    }
  })

const V1 = app(1, () => false)
const Healthy = app(2, () => false)
const Failing = app(2, (n) => n % 5 === 0)

const layer = (v2: Procedure.Any) => Runtime.layer({ procedures: [V1, v2] }).pipe(Layer.provide(Store.layerMemory))

const settle = Effect.repeat(TestClock.adjust("10 millis"), { times: 20 })

/** starts `count` executions of version 1 (routed by the rollout), numbered from `first` */
const startMany = (first: number, count: number) =>
  Effect.zipRight(
    Effect.forEach(Array.from({ length: count }, (_, i) => first + i), (n) => Runtime.start(V1, { n }, { id: `app-${n}` }), { discard: true }),
    settle
  )

const onVersion = (version: number) =>
  Effect.map(Runtime.versions("app"), (vs) => Object.values(vs.find((v) => v.version === version)?.byStatus ?? {}).reduce((a, b) => a + b, 0))

const status = Effect.map(Runtime.rollouts("app"), (rs) => rs[0]!)

describe("Rollout", () => {
  it.effect("a version whose step fails 20% of the time is reverted in phase 2; new starts go back to the old version", () =>
    Effect.gen(function*() {
      const started = yield* Runtime.rollout(V1, { to: 2, phases: [1, 5, 25, 50, 100], hold: "1 minute", revertWhen: { failureRate: 0.05 } })
      assert.deepStrictEqual([started.phase, started.share, started.state], [1, 1, "holding"])
      // phase 1: about 1 in 100 starts on version 2, too few to judge: it advances after the hold
      yield* startMany(0, 200)
      yield* TestClock.adjust("65 seconds")
      yield* settle
      const second = yield* status
      assert.deepStrictEqual([second.phase, second.share], [2, 5])
      // phase 2: enough on version 2 to see it fail
      yield* startMany(1000, 400)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const reverted = yield* status
      assert.deepStrictEqual([reverted.state, reverted.status, reverted.phase, reverted.share], ["reverted", "succeeded", 2, 0])
      assert.match(reverted.reason!, /version 2 failed \d+ of \d+ executions \(\d+\.\d%\) in phase 2 \(5%\), above 5\.0% and version 1's 0\.0%/)
      const before = yield* onVersion(2)
      yield* startMany(5000, 300)
      assert.strictEqual(yield* onVersion(2), before)
    }).pipe(Effect.provide(layer(Failing))))

  it.effect("a healthy version reaches 100%, and every start then goes to it; the share is close to the phase's", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [5, 50, 100], hold: "1 minute" })
      yield* startMany(0, 2000)
      const share = (yield* onVersion(2)) / 2000
      assert.isTrue(share > 0.035 && share < 0.065, `share ${share}`)
      for (const phase of [2, 3]) {
        yield* TestClock.adjust("65 seconds")
        yield* settle
        assert.strictEqual((yield* status).phase, phase)
      }
      yield* TestClock.adjust("65 seconds")
      yield* settle
      const done = yield* status
      assert.deepStrictEqual([done.state, done.share], ["completed", 100])
      const before = yield* onVersion(2)
      yield* startMany(10_000, 50)
      assert.strictEqual(yield* onVersion(2), before + 50)
    }).pipe(Effect.provide(layer(Healthy))))

  it.effect("pause holds the phase, advance moves to the next, revert stops it with the reason given; one rollout at a time", () =>
    Effect.gen(function*() {
      yield* Runtime.rollout(V1, { to: 2, phases: [10, 50, 100], hold: "1 minute" })
      const again = yield* Effect.flip(Runtime.rollout(V1, { to: 2 }))
      assert.match(again.message, /A rollout of app \(version 1 to 2\) is under way/)
      yield* Runtime.controlRollout("app", "pause")
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.deepStrictEqual([(yield* status).state, (yield* status).phase], ["paused", 1])
      yield* Runtime.controlRollout("app", "advance")
      yield* settle
      assert.deepStrictEqual([(yield* status).state, (yield* status).phase, (yield* status).share], ["holding", 2, 50])
      yield* Runtime.controlRollout("app", "revert", { reason: "the dashboards look wrong" })
      yield* settle
      const r = yield* status
      assert.deepStrictEqual([r.state, r.share, r.reason], ["reverted", 0, "the dashboards look wrong"])
      const none = yield* Effect.flip(Runtime.controlRollout("app", "advance"))
      assert.strictEqual(none._tag, "ExecutionNotFound")
      const bad = yield* Effect.flip(Runtime.rollout(V1, { to: 2, phases: [50, 10] }))
      assert.match(bad.message, /phases must be increasing percentages/)
    }).pipe(Effect.provide(layer(Healthy))))
})
