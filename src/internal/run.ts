/**
 * One run of an execution's actor: the loop that serves queued messages (`messages.ts`),
 * then does what the committed snapshot calls for: a step's attempt (here), or an event
 * from the inbox, a timer, a compensation (`reconcile.ts`), committing each outcome before
 * the next step (`apply`, here). It ends when the execution ends, parks, or leaves memory
 * (`reconcile.ts`'s `settle`); `actor.ts` starts it, the supervisor decides what follows.
 *
 * A run is an object whose methods are shared by every run, not a closure per function
 * per run: an execution half-way through a step keeps its `Run`, the fiber's few stack
 * frames, and nothing else of the loop (see docs/architecture.md). Each method is called
 * from the run fiber when the effect before it has finished, and returns what the fiber
 * does next. What a run is made of (its handle, fiber, loaded execution) and its
 * execution's and states' spans are in its base class (`runSpans.ts`).
 */
import type { FiberRefs, MetricLabel, Tracer } from "effect"
import { Cause, Duration, Effect, Exit, Fiber, FiberRef, Option } from "effect"
import type { InvalidTransition, StoreError } from "../Errors.js"
import { TimeoutError } from "../Errors.js"
import type { ErrorEntry, Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { stateOf } from "../Procedure.js"
import type { Commit } from "../Store.js"
import type { Deadline, Deadlines } from "./deadlines.js"
import { fairTurn, roundsPerLook } from "./fairness.js"
import * as Failures from "./failures.js"
import type { Cached, CommandError, Handle, Msg, Phase } from "./handle.js"
import { recordCompleted, restore, runFiber } from "./handle.js"
import { defaultLoopLimit } from "./limits.js"
import type { LogAnnotations } from "./logAnnotations.js"
import { serve } from "./messages.js"
import { finishedBy, stateDuration, transitionsTotal } from "./metrics.js"
import { reconcile, settle } from "./reconcile.js"
import type { Hold } from "./resume.js"
import { RunSpans } from "./runSpans.js"
import type { Shared } from "./shared.js"
import * as Spans from "./spans.js"
import type { Machine, Output } from "./transition.js"
import { transition } from "./transition.js"

export type { Restore } from "./handle.js"

/** What the run loop asks of the supervisor. */
export interface SupervisorOps {
  readonly post: (handle: Handle, msg: Msg) => void
  readonly restartNow: (handle: Handle) => void
  readonly drainMailbox: (handle: Handle, error: CommandError) => Effect.Effect<void>
  /** decides what follows a run that ended while it was the handle's (in the run's fiber, uninterruptibly) */
  readonly afterRun: (handle: Handle, exit: Exit.Exit<void, StoreError>) => Effect.Effect<void>
}

/** What the runs of one runtime share. */
export interface Env {
  readonly shared: Shared
  readonly supervisor: SupervisorOps
  readonly detach: Failures.Detach
  /** what a run does first, in its fiber: its span and log annotations, loading the execution, then `begin` (`actor.ts`) */
  readonly start: (run: Run) => Effect.Effect<void, StoreError>
  /** the log annotations of runs and attempts, shared where they can be */
  readonly annotations: LogAnnotations
  /** the span maker of every run, made by the first from its fiber (`actor.ts`) */
  spans: Spans.Spans | undefined
  /**
   * The FiberRefs a run fiber has between two attempts, shared by all runs (see
   * `Spans.currentRefs`): those every run fiber starts with, taken by the first run.
   * Between attempts, a run's fiber has no span of the execution as its parent, and the
   * runtime's own log lines there are annotated where they are made (`logged`).
   */
  betweenAttempts: FiberRefs.FiberRefs | undefined
}

export type StepState = Procedure.Step<string, unknown, unknown, unknown, unknown>

/** What a turn of the loop leads to: another turn, or the end of the run and why. */
export type Signal = "continue" | "wait" | "idle" | "done"

const noRejection = Effect.succeed(Option.none<InvalidTransition>())
const noTags: ReadonlyArray<MetricLabel.MetricLabel> = []

/**
 * The runs in flight, by their fiber. The effects and continuations of the run loop are
 * made once and shared by every run (below): each finds its run from the fiber that
 * evaluates it (`Fiber.getCurrentFiber`, Effect's public API; only a run's own fiber
 * evaluates them). An execution half-way through a step then keeps one entry here
 * instead of ~700 B of closures and effects of its own (W1's heap pass, docs/benchmarks.md).
 */
const runs = new WeakMap<Fiber.RuntimeFiber<unknown, unknown>, Run>()

const current = (): Run => {
  const fiber = Option.getOrUndefined(Fiber.getCurrentFiber())
  const run = fiber === undefined ? undefined : runs.get(fiber)
  if (run === undefined) throw new Error("Proctor: a run's effect was evaluated outside the run's own fiber")
  return run
}

/** The loop's continuation: after a turn that ends in a `Signal`, another turn or the end; after anything else, another turn. */
const again = (signal: unknown): Effect.Effect<void, StoreError> => {
  const run = current()
  return signal === "wait" || signal === "idle" || signal === "done" ? settle(run, signal) : run.loop()
}

/** What follows the commit of a step's success (`succeeded`). */
const afterCommit = (): Effect.Effect<void, StoreError> => current().recordCommitted()

/**
 * The current attempt of a run's step, and what follows it: the run sets what the attempt
 * is before, so an attempt allocates no effect and no closure to start the user's `run`.
 */
const runAttempt: Effect.Effect<void, StoreError> = Effect.matchCauseEffect(restore(Effect.suspend(() => current().attemptEffect())), {
  onFailure: (cause) => current().afterStep(Exit.failCause(cause)),
  onSuccess: (value) => current().afterStep(Exit.succeed(value))
})

/** A run from its start to what ends it (one frame on the fiber's stack for the whole run). */
const body: Effect.Effect<void> = Effect.matchCauseEffect(Effect.suspend(() => current().begun()), {
  onFailure: (cause) => current().finish(Exit.failCause(cause)),
  onSuccess: () => current().finish(Exit.void)
})

/**
 * A run, as the Effect its fiber runs. The supervisor makes it and forks it (`forked`);
 * committed in its fiber, it registers itself (`runs`) and runs the shared `body`: its
 * start (`Env.start`, then `begin`), the loop, and what ends it (`finish`).
 */
export class Run extends RunSpans implements Deadline {
  /**
   * The run is the handle's phase itself while it decides and commits (`Busy`) and while
   * it is in a step's attempt (`Stepping`), and its own entry in the runtime's deadline
   * table: no object per phase or per attempt. The entry goes in at the run's first attempt
   * and stays there while the next attempts are due no earlier than it fires; when it fires,
   * a run in an attempt that is not due yet puts it back at the attempt's deadline, a run
   * between attempts leaves it out until its next attempt, and the run's end takes it out.
   * An insert and a delete per attempt were ~4% of W1's CPU in memory (bench/profile.ts).
   */
  _tag: "Busy" | "Stepping" = "Busy"
  /** when the deadline table fires the run's entry; Infinity while it is not in the table (it changes only then) */
  at = Infinity
  /** loop rounds since the last look at the fairness budget */
  private sinceTurn = 0
  /** the attempt in flight (a run makes one at a time): its step, span and deadline (its visit and number: `stepVisit`, `stepAttempt`) */
  stepState!: StepState
  stepSpan: Tracer.Span | undefined = undefined
  dueAt = 0
  /** the transition of a step's success while it commits (`succeeded`) */
  private pending: Extract<Output, { readonly _tag: "Next" }> | undefined = undefined
  constructor(
    env: Env,
    handle: Handle,
    /** what the run waits for before it starts (a restart's backoff), interruptibly */
    private before: Effect.Effect<void, StoreError> | undefined
  ) {
    super(env, handle)
  }

  /** the run as the handle's phase between steps */
  get busy(): Phase {
    this._tag = "Busy"
    return this
  }

  get deadline(): Deadline {
    return this
  }

  // the snapshot does not change during an attempt and until its outcome is committed
  // (only the run commits, after it), so the attempt's visit and number are read from it
  get stepVisit(): number {
    return this.cached.machine.snapshot.visit
  }

  get stepAttempt(): number {
    return this.cached.machine.snapshot.attempt + 1
  }

  /** The entry fires by `due`, when an attempt due then starts. */
  private arm(deadlines: Deadlines, due: number) {
    if (this.at <= due) return
    if (this.at !== Infinity) deadlines.remove(this)
    this.at = due
    deadlines.add(this)
  }

  /** The run ended: its entry leaves the table. */
  private disarm(deadlines: Deadlines) {
    if (this.at === Infinity) return
    deadlines.remove(this)
    this.at = Infinity
  }

  fire() {
    const fired = this.at
    this.at = Infinity
    const handle = this.handle
    // between attempts, or replaced: nothing to time out
    if (handle.phase !== this || this._tag !== "Stepping") return
    if (this.dueAt > fired) return this.arm(this.env.shared.deadlines, this.dueAt)
    handle.timedOut = { visit: this.stepVisit, attempt: this.stepAttempt }
    this.env.supervisor.restartNow(handle)
  }

  commit(): Effect.Effect<void, StoreError> {
    runs.set(this.self, this)
    return body
  }

  /** The run's start in its fiber, after what it waits for first. */
  begun(): Effect.Effect<void, StoreError> {
    const before = this.before
    if (before === undefined) return this.env.start(this)
    this.before = undefined
    return Effect.zipRight(before, Effect.suspend(() => this.env.start(this)))
  }

  /** The execution is loaded and the run's span and annotations are set on its fiber: the loop starts. */
  begin(cached: Cached): Effect.Effect<void, StoreError> {
    this.cached = cached
    this.enterStateSpan(cached.machine.snapshot)
    return this.loop()
  }

  /** The run ended: its spans end, and the supervisor decides what follows, unless the run is stale. */
  finish(exit: Exit.Exit<void, StoreError>): Effect.Effect<void> {
    runs.delete(this.self)
    this.disarm(this.env.shared.deadlines)
    this.endSpans(exit)
    if (runFiber(this.handle) !== this.self) return Effect.void
    // what follows a run that ended by itself logs nothing: no annotations to set for it (`Effect.locally` copies the FiberRefs twice)
    const after = this.env.supervisor.afterRun(this.handle, exit)
    return Exit.isSuccess(exit) ? after : this.logged(after)
  }

  /** transitions in a row without waiting after which the execution fails (the runaway-loop guard) */
  get loopLimit() {
    return this.def.maxTransitionsWithoutWaiting ?? defaultLoopLimit
  }

  /** Whether a command or a timeout replaced this run (it must stop where it is). */
  stale() {
    return runFiber(this.handle) !== this.self
  }

  /** `effect` with the run's log annotations (the runtime's own lines between attempts) */
  logged<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return this.cached === undefined
      ? effect
      : Effect.locally(effect, FiberRef.currentLogAnnotations, this.env.annotations.run(this.baseAnnotations, this.def.name, this.id))
  }

  /** the log annotations of an attempt in `state` */
  annotationsOf(state: string, attempt: number) {
    return this.env.annotations.attempt(this.baseAnnotations, this.def.name, this.id, state, attempt)
  }

  /**
   * One round of the loop: queued messages first, then what the snapshot calls for. What
   * it returns goes on with the loop itself (a step's attempt does so from `afterStep`),
   * so that the fiber's stack holds no frame of the loop while an attempt runs.
   */
  loop(): Effect.Effect<void, StoreError> {
    // started by a burst of resumes: after a first round that committed no step outcome it waits for the rest (`resume.ts`)
    if (this.handle.hold !== undefined && this.sinceTurn > 0) return this.held(this.handle.hold, () => this.loop())
    if (++this.sinceTurn >= roundsPerLook) {
      this.sinceTurn = 0
      return Effect.flatMap(fairTurn, again)
    }
    const mailbox = this.handle.mailbox
    for (let msg = mailbox.poll(); msg !== undefined; msg = mailbox.poll()) {
      if (msg._tag !== "Inbox") return Effect.flatMap(serve(this, msg), again)
      // the span of the request that started this run is its parent: the others are linked
      if (msg.cause !== undefined && msg.cause !== this.cause) {
        this.executionSpan.addLinks([{ _tag: "SpanLink", span: msg.cause, attributes: {} }])
      }
    }
    const s = this.cached.machine.snapshot
    const state = stateOf(this.def, s.state)!
    if (s.status !== "running" || state._tag !== "Step") return Effect.flatMap(reconcile(this), again)
    // the hot path: the next attempt of a running step, unless the last one ran past its timeout
    const timedOut = this.handle.timedOut
    if (timedOut !== undefined) {
      this.handle.timedOut = undefined
      if (timedOut.visit === s.visit && timedOut.attempt === s.attempt + 1) {
        const timeout = new TimeoutError({ executionId: this.id, state: s.state, timeout: Duration.format(state.timeout) })
        return Effect.flatMap(Failures.attemptFailed(this, state, timedOut.attempt, timeout, true), again)
      }
    }
    if (this.handle.spins >= this.loopLimit) return Effect.flatMap(Failures.stopLoop(this), again)
    return this.runStep(state)
  }

  /** Waits for the burst that started this run; a command replaces the run meanwhile, as in a backoff. */
  private held(hold: Hold, then: () => Effect.Effect<void, StoreError>): Effect.Effect<void, StoreError> {
    this.handle.hold = undefined
    if (!hold.open) return then()
    this.handle.phase = { _tag: "Sleeping", fiber: this.self }
    return Effect.flatMap(restore(hold.wait), () => {
      if (this.stale()) return Effect.interrupt
      this.handle.phase = this.busy
      return then()
    })
  }

  /** Runs one attempt of the current step, inline, interruptible only inside `restore`. */
  private runStep(state: StepState): Effect.Effect<void, StoreError> {
    const s = this.cached.machine.snapshot
    const attempt = s.attempt + 1
    // the attempt's span and log annotations are set on the run fiber (dedicated to this
    // execution) rather than scoped around the step: the same effect for much less work
    const span = this.spans.lazy
      ? this.spans.makeStep(this, s.visit, s.state, attempt)
      : this.spans.make("proctor.step", this.stateSpan ?? this.executionSpan, { "proctor.execution.id": this.id, "proctor.state.name": s.state, "proctor.step.attempt": attempt })
    this.stepState = state
    this.stepSpan = span
    this.dueAt = this.now() + Duration.toMillis(state.timeout)
    this.arm(this.env.shared.deadlines, this.dueAt)
    this._tag = "Stepping"
    this.handle.phase = this
    return Spans.setParentAndAnnotations(this.self, this.spans, span, this.annotationsOf(s.state, attempt), runAttempt)
  }

  /**
   * What the current attempt runs (`runAttempt`): the step's `run`, or a child state's child,
   * started (or joined) through the runtime; through its dependency's guard, if it names
   * one (which may refuse it before it starts).
   */
  attemptEffect(): Effect.Effect<unknown, unknown> {
    const state = this.stepState
    const dependency = state.dependency
    if (dependency === undefined) return this.callRun(state, this.stepAttempt)
    const attempt = this.stepAttempt
    return this.env.shared.dependencies.guard(dependency, Effect.suspend(() => this.callRun(state, attempt)), this.dueAt, state.isTransient)
  }

  /** A `run` that throws instead of returning an Effect fails the attempt (a defect). */
  private callRun(state: StepState, attempt: number): Effect.Effect<unknown, unknown> {
    const s = this.cached.machine.snapshot
    const args = { context: this.cached.machine.context, executionId: this.id, state: s.state, attempt, idempotencyKey: `${this.id}/${s.state}/${s.visit}` }
    try {
      return (state.child === undefined ? state.run(args) : this.env.shared.children.run(state.child, args)) as Effect.Effect<unknown, unknown>
    } catch (error) {
      return Effect.die(error)
    }
  }

  afterStep(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void, StoreError> {
    this.stepSpan!.end(this.spans.now(), exit)
    // what the attempt made is garbage from here on (see `Spans.currentRefs`)
    this.stepSpan = undefined
    Spans.restoreRefs(this.self, this.env.betweenAttempts)
    // a command or the timeout gave up on this run while the step would not stop: the
    // new run owns the handle, and what the step returned goes nowhere
    if (this.stale()) return Effect.interrupt
    this.handle.phase = this.busy
    if (Exit.isSuccess(exit)) {
      // started by a burst of resumes: the outcome is committed once the burst has started the rest (`resume.ts`)
      const hold = this.handle.hold
      if (hold !== undefined && hold.open) return this.held(hold, () => this.succeeded(exit.value))
      return this.succeeded(exit.value)
    }
    if (Cause.isInterruptedOnly(exit.cause)) return Effect.interrupt
    const failure = Cause.failureOption(exit.cause)
    const error = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
    return Effect.flatMap(Failures.attemptFailed(this, this.stepState, this.stepAttempt, error, Option.isSome(failure)), again)
  }

  /**
   * Commits a step's success and goes on with the loop. The hot path: the commit is
   * followed by `afterCommit` directly (no closure per commit, and two fewer steps of the
   * fiber than through `apply` and `again`).
   */
  private succeeded(result: unknown): Effect.Effect<void, StoreError> {
    const s = this.cached.machine.snapshot
    const output = transition(this.compiled, this.cached.machine, { _tag: "StepSucceeded", result, compensable: this.cached.completed.length > 0 }, this.now())
    if (output._tag !== "Next") return Effect.flatMap(this.apply(output), again)
    this.pending = output
    return Effect.flatMap(this.env.shared.store.commit({ snapshot: output.machine.snapshot, expectedVersion: s.rowVersion, transition: output.transition }), afterCommit)
  }

  /** The transition of a step's success is committed (`succeeded`): the run records it and goes on. */
  recordCommitted(): Effect.Effect<void, StoreError> {
    const pending = this.pending!
    this.pending = undefined
    this.committed(this.cached.machine.snapshot, pending.machine, pending.transition)
    return this.loop()
  }

  /** Commits the outcome of the transition function; returns the error of a rejection. */
  apply(output: Output, consumed?: number, errors?: ReadonlyArray<ErrorEntry>): Effect.Effect<Option.Option<InvalidTransition>, StoreError> {
    if (output._tag === "Reject") return Effect.succeed(Option.some(output.error))
    // a `Compensate` is served by `handleMessage`, never committed as such
    if (output._tag === "Serve") return noRejection
    const s = this.cached.machine.snapshot
    if (output._tag === "Discard") {
      const now = this.now()
      const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
      const entry: ErrorEntry = { executionId: this.id, state: s.state, attempt: s.attempt, tag: output.reason.tag, message: output.reason.message, transient: false, at: now }
      return Effect.as(this.commitCount(snapshot, { consumed, errors: [entry] }), Option.none())
    }
    const next = output.machine
    const t = output.transition
    return Effect.flatMap(
      this.env.shared.store.commit({ snapshot: next.snapshot, expectedVersion: s.rowVersion, transition: t, consumed, errors }),
      () => this.committed(s, next, t)
    )
  }

  private committed(s: Snapshot, next: Machine, t: Transition) {
    const { cached, handle } = this
    cached.machine = next
    const status = next.snapshot.status
    handle.spins = status === "running" || status === "compensating" ? handle.spins + 1 : 0
    stateDuration.unsafeUpdate(t.duration, noTags)
    transitionsTotal.unsafeUpdate(1, noTags)
    if (next.snapshot.visit !== s.visit) handle.retry = undefined
    if (next.snapshot.visit !== s.visit || isTerminal(status)) this.enterStateSpan(next.snapshot)
    if (isTerminal(status) !== isTerminal(s.status)) {
      // an execution's end counts once: a parent's undo of one that succeeded ends it again
      if (!isTerminal(status)) cached.reopened = true
      else if (cached.reopened !== true) finishedBy(status).unsafeUpdate(1, [])
    }
    if (t.cause === "step" && this.compiled.compensable.has(t.from)) recordCompleted(cached, { stepSeq: t.seq, state: t.from })
    // a child state left otherwise than by its child's success: the child ends too
    if (t.cause !== "step" && (next.snapshot.visit !== s.visit || isTerminal(status) || status === "compensating")) {
      const from = stateOf(this.def, s.state)
      if (from?._tag === "Step" && from.child !== undefined) this.env.shared.children.left(next.snapshot, { state: s.state, visit: s.visit })
    }
    this.env.shared.publish(next.snapshot, t)
    return noRejection
  }

  /** Commits a snapshot that only counts (a discarded event, a failed attempt, a compensation's record) with what goes with it. */
  commitCount(snapshot: Snapshot, extra: Omit<Commit, "snapshot" | "expectedVersion">) {
    const s = this.cached.machine.snapshot
    return Effect.map(this.env.shared.store.commit({ ...extra, snapshot, expectedVersion: s.rowVersion }), () => {
      this.cached.machine = { snapshot, context: this.cached.machine.context }
    })
  }
}
