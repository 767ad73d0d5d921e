/**
 * The runtime: one actor fiber per active execution, forked into a FiberSet owned by the
 * runtime's scope, each reading its own mailbox and committing through the Store.
 */
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  FiberId,
  FiberSet,
  FiberRef,
  HashMap,
  Option,
  PubSub,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Stream
} from "effect"
import type { Tracer ,
  Fiber} from "effect"
import type { ErrorEntry, ExecutionEvent, ListFilter, Snapshot, Transition } from "../Execution.js"
import type { RuntimeService } from "../Runtime.js"
import { ExecutionId, isTerminal } from "../Execution.js"
import {
  DefinitionError,
  ExecutionError,
  ExecutionNotFound,
  InvalidTransition,
  LoopLimitExceeded,
  MaxRetriesExceeded,
  SendTimeout,
  StoreError,
  TimeoutError,
  ValidationError,
  VersionConflict
} from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import { checkRetries, handlerOf, stateOf, validate } from "../Procedure.js"
import type { HistoryOptions, StoreService, TimerEntry } from "../Store.js"
import type { Compiled, Input, Machine, Output } from "./transition.js"
import { compile, errorInfo, procedureKey, start as startMachine, transition } from "./transition.js"
import * as Deadlines from "./deadlines.js"
import * as Replay from "./replay.js"
import * as Spans from "./spans.js"
import * as StoreHealth from "./storeHealth.js"
import type { SendResult } from "./eventWaiters.js"
import { EventWaiters, settle as settleWaiter } from "./eventWaiters.js"
import type { Deadline } from "./deadlines.js"

/** Options of `Runtime.layer`. */
export interface RuntimeOptions {
  readonly procedures: ReadonlyArray<Procedure.Any>
  readonly supervision?: {
    /** restarts allowed within `within` before the execution is failed. @default 5 */
    readonly maxRestarts?: number | undefined
    /** @default "1 minute" */
    readonly within?: Duration.DurationInput | undefined
    /** first restart delay, doubled on each restart. @default "100 millis" */
    readonly backoff?: Duration.DurationInput | undefined
  } | undefined
  readonly passivation?: {
    /** let an execution that waits with no timer due within `horizon` leave memory. @default true */
    readonly enabled?: boolean | undefined
    /** @default "30 seconds" */
    readonly horizon?: Duration.DurationInput | undefined
  } | undefined
  /** resume non-terminal executions when the runtime starts. @default true */
  readonly recover?: boolean | undefined
  /** how many actors may load their execution from the store at once (recovery wakes many). @default 64 */
  readonly loadConcurrency?: number | undefined
  /**
   * Recovery resumes at most this many executions at once (running ones: a parked or
   * passivated execution leaves room); the rest start as those finish or wait, oldest first.
   * It bounds the memory a restart needs after a crash with a large backlog in flight
   * (15–20 KB of heap per running execution). @default 100000
   */
  readonly recoverWindow?: number | undefined
  /**
   * Proctor's own spans (`proctor.start`, `proctor.execution`, `proctor.step`, ...). `false`
   * makes none, for speed; logs, metrics and the spans a step makes itself are unchanged.
   * @default true
   */
  readonly tracing?: boolean | undefined
  /** events a `watch` subscriber may fall behind by before the oldest are dropped. @default 16384 */
  readonly watchBuffer?: number | undefined
  /**
   * History retention, applied in the background to executions that have ended (a live
   * execution keeps its whole history). @default keep everything
   */
  readonly retention?: {
    /** keep the last `keepLast` transitions of each ended execution */
    readonly keepLast?: number | undefined
    /** drop transitions older than this */
    readonly maxAge?: Duration.DurationInput | undefined
    /** how often to apply it. @default "1 hour" */
    readonly every?: Duration.DurationInput | undefined
  } | undefined
}

/** Options of `Runtime.sendAndWait`. */
export interface SendAndWaitOptions {
  /**
   * the snapshot `seq` the caller last saw: the event is refused (`VersionConflict`) if the
   * execution is at another seq when it is sent or when it is to be applied
   */
  readonly expectVersion?: number | undefined
  /** how long to wait for the event to be consumed or discarded (`SendTimeout`); the event still stands after it */
  readonly timeout?: Duration.DurationInput | undefined
}

export interface StartOptions {
  readonly id?: string | undefined
  readonly tenant?: string | undefined
  readonly parentId?: string | undefined
  /** starting twice with the same key returns the first execution's id */
  readonly idempotencyKey?: string | undefined
}

type CommandInput = Extract<Input, { readonly _tag: "Pause" | "Resume" | "Cancel" | "Rollback" | "Retry" | "Skip" }>
type CommandError = InvalidTransition | ExecutionNotFound | StoreError

/** `cause`: the span of the `start` or `send` that sent the message (tracing links the run to it) */
type Msg =
  | { readonly _tag: "Command"; readonly input: CommandInput; readonly reply: Deferred.Deferred<Snapshot, CommandError> }
  | { readonly _tag: "Inbox"; readonly cause?: Tracer.Span | undefined }
  | { readonly _tag: "Timer"; readonly visit: number }

/**
 * An actor's mailbox. Offering is synchronous, so that finding an actor and delivering
 * to it happen in one step with no yield between (an actor parks or leaves memory in one
 * synchronous step too, only when its mailbox is empty).
 */
class Mailbox {
  private items: Array<Msg> = []
  private head = 0
  get size() {
    return this.items.length - this.head
  }
  offer(msg: Msg) {
    this.items.push(msg)
  }
  peek(): Msg | undefined {
    return this.items[this.head]
  }
  poll(): Msg | undefined {
    if (this.head >= this.items.length) return undefined
    const msg = this.items[this.head]!
    this.items[this.head++] = undefined as never
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return msg
  }
  hasCommand(): boolean {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!._tag === "Command") return true
    return false
  }
  drain(): Array<Msg> {
    const out: Array<Msg> = []
    for (let m = this.poll(); m !== undefined; m = this.poll()) out.push(m)
    return out
  }
}

interface Cached {
  readonly compiled: Compiled
  machine: Machine
  /** completed steps whose compensation has not run, oldest first */
  readonly completed: Array<{ readonly stepSeq: number; readonly state: string }>
}

interface Handle {
  readonly id: string
  readonly mailbox: Mailbox
  /** the current run fiber */
  fiber?: Fiber.RuntimeFiber<void, StoreError> | undefined
  /**
   * set while the execution waits in memory with no run fiber (its state stays cached
   * here, its timer stays set): the next message starts a run
   */
  parked: boolean
  /** set by a run that ends to park; the run's end (`afterRun`) parks it */
  parking: boolean
  /** the committed state, kept between runs of one activation */
  cached?: Cached | undefined
  /** true while the run fiber may be interrupted to serve a command (a step or a backoff) */
  interruptible: boolean
  /** the deadline of the attempt that is running */
  stepping?: Deadline | undefined
  /** set when an attempt ran past its timeout */
  timedOut?: { readonly visit: number; readonly attempt: number } | undefined
  /** the retry Schedule's state for the current visit */
  retry?: { readonly visit: number; readonly state: unknown } | undefined
  /** the timer of the current wait state */
  timer?: { readonly visit: number; readonly deadline: Deadline } | undefined
  /** when the recent restarts after failures happened (for the intensity limit) */
  readonly restarts: Array<number>
  /** set while a compensation runs: a command it refuses is answered at once, without stopping it */
  compensating?: boolean | undefined
  /** transitions in a row without waiting for an event, a timer or a person (the runaway-loop guard) */
  spins: number
  /** the reply of the command being applied */
  current?: Deferred.Deferred<Snapshot, CommandError> | undefined
}

import {
  activeActors,
  executionsStarted,
  finishedBy,
  restartsTotal,
  retriesTotal,
  stateDuration,
  transitionsTotal
} from "./metrics.js"

/**
 * A new execution id: a UUID version 7 (RFC 9562), the time in its first 48 bits, then
 * random bits. Executions started close in time get nearby ids, so a store's indexes
 * (B-trees keyed by execution id) take their rows on a few pages instead of scattering
 * them: measured on SQLite, 10k executions of ten steps, in lock step, 52k transitions/s
 * with random (v4) ids against 107k with v7 ids (.scratch rawx driver, this machine).
 */
export const newId = (now: number) => {
  const time = Math.max(0, Math.floor(now)).toString(16).padStart(12, "0").slice(-12)
  return `${time.slice(0, 8)}-${time.slice(8)}-7${crypto.randomUUID().slice(15)}`
}

export const make = Effect.fnUntraced(function*(unwatched: StoreService, options: RuntimeOptions) {
  // the store, watched for outages (Runtime.health)
  const outage = StoreHealth.make(unwatched)
  const store = outage.store
  const registry = new Map<string, Compiled>()
  for (const def of options.procedures) {
    const checked = validate(def)
    if (Either.isLeft(checked)) return yield* checked.left
    yield* checkRetries(def)
    const compiled = compile(def)
    if (registry.has(compiled.key)) {
      return yield* new DefinitionError({
        procedure: def.name,
        reason: `version ${def.version} is registered twice; give each definition its own version`
      })
    }
    registry.set(compiled.key, compiled)
  }

  const maxRestarts = options.supervision?.maxRestarts ?? 5
  const within = Duration.toMillis(options.supervision?.within ?? "1 minute")
  const backoff = Duration.toMillis(options.supervision?.backoff ?? "100 millis")
  const passivate = options.passivation?.enabled ?? true
  const horizon = Duration.toMillis(options.passivation?.horizon ?? "30 seconds")
  const tracing = options.tracing ?? true
  const internals = yield* Spans.checkInternals
  if (internals._tag === "Public") {
    yield* Effect.logWarning(
      `Effect's fiber internals are not what Proctor expects (${internals.reason}): spans and log annotations ` +
        `are set through Effect's public API instead, which is slower. Use the Effect version Proctor pins, or upgrade Proctor.`
    )
  }
  const fast = internals._tag === "Fast"

  // Compensations run in fibers of their own, in this set (see `detach`);
  // made before the actors' set so that closing the runtime stops the actors first
  const attempts = yield* FiberSet.make<Exit.Exit<unknown, unknown>>()
  const forkAttempt = yield* FiberSet.runtime(attempts)<never>()
  const fibers = yield* FiberSet.make<void, StoreError>()
  // actors run with the runtime's own context (the services its procedures need), whoever wakes them
  const fork = yield* FiberSet.runtime(fibers)<never>()
  let closed = false
  yield* Effect.addFinalizer(() => Effect.sync(() => void (closed = true)))
  const handles = new Map<string, Handle>()
  const events = yield* PubSub.sliding<ExecutionEvent>(options.watchBuffer ?? 16384)
  const waiters = new Map<string, Array<Deferred.Deferred<Snapshot>>>()
  const eventWaiters = new EventWaiters()
  yield* Effect.addFinalizer(() => Effect.sync(() => eventWaiters.close(shuttingDownWait)))
  const timerPoll = { planned: Infinity, wake: Deferred.unsafeMake<void>(FiberId.none) }
  const deadlines = Deadlines.make()
  yield* Effect.forkScoped(deadlines.run)
  let active = 0
  /** handles in memory without a fiber (parked) */
  let parked = 0

  const publish = (snapshot: Snapshot, t: Transition) => {
    if (isTerminal(snapshot.status)) {
      eventWaiters.ended(snapshot)
      const ws = waiters.get(snapshot.id)
      if (ws !== undefined) {
        waiters.delete(snapshot.id)
        for (const w of ws) Deferred.unsafeDone(w, Exit.succeed(snapshot))
      }
    }
    events.unsafeOffer({
      executionId: snapshot.id,
      procedure: snapshot.procedure,
      seq: t.seq,
      from: t.from,
      state: snapshot.state,
      status: snapshot.status,
      cause: t.cause,
      at: t.at
    })
  }

  /**
   * The compiled definition an execution runs on: registered under its name and version,
   * with the shape it started on (an execution stored before fingerprints were kept has none
   * and is taken as it is). Otherwise `unavailable` says why there is none.
   */
  const lookup = (snapshot: Snapshot) => {
    const compiled = registry.get(procedureKey(snapshot.procedure, snapshot.version))
    return compiled !== undefined && (snapshot.fingerprint === undefined || snapshot.fingerprint === compiled.fingerprint)
      ? compiled
      : undefined
  }
  const unavailable = (s: Snapshot) =>
    registry.has(procedureKey(s.procedure, s.version))
      ? `Procedure ${s.procedure} version ${s.version} changed since this execution started (its states or transitions ` +
        `differ). Give the changed definition a new version and keep the old one registered, so that executions ` +
        `started on it finish on it; this execution was left as it is.`
      : `Procedure ${s.procedure} version ${s.version} is not registered with this runtime; register it in ` +
        `Runtime.layer to resume its executions.`
  /** procedure versions whose executions this runtime cannot run, reported once each */
  const reported = new Set<string>()

  const notFound = (id: string) => new ExecutionNotFound({ executionId: id })

  const getSnapshot = (id: string) =>
    Effect.flatMap(store.get(id), Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed }))

  // ---------------------------------------------------------------------------
  // the actor
  //
  // An execution's actor is a supervisor fiber (in the FiberSet) that forks run fibers.
  // A run loads the execution (or takes it from the handle), then loops: handle queued
  // messages, then do what the committed snapshot calls for. Steps run inline in the
  // run fiber; a command that must stop a step (pause, cancel, ...) or a step's
  // timeout interrupts the run fiber, and the supervisor starts a new run at once from
  // the last committed state. Commits are uninterruptible.

  const loadMachine = (handle: Handle) =>
    Effect.suspend(() => handle.cached !== undefined ? Effect.succeed(handle.cached) : loads.withPermits(1)(load(handle)))

  // bounds how many actors read their execution from the store at once (recovery wakes many)
  const loads = yield* Effect.makeSemaphore(options.loadConcurrency ?? 64)

  const load = (handle: Handle) =>
    Effect.gen(function*() {
      const loaded = yield* store.get(handle.id)
      if (Option.isNone(loaded)) return undefined
      const compiled = lookup(loaded.value)
      if (compiled === undefined) return { missing: loaded.value } as const
      const decoded = compiled.decodeContext(loaded.value.context)
      if (Either.isLeft(decoded)) return yield* Effect.die(decoded.left)
      const completed: Array<{ readonly stepSeq: number; readonly state: string }> = []
      if (compiled.compensable.size > 0) {
        const [history, done] = yield* Effect.all([store.history(handle.id), store.compensations(handle.id)])
        const finished = new Set(done.map((c) => c.stepSeq))
        for (const t of history) {
          if (t.cause === "step" && compiled.compensable.has(t.from) && !finished.has(t.seq)) {
            completed.push({ stepSeq: t.seq, state: t.from })
          }
        }
      }
      const cached: Cached = { compiled, machine: { snapshot: loaded.value, context: decoded.right }, completed }
      handle.cached = cached
      return cached
    })

  type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

  /**
   * Runs an attempt (a compensation) in a fiber of its own in the runtime's `attempts` set,
   * and waits for its exit interruptibly (within `limit`, if given): at the limit, or when
   * the run is interrupted, it stops waiting at once even when the attempt cannot be
   * interrupted (`Effect.uninterruptible`). The attempt is interrupted without waiting for
   * it, stays supervised in the set until it ends, and its late result goes nowhere. (A
   * step's attempt runs inline, which costs no fiber; `restartNow` stops waiting for it.) `setup` runs first in the attempt's fiber (its
   * span and log annotations). Call it from the uninterruptible run fiber: the fork and
   * the handler that interrupts the attempt are installed with no interruption between.
   */
  const detach = <A, E, T>(
    restore: Restore,
    setup: (fiber: Fiber.RuntimeFiber<unknown, unknown>, next: Effect.Effect<Exit.Exit<A, E>>) => Effect.Effect<Exit.Exit<A, E>>,
    attempt: Effect.Effect<A, E>,
    limit?: { readonly millis: number; readonly error: T }
  ): Effect.Effect<Exit.Exit<A, E | T>> => {
    const child = forkAttempt(Effect.withFiberRuntime<Exit.Exit<A, E>>((fiber) => setup(fiber, Effect.exit(attempt))))
    // an attempt that finished synchronously (a fast step) costs no wait
    const done = child.unsafePoll()
    if (done !== null) return Effect.succeed(Exit.flatten(done) as Exit.Exit<A, E>)
    const exited = Effect.map(child.await, (exit) => Exit.flatten(exit) as Exit.Exit<A, E>)
    const wait: Effect.Effect<Exit.Exit<A, E | T>> = limit === undefined
      ? exited
      : Effect.raceFirst(exited, Effect.as(Deadlines.sleepMillis(limit.millis), Exit.fail(limit.error)))
    return Effect.onExit(restore(wait), () => {
      if (child.unsafePoll() === null) child.unsafeInterruptAsFork(FiberId.none)
      return Effect.void
    })
  }

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
    /** this run's fiber: once it is no longer `handle.fiber`, the run is stale (see `restartNow`) */
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
        handle.compensating = true
        handle.interruptible = true
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
          if (handle.fiber !== self) return Effect.interrupt
          handle.compensating = false
          handle.interruptible = false
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
          // the backoff sleeps in the run fiber: a command may interrupt it
          handle.interruptible = true
          yield* Spans.within(spans, "proctor.retry", stateSpan ?? executionSpan, { "proctor.execution.id": id, "proctor.state.name": s.state, "proctor.step.attempt": attempt }, restore(Deadlines.sleepMillis(retryIn.value)))
          if (handle.fiber !== self) return yield* Effect.interrupt
          handle.interruptible = false
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
              if (handle.stepping !== deadline) return
              handle.timedOut = { visit: s.visit, attempt }
              restartNow(handle)
            }
          }
          deadlines.add(deadline)
          handle.stepping = deadline
          handle.interruptible = true
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
            if (handle.fiber !== fiber) return Effect.interrupt
            handle.interruptible = false
            handle.stepping = undefined
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
            handle.parking = true
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

  const drainMailbox = (handle: Handle, error: CommandError) =>
    Effect.gen(function*() {
      const msgs = yield* Effect.sync(() => {
        if (handles.get(handle.id) === handle) handles.delete(handle.id)
        return handle.mailbox.drain()
      })
      for (const msg of msgs) if (msg._tag === "Command") yield* Deferred.fail(msg.reply, error)
    })

  /**
   * Starts a run of an actor: one fiber in the FiberSet. A run we interrupted (a command
   * or a timeout) is followed at once by a new one; a run that failed (a defect in the
   * runtime's machinery, a store error) by a new one that reloads from the store after a
   * backoff, within the intensity limit. A run that ends by itself ends the activation.
   */
  const startRun = (handle: Handle, delay: number, waitsForStore = false) => {
    handle.interruptible = false
    handle.fiber = fork(
      Effect.uninterruptibleMask((restore) =>
        delay > 0
          ? Effect.zipRight(waitsForStore ? waitForStoreBackoff(handle, delay, restore) : restore(Deadlines.sleepMillis(delay)), runActor(handle, restore))
          : runActor(handle, restore)
      ).pipe(Effect.onExit((exit) => Effect.withFiberRuntime((fiber) => handle.fiber === fiber ? afterRun(handle, exit) : Effect.void))),
      // not on the caller's stack: a restart is started from the finalizer of the run before it
      { immediate: false }
    )
  }

  /**
   * The backoff of an actor that waits for the store; it ends early when the store is
   * back, and a command cuts it short (the command is tried on the store at once). It is
   * made interruptible from inside the run: an interrupt sent before the run fiber starts
   * would skip the run, and `afterRun` with it.
   */
  const waitForStoreBackoff = (handle: Handle, delay: number, restore: Restore) =>
    Effect.withFiberRuntime<void>((fiber) => {
      if (handle.mailbox.hasCommand()) return Effect.void
      handle.interruptible = true
      return Effect.ensuring(
        restore(Effect.race(Deadlines.sleepMillis(delay), outage.back())),
        Effect.sync(() => {
          if (handle.fiber === fiber) handle.interruptible = false
        })
      )
    })

  const afterRun = (handle: Handle, exit: Exit.Exit<void, StoreError>) =>
    Effect.gen(function*() {
      handle.fiber = undefined
      const parking = handle.parking
      handle.parking = false
      const error = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      if (handle.current !== undefined && Exit.isFailure(exit)) {
        // the command whose commit the store refused gets the store's error; any other failure is a defect
        yield* Deferred.failCause(handle.current, error instanceof StoreError ? Cause.fail(error) : Cause.die(error))
        handle.current = undefined
      }
      if (StoreHealth.isOutage(error)) {
        return yield* closed ? Effect.zipRight(drainMailbox(handle, shuttingDown), endActivation(handle)) : waitForStore(handle, error)
      }
      // the current run is interrupted only when the runtime closes (a command or a timeout
      // replaces the run instead: `restartNow`)
      if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)) return yield* endActivation(handle)
      if (Exit.isSuccess(exit) && parking) {
        // park, unless a message came while the run was ending
        if (handle.mailbox.size === 0) {
          handle.parked = true
          parked++
          resumeMore()
        } else if (!closed) startRun(handle, 0)
        else {
          yield* drainMailbox(handle, shuttingDown)
          yield* endActivation(handle)
        }
        return
      }
      if (Exit.isSuccess(exit)) return yield* endActivation(handle)
      handle.cached = undefined
      outage.done(handle.id)
      const now = yield* Clock.currentTimeMillis
      while (handle.restarts.length > 0 && handle.restarts[0]! <= now - within) handle.restarts.shift()
      if (handle.restarts.length >= maxRestarts || closed) {
        yield* Effect.logError(`Execution ${handle.id}: giving up after ${handle.restarts.length} restarts`, exit.cause)
        return startGiveUp(handle, error, handle.restarts.length)
      }
      handle.restarts.push(now)
      restartsTotal.unsafeUpdate(1, [])
      yield* Effect.logWarning(`Execution ${handle.id}: actor failed, restarting (${handle.restarts.length}/${maxRestarts})`, exit.cause)
      startRun(handle, backoff * 2 ** (handle.restarts.length - 1))
    })

  /**
   * A store outage is not a defect and does not count against the intensity limit: the
   * actor runs again from the last committed state after a backoff (100 ms doubling to
   * 30 s), or as soon as the store is back, however long that takes.
   */
  const waitForStore = (handle: Handle, error: StoreError) =>
    Effect.gen(function*() {
      handle.cached = undefined
      // commands queued meanwhile are answered now, with the store's error, not when the store is back;
      // the other messages are nudges that the next run finds again in the store
      for (const msg of handle.mailbox.drain()) if (msg._tag === "Command") yield* Deferred.fail(msg.reply, error)
      const attempt = outage.wait(handle.id)
      yield* Effect.logDebug(`Execution ${handle.id}: waiting for the store (attempt ${attempt})`)
      startRun(handle, StoreHealth.backoffMillis(attempt), true)
    })

  /**
   * Records that the supervisor gave up, in a run of the actor (closing the runtime
   * interrupts it: the next runtime resumes the execution). A store outage is waited out:
   * the record is tried again, with the backoff of `waitForStore`, until it commits.
   */
  const startGiveUp = (handle: Handle, error: unknown, restarts: number) => {
    handle.interruptible = false
    handle.fiber = fork(
      giveUp(handle, error, restarts).pipe(
        Effect.tapError((e) => Effect.sync(() => StoreHealth.isOutage(e) && outage.wait(handle.id))),
        Effect.retry({ schedule: waitForStoreSchedule, while: StoreHealth.isOutage }),
        Effect.catchAllCause((cause) => Effect.logError(`Execution ${handle.id}: could not record the failure`, cause)),
        Effect.onExit(() =>
          Effect.zipRight(
            drainMailbox(handle, new StoreError({ kind: "Unknown", operation: "run", detail: errorInfo(error).message })),
            endActivation(handle)
          )
        )
      ),
      { immediate: false }
    )
  }

  const endActivation = (handle: Handle) =>
    Effect.suspend(() => {
      outage.done(handle.id)
      if (handles.get(handle.id) === handle) handles.delete(handle.id)
      if (handle.timer !== undefined) deadlines.remove(handle.timer.deadline)
      if (handle.stepping !== undefined) deadlines.remove(handle.stepping)
      active--
      activeActors.unsafeUpdate(active, [])
      resumeMore()
      return Effect.void
    })

  const giveUp = (handle: Handle, error: unknown, restarts: number) =>
    Effect.gen(function*() {
      const loaded = yield* getSnapshot(handle.id)
      const compiled = lookup(loaded)
      if (compiled === undefined || isTerminal(loaded.status)) return
      const now = yield* Clock.currentTimeMillis
      const info = errorInfo(error)
      const output = transition(compiled, { snapshot: loaded, context: undefined }, {
        _tag: "GiveUp",
        error: { tag: "RuntimeDefect", message: `the runtime failed ${restarts} times within ${Duration.format(Duration.millis(within))} and gave up: ${info.message}` }
      }, now)
      if (output._tag !== "Next") return
      yield* store.commit({ snapshot: output.machine.snapshot, expectedVersion: loaded.rowVersion, transition: output.transition })
      finishedBy("failed").unsafeUpdate(1, [])
      publish(output.machine.snapshot, output.transition)
    })

  /**
   * Delivers a message to an execution's actor, starting the actor when it is not in
   * memory. Finding (or registering) the actor and offering happen in one synchronous step.
   */
  const deliver = (id: string, msg: Msg, cached?: Cached): Effect.Effect<void> => Effect.sync(() => deliverNow(id, msg, cached))

  const deliverNow = (id: string, msg: Msg, cached?: Cached): void => {
    const existing = handles.get(id)
    if (existing !== undefined) return post(existing, msg)
    if (closed) {
      if (msg._tag === "Command") Deferred.unsafeDone(msg.reply, Exit.fail(shuttingDown))
      return
    }
    const handle: Handle = { id, mailbox: new Mailbox(), parked: false, parking: false, interruptible: false, restarts: [], spins: 0, cached }
    handle.mailbox.offer(msg)
    handles.set(id, handle)
    active++
    activeActors.unsafeUpdate(active, [])
    startRun(handle, 0)
  }

  /** Queues a message for an actor in memory; starts a run of a parked one. */
  const post = (handle: Handle, msg: Msg) => {
    if (msg._tag === "Command" && handle.compensating && refusedNow(handle, msg)) return
    handle.mailbox.offer(msg)
    if (handle.parked) {
      if (closed) {
        if (msg._tag === "Command") Deferred.unsafeDone(msg.reply, Exit.fail(shuttingDown))
        return
      }
      handle.parked = false
      parked--
      startRun(handle, 0)
    } else if (msg._tag === "Command" && handle.interruptible && handle.fiber !== undefined) {
      // a command stops a running step or backoff: a new run serves it first
      restartNow(handle)
    }
  }

  /**
   * Replaces the current run, which is in a step, a compensation or a backoff, by a new
   * one from the last committed state, at once. The old run is interrupted but not waited
   * for: a step that cannot be interrupted (`Effect.uninterruptible`) keeps it going until
   * the step gives control back. From then on it is stale (no longer `handle.fiber`); where
   * it comes back from the step (or a compensation, a sleep) it sees that and stops without
   * touching the handle, so the step's late result is never committed. It stays in the
   * runtime's FiberSet until it ends. This costs nothing per step: no fiber per attempt.
   */
  const restartNow = (handle: Handle) => {
    const stale = handle.fiber
    handle.interruptible = false
    if (handle.stepping !== undefined) {
      deadlines.remove(handle.stepping)
      handle.stepping = undefined
    }
    // a closing runtime ends the activation in the interrupted run's `afterRun`
    if (!closed) startRun(handle, 0)
    stale?.unsafeInterruptAsFork(FiberId.none)
  }

  /** Answers a command the execution's status refuses, from its cached state (a pure check, no commit). */
  const refusedNow = (handle: Handle, msg: Extract<Msg, { readonly _tag: "Command" }>) => {
    const cached = handle.cached
    if (cached === undefined) return false
    const input: Input = msg.input._tag === "Rollback" ? { _tag: "Rollback", compensable: cached.completed.length > 0 } : msg.input
    const output = transition(cached.compiled, cached.machine, input, cached.machine.snapshot.updatedAt)
    if (output._tag !== "Reject") return false
    Deferred.unsafeDone(msg.reply, Exit.fail(output.error))
    return true
  }

  const activate = (id: string, cause?: Tracer.Span) => deliver(id, { _tag: "Inbox", cause })

  // Recovery: the executions still to resume, oldest first, started while fewer than
  // `recoverWindow` executions run (called again whenever one ends or parks)
  const recoverWindow = Math.max(1, options.recoverWindow ?? 100_000)
  let toResume: ReadonlyArray<string> = []
  let resumed = 0
  const resumeMore = () => {
    while (resumed < toResume.length && active - parked < recoverWindow && !closed) {
      const id = toResume[resumed++]!
      if (!handles.has(id)) deliverNow(id, { _tag: "Inbox" })
    }
    if (resumed >= toResume.length) toResume = []
  }

  const command = (id: string, input: CommandInput) =>
    Effect.gen(function*() {
      const snapshot = yield* getSnapshot(id)
      if (isTerminal(snapshot.status)) {
        // no actor needed to refuse
        const compiled = lookup(snapshot)
        if (compiled !== undefined) {
          const output = transition(compiled, { snapshot, context: undefined }, input, snapshot.updatedAt)
          if (output._tag === "Reject") return yield* output.error
        }
      }
      const reply = yield* Deferred.make<Snapshot, CommandError>()
      yield* deliver(id, { _tag: "Command", input, reply })
      return yield* Deferred.await(reply)
    })

  // ---------------------------------------------------------------------------
  // the public operations

  const resolve = (procedure: Procedure.Any) => {
    const compiled = registry.get(procedureKey(procedure.name, procedure.version))
    return compiled !== undefined && compiled.def === procedure
      ? Effect.succeed(compiled)
      : Effect.fail(
        new DefinitionError({
          procedure: procedure.name,
          reason: `version ${procedure.version} is not registered with this runtime; add it to Runtime.layer({ procedures })`
        })
      )
  }

  // spans made as internal/spans.ts does, for less work than `Effect.withSpan`
  const start = (procedure: Procedure.Any, input: unknown, opts?: StartOptions) =>
    Spans.around(
      tracing,
      "proctor.start",
      { "proctor.procedure.name": procedure.name, "proctor.procedure.version": procedure.version },
      (span) => startExecution(procedure, input, opts, span)
    )

  const startExecution = (procedure: Procedure.Any, input: unknown, opts: StartOptions | undefined, span: Tracer.Span | undefined) =>
    Effect.gen(function*() {
      const compiled = yield* resolve(procedure)
      const decodedInput = yield* compiled.decodeInput(input)
      let context: unknown
      try {
        context = procedure.init(decodedInput)
      } catch (error) {
        return yield* new ValidationError({ procedure: procedure.name, subject: "input", issue: `init threw: ${errorInfo(error).message}` })
      }
      const now = yield* Clock.currentTimeMillis
      // a string is all an execution id is: the brand only marks where one came from
      const id = ExecutionId.make(opts?.id ?? newId(now), { disableValidation: true })
      // the first snapshot comes from the transition function, like every other
      const started = yield* startMachine(compiled, { ...opts, id }, context, now)
      const { snapshot } = started.machine
      const first = started.transition
      const created = yield* store.create(snapshot, first)
      if (!created.created) {
        if (opts?.idempotencyKey !== undefined && created.snapshot.idempotencyKey === opts.idempotencyKey) {
          return ExecutionId.make(created.snapshot.id, { disableValidation: true })
        }
        return yield* new InvalidTransition({
          executionId: id,
          operation: "start",
          status: created.snapshot.status,
          state: created.snapshot.state,
          hint: "An execution with this id already exists; pass another id, or an idempotencyKey to start-or-get."
        })
      }
      executionsStarted.unsafeUpdate(1, [])
      span?.attribute("proctor.execution.id", id)
      publish(snapshot, first)
      // the new actor starts from the snapshot just committed, without reading it back
      if (!isTerminal(snapshot.status)) yield* deliver(id, { _tag: "Inbox", cause: span }, { compiled, machine: started.machine, completed: [] })
      return id
    })

  /**
   * Validates an event and puts it in the execution's durable inbox, unless `refuse` finds
   * an error in the execution's snapshot first.
   */
  const enqueue = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined
  ) =>
    Effect.gen(function*() {
      const snapshot = yield* getSnapshot(id)
      const compiled = lookup(snapshot)
      if (compiled === undefined) {
        return yield* new InvalidTransition({
          executionId: id,
          operation: "send an event to",
          status: snapshot.status,
          state: snapshot.state,
          hint: unavailable(snapshot)
        })
      }
      const decoded = yield* compiled.decodeEvent(event)
      span?.attribute("proctor.event.type", decoded._tag)
      const state = stateOf(compiled.def, snapshot.state)!
      const refuse = (snapshot: Snapshot) => {
        const accepts = state._tag === "Wait" ? Object.keys(state.on).join(", ") : ""
        return new InvalidTransition({
          executionId: id,
          operation: `send "${decoded._tag}" to`,
          status: snapshot.status,
          state: snapshot.state,
          hint: isTerminal(snapshot.status)
            ? "It has already ended and takes no more events."
            : `State "${snapshot.state}" accepts ${accepts === "" ? "no events" : accepts}.`
        })
      }
      if (isTerminal(snapshot.status) || (snapshot.status === "waiting" && state._tag === "Wait" && handlerOf(state, decoded._tag) === undefined)) {
        return yield* refuse(snapshot)
      }
      const refused = refuseFirst?.(snapshot)
      if (refused !== undefined) return yield* Effect.fail(refused)
      const encoded = yield* compiled.encodeEvent(decoded)
      const now = yield* Clock.currentTimeMillis
      // the store refuses, atomically, an execution that has ended since it was read above
      return yield* store.enqueue(id, encoded, now).pipe(
        Effect.catchIf((error) => error.kind === "Conflict", (error) =>
          Effect.flatMap(store.get(id), (found): Effect.Effect<never, InvalidTransition | StoreError> =>
            Option.isSome(found) && isTerminal(found.value.status) ? Effect.fail(refuse(found.value)) : Effect.fail(error)))
      )
    })

  const send = (id: string, event: unknown) =>
    Spans.around(tracing, "proctor.send", { "proctor.execution.id": id }, (span) => Effect.zipRight(enqueue(id, event, undefined, span), activate(id, span)))

  /**
   * Sends an event and waits until the actor has consumed or discarded it. The event is
   * durable once enqueued; the wait is in memory, owned by the caller (and bounded by
   * `timeout`, after which the event still stands).
   */
  const sendAndWait = (id: string, event: unknown, options?: SendAndWaitOptions) =>
    Spans.around(tracing, "proctor.sendAndWait", { "proctor.execution.id": id }, (span) => sendAndWaitIn(id, event, options, span))

  const sendAndWaitIn = (id: string, event: unknown, options: SendAndWaitOptions | undefined, span: Tracer.Span | undefined) =>
    Effect.gen(function*() {
      const reply = yield* Deferred.make<SendResult, VersionConflict | StoreError>()
      // the actor leaves the inbox alone from here until the waiter is registered, in one
      // synchronous step with the enqueue's end (uninterruptible: the mark must be cleared)
      const entry = yield* Effect.uninterruptibleMask((restore) => {
        eventWaiters.takeOff(id)
        const expected = options?.expectVersion
        const stale = (s: Snapshot) => expected !== undefined && s.seq !== expected ? versionConflict(s, expected) : undefined
        return Effect.onExit(restore(enqueue(id, event, stale, span)), (exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) eventWaiters.landed(id, exit.value.seq, reply, options?.expectVersion)
            else eventWaiters.failed(id)
          }))
      })
      yield* activate(id, span)
      const wait = Deferred.await(reply)
      return yield* (options?.timeout === undefined ? wait : Effect.timeoutFail(wait, {
        duration: options.timeout,
        onTimeout: () => new SendTimeout({ executionId: id, inboxSeq: entry.seq, timeout: Duration.format(Duration.decode(options.timeout!)) })
      })).pipe(Effect.ensuring(Effect.sync(() => eventWaiters.remove(id, entry.seq))))
    })

  const versionConflict = (snapshot: Snapshot, expected: number) =>
    new VersionConflict({ executionId: snapshot.id, expected, actual: snapshot.seq, state: snapshot.state, status: snapshot.status })

  const awaitExecution = (id: string) =>
    Effect.gen(function*() {
      const waiter = yield* Deferred.make<Snapshot>()
      const list = waiters.get(id) ?? []
      list.push(waiter)
      waiters.set(id, list)
      const remove = Effect.sync(() => {
        const ws = waiters.get(id)
        if (ws === undefined) return
        const i = ws.indexOf(waiter)
        if (i >= 0) ws.splice(i, 1)
        if (ws.length === 0) waiters.delete(id)
      })
      return yield* Effect.gen(function*() {
        const snapshot = yield* getSnapshot(id)
        if (isTerminal(snapshot.status)) return snapshot
        return yield* Deferred.await(waiter)
      }).pipe(Effect.ensuring(remove))
    })

  const watch = (id?: string): Stream.Stream<ExecutionEvent> => {
    const all = Stream.fromPubSub(events)
    return id === undefined ? all : Stream.filter(all, (e) => e.executionId === id)
  }

  // Timers of passivated executions: one fiber wakes them when they come within the
  // horizon. It sleeps until the next timer needs it, and is woken early when an actor
  // passivates with an earlier timer.
  yield* Effect.forkScoped(
    Effect.gen(function*() {
      let cursor: TimerEntry | undefined
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const until = now + horizon
        const batch = yield* store.dueTimers({ after: cursor, until, limit: 1000 })
        for (const t of batch) if (!handles.has(t.id)) yield* activate(t.id)
        if (batch.length === 1000) {
          cursor = batch[batch.length - 1]
          continue
        }
        cursor = { dueAt: until, id: "\uffff" }
        const next = yield* store.dueTimers({ after: cursor, until: Number.MAX_SAFE_INTEGER, limit: 1 })
        timerPoll.planned = next.length === 0 ? Infinity : next[0]!.dueAt - horizon
        const wake = timerPoll.wake = Deferred.unsafeMake<void>(FiberId.none)
        yield* timerPoll.planned === Infinity
          ? Deferred.await(wake) // owned by the runtime's scope; woken by a passivating actor
          // a timer months away is waited for in chunks: the loop re-checks the clock when it wakes
          : Effect.race(Deferred.await(wake), Effect.sleep(Duration.millis(Deadlines.chunk(timerPoll.planned - now))))
      }
    }).pipe(
      // a store outage is waited out; the loop starts over when the store answers again
      Effect.retry({ schedule: waitForStoreSchedule, while: StoreHealth.isOutage }),
      Effect.catchAllCause((cause) => Effect.logError("The timer fiber failed; timers of passivated executions will fire when they are next woken", cause))
    )
  )

  const retention = options.retention
  if (retention !== undefined && (retention.keepLast !== undefined || retention.maxAge !== undefined)) {
    const every = Duration.toMillis(retention.every ?? "1 hour")
    const maxAge = retention.maxAge === undefined ? undefined : Duration.toMillis(retention.maxAge)
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (true) {
          yield* Deadlines.sleepMillis(every)
          const now = yield* Clock.currentTimeMillis
          const deleted = yield* store.prune({ keepLast: retention.keepLast, before: maxAge === undefined ? undefined : now - maxAge }).pipe(
            Effect.catchAll((e) => Effect.as(Effect.logWarning("History retention failed; it will be tried again", e), 0))
          )
          if (deleted > 0) yield* Effect.logDebug(`History retention deleted ${deleted} transitions`)
        }
      })
    )
  }

  const exportHistory = (id: string) =>
    Effect.gen(function*() {
      const snapshot = yield* getSnapshot(id)
      const [history, errors] = yield* Effect.all([store.history(id), store.errors(id)])
      const lines = [JSON.stringify({ type: "execution", snapshot })]
      for (const t of history) lines.push(JSON.stringify({ type: "transition", ...t }))
      for (const e of errors) lines.push(JSON.stringify({ type: "error", ...e }))
      return lines.join("\n") + "\n"
    })

  const verifyExport = (jsonl: string) =>
    Effect.gen(function*() {
      const parsed = Replay.parseExport(jsonl)
      if (Either.isLeft(parsed)) return yield* new ValidationError({ procedure: "(export)", subject: "input", issue: parsed.left })
      const { history, snapshot } = parsed.right
      const compiled = lookup(snapshot)
      if (compiled === undefined) {
        return yield* new DefinitionError({
          procedure: snapshot.procedure,
          reason: unavailable(snapshot)
        })
      }
      return Replay.verify(compiled, snapshot, history)
    })

  const verify = (id: string) => Effect.flatMap(exportHistory(id), verifyExport).pipe(
    Effect.catchTag("ValidationError", (e) => Effect.die(e))
  )

  if (options.recover ?? true) {
    toResume = yield* store.active()
    // in one synchronous step: the actors of the window are forked before any of them runs,
    // so all are running again (each in its first step) before the first ones move on and
    // compete for the CPU with the rest still waiting to start
    yield* Effect.sync(resumeMore)
  }

  const service: RuntimeService = {
    procedures: [...registry.values()].map((c) => c.def),
    start,
    send,
    sendAndWait,
    pause: (id: string) => command(id, { _tag: "Pause" }),
    resume: (id: string) => command(id, { _tag: "Resume" }),
    cancel: (id: string) => command(id, { _tag: "Cancel" }),
    rollback: (id: string) => command(id, { _tag: "Rollback", compensable: true }),
    retry: (id: string) => command(id, { _tag: "Retry" }),
    skip: (id: string, state: string) => command(id, { _tag: "Skip", state }),
    get: getSnapshot,
    list: (filter?: ListFilter) => store.list(filter ?? {}),
    history: (id: string, opts?: HistoryOptions) =>
      Effect.zipRight(getSnapshot(id), store.history(id, opts)),
    errors: (id: string) => Effect.zipRight(getSnapshot(id), store.errors(id)),
    await: awaitExecution,
    watch,
    activeCount: Effect.sync(() => active),
    health: outage.health,
    exportHistory,
    verify,
    verifyExport
  }
  return service
})

/**
 * Fairness: the actors of a runtime hand the event loop a full turn (timers, I/O) once they
 * have kept it for `turnBudgetMillis`. Effect's own yields (`maxOpsBeforeYield`,
 * `Effect.yieldNow`) go through microtasks and reach a `setTimeout` only after 2048 nested
 * ones of the same fiber; an actor that suspends on every commit (a SQL store) starts that
 * count again each time, so a loop that never waits would never let a timer or an I/O
 * callback of the process run. This is about the real event loop, not about time a step
 * or a timer sees: TestClock has nothing to control here.
 */
const turnBudgetMillis = 4

/**
 * Run-loop rounds (attempts, transitions) between two looks at the budget. Measured on one
 * execution looping on a no-op step: a turn every round doubled the CPU of a transition
 * (memory store, 50 -> 99 µs); a turn every 32 rounds of each actor cost 2,000 actors of
 * 100 steps 5 µs more per transition (bench/costs.ts), as all of them then run interleaved;
 * one turn per budget, whoever asks, costs nothing measurable.
 */
const roundsPerLook = 32

/** when the event loop last gave the actors their turn back */
let lastTurn = performance.now()

const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => {
    lastTurn = performance.now()
    resume(Effect.void)
  })
  return Effect.sync(() => clearImmediate(handle))
})

/** A turn of the event loop if the actors have kept it longer than the budget. */
const fairTurn: Effect.Effect<void> = Effect.suspend(() => performance.now() - lastTurn >= turnBudgetMillis ? eventLoopTurn : Effect.void)

const shuttingDownWait = new StoreError({
  kind: "Unavailable",
  operation: "sendAndWait",
  detail: "the runtime shut down before the event was consumed; the event is in the durable inbox and still stands"
})

const shuttingDown = new StoreError({ kind: "Unavailable", operation: "run", detail: "the runtime is shutting down; retry on a running runtime" })

/** The backoff of work that waits for the store: 100 ms doubling to 30 s, for as long as it takes. */
const waitForStoreSchedule = Schedule.union(Schedule.exponential("100 millis"), Schedule.spaced("30 seconds"))


