/**
 * The five flow patterns `Validate.run` runs on the configured store — linear, branching
 * (on a step's result and on events), looping, error recovery (retries, then a handler
 * state) and timeout (a step's timeout, a wait's timer) — each checked against the
 * history, the error log and the replay (`Runtime.verify`) it must leave. Their procedures
 * are made per run and named `proctor.validate.*`; what their steps did is kept in the
 * run's own memory (`Trace`).
 */
import { Duration, Effect, Schedule, Schema } from "effect"
import type { Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import { expect } from "./validateModel.js"

/** What the steps of a run did: one line per run of a step or compensation, by execution. */
export class Trace {
  private readonly lines = new Map<string, Array<string>>()
  record(executionId: string, line: string): void {
    const lines = this.lines.get(executionId)
    if (lines === undefined) this.lines.set(executionId, [line])
    else lines.push(line)
  }
  of(executionId: string): ReadonlyArray<string> {
    return this.lines.get(executionId) ?? []
  }
}

/** A step that records its run in the trace and does nothing else. */
export const traced = (trace: Trace, what: string = "run") => <C>(args: Procedure.StepArgs<C>) =>
  Effect.sync(() => trace.record(args.executionId, `${what} ${args.state}`))

/** `from→to cause` per transition: what the checks compare. */
export const rows = (history: ReadonlyArray<Transition>): ReadonlyArray<string> => history.map((t) => `${t.from}→${t.to} ${t.cause}`)

/** Fails unless the execution's history is `expected`, row for row, and replays to its stored state. */
export const expectHistory = (id: string, what: string, expected: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const actual = rows(yield* Runtime.history(id))
    yield* expect(
      actual.length === expected.length && actual.every((r, i) => r === expected[i]),
      () => `${what}: the history is [${actual.join(", ")}], expected [${expected.join(", ")}]`
    )
    const replay = yield* Runtime.verify(id)
    yield* expect(replay.ok, () => `${what}: replaying the history through the definition disagrees with the store: ${JSON.stringify(replay)}`)
  })

/** Fails unless the execution ended with `status` (and `state`). */
export const expectEnd = (end: Snapshot, what: string, status: string, state: string) =>
  expect(end.status === status && end.state === state, () => `${what}: ended ${end.status} in "${end.state}", expected ${status} in "${state}"`)

/** Polls until the execution waits (or ends); the check's timeout bounds it. */
export const awaitWaiting = (id: string) =>
  Effect.gen(function*() {
    while (true) {
      const s = yield* Runtime.get(id)
      if (s.status === "waiting" || isTerminal(s.status)) return s
      yield* Effect.sleep("5 millis")
    }
  })

const Empty = Schema.Struct({})
const Go = Schema.TaggedStruct("Go", {})
const Approve = Schema.TaggedStruct("Approve", {})
const Reject = Schema.TaggedStruct("Reject", {})

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { attempt: Schema.Number }) {}
class Refused extends Schema.TaggedError<Refused>()("Refused", {}) {}

/** The procedures of the five patterns, recording into `trace`. */
export const makeFlows = (trace: Trace) => {
  const run = traced(trace)
  const linear = Procedure.make("proctor.validate.linear", { version: 1, input: Empty, context: Schema.Struct({ steps: Schema.Number }), init: () => ({ steps: 0 }) }, {
    initial: "a",
    states: {
      a: Procedure.step({ run, update: (_, c) => ({ steps: c.steps + 1 }), next: "b" }),
      b: Procedure.step({ run, update: (_, c) => ({ steps: c.steps + 1 }), next: "c" }),
      c: Procedure.step({ run, update: (_, c) => ({ steps: c.steps + 1 }), next: "done" }),
      done: Procedure.final()
    }
  })
  const branching = Procedure.make("proctor.validate.branching", {
    version: 1,
    input: Schema.Struct({ amount: Schema.Number }),
    context: Schema.Struct({ amount: Schema.Number }),
    events: Schema.Union(Approve, Reject)
  }, {
    initial: "classify",
    states: {
      classify: Procedure.step({
        run: (args) => Effect.as(run(args), args.context.amount > 100),
        next: (large) => large ? "review" : "auto",
        targets: ["review", "auto"]
      }),
      review: Procedure.wait({ on: { Approve: "approved", Reject: "rejected" } }),
      auto: Procedure.step({ run, next: "approved" }),
      approved: Procedure.final(),
      rejected: Procedure.final({ outcome: "rejected" })
    }
  })
  const looping = Procedure.make("proctor.validate.looping", {
    version: 1,
    input: Schema.Struct({ times: Schema.Number }),
    context: Schema.Struct({ times: Schema.Number, n: Schema.Number }),
    init: (input) => ({ times: input.times, n: 0 })
  }, {
    initial: "count",
    states: {
      count: Procedure.step({
        run: (args) => Effect.sync(() => trace.record(args.executionId, `run count ${args.idempotencyKey}`)),
        update: (_, c) => ({ ...c, n: c.n + 1 }),
        // `next` sees the context before `update`
        next: (_, c) => c.n + 1 < c.times ? "count" : "done",
        targets: ["count", "done"]
      }),
      done: Procedure.final()
    }
  })
  const recovery = Procedure.make("proctor.validate.recovery", { version: 1, input: Empty, context: Empty }, {
    initial: "flaky",
    states: {
      // fails transiently twice, then succeeds: retried by its Schedule
      flaky: Procedure.step({
        run: (args) => Effect.zipRight(run(args), args.attempt <= 2 ? Effect.fail(new Flaky({ attempt: args.attempt })) : Effect.void),
        transient: ["Flaky"],
        retry: Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(5))),
        next: "refuse"
      }),
      // fails for good with a business error: handled by going to `handle`
      refuse: Procedure.step({ run: (args) => Effect.zipRight(run(args), Effect.fail(new Refused())), onFailure: { goto: "handle" }, next: "done" }),
      handle: Procedure.step({ run, next: "recovered" }),
      done: Procedure.final(),
      recovered: Procedure.final({ outcome: "recovered" })
    }
  })
  const timeout = Procedure.make("proctor.validate.timeout", { version: 1, input: Empty, context: Empty, events: Go }, {
    initial: "slow",
    states: {
      // runs past its timeout, is not retried (TimeoutError is transient by default: not here), and is handled
      slow: Procedure.step({
        run: (args) => Effect.zipRight(run(args), Effect.sleep("30 seconds")),
        timeout: "50 millis",
        transient: [],
        onFailure: { goto: "hold" },
        next: "done"
      }),
      // a wait whose durable timer fires before any event
      hold: Procedure.wait({ on: { Go: "done" }, after: { delay: "50 millis", goto: "expired" } }),
      done: Procedure.final(),
      expired: Procedure.final({ outcome: "expired" })
    }
  })
  return { linear, branching, looping, recovery, timeout }
}

/** The flows' procedures. */
export type Flows = ReturnType<typeof makeFlows>

/** Linear: three steps in order, each once, the context updated by each. */
export const linearFlow = (flows: Flows, trace: Trace) =>
  Effect.gen(function*() {
    const id = yield* Runtime.start(flows.linear, {})
    const end = yield* Runtime.await(id)
    yield* expectEnd(end, "linear", "succeeded", "done")
    yield* expect((end.context as { steps?: unknown }).steps === 3, () => `linear: the context counts ${JSON.stringify(end.context)} steps, expected 3`)
    yield* expectHistory(id, "linear", ["→a start", "a→b step", "b→c step", "c→done step"])
    yield* expect(trace.of(id).join(",") === "run a,run b,run c", () => `linear: the steps ran [${trace.of(id).join(", ")}], expected a, b, c once each`)
    return "a → b → c → done: each step ran once, in order; the history replays to the stored state"
  })

/** Branching: a step's result picks the branch; a wait's events pick the next. */
export const branchingFlow = (flows: Flows) =>
  Effect.gen(function*() {
    const small = yield* Runtime.start(flows.branching, { amount: 10 })
    const approved = yield* Runtime.start(flows.branching, { amount: 500 })
    const rejected = yield* Runtime.start(flows.branching, { amount: 900 })
    yield* expectEnd(yield* Runtime.await(small), "branching (small amount)", "succeeded", "approved")
    yield* expectHistory(small, "branching (small amount)", ["→classify start", "classify→auto step", "auto→approved step"])
    for (const [id, event, state] of [[approved, "Approve", "approved"], [rejected, "Reject", "rejected"]] as const) {
      const waiting = yield* awaitWaiting(id)
      yield* expect(waiting.status === "waiting" && waiting.state === "review", () => `branching: a large amount is in "${waiting.state}" (${waiting.status}), expected waiting in "review"`)
      yield* Runtime.send(id, { _tag: event })
      yield* expectEnd(yield* Runtime.await(id), `branching (${event})`, "succeeded", state)
      yield* expectHistory(id, `branching (${event})`, ["→classify start", "classify→review step", `review→${state} event:${event}`])
    }
    return "a step's result chose auto or review; Approve and Reject each took their branch"
  })

/** Looping: a step that goes back to itself until its exit condition, each visit once. */
export const loopingFlow = (flows: Flows, trace: Trace) =>
  Effect.gen(function*() {
    const times = 5
    const id = yield* Runtime.start(flows.looping, { times })
    yield* expectEnd(yield* Runtime.await(id), "looping", "succeeded", "done")
    yield* expectHistory(id, "looping", ["→count start", ...Array.from({ length: times - 1 }, () => "count→count step"), "count→done step"])
    const keys = new Set(trace.of(id))
    yield* expect(trace.of(id).length === times && keys.size === times, () => `looping: the step ran ${trace.of(id).length} times with ${keys.size} idempotency keys, expected ${times} of each`)
    return `a step looped ${times} times, then left by its exit condition; each visit ran once, with its own idempotency key`
  })

/** Error recovery: transient failures retried by the Schedule; a business error handled by a state. */
export const recoveryFlow = (flows: Flows, trace: Trace) =>
  Effect.gen(function*() {
    const id = yield* Runtime.start(flows.recovery, {})
    const end = yield* Runtime.await(id)
    yield* expectEnd(end, "error recovery", "succeeded", "recovered")
    yield* expectHistory(id, "error recovery", ["→flaky start", "flaky→refuse step", "refuse→handle failure", "handle→recovered step"])
    const errors = (yield* Runtime.errors(id)).map((e) => `${e.state}#${e.attempt} ${e.tag} ${e.transient ? "transient" : "final"}`)
    const expected = ["flaky#1 Flaky transient", "flaky#2 Flaky transient", "refuse#1 Refused final"]
    yield* expect(errors.join(",") === expected.join(","), () => `error recovery: the error log is [${errors.join(", ")}], expected [${expected.join(", ")}]`)
    const runs = trace.of(id).join(",")
    yield* expect(runs === "run flaky,run flaky,run flaky,run refuse,run handle", () => `error recovery: the steps ran [${runs}], expected flaky 3 times, then refuse and handle once`)
    return "two transient failures were retried by the step's Schedule and logged; a business error went to its handler state"
  })

/** Timeout: a step past its timeout fails with TimeoutError; a wait's timer fires. */
export const timeoutFlow = (flows: Flows) =>
  Effect.gen(function*() {
    const id = yield* Runtime.start(flows.timeout, {})
    const end = yield* Runtime.await(id)
    yield* expectEnd(end, "timeout", "succeeded", "expired")
    yield* expectHistory(id, "timeout", ["→slow start", "slow→hold failure", "hold→expired timer"])
    const errors = yield* Runtime.errors(id)
    yield* expect(errors.length === 1 && errors[0]!.tag === "TimeoutError", () => `timeout: the error log is [${errors.map((e) => e.tag).join(", ")}], expected one TimeoutError`)
    return `a step ran past its timeout of ${Duration.format(Duration.millis(50))} and was handled; a wait's durable timer fired`
  })
