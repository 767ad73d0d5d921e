/**
 * The Runtime service: starts executions of registered procedures, drives them (send,
 * pause, resume, cancel, rollback, retry, skip) and reads them (get, list, history,
 * errors, await, watch). Each execution runs as one supervised fiber in the runtime's
 * scope; closing the scope stops them all, and nothing committed is lost.
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Context, Effect, Layer, Stream } from "effect"
import type {
  DefinitionError,
  ExecutionNotFound,
  InvalidTransition,
  QuotaExceeded,
  SendTimeout,
  StoreError,
  ValidationError,
  VersionConflict
} from "./Errors.js"
import type { ErrorEntry, ExecutionEvent, ExecutionId, ListFilter, Snapshot, Transition } from "./Execution.js"
import type * as Dependency from "./Dependency.js"
import type * as Procedure from "./Procedure.js"
import type { HistoryOptions } from "./Store.js"
import { Store } from "./Store.js"
import type * as EventWaiters from "./internal/eventWaiters.js"
import type * as Replay from "./internal/replay.js"
import * as internalMetrics from "./internal/metrics.js"
import * as Plugins from "./internal/plugins.js"
import * as internal from "./internal/runtime.js"
import type * as Quotas from "./internal/resilienceQuotas.js"
import type * as StoreHealth from "./internal/storeHealth.js"
import type * as Versions from "./internal/versions.js"
import type * as Rollouts from "./internal/rolloutOps.js"

/**
 * Options of `Runtime.layer`: the procedures it runs, supervision limits, passivation.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = internal.RuntimeOptions

/**
 * A quota on starts (`Runtime.layer({ quotas })`): `rate`, a token bucket or sliding window
 * of starts, and `concurrent`, how many executions may be under way (started and not ended).
 *
 * @since 0.1.0
 * @category models
 */
export type Quota = Quotas.Quota

/**
 * Options of `Runtime.migrate`: `to`, the version to move the execution to.
 *
 * @since 0.1.0
 * @category models
 */
export type MigrateOptions = internal.MigrateOptions

/**
 * Options of `Runtime.migrateAll`: the executions of version `from` go to version `to`.
 *
 * @since 0.1.0
 * @category models
 */
export type MigrateAllOptions = internal.MigrateAllOptions

/**
 * What `Runtime.migrateAll` did: the executions it migrated, and those it could not, each
 * with the reason (the message of its `InvalidTransition`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MigrateReport {
  readonly migrated: ReadonlyArray<string>
  readonly refused: ReadonlyArray<{ readonly id: string; readonly reason: string }>
}

/**
 * How many executions run on one version of a procedure (`Runtime.versions`).
 *
 * @since 0.1.0
 * @category models
 */
export type VersionInFlight = Versions.VersionInFlight

/**
 * Options of `Runtime.rollout`: `to` (the new version), `phases` (percent of new starts on
 * the new version, per phase; default [1, 5, 25, 50, 100]), `hold` (how long each phase
 * holds; default 10 minutes), `revertWhen` (`failureRate`, default 0.05; `p99`, a latency
 * bar for each step state and whole executions; `restarts`, supervisor restarts in a
 * phase; judged over at least `minExecutions` ended executions of the new version, default 10).
 *
 * @since 0.1.0
 * @category models
 */
export type RolloutOptions = Rollouts.RolloutOptions

/**
 * A rollout as `Runtime.rollouts` shows it: its execution's id, the versions, the phase
 * (from 1), the share of new starts on the new version, its state, the last health check
 * and, once reverted, why.
 *
 * @since 0.1.0
 * @category models
 */
export type RolloutStatus = Rollouts.RolloutStatus

/**
 * A manual control of a rollout: `pause` (it holds its share, no checks), `resume`,
 * `advance` (the next phase now), `revert` (new starts go back to the old version).
 *
 * @since 0.1.0
 * @category models
 */
export type RolloutControl = Rollouts.RolloutControl

/**
 * Options of `Runtime.start`.
 *
 * @since 0.1.0
 * @category models
 */
export type StartOptions = internal.StartOptions

/**
 * Options of `Runtime.cancel`: `reason`, why it is cancelled, recorded on the history's
 * `cancel` row (`Transition.reason`), in the same commit.
 *
 * @since 0.1.0
 * @category models
 */
export type CancelOptions = internal.CancelOptions

/**
 * Options of `Runtime.sendAndWait`: `expectVersion`, the snapshot `seq` the caller last saw
 * (the event is refused with `VersionConflict` if the execution is at another seq when it is
 * sent or when it is to be applied), and `timeout`, how long to wait (`SendTimeout`; the event
 * still stands after it). Without `timeout` the caller owns the wait: interrupting it stops
 * waiting, and the event still stands.
 *
 * @since 0.1.0
 * @category models
 */
export type SendAndWaitOptions = internal.SendAndWaitOptions

/**
 * What became of an event sent with `sendAndWait`: `Consumed`, with the snapshot right
 * after its transition, or `Discarded` (taken out of the inbox with no transition: the state
 * did not accept it, a guard or its `update` refused it, or the execution ended first), with
 * the snapshot after that and the reason logged in the error log (`tag`, `message`).
 *
 * @since 0.1.0
 * @category models
 */
export type SendResult = EventWaiters.SendResult

/**
 * What the runtime knows of its store, from `Runtime.health`. A store that is busy,
 * locked by another writer, full or unreachable is an outage: executions wait for it
 * (their actors try again with a backoff of 100 ms doubling to 30 s) and carry on by
 * themselves when it is back. `storeReachable` is false from the first failed operation
 * of an outage until a write succeeds again; `unavailableSince` (epoch ms) and
 * `lastStoreError` describe the outage; `waitingForStore` counts the executions whose
 * actor waits for it.
 *
 * @since 0.1.0
 * @category models
 */
export type Health = StoreHealth.Health

/**
 * @since 0.1.0
 * @category models
 */
export interface RuntimeService {
  /** the registered procedures */
  readonly procedures: ReadonlyArray<Procedure.Any>
  /** Starts an execution; returns after its first row commits. */
  readonly start: <P extends Procedure.Any>(
    procedure: P,
    input: Procedure.Input<P>,
    options?: StartOptions
  ) => Effect.Effect<ExecutionId, ValidationError | InvalidTransition | DefinitionError | QuotaExceeded | StoreError>
  /** Sends an event; returns after it is in the durable inbox. */
  readonly send: (
    id: string,
    event: unknown
  ) => Effect.Effect<void, ExecutionNotFound | ValidationError | InvalidTransition | StoreError>
  /**
   * Sends an event and waits until the execution has consumed it (`Consumed`, with the
   * snapshot after its transition) or discarded it (`Discarded`, with the reason). Refused at
   * once, like `send`, when it has ended or its waiting state does not take the event.
   */
  readonly sendAndWait: (
    id: string,
    event: unknown,
    options?: SendAndWaitOptions
  ) => Effect.Effect<
    SendResult,
    ExecutionNotFound | ValidationError | InvalidTransition | VersionConflict | SendTimeout | StoreError
  >
  /** Stops a running or waiting execution; an in-flight step is interrupted and re-runs on resume. */
  readonly pause: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** Continues a paused execution. */
  readonly resume: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** Ends an execution as `cancelled`, without compensation; a `reason` is recorded on the `cancel` history row. */
  readonly cancel: (id: string, options?: CancelOptions) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** Runs the compensations of completed steps in reverse order, then ends `rolled_back`. */
  readonly rollback: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** Runs the current step again, for an execution in `needs_intervention`. */
  readonly retry: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** Moves an execution to another state. */
  readonly skip: (id: string, state: string) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  readonly get: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly list: (filter?: ListFilter) => Effect.Effect<ReadonlyArray<Snapshot>, StoreError>
  readonly history: (id: string, options?: HistoryOptions) => Effect.Effect<ReadonlyArray<Transition>, ExecutionNotFound | StoreError>
  readonly errors: (id: string) => Effect.Effect<ReadonlyArray<ErrorEntry>, ExecutionNotFound | StoreError>
  /**
   * The whole active configuration, named as the diagrams name states: the active leaf
   * and the compound states holding it (`["deploy", "deploy.api"]`), an SCXML chart's
   * active states after the chart state's name, and for a parallel state each running
   * region (`<state>.<region>`) with its own configuration under it. Given a snapshot
   * (from `get`, `list` or `watch`), it answers for that snapshot without reading it again.
   */
  readonly configuration: (execution: string | Snapshot) => Effect.Effect<ReadonlyArray<string>, ExecutionNotFound | StoreError>
  /** Waits until the execution ends and returns its final snapshot. The caller owns the wait. */
  readonly await: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  /** Every committed change of state or status, of one execution or of all. */
  readonly watch: (id?: string) => Stream.Stream<ExecutionEvent>
  /** how many executions are in memory: running, or waiting with their state cached (parked) */
  readonly activeCount: Effect.Effect<number>
  /** Whether the store is reachable, since when it is not, its last error, and how many executions wait for it. */
  readonly health: Effect.Effect<Health>
  /**
   * The dependencies the registered procedures' steps name (`Dependency.make`), as this
   * process sees them: each breaker's state, bulkhead and rate limit, and counts of calls,
   * failures and refusals. The state is per process: another runner keeps its own.
   */
  readonly dependencies: Effect.Effect<ReadonlyArray<Dependency.Status>>
  /**
   * The execution and its whole history as JSON Lines: an `execution` line with the
   * snapshot, then one `transition` line per transition and one `error` line per error.
   */
  readonly exportHistory: (id: string) => Effect.Effect<string, ExecutionNotFound | StoreError>
  /** Replays the execution's history against its procedure; see `VerifyReport`. */
  readonly verify: (id: string) => Effect.Effect<VerifyReport, ExecutionNotFound | DefinitionError | StoreError>
  /** Replays an export of `exportHistory` (from a file, another machine) against the registered procedure. */
  readonly verifyExport: (jsonl: string) => Effect.Effect<VerifyReport, ValidationError | DefinitionError>
  /**
   * Moves an execution to another version of its procedure by the migration declared in
   * `Runtime.layer({ migrations })`, at a safe point: while it waits, is paused or needs a
   * person, or, while a step runs, once that step's attempt has committed (a migration never
   * stops a step). One committed transition (cause `migrate`). Refused with
   * `InvalidTransition` when no migration is declared, the execution has ended or is rolling
   * back, or its migrated context does not fit the new version's Schema (it then stays as it was).
   */
  readonly migrate: (id: string, options: MigrateOptions) => Effect.Effect<Snapshot, ExecutionNotFound | InvalidTransition | StoreError>
  /** `migrate` for every execution of version `from` not ended; see `MigrateReport`. */
  readonly migrateAll: (procedure: string, options: MigrateAllOptions) => Effect.Effect<MigrateReport, StoreError>
  /**
   * Every registered version (and every version the store has executions of), with how
   * many executions run on it: one grouped count in the store, no execution read.
   */
  readonly versions: (procedure?: string) => Effect.Effect<ReadonlyArray<VersionInFlight>, StoreError>
  /**
   * Starts a phased rollout of version `to` of a procedure, from the version given: while it
   * runs, a start asking for either version goes to the new one in the current phase's share
   * (by a hash of the new execution's id, or of its idempotency key), each phase holds for
   * `hold` while the new version's health (failure rate, p99 latency per state and of whole
   * executions, supervisor restarts) is compared with the old one's, and the
   * rollout advances, or reverts by itself (new starts go back to the old version; those on
   * the new one finish, or migrate back if a migration back is declared). It is durable: an
   * execution of the runtime's own procedure `proctor.rollout`.
   */
  readonly rollout: (
    procedure: Procedure.Any,
    options: RolloutOptions
  ) => Effect.Effect<RolloutStatus, ValidationError | InvalidTransition | DefinitionError | ExecutionNotFound | QuotaExceeded | StoreError>
  /** The rollouts (of one procedure, or all), the latest first. */
  readonly rollouts: (procedure?: string) => Effect.Effect<ReadonlyArray<RolloutStatus>, StoreError>
  /** Pauses, resumes, advances or reverts the rollout of a procedure under way. */
  readonly controlRollout: (
    procedure: string,
    control: RolloutControl,
    options?: { readonly reason?: string | undefined }
  ) => Effect.Effect<RolloutStatus, ExecutionNotFound | ValidationError | InvalidTransition | SendTimeout | StoreError>
}

/**
 * What replaying a history found: `ok` when every transition is one the definition
 * allows, in gapless order, with the status it must give, ending in the stored snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export type VerifyReport = Replay.VerifyReport

/**
 * The Runtime service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class Runtime extends Context.Tag("proctor/Runtime")<Runtime, RuntimeService>() {}

/**
 * Builds a runtime in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Ps extends ReadonlyArray<Procedure.Any>>(
  options: Options & { readonly procedures: Ps }
): Effect.Effect<RuntimeService, DefinitionError | StoreError, Store | Scope.Scope | Procedure.Services<Ps[number]>> =>
  Effect.flatMap(Effect.context<Procedure.Services<Ps[number]>>(), (context) =>
    Effect.flatMap(Store, (store) => {
      const plugins = options.plugins ?? []
      if (plugins.length === 0) return internal.make(store, options).pipe(Effect.provide(context))
      return Effect.flatMap(Plugins.start(plugins), (dispatch) =>
        internal.make(Plugins.observeStore(store, dispatch), options).pipe(
          Effect.map((service) => Plugins.observeService(service, dispatch)),
          Effect.provide(context)
        ))
    }))

/**
 * The runtime as a layer. It needs a `Store` and the services its procedures' steps use.
 * Registration checks each procedure (`DefinitionError`), then resumes every
 * non-terminal execution in the store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Ps extends ReadonlyArray<Procedure.Any>>(
  options: Options & { readonly procedures: Ps }
): Layer.Layer<Runtime, DefinitionError | StoreError, Store | Procedure.Services<Ps[number]>> =>
  Layer.scoped(Runtime, make(options))

/**
 * @since 0.1.0
 * @category accessors
 */
export const start = <P extends Procedure.Any>(procedure: P, input: Procedure.Input<P>, options?: StartOptions) =>
  Effect.flatMap(Runtime, (r) => r.start(procedure, input, options))
/** @since 0.1.0 @category accessors */
export const send = (id: string, event: unknown) => Effect.flatMap(Runtime, (r) => r.send(id, event))
/**
 * Sends an event and waits until it is consumed or discarded; see `SendResult`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const sendAndWait = (id: string, event: unknown, options?: SendAndWaitOptions) =>
  Effect.flatMap(Runtime, (r) => r.sendAndWait(id, event, options))
/** @since 0.1.0 @category accessors */
export const pause = (id: string) => Effect.flatMap(Runtime, (r) => r.pause(id))
/** @since 0.1.0 @category accessors */
export const resume = (id: string) => Effect.flatMap(Runtime, (r) => r.resume(id))
/** @since 0.1.0 @category accessors */
export const cancel = (id: string, options?: CancelOptions) => Effect.flatMap(Runtime, (r) => r.cancel(id, options))
/** @since 0.1.0 @category accessors */
export const rollback = (id: string) => Effect.flatMap(Runtime, (r) => r.rollback(id))
/** @since 0.1.0 @category accessors */
export const retry = (id: string) => Effect.flatMap(Runtime, (r) => r.retry(id))
/** @since 0.1.0 @category accessors */
export const skip = (id: string, state: string) => Effect.flatMap(Runtime, (r) => r.skip(id, state))
/** @since 0.1.0 @category accessors */
export const get = (id: string) => Effect.flatMap(Runtime, (r) => r.get(id))
/** @since 0.1.0 @category accessors */
export const list = (filter?: ListFilter) => Effect.flatMap(Runtime, (r) => r.list(filter))
/** @since 0.1.0 @category accessors */
export const history = (id: string, options?: HistoryOptions) => Effect.flatMap(Runtime, (r) => r.history(id, options))
/** @since 0.1.0 @category accessors */
export const exportHistory = (id: string) => Effect.flatMap(Runtime, (r) => r.exportHistory(id))
/** @since 0.1.0 @category accessors */
export const verify = (id: string) => Effect.flatMap(Runtime, (r) => r.verify(id))
/** @since 0.1.0 @category accessors */
export const verifyExport = (jsonl: string) => Effect.flatMap(Runtime, (r) => r.verifyExport(jsonl))
/**
 * Whether the store is reachable and, during an outage, since when, its last error and
 * how many executions wait for it; see `Health`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const health = Effect.flatMap(Runtime, (r) => r.health)
/**
 * The dependencies' breakers, bulkheads and rate limits in this process; see `Dependency.Status`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const dependencies = Effect.flatMap(Runtime, (r) => r.dependencies)
/** @since 0.1.0 @category accessors */
export const errors = (id: string) => Effect.flatMap(Runtime, (r) => r.errors(id))
/** @since 0.1.0 @category accessors */
export const configuration = (execution: string | Snapshot) => Effect.flatMap(Runtime, (r) => r.configuration(execution))
/**
 * Waits until the execution ends; returns its final snapshot.
 *
 * @since 0.1.0
 * @category accessors
 */
const await_ = (id: string) => Effect.flatMap(Runtime, (r) => r.await(id))
export { await_ as await }
/**
 * Every committed change of state or status, of one execution or of all.
 *
 * @since 0.1.0
 * @category accessors
 */
export const watch = (id?: string): Stream.Stream<ExecutionEvent, never, Runtime> =>
  Stream.unwrap(Effect.map(Runtime, (r) => r.watch(id)))

/**
 * Moves an execution to another version by a declared migration, at a safe point.
 *
 * @since 0.1.0
 * @category accessors
 */
export const migrate = (id: string, options: MigrateOptions) => Effect.flatMap(Runtime, (r) => r.migrate(id, options))
/** @since 0.1.0 @category accessors */
export const migrateAll = (procedure: string, options: MigrateAllOptions) => Effect.flatMap(Runtime, (r) => r.migrateAll(procedure, options))
/**
 * How many executions run on each version.
 *
 * @since 0.1.0
 * @category accessors
 */
export const versions = (procedure?: string) => Effect.flatMap(Runtime, (r) => r.versions(procedure))

/**
 * Starts a phased rollout with automatic revert; see `RuntimeService.rollout`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const rollout = (procedure: Procedure.Any, options: RolloutOptions) => Effect.flatMap(Runtime, (r) => r.rollout(procedure, options))
/** @since 0.1.0 @category accessors */
export const rollouts = (procedure?: string) => Effect.flatMap(Runtime, (r) => r.rollouts(procedure))
/** @since 0.1.0 @category accessors */
export const controlRollout = (procedure: string, control: RolloutControl, options?: { readonly reason?: string | undefined }) =>
  Effect.flatMap(Runtime, (r) => r.controlRollout(procedure, control, options))

/**
 * The runtime's metrics, for exporters and dashboards: counters of executions started,
 * finished (tagged `outcome` with the terminal status), transitions, retries and actor
 * restarts; a gauge of actors in memory; a histogram of the time spent in a state (ms);
 * during a store outage, `storeUnavailable` (a gauge, 1 while the store is unavailable)
 * and `storeErrors` (a counter of store operations that failed because it was); counters
 * of circuit breaker state changes (tagged `dependency`, `state`), of step attempts a
 * dependency refused (tagged `dependency`, `error`) and of starts a quota refused
 * (tagged `limit`); on a fenced store (`Cluster.layer`), `fencedCommits`, the commits
 * refused because another runtime took the execution's shard.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  executionsStarted: internalMetrics.executionsStarted,
  executionsFinished: internalMetrics.executionsFinished,
  transitions: internalMetrics.transitionsTotal,
  retries: internalMetrics.retriesTotal,
  restarts: internalMetrics.restartsTotal,
  activeActors: internalMetrics.activeActors,
  stateDuration: internalMetrics.stateDuration,
  storeUnavailable: internalMetrics.storeUnavailable,
  storeErrors: internalMetrics.storeErrors,
  breakerChanges: internalMetrics.breakerTransitions,
  dependencyRefused: internalMetrics.dependencyRejections,
  quotaRefused: internalMetrics.quotaRejections,
  fencedCommits: internalMetrics.fencedCommits
} as const
