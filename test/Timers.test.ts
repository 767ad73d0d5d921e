import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import * as Deadlines from "../src/internal/deadlines.js"

/**
 * The test clock, made to behave like Effect's real clock for long sleeps: a sleep
 * longer than 2^31−1 ms never wakes (Effect's clock cannot set a Node timer that long
 * and treats it as infinite). The plain TestClock wakes any sleep, so without this a
 * test would pass whether or not the runtime chunks its sleeps. Every sleep asked of it
 * is recorded.
 */
const cappedClock = Effect.gen(function*() {
  const test = yield* TestClock.testClock()
  const requested: Array<number> = []
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => test.unsafeCurrentTimeMillis(),
    currentTimeMillis: test.currentTimeMillis,
    unsafeCurrentTimeNanos: () => test.unsafeCurrentTimeNanos(),
    currentTimeNanos: test.currentTimeNanos,
    sleep: (duration) => {
      const millis = Duration.toMillis(duration)
      requested.push(millis)
      return millis > Deadlines.maxSleepMillis ? Effect.never : test.sleep(duration)
    }
  }
  return { test, clock, requested }
})

const day = 24 * 60 * 60 * 1000

const Ping = Schema.TaggedStruct("Ping", {})
const LongWait = Procedure.make("long-wait", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Ping }, {
  initial: "wait",
  states: {
    wait: Procedure.wait({ on: { Ping: "pinged" }, after: { delay: "100 days", goto: "late" } }),
    pinged: Procedure.final(),
    late: Procedure.final({ outcome: "late" })
  }
})

describe("timers of any length", () => {
  it.effect("a deadline 100 days away fires on time, once, with no sleep longer than 2^31-1 ms", () =>
    Effect.gen(function*() {
      const { clock, requested, test } = yield* cappedClock
      const fired: Array<number> = []
      yield* Effect.gen(function*() {
        const deadlines = Deadlines.make()
        yield* Effect.forkScoped(deadlines.run)
        deadlines.add({ at: 100 * day, fire: () => void fired.push(test.unsafeCurrentTimeMillis()) })
        yield* test.adjust(Duration.millis(100 * day - 1))
        assert.deepStrictEqual(fired, [])
        yield* test.adjust("1 millis")
        assert.deepStrictEqual(fired, [100 * day])
        yield* test.adjust("365 days")
        assert.deepStrictEqual(fired, [100 * day])
      }).pipe(Effect.scoped, Effect.withClock(clock))
      assert.isTrue(requested.length > 1)
      assert.isTrue(requested.every((ms) => ms <= Deadlines.maxSleepMillis), `requested sleeps: ${requested.join(", ")}`)
    }))

  it.effect("sleepMillis waits a year in sleeps of at most 2^31-1 ms", () =>
    Effect.gen(function*() {
      const { clock, requested, test } = yield* cappedClock
      let woke: number | undefined
      yield* Effect.gen(function*() {
        yield* Effect.forkScoped(Effect.tap(Deadlines.sleepMillis(365 * day), () => Effect.sync(() => void (woke = test.unsafeCurrentTimeMillis()))))
        yield* test.adjust(Duration.millis(365 * day - 1))
        assert.strictEqual(woke, undefined)
        yield* test.adjust("1 millis")
        assert.strictEqual(woke, 365 * day)
      }).pipe(Effect.scoped, Effect.withClock(clock))
      assert.deepStrictEqual(requested.slice(0, 2), [Deadlines.maxSleepMillis, Deadlines.maxSleepMillis])
      assert.isTrue(requested.every((ms) => ms <= Deadlines.maxSleepMillis))
    }))

  for (const passivation of [true, false]) {
    it.effect(`an after of 100 days fires on time, once (passivation ${passivation ? "on" : "off"})`, () =>
      Effect.gen(function*() {
        const { clock, requested, test } = yield* cappedClock
        const layer = Runtime.layer({ procedures: [LongWait], passivation: { enabled: passivation } }).pipe(
          Layer.provideMerge(Store.layerMemory)
        )
        yield* Effect.gen(function*() {
          const id = yield* Runtime.start(LongWait, {})
          // another execution with a 100-day timer, started 26 days later, ends by its event
          yield* test.adjust("26 days")
          const other = yield* Runtime.start(LongWait, {})
          yield* Runtime.send(other, { _tag: "Ping" })
          assert.strictEqual((yield* Runtime.await(other)).state, "pinged")
          yield* test.adjust(Duration.millis(74 * day - 1))
          assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
          yield* test.adjust("1 millis")
          // not Runtime.await: a timer that never fires would hang the test instead of failing it
          const final = yield* Runtime.get(id)
          assert.strictEqual(final.state, "late")
          assert.strictEqual(final.updatedAt, 100 * day)
          yield* test.adjust("365 days")
          const history = yield* Runtime.history(id)
          assert.deepStrictEqual(history.map((t) => t.cause), ["start", "timer"])
        }).pipe(Effect.provide(layer), Effect.withClock(clock))
        assert.isTrue(requested.every((ms) => ms <= Deadlines.maxSleepMillis), `requested sleeps: ${requested.join(", ")}`)
      }))
  }
})
