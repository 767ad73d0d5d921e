/**
 * The pure transition function: given a procedure, the committed snapshot with its
 * decoded context, and an input (a step's result, an event, a timer, an operator
 * command), it returns the next snapshot and history row. It runs nothing: the actor
 * executes what the new snapshot calls for and commits.
 */
import { Either } from "effect"
import type { Cause, ErrorInfo, Snapshot, Transition } from "../Execution.js"
import { eventCause, eventOf, refusal } from "../Execution.js"
import { ExecutionError, LoopLimitExceeded, ManualIntervention, ValidationError } from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import { handlerOf, stateOf } from "../Procedure.js"
import type { ChartContext, ChartOutcome } from "./chartState.js"
import { chartEvent, chartTimer, enterChart } from "./chartState.js"
import type { Compiled } from "./compile.js"
import { acceptedTags, handlersLine } from "./compound.js"
import { defaultLoopLimit, maxReasonLength } from "./limits.js"
import type { Tree } from "./tree.js"
import { macrostep } from "./tree.js"

// the prepared procedure the transition function reads lives in compile.ts, its vocabulary in transitionParts.ts
export type { Compiled } from "./compile.js"
export { compile, fingerprint, jsonIssue, procedureKey } from "./compile.js"
export type { Input, Machine, Output } from "./transitionParts.js"
export { errorInfo } from "./transitionParts.js"
import type { Input, Machine, Output, Patch } from "./transitionParts.js"
import { entered, errorInfo, failedHint, failForGood, guardRefused, handled, next, reject, statusOf } from "./transitionParts.js"

/** What an entry needs besides its target. */
interface EnterExtra {
  readonly error?: ErrorInfo | undefined
  /** the encoded event, for the history row */
  readonly event?: unknown
  readonly compensable?: boolean | undefined
  /** the context already encoded */
  readonly encoded?: Either.Either<unknown, ValidationError> | undefined
  /** in a tree: the path of the state whose transition it is (the current leaf by default) */
  readonly source?: string | undefined
  /** in a tree: the transition's actions and the event they see */
  readonly actions?: ReadonlyArray<Procedure.EventAction<any, any>> | undefined
  readonly decoded?: unknown
}

/** Enters `target` (a new visit): the status, timer and outcome follow from the target's kind. */
const enter = (
  compiled: Compiled,
  machine: Machine,
  target: string,
  now: number,
  cause: Cause,
  context: unknown,
  extra: EnterExtra = {}
): Output => {
  if (compiled.tree !== undefined) return enterTree(compiled, compiled.tree, machine, target, now, cause, context, extra)
  const state = stateOf(compiled.def, target)!
  if (state._tag === "Chart") {
    return chartStep(compiled, machine, now, cause, enterChart(state, machine.snapshot.id, context as ChartContext, now), extra.event, target)
  }
  const encoded = extra.encoded ?? compiled.encodeContext(context)
  if (Either.isLeft(encoded)) {
    return stepFailedOrDiscard(compiled, machine, now, encoded.left, cause, extra.compensable ?? false)
  }
  return entered(machine, now, cause, target, state, encoded.right, context, extra.error, extra.event, undefined)
}

/**
 * A chart's macrostep (chartState.ts) as a transition: the chart state again with the new
 * context and timer (`entering` it: a new visit), or the top-level final it ended in.
 */
const chartStep = (
  compiled: Compiled,
  machine: Machine,
  now: number,
  cause: Cause,
  outcome: ChartOutcome,
  event: unknown,
  entering?: string
): Output => {
  if (outcome._tag === "Failed") return stepFailedOrDiscard(compiled, machine, now, outcome.error, cause, false)
  if (outcome._tag === "Final") return enter(compiled, machine, outcome.final, now, cause, outcome.context, { event })
  const encoded = compiled.encodeContext(outcome.context)
  if (Either.isLeft(encoded)) return stepFailedOrDiscard(compiled, machine, now, encoded.left, cause, false)
  const s = machine.snapshot
  const patch: Patch = {
    status: "waiting",
    context: encoded.right,
    timerDueAt: outcome.timerDueAt,
    ...(entering === undefined ? {} : { state: entering, visit: s.seq + 1, attempt: 0, enteredAt: now, error: undefined }),
    ...(outcome.error === undefined ? {} : { error: errorInfo(outcome.error) })
  }
  return next(machine, now, cause, patch, outcome.context, event)
}

/** The paths of the states, to name them in a message. */
const statePaths = (compiled: Compiled): ReadonlyArray<string> => compiled.tree?.paths ?? Object.keys(compiled.def.states)

/**
 * Enters `target` in a tree of states: the macrostep (exit, transition and entry actions,
 * then eventless and done transitions) is planned and run by `tree.ts`; its end is the
 * new leaf, committed as one transition.
 */
const enterTree = (
  compiled: Compiled,
  tree: Tree,
  machine: Machine,
  target: string,
  now: number,
  cause: Cause,
  context: unknown,
  extra: EnterExtra
): Output => {
  const s = machine.snapshot
  const limit = compiled.def.maxTransitionsWithoutWaiting ?? defaultLoopLimit
  const compensable = extra.compensable ?? false
  const result = macrostep(tree, { source: extra.source ?? s.state, target, actions: extra.actions ?? [] }, {
    leaf: s.state,
    history: s.history,
    context,
    event: extra.decoded,
    limit,
    choose: compiled.choose
  })
  if (result._tag === "Threw") {
    const info = errorInfo(result.error)
    return actionFailed(compiled, machine, now, { tag: info.tag, message: `${result.where} threw: ${info.message}` }, cause, target, compensable)
  }
  if (result._tag === "Looped") {
    const error = errorInfo(new LoopLimitExceeded({ executionId: s.id, procedure: compiled.def.name, states: result.states, limit }))
    if (cause === "start") return { _tag: "Discard", reason: error }
    return next(machine, now, cause, { ...failForGood(compensable), error }, machine.context, extra.event)
  }
  const state = stateOf(compiled.def, result.leaf)!
  const encoded = result.context === context && extra.encoded !== undefined ? extra.encoded : compiled.encodeContext(result.context)
  if (Either.isLeft(encoded)) return stepFailedOrDiscard(compiled, machine, now, encoded.left, cause, compensable)
  return entered(machine, now, cause, result.leaf, state, encoded.right, result.context, extra.error, extra.event, result.history)
}

/**
 * An action (or an eventless transition's guard) threw: nothing of the macrostep is kept.
 * A step's fails the step (its retries and `onFailure` apply), an event's is discarded
 * with the error logged, a skip is refused, and a timer's or an `onFailure` goto's fails
 * the execution for good (there is nothing left to try).
 */
const actionFailed = (compiled: Compiled, machine: Machine, now: number, info: ErrorInfo, cause: Cause, target: string, compensable: boolean): Output => {
  if (cause === "step") return stepFailedOrDiscard(compiled, machine, now, new Error(info.message), cause, compensable)
  if (cause === "start" || eventOf(cause) !== undefined) return { _tag: "Discard", reason: info }
  if (cause === "skip") return reject(machine, `skip to "${target}" in`, `${info.message}; nothing changed. Fix the action, or skip to another state.`)
  return next(machine, now, cause, { ...failForGood(compensable), error: info }, machine.context)
}

/**
 * An event in a tree of states: the leaf (a wait) and then its ancestors are asked in
 * turn; the first whose handler of the event accepts it (its guard holds) takes it. A
 * guard that refuses lets an ancestor's handler try.
 */
const eventInTree = (compiled: Compiled, machine: Machine, input: Extract<Input, { readonly _tag: "Event" }>, now: number): Output => {
  const s = machine.snapshot
  const tag = input.event._tag
  const line = handlersLine(compiled.def, s.state)
  const refused: Array<string> = []
  for (const { on, path } of line) {
    const handler = Object.hasOwn(on, tag) ? on[tag]! : undefined
    if (handler === undefined) continue
    let context: unknown
    try {
      const guard = handler.guard
      if (guard !== undefined && !(compiled.choose === undefined ? guard(input.event, machine.context) : compiled.choose(2) === 0)) {
        refused.push(guardRefused(guard, tag, path))
        continue
      }
      context = handler.update === undefined || compiled.choose !== undefined ? machine.context : handler.update(input.event, machine.context)
    } catch (error) {
      return { _tag: "Discard", reason: errorInfo(error) }
    }
    return enter(compiled, machine, handler.goto, now, eventCause(tag), context, {
      event: input.encoded,
      decoded: input.event,
      source: path,
      actions: handler.actions,
      compensable: input.compensable
    })
  }
  if (refused.length > 0) return { _tag: "Discard", reason: { tag: "GuardRefused", message: refused.join("; ") } }
  const tried = line.map((h) => `"${h.path}"`).join(", ")
  return {
    _tag: "Discard",
    reason: {
      tag: "InvalidTransition",
      message: `event "${tag}" is not accepted in state "${s.state}" (the states that handle events there, ${tried || "none"}, accept ${
        acceptedTags(compiled.def, s.state).join(", ") || "no events"
      }); it was discarded`
    }
  }
}

/** Who an execution is, as `Runtime.start` names it. */
export interface Identity {
  readonly id: string
  readonly tenant?: string | undefined
  readonly parentId?: string | undefined
  readonly idempotencyKey?: string | undefined
}

/**
 * The start of an execution: its first snapshot and history row, made by entering the
 * initial state from nothing, by the same rules as every other entry (the status, the
 * timer and the outcome follow from the state's kind). Fails when the context cannot be
 * stored.
 */
export const start = (
  compiled: Compiled,
  identity: Identity,
  context: unknown,
  now: number
): Either.Either<{ readonly machine: Machine; readonly transition: Transition }, ValidationError> => {
  const encoded = compiled.encodeContext(context)
  if (Either.isLeft(encoded)) return Either.left(encoded.left)
  const nothing: { -readonly [K in keyof Snapshot]: Snapshot[K] } = {
    id: identity.id,
    procedure: compiled.def.name,
    version: compiled.def.version,
    state: "",
    status: "running",
    context: undefined,
    visit: 0,
    attempt: 0,
    seq: 0,
    rowVersion: 0,
    fingerprint: compiled.fingerprint,
    startedAt: now,
    enteredAt: now,
    updatedAt: now
  }
  if (identity.tenant !== undefined) nothing.tenant = identity.tenant
  if (identity.parentId !== undefined) nothing.parentId = identity.parentId
  if (identity.idempotencyKey !== undefined) nothing.idempotencyKey = identity.idempotencyKey
  const output = enter(compiled, { snapshot: nothing, context }, compiled.def.initial, now, "start", context, { encoded })
  if (output._tag === "Next") return Either.right(output)
  // not reached: with the context encoded, entering a state gives a transition
  const issue = output._tag === "Discard" ? output.reason.message : output._tag === "Reject" ? output.error.message : "no transition"
  return Either.left(new ValidationError({ procedure: compiled.def.name, subject: "context", issue }))
}

/** A user function failed or produced a context its Schema rejects. */
const stepFailedOrDiscard = (
  compiled: Compiled,
  machine: Machine,
  now: number,
  error: unknown,
  cause: Cause,
  compensable: boolean
): Output => {
  if (cause !== "step") return { _tag: "Discard", reason: errorInfo(error) }
  const s = machine.snapshot
  const failure = new ExecutionError({ executionId: s.id, state: s.state, cause: error })
  return transition(compiled, machine, { _tag: "StepFailed", error: errorInfo(failure), compensable }, now)
}

/** The pure transition function. */
export const transition = (compiled: Compiled, machine: Machine, input: Input, now: number): Output => {
  const s = machine.snapshot
  const state = stateOf(compiled.def, s.state)!
  switch (input._tag) {
    case "StepSucceeded": {
      if (state._tag !== "Step" || s.status !== "running") return reject(machine, "complete the step of", "Only a running step completes.")
      let target: string
      let context: unknown
      try {
        if (compiled.choose !== undefined && typeof state.next !== "string") {
          // `verify` replays a tree: the step's choice is one of the places it may go
          const options = state.targets ?? statePaths(compiled)
          target = options[compiled.choose(options.length)]!
          context = machine.context
        } else {
          // like a guard, `next` sees the context from before the step; `update` makes the new one
          target = typeof state.next === "string" ? state.next : state.next(input.result, machine.context)
          context = state.update === undefined || compiled.choose !== undefined ? machine.context : state.update(input.result, machine.context)
        }
      } catch (error) {
        return stepFailedOrDiscard(compiled, machine, now, error, "step", input.compensable)
      }
      const to = typeof target === "string" ? stateOf(compiled.def, target) : undefined
      if (to === undefined || (state.targets !== undefined && !state.targets.includes(target))) {
        return stepFailedOrDiscard(
          compiled,
          machine,
          now,
          new Error(
            `\`next\` returned ${JSON.stringify(target) ?? String(target)}, which is not ${
              state.targets === undefined
                ? `one of the states (${statePaths(compiled).join(", ")})`
                : `one of the step's targets (${state.targets.join(", ")})`
            }`
          ),
          "step",
          input.compensable
        )
      }
      // a step without `update` keeps the context: it is stored as it already is, not encoded again
      // (and checked for JSON) on every transition
      if (state.update === undefined && s.context !== undefined) {
        // the hot path (a flat procedure's step into a step, a wait or a final): straight to the snapshot
        if (compiled.tree === undefined && to._tag !== "Chart") return entered(machine, now, "step", target, to, s.context, context, undefined, undefined, undefined)
        return enter(compiled, machine, target, now, "step", context, { compensable: input.compensable, encoded: Either.right(s.context) })
      }
      return enter(compiled, machine, target, now, "step", context, { compensable: input.compensable })
    }
    case "StepFailed": {
      if (state._tag !== "Step") return reject(machine, "fail the step of", "Only a step fails.")
      const onFailure = state.onFailure
      if (onFailure === "intervene") {
        const intervention = new ManualIntervention({ executionId: s.id, state: s.state, reason: input.error.message })
        return next(machine, now, "failure", { status: "needs_intervention", error: errorInfo(intervention) }, machine.context)
      }
      if (onFailure === "fail") {
        const error = { tag: input.error.tag, message: `${input.error.message} ${failedHint(input.compensable)}` }
        return next(machine, now, "failure", { ...failForGood(input.compensable), error }, machine.context)
      }
      const error = { tag: input.error.tag, message: `${input.error.message} The step's onFailure sent it to state "${onFailure.goto}".` }
      return enter(compiled, machine, onFailure.goto, now, "failure", machine.context, { error, compensable: input.compensable })
    }
    case "Event": {
      if (state._tag === "Chart" && s.status === "waiting") {
        const outcome = chartEvent(state, s.id, machine.context as ChartContext, input.event, now)
        return chartStep(compiled, machine, now, eventCause(input.event._tag), outcome, input.encoded)
      }
      if (compiled.tree !== undefined && s.status === "waiting") return eventInTree(compiled, machine, input, now)
      if (state._tag !== "Wait" || s.status !== "waiting") {
        return { _tag: "Discard", reason: { tag: "InvalidTransition", message: `state "${s.state}" is not waiting for events` } }
      }
      const handler = handlerOf(state, input.event._tag)
      if (handler === undefined) {
        return {
          _tag: "Discard",
          reason: {
            tag: "InvalidTransition",
            message: `event "${input.event._tag}" is not accepted in state "${s.state}" (it accepts ${
              Object.keys(state.on).join(", ") || "no events"
            }); it was discarded`
          }
        }
      }
      let context: unknown
      try {
        if (handler.guard !== undefined && !handler.guard(input.event, machine.context)) {
          return { _tag: "Discard", reason: { tag: "GuardRefused", message: guardRefused(handler.guard, input.event._tag, s.state) } }
        }
        context = handler.update === undefined ? machine.context : handler.update(input.event, machine.context)
      } catch (error) {
        return { _tag: "Discard", reason: errorInfo(error) }
      }
      return enter(compiled, machine, handler.goto, now, eventCause(input.event._tag), context, { event: input.encoded })
    }
    case "TimerFired": {
      if (state._tag === "Chart" && s.status === "waiting" && s.timerDueAt !== undefined && s.timerDueAt <= now) {
        return chartStep(compiled, machine, now, "timer", chartTimer(state, s.id, machine.context as ChartContext, now), undefined)
      }
      if (state._tag !== "Wait" || state.after === undefined || s.status !== "waiting") {
        return reject(machine, "fire the timer of", "No timer is pending.")
      }
      return enter(compiled, machine, state.after.goto, now, "timer", machine.context, { compensable: input.compensable })
    }
    case "Pause":
    case "Resume":
    case "Cancel":
    case "Rollback":
    case "Retry":
    case "Skip":
      return command(compiled, machine, input, now)
    case "Compensate":
      return s.status === "compensating" ? { _tag: "Serve" } : reject(machine, "compensate a step of", "It is not compensating.")
    case "Compensated": {
      if (s.status !== "compensating") return reject(machine, "finish compensating", "It is not compensating.")
      return next(machine, now, "compensated", { status: s.compensateTo ?? "rolled_back" }, machine.context)
    }
    case "LoopLimit": {
      // like a step that failed for good, whatever its onFailure (a goto could loop again)
      if (s.status !== "running") return reject(machine, "stop the loop of", "Only a running execution loops.")
      return next(machine, now, "failure", { ...failForGood(input.compensable), error: input.error }, machine.context)
    }
    case "GiveUp": {
      return next(machine, now, "defect", { status: "failed", error: input.error }, machine.context)
    }
  }
}

const operations = {
  Pause: ["pause", "pause"],
  Resume: ["resume", "resume"],
  Cancel: ["cancel", "cancel"],
  Rollback: ["rollback", "roll back"],
  Retry: ["retry", "retry"],
  Skip: ["skip", "skip"]
} as const

/** An operator command: refused by the one table of `Execution.refusal`, else applied. */
const command = (
  compiled: Compiled,
  machine: Machine,
  input: Extract<Input, { readonly _tag: keyof typeof operations }>,
  now: number
): Output => {
  const s = machine.snapshot
  if (input._tag === "Rollback" && input.undo !== undefined && s.status === "succeeded") {
    // the one way out of a terminal status: a parent undoes a child or region that succeeded
    const to = input.compensable ? { status: "compensating", compensateTo: "rolled_back" } as const : { status: "rolled_back" } as const
    return next(machine, now, "rollback", { ...to, outcome: undefined }, machine.context, undefined, input.undo)
  }
  const [name, operation] = operations[input._tag]
  const hint = refusal(name, s.status)
  if (hint !== undefined) return reject(machine, operation, hint)
  switch (input._tag) {
    case "Pause":
      return next(machine, now, "pause", { status: "paused" }, machine.context)
    case "Resume":
      return next(machine, now, "resume", { status: statusOf(stateOf(compiled.def, s.state)!) }, machine.context)
    case "Cancel":
      if (input.reason !== undefined && (input.reason.length === 0 || input.reason.length > maxReasonLength)) {
        return reject(
          machine,
          "cancel",
          `A cancel's reason must have 1 to ${maxReasonLength} characters (this one has ${input.reason.length}): say why briefly, or leave it out. Nothing changed.`
        )
      }
      return next(machine, now, "cancel", { status: "cancelled", timerDueAt: undefined, ...handled(s.status) }, machine.context, undefined, input.reason)
    case "Rollback":
      return next(
        machine,
        now,
        "rollback",
        { ...(input.compensable ? { status: "compensating", compensateTo: "rolled_back" } as const : { status: "rolled_back" } as const), ...handled(s.status) },
        machine.context,
        undefined,
        input.undo
      )
    case "Retry":
      return next(machine, now, "retry", { status: "running", attempt: 0, ...handled(s.status) }, machine.context)
    case "Skip":
      if (stateOf(compiled.def, input.state) === undefined) {
        return reject(
          machine,
          `skip to "${input.state}" in`,
          `There is no such state; the states are ${statePaths(compiled).join(", ")}.`
        )
      }
      return enter(compiled, machine, input.state, now, "skip", machine.context, { compensable: input.compensable })
  }
}


