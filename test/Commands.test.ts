import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Random, TestClock } from "effect"
import { Execution, Runtime } from "proctor"
import { all, Approval, Manual, makeFlaky, runtimeLayer, Saga, Slow } from "./fixtures/procedures.js"

/**
 * Operator commands and events thrown at executions in every status, concurrently:
 * every call must answer (with a result or a typed error), and every history must
 * still replay against its definition.
 */
describe("commands under concurrency", () => {
  const Flaky = makeFlaky(2)
  const procedures = [...all, Flaky] as const

  for (const seed of [20261123, 7, 42]) {
  it.effect(`every command answers, whatever the status, and histories stay valid (seed ${seed})`, () =>
    Effect.gen(function*() {
      const starts = [
        Runtime.start(Slow, { n: 0 }),
        Runtime.start(Approval, { doc: "x" }),
        Runtime.start(Saga, { n: 0 }),
        Runtime.start(Saga, { n: 2 }),
        Runtime.start(Manual, { n: 1 }),
        Runtime.start(Flaky, { n: 0 })
      ]
      const ids: Array<string> = []
      for (let i = 0; i < 8; i++) for (const s of starts) ids.push(yield* s)
      const operations = (id: string) => [
        Runtime.pause(id),
        Runtime.resume(id),
        Runtime.cancel(id),
        Runtime.rollback(id),
        Runtime.retry(id),
        Runtime.skip(id, "done"),
        Runtime.send(id, { _tag: "Approve", by: "ann" }),
        Runtime.send(id, { _tag: "Go" }),
        Runtime.get(id)
      ]
      const calls: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      for (let round = 0; round < 6; round++) {
        for (const id of ids) {
          const ops = operations(id)
          const k = yield* Random.nextIntBetween(0, ops.length)
          calls.push(yield* Effect.fork(ops[k]!))
        }
        yield* TestClock.adjust(`${yield* Random.nextIntBetween(1, 3000)} millis`)
      }
      yield* TestClock.adjust("1 minute")
      let succeeded = 0
      for (const call of calls) {
        const exit = yield* Fiber.poll(call)
        assert.isTrue(Option.isSome(exit), "a command never answered")
        if (Option.isSome(exit) && Exit.isSuccess(exit.value)) succeeded++
        if (Option.isSome(exit) && Exit.isFailure(exit.value)) {
          const error = Exit.isFailure(exit.value) ? exit.value.cause : undefined
          const tag = error && (error as any)._tag === "Fail" ? (error as any).error._tag : "defect"
          assert.include(["InvalidTransition", "ValidationError"], tag)
        }
      }
      // the mix did real work: many calls succeeded, many were refused
      assert.isAbove(succeeded, calls.length / 4)
      assert.isBelow(succeeded, calls.length)
      for (const id of ids) {
        const report = yield* Runtime.verify(id)
        assert.deepStrictEqual(report.problems, [], id)
        const s = yield* Runtime.get(id)
        // anything left paused or stopped can still be ended by a person
        if (!Execution.isTerminal(s.status)) {
          const ended = yield* Runtime.cancel(id)
          assert.strictEqual(ended.status, "cancelled")
        }
      }
    }).pipe(Effect.withRandom(Random.make(seed)), Effect.provide(runtimeLayer(procedures))))
  }
})
