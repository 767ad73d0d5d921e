/**
 * Issue 13, "one source of truth": `Execution.allowedOperations` gives exactly the
 * commands the transition function accepts and the events it consumes, for every status
 * an execution can be in (including cancel while compensating).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import { Execution, Procedure, Runtime } from "proctor"
import type { Snapshot, Status } from "proctor/Execution"
import { compile, start, transition } from "../src/internal/transition.js"
import type { Input } from "../src/internal/transition.js"
import { runtimeLayer } from "./fixtures/procedures.js"

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

describe("the start of an execution comes from the transition function", () => {
  const Timed = Procedure.make("timed-start", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Approve }, {
    initial: "review",
    states: {
      review: Procedure.wait({ on: { Approve: "done" }, after: { delay: "1 hour", goto: "done" } }),
      done: Procedure.final()
    }
  })
  const Ended = Procedure.make("ended-start", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
    initial: "refused",
    states: { refused: Procedure.final({ outcome: "failed" }) }
  })

  it.effect("Runtime.start commits the snapshot and row that start() gives", () =>
    Effect.gen(function*() {
      for (const p of [Timed, Ended]) {
        const id = yield* Runtime.start(p, {}, { tenant: "t1" })
        const expected = start(compile(p), { id, tenant: "t1" }, {}, 0)
        assert.isTrue(Either.isRight(expected))
        if (Either.isLeft(expected)) return
        assert.deepStrictEqual(yield* Runtime.get(id), expected.right.machine.snapshot)
        assert.deepStrictEqual(yield* Runtime.history(id), [expected.right.transition])
      }
      const timed = yield* Runtime.list({ procedure: "timed-start" })
      assert.strictEqual(timed[0]!.status, "waiting")
      assert.strictEqual(timed[0]!.timerDueAt, 3_600_000)
      const ended = yield* Runtime.list({ procedure: "ended-start" })
      assert.strictEqual(ended[0]!.status, "failed")
      assert.strictEqual(ended[0]!.outcome, "failed")
    }).pipe(Effect.provide(runtimeLayer([Timed, Ended]))))
})

describe("Execution.Cause", () => {
  it("is a union of the causes the runtime writes, read with eventOf", () => {
    assert.strictEqual(Execution.eventOf(Execution.eventCause("Approve")), "Approve")
    assert.strictEqual(Execution.eventOf("step"), undefined)
    const decode = Schema.decodeUnknownEither(Execution.Cause)
    assert.isTrue(Either.isRight(decode("event:Approve")))
    assert.isTrue(Either.isRight(decode("compensated")))
    assert.isTrue(Either.isLeft(decode("bogus")))
    // @ts-expect-error a cause the runtime does not write is not a Cause
    const bogus: Execution.Cause = "bogus"
    assert.strictEqual(bogus, "bogus")
  })
})
