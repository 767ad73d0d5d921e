/**
 * The transition function's vocabulary: its inputs and outputs, how the next snapshot and
 * history row are built from a patch, and the refusals and messages its rules share
 * (`transition.ts` has the rules).
 */
import { Duration } from "effect"
import type { Cause, ErrorInfo, Snapshot, Status, Transition } from "../Execution.js"
import { describe, InvalidTransition } from "../Errors.js"
import type * as Procedure from "../Procedure.js"

/** The actor's view of an execution: the committed snapshot and its decoded context. */
export interface Machine {
  readonly snapshot: Snapshot
  readonly context: unknown
}

export type Input =
  | { readonly _tag: "StepSucceeded"; readonly result: unknown; readonly compensable: boolean }
  | { readonly _tag: "StepFailed"; readonly error: ErrorInfo; readonly compensable: boolean }
  | { readonly _tag: "Event"; readonly event: { readonly _tag: string }; readonly encoded: unknown; readonly compensable?: boolean }
  | { readonly _tag: "TimerFired"; readonly compensable?: boolean }
  | { readonly _tag: "Pause" }
  | { readonly _tag: "Resume" }
  | { readonly _tag: "Cancel"; readonly reason?: string | undefined }
  /**
   * `undo` (the runtime's, for a child or a region its parent rolls back): the reason, in
   * the history; with it, an execution that already succeeded is undone too (its
   * completed steps compensated, then `rolled_back`)
   */
  | { readonly _tag: "Rollback"; readonly compensable: boolean; readonly undo?: string | undefined }
  | { readonly _tag: "Retry" }
  | { readonly _tag: "Skip"; readonly state: string; readonly compensable?: boolean }
  | { readonly _tag: "Compensated" }
  /**
   * a parent's turn for one compensation of a region it rolls back (`regions.ts`): the
   * completed step at `stepSeq` is undone now, in the order the parent runs them across
   * its regions; the run loop serves it (`Serve`)
   */
  | { readonly _tag: "Compensate"; readonly stepSeq: number }
  | { readonly _tag: "GiveUp"; readonly error: ErrorInfo }
  | { readonly _tag: "LoopLimit"; readonly error: ErrorInfo; readonly compensable: boolean }

export type Output =
  | { readonly _tag: "Next"; readonly machine: Machine; readonly transition: Transition }
  /** the event is consumed without a transition (the state does not accept it) */
  | { readonly _tag: "Discard"; readonly reason: ErrorInfo }
  | { readonly _tag: "Reject"; readonly error: InvalidTransition }
  /** accepted, with nothing to commit here: the run loop serves it (a `Compensate`) */
  | { readonly _tag: "Serve" }

export const errorInfo = (error: unknown): ErrorInfo => {
  const tag = typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : error instanceof Error
    ? error.name
    : "Error"
  return { tag, message: describe(error) }
}

// a snapshot's state is a leaf: a step, a wait or a final
export const statusOf = (state: Procedure.AnyState): Status =>
  state._tag === "Step" ? "running" : state._tag === "Wait" || state._tag === "Chart" ? "waiting" : state._tag === "Final" && state.outcome === "failed" ? "failed" : "succeeded"

type Mutable = { -readonly [K in keyof Snapshot]: Snapshot[K] }

/**
 * The next snapshot's required fields, and the fingerprint (which nearly every snapshot
 * has) in the same object literal: a property added after the literal is kept outside the
 * object, 40 B more per snapshot an execution in memory keeps (W1's heap pass). The
 * optional fields that are set follow, always in the same order, so snapshots share a few
 * shapes.
 */
const required = (s: Snapshot, state: string, status: Status, context: unknown, visit: number, attempt: number, enteredAt: number, now: number): Mutable =>
  s.fingerprint === undefined
    ? { id: s.id, procedure: s.procedure, version: s.version, state, status, context, visit, attempt, seq: s.seq + 1, rowVersion: s.rowVersion + 1, startedAt: s.startedAt, enteredAt, updatedAt: now }
    : {
      id: s.id,
      procedure: s.procedure,
      version: s.version,
      state,
      status,
      context,
      visit,
      attempt,
      seq: s.seq + 1,
      rowVersion: s.rowVersion + 1,
      startedAt: s.startedAt,
      enteredAt,
      updatedAt: now,
      fingerprint: s.fingerprint
    }

export const next = (
  machine: Machine,
  now: number,
  cause: Cause,
  patch: Patch,
  context: unknown,
  event?: unknown,
  reason?: string
): Output => {
  const s = machine.snapshot
  const p = patch as Readonly<Record<string, unknown>>
  // built field by field rather than spread and patched: on the hot path, `{ ...s }` with
  // `delete` made a slow dictionary object per transition (`required`)
  const snapshot = required(
    s,
    patch.state ?? s.state,
    patch.status,
    "context" in p ? patch.context : s.context,
    patch.visit ?? s.visit,
    patch.attempt ?? s.attempt,
    patch.enteredAt ?? s.enteredAt,
    now
  )
  if (s.tenant !== undefined) snapshot.tenant = s.tenant
  if (s.parentId !== undefined) snapshot.parentId = s.parentId
  if (s.idempotencyKey !== undefined) snapshot.idempotencyKey = s.idempotencyKey
  const outcome = "outcome" in p ? patch.outcome : s.outcome
  if (outcome !== undefined) snapshot.outcome = outcome
  const error = "error" in p ? patch.error : s.error
  if (error !== undefined) snapshot.error = error
  const timerDueAt = "timerDueAt" in p ? patch.timerDueAt : s.timerDueAt
  if (timerDueAt !== undefined) snapshot.timerDueAt = timerDueAt
  const compensateTo = "compensateTo" in p ? patch.compensateTo : s.compensateTo
  if (compensateTo !== undefined) snapshot.compensateTo = compensateTo
  const history = patch.history ?? s.history
  if (history !== undefined) snapshot.history = history
  const transition: { -readonly [K in keyof Transition]: Transition[K] } = {
    executionId: s.id,
    seq: s.seq + 1,
    from: s.state,
    to: snapshot.state,
    status: snapshot.status,
    cause,
    at: now,
    duration: Math.max(0, now - s.enteredAt)
  }
  if (event !== undefined) transition.event = event
  if (reason !== undefined) transition.reason = reason
  return { _tag: "Next", machine: { snapshot, context }, transition }
}

/**
 * The entry of `target` (a new visit), as `next` with the patch `enter` makes, built
 * without the patch: the most common transition (a step's success into the next step)
 * makes its snapshot, history row and output and nothing else. Both make the snapshot
 * with `required`, so that they make snapshots of the same shapes.
 */
export const entered = (
  machine: Machine,
  now: number,
  cause: Cause,
  target: string,
  state: Procedure.AnyState,
  /** the context as stored, and as the definition's functions see it */
  encoded: unknown,
  context: unknown,
  error: ErrorInfo | undefined,
  event: unknown,
  history: Snapshot["history"]
): Output => {
  const s = machine.snapshot
  const status = statusOf(state)
  const seq = s.seq + 1
  const snapshot = required(s, target, status, encoded, seq, 0, now, now)
  if (s.tenant !== undefined) snapshot.tenant = s.tenant
  if (s.parentId !== undefined) snapshot.parentId = s.parentId
  if (s.idempotencyKey !== undefined) snapshot.idempotencyKey = s.idempotencyKey
  const outcome = state._tag === "Final" ? state.outcome : s.outcome
  if (outcome !== undefined) snapshot.outcome = outcome
  if (error !== undefined) snapshot.error = error
  if (state._tag === "Wait" && state.after !== undefined) snapshot.timerDueAt = now + Duration.toMillis(state.after.delay)
  if (s.compensateTo !== undefined) snapshot.compensateTo = s.compensateTo
  const kept = history ?? s.history
  if (kept !== undefined) snapshot.history = kept
  const transition: { -readonly [K in keyof Transition]: Transition[K] } = {
    executionId: s.id,
    seq,
    from: s.state,
    to: target,
    status,
    cause,
    at: now,
    duration: Math.max(0, now - s.enteredAt)
  }
  if (event !== undefined) transition.event = event
  return { _tag: "Next", machine: { snapshot, context }, transition }
}

/** Fields to set; `undefined` removes a field. */
export type Patch = { readonly [K in keyof Snapshot]?: Snapshot[K] | undefined } & { readonly status: Status }

export const reject = (machine: Machine, operation: string, hint: string): Output => ({
  _tag: "Reject",
  error: new InvalidTransition({
    executionId: machine.snapshot.id,
    operation,
    status: machine.snapshot.status,
    state: machine.snapshot.state,
    hint
  })
})

export const failForGood = (compensable: boolean) =>
  compensable ? { status: "compensating" as const, compensateTo: "failed" as const } : { status: "failed" as const }

/** The error-log message of an event a guard refused: it names the guard (by its function's name, when it has one). */
export const guardRefused = (guard: (...args: ReadonlyArray<never>) => unknown, tag: string, state: string): string =>
  `event "${tag}" was refused by the guard of on.${tag} in state "${state}"${
    guard.name === "" || guard.name === "guard" ? "" : ` (${guard.name})`
  }; it was discarded and the execution still waits`

/**
 * The hint of a step that failed for good under `onFailure: "fail"`: the execution ends
 * `failed`, where retry and skip are refused, so it names what a person can do instead.
 */
export const failedHint = (compensable: boolean): string =>
  `The execution ${compensable ? "runs the compensations of its completed steps, then " : ""}ends failed, ` +
  `which takes no more commands: fix the cause and start a new execution, or give the step ` +
  `\`onFailure: "intervene"\` to have it stop for a person instead.`

/**
 * A person's command that moves an execution on from `needs_intervention` removes the
 * intervention's error from the snapshot: its hint (retry, skip, ...) is about a status
 * the execution has left. The error log keeps the step's failed attempts.
 */
export const handled = (status: Status): { readonly error?: undefined } => status === "needs_intervention" ? { error: undefined } : {}
