import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import * as Deadlines from "../src/internal/deadlines.js"

describe("step deadlines", () => {
  it.effect("fire at their time, in order, and not once removed, after many added and removed", () =>
    Effect.gen(function*() {
      const deadlines = Deadlines.make()
      yield* Effect.forkScoped(deadlines.run)
      const fired: Array<string> = []
      const at = (ms: number, name: string) => ({ at: ms, fire: () => void fired.push(name) })
      // a live deadline far away keeps the fiber asleep while 10k short-lived ones come and go,
      // each at its own millisecond (the heap is rebuilt from the live ones on the way)
      deadlines.add(at(1_000_000, "far"))
      for (let i = 0; i < 10_000; i++) {
        const d = at(500_000 + i, `gone-${i}`)
        deadlines.add(d)
        deadlines.remove(d)
      }
      deadlines.add(at(300, "b"))
      deadlines.add(at(200, "a"))
      const removed = at(250, "removed")
      deadlines.add(removed)
      deadlines.remove(removed)
      yield* TestClock.adjust("250 millis")
      assert.deepStrictEqual(fired, ["a"])
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(fired, ["a", "b"])
      yield* TestClock.adjust("1000 seconds")
      assert.deepStrictEqual(fired, ["a", "b", "far"])
    }).pipe(Effect.scoped))
})

/**
 * A run keeps one entry in the deadline table for all its attempts (`run.ts`, `Stepping`):
 * it moves earlier for an attempt due sooner, and an entry that fires before the current
 * attempt is due is put back at the attempt's deadline.
 */
describe("step timeouts of a run's successive attempts", () => {
  const Counter = Schema.Struct({ n: Schema.Number })
  const timedOut = Procedure.final({ outcome: "failed" })
  const Steps = Procedure.make("deadline-steps", { version: 1, input: Counter, context: Counter }, {
    initial: "long",
    states: {
      // a long timeout first, then a short one that must fire on time
      long: Procedure.step({ run: () => Effect.void, timeout: "1 hour", next: "short" }),
      short: Procedure.step({ run: () => Effect.never, timeout: "5 seconds", transient: [], onFailure: { goto: "timedOut" }, next: "done" }),
      timedOut,
      done: Procedure.final()
    }
  })
  const Later = Procedure.make("deadline-later", { version: 1, input: Counter, context: Counter }, {
    initial: "quick",
    states: {
      // a short timeout first, then a step that takes longer than it but within its own
      quick: Procedure.step({ run: () => Effect.void, timeout: "1 second", next: "slow" }),
      slow: Procedure.step({ run: () => Effect.sleep("5 seconds"), timeout: "10 seconds", transient: [], onFailure: { goto: "timedOut" }, next: "stuck" }),
      stuck: Procedure.step({ run: () => Effect.never, timeout: "10 seconds", transient: [], onFailure: { goto: "timedOut" }, next: "done" }),
      timedOut,
      done: Procedure.final()
    }
  })
  const layer = Runtime.layer({ procedures: [Steps, Later] }).pipe(Layer.provideMerge(Store.layerMemory))
  /** the execution is in `state` 1 ms before its deadline, and has timed out there 1 ms later */
  const timesOutAfter = (id: string, state: string, millis: number) =>
    Effect.gen(function*() {
      yield* TestClock.adjust(millis - 1)
      assert.strictEqual((yield* Runtime.get(id)).state, state)
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* Runtime.await(id)).state, "timedOut")
      assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => [e.state, e.tag]), [[state, "TimeoutError"]])
    })

  it.effect("an attempt due sooner than the last one times out at its own deadline", () =>
    Effect.gen(function*() {
      yield* timesOutAfter(yield* Runtime.start(Steps, { n: 0 }), "short", 5_000)
    }).pipe(Effect.provide(layer)))

  it.effect("an attempt due later than the last one does not time out at the last one's deadline, and times out at its own", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Later, { n: 0 })
      // `slow` runs 5 s, past `quick`'s 1 s deadline, within its own 10 s
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* Runtime.get(id)).state, "stuck")
      assert.deepStrictEqual(yield* Runtime.errors(id), [])
      // `stuck` started at 5 s: it times out at 15 s, not before
      yield* timesOutAfter(id, "stuck", 10_000)
    }).pipe(Effect.provide(layer)))
})
