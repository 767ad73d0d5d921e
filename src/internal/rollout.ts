/**
 * Phased rollouts, run by the runtime as executions of its own procedure (`proctor.rollout`,
 * one execution per rollout): each phase is a wait whose timer brings a health check, which
 * holds, advances or reverts; Pause, Resume, Advance and Revert are its events. The routing
 * table (which version a start of the procedure gets) is derived from those executions'
 * committed snapshots, so it is rebuilt from the store after a restart.
 */
import { Clock, Duration, Effect, Schema } from "effect"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import type { StoreService, VersionCount } from "../Store.js"
import type { Compiled } from "./transition.js"
import { procedureKey } from "./transition.js"

export const rolloutName = "proctor.rollout"

/** how often a phase's health is checked (the hold is decided at these checks) */
export const checkEvery = "5 seconds"

export const Pause = Schema.TaggedStruct("Pause", {})
export const Resume = Schema.TaggedStruct("Resume", {})
export const Advance = Schema.TaggedStruct("Advance", {})
export const Revert = Schema.TaggedStruct("Revert", { reason: Schema.optional(Schema.String) })

const Side = Schema.Struct({ ended: Schema.Number, failed: Schema.Number })
const Health = Schema.Struct({ from: Side, to: Side, at: Schema.Number })
export type Health = typeof Health.Type

const Input = Schema.Struct({
  procedure: Schema.String,
  from: Schema.Number,
  to: Schema.Number,
  phases: Schema.Array(Schema.Number),
  holdMillis: Schema.Number,
  failureRate: Schema.Number,
  minExecutions: Schema.Number,
  startedAt: Schema.Number
})
const Context = Schema.Struct({
  ...Input.fields,
  /** the index of the current phase in `phases` */
  phase: Schema.Number,
  phaseStartedAt: Schema.Number,
  health: Schema.optional(Health),
  reason: Schema.optional(Schema.String)
})
export type RolloutContext = typeof Context.Type
export type RolloutInput = typeof Input.Type

/** What a health check decided, and why. */
export interface Decision {
  readonly next: "holding" | "advancing" | "reverting"
  readonly health: Health
  readonly reason?: string | undefined
}

const side = (counts: ReadonlyArray<VersionCount>, version: number) => {
  let ended = 0
  let failed = 0
  for (const c of counts) {
    if (c.version !== version) continue
    // a step that failed for good and waits for a person counts as a failure already
    const failure = c.status === "failed" || c.status === "rolled_back" || c.status === "needs_intervention"
    if (isTerminal(c.status) || failure) ended += c.count
    if (failure) failed += c.count
  }
  return { ended, failed }
}

const rate = (s: { readonly ended: number; readonly failed: number }) => s.ended === 0 ? 0 : s.failed / s.ended
const percent = (x: number) => `${(x * 100).toFixed(1)}%`

/**
 * The health check of a phase: the executions of each version started since the phase
 * began and how they ended. The new version is reverted when, over at least
 * `minExecutions` of its ended executions, its failure rate passes `failureRate` and the
 * old version's over the same time (a dependency that fails both is not the new version's
 * fault); otherwise the phase advances once it has held for `holdMillis`.
 */
export const decide = (c: RolloutContext, counts: ReadonlyArray<VersionCount>, now: number): Decision => {
  const health: Health = { from: side(counts, c.from), to: side(counts, c.to), at: now }
  const newRate = rate(health.to)
  if (health.to.ended >= c.minExecutions && newRate > c.failureRate && newRate > rate(health.from)) {
    return {
      next: "reverting",
      health,
      reason: `version ${c.to} failed ${health.to.failed} of ${health.to.ended} executions (${percent(newRate)}) in phase ` +
        `${c.phase + 1} (${c.phases[c.phase]}%), above ${percent(c.failureRate)} and version ${c.from}'s ${percent(rate(health.from))}`
    }
  }
  return now - c.phaseStartedAt >= c.holdMillis ? { next: "advancing", health } : { next: "holding", health }
}

/** What the rollout's steps need of the runtime. */
export interface Env {
  readonly store: StoreService
  /** moves the new version's executions back, when a migration back is declared */
  migrateBack: (procedure: string, from: number, to: number) => Effect.Effect<void>
}


/** The rollout procedure: the same shape in every runtime, so that its executions resume anywhere. */
export const make = (env: Env) =>
  Procedure.make(rolloutName, {
    version: 1,
    description: "a phased rollout of a new version of a procedure (Runtime.rollout)",
    input: Input,
    context: Context,
    events: Schema.Union(Pause, Resume, Advance, Revert),
    init: (i): RolloutContext => ({ ...i, phase: 0, phaseStartedAt: i.startedAt })
  }, {
    initial: "holding",
    states: {
      holding: Procedure.wait({
        on: { Pause: "paused", Advance: "advancing", Revert: { goto: "reverting", update: (e, c) => ({ ...c, reason: e.reason ?? "reverted by an operator" }) } },
        after: { delay: checkEvery, goto: "checking" }
      }),
      checking: Procedure.step({
        run: ({ context }: Procedure.StepArgs<RolloutContext>) =>
          Effect.zipWith(
            env.store.countByVersion({ procedure: context.procedure, startedSince: context.phaseStartedAt }),
            Clock.currentTimeMillis,
            (counts, now) => decide(context, counts, now)
          ),
        next: (d: Decision) => d.next,
        targets: ["holding", "advancing", "reverting"],
        update: (d: Decision, c: RolloutContext): RolloutContext => ({ ...c, health: d.health, ...(d.reason === undefined ? {} : { reason: d.reason }) }),
        timeout: "30 seconds"
      }),
      advancing: Procedure.step({
        run: () => Clock.currentTimeMillis,
        next: (_: number, c: RolloutContext) => c.phase + 1 >= c.phases.length ? "completed" : "holding",
        targets: ["holding", "completed"],
        update: (now: number, c: RolloutContext): RolloutContext => c.phase + 1 >= c.phases.length ? c : { ...c, phase: c.phase + 1, phaseStartedAt: now }
      }),
      paused: Procedure.wait({ on: { Resume: "holding", Advance: "advancing", Revert: { goto: "reverting", update: (e, c) => ({ ...c, reason: e.reason ?? "reverted by an operator" }) } } }),
      reverting: Procedure.step({
        run: ({ context }: Procedure.StepArgs<RolloutContext>) => env.migrateBack(context.procedure, context.to, context.from),
        next: "reverted",
        timeout: "1 hour"
      }),
      completed: Procedure.final({ outcome: "completed" }),
      reverted: Procedure.final({ outcome: "reverted" })
    }
  })

/**
 * What `Runtime.rollouts` shows of one rollout.
 */
export interface RolloutStatus {
  /** the rollout's execution */
  readonly id: string
  readonly procedure: string
  readonly from: number
  readonly to: number
  readonly phases: ReadonlyArray<number>
  /** 1 for the first phase */
  readonly phase: number
  /** the share of new starts that go to `to` now, in percent */
  readonly share: number
  /** `holding`, `checking`, `advancing`, `paused`, `reverting`, `completed` or `reverted` */
  readonly state: string
  readonly status: Snapshot["status"]
  readonly phaseStartedAt: number
  readonly hold: string
  readonly health?: Health | undefined
  /** why it reverted */
  readonly reason?: string | undefined
}

/** The share of new starts a rollout in this snapshot sends to its new version. */
const shareOf = (s: Snapshot, c: RolloutContext) =>
  s.state === "completed" ? 100 : isTerminal(s.status) || s.state === "reverting" ? 0 : c.phases[c.phase] ?? 0

export const statusOf = (s: Snapshot): RolloutStatus => {
  const c = s.context as RolloutContext
  return {
    id: s.id,
    procedure: c.procedure,
    from: c.from,
    to: c.to,
    phases: c.phases,
    phase: c.phase + 1,
    share: shareOf(s, c),
    state: s.state,
    status: s.status,
    phaseStartedAt: c.phaseStartedAt,
    hold: Duration.format(Duration.millis(c.holdMillis)),
    ...(c.health === undefined ? {} : { health: c.health }),
    ...(c.reason === undefined ? {} : { reason: c.reason })
  }
}

/** FNV-1a: a start's bucket (0..9999) from its id or idempotency key, the same on every runtime. */
const bucket = (key: string) => {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) % 10000
}

/**
 * Which version a start goes to, by procedure name: the latest rollout of each name. A
 * start asking for the rollout's old or new version is routed by the current share; a
 * start of any other version is left alone.
 */
export class Routes {
  private readonly latest = new Map<string, { readonly id: string; readonly startedAt: number; readonly status: RolloutStatus }>()

  /** Takes a committed snapshot of a rollout execution (at start-up, and after each commit). */
  apply(s: Snapshot) {
    const status = statusOf(s)
    const known = this.latest.get(status.procedure)
    if (known !== undefined && known.id !== s.id && known.startedAt > s.startedAt) return
    this.latest.set(status.procedure, { id: s.id, startedAt: s.startedAt, status })
  }

  /** The rollout of this procedure that has not ended, if any. */
  active(procedure: string): RolloutStatus | undefined {
    const r = this.latest.get(procedure)?.status
    return r !== undefined && !isTerminal(r.status) ? r : undefined
  }

  route(compiled: Compiled, key: string, registry: ReadonlyMap<string, Compiled>): Compiled {
    const r = this.latest.get(compiled.def.name)?.status
    if (r === undefined || (compiled.def.version !== r.from && compiled.def.version !== r.to)) return compiled
    const version = bucket(key) < r.share * 100 ? r.to : r.from
    return registry.get(procedureKey(compiled.def.name, version)) ?? compiled
  }
}
