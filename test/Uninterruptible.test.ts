import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schedule, Schema, TestClock } from "effect"
import { Procedure, Runtime } from "proctor"
import { journal, record, runtimeLayer } from "./fixtures/procedures.js"

const Counter = Schema.Struct({ n: Schema.Number })

/** `hold` cannot be interrupted: it sleeps an hour in an uninterruptible region, then records "held". */
const Stubborn = Procedure.make("stubborn", { version: 1, input: Counter, context: Counter }, {
  initial: "hold",
  states: {
    hold: Procedure.step({
      run: () => Effect.uninterruptible(Effect.zipRight(Effect.sleep("1 hour"), record("held"))),
      timeout: "10 seconds",
      retry: Schedule.stop,
      next: "after"
    }),
    after: Procedure.step({ run: () => record("after"), next: "done" }),
    done: Procedure.final()
  }
})

/** A saga whose compensation of `a` cannot be interrupted; `b` fails for good. */
const StubbornUndo = Procedure.make("stubborn-undo", { version: 1, input: Counter, context: Counter }, {
  initial: "a",
  states: {
    a: Procedure.step({
      run: () => record("a"),
      compensate: () => Effect.uninterruptible(Effect.zipRight(Effect.sleep("1 hour"), record("undo a (late)"))),
      compensateTimeout: "10 seconds",
      next: "b"
    }),
    b: Procedure.step({ run: () => Effect.die("b broke"), next: "done" }),
    done: Procedure.final()
  }
})

const procedures = [Stubborn, StubbornUndo] as const

/** Forks `effect` and lets every fiber run without moving the clock: the fiber's exit, if it ended. */
const answerNow = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* TestClock.adjust(0)
    for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
    return yield* Fiber.poll(fiber)
  })

/**
 * Lets the stubborn attempts end before the runtime closes, whatever the test found: closing
 * waits for an attempt that cannot be interrupted (and the TestClock would not move).
 */
const letStubbornFinish = <A, E, R>(test: Effect.Effect<A, E, R>) => Effect.ensuring(test, TestClock.adjust("2 hours"))

describe("steps that cannot be interrupted", () => {
  it.effect("cancel answers at once, the snapshot says cancelled, and the step's late result is not committed", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Stubborn, { n: 0 })
      yield* TestClock.adjust("1 second")
      const answered = yield* answerNow(Runtime.cancel(id))
      assert.isTrue(Option.isSome(answered), "cancel did not answer while the step held on")
      const snapshot = yield* Runtime.get(id)
      assert.strictEqual(snapshot.status, "cancelled")
      // the step ends in the background (it is still supervised by the runtime) ...
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* journal, ["held"])
      // ... and what it returned goes nowhere
      const after = yield* Runtime.get(id)
      assert.strictEqual(after.status, "cancelled")
      assert.strictEqual(after.seq, snapshot.seq)
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.cause), ["start", "cancel"])
    }).pipe(letStubbornFinish, Effect.provide(runtimeLayer(procedures))))

  it.effect("pause answers at once; resume runs the step again", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Stubborn, { n: 0 })
      yield* TestClock.adjust("1 second")
      const answered = yield* answerNow(Runtime.pause(id))
      assert.isTrue(Option.isSome(answered), "pause did not answer while the step held on")
      assert.strictEqual((yield* Runtime.get(id)).status, "paused")
      yield* TestClock.adjust("1 hour")
      // the interrupted attempt's result was dropped: still paused, still in `hold`
      const paused = yield* Runtime.get(id)
      assert.strictEqual(paused.status, "paused")
      assert.strictEqual(paused.state, "hold")
      yield* Runtime.resume(id)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual((yield* Runtime.get(id)).status, "failed")
    }).pipe(letStubbornFinish, Effect.provide(runtimeLayer(procedures))))

  it.effect("a step's timeout fires on time even if the step cannot be interrupted", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Stubborn, { n: 0 })
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual((yield* Runtime.get(id)).status, "running")
      yield* TestClock.adjust("1 second")
      const failed = yield* Runtime.get(id)
      assert.strictEqual(failed.status, "failed")
      const errors = yield* Runtime.errors(id)
      assert.deepStrictEqual(errors.map((e) => [e.state, e.tag]), [["hold", "TimeoutError"]])
      assert.strictEqual(errors[0]!.at, 10_000)
      // the attempt finishes later in the background; nothing of it is committed
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* journal, ["held"])
      const later = yield* Runtime.get(id)
      assert.strictEqual(later.seq, failed.seq)
      assert.strictEqual(later.state, "hold")
    }).pipe(letStubbornFinish, Effect.provide(runtimeLayer(procedures))))

  it.effect("a compensation's compensateTimeout fires on time even if it cannot be interrupted", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(StubbornUndo, { n: 0 })
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Runtime.get(id)).status, "compensating")
      yield* TestClock.adjust("10 seconds")
      const ended = yield* Runtime.get(id)
      assert.strictEqual(ended.status, "failed")
      const failed = (yield* Runtime.errors(id)).filter((e) => e.message.startsWith("compensation failed"))
      assert.deepStrictEqual(failed.map((e) => [e.state, e.tag]), [["a", "TimeoutError"]])
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* journal, ["a", "undo a (late)"])
      assert.strictEqual((yield* Runtime.get(id)).seq, ended.seq)
    }).pipe(letStubbornFinish, Effect.provide(runtimeLayer(procedures))))
})
