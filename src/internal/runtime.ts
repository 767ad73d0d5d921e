/**
 * The runtime: one actor fiber per active execution, forked into a FiberMap owned by the
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
  Fiber,
  FiberId,
  FiberMap,
  Metric,
  Option,
  PubSub,
  Schedule,
  Scope,
  Stream
} from "effect"
import type { ErrorEntry, ExecutionEvent, ListFilter, Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import {
  DefinitionError,
  ExecutionError,
  ExecutionNotFound,
  InvalidTransition,
  MaxRetriesExceeded,
  StoreError,
  TimeoutError,
  ValidationError
} from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import { validate } from "../Procedure.js"
import type { Commit, HistoryOptions, StoreService, TimerEntry } from "../Store.js"
import type { Compiled, Input, Machine, Output } from "./transition.js"
import { compile, errorInfo, procedureKey, transition } from "./transition.js"

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
    /** drop the fiber of an execution that waits with no timer due within `horizon`. @default true */
    readonly enabled?: boolean | undefined
    /** @default "30 seconds" */
    readonly horizon?: Duration.DurationInput | undefined
  } | undefined
  /** resume non-terminal executions when the runtime starts. @default true */
  readonly recover?: boolean | undefined
  /** events a `watch` subscriber may fall behind by before the oldest are dropped. @default 16384 */
  readonly watchBuffer?: number | undefined
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

type Msg =
  | { readonly _tag: "Command"; readonly input: CommandInput; readonly reply: Deferred.Deferred<Snapshot, CommandError> }
  | { readonly _tag: "Inbox" }
  | { readonly _tag: "AttemptFailed"; readonly visit: number; readonly entry: ErrorEntry }
  | { readonly _tag: "StepDone"; readonly visit: number; readonly exit: Exit.Exit<unknown, unknown> }
  | { readonly _tag: "Timer"; readonly visit: number }

/**
 * An actor's mailbox. Offering is synchronous, so that finding an actor and delivering
 * to it happen in one step with no yield between (an actor leaves memory in one
 * synchronous step too, only when its mailbox is empty).
 */
class Mailbox {
  private items: Array<Msg> = []
  private head = 0
  private waiter: Deferred.Deferred<void> | undefined
  get size() {
    return this.items.length - this.head
  }
  offer(msg: Msg) {
    this.items.push(msg)
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      Deferred.unsafeDone(w, Exit.void)
    }
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
  readonly take: Effect.Effect<Msg> = Effect.suspend(() => {
    const msg = this.poll()
    if (msg !== undefined) return Effect.succeed(msg)
    const w = Deferred.unsafeMake<void>(FiberId.none)
    this.waiter = w
    return Effect.flatMap(Deferred.await(w), () => this.take)
  })
  drain(): Array<Msg> {
    const out: Array<Msg> = []
    for (let m = this.poll(); m !== undefined; m = this.poll()) out.push(m)
    return out
  }
}

interface Handle {
  readonly id: string
  readonly mailbox: Mailbox
}

// metrics
const executionsStarted = Metric.counter("proctor_executions_started", { description: "executions started" })
const executionsFinished = Metric.counter("proctor_executions_finished", { description: "executions that ended, by outcome" })
const transitionsTotal = Metric.counter("proctor_transitions", { description: "committed transitions" })
const retriesTotal = Metric.counter("proctor_retries", { description: "failed step attempts that were retried" })
const activeActors = Metric.gauge("proctor_active_actors", { description: "execution fibers in memory" })
const restartsTotal = Metric.counter("proctor_actor_restarts", { description: "actor restarts after a runtime defect" })

const newId = () => crypto.randomUUID()

export const make = Effect.fnUntraced(function*(store: StoreService, options: RuntimeOptions) {
  const registry = new Map<string, Compiled>()
  const latest = new Map<string, Compiled>()
  for (const def of options.procedures) {
    const checked = validate(def)
    if (Either.isLeft(checked)) return yield* checked.left
    const compiled = compile(def)
    if (registry.has(compiled.key)) {
      return yield* new DefinitionError({
        procedure: def.name,
        reason: `version ${def.version} is registered twice; give each definition its own version`
      })
    }
    registry.set(compiled.key, compiled)
    const prev = latest.get(def.name)
    if (prev === undefined || prev.def.version < def.version) latest.set(def.name, compiled)
  }

  const maxRestarts = options.supervision?.maxRestarts ?? 5
  const within = Duration.toMillis(options.supervision?.within ?? "1 minute")
  const backoff = Duration.toMillis(options.supervision?.backoff ?? "100 millis")
  const passivate = options.passivation?.enabled ?? true
  const horizon = Duration.toMillis(options.passivation?.horizon ?? "30 seconds")

  const fibers = yield* FiberMap.make<string>()
  // actors run with the runtime's own context (the services its procedures need), whoever wakes them
  const fork = yield* FiberMap.runtime(fibers)<never>()
  let closed = false
  yield* Effect.addFinalizer(() => Effect.sync(() => void (closed = true)))
  const handles = new Map<string, Handle>()
  const events = yield* PubSub.sliding<ExecutionEvent>(options.watchBuffer ?? 16384)
  const waiters = new Map<string, Array<Deferred.Deferred<Snapshot>>>()
  const timerPoll = { planned: Infinity, wake: Deferred.unsafeMake<void>(FiberId.none) }
  let active = 0

  const publish = (snapshot: Snapshot, t: Transition) => {
    if (isTerminal(snapshot.status)) {
      const ws = waiters.get(snapshot.id)
      if (ws !== undefined) {
        waiters.delete(snapshot.id)
        for (const w of ws) Deferred.unsafeDone(w, Exit.succeed(snapshot))
      }
    }
    return PubSub.publish(events, {
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

  const lookup = (snapshot: Snapshot) => registry.get(procedureKey(snapshot.procedure, snapshot.version))

  const notFound = (id: string) => new ExecutionNotFound({ executionId: id })

  const getSnapshot = (id: string) =>
    Effect.flatMap(store.get(id), Option.match({ onNone: () => Effect.fail(notFound(id)), onSome: Effect.succeed }))

  // ---------------------------------------------------------------------------
  // the actor

  const runActor = (handle: Handle) =>
    Effect.gen(function*() {
      const { id, mailbox } = handle
      const loaded = yield* store.get(id)
      if (Option.isNone(loaded)) {
        yield* drainMailbox(handle, notFound(id))
        return
      }
      const compiled = lookup(loaded.value)
      if (compiled === undefined) {
        yield* Effect.logError(
          `Execution ${id} uses procedure ${loaded.value.procedure} version ${loaded.value.version}, ` +
            `which this runtime does not register; register it in Runtime.layer to resume it`
        )
        yield* drainMailbox(
          handle,
          new InvalidTransition({
            executionId: id,
            operation: "run",
            status: loaded.value.status,
            state: loaded.value.state,
            hint: `Procedure ${loaded.value.procedure} version ${loaded.value.version} is not registered with this runtime.`
          })
        )
        return
      }
      const decoded = compiled.decodeContext(loaded.value.context)
      if (Either.isLeft(decoded)) return yield* Effect.die(decoded.left)
      let machine: Machine = { snapshot: loaded.value, context: decoded.right }
      const def = compiled.def
      yield* Effect.annotateLogsScoped({ procedure: def.name })

      // compensations of completed steps are finalizers of the execution's scope
      const scope = yield* Scope.make()
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      let compensable = 0
      const registerCompensation = (stepSeq: number, state: string) => {
        const step = def.states[state]
        if (step === undefined || step._tag !== "Step" || step.compensate === undefined) return Effect.void
        const compensate = step.compensate
        compensable++
        return Scope.addFinalizerExit(scope, (exit) => {
          if (!(Exit.isFailure(exit) && Cause.squash(exit.cause) === Rollback)) return Effect.void
          return Effect.gen(function*() {
            const args = {
              context: machine.context,
              executionId: id,
              state,
              attempt: 1,
              idempotencyKey: `${id}/${state}/${stepSeq}/compensate`
            }
            const result = yield* Effect.exit(
              (compensate(args) as Effect.Effect<unknown, unknown, never>).pipe(
                Effect.withSpan("proctor.compensate", { attributes: { executionId: id, state } })
              )
            )
            const now = yield* Clock.currentTimeMillis
            const s = machine.snapshot
            const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
            const errors: Array<ErrorEntry> = []
            if (Exit.isFailure(result)) {
              const info = errorInfo(Cause.squash(result.cause))
              errors.push({ executionId: id, state, attempt: 1, tag: info.tag, message: `compensation failed: ${info.message}`, transient: false, at: now })
              yield* Effect.logWarning(`Compensation of "${state}" failed: ${info.message}`)
            }
            yield* store.commit({
              snapshot,
              expectedVersion: s.rowVersion,
              errors,
              compensation: { executionId: id, stepSeq, state, ok: Exit.isSuccess(result), at: now }
            }).pipe(Effect.orDie)
            machine = { ...machine, snapshot }
          })
        })
      }
      if (compiled.compensable.size > 0) {
        const [history, done] = yield* Effect.all([store.history(id), store.compensations(id)])
        const finished = new Set(done.map((c) => c.stepSeq))
        for (const t of history) {
          if (t.cause === "step" && compiled.compensable.has(t.from) && !finished.has(t.seq)) {
            yield* registerCompensation(t.seq, t.from)
          }
        }
      }

      let stepFiber: Fiber.RuntimeFiber<void> | undefined
      let stepVisit = -1
      let timerFiber: Fiber.RuntimeFiber<void> | undefined
      let timerVisit = -1
      let current: Deferred.Deferred<Snapshot, CommandError> | undefined

      const stopStep = Effect.suspend(() => {
        const f = stepFiber
        stepFiber = undefined
        stepVisit = -1
        return f === undefined ? Effect.void : interruptFiber(f)
      })
      const stopTimer = Effect.suspend(() => {
        const f = timerFiber
        timerFiber = undefined
        timerVisit = -1
        return f === undefined ? Effect.void : interruptFiber(f)
      })

      /** Commits the outcome of the transition function; returns the error for a rejection. */
      const apply = (output: Output, consumed?: number) =>
        Effect.gen(function*() {
          if (output._tag === "Reject") return Option.some(output.error)
          const s = machine.snapshot
          if (output._tag === "Discard") {
            const now = yield* Clock.currentTimeMillis
            const snapshot: Snapshot = { ...s, rowVersion: s.rowVersion + 1, updatedAt: now }
            yield* store.commit({
              snapshot,
              expectedVersion: s.rowVersion,
              consumed,
              errors: [{ executionId: id, state: s.state, attempt: s.attempt, tag: output.reason.tag, message: output.reason.message, transient: false, at: now }]
            })
            machine = { ...machine, snapshot }
            return Option.none()
          }
          const next = output.machine
          const t = output.transition
          const commit: Commit = { snapshot: next.snapshot, expectedVersion: s.rowVersion, transition: t, consumed }
          yield* store.commit(commit)
          const previous = machine
          machine = next
          yield* Metric.increment(transitionsTotal)
          if (t.cause === "step" && compiled.compensable.has(t.from)) yield* registerCompensation(t.seq, t.from)
          if (stepFiber !== undefined && (next.snapshot.visit !== stepVisit || next.snapshot.status !== "running")) {
            yield* stopStep
          }
          if (timerFiber !== undefined && (next.snapshot.visit !== timerVisit || next.snapshot.status !== "waiting")) {
            yield* stopTimer
          }
          if (isTerminal(next.snapshot.status) && !isTerminal(previous.snapshot.status)) {
            yield* Metric.increment(Metric.tagged(executionsFinished, "outcome", next.snapshot.status))
          }
          yield* publish(next.snapshot, t)
          return Option.none()
        })

      const step = (state: Procedure.Step<string, unknown, unknown, unknown, unknown>, visit: number, firstAttempt: number) =>
        Effect.gen(function*() {
          const driver = yield* Schedule.driver(state.retry)
          let attempt = firstAttempt
          const stateName = machine.snapshot.state
          const timeout = Duration.format(state.timeout)
          while (true) {
            const args = {
              context: machine.context,
              executionId: id,
              state: stateName,
              attempt,
              idempotencyKey: `${id}/${stateName}/${visit}`
            }
            const exit = yield* Effect.exit(
              (state.run(args) as Effect.Effect<unknown, unknown>).pipe(
                Effect.timeoutFail({
                  duration: state.timeout,
                  onTimeout: () => new TimeoutError({ executionId: id, state: stateName, timeout })
                }),
                Effect.withSpan("proctor.step", { attributes: { executionId: id, state: stateName, attempt } }),
                Effect.annotateLogs({ state: stateName, attempt })
              )
            )
            if (Exit.isSuccess(exit)) return yield* post({ _tag: "StepDone", visit, exit })
            if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
            const failure = Cause.failureOption(exit.cause)
            const error = Option.isSome(failure) ? failure.value : Cause.squash(exit.cause)
            const transient = Option.isSome(failure) && state.isTransient(error)
            const info = errorInfo(error)
            const now = yield* Clock.currentTimeMillis
            yield* post({
              _tag: "AttemptFailed",
              visit,
              entry: { executionId: id, state: stateName, attempt, tag: info.tag, message: info.message, transient, at: now }
            })
            if (!transient) {
              const failed = new ExecutionError({ executionId: id, state: stateName, cause: error })
              return yield* post({ _tag: "StepDone", visit, exit: Exit.fail(failed) })
            }
            const more = yield* Effect.either(driver.next(error))
            if (Either.isLeft(more)) {
              const failed = new MaxRetriesExceeded({ executionId: id, state: stateName, attempts: attempt, lastError: error })
              return yield* post({ _tag: "StepDone", visit, exit: Exit.fail(failed) })
            }
            yield* Metric.increment(retriesTotal)
            attempt++
          }
        })

      const post = (msg: Msg) => Effect.sync(() => mailbox.offer(msg))

      /** Starts what the committed snapshot calls for; returns false when nothing is left to do. */
      const reconcile: Effect.Effect<"continue" | "idle" | "done", StoreError> = Effect.gen(function*() {
        const s = machine.snapshot
        const state = def.states[s.state]!
        switch (s.status) {
          case "running": {
            if (state._tag === "Step" && (stepFiber === undefined || stepVisit !== s.visit)) {
              stepVisit = s.visit
              stepFiber = yield* Effect.forkIn(step(state, s.visit, s.attempt + 1), scope)
            }
            return "continue"
          }
          case "waiting": {
            const pending = yield* store.inbox(id, 1)
            if (pending.length > 0) {
              const entry = pending[0]!
              const decodedEvent = compiled.decodeEvent(entry.event)
              const now = yield* Clock.currentTimeMillis
              const output: Output = Either.isLeft(decodedEvent)
                ? { _tag: "Discard", reason: errorInfo(decodedEvent.left) }
                : transition(compiled, machine, { _tag: "Event", event: decodedEvent.right, encoded: entry.event }, now)
              yield* apply(output, entry.seq)
              return yield* reconcile
            }
            if (s.timerDueAt !== undefined) {
              const now = yield* Clock.currentTimeMillis
              if (s.timerDueAt <= now) {
                yield* apply(transition(compiled, machine, { _tag: "TimerFired" }, now))
                return yield* reconcile
              }
              if (!passivate || s.timerDueAt - now <= horizon) {
                if (timerFiber === undefined || timerVisit !== s.visit) {
                  timerVisit = s.visit
                  const visit = s.visit
                  timerFiber = yield* Effect.forkIn(
                    Effect.sleep(Duration.millis(s.timerDueAt - now)).pipe(Effect.zipRight(post({ _tag: "Timer", visit }))),
                    scope
                  )
                }
                return "continue"
              }
            }
            return passivate ? "idle" : "continue"
          }
          case "paused":
          case "needs_intervention":
            return passivate ? "idle" : "continue"
          case "compensating": {
            yield* Scope.close(scope, Exit.fail(Rollback))
            const now = yield* Clock.currentTimeMillis
            yield* apply(transition(compiled, machine, { _tag: "Compensated" }, now))
            return "done"
          }
          default:
            return "done"
        }
      })

      const handle_ = (msg: Msg) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          switch (msg._tag) {
            case "Command": {
              current = msg.reply
              const input: Input = msg.input._tag === "Rollback"
                ? { _tag: "Rollback", compensable: compensable > 0 }
                : msg.input
              const rejected = yield* apply(transition(compiled, machine, input, now))
              current = undefined
              if (Option.isSome(rejected)) yield* Deferred.fail(msg.reply, rejected.value)
              else yield* Deferred.succeed(msg.reply, machine.snapshot)
              return
            }
            case "Inbox":
              return
            case "AttemptFailed": {
              const s = machine.snapshot
              if (msg.visit !== s.visit || s.status !== "running") return
              const snapshot: Snapshot = { ...s, attempt: s.attempt + 1, rowVersion: s.rowVersion + 1, updatedAt: now }
              yield* store.commit({ snapshot, expectedVersion: s.rowVersion, errors: [msg.entry] })
              machine = { ...machine, snapshot }
              return
            }
            case "StepDone": {
              if (msg.visit !== machine.snapshot.visit || machine.snapshot.status !== "running") return
              stepFiber = undefined
              stepVisit = -1
              const input: Input = Exit.isSuccess(msg.exit)
                ? { _tag: "StepSucceeded", result: msg.exit.value, compensable: compensable > 0 }
                : { _tag: "StepFailed", error: errorInfo(Cause.squash(msg.exit.cause)), compensable: compensable > 0 }
              yield* apply(transition(compiled, machine, input, now))
              return
            }
            case "Timer": {
              if (msg.visit !== machine.snapshot.visit || machine.snapshot.status !== "waiting") return
              timerFiber = undefined
              timerVisit = -1
              yield* apply(transition(compiled, machine, { _tag: "TimerFired" }, now))
              return
            }
          }
        })

      yield* Effect.addFinalizer((exit) =>
        current !== undefined && Exit.isFailure(exit)
          ? Deferred.failCause(current, Cause.die(Cause.squash(exit.cause))).pipe(Effect.asVoid)
          : Effect.void
      )

      while (true) {
        const next = yield* reconcile
        if (next === "done") {
          // ended: leave memory, then refuse what is still queued from the terminal snapshot
          const rest = yield* Effect.sync(() => {
            handles.delete(id)
            return mailbox.drain()
          })
          const now = yield* Clock.currentTimeMillis
          for (const msg of rest) {
            if (msg._tag !== "Command") continue
            const output = transition(compiled, machine, msg.input, now)
            if (output._tag === "Reject") yield* Deferred.fail(msg.reply, output.error)
            else yield* Deferred.succeed(msg.reply, machine.snapshot)
          }
          return
        }
        if (next === "idle") {
          // passivate: leave only when no message is waiting (checked and done in one synchronous step)
          const left = yield* Effect.sync(() => {
            if (mailbox.size > 0) return false
            handles.delete(id)
            const due = machine.snapshot.status === "waiting" ? machine.snapshot.timerDueAt : undefined
            if (due !== undefined && due - horizon < timerPoll.planned) {
              timerPoll.planned = due - horizon
              Deferred.unsafeDone(timerPoll.wake, Exit.void)
            }
            return true
          })
          if (left) return
        }
        const msg = yield* mailbox.take
        yield* handle_(msg)
      }
    }).pipe(Effect.scoped)

  const drainMailbox = (handle: Handle, error: CommandError) =>
    Effect.gen(function*() {
      const msgs = yield* Effect.sync(() => {
        if (handles.get(handle.id) === handle) handles.delete(handle.id)
        return handle.mailbox.drain()
      })
      for (const msg of msgs) if (msg._tag === "Command") yield* Deferred.fail(msg.reply, error)
    })

  /** Runs an actor with restarts on runtime defects, within the intensity limit. */
  const supervise = (handle: Handle) =>
    Effect.gen(function*() {
      const restarts: Array<number> = []
      while (true) {
        const exit = yield* Effect.exit(runActor(handle))
        if (Exit.isSuccess(exit)) return
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        const now = yield* Clock.currentTimeMillis
        while (restarts.length > 0 && restarts[0]! <= now - within) restarts.shift()
        const error = Cause.squash(exit.cause)
        if (restarts.length >= maxRestarts) {
          yield* Effect.logError(`Execution ${handle.id}: giving up after ${restarts.length} restarts`, exit.cause)
          yield* giveUp(handle, error, restarts.length).pipe(
            Effect.catchAllCause((cause) => Effect.logError(`Execution ${handle.id}: could not record the failure`, cause))
          )
          yield* drainMailbox(handle, new StoreError({ kind: "Unknown", operation: "run", detail: errorInfo(error).message }))
          return
        }
        restarts.push(now)
        yield* Metric.increment(restartsTotal)
        yield* Effect.logWarning(`Execution ${handle.id}: actor failed, restarting (${restarts.length}/${maxRestarts})`, exit.cause)
        yield* Effect.sleep(Duration.millis(backoff * 2 ** (restarts.length - 1)))
      }
    }).pipe(
      Effect.annotateLogs({ executionId: handle.id }),
      Effect.withSpan("proctor.execution", { attributes: { executionId: handle.id } }),
      Effect.ensuring(Effect.suspend(() => {
        if (handles.get(handle.id) === handle) handles.delete(handle.id)
        active--
        return Metric.set(activeActors, active)
      }))
    )

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
      yield* Metric.increment(Metric.tagged(executionsFinished, "outcome", "failed"))
      yield* publish(output.machine.snapshot, output.transition)
    })

  /**
   * Delivers a message to an execution's actor, starting the actor when it is not in
   * memory. Finding (or registering) the actor and offering happen in one synchronous step.
   */
  const deliver = (id: string, msg: Msg): Effect.Effect<void> =>
    Effect.suspend(() => {
      const existing = handles.get(id)
      if (existing !== undefined) {
        existing.mailbox.offer(msg)
        return Effect.void
      }
      if (closed) {
        return msg._tag === "Command"
          ? Deferred.fail(msg.reply, new StoreError({ kind: "Unavailable", operation: "run", detail: "the runtime is shutting down; retry on a running runtime" }))
          : Effect.void
      }
      const handle: Handle = { id, mailbox: new Mailbox() }
      handle.mailbox.offer(msg)
      handles.set(id, handle)
      active++
      fork(id, supervise(handle))
      return Metric.set(activeActors, active)
    })

  const activate = (id: string) => deliver(id, { _tag: "Inbox" })

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

  const start = (procedure: Procedure.Any, input: unknown, opts?: StartOptions) =>
    Effect.gen(function*() {
      const compiled = yield* resolve(procedure)
      const decodedInput = yield* compiled.decodeInput(input)
      let context: unknown
      try {
        context = procedure.init(decodedInput)
      } catch (error) {
        return yield* new ValidationError({ procedure: procedure.name, subject: "input", issue: `init threw: ${errorInfo(error).message}` })
      }
      const encoded = yield* compiled.encodeContext(context)
      const now = yield* Clock.currentTimeMillis
      const id = opts?.id ?? newId()
      const initial = procedure.states[procedure.initial]!
      const status = initial._tag === "Step" ? "running" : initial._tag === "Wait" ? "waiting" : initial.outcome === "failed" ? "failed" : "succeeded"
      const snapshot: Snapshot = {
        id,
        procedure: procedure.name,
        version: procedure.version,
        state: procedure.initial,
        status,
        context: encoded,
        visit: 1,
        attempt: 0,
        seq: 1,
        rowVersion: 1,
        ...(opts?.tenant === undefined ? {} : { tenant: opts.tenant }),
        ...(opts?.parentId === undefined ? {} : { parentId: opts.parentId }),
        ...(opts?.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
        ...(initial._tag === "Wait" && initial.after !== undefined ? { timerDueAt: now + Duration.toMillis(initial.after.delay) } : {}),
        ...(initial._tag === "Final" ? { outcome: initial.outcome } : {}),
        startedAt: now,
        enteredAt: now,
        updatedAt: now
      }
      const first: Transition = { executionId: id, seq: 1, from: "", to: procedure.initial, status, cause: "start", at: now, duration: 0 }
      const created = yield* store.create(snapshot, first)
      if (!created.created) {
        if (opts?.idempotencyKey !== undefined && created.snapshot.idempotencyKey === opts.idempotencyKey) {
          return created.snapshot.id
        }
        return yield* new InvalidTransition({
          executionId: id,
          operation: "start",
          status: created.snapshot.status,
          state: created.snapshot.state,
          hint: "An execution with this id already exists; pass another id, or an idempotencyKey to start-or-get."
        })
      }
      yield* Metric.increment(executionsStarted)
      yield* publish(snapshot, first)
      if (!isTerminal(status)) yield* activate(id)
      return id
    }).pipe(Effect.withSpan("proctor.start", { attributes: { procedure: procedure.name } }))

  const send = (id: string, event: unknown) =>
    Effect.gen(function*() {
      const snapshot = yield* getSnapshot(id)
      const compiled = lookup(snapshot)
      if (compiled === undefined) {
        return yield* new InvalidTransition({
          executionId: id,
          operation: "send an event to",
          status: snapshot.status,
          state: snapshot.state,
          hint: `Procedure ${snapshot.procedure} version ${snapshot.version} is not registered with this runtime.`
        })
      }
      const decoded = yield* compiled.decodeEvent(event)
      const state = compiled.def.states[snapshot.state]!
      if (isTerminal(snapshot.status) || (snapshot.status === "waiting" && state._tag === "Wait" && !(decoded._tag in state.on))) {
        const accepts = state._tag === "Wait" ? Object.keys(state.on).join(", ") : ""
        return yield* new InvalidTransition({
          executionId: id,
          operation: `send "${decoded._tag}" to`,
          status: snapshot.status,
          state: snapshot.state,
          hint: isTerminal(snapshot.status)
            ? "It has already ended and takes no more events."
            : `State "${snapshot.state}" accepts ${accepts === "" ? "no events" : accepts}.`
        })
      }
      const encoded = yield* compiled.encodeEvent(decoded)
      const now = yield* Clock.currentTimeMillis
      yield* store.enqueue(id, encoded, now)
      yield* activate(id)
    }).pipe(Effect.withSpan("proctor.send", { attributes: { executionId: id } }))

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
          : Effect.race(Deferred.await(wake), Effect.sleep(Duration.millis(Math.max(0, timerPoll.planned - now))))
      }
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logError("The timer fiber failed; timers of passivated executions will fire when they are next woken", cause))
    )
  )

  if (options.recover ?? true) {
    const ids = yield* store.active()
    for (const id of ids) yield* activate(id)
  }

  return {
    procedures: [...registry.values()].map((c) => c.def),
    start,
    send,
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
    activeCount: Effect.sync(() => active)
  }
})

/** The signal a scope closes with to run the compensations registered in it. */
const Rollback = { _tag: "proctor/Rollback" } as const

const interruptFiber = (fiber: Fiber.RuntimeFiber<void>) => Effect.asVoid(Fiber.interruptFork(fiber))
