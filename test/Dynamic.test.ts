/**
 * Issue 13, items 5 and 6: guards on a wait's events, and procedures built at run time
 * (`Procedure.makeUnsafe`) from plain state descriptions.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { DefinitionError, Procedure, Runtime } from "proctor"
import { runtimeLayer } from "./fixtures/procedures.js"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String, amount: Schema.Number })
const Ctx = Schema.Struct({ limit: Schema.Number, approvedBy: Schema.optional(Schema.String) })

const Guarded = Procedure.make("guarded", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
  initial: "review",
  states: {
    review: Procedure.wait({
      on: {
        Approve: {
          goto: "approved",
          guard: function withinLimit(e, c) {
            return e.amount <= c.limit
          },
          update: (e, c) => ({ ...c, approvedBy: e.by })
        }
      }
    }),
    approved: Procedure.final()
  }
})

const thrown = (f: () => unknown): DefinitionError => {
  try {
    f()
  } catch (error) {
    assert.instanceOf(error, DefinitionError)
    return error as DefinitionError
  }
  return assert.fail("expected a DefinitionError")
}

describe("guards on a wait's events", () => {
  it.effect("an event its guard refuses is discarded with an error-log entry naming the guard; one it passes is taken", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Guarded, { limit: 100 })
      // events are consumed in order: once the second has ended the execution, the first was decided
      yield* Runtime.send(id, { _tag: "Approve", by: "ann", amount: 500 })
      yield* Runtime.send(id, { _tag: "Approve", by: "bob", amount: 50 })
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.state, "approved")
      assert.deepStrictEqual(done.context, { limit: 100, approvedBy: "bob" })
      const errors = yield* Runtime.errors(id)
      assert.strictEqual(errors.length, 1)
      assert.strictEqual(errors[0]!.tag, "GuardRefused")
      assert.strictEqual(errors[0]!.state, "review")
      assert.match(errors[0]!.message, /event "Approve" was refused by the guard of on.Approve in state "review" \(withinLimit\)/)
      assert.strictEqual((yield* Runtime.history(id)).length, 2)
    }).pipe(Effect.provide(runtimeLayer([Guarded]))))

  it("keeps type-checked state names: a guarded handler's goto must be a state", () => {
    Procedure.make("typed", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
      initial: "review",
      states: {
        review: Procedure.wait({ on: { Approve: { goto: "approved", guard: (e) => e.amount > 0 } } }),
        approved: Procedure.final()
      }
    })
    Procedure.make("typed", { version: 1, input: Ctx, context: Ctx, events: Approve }, {
      initial: "review",
      // @ts-expect-error "nowhere" is not a state
      states: {
        review: Procedure.wait({ on: { Approve: { goto: "nowhere", guard: (e) => e.amount > 0 } } }),
        approved: Procedure.final()
      }
    })
  })
})

const Review = Procedure.makeUnsafe({
  name: "built",
  version: 1,
  input: Ctx,
  context: Ctx,
  events: Approve,
  initial: "prepare",
  states: {
    prepare: { type: "step", run: () => Effect.void, next: "review" },
    review: {
      type: "wait",
      on: { Approve: { goto: "approved", guard: (e: typeof Approve.Type, c: typeof Ctx.Type) => e.amount <= c.limit } },
      after: { delay: "1 hour", goto: "expired" }
    },
    approved: { type: "final" },
    expired: Procedure.final({ outcome: "failed" })
  }
})

describe("Procedure.makeUnsafe", () => {
  it.effect("builds a procedure that runs like one made with Procedure.make", () =>
    Effect.gen(function*() {
      assert.isTrue(Procedure.isProcedure(Review))
      const id = yield* Runtime.start(Review, { limit: 10 })
      yield* Runtime.send(id, { _tag: "Approve", by: "ann", amount: 20 })
      yield* Runtime.send(id, { _tag: "Approve", by: "ann", amount: 5 })
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.state, "approved")
      assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => e.tag), ["GuardRefused"])
    }).pipe(Effect.provide(runtimeLayer([Review]))))

  const base = { name: "bad", version: 1, input: Ctx, context: Ctx, initial: "a" }

  it("names the state and the field of a description that is wrong", () => {
    const unknownType = thrown(() => Procedure.makeUnsafe({ ...base, states: { a: { type: "stepp" } as never } }))
    assert.strictEqual(unknownType.state, "a")
    assert.match(unknownType.message, /`type` is "stepp"; it must be "step", "wait", "final", "compound" or "history"/)
    const typo = thrown(() => Procedure.makeUnsafe({ ...base, states: { a: { type: "wait", on: { X: { gotoo: "b" } } } as never, b: { type: "final" } } }))
    assert.strictEqual(typo.state, "a")
    assert.match(typo.message, /`on.X` is .*; it must be a state name or \{ goto, guard\?, update\?, actions\? \}/)
    const noRun = thrown(() => Procedure.makeUnsafe({ ...base, states: { a: { type: "step", next: "b" } as never, b: { type: "final" } } }))
    assert.match(noRun.message, /\(state "a"\): `run` is undefined; it must be a function returning an Effect/)
    const extra = thrown(() => Procedure.makeUnsafe({ ...base, states: { a: { type: "final", outcom: "x" } as never } }))
    assert.match(extra.message, /a final has no field `outcom`; its fields are type, outcome/)
    const guard = thrown(() =>
      Procedure.makeUnsafe({ ...base, states: { a: { type: "wait", on: { X: { goto: "b", guard: true } } } as never, b: { type: "final" } } })
    )
    assert.match(guard.message, /`on.X.guard` is true; it must be a function/)
  })

  it("checks the definition as registration does: a target that does not exist, an unreachable state", () => {
    const missing = thrown(() => Procedure.makeUnsafe({ ...base, states: { a: { type: "step", run: () => Effect.void, next: "ghost" }, b: { type: "final" } } }))
    assert.strictEqual(missing.state, "a")
    assert.match(missing.message, /goes to "ghost", which is not one of the states/)
    const schema = thrown(() => Procedure.makeUnsafe({ ...base, context: "not a schema" as never, states: { a: { type: "final" } } }))
    assert.match(schema.message, /`context` is "not a schema"; it must be a Schema/)
  })
})
