/**
 * The runtime: the registry of procedures, the public operations (start, send, commands,
 * queries), and the wiring of its parts: the supervisor (`supervisor.ts`) and the actors'
 * run loop (`actor.ts`, `run.ts`), one actor fiber per active execution in a FiberSet owned by the
 * runtime's scope, each reading its own mailbox and committing through the Store.
 */
import type { Tracer } from "effect"
import { Clock, Deferred, Duration, Effect, Either, Exit, FiberId, FiberSet, Option, PubSub, Stream } from "effect"
import type {
  StoreError,
  VersionConflict
} from "../Errors.js";
import {
  DefinitionError,
  ExecutionNotFound,
  InvalidTransition,
  SendTimeout,
  ValidationError
} from "../Errors.js"
import type { ExecutionEvent, ListFilter, Snapshot, Transition } from "../Execution.js"
import { ExecutionId, isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { checkRetries, stateOf, validate } from "../Procedure.js"
import { acceptedTags } from "./compound.js"
import type { RuntimeService } from "../Runtime.js"
import type { HistoryOptions, StoreService } from "../Store.js"
import * as Actor from "./actor.js"
import { ClusterHooks } from "./clusterHooks.js"
import * as Audit from "./audit.js"
import * as Background from "./background.js"
import * as Children from "./children.js"
import * as Configuration from "./configuration.js"
import { versionConflict } from "./actor.js"
import * as Deadlines from "./deadlines.js"
import type { SendResult } from "./eventWaiters.js"
import { EventWaiters } from "./eventWaiters.js"
import type { CommandError, CommandInput, Handle } from "./handle.js"
import { executionsStarted } from "./metrics.js"
import type { CancelOptions, RuntimeOptions, SendAndWaitOptions, StartOptions } from "./options.js"
import * as Regions from "./regions.js"
import * as Resilience from "./resilience.js"
import * as Quotas from "./resilienceQuotas.js"
import type { Shared } from "./shared.js"
import { shuttingDownWait } from "./shared.js"
import { withRunScheduler } from "./scheduler.js"
import type { Accepted } from "./regionSend.js"
import * as RegionSend from "./regionSend.js"
import * as Spans from "./spans.js"
import * as StoreHealth from "./storeHealth.js"
import * as Supervisor from "./supervisor.js"
import * as WakeDirect from "./wakeDirect.js"
import * as VersionOps from "./versionOps.js"
import * as Versions from "./versions.js"
import * as Rollout from "./rollout.js"
import * as RolloutHealth from "./rolloutHealth.js"
import * as RolloutMonitor from "./rolloutMonitor.js"
import * as Rollouts from "./rolloutOps.js"
import type { Compiled } from "./transition.js"
import { compile, errorInfo, procedureKey, start as startMachine, transition } from "./transition.js"

export type { CancelOptions, MigrateAllOptions, MigrateOptions, RuntimeOptions, SendAndWaitOptions, StartOptions } from "./options.js"

/**
 * A new execution id: a UUID version 7 (RFC 9562), the time in its first 48 bits, then
 * random bits. Executions started close in time get nearby ids, so a store's indexes
 * (B-trees keyed by execution id) take their rows on a few pages instead of scattering
 * them: measured on SQLite, 10k executions of ten steps, in lock step, 52k transitions/s
 * with random (v4) ids against 107k with v7 ids (.scratch rawx driver, this machine).
 */
export const newId = (now: number) => {
  const millis = Math.max(0, Math.floor(now))
  if (millis !== idMillis) {
    idMillis = millis
    const time = millis.toString(16).padStart(12, "0").slice(-12)
    idPrefix = `${time.slice(0, 8)}-${time.slice(8)}-7`
  }
  // `toLowerCase` (these characters are lower case already) returns the id as one flat
  // string: concatenated, it is a rope of five pieces around a slice of the UUID, 208 B
  // kept for as long as the execution is in memory instead of 56 B
  return (idPrefix + crypto.randomUUID().slice(15)).toLowerCase()
}
/** the time part of the ids of the current millisecond */
let idMillis = -1
let idPrefix = ""
export const make = Effect.fnUntraced(function*(unwatched: StoreService, options: RuntimeOptions) {
  // the store, watched for outages (Runtime.health)
  const outage = StoreHealth.make(unwatched)
  const store = outage.store
  const registry = new Map<string, Compiled>()
  // the procedures of parallel states' regions are registered with their parents
  // the runtime runs its rollouts as executions of a procedure of its own (rollout.ts)
  const rolloutEnv: Rollout.Env = { migrateBack: () => Effect.void }
  const rolloutProcedure = Rollout.make(rolloutEnv)
  const routes = new Rollout.Routes()
  const samples = new RolloutHealth.Recorder()
  const procedures = Regions.derive([...options.procedures, rolloutProcedure])
  if (Either.isLeft(procedures)) return yield* procedures.left
  for (const def of procedures.right) {
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
  const unregistered = Children.checkRegistered(registry)
  if (Either.isLeft(unregistered)) return yield* unregistered.left
  const dependencies = yield* Resilience.make(Array.from(registry.values(), (c) => c.def))
  const quotas = yield* Quotas.make(store, options.quotas)
  const checkedMigrations = Versions.check(registry, options.migrations ?? [])
  if (Either.isLeft(checkedMigrations)) return yield* checkedMigrations.left
  const migrations = checkedMigrations.right

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
  // child states start and await their children through the runtime's own operations
  const children = Children.make({
    store,
    registry,
    running: (id) => handles.get(id)?.cached?.compiled,
    lookup: (snapshot) => lookup(snapshot),
    start: (procedure, input, opts) => start(procedure, input, opts),
    await: (id) => awaitExecution(id),
    command: (id, input) => command(id, input),
    fork: (effect) => fork(effect)
  })
  const fork = yield* FiberSet.runtime(fibers)<never>()
  // a fiber starts with the runtime flags of the runtime that forks it: the runs' start uninterruptible
  const forkRun = yield* Effect.uninterruptible(withRunScheduler(FiberSet.runtime(fibers)<never>()))
  const counts = { closed: false, active: 0, parked: 0 }
  yield* Effect.addFinalizer(() => Effect.sync(() => void (counts.closed = true)))
  const handles = new Map<string, Handle>()
  const events = yield* PubSub.sliding<ExecutionEvent>(options.watchBuffer ?? 16384)
  const waiters = new Map<string, Array<Deferred.Deferred<Snapshot>>>()
  const eventWaiters = new EventWaiters()
  yield* Effect.addFinalizer(() => Effect.sync(() => eventWaiters.close(shuttingDownWait)))
  const timerPoll = { planned: Infinity, wake: Deferred.unsafeMake<void>(FiberId.none) }
  const deadlines = Deadlines.make()
  yield* Effect.forkScoped(deadlines.run)

  const publish = (snapshot: Snapshot, t: Transition) => {
    if (snapshot.procedure === Rollout.rolloutName) routes.apply(snapshot)
    else if (routes.sampled(snapshot)) samples.record(snapshot, t)
    if (isTerminal(snapshot.status)) {
      quotas.ended()
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

  const loads = yield* Effect.makeSemaphore(options.loadConcurrency ?? 64)
  const shared: Shared = {
    store, outage, fork, forkRun, forkAttempt, children, handles, deadlines, timerPoll, eventWaiters, loads, publish, lookup, unavailable, reported, counts, tracing, fast, dependencies,
    restarted: (procedure, version, at) => routes.active(procedure) !== undefined && samples.restarted(procedure, version, at),
    settings: { maxRestarts, within, backoff, passivate, horizon, recoverWindow: Math.max(1, options.recoverWindow ?? 100_000) }
  }
  const supervisor = Supervisor.make(shared, (handle, before) => actor.makeRun(handle, before))
  // several runtimes on one store (Cluster.layer): an execution another runner owns is woken, commanded and awaited there
  const cluster = Option.getOrUndefined(yield* Effect.serviceOption(ClusterHooks))
  const wake = (id: string, span?: Tracer.Span) => cluster?.route === undefined ? activate(id, span) : cluster.route.wake(id, activate(id, span))
  const actor = Actor.make(shared, supervisor)
  const wakeDirect = WakeDirect.make(shared, supervisor)
  const { deliver, activate } = supervisor

  const command = (id: string, input: CommandInput) =>
    cluster?.route === undefined ? commandHere(id, input) : cluster.route.command(id, input, commandHere(id, input))

  const commandHere = (id: string, input: CommandInput) =>
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
      (span) => quotas.admit(procedure.name, opts, startExecution(procedure, input, opts, span))
    )

  const startExecution = (procedure: Procedure.Any, input: unknown, opts: StartOptions | undefined, span: Tracer.Span | undefined) =>
    Effect.gen(function*() {
      const asked = yield* resolve(procedure)
      const now = yield* Clock.currentTimeMillis
      // a string is all an execution id is: the brand only marks where one came from
      const id = ExecutionId.make(opts?.id ?? newId(now), { disableValidation: true })
      // during a rollout of this procedure, the version by the rollout's share (the same for a retried idempotent start)
      const compiled = routes.route(asked, opts?.idempotencyKey ?? id, registry)
      const decodedInput = yield* compiled.decodeInput(input)
      let context: unknown
      try {
        context = compiled.def.init(decodedInput)
      } catch (error) {
        return yield* new ValidationError({ procedure: procedure.name, subject: "input", issue: `init threw: ${errorInfo(error).message}` })
      }
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
      if (!isTerminal(snapshot.status)) {
        const here = deliver(id, { _tag: "Inbox", cause: span }, { compiled, machine: started.machine, completed: [] })
        yield* cluster?.route === undefined ? here : cluster.route.wake(id, here)
      }
      return id
    })

  /**
   * Validates an event for the execution's snapshot and encodes it, unless `refuseFirst`
   * finds an error in the snapshot first.
   */
  const accept = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined,
    /** the snapshot the caller has just read, to not read it again */
    read?: Snapshot
  ) =>
    Effect.gen(function*() {
      const snapshot = read ?? (yield* getSnapshot(id))
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
      // in a tree, the wait's enclosing states handle events too
      const tags = acceptedTags(compiled.def, snapshot.state)
      const refuse = (snapshot: Snapshot) => {
        const accepts = tags.join(", ")
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
      if (isTerminal(snapshot.status) || (snapshot.status === "waiting" && state._tag === "Wait" && !tags.includes(decoded._tag))) {
        return yield* refuse(snapshot)
      }
      const refused = refuseFirst?.(snapshot)
      if (refused !== undefined) return yield* Effect.fail(refused)
      const encoded = yield* compiled.encodeEvent(decoded)
      const now = yield* Clock.currentTimeMillis
      return { snapshot, compiled, decoded, encoded, now, refuse }
    })

  /** Puts an accepted event in the execution's durable inbox. */
  const write = (id: string, accepted: Accepted) =>
    // the store refuses, atomically, an execution that has ended since it was read
    store.enqueue(id, accepted.encoded, accepted.now).pipe(
      Effect.catchIf((error) => error.kind === "Conflict", (error) =>
        Effect.flatMap(store.get(id), (found): Effect.Effect<never, InvalidTransition | StoreError> =>
          Option.isSome(found) && isTerminal(found.value.status) ? Effect.fail(accepted.refuse(found.value)) : Effect.fail(error)))
    )

  const regionSend = RegionSend.make({ store, children, getSnapshot, accept, write, wake })

  /**
   * Validates an event and puts it in the execution's durable inbox, unless `refuse` finds
   * an error in the execution's snapshot first.
   */
  const enqueue = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined
  ) => Effect.flatMap(accept(id, event, refuseFirst, span), (accepted) => write(id, accepted))

  const send = (id: string, event: unknown) =>
    Spans.around(tracing, "proctor.send", { "proctor.execution.id": id }, (span) => sendTo(id, event, span))

  /**
   * To the execution's inbox, or, while it is in a parallel state whose regions take the
   * event, to theirs. An execution waiting out of memory takes the event in the sender's
   * fiber, when it can (`wakeDirect.ts`).
   */
  const sendTo = (id: string, event: unknown, span: Tracer.Span | undefined): Effect.Effect<void, ExecutionNotFound | ValidationError | InvalidTransition | StoreError> =>
    Effect.flatMap(getSnapshot(id), (snapshot) => {
      const to = children.receivers(snapshot, event)
      if (to !== undefined) return regionSend.toRegions(to, event, span)
      return Effect.flatMap(accept(id, event, undefined, span, snapshot), (accepted) => {
        const queued = Effect.zipRight(write(id, accepted), wake(id, span))
        const direct = cluster?.route === undefined ? wakeDirect.attempt(accepted, span) : undefined
        return direct === undefined ? queued : Effect.flatMap(direct, (done) => done ? Effect.void : queued)
      })
    })

  /**
   * Sends an event and waits until the actor has consumed or discarded it. The event is
   * durable once enqueued; the wait is in memory, owned by the caller (and bounded by
   * `timeout`, after which the event still stands).
   */
  const sendAndWait = (id: string, event: unknown, options?: SendAndWaitOptions) =>
    cluster?.route === undefined ? sendAndWaitHere(id, event, options) : cluster.route.sendAndWait(id, event, options, sendAndWaitHere(id, event, options))

  const sendAndWaitHere = (id: string, event: unknown, options?: SendAndWaitOptions) =>
    Spans.around(tracing, "proctor.sendAndWait", { "proctor.execution.id": id }, (span) => sendAndWaitIn(id, event, options, span))

  const sendAndWaitIn = (id: string, event: unknown, options: SendAndWaitOptions | undefined, span: Tracer.Span | undefined) =>
    Effect.gen(function*() {
      const reply = yield* Deferred.make<SendResult, VersionConflict | StoreError>()
      // the actor leaves the inbox alone from here until the waiter is registered, in one
      // synchronous step with the enqueue's end (uninterruptible: the mark must be cleared)
      const entry = yield* Effect.uninterruptibleMask((restore) => {
        eventWaiters.takeOff(id)
        const expected = options?.expectVersion
        const stale = (s: Snapshot) => expected !== undefined && s.seq !== expected ? versionConflict(s, expected) : children.refuseWait(s, event)
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


  const awaitExecution = (id: string) => cluster?.route === undefined ? awaitHere(id) : cluster.route.await(id, awaitHere(id))

  const awaitHere = (id: string) =>
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

  const { migrate, migrateAll, versions } = VersionOps.make({ store, registry, migrations, getSnapshot, lookup, unavailable, deliver })

  yield* Effect.forkScoped(Background.passivatedTimers(shared, activate))
  yield* Background.retention(store, options.retention)

  const { exportHistory, verify, verifyExport } = Audit.make(store, getSnapshot, lookup, unavailable)

  if (cluster !== undefined) {
    cluster.current = {
      activate: (id) => activate(id),
      resume: supervisor.resume,
      inMemory: (id) => handles.has(id),
      wakeTimers: () => Deferred.unsafeDone(timerPoll.wake, Exit.void),
      horizon,
      command: commandHere,
      await: awaitHere,
      sendAndWait: sendAndWaitHere
    }
  }
  // the routing table, from the rollouts' committed snapshots
  for (const s of yield* store.list({ procedure: Rollout.rolloutName, limit: 1_000_000 })) routes.apply(s)
  rolloutEnv.migrateBack = (name, from, to) =>
    migrations.has(Versions.migrationKey(name, from, to)) ? Effect.ignore(migrateAll(name, { from, to })) : Effect.void
  const monitor = RolloutMonitor.make({ store, routes, recorder: samples, send: (id, event) => send(id, event), shared: cluster !== undefined })
  yield* Effect.forkScoped(monitor.run)
  const rollouts = Rollouts.make({
    registry,
    routes,
    procedure: rolloutProcedure,
    start: (input) => start(rolloutProcedure, input),
    get: getSnapshot,
    list: (filter) => store.list({ ...filter, procedure: Rollout.rolloutName }),
    sendAndWait: (id, event) => sendAndWait(id, event),
    health: monitor.health
  })
  if (options.recover ?? true) yield* supervisor.recover
  const configurationOf = Configuration.make(store, registry)

  const service: RuntimeService = {
    procedures: [...registry.values()].map((c) => c.def).filter((p) => p !== rolloutProcedure),
    start,
    send,
    sendAndWait,
    pause: (id: string) => command(id, { _tag: "Pause" }),
    resume: (id: string) => command(id, { _tag: "Resume" }),
    cancel: (id: string, options?: CancelOptions) => command(id, { _tag: "Cancel", reason: options?.reason }),
    rollback: (id: string) => command(id, { _tag: "Rollback", compensable: true }),
    retry: (id: string) => command(id, { _tag: "Retry" }),
    skip: (id: string, state: string) => command(id, { _tag: "Skip", state }),
    get: getSnapshot,
    list: (filter?: ListFilter) => store.list(filter ?? {}),
    history: (id: string, opts?: HistoryOptions) =>
      Effect.zipRight(getSnapshot(id), store.history(id, opts)),
    errors: (id: string) => Effect.zipRight(getSnapshot(id), store.errors(id)),
    configuration: (execution: string | Snapshot) =>
      typeof execution === "string" ? Effect.flatMap(getSnapshot(execution), configurationOf) : configurationOf(execution),
    await: awaitExecution,
    watch,
    activeCount: Effect.sync(() => counts.active),
    health: outage.health,
    dependencies: dependencies.status,
    exportHistory,
    verify,
    verifyExport,
    migrate,
    migrateAll,
    versions,
    rollout: rollouts.start,
    rollouts: rollouts.list,
    controlRollout: rollouts.control
  }
  return service
})
