import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
const Linear = Procedure.make("linear", {
  version: 1,
  input: Schema.Struct({ n: Schema.Number }),
  context: Schema.Struct({ n: Schema.Number, by: Schema.optional(Schema.String) }),
  events: Approve
}, {
  initial: "a",
  states: {
    a: Procedure.step({ run: ({ context }) => Effect.succeed(context.n + 1), update: (n, c) => ({ ...c, n }), next: "b" }),
    b: Procedure.step({ run: () => Effect.sleep("1 second"), next: "w" }),
    w: Procedure.wait({ on: { Approve: { goto: "done", update: (e, c) => ({ ...c, by: e.by }) } }, after: { delay: "1 hour", goto: "late" } }),
    late: Procedure.final({ outcome: "failed" }),
    done: Procedure.final()
  }
})

const layer = Runtime.layer({ procedures: [Linear] }).pipe(Layer.provide(Store.layerMemory))

describe("smoke", () => {
  it.effect("runs", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 1 })
      yield* TestClock.adjust("2 seconds")
      const s1 = yield* Runtime.get(id)
      assert.strictEqual(s1.state, "w")
      yield* Runtime.send(id, { _tag: "Approve", by: "ann" })
      const s = yield* Runtime.await(id)
      assert.strictEqual(s.status, "succeeded")
      assert.deepStrictEqual(s.context, { n: 2, by: "ann" })
      const h = yield* Runtime.history(id)
      assert.deepStrictEqual(h.map((t) => t.to), ["a", "b", "w", "done"])
      const id2 = yield* Runtime.start(Linear, { n: 1 })
      yield* TestClock.adjust("2 hours")
      const s2 = yield* Runtime.await(id2)
      assert.strictEqual(s2.status, "failed")
      assert.strictEqual(s2.state, "late")
    }).pipe(Effect.provide(layer)))
})
