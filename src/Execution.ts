/**
 * The data of an execution: its id, status, snapshot, history and error log. All of
 * it is plain, JSON-encodable data described by Schemas, so stores can persist it and
 * front ends can send it.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { maxReasonLength as maxReason } from "./internal/limits.js"
import { chartEvents } from "./internal/chartView.js"
import { acceptedTags, lineOf } from "./internal/compound.js"
import { stateOf } from "./internal/states.js"
import { isTerminal as isTerminalStatus, statuses, terminal } from "./internal/statuses.js"
import type * as Procedure from "./Procedure.js"

/**
 * The id of an execution.
 *
 * @since 0.1.0
 * @category models
 */
export const ExecutionId = Schema.String.pipe(Schema.brand("proctor/ExecutionId"))

/**
 * @since 0.1.0
 * @category models
 */
export type ExecutionId = typeof ExecutionId.Type

/**
 * Where an execution stands.
 *
 * - `running`: a step is running
 * - `waiting`: a wait state waits for an event or its timer
 * - `paused`: stopped by `Runtime.pause`; `Runtime.resume` continues it
 * - `needs_intervention`: a step failed and asks a person (retry, skip, rollback, cancel)
 * - `compensating`: compensations of completed steps are running
 * - `succeeded`, `failed`, `cancelled`, `rolled_back`: terminal; one way out: the parent of a
 *   child or region that `succeeded` may undo it (`compensating`, then `rolled_back`)
 *
 * @since 0.1.0
 * @category models
 */
export const Status = Schema.Literal(...statuses)

/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof Status.Type

/**
 * The terminal statuses: an execution in one runs no more steps and takes no command or
 * event. The one way out: a child or region that `succeeded` is undone when its parent
 * rolls it back (→ `compensating` → `rolled_back`).
 *
 * @since 0.1.0
 * @category models
 */
export const terminalStatuses: ReadonlySet<Status> = terminal

/**
 * @since 0.1.0
 * @category guards
 */
export const isTerminal: (status: Status) => boolean = isTerminalStatus

/**
 * A summary of an error, as kept in the snapshot and the error log.
 *
 * @since 0.1.0
 * @category models
 */
export const ErrorInfo = Schema.Struct({
  tag: Schema.String,
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorInfo = typeof ErrorInfo.Type

/**
 * The current, committed state of an execution. `context` is the encoded (JSON) form
 * of the procedure's context Schema.
 *
 * @since 0.1.0
 * @category models
 */
export const Snapshot = Schema.Struct({
  id: Schema.String,
  procedure: Schema.String,
  version: Schema.Number,
  state: Schema.String,
  status: Status,
  context: Schema.Unknown,
  /** the seq of the transition that entered the current state: with `id` and `state` it names the visit */
  visit: Schema.Number,
  /** failed attempts of the current step */
  attempt: Schema.Number,
  /** the seq of the last committed transition */
  seq: Schema.Number,
  /** bumped by every commit; a commit names the version it expects (optimistic concurrency) */
  rowVersion: Schema.Number,
  tenant: Schema.optional(Schema.String),
  parentId: Schema.optional(Schema.String),
  idempotencyKey: Schema.optional(Schema.String),
  /** the final state's outcome, once terminal */
  outcome: Schema.optional(Schema.String),
  /** the error that stopped the execution, if one did */
  error: Schema.optional(ErrorInfo),
  /** the epoch millis at which the current wait state's timer fires */
  timerDueAt: Schema.optional(Schema.Number),
  /** while compensating: the status to end in */
  compensateTo: Schema.optional(Schema.Literal("failed", "rolled_back")),
  /**
   * the shape of the definition the execution started on (states, kinds, targets, events);
   * a runtime whose definition of the same name and version has another shape leaves the
   * execution alone. Absent in executions stored before it was kept.
   */
  fingerprint: Schema.optional(Schema.String),
  /**
   * for a procedure with history states (`Procedure.history`): each compound state's
   * last active leaf when it was left, by the compound's path. Absent otherwise.
   */
  history: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /**
   * several runtimes on one store (`Cluster.layer`): the runner that holds the execution's
   * shard (`host:port`), in what `get` answers; absent elsewhere
   */
  runner: Schema.optional(Schema.String),
  startedAt: Schema.Number,
  /** when the current state was entered */
  enteredAt: Schema.Number,
  updatedAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Snapshot extends Schema.Schema.Type<typeof Snapshot> {}

/**
 * What caused a transition: `start`, `step`, `event:<Tag>` (the event's tag follows the
 * colon), `timer`, `failure`, `retry`, `skip`, `pause`, `resume`, `cancel`, `rollback`,
 * `compensated`, `defect`, `migrate` (moved to another version of its procedure by
 * `Runtime.migrate`; the row's `reason` names both versions). Stored as this string; read
 * an event's tag with `eventOf`.
 *
 * @since 0.1.0
 * @category models
 */
export const Cause = Schema.Union(
  Schema.Literal("start", "step", "timer", "failure", "retry", "skip", "pause", "resume", "cancel", "rollback", "compensated", "defect", "migrate"),
  Schema.TemplateLiteral("event:", Schema.String)
)

/**
 * @since 0.1.0
 * @category models
 */
export type Cause = typeof Cause.Type

/**
 * The cause of a transition made by the event tagged `tag`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const eventCause = (tag: string): Cause => `event:${tag}`

/**
 * The tag of the event that caused a transition, or `undefined` when no event did.
 *
 * @since 0.1.0
 * @category getters
 */
export const eventOf = (cause: Cause | (string & {})): string | undefined => cause.startsWith("event:") ? cause.slice("event:".length) : undefined

/**
 * One committed transition of an execution's history; `cause` says what caused it.
 *
 * @since 0.1.0
 * @category models
 */
export const Transition = Schema.Struct({
  executionId: Schema.String,
  seq: Schema.Number,
  from: Schema.String,
  to: Schema.String,
  status: Status,
  cause: Cause,
  /** the encoded event, for `event:<Tag>` transitions */
  event: Schema.optional(Schema.Unknown),
  /**
   * why the execution was cancelled, for `cancel` transitions given one (`Runtime.cancel(id, { reason })`);
   * for `migrate` transitions, the versions it moved between (`version 1 -> 2`)
   */
  reason: Schema.optional(Schema.String),
  at: Schema.Number,
  /** milliseconds spent in `from` */
  duration: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Transition extends Schema.Schema.Type<typeof Transition> {}

/**
 * One entry of an execution's error log: every failed attempt, failed compensation
 * and discarded event is recorded here.
 *
 * @since 0.1.0
 * @category models
 */
export const ErrorEntry = Schema.Struct({
  executionId: Schema.String,
  state: Schema.String,
  attempt: Schema.Number,
  tag: Schema.String,
  message: Schema.String,
  transient: Schema.Boolean,
  at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ErrorEntry extends Schema.Schema.Type<typeof ErrorEntry> {}

/**
 * What `Runtime.watch` emits: the execution after a commit that changed its state or status.
 *
 * @since 0.1.0
 * @category models
 */
export const ExecutionEvent = Schema.Struct({
  executionId: Schema.String,
  procedure: Schema.String,
  seq: Schema.Number,
  from: Schema.String,
  state: Schema.String,
  status: Status,
  /** the transition's cause, or `store` for a change `/events` found in the store (made by another process) */
  cause: Schema.Union(Cause, Schema.Literal("store")),
  at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ExecutionEvent extends Schema.Schema.Type<typeof ExecutionEvent> {}

/**
 * Filters for `Runtime.list`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListFilter {
  readonly status?: Status | ReadonlyArray<Status> | undefined
  readonly procedure?: string | undefined
  readonly state?: string | undefined
  readonly tenant?: string | undefined
  /** the children of this execution (the executions its `Procedure.child` states started) */
  readonly parentId?: string | undefined
  /** @default 100 */
  readonly limit?: number | undefined
  readonly offset?: number | undefined
}

/**
 * An operator command: what `Runtime.pause`, `resume`, `cancel`, `rollback`, `retry` and
 * `skip` ask of an execution.
 *
 * @since 0.1.0
 * @category models
 */
export const Command = Schema.Literal("pause", "resume", "cancel", "rollback", "retry", "skip")

/**
 * @since 0.1.0
 * @category models
 */
export type Command = typeof Command.Type

/**
 * Every command, in the order front ends show them.
 *
 * @since 0.1.0
 * @category constants
 */
export const commands: ReadonlyArray<Command> = Command.literals

/**
 * Why an execution in `status` refuses `command` (the hint of its `InvalidTransition`), or
 * `undefined` when it accepts it. This is the one table of which command each status
 * allows: the transition function refuses commands with it, and `allowedOperations`
 * reports it, so front ends cannot disagree with the runtime.
 *
 * @since 0.1.0
 * @category rules
 */
export const refusal = (command: Command, status: Status): string | undefined => {
  const ended = isTerminal(status)
  switch (command) {
    case "pause":
      return status === "running" || status === "waiting" ? undefined
        : status === "paused" ? "It is already paused; call resume to continue it."
        : status === "needs_intervention" ? "It is already stopped for a person; call retry, skip, rollback or cancel."
        : status === "compensating" ? "It is rolling back; wait for the rollback to finish."
        : "It has already ended."
    case "resume":
      return status === "paused" ? undefined : "Only a paused execution can be resumed."
    case "cancel":
      return ended ? "It has already ended." : undefined
    case "rollback":
      return ended ? "It has already ended." : status === "compensating" ? "It is already rolling back." : undefined
    case "retry":
      return status === "needs_intervention" ? undefined
        : ended ? "It has ended; fix the cause and start a new execution (only an execution in needs_intervention can be retried)."
        : "Only an execution in needs_intervention can be retried."
    case "skip":
      return ended ? "It has ended and cannot move to another state; start a new execution."
        : status === "compensating" ? "It is rolling back and cannot move to another state."
        : undefined
  }
}

/**
 * What an execution accepts now: the commands its status allows, and the tags of the
 * events its current state handles.
 *
 * @since 0.1.0
 * @category models
 */
export const AllowedOperations = Schema.Struct({
  /** the commands the runtime accepts now; `skip` may go to any state of the procedure */
  commands: Schema.Array(Command),
  /**
   * the event tags the current wait state handles (while paused, they are handled on
   * resume). An event with a guard is listed: its guard decides when it arrives.
   */
  events: Schema.Array(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface AllowedOperations extends Schema.Schema.Type<typeof AllowedOperations> {}

/**
 * What an execution accepts now, computed from the same rules as the transition function
 * (`refusal` for commands; the wait state's handlers for events). Front ends (the
 * dashboard, the HTTP API, the CLI, the MCP server) show these instead of keeping their
 * own table. `procedure` is the definition the execution runs on.
 *
 * @since 0.1.0
 * @category rules
 */
export const allowedOperations = (
  snapshot: Pick<Snapshot, "status" | "state"> & { readonly context?: unknown },
  procedure: { readonly states: { readonly [name: string]: Procedure.AnyState } }
): AllowedOperations => {
  const state = stateOf(procedure, snapshot.state)
  const open = snapshot.status === "waiting" || snapshot.status === "paused"
  return {
    commands: commands.filter((command) => refusal(command, snapshot.status) === undefined),
    // in a tree of states, the wait's enclosing compound states handle events too; an SCXML
    // chart takes the events its active states' transitions name
    events: !open ? [] : state?._tag === "Wait" ? acceptedTags(procedure, snapshot.state) : state?._tag === "Chart" ? chartEvents(state, snapshot.context) : []
  }
}

/**
 * The active configuration of an execution: its state (the active leaf's full path) and
 * the compound states that hold it, from the top (`["deploy", "deploy.api"]`). For a
 * procedure without compound states, the state alone.
 *
 * @since 0.1.0
 * @category getters
 */
export const configuration = (snapshot: Pick<Snapshot, "state">): ReadonlyArray<string> =>
  snapshot.state === "" ? [] : lineOf(snapshot.state).reverse()

/**
 * The longest reason a cancel may record (`Runtime.cancel(id, { reason })`), in
 * characters; an empty one is refused too. Front ends check it before they send.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxReasonLength: number = maxReason
