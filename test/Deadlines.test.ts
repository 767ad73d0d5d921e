import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
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
