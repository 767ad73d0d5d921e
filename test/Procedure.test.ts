import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Schedule, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { compile, transition } from "../src/internal/transition.js"
import type { Machine } from "../src/internal/transition.js"
import type { Snapshot } from "../src/Execution.js"
import { Approval, Looping, Saga } from "./fixtures/procedures.js"

const Ctx = Schema.Struct({ n: Schema.Number })
const step = (next: string) => Procedure.step({ run: () => Effect.void, next })

const invalid = (states: Record<string, Procedure.AnyState>, initial = "a") =>
  Procedure.make("p", { version: 1, input: Ctx, context: Ctx }, { initial, states } as never)

const definitionError = (p: Procedure.Any) => {
  const result = Procedure.validate(p)
  assert.isTrue(Either.isLeft(result))
  return (result as Either.Left<any, any>).left
}

describe("Procedure.validate", () => {
  it("accepts the fixtures", () => {
    for (const p of [Approval, Looping, Saga]) assert.isTrue(Either.isRight(Procedure.validate(p)))
  })

  it("rejects an unknown initial state, naming it and the states", () => {
    const e = definitionError(invalid({ a: step("done"), done: Procedure.final() }, "start"))
    assert.strictEqual(e._tag, "DefinitionError")
    assert.strictEqual(e.state, "start")
    assert.match(e.message, /initial state "start" is not one of the states \(a, done\)/)
  })

  it("rejects an unreachable state, naming it", () => {
    const e = definitionError(invalid({ a: step("done"), orphan: step("done"), done: Procedure.final() }))
    assert.strictEqual(e.state, "orphan")
    assert.match(e.message, /unreachable from the initial state "a"/)
  })

  it("rejects a state from which no final state is reachable", () => {
    const e = definitionError(invalid({ a: step("b"), b: step("a"), c: step("done"), done: Procedure.final() }))
    // c is unreachable first; without it, a and b loop forever
    assert.strictEqual(e.state, "c")
    const loop = definitionError(
      invalid({
        a: Procedure.step({ run: () => Effect.void, next: () => "b", targets: ["b", "done"] }),
        b: step("b"),
        done: Procedure.final()
      })
    )
    assert.strictEqual(loop.state, "b")
    assert.match(loop.message, /no final state can be reached from this state/)
  })

  it("rejects a procedure without a final state, a wait that can never leave and a target that does not exist", () => {
    assert.match(definitionError(invalid({ a: step("a") })).message, /no final state/)
    const stuck = definitionError(invalid({ a: Procedure.wait({ on: {} }), done: Procedure.final() }))
    assert.strictEqual(stuck.state, "a")
    assert.match(stuck.message, /accepts no event and has no timer/)
    const missing = definitionError(invalid({ a: step("ghost"), done: Procedure.final() }))
    assert.match(missing.message, /goes to "ghost", which is not one of the states/)
  })

  it("rejects a non-positive timeout and a bad version", () => {
    const t = definitionError(invalid({ a: Procedure.step({ run: () => Effect.void, next: "done", timeout: 0 }), done: Procedure.final() }))
    assert.match(t.message, /timeout must be positive/)
    const v = Procedure.make("v", { version: 0, input: Ctx, context: Ctx }, { initial: "done", states: { done: Procedure.final() } })
    assert.match(definitionError(v).message, /version 0 is not a positive integer/)
  })

  it("refuses a negative, NaN or infinite duration at registration, naming the state and the field", () => {
    const after = (delay: unknown) =>
      invalid({ a: Procedure.wait({ on: {}, after: { delay: delay as Duration.DurationInput, goto: "done" } }), done: Procedure.final() })
    const timeout = (t: unknown) =>
      invalid({ a: Procedure.step({ run: () => Effect.void, next: "done", timeout: t as Duration.DurationInput }), done: Procedure.final() })
    const cases: ReadonlyArray<readonly [Procedure.Any, RegExp]> = [
      [after(-5), /`after.delay` is negative \(-5 ms\)/],
      [after("-5 seconds"), /`after.delay` is negative \("-5 seconds"\)/],
      [after(NaN), /`after.delay` is NaN/],
      [after(Infinity), /`after.delay` is infinite/],
      [after(Duration.infinity), /`after.delay` is infinite/],
      [after([NaN, 0]), /`after.delay` is NaN/],
      [after(BigInt(-1)), /`after.delay` is negative \(-1 ns\)/],
      [after("soon"), /`after.delay` is not a duration \("soon"\)/],
      [timeout(NaN), /`timeout` is NaN/],
      [timeout(-1), /`timeout` is negative/],
      [timeout(Infinity), /`timeout` is infinite/],
      [timeout("-1 minutes"), /`timeout` is negative/],
    ]
    for (const [p, reason] of cases) {
      const e = definitionError(p)
      assert.strictEqual(e._tag, "DefinitionError")
      assert.strictEqual(e.state, "a")
      assert.match(e.message, reason)
    }
    // zero is a valid delay
    assert.isTrue(Either.isRight(Procedure.validate(after(0))))
  })

  it.effect("a runtime refuses to register a NaN delay or a retry Schedule with an infinite delay", () =>
    Effect.gen(function*() {
      const register = (p: Procedure.Any) =>
        Effect.scoped(Layer.build(Runtime.layer({ procedures: [p] }).pipe(Layer.provide(Store.layerMemory))))
      const nan = Procedure.make("nan", { version: 1, input: Ctx, context: Ctx }, {
        initial: "a",
        states: { a: Procedure.wait({ on: {}, after: { delay: NaN, goto: "done" } }), done: Procedure.final() }
      })
      const e = yield* Effect.flip(register(nan))
      assert.strictEqual(e._tag, "DefinitionError")
      assert.match(e.message, /Procedure "nan" is not valid \(state "a"\): `after.delay` is NaN/)
      const retry = (schedule: Schedule.Schedule<unknown, any>) =>
        Procedure.make("retry", { version: 1, input: Ctx, context: Ctx }, {
          initial: "a",
          states: { a: Procedure.step({ run: () => Effect.void, next: "done", retry: schedule }), done: Procedure.final() }
        })
      for (const schedule of [Schedule.spaced(Infinity), Schedule.exponential(Duration.infinity)]) {
        const r = yield* Effect.flip(register(retry(schedule)))
        assert.strictEqual(r._tag, "DefinitionError")
        assert.strictEqual((r as { state?: string }).state, "a")
        assert.match(r.message, /`retry` Schedule waits forever \(an infinite delay\) before retry 1/)
      }
      // finite Schedules, the default, and one that needs its input to step are accepted
      const needsInput = Schedule.recurWhile((e: { readonly _tag: string }) => e._tag === "TimeoutError")
      for (const schedule of [Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2))), Procedure.defaultRetry, needsInput]) {
        yield* register(retry(schedule as Schedule.Schedule<unknown, any>))
      }
    }))
})

describe("Procedure.toMermaid", () => {
  it("draws states, events, timers, finals and highlights", () => {
    const diagram = Procedure.toMermaid(Approval, { current: "review", visited: ["review"] })
    assert.include(diagram, "stateDiagram-v2")
    assert.include(diagram, "[*] --> review")
    assert.include(diagram, "review --> approved: Approve")
    assert.include(diagram, "review --> escalated: after 1d")
    assert.include(diagram, "approved --> [*]")
    assert.include(diagram, "class review current")
    assert.notInclude(diagram, "class review visited")
  })
})

describe("transition (pure)", () => {
  const compiled = compile(Looping)
  const snapshot: Snapshot = {
    id: "x",
    procedure: "looping",
    version: 1,
    state: "b",
    status: "running",
    context: { n: 2 },
    visit: 4,
    attempt: 0,
    seq: 4,
    rowVersion: 7,
    startedAt: 0,
    enteredAt: 10,
    updatedAt: 10
  }
  const machine: Machine = { snapshot, context: { n: 2 } }

  it("returns the next snapshot and history row, and changes nothing it was given", () => {
    const frozen = JSON.stringify(machine)
    const out = transition(compiled, machine, { _tag: "StepSucceeded", result: 3, compensable: false }, 25)
    assert.strictEqual(JSON.stringify(machine), frozen)
    assert.strictEqual(out._tag, "Next")
    if (out._tag !== "Next") return
    assert.deepStrictEqual(out.machine.snapshot, {
      ...snapshot,
      state: "done",
      status: "succeeded",
      outcome: "succeeded",
      context: { n: 3 },
      visit: 5,
      seq: 5,
      rowVersion: 8,
      enteredAt: 25,
      updatedAt: 25
    })
    assert.deepStrictEqual(out.transition, {
      executionId: "x",
      seq: 5,
      from: "b",
      to: "done",
      status: "succeeded",
      cause: "step",
      at: 25,
      duration: 15
    })
  })

  it("is deterministic: the same inputs give the same outputs", () => {
    const a = transition(compiled, machine, { _tag: "StepSucceeded", result: 1, compensable: false }, 99)
    const b = transition(compiled, machine, { _tag: "StepSucceeded", result: 1, compensable: false }, 99)
    assert.deepStrictEqual(a, b)
  })

  it("a context that fails its Schema makes the step fail instead of being stored", () => {
    const out = transition(compiled, machine, { _tag: "StepSucceeded", result: "not a number", compensable: false }, 25)
    assert.strictEqual(out._tag, "Next")
    if (out._tag !== "Next") return
    assert.strictEqual(out.machine.snapshot.status, "failed")
    assert.deepStrictEqual(out.machine.snapshot.context, { n: 2 })
    assert.strictEqual(out.machine.snapshot.error?.tag, "ExecutionError")
    assert.match(out.machine.snapshot.error!.message, /context given to procedure "looping" does not match/)
  })

  it("rejects commands the status does not allow", () => {
    const out = transition(compiled, machine, { _tag: "Resume" }, 25)
    assert.strictEqual(out._tag, "Reject")
  })

  it("replaying a recorded history reproduces the final snapshot", () => {
    // record: n = 0 -> loops a,b three times
    let m: Machine = { snapshot: { ...snapshot, state: "a", visit: 1, seq: 1, context: { n: 0 } }, context: { n: 0 } }
    const inputs: Array<unknown> = []
    for (let i = 0; m.snapshot.status === "running"; i++) {
      const result = m.snapshot.state === "b" ? (m.context as { n: number }).n + 1 : undefined
      inputs.push(result)
      const out = transition(compiled, m, { _tag: "StepSucceeded", result, compensable: false }, i)
      assert.strictEqual(out._tag, "Next")
      if (out._tag === "Next") m = out.machine
    }
    assert.deepStrictEqual(m.snapshot.context, { n: 3 })
    let replay: Machine = { snapshot: { ...snapshot, state: "a", visit: 1, seq: 1, context: { n: 0 } }, context: { n: 0 } }
    inputs.forEach((result, i) => {
      const out = transition(compiled, replay, { _tag: "StepSucceeded", result, compensable: false }, i)
      if (out._tag === "Next") replay = out.machine
    })
    assert.deepStrictEqual(replay, m)
  })
})
