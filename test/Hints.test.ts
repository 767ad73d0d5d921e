/**
 * Issue 11, item 12: the hint in an execution's stored error names only operations its
 * status allows. Each way a step can fail, under each `onFailure`, with and without a
 * completed compensable step: every `Runtime.<operation>` the stored error names must be
 * one the transition function accepts in the status the execution is in.
 */
import { assert, describe, it } from "@effect/vitest"
import { Data, Effect, Schedule, Schema, TestClock } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Snapshot } from "proctor/Execution"
import { compile, transition } from "../src/internal/transition.js"
import type { Input } from "../src/internal/transition.js"
import { runtimeLayer } from "./fixtures/procedures.js"

class Rejected extends Data.TaggedError("Rejected")<{ readonly reason: string }> {}
class Flaky extends Data.TaggedError("Flaky")<{}> {}

const Counter = Schema.Struct({ n: Schema.Number })

type Mode = "business" | "transient" | "timeout" | "defect" | "throws" | "next throws" | "update throws" | "bad next" | "bad context"
const modes: ReadonlyArray<Mode> = ["business", "transient", "timeout", "defect", "throws", "next throws", "update throws", "bad next", "bad context"]
type OnFailure = "fail" | "intervene" | "goto"

const failing = (mode: Mode, onFailure: OnFailure, compensable: boolean) => {
  const run = (): Effect.Effect<number, Rejected | Flaky> => {
    switch (mode) {
      case "business":
        return Effect.fail(new Rejected({ reason: "card declined" }))
      case "transient":
        return Effect.fail(new Flaky())
      case "timeout":
        return Effect.as(Effect.sleep("1 hour"), 1)
      case "defect":
        return Effect.die(new Error("boom"))
      case "throws":
        throw new Error("thrown, not returned")
      default:
        return Effect.succeed(1)
    }
  }
  return Procedure.make(`hint-${mode}-${onFailure}-${compensable}`.replace(/ /g, "-"), { version: 1, input: Counter, context: Counter }, {
    initial: "first",
    states: {
      first: Procedure.step({ run: () => Effect.void, next: "a", ...(compensable ? { compensate: () => Effect.void } : {}) }),
      a: Procedure.step({
        run,
        next: (n: number): "done" => {
          if (mode === "next throws") throw new Error("next broke")
          return (mode === "bad next" ? "nowhere" : n > 0 ? "done" : "done") as "done"
        },
        targets: ["done", "handler"],
        update: (n, c) => {
          if (mode === "update throws") throw new Error("update broke")
          return mode === "bad context" ? ({ n: "not a number" } as unknown as typeof c) : { ...c, n }
        },
        timeout: "1 second",
        transient: ["Flaky", "TimeoutError"],
        retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1))),
        onFailure: onFailure === "goto" ? { goto: "handler" } : onFailure
      }),
      handler: Procedure.wait({ on: {}, after: { delay: "1 day", goto: "done" } }),
      done: Procedure.final()
    }
  })
}

const inputs: Record<string, Input> = {
  retry: { _tag: "Retry" },
  skip: { _tag: "Skip", state: "done" },
  rollback: { _tag: "Rollback", compensable: false },
  cancel: { _tag: "Cancel" },
  pause: { _tag: "Pause" },
  resume: { _tag: "Resume" }
}

/** Every `Runtime.<op>` the stored error names must be accepted by `transition` in the snapshot's status. */
const checkHint = (p: Procedure.Any, snapshot: Snapshot, where: string) => {
  if (snapshot.error === undefined) return
  const named = [...snapshot.error.message.matchAll(/Runtime\.(\w+)/g)].map((m) => m[1]!)
  for (const op of named) {
    const input = inputs[op]
    assert.isDefined(input, `${where}: the hint names Runtime.${op}, which is not an operator command`)
    const output = transition(compile(p), { snapshot, context: { n: 0 } }, input!, snapshot.updatedAt + 1)
    assert.notStrictEqual(
      output._tag,
      "Reject",
      `${where}: the error (status ${snapshot.status}) names Runtime.${op}, which ${snapshot.status} refuses: ${snapshot.error.message}`
    )
  }
  if (snapshot.status === "failed") {
    assert.match(snapshot.error.message, /start a new execution/, `${where}: a failed execution's error says what to do`)
  }
}

const settle = (id: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 20; i++) {
      const s = yield* Runtime.get(id)
      if (s.state !== "first" && s.status !== "running" && s.status !== "compensating") return s
      yield* TestClock.adjust("1 second")
    }
    return yield* Runtime.get(id)
  })

describe("hints name only what the status allows", () => {
  const cases = modes.flatMap((mode) =>
    (["fail", "intervene", "goto"] as const).flatMap((onFailure) => [false, true].map((compensable) => ({ mode, onFailure, compensable })))
  )
  const procedures = cases.map((c) => ({ ...c, p: failing(c.mode, c.onFailure, c.compensable) }))

  it.effect("for each way a step fails, under each onFailure, and after each command a person may give", () =>
    Effect.gen(function*() {
      for (const { compensable, mode, onFailure, p } of procedures) {
        const where = `${mode}, onFailure ${onFailure}${compensable ? ", after a compensable step" : ""}`
        const id = yield* Runtime.start(p, { n: 0 })
        const s = yield* settle(id)
        assert.isDefined(s.error, `${where}: the failure is stored`)
        const expected = onFailure === "fail" ? "failed" : onFailure === "intervene" ? "needs_intervention" : "waiting"
        assert.strictEqual(s.status, expected, where)
        checkHint(p, s, where)
        if (s.status === "needs_intervention") {
          // what a person does next: the error left on the snapshot still fits the new status
          for (const op of ["cancel", "rollback"] as const) {
            const other = yield* Runtime.start(p, { n: 0 })
            yield* settle(other)
            yield* op === "cancel" ? Runtime.cancel(other) : Runtime.rollback(other)
            checkHint(p, yield* settle(other), `${where}, then ${op}`)
          }
          yield* Runtime.retry(id)
          checkHint(p, yield* Runtime.get(id), `${where}, then retry`)
        }
      }
    }).pipe(Effect.provide(runtimeLayer(procedures.map((c) => c.p)))))
})
