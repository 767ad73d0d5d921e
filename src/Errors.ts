/**
 * The typed errors of Proctor. Every error is a `Schema.TaggedError`, so it can be
 * stored in the error log, sent over the wire and matched with `Effect.catchTag`.
 * Each message says what happened and what to do next.
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"

/**
 * A step ran past its `timeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeoutError extends Schema.TaggedError<TimeoutError>()("TimeoutError", {
  executionId: Schema.String,
  state: Schema.String,
  timeout: Schema.String
}) {
  override get message(): string {
    return `Step "${this.state}" of execution ${this.executionId} ran past its timeout of ${this.timeout}. ` +
      `Raise the step's \`timeout\`, or list "TimeoutError" in its \`transient\` option to retry it.`
  }
}

/**
 * An input, context or event did not match its Schema (`kind` `"Schema"`, the default), or
 * its encoded form holds a value the store's JSON cannot keep as it is (`kind` `"JSON"`:
 * `NaN`, `Infinity`, a bigint, `undefined` in an array, a `Date` or other non-plain object,
 * a cycle). Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ValidationError extends Schema.TaggedError<ValidationError>()("ValidationError", {
  procedure: Schema.String,
  subject: Schema.Literal("input", "context", "event"),
  issue: Schema.String,
  kind: Schema.optional(Schema.Literal("Schema", "JSON"))
}) {
  override get message(): string {
    if (this.kind === "JSON") {
      return `The ${this.subject} given to procedure "${this.procedure}" cannot be stored: ${this.issue}. ` +
        `Use values JSON can hold (finite numbers, strings, booleans, null, arrays, plain objects), or a Schema ` +
        `that encodes to them (e.g. Schema.Date, Schema.BigInt); nothing was written.`
    }
    return `The ${this.subject} given to procedure "${this.procedure}" does not match its Schema: ${this.issue}. ` +
      `Fix the ${this.subject} to match the Schema declared in the procedure; nothing was written.`
  }
}

/**
 * A step failed with an error that is not transient (a business error), or a user
 * function (`next`, `update`) threw. The step was not retried. What happens next (and so
 * what a person can do) depends on the step's `onFailure`: the execution's stored error
 * says it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExecutionError extends Schema.TaggedError<ExecutionError>()("ExecutionError", {
  executionId: Schema.String,
  state: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return `Step "${this.state}" of execution ${this.executionId} failed: ${describe(this.cause)}. ` +
      `If this error is temporary, list its tag in the step's \`transient\` option so it is retried.`
  }
}

/**
 * A step kept failing with a transient error until its retry Schedule gave up. What
 * happens next depends on the step's `onFailure`, as for `ExecutionError`.
 *
 * @since 0.1.0
 * @category errors
 */
export class MaxRetriesExceeded extends Schema.TaggedError<MaxRetriesExceeded>()("MaxRetriesExceeded", {
  executionId: Schema.String,
  state: Schema.String,
  attempts: Schema.Number,
  lastError: Schema.Defect
}) {
  override get message(): string {
    return `Step "${this.state}" of execution ${this.executionId} gave up after ${this.attempts} attempts; ` +
      `last error: ${describe(this.lastError)}. If the cause passes with time, widen the step's \`retry\` Schedule.`
  }
}

/**
 * The execution needs a person: it stopped in `needs_intervention`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ManualIntervention extends Schema.TaggedError<ManualIntervention>()("ManualIntervention", {
  executionId: Schema.String,
  state: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Execution ${this.executionId} needs a person at state "${this.state}": ${this.reason}. ` +
      `Call Runtime.retry to run the step again, Runtime.skip to move to another state, ` +
      `Runtime.rollback to undo completed steps, or Runtime.cancel.`
  }
}

/**
 * An execution made `maxTransitionsWithoutWaiting` transitions in a row without waiting for
 * an event, a timer or a person: a runaway loop. It was failed alone; the rest of the
 * runtime carried on.
 *
 * @since 0.1.0
 * @category errors
 */
export class LoopLimitExceeded extends Schema.TaggedError<LoopLimitExceeded>()("LoopLimitExceeded", {
  executionId: Schema.String,
  procedure: Schema.String,
  /** the states of the last transitions, in the order they were first seen */
  states: Schema.Array(Schema.String),
  limit: Schema.Number
}) {
  override get message(): string {
    return `Execution ${this.executionId} of procedure "${this.procedure}" made ${this.limit} transitions in a row ` +
      `without waiting for an event, a timer or a person, looping through ${this.states.map((s) => `"${s}"`).join(", ")}, ` +
      `and was failed as a runaway loop. If the loop is meant to run this long, raise \`maxTransitionsWithoutWaiting\` ` +
      `in the procedure's definition (Procedure.make, next to \`states\`; default 10000), ` +
      `or let each round wait (a \`wait\` state with an \`after\` timer).`
  }
}

/**
 * An operation that the execution's current status does not allow (for example
 * resuming an execution that is not paused), or an event the current state does not accept.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTransition extends Schema.TaggedError<InvalidTransition>()("InvalidTransition", {
  executionId: Schema.String,
  operation: Schema.String,
  status: Schema.String,
  state: Schema.String,
  hint: Schema.String
}) {
  override get message(): string {
    return `Cannot ${this.operation} execution ${this.executionId}: it is ${this.status} in state "${this.state}". ${this.hint}`
  }
}

/**
 * `Runtime.sendAndWait` was given `expectVersion` (the snapshot `seq` the caller last saw)
 * and the execution had moved on to another `seq`, when the event was sent or when it was
 * to be applied. The event was not applied: nothing changed but, if it was already in the
 * inbox, an error-log entry saying it was refused.
 *
 * @since 0.1.0
 * @category errors
 */
export class VersionConflict extends Schema.TaggedError<VersionConflict>()("VersionConflict", {
  executionId: Schema.String,
  expected: Schema.Number,
  actual: Schema.Number,
  state: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `Execution ${this.executionId} has moved on: it is at seq ${this.actual} (${this.status} in state ` +
      `"${this.state}"), not at the seq ${this.expected} given as expectVersion, so the event was not applied. ` +
      `Read the execution again (Runtime.get) and send the event with the new seq if it still applies.`
  }
}

/**
 * `Runtime.sendAndWait` stopped waiting after its `timeout`. The event is in the durable
 * inbox and still stands: it will be consumed or discarded like any event `send` accepted.
 *
 * @since 0.1.0
 * @category errors
 */
export class SendTimeout extends Schema.TaggedError<SendTimeout>()("SendTimeout", {
  executionId: Schema.String,
  inboxSeq: Schema.Number,
  timeout: Schema.String
}) {
  override get message(): string {
    return `The event (inbox seq ${this.inboxSeq}) sent to execution ${this.executionId} was not consumed within ` +
      `${this.timeout}. It is in the durable inbox and still stands: it will be consumed or discarded. Do not send it ` +
      `again unless it must happen twice; Runtime.get, Runtime.watch or Runtime.errors show what became of it.`
  }
}

/**
 * No execution with that id exists in the store.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExecutionNotFound extends Schema.TaggedError<ExecutionNotFound>()("ExecutionNotFound", {
  executionId: Schema.String
}) {
  override get message(): string {
    return `No execution with id "${this.executionId}" exists. Check the id (Runtime.list shows the known ones) ` +
      `and that the runtime uses the same store it was started on.`
  }
}

/**
 * A child execution (a `Procedure.child` state) ended without succeeding: it failed, was
 * cancelled or rolled back. The parent's state fails with this error (it is not transient,
 * so it is not retried); the state's `onFailure` decides what follows.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChildFailed extends Schema.TaggedError<ChildFailed>()("ChildFailed", {
  executionId: Schema.String,
  state: Schema.String,
  childId: Schema.String,
  procedure: Schema.String,
  status: Schema.String,
  error: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `Child execution ${this.childId} (procedure "${this.procedure}") of state "${this.state}" of execution ` +
      `${this.executionId} ended ${this.status}${this.error === undefined ? "" : ` (${this.error})`}. ` +
      `Its history says why (Runtime.history or \`proctor show ${this.childId}\`); the state's \`onFailure\` decides what follows.`
  }
}

/**
 * A parallel state (`Procedure.parallel`) can no longer be done: a region ended without
 * succeeding (failed, cancelled or rolled back) and its mode can no longer be met. The
 * other regions, running or succeeded, were rolled back first (`rolledBack`, in the order
 * they were);
 * the state fails with this error (not transient: not retried) and its `onFailure`
 * decides what follows.
 *
 * @since 0.1.0
 * @category errors
 */
export class RegionFailed extends Schema.TaggedError<RegionFailed>()("RegionFailed", {
  executionId: Schema.String,
  state: Schema.String,
  /** the region that failed (or, when none did, the first that ended without succeeding) */
  region: Schema.String,
  regionId: Schema.String,
  status: Schema.String,
  error: Schema.optional(Schema.String),
  mode: Schema.String,
  /** the regions the parent rolled back, in the order it did */
  rolledBack: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const undone = this.rolledBack.length === 0 ? "" : `; the other regions were rolled back, those that had succeeded too (${this.rolledBack.join(", ")})`
    return `Region "${this.region}" (execution ${this.regionId}) of parallel state "${this.state}" of execution ` +
      `${this.executionId} ended ${this.status}${this.error === undefined ? "" : ` (${this.error})`}, so the state ` +
      `can no longer be done (mode ${this.mode})${undone}. The region's history says why (Runtime.history or ` +
      `\`proctor show ${this.regionId}\`); the state's \`onFailure\` decides what follows.`
  }
}

/**
 * A step's attempt was not made because the circuit breaker of the dependency it names
 * (`Procedure.step({ dependency })`) is open: the dependency failed too often lately, and
 * calls to it fail fast until `retryAfter` has passed (its cool-down), when a few probe
 * calls test it again. It is transient for the step (its `retry` Schedule backs off and
 * tries again); the breaker's state is per process (see docs/production.md).
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  dependency: Schema.String,
  /** how long until the breaker lets a probe call through */
  retryAfter: Schema.DurationFromMillis
}) {
  override get message(): string {
    return `The circuit breaker of dependency "${this.dependency}" is open (it failed too often lately): the call was ` +
      `not made. Probes go through in ${formatDuration(this.retryAfter)}; the step's retry Schedule tries again ` +
      `(let it outlast the breaker's coolDown).`
  }
}

/**
 * A step's attempt was not made because the bulkhead of the dependency it names is full:
 * `concurrency` attempts run and `queue` more wait already. Transient for the step (its
 * `retry` Schedule backs off and tries again).
 *
 * @since 0.1.0
 * @category errors
 */
export class BulkheadFull extends Schema.TaggedError<BulkheadFull>()("BulkheadFull", {
  dependency: Schema.String,
  concurrency: Schema.Number,
  queue: Schema.Number
}) {
  override get message(): string {
    return `The bulkhead of dependency "${this.dependency}" is full: ${this.concurrency} calls run and ${this.queue} wait, ` +
      `so the call was not made. The step's retry Schedule tries again; raise the bulkhead's \`queue\` or ` +
      `\`concurrency\` if the dependency can take more.`
  }
}

/**
 * A step's attempt was not made because the rate limit of the dependency it names would
 * let it through only after the attempt's timeout: it may call again after `retryAfter`.
 * Transient for the step (its `retry` Schedule backs off and tries again).
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  dependency: Schema.String,
  retryAfter: Schema.DurationFromMillis
}) {
  override get message(): string {
    return `The rate limit of dependency "${this.dependency}" lets the next call through in ${formatDuration(this.retryAfter)}, ` +
      `after the step's timeout, so the call was not made. The step's retry Schedule tries again; raise the step's ` +
      `\`timeout\` to let it wait for its turn instead.`
  }
}

/**
 * `Runtime.start` was refused: the tenant (or the procedure) is over a quota of
 * `Runtime.layer({ quotas })`, its start rate (`limit` `"rate"`) or its number of
 * executions that have not ended (`limit` `"concurrent"`). Nothing was written. Try again
 * after `retryAfter`, or pass `waitForQuota` to `Runtime.start` to wait for room.
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()("QuotaExceeded", {
  procedure: Schema.String,
  /** the tenant whose quota is used up; absent when it is the procedure's */
  tenant: Schema.optional(Schema.String),
  limit: Schema.Literal("rate", "concurrent"),
  /** the quota, in words ("10 starts per 1s", "5 executions at once") */
  quota: Schema.String,
  retryAfter: Schema.DurationFromMillis
}) {
  override get message(): string {
    const whose = this.tenant === undefined ? `procedure "${this.procedure}"` : `tenant "${this.tenant}"`
    const why = this.limit === "rate"
      ? `${whose} is over its start rate (${this.quota})`
      : `${whose} has ${this.quota} that have not ended`
    return `Starting "${this.procedure}" was refused: ${why}; nothing was written. Retry after ` +
      `${formatDuration(this.retryAfter)}${this.limit === "concurrent" ? " (or when one of them ends)" : ""}, or pass ` +
      `\`waitForQuota\` to Runtime.start to wait for room.`
  }
}

/**
 * A procedure definition is wrong in a way its types cannot show: an unknown initial
 * state, an unreachable state, or no way to reach a final state.
 *
 * @since 0.1.0
 * @category errors
 */
export class DefinitionError extends Schema.TaggedError<DefinitionError>()("DefinitionError", {
  procedure: Schema.String,
  state: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const where = this.state === undefined ? "" : ` (state "${this.state}")`
    return `Procedure "${this.procedure}" is not valid${where}: ${this.reason}`
  }
}

/**
 * The store could not read or write. `kind` says which way it failed:
 * `Conflict` (another writer changed the execution first), `Unavailable` (busy,
 * locked, disk full), `Corrupt`, `Incompatible` (schema from a newer version),
 * `ReadOnly`, `Locked`, `Fenced` (several runtimes share the store and this one no longer
 * owns the execution's shard: another runtime runs it now, see docs/scale-out.md), or `Unknown`.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  kind: Schema.Literal("Conflict", "Unavailable", "Corrupt", "Incompatible", "ReadOnly", "Locked", "Fenced", "Unknown"),
  operation: Schema.String,
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Store ${this.operation} failed (${this.kind}): ${this.detail}`
  }
}

/**
 * Every error a Proctor operation can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ProctorError =
  | TimeoutError
  | ValidationError
  | ExecutionError
  | MaxRetriesExceeded
  | ManualIntervention
  | InvalidTransition
  | ExecutionNotFound
  | DefinitionError
  | StoreError
  | VersionConflict
  | SendTimeout
  | CircuitOpen
  | BulkheadFull
  | RateLimited
  | QuotaExceeded

/** a Duration in words, rounded up to the millisecond ("1s 500ms") */
const formatDuration = (d: Duration.Duration): string => Duration.format(Duration.millis(Math.ceil(Duration.toMillis(d))))

/** @internal */
export const describe = (u: unknown): string => {
  if (u instanceof Error && !("_tag" in u)) return u.message || u.name
  if (typeof u === "object" && u !== null) {
    const tagged = u as { _tag?: unknown; message?: unknown }
    const tag = typeof tagged._tag === "string" ? tagged._tag : undefined
    if (typeof tagged.message === "string" && tagged.message !== "") {
      return tag === undefined || tagged.message.startsWith(tag) ? tagged.message : `${tag}: ${tagged.message}`
    }
    const fields = Object.entries(u).filter(([k]) => k !== "_tag")
    let json: string
    try {
      json = fields.length === 0 ? "" : JSON.stringify(Object.fromEntries(fields))
    } catch {
      json = String(u)
    }
    return tag === undefined ? (json || String(u)) : json === "" ? tag : `${tag} ${json}`
  }
  return String(u)
}
