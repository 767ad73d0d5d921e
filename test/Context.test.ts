import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"

// what a step saw of its execution's context, by execution
const seen = new Map<string, unknown>()

const Dated = Procedure.make("context-dated", {
  version: 1,
  input: Schema.Struct({ n: Schema.Number }),
  context: Schema.Struct({ n: Schema.Number, at: Schema.Date }),
  init: ({ n }: { readonly n: number }) => ({ n, at: new Date(0) })
}, {
  initial: "look",
  states: {
    look: Procedure.step({
      run: ({ context, executionId }) => Effect.sync(() => void seen.set(executionId, context)),
      next: "done"
    }),
    done: Procedure.final()
  }
})

const Plain = Procedure.make("context-plain", {
  version: 1,
  input: Schema.Struct({ n: Schema.Number }),
  context: Schema.Struct({ n: Schema.Number, tags: Schema.Array(Schema.String) }),
  init: ({ n }: { readonly n: number }) => ({ n, tags: ["a"], extra: true })
}, {
  initial: "look",
  states: {
    look: Procedure.step({
      run: ({ context, executionId }) => Effect.sync(() => void seen.set(executionId, context)),
      next: "done"
    }),
    done: Procedure.final()
  }
})

const layer = Runtime.layer({ procedures: [Dated, Plain] }).pipe(Layer.provideMerge(Store.layerMemory))

describe("an execution's context, kept once when its Schema gives it back unchanged", () => {
  it.effect("a context its Schema transforms is stored encoded, and steps see it decoded", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Dated, { n: 1 })
      yield* Runtime.await(id)
      assert.deepStrictEqual((yield* Runtime.get(id)).context, { n: 1, at: new Date(0).toISOString() })
      const context = seen.get(id) as { readonly at: unknown }
      assert.instanceOf(context.at, Date)
    }).pipe(Effect.provide(layer)))

  it.effect("what the Schema leaves out of a context is not stored", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Plain, { n: 2 })
      yield* Runtime.await(id)
      assert.deepStrictEqual((yield* Runtime.get(id)).context, { n: 2, tags: ["a"] })
    }).pipe(Effect.provide(layer)))
})
