/**
 * The run loop's slower paths (`run.ts`): a failed attempt and its retry Schedule, the
 * runaway-loop guard, and undoing a completed step (a compensation). Each is a function of
 * the run it belongs to, called from the run fiber.
 */
import { Cause, Deferred, Duration, Effect, Exit, FiberId, Option, ScheduleDecision, ScheduleIntervals } from "effect"
import type { Fiber } from "effect"
import type { StoreError } from "../Errors.js"
import { ExecutionError, InvalidTransition, LoopLimitExceeded, MaxRetriesExceeded } from "../Errors.js"
import type { ErrorEntry, Snapshot } from "../Execution.js"
import { stateOf } from "../Procedure.js"
import * as Deadlines from "./deadlines.js"
import type { CommandError, Handle, Restore } from "./handle.js"
import { restore, runFiber } from "./handle.js"
import { retriesTotal } from "./metrics.js"
import type { Run, StepState } from "./run.js"
import * as Spans from "./spans.js"
import type { Input, Machine } from "./transition.js"
import { errorInfo, transition } from "./transition.js"

/** Runs an attempt in a fiber of its own (see `load.ts`). */
export type Detach = <A, E, T>(
  restore: Restore,
  setup: (fiber: Fiber.RuntimeFiber<unknown, unknown>, next: Effect.Effect<Exit.Exit<A, E>>) => Effect.Effect<Exit.Exit<A, E>>,
  attempt: Effect.Effect<A, E>,
  limit?: { readonly millis: number; readonly error: T }
) => Effect.Effect<Exit.Exit<A, E | T>>

/**
 * Records a failed attempt. A failure for good (not transient, or the Schedule is done)
 * commits with the attempt in one transaction, so a crash cannot leave a failed step to
 * be run again; a transient one is retried after the Schedule's delay.
 */
export const attemptFailed = (run: Run, state: StepState, attempt: number, error: unknown, typed: boolean): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const { cached, handle, id } = run
    const s = cached.machine.snapshot
    const transient = typed && state.isTransient(error)
    const info = errorInfo(error)
    const now = run.now()
    const entry: ErrorEntry = { executionId: id, state: s.state, attempt, tag: info.tag, message: info.message, transient, at: now }
    const retryIn = transient ? yield* nextRetry(handle, state, s.visit, attempt, error, now) : Option.none()
    if (Option.isNone(retryIn)) {
      const failure = transient
        ? new MaxRetriesExceeded({ executionId: id, state: s.state, attempts: attempt, lastError: error })
        : new ExecutionError({ executionId: id, state: s.state, cause: error })
      const counted: Machine = { snapshot: { ...s, attempt }, context: cached.machine.context }
      yield* run.apply(
        transition(run.compiled, counted, { _tag: "StepFailed", error: errorInfo(failure), compensable: cached.completed.length > 0 }, now),
        undefined,
        [entry]
      )
      return
    }
    yield* run.commitCount({ ...s, attempt, rowVersion: s.rowVersion + 1, updatedAt: now }, { errors: [entry] })
    retriesTotal.unsafeUpdate(1, [])
    // the backoff sleeps in the run fiber: a command may replace the run
    handle.phase = { _tag: "Sleeping", fiber: run.self }
    const attributes = { "proctor.execution.id": id, "proctor.state.name": s.state, "proctor.step.attempt": attempt }
    yield* Spans.within(run.spans, "proctor.retry", run.stateSpan ?? run.executionSpan, attributes, restore(Deadlines.sleepMillis(retryIn.value)))
    if (run.stale()) return yield* Effect.interrupt
    handle.phase = run.busy
  })

/**
 * Steps the retry Schedule of the current visit after attempt `attempt` failed: the delay
 * before the next attempt, or none when it is done.
 */
const nextRetry = (handle: Handle, state: StepState, visit: number, attempt: number, error: unknown, now: number) =>
  Effect.gen(function*() {
    let previous: unknown
    if (handle.retry !== undefined && handle.retry.visit === visit) {
      previous = handle.retry.state
    } else {
      // a new run of this visit (the process restarted, or it was paused and resumed): the
      // Schedule's state is not in memory, so it is rebuilt by stepping the Schedule through
      // the retries the stored attempt count says were made. Otherwise every restart would
      // grant the step its whole `retry` again.
      previous = state.retry.initial
      for (let made = 1; made < attempt; made++) {
        const [replayed, , decision] = yield* state.retry.step(now, error, previous)
        if (ScheduleDecision.isDone(decision)) return Option.none<number>()
        previous = replayed
      }
    }
    const [next, , decision] = yield* state.retry.step(now, error, previous)
    if (ScheduleDecision.isDone(decision)) return Option.none<number>()
    handle.retry = { visit, state: next }
    return Option.some(Math.max(0, ScheduleIntervals.start(decision.intervals) - now))
  })

/** Fails the execution alone: it made `loopLimit` transitions without waiting. */
export const stopLoop = (run: Run): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const { cached, id, loopLimit } = run
    const recent = yield* run.env.shared.store.history(id, { tail: Math.min(loopLimit, 100) })
    const error = new LoopLimitExceeded({ executionId: id, procedure: run.def.name, states: [...new Set(recent.map((t) => t.to))], limit: loopLimit })
    yield* run.logged(Effect.logWarning(error.message))
    const s = cached.machine.snapshot
    const now = run.now()
    const entry: ErrorEntry = { executionId: id, state: s.state, attempt: s.attempt, tag: error._tag, message: error.message, transient: false, at: now }
    const input: Input = { _tag: "LoopLimit", error: errorInfo(error), compensable: cached.completed.length > 0 }
    yield* run.apply(transition(run.compiled, cached.machine, input, now), undefined, [entry])
  })

/**
 * Undoes the last completed step not undone yet (compensations run in reverse order, one
 * per turn of the run loop, so commands are served between them). It runs like a step:
 * bounded by the step's `compensateTimeout`, and a command the status accepts (cancel)
 * interrupts it. A failure, a throw or a timeout is a failed compensation, logged in the
 * error log; either way the outcome commits with the compensation's record, so a crash
 * resumes the rollback with the next one.
 */
export const compensateLast = (run: Run): Effect.Effect<void, StoreError> => {
  const { cached, handle, id, spans } = run
  const { stepSeq, state } = cached.completed[cached.completed.length - 1]!
  const step = stateOf(run.def, state)
  if (step === undefined || step._tag !== "Step" || (step.compensate === undefined && step.child === undefined)) {
    cached.completed.pop()
    return Effect.void
  }
  const own = step.compensate
  const child = step.child
  // a child or parallel state's: its child or regions are undone first, then its own compensate runs
  const compensate = child === undefined ? own! : (a: typeof args) => {
    const undone = run.env.shared.children.undo(child, id, state, stepSeq)
    return own === undefined ? undone : Effect.zipRight(undone, Effect.suspend(() => own(a) as Effect.Effect<unknown, unknown>))
  }
  const args = { context: cached.machine.context, executionId: id, state, attempt: 1, idempotencyKey: `${id}/${state}/${stepSeq}/compensate` }
  const timedOut = {
    _tag: "TimeoutError",
    message: `TimeoutError: it ran past its compensateTimeout of ${Duration.format(step.compensateTimeout)} and was interrupted; ` +
      `raise the step's compensateTimeout, or make the compensation return sooner`
  }
  const span = spans.make("proctor.compensate", run.stateSpan ?? run.executionSpan, { "proctor.execution.id": id, "proctor.state.name": state })
  handle.phase = { _tag: "Compensating", fiber: run.self }
  // a compensation that throws instead of returning an Effect fails like one that fails;
  // one that runs past its timeout fails then, even if it cannot be interrupted
  const attempt = run.env.detach(
    restore,
    (fiber, next) => Spans.setParentAndAnnotations(fiber, spans, span, run.annotationsOf(state, 1), next),
    Effect.suspend(() => compensate(args) as Effect.Effect<unknown, unknown>),
    { millis: Duration.toMillis(step.compensateTimeout), error: timedOut }
  )
  return Effect.flatMap(Effect.onInterrupt(attempt, () => Effect.sync(() => span.end(spans.now(), Exit.interrupt(FiberId.none)))), (result) => {
    span.end(spans.now(), result)
    if (runFiber(handle) !== run.self) return Effect.interrupt
    handle.phase = run.busy
    if (Exit.isFailure(result) && Cause.isInterruptedOnly(result.cause)) return Effect.interrupt
    const now = run.now()
    const s = cached.machine.snapshot
    const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
    const errors: Array<ErrorEntry> = []
    let logged: Effect.Effect<void> = Effect.void
    if (Exit.isFailure(result)) {
      const info = errorInfo(Cause.squash(result.cause))
      errors.push({ executionId: id, state, attempt: 1, tag: info.tag, message: `compensation failed: ${info.message}`, transient: false, at: now })
      logged = run.logged(Effect.logWarning(`Compensation of "${state}" failed: ${info.message}`))
    }
    const record = { executionId: id, stepSeq, state, ok: Exit.isSuccess(result), at: now }
    return Effect.zipRight(logged, run.commitCount(snapshot, { errors, compensation: record })).pipe(Effect.tap(() => void cached.completed.pop()))
  })
}

/**
 * A parent's turn for one compensation of a region it rolls back (`Compensate`, see
 * `regions.ts`): the step completed at `stepSeq` is undone now, if it is the region's
 * last not undone yet. One undone already is done (the parent's order is read from the
 * store, which a crash may have left behind the region's), so the parent moves on. The
 * reply comes when the compensation's record has committed; when a command stops the
 * compensation (a cancel), it says so, so the parent never waits for it in vain.
 */
export const compensateStep = (run: Run, stepSeq: number, reply: Deferred.Deferred<Snapshot, CommandError>): Effect.Effect<void, StoreError> => {
  const { completed } = run.cached
  const refuse = (hint: string) => {
    const s = run.cached.machine.snapshot
    return Deferred.fail(reply, new InvalidTransition({ executionId: run.id, operation: "compensate a step of", status: s.status, state: s.state, hint }))
  }
  const at = completed.findIndex((c) => c.stepSeq === stepSeq)
  if (at < 0) return Effect.asVoid(Deferred.succeed(reply, run.cached.machine.snapshot))
  if (at !== completed.length - 1) {
    return Effect.asVoid(refuse(`Its compensations run in reverse order: the step completed at ${completed.at(-1)!.stepSeq} comes before the one at ${stepSeq}.`))
  }
  return Effect.onInterrupt(compensateLast(run), () => refuse("Its compensation was stopped (it was cancelled meanwhile).")).pipe(
    Effect.zipRight(Effect.suspend(() => Deferred.succeed(reply, run.cached.machine.snapshot))),
    Effect.asVoid
  )
}
