import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { Procedure } from "proctor"
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
