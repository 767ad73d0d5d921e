/**
 * The checks of `Validate.run` that go beyond one flow, on the configured store: rollback
 * order (compensations in reverse order, after a failure and on `Runtime.rollback`),
 * concurrent executions (many at once, each step once, each execution ending once), and
 * the transition overhead (wall-clock time per committed transition).
 */
import { Effect, Schema } from "effect"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import { awaitWaiting, expectEnd, expectHistory, rows, type Trace, traced } from "./validateFlows.js"
import { expect, wallMillis } from "./validateModel.js"

const Empty = Schema.Struct({})
const Go = Schema.TaggedStruct("Go", {})

class Declined extends Schema.TaggedError<Declined>()("Declined", {}) {}

/** Steps in a chain `s1 → … → sN → done`, each recorded in the trace. */
const chain = (name: string, steps: number, trace: Trace) => {
  const run = traced(trace)
  const states: Record<string, Procedure.StateDescription> = { done: { type: "final" } }
  for (let i = 1; i <= steps; i++) states[`s${i}`] = { type: "step", run, next: i === steps ? "done" : `s${i + 1}` }
  return Procedure.makeUnsafe({ name, version: 1, input: Empty, context: Empty, initial: "s1", states })
}

/** The procedures of the checks here. */
export const makeLoad = (trace: Trace, options: { readonly overheadSteps: number }) => {
  const compensate = traced(trace, "undo")
  const run = traced(trace)
  const rollback = Procedure.make("proctor.validate.rollback", { version: 1, input: Schema.Struct({ fail: Schema.Boolean }), context: Schema.Struct({ fail: Schema.Boolean }), events: Go }, {
    initial: "a",
    states: {
      a: Procedure.step({ run, compensate, next: "b" }),
      b: Procedure.step({ run, compensate, next: "c" }),
      c: Procedure.step({ run, compensate, next: (_, c) => c.fail ? "d" : "hold", targets: ["d", "hold"] }),
      // a business error: the compensations of c, b and a run, then the execution ends failed
      d: Procedure.step({ run: (args) => Effect.zipRight(run(args), Effect.fail(new Declined())), next: "done" }),
      hold: Procedure.wait({ on: { Go: "done" } }),
      done: Procedure.final()
    }
  })
  return {
    rollback,
    concurrent: chain("proctor.validate.concurrent", 3, trace),
    overhead: chain("proctor.validate.overhead", options.overheadSteps, trace)
  }
}

/** The procedures of the checks here. */
export type Load = ReturnType<typeof makeLoad>

/** Rollback order: compensations of completed steps in reverse order, after a failure and when asked. */
export const rollbackOrder = (load: Load, trace: Trace) =>
  Effect.gen(function*() {
    const undone = "run a,run b,run c,undo c,undo b,undo a"
    const failed = yield* Runtime.start(load.rollback, { fail: true })
    yield* expectEnd(yield* Runtime.await(failed), "rollback after a failure", "failed", "d")
    yield* expect(trace.of(failed).join(",") === `run a,run b,run c,run d,undo c,undo b,undo a`, () =>
      `rollback after a failure: the steps and compensations ran [${trace.of(failed).join(", ")}], expected a, b, c, d, then undo c, b, a`)
    const asked = yield* Runtime.start(load.rollback, { fail: false })
    yield* awaitWaiting(asked)
    yield* Runtime.rollback(asked)
    const end = yield* Runtime.await(asked)
    yield* expect(end.status === "rolled_back", () => `Runtime.rollback: the execution ended ${end.status}, expected rolled_back`)
    yield* expect(trace.of(asked).join(",") === undone, () =>
      `Runtime.rollback: the steps and compensations ran [${trace.of(asked).join(", ")}], expected a, b, c, then undo c, b, a`)
    const compensated = rows(yield* Runtime.history(asked)).filter((r) => r.endsWith(" compensated"))
    yield* expect(compensated.length === 1, () => `Runtime.rollback: the history has ${compensated.length} compensated rows, expected one`)
    return "after a failure and on Runtime.rollback, the compensations of c, b and a ran once each, in that order"
  })

/** Concurrent executions: `n` started at once, each step once, each execution ending once. */
export const concurrency = (load: Load, trace: Trace, n: number) =>
  Effect.gen(function*() {
    const began = yield* wallMillis
    const ids = yield* Effect.forEach(Array.from({ length: n }), () => Runtime.start(load.concurrent, {}), { concurrency: 256 })
    const ends = yield* Effect.forEach(ids, (id) => Runtime.await(id), { concurrency: "unbounded" })
    const millis = (yield* wallMillis) - began
    const bad = ends.filter((s) => s.status !== "succeeded" || s.state !== "done")
    yield* expect(bad.length === 0, () => `${bad.length} of ${n} executions did not succeed (e.g. ${bad[0]?.id} ended ${bad[0]?.status} in "${bad[0]?.state}")`)
    yield* expect(new Set(ids).size === n, () => `${n} starts gave ${new Set(ids).size} distinct ids`)
    const twice = ids.filter((id) => trace.of(id).join(",") !== "run s1,run s2,run s3")
    yield* expect(twice.length === 0, () => `${twice.length} of ${n} executions did not run each step exactly once (e.g. ${twice[0]}: [${trace.of(twice[0]!).join(", ")}])`)
    const expected = ["→s1 start", "s1→s2 step", "s2→s3 step", "s3→done step"]
    yield* Effect.forEach(ids, (id) => expectHistory(id, `execution ${id}`, expected), { concurrency: 16, discard: true })
    const listed = yield* Runtime.list({ procedure: load.concurrent.name, status: ["succeeded"], limit: n + 1 })
    yield* expect(listed.length === n, () => `the store lists ${listed.length} succeeded executions of ${n}`)
    return { millis, detail: `${n.toLocaleString("en-US")} executions at once: each step ran once, each ended once (succeeded), in ${Math.round(millis).toLocaleString("en-US")} ms (${Math.round(n * 4 / (millis / 1000)).toLocaleString("en-US")} transitions/s)` }
  })

/** Transition overhead: executions of `steps` no-op steps, one at a time; wall-clock µs per committed transition. */
export const overhead = (load: Load, executions: number, steps: number) =>
  Effect.gen(function*() {
    // a first execution warms the code paths up; it is not counted
    yield* Effect.flatMap(Runtime.start(load.overhead, {}), Runtime.await)
    const began = yield* wallMillis
    for (let i = 0; i < executions; i++) {
      const id = yield* Runtime.start(load.overhead, {})
      yield* expectEnd(yield* Runtime.await(id), "transition overhead", "succeeded", "done")
    }
    // the start, then one transition per step
    const transitions = executions * (steps + 1)
    const micros = ((yield* wallMillis) - began) * 1000 / transitions
    return { micros, transitions }
  })
