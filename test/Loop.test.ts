/**
 * Semantics 11: one execution cannot stall the process. Actors give the event loop its
 * turn while they run, and a runaway loop fails alone with `LoopLimitExceeded`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer, Schema, TestClock } from "effect"
import { DefinitionError, Procedure, Runtime } from "proctor"
import { validate } from "../src/Procedure.js"
import { Journal, Linear, runtimeLayer } from "./fixtures/procedures.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const Counter = Schema.Struct({ n: Schema.Number })

/** A step whose `next` returns its own state, for ever. */
const spinner = (maxTransitionsWithoutWaiting?: number) =>
  Procedure.make("spinner", { version: 1, input: Counter, context: Counter }, {
    initial: "spin",
    ...(maxTransitionsWithoutWaiting === undefined ? {} : { maxTransitionsWithoutWaiting }),
    states: {
      spin: Procedure.step({ run: () => Effect.void, next: (_, c) => (c.n < 0 ? "done" : "spin"), targets: ["spin", "done"] }),
      done: Procedure.final()
    }
  })

/** A turn of Node's event loop (a macrotask): what a stalled process never gets to. */
const macrotask = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const cases = [
  { name: "memory", limit: undefined, expected: 10_000, layer: (P: Procedure.Any) => runtimeLayer([P, Linear]) },
  {
    name: "SQLite",
    limit: 600,
    expected: 600,
    layer: (P: Procedure.Any) =>
      Runtime.layer({ procedures: [P, Linear] }).pipe(Layer.provideMerge(layerTempSqlite()), Layer.provideMerge(Journal.layer))
  }
] as const

describe("Loop: one execution cannot stall the process", () => {
  for (const c of cases) {
    it.effect(`${c.name}: a step looping to itself leaves the event loop its turns and fails alone with LoopLimitExceeded`, () => {
      const Spinner = spinner(c.limit)
      return Effect.gen(function*() {
        const id = yield* Runtime.start(Spinner, { n: 0 })
        // the process gets its turns while the loop runs: a macrotask runs before the loop ends
        yield* macrotask
        const during = yield* Runtime.get(id)
        assert.strictEqual(during.status, "running", "the loop had ended before the event loop got a turn")
        // another execution runs meanwhile
        const other = yield* Runtime.start(Linear, { n: 1 })
        assert.strictEqual((yield* Runtime.await(other)).status, "succeeded")
        const final = yield* Runtime.await(id)
        assert.strictEqual(final.status, "failed")
        assert.strictEqual(final.error?.tag, "LoopLimitExceeded")
        // the start, `expected` transitions of the loop, then the failure
        assert.strictEqual(final.seq, c.expected + 2)
        const errors = yield* Runtime.errors(id)
        assert.deepStrictEqual(errors.map((e) => e.tag), ["LoopLimitExceeded"])
        assert.include(errors[0]!.message, `made ${c.expected} transitions in a row without waiting`)
        assert.include(errors[0]!.message, `looping through "spin"`)
        assert.include(errors[0]!.message, "raise `maxTransitionsWithoutWaiting`")
        assert.isTrue((yield* Runtime.verify(id)).ok)
      }).pipe(Effect.provide(c.layer(Spinner)))
    })
  }

  it.effect("a loop that waits between its rounds is not a runaway loop", () => {
    const Polling = Procedure.make("polling", { version: 1, input: Counter, context: Counter }, {
      initial: "poll",
      maxTransitionsWithoutWaiting: 5,
      states: {
        poll: Procedure.step({
          run: () => Effect.void,
          update: (_, c) => ({ n: c.n + 1 }),
          next: (_, c) => (c.n >= 30 ? "done" : (c.n + 1) % 4 === 0 ? "pause" : "poll"),
          targets: ["poll", "pause", "done"]
        }),
        pause: Procedure.wait({ on: {}, after: { delay: "1 second", goto: "poll" } }),
        done: Procedure.final()
      }
    })
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Polling, { n: 0 })
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("1 second")
      const final = yield* Runtime.await(id)
      assert.strictEqual(final.status, "succeeded")
      assert.deepStrictEqual(final.context, { n: 31 })
    }).pipe(Effect.provide(runtimeLayer([Polling])))
  })

  it("maxTransitionsWithoutWaiting must be a positive integer", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      const checked = validate(spinner(bad))
      assert.isTrue(Either.isLeft(checked))
      const error = (checked as Either.Left<DefinitionError, unknown>).left
      assert.instanceOf(error, DefinitionError)
      assert.include(error.message, "maxTransitionsWithoutWaiting")
    }
    assert.isTrue(Either.isRight(validate(spinner(1))))
  })
})
