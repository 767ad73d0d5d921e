/**
 * What the CLI's commands act on: a runtime opened on the database in this process
 * (local), the database read through a read-only connection (reads: `list`, `show`), or a
 * running `proctor serve` reached over its HTTP API (remote, in `remote.ts`). A SQLite
 * database has one owner at a time, so while a server runs, the CLI talks to it: `serve`
 * leaves `<db>.server.json` next to the database, and the CLI follows it. Reads need no
 * owner: they work beside any process that has the database open.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option, Schema } from "effect"
import type {
  InvalidTransition,
  QuotaExceeded,
  SendTimeout,
  StoreError,
  ValidationError
} from "../Errors.js"
import { DefinitionError, ExecutionNotFound } from "../Errors.js"
import type { AllowedOperations, ErrorEntry, ListFilter, Snapshot, Transition } from "../Execution.js"
import { allowedOperations, isTerminal } from "../Execution.js"
import type * as Dependency from "../Dependency.js"
import type * as Procedure from "../Procedure.js"
import type * as Runtime from "../Runtime.js"
import { Store } from "../Store.js"
import type { ProcedureNotFound } from "../http/Api.js"
import { storedConfiguration } from "../internal/chartView.js"
import * as Metadata from "../internal/describe.js"
import * as Rollout from "../internal/rollout.js"
import type { Loaded } from "./modules.js"
import { readOnlyStoreLayer, storeLayer } from "./store.js"

/**
 * The server could not be reached, refused the request, or answered something unexpected.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The Proctor server at ${this.url} ${this.reason}`
  }
}

/**
 * Every way an operation can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type OperatorError =
  | ValidationError
  | ExecutionNotFound
  | InvalidTransition
  | StoreError
  | DefinitionError
  | ProcedureNotFound
  | QuotaExceeded
  | SendTimeout
  | ServerError

/**
 * A procedure as the CLI shows it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcedureView extends Metadata.ProcedureInfo {
  /** where it was loaded from (`file#export`), or `server` */
  readonly source: string
}

/**
 * What the runtime says of one execution besides its snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecutionView {
  readonly allowed: AllowedOperations
  readonly configuration: ReadonlyArray<string>
}

/**
 * The operations the CLI offers, whatever runs the executions.
 *
 * @since 0.1.0
 * @category models
 */
export interface OperatorService {
  /** `database <path>` or `server <url>`, for messages */
  readonly where: string
  readonly remote: boolean
  readonly procedures: Effect.Effect<ReadonlyArray<ProcedureView>, OperatorError>
  /** `options.tenant` is the tenant the execution is started for (its quotas apply) */
  readonly start: (
    procedure: Procedure.Any,
    input: unknown,
    options?: { readonly tenant?: string | undefined }
  ) => Effect.Effect<Snapshot, OperatorError>
  readonly send: (id: string, event: { readonly _tag: string }) => Effect.Effect<void, OperatorError>
  readonly command: (
    operation: "pause" | "resume" | "rollback" | "retry",
    id: string
  ) => Effect.Effect<Snapshot, OperatorError>
  /** `options.reason` is recorded on the history's `cancel` row */
  readonly cancel: (id: string, options?: Runtime.CancelOptions) => Effect.Effect<Snapshot, OperatorError>
  readonly skip: (id: string, state: string) => Effect.Effect<Snapshot, OperatorError>
  readonly get: (id: string) => Effect.Effect<Snapshot, OperatorError>
  /**
   * What the execution accepts now (`Execution.allowedOperations` by the definition it runs
   * on) and its whole active configuration (`Runtime.configuration`), as the runtime says
   */
  readonly view: (snapshot: Snapshot) => Effect.Effect<ExecutionView, OperatorError>
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<Snapshot>, OperatorError>
  readonly history: (id: string) => Effect.Effect<ReadonlyArray<Transition>, OperatorError>
  readonly errors: (id: string) => Effect.Effect<ReadonlyArray<ErrorEntry>, OperatorError>
  /** the dependencies of the procedures' steps, as the runtime that runs them sees them (`Runtime.dependencies`) */
  readonly dependencies: Effect.Effect<ReadonlyArray<Dependency.Status>, OperatorError>
  /** how many executions have not ended, by `name@version` (one grouped count in the store) */
  readonly inFlight: Effect.Effect<ReadonlyMap<string, number>, OperatorError>
  /** `Runtime.migrate` */
  readonly migrate: (id: string, to: number) => Effect.Effect<Snapshot, OperatorError>
  /** `Runtime.migrateAll` */
  readonly migrateAll: (procedure: string, from: number, to: number) => Effect.Effect<Runtime.MigrateReport, OperatorError>
  /** `Runtime.rollout` from version `from.version` of procedure `from.name` (the durations as text, e.g. "10 minutes") */
  readonly rollout: (from: { readonly name: string; readonly version: number }, options: RolloutOptions) => Effect.Effect<Runtime.RolloutStatus, OperatorError>
  /** `Runtime.rollouts` */
  readonly rollouts: (procedure?: string) => Effect.Effect<ReadonlyArray<Runtime.RolloutStatus>, OperatorError>
  /** `Runtime.controlRollout` */
  readonly controlRollout: (procedure: string, control: Runtime.RolloutControl, reason?: string) => Effect.Effect<Runtime.RolloutStatus, OperatorError>
}

/**
 * `Runtime.rollout`'s options as the CLI and the HTTP API take them: durations as text.
 *
 * @since 0.1.0
 * @category models
 */
export interface RolloutOptions {
  readonly to: number
  readonly phases?: ReadonlyArray<number> | undefined
  readonly hold?: string | undefined
  readonly revertWhen?: {
    readonly failureRate?: number | undefined
    readonly minExecutions?: number | undefined
    readonly p99?: string | { readonly state?: string | undefined; readonly execution?: string | undefined } | undefined
    readonly restarts?: number | undefined
  } | undefined
}

/** in-flight counts by `name@version`, from the store's counts by version and status */
export const inFlightOf = (counts: ReadonlyArray<{ readonly procedure: string; readonly version: number; readonly status: Snapshot["status"]; readonly count: number }>) => {
  const out = new Map<string, number>()
  for (const c of counts) if (!isTerminal(c.status)) out.set(`${c.procedure}@${c.version}`, (out.get(`${c.procedure}@${c.version}`) ?? 0) + c.count)
  return out
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Operator extends Context.Tag("proctor/cli/Operator")<Operator, OperatorService>() {}

/**
 * The loaded procedures as the CLI shows them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const views = (loaded: ReadonlyArray<Loaded>): ReadonlyArray<ProcedureView> =>
  loaded.map((l) => ({ ...Metadata.describe(l.procedure), source: l.source }))

/**
 * The operator over a runtime in this process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLocal = (
  runtime: Runtime.RuntimeService,
  loaded: ReadonlyArray<Loaded>,
  where: string
): OperatorService => {
  const sources = new Map<Procedure.Any, string>(loaded.map((l) => [l.procedure, l.source]))
  const all = runtime.procedures.map((p) => ({ ...Metadata.describe(p), source: sources.get(p) ?? "runtime" }))
  return {
    where,
    remote: false,
    procedures: Effect.succeed(all),
    start: (procedure, input, options) => Effect.flatMap(runtime.start(procedure, input, options), runtime.get),
    send: runtime.send,
    command: (operation, id) => runtime[operation](id),
    cancel: runtime.cancel,
    skip: runtime.skip,
    get: runtime.get,
    view: (s) =>
      Effect.map(runtime.configuration(s), (configuration) => ({
        allowed: allowedOperations(s, runtime.procedures.find((p) => p.name === s.procedure && p.version === s.version) ?? { states: {} }),
        configuration
      })),
    list: runtime.list,
    history: (id) => runtime.history(id),
    errors: runtime.errors,
    dependencies: runtime.dependencies,
    inFlight: Effect.map(runtime.versions(), (vs) => new Map(vs.map((v) => [`${v.procedure}@${v.version}`, v.inFlight]))),
    migrate: (id, to) => runtime.migrate(id, { to }),
    migrateAll: (procedure, from, to) => runtime.migrateAll(procedure, { from, to }),
    rollout: (from, options) => {
      const versions = [from.version, options.to]
      const missing = versions.filter((v) => !runtime.procedures.some((p) => p.name === from.name && p.version === v))
      const old = runtime.procedures.find((p) => p.name === from.name && p.version === from.version)
      if (missing.length > 0 || old === undefined) {
        return Effect.fail(new DefinitionError({
          procedure: from.name,
          reason: `version ${missing.join(" and ")} is not among the procedures this command loaded; pass the module that exports ` +
            `versions ${versions.join(" and ")} (--module PATH), or reach the server that runs them (--server URL)`
        }))
      }
      // the durations are text the runtime decodes (a ValidationError when one is not a duration)
      return runtime.rollout(old, options as Runtime.RolloutOptions)
    },
    rollouts: runtime.rollouts,
    controlRollout: (procedure, control, reason) => runtime.controlRollout(procedure, control, reason === undefined ? undefined : { reason })
  }
}

export { advertise, discoverServer, serverFile } from "./serverFile.js"

/**
 * The operator over a store opened read-only: the reads, and nothing else (a command that
 * changes something never gets one).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReader = (store: Store["Type"], where: string): OperatorService => {
  const get = (id: string) =>
    Effect.flatMap(store.get(id), Option.match({
      onNone: () => Effect.fail(new ExecutionNotFound({ executionId: id })),
      onSome: Effect.succeed
    }))
  const readOnly = () => Effect.dieMessage(`the ${where} was opened read-only`)
  return {
    where,
    remote: false,
    procedures: Effect.succeed([]),
    start: readOnly,
    send: readOnly,
    command: readOnly,
    cancel: readOnly,
    skip: readOnly,
    get,
    // without the definitions: the commands its status allows, and the configuration its snapshot tells
    view: (s) => Effect.succeed({ allowed: allowedOperations(s, { states: {} }), configuration: storedConfiguration(s) }),
    list: store.list,
    history: (id) => Effect.zipRight(get(id), store.history(id)),
    errors: (id) => Effect.zipRight(get(id), store.errors(id)),
    // a runtime's own state, not in the store
    dependencies: Effect.succeed([]),
    inFlight: Effect.map(store.countByVersion(), inFlightOf),
    migrate: readOnly,
    migrateAll: readOnly,
    rollout: readOnly,
    // the rollouts as their executions' snapshots tell (the latest check's health is the runtime's)
    rollouts: (procedure) =>
      Effect.map(store.list({ procedure: Rollout.rolloutName, limit: 1_000_000 }), (all) =>
        all.map(Rollout.statusOf).filter((r) => procedure === undefined || r.procedure === procedure).reverse()),
    controlRollout: readOnly
  }
}

/** The migrations the loaded modules export between two versions that are both loaded (the runtime refuses others). */
const migrationsOf = (loaded: ReadonlyArray<Loaded>): ReadonlyArray<Procedure.Migration> => {
  const procedures = new Set(loaded.map((l) => l.procedure))
  return [...new Set(loaded.flatMap((l) => l.migrations ?? []))].filter((m) => procedures.has(m.from) && procedures.has(m.to))
}

/**
 * How the CLI reaches its executions.
 *
 * @since 0.1.0
 * @category models
 */
export type Target =
  | { readonly _tag: "Local"; readonly dbPath: string; readonly loaded: ReadonlyArray<Loaded>; readonly recover: boolean }
  | { readonly _tag: "Read"; readonly dbPath: string }
  | { readonly _tag: "Remote"; readonly url: string; readonly token?: string | undefined; readonly via?: string | undefined }

/**
 * The `Operator` for a target. A local target opens the store and a runtime with the
 * loaded procedures (without resuming other executions unless `recover` is set); a read
 * target only a read-only connection. The HTTP client and the runtime are imported when
 * a target needs them, so that a read loads neither.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (target: Target): Layer.Layer<Operator, OperatorError> => {
  switch (target._tag) {
    case "Remote":
      return Layer.unwrapEffect(Effect.map(Effect.promise(() => import("./remote.js")), (m) => m.layer(target)))
    case "Read":
      return Layer.effect(Operator, Effect.map(Store, (s) => makeReader(s, `database ${target.dbPath}`))).pipe(
        Layer.provide(readOnlyStoreLayer(target.dbPath))
      )
    case "Local":
      return Layer.unwrapEffect(Effect.map(Effect.promise(() => import("../Runtime.js")), (R) =>
        Layer.effect(
          Operator,
          Effect.map(R.Runtime, (r) => makeLocal(r, target.loaded, `database ${target.dbPath}`))
        ).pipe(Layer.provide(R.layer({
          procedures: target.loaded.map((l) => l.procedure),
          migrations: migrationsOf(target.loaded),
          recover: target.recover
        }).pipe(Layer.provide(storeLayer(target.dbPath)))))))
  }
}
