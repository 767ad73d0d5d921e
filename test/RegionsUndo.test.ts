/**
 * When a parallel state fails as a whole, the other regions' completed steps are undone in
 * the reverse order of their completion across the regions, whatever the interleaving: a
 * property over random regions (1 to 3 steps each, ending in a final state, in a wait, or
 * with a step still running) and random completion orders, on virtual time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, FastCheck as fc, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { journal, Journal, record, Rejected } from "./fixtures/procedures.js"

const Ctx = Schema.Struct({})
type Ctx = typeof Ctx.Type
const Go = Schema.TaggedStruct("Go", {})

interface RegionShape {
  readonly steps: number
  /** after its steps: a final state, a wait for Go, or one more step that is still running when the state fails */
  readonly end: "final" | "wait" | "running"
}

const scenario = fc.array(
  fc.record({ steps: fc.integer({ min: 1, max: 3 }), end: fc.constantFrom<RegionShape["end"]>("final", "wait", "running") }),
  { minLength: 1, maxLength: 4 }
).chain((regions) => {
  const slots = regions.flatMap((r, i) => Array.from({ length: r.steps }, () => i))
  // the order in which the regions' steps complete: a shuffle of every region's steps
  return fc.record({ regions: fc.constant(regions), order: fc.shuffledSubarray(slots, { minLength: slots.length, maxLength: slots.length }) })
})

let runs = 0

/** A parallel state of the regions `shapes` and a region `f` whose step `boom` fails for good; each step completes when its gate opens. */
const procedureOf = (shapes: ReadonlyArray<RegionShape>, gates: ReadonlyMap<string, Deferred.Deferred<void>>) => {
  const step = (name: string, next: string, fails = false): Procedure.State<Ctx, typeof Go.Type> =>
    Procedure.step({
      run: (_: Procedure.StepArgs<Ctx>) =>
        Effect.zipRight(Deferred.await(gates.get(name)!), fails ? Effect.fail(new Rejected({ reason: `${name} broke` })) : record(name)),
      compensate: () => record(`undo ${name}`),
      next
    })
  const regions: Record<string, Procedure.Region<Ctx, typeof Go.Type>> = {}
  shapes.forEach((shape, i) => {
    const states: Record<string, Procedure.State<Ctx, typeof Go.Type>> = {}
    for (let j = 0; j < shape.steps; j++) states[`r${i}s${j}`] = step(`r${i}s${j}`, j + 1 < shape.steps ? `r${i}s${j + 1}` : "last")
    states.last = shape.end === "final" ? Procedure.final() : shape.end === "wait" ? Procedure.wait({ on: { Go: "done" } }) : step(`r${i}stuck`, "done")
    if (shape.end !== "final") states.done = Procedure.final()
    regions[`r${i}`] = { initial: `r${i}s0`, states }
  })
  regions.f = { initial: "boom", states: { boom: step("boom", "done", true), done: Procedure.final() } }
  return Procedure.make(`undo-order-${++runs}`, { version: 1, input: Ctx, context: Ctx, events: Go }, {
    initial: "rollout",
    states: {
      rollout: Procedure.parallel({ regions, next: "live", onFailure: { goto: "aborted" } } as Parameters<typeof Procedure.parallel>[0]),
      live: Procedure.final(),
      aborted: Procedure.final({ outcome: "failed" })
    }
  } as never)
}

/** Waits until the region execution of `parent` whose procedure ends in `.region` has committed the step `name`. */
const committed = (parent: string, region: string, name: string) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    for (let i = 0; i < 1000; i++) {
      const found = (yield* Runtime.list({ parentId: parent })).find((s) => s.procedure.endsWith(`.${region}`))
      if (found !== undefined && (yield* store.history(found.id)).some((t) => t.cause === "step" && t.from === name)) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`step ${name} of region ${region} never committed`)
  })

describe("undoing a parallel state's regions", () => {
  it.effect.prop(
    "the completed steps of every other region are undone in the reverse order of their completion across the regions",
    [scenario],
    ([{ order, regions: shapes }]) =>
      Effect.gen(function*() {
        const names = [...shapes.flatMap((shape, i) => [...Array.from({ length: shape.steps }, (_, j) => `r${i}s${j}`), `r${i}stuck`]), "boom"]
        const gates = new Map<string, Deferred.Deferred<void>>()
        for (const name of names) gates.set(name, yield* Deferred.make<void>())
        const Parent = procedureOf(shapes, gates)
        return yield* Effect.gen(function*() {
          const id = yield* Runtime.start(Parent, {})
          // each step completes in its own millisecond, in the order drawn
          const next = shapes.map(() => 0)
          const completed: Array<string> = []
          for (const i of order) {
            yield* TestClock.adjust("1 millis")
            const name = `r${i}s${next[i]!++}`
            yield* Deferred.succeed(gates.get(name)!, undefined)
            yield* committed(id, `r${i}`, name)
            completed.push(name)
          }
          yield* TestClock.adjust("1 millis")
          yield* Deferred.succeed(gates.get("boom")!, undefined)
          const end = yield* Runtime.await(id)
          assert.strictEqual(end.state, "aborted")
          assert.deepStrictEqual(yield* journal, [...completed, ...[...completed].reverse().map((name) => `undo ${name}`)])
          const ends = (yield* Runtime.list({ parentId: id })).map((s) => [s.procedure.split(".").at(-1), s.status])
          assert.sameDeepMembers(ends, [...shapes.map((_, i) => [`r${i}`, "rolled_back"]), ["f", "failed"]])
        }).pipe(Effect.provide(Runtime.layer({ procedures: [Parent] }).pipe(Layer.provideMerge(Store.layerMemory), Layer.provideMerge(Journal.layer))))
      }),
    { fastCheck: { numRuns: 30, seed: 14 } }
  )
})
