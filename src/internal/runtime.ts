/**
 * The runtime: `Runtime.make` registers the procedures (`registry.ts`), builds what the
 * parts share (`shared.ts`), the supervisor (`supervisor.ts`) and the actors' run loop
 * (`actor.ts`, `run.ts`: one fiber per active execution, in a FiberSet owned by the
 * runtime's scope), forks the background fibers, resumes executions, and puts together
 * the public operations: `start` and the commands here, events in `sending.ts`, `await`
 * and `watch` in `watchers.ts`, the others in their own modules.
 */
import type { Tracer } from "effect"
import { Clock, Deferred, Duration, Effect, Either, Exit, FiberId, FiberRef, FiberSet, Option } from "effect"
import type { StoreError } from "../Errors.js"
import { ExecutionNotFound, InvalidTransition, ValidationError } from "../Errors.js"
import type { ListFilter, Snapshot } from "../Execution.js"
import { ExecutionId, isTerminal } from "../Execution.js"
import { requestedBy } from "../Plugin.js"
import type * as Procedure from "../Procedure.js"
import type { RuntimeService } from "../Runtime.js"
import type { HistoryOptions, StoreService } from "../Store.js"
import * as Actor from "./actor.js"
import * as Audit from "./audit.js"
import * as Background from "./background.js"
import * as Children from "./children.js"
import { ClusterHooks } from "./clusterHooks.js"
import * as Configuration from "./configuration.js"
import * as Deadlines from "./deadlines.js"
import { EventWaiters } from "./eventWaiters.js"
import type { CommandError, CommandInput, Handle } from "./handle.js"
import { Loaded, noCompleted } from "./handle.js"
import { newId } from "./ids.js"
import { executionsStarted } from "./metrics.js"
import type { CancelOptions, RuntimeOptions, StartOptions } from "./options.js"
import * as Registry from "./registry.js"
import * as Resilience from "./resilience.js"
import * as Quotas from "./resilienceQuotas.js"
import * as Rollout from "./rollout.js"
import * as RolloutHealth from "./rolloutHealth.js"
import * as RolloutMonitor from "./rolloutMonitor.js"
import * as Rollouts from "./rolloutOps.js"
import { withRunScheduler } from "./scheduler.js"
import * as Sending from "./sending.js"
import type { Shared } from "./shared.js"
import { shuttingDownWait } from "./shared.js"
import * as Spans from "./spans.js"
import * as StoreHealth from "./storeHealth.js"
import * as Supervisor from "./supervisor.js"
import * as VersionOps from "./versionOps.js"
import * as Versions from "./versions.js"
import * as WakeDirect from "./wakeDirect.js"
import * as Watchers from "./watchers.js"
import { errorInfo, start as startMachine, transition } from "./transition.js"

/** bench/cases/raw.ts makes ids as the runtime does */
export { newId } from "./ids.js"
export type { CancelOptions, MigrateAllOptions, MigrateOptions, RuntimeOptions, SendAndWaitOptions, StartOptions } from "./options.js"

/**
 * The attributes of `start`'s span, with room for the execution's id, set once it is known:
 * built from an empty literal, which keeps four properties in the object, where a third
 * property added to a literal of two is kept outside it (the span lives as long as the
 * execution's run: 24 B of each execution in memory).
 */
const startAttributes = (procedure: Procedure.Any): Record<string, unknown> => {
  const attributes: Record<string, unknown> = {}
  attributes["proctor.procedure.name"] = procedure.name
  attributes["proctor.procedure.version"] = procedure.version
  return attributes
}

export const make = Effect.fnUntraced(function*(unwatched: StoreService, options: RuntimeOptions) {
  // the store, watched for outages (Runtime.health)
  const outage = StoreHealth.make(unwatched)
  const store = outage.store
  // the runtime runs its rollouts as executions of a procedure of its own (rollout.ts)
  const rolloutEnv: Rollout.Env = { migrateBack: () => Effect.void }
  const rolloutProcedure = Rollout.make(rolloutEnv)
  const routes = new Rollout.Routes()
  const samples = new RolloutHealth.Recorder()
  const registry = yield* Registry.register([...options.procedures, rolloutProcedure])
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
    onEnd: (id, f) => cluster?.route === undefined ? onEnd(id, f) : undefined,
    command: (id, input) => command(id, input),
    fork: (effect) => fork(effect)
  })
  const fork = yield* FiberSet.runtime(fibers)<never>()
  // a fiber starts with the runtime flags of the runtime that forks it: the runs' start uninterruptible
  const forkRun = yield* Effect.uninterruptible(withRunScheduler(FiberSet.runtime(fibers)<never>()))
  const counts = { closed: false, active: 0, parked: 0 }
  yield* Effect.addFinalizer(() => Effect.sync(() => void (counts.closed = true)))
  const handles = new Map<string, Handle>()
  const eventWaiters = new EventWaiters()
  yield* Effect.addFinalizer(() => Effect.sync(() => eventWaiters.close(shuttingDownWait)))
  const timerPoll = { planned: Infinity, wake: Deferred.unsafeMake<void>(FiberId.none) }
  const deadlines = Deadlines.make()
  yield* Effect.forkScoped(deadlines.run)

  const getSnapshot = (id: string) =>
    Effect.flatMap(store.get(id), Option.match({ onNone: () => Effect.fail(new ExecutionNotFound({ executionId: id })), onSome: Effect.succeed }))
  const lookup = (snapshot: Snapshot) => Registry.lookup(registry, snapshot)
  const unavailable = (snapshot: Snapshot) => Registry.unavailable(registry, snapshot)
  /** procedure versions whose executions this runtime cannot run, reported once each */
  const reported = new Set<string>()
  const { publish, awaitHere, onEnd, watch } = yield* Watchers.make({
    routes,
    samples,
    quotas,
    eventWaiters,
    getSnapshot,
    watchBuffer: options.watchBuffer ?? 16384
  })

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
      // the actor commits the command's transition: it tells the plugins who asked
      yield* deliver(id, { _tag: "Command", input, reply, by: yield* FiberRef.get(requestedBy) })
      return yield* Deferred.await(reply)
    })

  // ---------------------------------------------------------------------------
  // the public operations

  // spans made as internal/spans.ts does, for less work than `Effect.withSpan`
  const start = (procedure: Procedure.Any, input: unknown, opts?: StartOptions) =>
    Spans.around(
      tracing,
      "proctor.start",
      startAttributes(procedure),
      (span) => quotas.admit(procedure.name, opts, (create) => startExecution(procedure, input, opts, span, create))
    )

  /** `create`: the store's, or the quotas' count-and-create (resilienceQuotas.ts) */
  const startExecution = (procedure: Procedure.Any, input: unknown, opts: StartOptions | undefined, span: Tracer.Span | undefined, create: Quotas.Create = store.create) =>
    Effect.gen(function*() {
      const asked = yield* Registry.resolve(registry, procedure)
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
      const created = yield* create(snapshot, first)
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
        const here = deliver(id, { _tag: "Inbox", cause: span }, new Loaded(compiled, started.machine, noCompleted))
        yield* cluster?.route === undefined ? here : cluster.route.wake(id, here)
      }
      return id
    })

  const { send, sendAndWait, sendAndWaitHere } = Sending.make({
    store, tracing, children, eventWaiters, getSnapshot, lookup, unavailable, activate, wake, wakeDirect, cluster
  })

  const awaitExecution = (id: string) => cluster?.route === undefined ? awaitHere(id) : cluster.route.await(id, awaitHere(id))

  const { migrate, migrateAll, migrateHere, versions } = VersionOps.make({
    store, registry, migrations, getSnapshot, lookup, unavailable, deliver,
    route: (id, to, here) => cluster?.route === undefined ? here : cluster.route.migrate(id, to, here)
  })

  yield* Effect.forkScoped(Background.passivatedTimers(shared, activate))
  yield* Background.retention(store, options.retention)

  const { exportHistory, verify, verifyExport } = Audit.make(store, getSnapshot, lookup, unavailable)

  if (cluster !== undefined) {
    cluster.current = {
      activate: (id) => activate(id),
      resume: supervisor.resume,
      inMemory: (id) => handles.has(id),
      refresh: (id) =>
        Effect.suspend(() => {
          const handle = handles.get(id)
          if (handle === undefined) return Effect.succeed(false)
          // a run under way keeps its own copy: its commit, if stale, conflicts and the supervisor reads the store again (`movedOn`)
          handle.cached = undefined
          return Effect.as(activate(id), true)
        }),
      wakeTimers: () => Deferred.unsafeDone(timerPoll.wake, Exit.void),
      horizon,
      command: commandHere,
      migrate: (id, to) => migrateHere(id, { to }),
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
