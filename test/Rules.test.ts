/**
 * Issue 13, "one source of truth": `Execution.allowedOperations` gives exactly the
 * commands the transition function accepts and the events it consumes, for every status
 * an execution can be in (including cancel while compensating).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Execution, Procedure } from "proctor"
import type { Snapshot, Status } from "proctor/Execution"
import { compile, transition } from "../src/internal/transition.js"
import type { Input } from "../src/internal/transition.js"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
const Reject = Schema.TaggedStruct("Reject", {})
const Other = Schema.TaggedStruct("Other", {})

const Rules = Procedure.make("rules", {
  version: 1,
  input: Schema.Struct({}),
  context: Schema.Struct({}),
  events: Schema.Union(Approve, Reject, Other)
}, {
  initial: "work",
  states: {
    work: Procedure.step({ run: () => Effect.void, next: "review", compensate: () => Effect.void }),
    review: Procedure.wait({ on: { Approve: "done", Reject: "work" } }),
    done: Procedure.final()
  }
})
const compiled = compile(Rules)

const snapshotIn = (state: string, status: Status): Snapshot => ({
  id: "e1",
  procedure: Rules.name,
  version: Rules.version,
  state,
  status,
  context: {},
  visit: 1,
  attempt: 0,
  seq: 3,
  rowVersion: 3,
  startedAt: 0,
  enteredAt: 0,
  updatedAt: 0,
  ...(status === "compensating" ? { compensateTo: "rolled_back" as const } : {})
})

const inputOf = (command: Execution.Command): Input => {
  switch (command) {
    case "pause":
      return { _tag: "Pause" }
    case "resume":
      return { _tag: "Resume" }
    case "cancel":
      return { _tag: "Cancel" }
    case "rollback":
      return { _tag: "Rollback", compensable: true }
    case "retry":
      return { _tag: "Retry" }
    case "skip":
      return { _tag: "Skip", state: "review" }
  }
}

const statuses: ReadonlyArray<Status> = Execution.Status.literals
/** each status in the states it can be in: a step, a wait, a final state */
const cases = statuses.flatMap((status): ReadonlyArray<{ readonly state: string; readonly status: Status }> =>
  status === "succeeded" || status === "failed" ? [{ state: "done", status }]
  : status === "waiting" ? [{ state: "review", status }]
  : status === "running" || status === "needs_intervention" ? [{ state: "work", status }]
  : [{ state: "work", status }, { state: "review", status }]
)

describe("Execution.allowedOperations", () => {
  for (const { state, status } of cases) {
    it(`lists the commands transition() accepts: ${status} in ${state}`, () => {
      const snapshot = snapshotIn(state, status)
      const accepted = Execution.commands.filter((command) =>
        transition(compiled, { snapshot, context: {} }, inputOf(command), 1)._tag !== "Reject"
      )
      assert.deepStrictEqual(Execution.allowedOperations(snapshot, Rules).commands, accepted)
    })
  }

  it("accepts cancel while compensating, refuses rollback, pause and skip", () => {
    const allowed = Execution.allowedOperations(snapshotIn("work", "compensating"), Rules)
    assert.deepStrictEqual(allowed.commands, ["cancel"])
  })

  it("lists the events the waiting state consumes, and no others", () => {
    const snapshot = snapshotIn("review", "waiting")
    const allowed = Execution.allowedOperations(snapshot, Rules)
    assert.deepStrictEqual(allowed.events, ["Approve", "Reject"])
    for (const tag of ["Approve", "Reject", "Other"]) {
      const output = transition(compiled, { snapshot, context: {} }, { _tag: "Event", event: { _tag: tag }, encoded: { _tag: tag } }, 1)
      assert.strictEqual(output._tag === "Next", allowed.events.includes(tag), tag)
    }
  })

  it("lists a paused wait's events (handled on resume) and none while running, compensating or ended", () => {
    assert.deepStrictEqual(Execution.allowedOperations(snapshotIn("review", "paused"), Rules).events, ["Approve", "Reject"])
    for (const [state, status] of [["work", "running"], ["review", "compensating"], ["review", "cancelled"]] as const) {
      assert.deepStrictEqual(Execution.allowedOperations(snapshotIn(state, status), Rules).events, [], status)
    }
  })

  it("gives the transition function's hint through Execution.refusal", () => {
    const output = transition(compiled, { snapshot: snapshotIn("done", "succeeded"), context: {} }, { _tag: "Retry" }, 1)
    assert.strictEqual(output._tag, "Reject")
    if (output._tag === "Reject") assert.strictEqual(output.error.hint, Execution.refusal("retry", "succeeded"))
  })
})
