/**
 * The rollout operations of the runtime (`Runtime.rollout`, `rollouts`, `controlRollout`):
 * checking a rollout's options and starting its execution, reading the rollouts, and the
 * manual controls, which are events sent to the rollout's execution.
 */
import type { Duration } from "effect"
import { Duration as D, Effect } from "effect"
import type { QuotaExceeded, SendTimeout, StoreError, VersionConflict } from "../Errors.js"
import { DefinitionError, ExecutionNotFound, InvalidTransition, ValidationError } from "../Errors.js"
import type { ExecutionId, ListFilter, Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import type { SendResult } from "./eventWaiters.js"
import type { RolloutInput, RolloutStatus, Routes } from "./rollout.js"
import type { Health } from "./rolloutHealth.js"
import { advance, rolloutName, statusOf } from "./rollout.js"
import type { Compiled } from "./transition.js"
import { procedureKey } from "./transition.js"

/**
 * Options of `Runtime.rollout`.
 *
 * @inline
 */
export interface RolloutOptions {
  /** the new version (registered with the runtime); the old one is the version of the procedure given */
  readonly to: number
  /** the share of new starts that go to the new version in each phase, in percent, increasing. @default [1, 5, 25, 50, 100] */
  readonly phases?: ReadonlyArray<number> | undefined
  /** how long each phase holds while its health is watched. @default "10 minutes" */
  readonly hold?: Duration.DurationInput | undefined
  readonly revertWhen?: {
    /** revert when the new version's failure rate in a phase passes this (and the old version's). @default 0.05 */
    readonly failureRate?: number | undefined
    /** judge rates and latencies over at least this many ended executions (or visits of a state) of the new version. @default 10 */
    readonly minExecutions?: number | undefined
    /**
     * revert when the new version's p99 latency in a phase passes this (and the old
     * version's over the same time): a duration bars each step state and whole executions;
     * `{ state, execution }` bars them apart. Measured by each runtime of the executions it runs.
     */
    readonly p99?: Duration.DurationInput | { readonly state?: Duration.DurationInput | undefined; readonly execution?: Duration.DurationInput | undefined } | undefined
    /** revert when the supervisor restarted the new version's executions more than this many times in a phase (and more often per execution than the old version's) */
    readonly restarts?: number | undefined
  } | undefined
}

/** The manual controls of a rollout. */
export type RolloutControl = "pause" | "resume" | "advance" | "revert"

const events = { pause: "Pause", resume: "Resume", advance: "Advance", revert: "Revert" } as const

export interface Deps {
  readonly registry: ReadonlyMap<string, Compiled>
  readonly routes: Routes
  readonly procedure: Procedure.Any
  readonly start: (input: RolloutInput) => Effect.Effect<ExecutionId, ValidationError | InvalidTransition | DefinitionError | QuotaExceeded | StoreError>
  readonly get: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<Snapshot>, StoreError>
  /** the latest health check of a rollout under way */
  readonly health: (id: string) => Health | undefined
  readonly sendAndWait: (id: string, event: unknown) => Effect.Effect<SendResult, ExecutionNotFound | ValidationError | InvalidTransition | VersionConflict | SendTimeout | StoreError>
}

const invalid = (procedure: string, issue: string) => new ValidationError({ procedure, subject: "input", issue: `Runtime.rollout: ${issue}` })

export const make = (deps: Deps) => {
  const start = (procedure: Procedure.Any, options: RolloutOptions) =>
    Effect.gen(function*() {
      const name = procedure.name
      for (const version of [procedure.version, options.to]) {
        if (!deps.registry.has(procedureKey(name, version))) {
          return yield* new DefinitionError({ procedure: name, reason: `version ${version} is not registered with this runtime; add it to Runtime.layer({ procedures }) to roll it out` })
        }
      }
      if (options.to === procedure.version) return yield* invalid(name, `the new version (to: ${options.to}) is the version given; pass the old version's procedure and the new version's number`)
      const phases = options.phases ?? [1, 5, 25, 50, 100]
      if (phases.length === 0 || phases.some((p, i) => !(p > 0 && p <= 100) || (i > 0 && p <= phases[i - 1]!))) {
        return yield* invalid(name, `phases must be increasing percentages above 0 and at most 100, e.g. [1, 5, 25, 50, 100]; got [${phases.join(", ")}]`)
      }
      const hold = D.decodeUnknown(options.hold ?? "10 minutes")
      if (hold._tag === "None" || !D.isFinite(hold.value)) return yield* invalid(name, `hold must be a finite duration, e.g. "10 minutes"`)
      const failureRate = options.revertWhen?.failureRate ?? 0.05
      if (!(failureRate >= 0 && failureRate <= 1)) return yield* invalid(name, `revertWhen.failureRate is a share between 0 and 1 (0.05 is 5%); got ${failureRate}`)
      const minExecutions = options.revertWhen?.minExecutions ?? 10
      if (!(Number.isInteger(minExecutions) && minExecutions >= 1)) return yield* invalid(name, `revertWhen.minExecutions must be a whole number from 1; got ${minExecutions}`)
      const p99 = options.revertWhen?.p99
      const split = typeof p99 === "object" && p99 !== null && !D.isDuration(p99) && !Array.isArray(p99)
        ? p99 as { readonly state?: Duration.DurationInput | undefined; readonly execution?: Duration.DurationInput | undefined }
        : { state: p99 as Duration.DurationInput | undefined, execution: p99 as Duration.DurationInput | undefined }
      const bars: { p99StateMillis?: number; p99ExecutionMillis?: number } = {}
      for (const [key, bar] of [["p99StateMillis", split.state], ["p99ExecutionMillis", split.execution]] as const) {
        if (bar === undefined) continue
        const d = D.decodeUnknown(bar)
        if (d._tag === "None" || !D.isFinite(d.value)) return yield* invalid(name, `revertWhen.p99 must be a finite duration (e.g. "2 seconds") or { state, execution } of them`)
        bars[key] = D.toMillis(d.value)
      }
      const restarts = options.revertWhen?.restarts
      if (restarts !== undefined && !(Number.isInteger(restarts) && restarts >= 0)) {
        return yield* invalid(name, `revertWhen.restarts must be a whole number from 0; got ${restarts}`)
      }
      const active = deps.routes.active(name)
      if (active !== undefined) {
        return yield* new InvalidTransition({
          executionId: active.id,
          operation: `start a rollout of ${name} beside rollout`,
          status: active.status,
          state: active.state,
          hint: `A rollout of ${name} (version ${active.from} to ${active.to}) is under way; advance it, or revert it, before starting another.`
        })
      }
      const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const id = yield* deps.start({
        procedure: name,
        from: procedure.version,
        to: options.to,
        phases,
        holdMillis: D.toMillis(hold.value),
        failureRate,
        minExecutions,
        ...bars,
        ...(restarts === undefined ? {} : { restarts }),
        startedAt: now
      })
      return statusOf(yield* deps.get(id))
    })

  /** with the latest check's health while under way */
  const status = (s: Snapshot): RolloutStatus => {
    const r = statusOf(s)
    const health = isTerminal(s.status) ? undefined : deps.health(s.id)
    return health === undefined ? r : { ...r, health }
  }

  /** The rollouts of a procedure (or all), the latest first. */
  const list = (procedure?: string) =>
    Effect.map(deps.list({ limit: 1_000_000 }), (all) =>
      all.map(status).filter((r) => procedure === undefined || r.procedure === procedure).reverse())

  const control = (procedure: string, action: RolloutControl, options?: { readonly reason?: string | undefined }) =>
    Effect.gen(function*() {
      const active = deps.routes.active(procedure)
      if (active === undefined) return yield* new ExecutionNotFound({ executionId: `${rolloutName} of ${procedure} (no rollout of it is under way)` })
      const at = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const event = action === "revert"
        ? { _tag: events[action], ...(options?.reason === undefined ? {} : { reason: options.reason }) }
        // meant for the phase shown: an advance the health checks made meanwhile is not repeated
        : action === "advance" ? advance(active.phases.length, active.phase, at) : { _tag: events[action], at }
      // no expected version is given, so none can conflict
      const result = yield* Effect.catchTag(deps.sendAndWait(active.id, event), "VersionConflict", Effect.die)
      if (result._tag === "Discarded") {
        const now = statusOf(result.snapshot)
        return yield* new InvalidTransition({
          executionId: active.id,
          operation: `${action} rollout`,
          status: result.snapshot.status,
          state: result.snapshot.state,
          hint: `The rollout of ${procedure} is in phase ${now.phase} (${now.share}%), state ${now.state}, and refused it (${result.reason.message}); ` +
            `look at its status (proctor rollout status ${procedure}) and ask again.`
        })
      }
      // right after the event: paused, holding (the next phase), completed or reverting
      return status(result.snapshot)
    })

  return { start, list, control }
}

export type { RolloutStatus }
