import { assert, describe, it } from "@effect/vitest"
import type { Duration } from "effect"
import { Effect, Exit, Layer, Schema, Scope, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { journal, Journal, record, Rejected, runtimeLayer } from "./fixtures/procedures.js"

const Counter = Schema.Struct({ n: Schema.Number })

/**
 * Three compensable steps, then a step that fails for good. `b`'s compensation is what the
 * test gives: one that never returns, one that throws, ...
 */
const makeSaga = (name: string, undoB: () => Effect.Effect<unknown, unknown, Journal>, compensateTimeout?: Duration.DurationInput) =>
  Procedure.make(name, { version: 1, input: Counter, context: Counter }, {
    initial: "a",
    states: {
      a: Procedure.step({ run: () => record("a"), compensate: () => record("undo a"), next: "b" }),
      b: Procedure.step({
        run: () => record("b"),
        compensate: undoB,
        ...(compensateTimeout === undefined ? {} : { compensateTimeout }),
        next: "c"
      }),
      c: Procedure.step({ run: () => record("c"), compensate: () => record("undo c"), next: "d" }),
      d: Procedure.step({ run: () => Effect.fail(new Rejected({ reason: "deploy failed" })), next: "done" }),
      done: Procedure.final()
    }
  })

const Hanging = makeSaga("hanging", () => Effect.zipRight(record("undo b (hangs)"), Effect.never), "10 seconds")
const HangingDefault = makeSaga("hanging-default", () => Effect.zipRight(record("undo b (hangs)"), Effect.never))
const Throwing = makeSaga("throwing", () => {
  throw new Error("undo b threw")
})
const procedures = [Hanging, HangingDefault, Throwing] as const

describe("compensations time out and always answer", () => {
  it.effect("a compensation that never returns times out, is logged as failed, and the rollback goes on", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Hanging, { n: 0 })
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual((yield* Runtime.get(id)).status, "compensating")
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b (hangs)"])
      yield* TestClock.adjust("1 second")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      // the step's own error stays the execution's error
      assert.strictEqual(final.error?.tag, "ExecutionError")
      assert.match(final.error!.message, /deploy failed/)
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b (hangs)", "undo a"])
      const errors = yield* Runtime.errors(id)
      const failed = errors.filter((e) => e.message.startsWith("compensation failed"))
      assert.strictEqual(failed.length, 1)
      assert.strictEqual(failed[0]!.state, "b")
      assert.strictEqual(failed[0]!.tag, "TimeoutError")
      assert.match(failed[0]!.message, /compensateTimeout of 10s/)
    }).pipe(Effect.provide(runtimeLayer(procedures))))

  it.effect("without compensateTimeout a compensation has a step's default timeout (1 minute)", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(HangingDefault, { n: 0 })
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual((yield* Runtime.get(id)).status, "compensating")
      yield* TestClock.adjust("1 second")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b (hangs)", "undo a"])
    }).pipe(Effect.provide(runtimeLayer(procedures))))

  it.effect("a compensation that throws is a failed compensation: logged, the others run, the step's error stays", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Throwing, { n: 0 })
      // time for restarts, had the throw been taken for a defect of the runtime
      yield* TestClock.adjust("1 minute")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "failed")
      assert.strictEqual(final.error?.tag, "ExecutionError")
      assert.match(final.error!.message, /deploy failed/)
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo a"])
      const failed = (yield* Runtime.errors(id)).filter((e) => e.message.startsWith("compensation failed"))
      assert.deepStrictEqual(failed.map((e) => [e.state, e.message]), [["b", "compensation failed: undo b threw"]])
      assert.deepStrictEqual((yield* Runtime.history(id)).filter((t) => t.cause === "defect"), [])
    }).pipe(Effect.provide(runtimeLayer(procedures))))

  it.effect("commands sent while a compensation runs answer at once: refused ones without stopping it, cancel stops the rollback", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Hanging, { n: 0 })
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Runtime.get(id)).status, "compensating")
      // no time passes between these: each answers at once
      for (const refused of [Runtime.pause(id), Runtime.rollback(id), Runtime.skip(id, "done"), Runtime.retry(id), Runtime.resume(id)]) {
        const error = yield* Effect.flip(refused)
        assert.strictEqual(error._tag, "InvalidTransition")
        assert.match(error.message, /compensating/)
      }
      // the compensation was not stopped by them: it still times out at 10 s
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b (hangs)"])
      const cancelled = yield* Runtime.cancel(id)
      assert.strictEqual(cancelled.status, "cancelled")
      yield* TestClock.adjust("1 minute")
      // cancel ends it without the compensations still to run
      assert.deepStrictEqual(yield* journal, ["a", "b", "c", "undo c", "undo b (hangs)"])
      assert.strictEqual((yield* Runtime.get(id)).status, "cancelled")
    }).pipe(Effect.provide(runtimeLayer(procedures))))

  it.effect("a rollback stopped by a shutdown resumes where it stopped: finished compensations do not run again", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory
      const journalContext = yield* Layer.build(Journal.layer)
      const layer = Runtime.layer({ procedures }).pipe(
        Layer.provide(Layer.succeed(Store.Store, store)),
        Layer.provide(Layer.succeedContext(journalContext))
      )
      const first = yield* Scope.make()
      const r1 = (yield* Layer.buildWithScope(layer, first)).unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
      const id = yield* r1.start(Hanging, { n: 0 })
      yield* TestClock.adjust("1 second")
      yield* Scope.close(first, Exit.void)
      const second = yield* Scope.make()
      const r2 = (yield* Layer.buildWithScope(layer, second)).unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* r2.await(id)).status, "failed")
      const entries = Effect.provide(journal, journalContext)
      // "undo c" ran once; "undo b" was interrupted by the shutdown and ran again
      assert.deepStrictEqual(yield* entries, ["a", "b", "c", "undo c", "undo b (hangs)", "undo b (hangs)", "undo a"])
      yield* Scope.close(second, Exit.void)
    }).pipe(Effect.scoped))
})
