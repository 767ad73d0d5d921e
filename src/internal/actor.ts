/**
 * The run loop of one execution's actor. A run loads the execution (or takes it from the
 * handle), then loops: handle queued messages, then do what the committed snapshot calls
 * for (a step's attempt, an event from the inbox, a timer, a compensation), committing
 * each outcome before the next step. It ends when the execution ends, parks, or leaves
 * memory; the supervisor (`supervisor.ts`) starts runs and decides what follows one.
 */
import { Cause, Deferred, Duration, Effect, Either, Exit, FiberId, FiberRef, HashMap, Option, ScheduleDecision, ScheduleIntervals } from "effect"
import type { Fiber, Tracer } from "effect"
import type { StoreError} from "../Errors.js";
import { ExecutionError, ExecutionNotFound, InvalidTransition, LoopLimitExceeded, MaxRetriesExceeded, TimeoutError } from "../Errors.js"
import type { ErrorEntry, Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { stateOf } from "../Procedure.js"
import * as Deadlines from "./deadlines.js"
import type { Deadline } from "./deadlines.js"
import { settle as settleWaiter } from "./eventWaiters.js"
import type { CommandError, Handle, Msg } from "./handle.js"
import { runFiber } from "./handle.js"
import { finishedBy, retriesTotal, stateDuration, transitionsTotal } from "./metrics.js"
import { fairTurn, roundsPerLook } from "./fairness.js"
import * as Load from "./load.js"
import type { Shared } from "./shared.js"
import * as Spans from "./spans.js"
import type { Input, Machine, Output } from "./transition.js"
import { errorInfo, procedureKey, transition } from "./transition.js"
import { VersionConflict } from "../Errors.js"

export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** What the run loop asks of the supervisor. */
export interface SupervisorOps {
  readonly post: (handle: Handle, msg: Msg) => void
  readonly restartNow: (handle: Handle) => void
  readonly drainMailbox: (handle: Handle, error: CommandError) => Effect.Effect<void>
}

export const versionConflict = (snapshot: Snapshot, expected: number) =>
  new VersionConflict({ executionId: snapshot.id, expected, actual: snapshot.seq, state: snapshot.state, status: snapshot.status })

export const make = (shared: Shared, supervisor: SupervisorOps) => {
  const { store, deadlines, handles, timerPoll, eventWaiters, publish, unavailable, reported, tracing, fast } = shared
  const { passivate, horizon } = shared.settings
  const { post, restartNow, drainMailbox } = supervisor
  const { loadMachine, detach } = Load.make(shared)
  const notFound = (id: string) => new ExecutionNotFound({ executionId: id })

  // A run loads the execution (or takes it from the handle), then loops: handle queued
  // messages, then do what the committed snapshot calls for. Steps run inline in the run
  // fiber, interruptible only inside `restore`; commits are uninterruptible. A command that
  // must stop a step (pause, cancel, ...) or a step's timeout does not wait for the run:
  // the supervisor replaces it (`restartNow`), and the old run, once stale, stops where it
  // comes back from the step.

  /**
   * A run: the execution's span and log annotations are set on the run fiber (it is
   * dedicated to this execution) rather than scoped around the run: the same effect for
   * much less work. The run's span is a child of the `start` or `send` that started the
   * run (it joins the caller's trace), and links to those it serves after that.
   */
  const runActor = (handle: Handle, restore: Restore) =>
    Effect.withFiberRuntime<void, StoreError>((fiber) => {
      const spans = Spans.make(fiber, tracing, fast)
      const first = handle.mailbox.peek()
      const cause = first?._tag === "Inbox" ? first.cause : undefined
      const executionSpan = spans.make("proctor.execution", cause ?? fiber.currentSpan, { "proctor.execution.id": handle.id })
      const annotations = HashMap.set(fiber.getFiberRef(FiberRef.currentLogAnnotations), "executionId", handle.id)
      const run = runLoaded(handle, fiber, restore, spans, executionSpan, annotations)
      return Spans.setParentAndAnnotations(fiber, spans, executionSpan, annotations, run).pipe(
        Effect.onExit((exit) => Effect.sync(() => executionSpan.end(spans.now(), exit)))
      )
    })

  const runLoaded = (
    handle: Handle,
    /** this run's fiber: once it is no longer the handle's, the run is stale (see `restartNow`) */
    self: Fiber.RuntimeFiber<void, StoreError>,
    restore: Restore,
    spans: Spans.Spans,
    executionSpan: Tracer.Span,
    executionAnnotations: HashMap.HashMap<string, unknown>
  ) =>
    Effect.gen(function*() {
      const { id, mailbox } = handle
      const cached = yield* loadMachine(handle)
      if (cached === undefined) {
        yield* drainMailbox(handle, notFound(id))
        return
      }
      if ("missing" in cached) {
        const s = cached.missing!
        const key = procedureKey(s.procedure, s.version)
        if (!reported.has(key)) {
          reported.add(key)
          yield* Effect.logError(`Execution ${id} (and any other of ${key}) cannot run: ${unavailable(s)}`)
        }
        yield* drainMailbox(
          handle,
          new InvalidTransition({
            executionId: id,
            operation: "run",
            status: s.status,
            state: s.state,
            hint: unavailable(s)
          })
        )
        return
      }
      const { compiled } = cached
      const def = compiled.def
      executionSpan.attribute("proctor.procedure.name", def.name)
      executionSpan.attribute("proctor.procedure.version", def.version)
      const clock = yield* Effect.clock
      const annotations = HashMap.set(executionAnnotations, "procedure", def.name)
      yield* Effect.withFiberRuntime((fiber) => Spans.setParentAndAnnotations(fiber, spans, executionSpan, annotations, Effect.void))

      /**
       * Undoes the last completed step not undone yet (compensations run in reverse order,
       * one per turn of the run loop, so commands are served between them). It runs inline
       * like a step: bounded by the step's `compensateTimeout`, and a command the status
       * accepts (cancel) interrupts it. A failure, a throw or a timeout is a failed
       * compensation, logged in the error log; either way the outcome commits with the
       * compensation's record, so a crash resumes the rollback with the next one.
       */
      const compensateLast = Effect.suspend(() => {
        const { stepSeq, state } = cached.completed[cached.completed.length - 1]!
        const step = stateOf(def, state)
        if (step === undefined || step._tag !== "Step" || step.compensate === undefined) {
          cached.completed.pop()
          return Effect.void
        }
        const compensate = step.compensate
        const args = { context: cached.machine.context, executionId: id, state, attempt: 1, idempotencyKey: `${id}/${state}/${stepSeq}/compensate` }
        const timeout = Duration.toMillis(step.compensateTimeout)
        const timedOut = {
          _tag: "TimeoutError",
          message: `TimeoutError: it ran past its compensateTimeout of ${Duration.format(step.compensateTimeout)} and was interrupted; ` +
            `raise the step's compensateTimeout, or make the compensation return sooner`
        }
        const span = spans.make("proctor.compensate", stateSpan ?? executionSpan, { "proctor.execution.id": id, "proctor.state.name": state })
        handle.phase = { _tag: "Compensating", fiber: self }
        // a compensation that throws instead of returning an Effect fails like one that fails;
        // one that runs past its timeout fails then, even if it cannot be interrupted
        const attempt = detach(
          restore,
          (fiber, next) => Spans.setParentAndAnnotations(fiber, spans, span, annotationsOf(state, 1), next),
          Effect.suspend(() => compensate(args) as Effect.Effect<unknown, unknown>),
          { millis: timeout, error: timedOut }
        )
        return Effect.flatMap(Effect.onInterrupt(attempt, () => Effect.sync(() => span.end(spans.now(), Exit.interrupt(FiberId.none)))), (result) => {
          span.end(spans.now(), result)
          if (runFiber(handle) !== self) return Effect.interrupt
          handle.phase = { _tag: "Busy", fiber: self }
          if (Exit.isFailure(result) && Cause.isInterruptedOnly(result.cause)) return Effect.interrupt
          const now = clock.unsafeCurrentTimeMillis()
          const s = cached.machine.snapshot
          const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
          const errors: Array<ErrorEntry> = []
          let logged: Effect.Effect<void> = Effect.void
          if (Exit.isFailure(result)) {
            const info = errorInfo(Cause.squash(result.cause))
            errors.push({ executionId: id, state, attempt: 1, tag: info.tag, message: `compensation failed: ${info.message}`, transient: false, at: now })
            logged = Effect.logWarning(`Compensation of "${state}" failed: ${info.message}`)
          }
          return Effect.zipRight(
            logged,
            store.commit({ snapshot, expectedVersion: s.rowVersion, errors, compensation: { executionId: id, stepSeq, state, ok: Exit.isSuccess(result), at: now } })
          ).pipe(Effect.tap(() => {
            cached.machine = { ...cached.machine, snapshot }
            cached.completed.pop()
          }))
        })
      })

      // a span per visit of a state, ended when the execution leaves it (or this run ends)
      let stateSpan: Tracer.Span | undefined
      const endStateSpan = (exit: Exit.Exit<unknown, unknown>) => {
        stateSpan?.end(spans.now(), exit)
        stateSpan = undefined
      }
      const enterStateSpan = (snapshot: Snapshot) => {
        endStateSpan(Exit.void)
        if (isTerminal(snapshot.status)) return
        stateSpan = spans.make("proctor.state", executionSpan, {
          "proctor.execution.id": id,
          "proctor.procedure.name": def.name,
          "proctor.state.name": snapshot.state,
          "proctor.state.visit": snapshot.visit
        })
      }
      enterStateSpan(cached.machine.snapshot)
      // the span of the request that started this run, if any: the others are linked
      const parent = Option.getOrUndefined(executionSpan.parent)
      const annotationsOf = (state: string, attempt: number) => HashMap.set(HashMap.set(annotations, "state", state), "attempt", attempt)

      // The run fiber is uninterruptible except inside `restore` (a step, a backoff): commits
      // below cannot be cut in half by a command.

      /** Commits the outcome of the transition function; returns the error of a rejection. */
      const apply = (output: Output, consumed?: number, errors?: ReadonlyArray<ErrorEntry>): Effect.Effect<Option.Option<InvalidTransition>, StoreError> => {
        if (output._tag === "Reject") return Effect.succeed(Option.some(output.error))
        const s = cached.machine.snapshot
        if (output._tag === "Discard") {
          const now = clock.unsafeCurrentTimeMillis()
          const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
          return Effect.map(
            store.commit({
              snapshot,
              expectedVersion: s.rowVersion,
              consumed,
              errors: [{ executionId: id, state: s.state, attempt: s.attempt, tag: output.reason.tag, message: output.reason.message, transient: false, at: now }]
            }),
            () => {
              cached.machine = { ...cached.machine, snapshot }
              return Option.none()
            }
          )
        }
        const next = output.machine
        const t = output.transition
        return Effect.flatMap(
          store.commit({ snapshot: next.snapshot, expectedVersion: s.rowVersion, transition: t, consumed, errors }),
          () => committed(s, next, t)
        )
      }
      const noRejection = Effect.succeed(Option.none<InvalidTransition>())
      const committed = (s: Snapshot, next: Machine, t: Transition) => {
        cached.machine = next
        const status = next.snapshot.status
        handle.spins = status === "running" || status === "compensating" ? handle.spins + 1 : 0
        stateDuration.unsafeUpdate(t.duration, [])
        transitionsTotal.unsafeUpdate(1, [])
        if (next.snapshot.visit !== s.visit) handle.retry = undefined
        if (next.snapshot.visit !== s.visit || isTerminal(next.snapshot.status)) enterStateSpan(next.snapshot)
        if (isTerminal(next.snapshot.status) && !isTerminal(s.status)) finishedBy(next.snapshot.status).unsafeUpdate(1, [])
        if (t.cause === "step" && compiled.compensable.has(t.from)) cached.completed.push({ stepSeq: t.seq, state: t.from })
        publish(next.snapshot, t)
        return noRejection
      }

      /**
       * Records a failed attempt. A failure for good (not transient, or the Schedule is
       * done) commits with the attempt in one transaction, so a crash cannot leave a
       * failed step to be run again; a transient one is retried after the Schedule's delay.
       */
      const attemptFailed = (state: Procedure.Step<string, unknown, unknown, unknown, unknown>, attempt: number, error: unknown, typed: boolean) =>
        Effect.gen(function*() {
          const s = cached.machine.snapshot
          const transient = typed && state.isTransient(error)
          const info = errorInfo(error)
          const now = clock.unsafeCurrentTimeMillis()
          const entry: ErrorEntry = { executionId: id, state: s.state, attempt, tag: info.tag, message: info.message, transient, at: now }
          const retryIn = transient ? yield* nextRetry(state, s.visit, attempt, error, now) : Option.none()
          if (Option.isNone(retryIn)) {
            const failure = transient
              ? new MaxRetriesExceeded({ executionId: id, state: s.state, attempts: attempt, lastError: error })
              : new ExecutionError({ executionId: id, state: s.state, cause: error })
            const counted: Machine = { ...cached.machine, snapshot: { ...s, attempt } }
            yield* apply(
              transition(compiled, counted, { _tag: "StepFailed", error: errorInfo(failure), compensable: cached.completed.length > 0 }, now),
              undefined,
              [entry]
            )
            return
          }
          const snapshot: Snapshot = { ...s, attempt, rowVersion: s.rowVersion + 1, updatedAt: now }
          yield* store.commit({ snapshot, expectedVersion: s.rowVersion, errors: [entry] })
          cached.machine = { ...cached.machine, snapshot }
          retriesTotal.unsafeUpdate(1, [])
          // the backoff sleeps in the run fiber: a command may replace the run
          handle.phase = { _tag: "Sleeping", fiber: self }
          yield* Spans.within(spans, "proctor.retry", stateSpan ?? executionSpan, { "proctor.execution.id": id, "proctor.state.name": s.state, "proctor.step.attempt": attempt }, restore(Deadlines.sleepMillis(retryIn.value)))
          if (runFiber(handle) !== self) return yield* Effect.interrupt
          handle.phase = { _tag: "Busy", fiber: self }
        })

      /**
       * Steps the retry Schedule of the current visit after attempt `attempt` failed: the delay
       * before the next attempt, or none when it is done.
       */
      const nextRetry = (
        state: Procedure.Step<string, unknown, unknown, unknown, unknown>,
        visit: number,
        attempt: number,
        error: unknown,
        now: number
      ) =>
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

      /** Runs one attempt of the current step, inline. */
      const runStep = (state: Procedure.Step<string, unknown, unknown, unknown, unknown>) =>
        Effect.withFiberRuntime<unknown, StoreError>((fiber) => {
          // a command that came in meanwhile goes first
          if (mailbox.hasCommand()) return Effect.void
          const s = cached.machine.snapshot
          const attempt = s.attempt + 1
          const stateName = s.state
          const deadline: Deadline = {
            at: clock.unsafeCurrentTimeMillis() + Duration.toMillis(state.timeout),
            fire: () => {
              if (handle.phase._tag !== "Stepping" || handle.phase.deadline !== deadline) return
              handle.timedOut = { visit: s.visit, attempt }
              restartNow(handle)
            }
          }
          deadlines.add(deadline)
          handle.phase = { _tag: "Stepping", fiber: self, deadline }
          // the attempt's span and log annotations are set on the run fiber (dedicated to this
          // execution) rather than scoped around the step: the same effect for much less work
          const span = spans.make("proctor.step", stateSpan ?? executionSpan, {
            "proctor.execution.id": id,
            "proctor.state.name": stateName,
            "proctor.step.attempt": attempt
          })
          // a `run` that throws instead of returning an Effect fails the attempt (a defect)
          const run = Effect.suspend(() =>
            state.run({
              context: cached.machine.context,
              executionId: id,
              state: stateName,
              attempt,
              idempotencyKey: `${id}/${stateName}/${s.visit}`
            }) as Effect.Effect<unknown, unknown>
          )
          const attemptExit = Spans.setParentAndAnnotations(fiber, spans, span, annotationsOf(stateName, attempt), restore(Effect.exit(run)))
          return Effect.flatMap(attemptExit, (exit) => {
            // a command or the timeout gave up on this run while the step would not stop: the
            // new run owns the handle, and what the step returned goes nowhere
            span.end(spans.now(), exit)
            if (runFiber(handle) !== self) return Effect.interrupt
            handle.phase = { _tag: "Busy", fiber: self }
            deadlines.remove(deadline)
            if (Exit.isSuccess(exit)) {
              return apply(transition(compiled, cached.machine, {
                _tag: "StepSucceeded",
                result: exit.value,
                compensable: cached.completed.length > 0
              }, clock.unsafeCurrentTimeMillis()))
            }
            if (Cause.isInterruptedOnly(exit.cause)) return Effect.interrupt
            const failure = Cause.failureOption(exit.cause)
            return attemptFailed(state, attempt, Option.isSome(failure) ? failure.value : Cause.squash(exit.cause), Option.isSome(failure))
          })
        })

      const loopLimit = def.maxTransitionsWithoutWaiting ?? 10_000

      /** Fails the execution alone: it made `loopLimit` transitions without waiting. */
      const stopLoop = Effect.gen(function*() {
        const recent = yield* store.history(id, { tail: Math.min(loopLimit, 100) })
        const error = new LoopLimitExceeded({ executionId: id, procedure: def.name, states: [...new Set(recent.map((t) => t.to))], limit: loopLimit })
        yield* Effect.logWarning(error.message)
        const s = cached.machine.snapshot
        const now = clock.unsafeCurrentTimeMillis()
        const entry: ErrorEntry = { executionId: id, state: s.state, attempt: s.attempt, tag: error._tag, message: error.message, transient: false, at: now }
        const input: Input = { _tag: "LoopLimit", error: errorInfo(error), compensable: cached.completed.length > 0 }
        yield* apply(transition(compiled, cached.machine, input, now), undefined, [entry])
      })

      /** The next attempt of the current step, unless the execution has looped too long. */
      const stepOrStop = (state: Procedure.Step<string, unknown, unknown, unknown, unknown>) =>
        handle.spins >= loopLimit ? stopLoop : runStep(state)

      /** Does what the committed snapshot calls for. */
      const reconcile: Effect.Effect<"continue" | "wait" | "idle" | "done", StoreError> = Effect.gen(function*() {
        const s = cached.machine.snapshot
        const state = stateOf(def, s.state)!
        switch (s.status) {
          case "running": {
            if (state._tag !== "Step") return "idle"
            const timedOut = handle.timedOut
            handle.timedOut = undefined
            if (timedOut !== undefined && timedOut.visit === s.visit && timedOut.attempt === s.attempt + 1) {
              const timeout = new TimeoutError({ executionId: id, state: s.state, timeout: Duration.format(state.timeout) })
              yield* attemptFailed(state, timedOut.attempt, timeout, true)
            } else {
              yield* stepOrStop(state)
            }
            return "continue"
          }
          case "waiting": {
            const pending = yield* store.inbox(id, 1)
            // a sendAndWait whose event may be this one has not registered its waiter yet: it
            // wakes the actor when it has
            if (pending.length > 0 && !eventWaiters.isEnqueuing(id)) {
              const entry = pending[0]!
              const decodedEvent = compiled.decodeEvent(entry.event)
              const now = clock.unsafeCurrentTimeMillis()
              const waiter = eventWaiters.take(id, entry.seq)
              const expected = waiter?.expectVersion
              const conflict = expected !== undefined && expected !== s.seq ? versionConflict(s, expected) : undefined
              const output: Output = conflict !== undefined
                ? { _tag: "Discard", reason: { tag: conflict._tag, message: conflict.message } }
                : Either.isLeft(decodedEvent)
                ? { _tag: "Discard", reason: errorInfo(decodedEvent.left) }
                : transition(compiled, cached.machine, { _tag: "Event", event: decodedEvent.right, encoded: entry.event }, now)
              if (waiter === undefined) {
                yield* apply(output, entry.seq)
                return "continue"
              }
              yield* Effect.onError(apply(output, entry.seq), () => Effect.sync(() => eventWaiters.put(id, entry.seq, waiter)))
              settleWaiter(waiter, conflict ?? (output._tag === "Discard"
                ? { _tag: "Discarded", snapshot: cached.machine.snapshot, reason: output.reason }
                : { _tag: "Consumed", snapshot: cached.machine.snapshot }))
              return "continue"
            }
            if (s.timerDueAt !== undefined) {
              const now = clock.unsafeCurrentTimeMillis()
              if (s.timerDueAt <= now) {
                yield* apply(transition(compiled, cached.machine, { _tag: "TimerFired" }, now))
                return "continue"
              }
              if (!passivate || s.timerDueAt - now <= horizon) {
                if (handle.timer === undefined || handle.timer.visit !== s.visit) {
                  if (handle.timer !== undefined) deadlines.remove(handle.timer.deadline)
                  const visit = s.visit
                  const deadline = { at: s.timerDueAt, fire: () => post(handle, { _tag: "Timer", visit }) }
                  handle.timer = { visit, deadline }
                  deadlines.add(deadline)
                }
                return "wait"
              }
            }
            return passivate ? "idle" : "wait"
          }
          case "paused":
          case "needs_intervention":
            return passivate ? "idle" : "wait"
          case "compensating": {
            if (cached.completed.length > 0) {
              yield* compensateLast
              return "continue"
            }
            const now = clock.unsafeCurrentTimeMillis()
            yield* apply(transition(compiled, cached.machine, { _tag: "Compensated" }, now))
            return "done"
          }
          default:
            return "done"
        }
      })

      const handleMessage = (msg: Exclude<Msg, { readonly _tag: "Inbox" }>) =>
        Effect.gen(function*() {
          const now = clock.unsafeCurrentTimeMillis()
          switch (msg._tag) {
            case "Command": {
              const input: Input = msg.input._tag === "Rollback"
                ? { _tag: "Rollback", compensable: cached.completed.length > 0 }
                : msg.input
              if (input._tag === "Retry" || input._tag === "Resume") handle.retry = undefined
              // a person acted: what follows is not a runaway loop
              handle.spins = 0
              handle.current = msg.reply
              const rejected = yield* apply(transition(compiled, cached.machine, input, now))
              handle.current = undefined
              if (Option.isSome(rejected)) yield* Deferred.fail(msg.reply, rejected.value)
              else yield* Deferred.succeed(msg.reply, cached.machine.snapshot)
              return
            }
            case "Timer": {
              const s = cached.machine.snapshot
              if (msg.visit !== s.visit || s.status !== "waiting") return
              handle.timer = undefined
              yield* apply(transition(compiled, cached.machine, { _tag: "TimerFired" }, now))
              return
            }
          }
        })

      // the run loop; when it ends, so does the state's span
      yield* Effect.gen(function*() {
        let sinceTurn = 0
        while (true) {
          if (++sinceTurn >= roundsPerLook) {
            sinceTurn = 0
            yield* fairTurn
          }
          for (let msg = mailbox.poll(); msg !== undefined; msg = mailbox.poll()) {
            if (msg._tag !== "Inbox") yield* handleMessage(msg)
            else if (msg.cause !== undefined && msg.cause !== parent) executionSpan.addLinks([{ _tag: "SpanLink", span: msg.cause, attributes: {} }])
          }
          // the hot path: the next attempt of a running step
          const current = cached.machine.snapshot
          const state = stateOf(def, current.state)!
          if (current.status === "running" && state._tag === "Step" && handle.timedOut === undefined) {
            yield* stepOrStop(state)
            continue
          }
          const next = yield* reconcile
          if (next === "continue") continue
          if (handle.timer !== undefined && (cached.machine.snapshot.status !== "waiting" || handle.timer.visit !== cached.machine.snapshot.visit)) {
            deadlines.remove(handle.timer.deadline)
            handle.timer = undefined
          }
          if (next === "done") {
            // ended: leave memory, then refuse what is still queued from the terminal snapshot
            handles.delete(id)
            const rest = mailbox.drain()
            const now = clock.unsafeCurrentTimeMillis()
            for (const msg of rest) {
              if (msg._tag !== "Command") continue
              const output = transition(compiled, cached.machine, msg.input, now)
              if (output._tag === "Reject") yield* Deferred.fail(msg.reply, output.error)
              else yield* Deferred.succeed(msg.reply, cached.machine.snapshot)
            }
            return
          }
          // nothing to do until a message comes: leave memory (passivate) or park; either only when
          // no message is waiting (checked and done in one synchronous step)
          if (next === "wait" && mailbox.size === 0) {
            handle.phase = { _tag: "Parking", fiber: self }
            return
          }
          if (next === "idle" && mailbox.size === 0) {
            handles.delete(id)
            const s = cached.machine.snapshot
            const due = s.status === "waiting" ? s.timerDueAt : undefined
            if (due !== undefined && due - horizon < timerPoll.planned) {
              timerPoll.planned = due - horizon
              Deferred.unsafeDone(timerPoll.wake, Exit.void)
            }
            return
          }
        }
      }).pipe(Effect.onExit((exit) => {
        endStateSpan(exit)
        executionSpan.attribute("proctor.execution.status", cached.machine.snapshot.status)
        return Effect.void
      }))
    })

  return { runActor }
}

