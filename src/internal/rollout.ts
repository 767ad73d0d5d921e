/**
 * Phased rollouts, run by the runtime as executions of its own procedure (`proctor.rollout`,
 * one execution per rollout): each phase is a wait that the runtime's health checks end
 * (advance or revert); Pause, Resume, Advance and Revert are its events. The routing
 * table (which version a start of the procedure gets) is derived from those executions'
 * committed snapshots, so it is rebuilt from the store after a restart.
 */
import type { Effect } from "effect"
import { Duration, Schema } from "effect"
import type { Snapshot } from "../Execution.js"
import { isTerminal, Status } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import type { Health } from "./rolloutHealth.js"
import { Health as HealthSchema } from "./rolloutHealth.js"
import type { Compiled } from "./transition.js"
import { procedureKey } from "./transition.js"

export const rolloutName = "proctor.rollout"

/**
 * Move on from the current phase: `Advance` to the next one, `Complete` after the last
 * (`advance` below says which). `phase` (1 for the first) names the phase it is meant for:
 * the health checks of every runtime on the store and an operator may ask at once, and
 * only the first moves the rollout on. `at` (epoch ms) is when: the next phase's health
 * window and hold start there; `health` is what the check that asked saw.
 */
export const Advance = Schema.TaggedStruct("Advance", { phase: Schema.Number, at: Schema.Number, health: Schema.optional(HealthSchema) })
export const Complete = Schema.TaggedStruct("Complete", { phase: Schema.Number, at: Schema.Number, health: Schema.optional(HealthSchema) })
/** `at`: when (epoch ms): the hold's clock stops from the Pause's `at` to the Resume's */
export const Pause = Schema.TaggedStruct("Pause", { at: Schema.Number })
export const Resume = Schema.TaggedStruct("Resume", { at: Schema.Number })
export const Revert = Schema.TaggedStruct("Revert", { reason: Schema.optional(Schema.String), health: Schema.optional(HealthSchema) })

const Input = Schema.Struct({
  procedure: Schema.String,
  from: Schema.Number,
  to: Schema.Number,
  phases: Schema.Array(Schema.Number),
  holdMillis: Schema.Number,
  failureRate: Schema.Number,
  minExecutions: Schema.Number,
  p99StateMillis: Schema.optional(Schema.Number),
  p99ExecutionMillis: Schema.optional(Schema.Number),
  restarts: Schema.optional(Schema.Number),
  startedAt: Schema.Number
})
const Context = Schema.Struct({
  ...Input.fields,
  /** the index of the current phase in `phases` */
  phase: Schema.Number,
  /** the health window of the phase starts here */
  phaseStartedAt: Schema.Number,
  /** the phase advances at this time, unless paused (a pause moves it on by its length) */
  holdUntil: Schema.Number,
  pausedAt: Schema.optional(Schema.Number),
  health: Schema.optional(HealthSchema),
  reason: Schema.optional(Schema.String)
})
export type RolloutContext = typeof Context.Type
export type RolloutInput = typeof Input.Type

/** What the rollout's steps need of the runtime. */
export interface Env {
  /** moves the new version's executions back, when a migration back is declared */
  migrateBack: (procedure: string, from: number, to: number) => Effect.Effect<void>
}

type Args = Procedure.StepArgs<RolloutContext>
const withHealth = (c: RolloutContext, health: Health | undefined): RolloutContext => health === undefined ? c : { ...c, health }
const reverted = (reason: string | undefined, health: Health | undefined, c: RolloutContext): RolloutContext =>
  ({ ...withHealth(c, health), reason: reason ?? "reverted by an operator" })
const isLast = (c: RolloutContext) => c.phase + 1 >= c.phases.length
/** the next phase, from `at`; a pause ends with it */
const nextPhase = (at: number, health: Health | undefined, { pausedAt: _, ...c }: RolloutContext): RolloutContext =>
  withHealth({ ...c, phase: c.phase + 1, phaseStartedAt: at, holdUntil: at + c.holdMillis }, health)
// an Advance or Complete meant for a phase the rollout has left is refused (and logged)
const forThisPhase = (phase: number, c: RolloutContext) => phase === c.phase + 1

/**
 * The event that moves a rollout on from phase `phase` (1 for the first) of `phases`.
 */
export const advance = (phases: number, phase: number, at: number, health?: Health) =>
  phase >= phases
    ? { _tag: "Complete" as const, phase, at, ...(health === undefined ? {} : { health }) }
    : { _tag: "Advance" as const, phase, at, ...(health === undefined ? {} : { health }) }

/**
 * The rollout procedure: the same shape in every runtime, so that its executions resume
 * anywhere. A phase is the `holding` wait; it has no timer: the runtime's health checks
 * (rolloutMonitor.ts) send `Advance` (or `Complete`) when `holdUntil` has passed and
 * `Revert` when a threshold is crossed, so the history holds the phase changes and
 * nothing else. Every change but the revert (whose step migrates executions back) is one
 * transition, with the time it happened carried by its event.
 */
export const make = (env: Env) =>
  Procedure.make(rolloutName, {
    version: 1,
    description: "a phased rollout of a new version of a procedure (Runtime.rollout)",
    input: Input,
    context: Context,
    events: Schema.Union(Pause, Resume, Advance, Complete, Revert),
    init: (i): RolloutContext => ({ ...i, phase: 0, phaseStartedAt: i.startedAt, holdUntil: i.startedAt + i.holdMillis })
  }, {
    initial: "holding",
    states: {
      holding: Procedure.wait({
        on: {
          Pause: { goto: "paused", update: (e, c) => ({ ...c, pausedAt: e.at }) },
          Advance: { goto: "holding", guard: (e, c) => forThisPhase(e.phase, c) && !isLast(c), update: (e, c) => nextPhase(e.at, e.health, c) },
          Complete: { goto: "completed", guard: (e, c) => forThisPhase(e.phase, c) && isLast(c), update: (e, c) => withHealth(c, e.health) },
          Revert: { goto: "reverting", update: (e, c) => reverted(e.reason, e.health, c) }
        }
      }),
      paused: Procedure.wait({
        on: {
          // the hold's clock stopped while paused
          Resume: {
            goto: "holding",
            update: (e, { pausedAt, ...c }) => ({ ...c, holdUntil: c.holdUntil + Math.max(0, e.at - (pausedAt ?? e.at)) })
          },
          Advance: { goto: "holding", guard: (e, c) => forThisPhase(e.phase, c) && !isLast(c), update: (e, c) => nextPhase(e.at, e.health, c) },
          Complete: { goto: "completed", guard: (e, c) => forThisPhase(e.phase, c) && isLast(c), update: (e, c) => withHealth(c, e.health) },
          Revert: { goto: "reverting", update: (e, c) => reverted(e.reason, e.health, c) }
        }
      }),
      reverting: Procedure.step({
        run: ({ context }: Args) => env.migrateBack(context.procedure, context.to, context.from),
        next: "reverted",
        timeout: "1 hour"
      }),
      completed: Procedure.final({ outcome: "completed" }),
      reverted: Procedure.final({ outcome: "reverted" })
    }
  })

/**
 * What `Runtime.rollouts` shows of one rollout (and the HTTP API sends).
 */
export const RolloutStatus = Schema.Struct({
  /** the rollout's execution */
  id: Schema.String,
  procedure: Schema.String,
  from: Schema.Number,
  to: Schema.Number,
  phases: Schema.Array(Schema.Number),
  /** 1 for the first phase */
  phase: Schema.Number,
  /** the share of new starts that go to `to` now, in percent */
  share: Schema.Number,
  /** `holding`, `paused`, `reverting`, `completed` or `reverted` */
  state: Schema.String,
  status: Status,
  /** when the phase began (epoch ms): its health is judged from here */
  phaseStartedAt: Schema.Number,
  /** when the phase advances (epoch ms), unless paused or reverted */
  holdUntil: Schema.Number,
  /** how long each phase holds */
  hold: Schema.String,
  /** what reverts it (the p99 bars in ms) */
  revertWhen: Schema.Struct({
    failureRate: Schema.Number,
    minExecutions: Schema.Number,
    p99State: Schema.optional(Schema.Number),
    p99Execution: Schema.optional(Schema.Number),
    restarts: Schema.optional(Schema.Number)
  }),
  /** both versions' health over the phase: the latest check's while under way, the last committed one after */
  health: Schema.optional(HealthSchema),
  /** why it reverted */
  reason: Schema.optional(Schema.String),
  /** the controls it takes now (`Runtime.controlRollout`) */
  controls: Schema.Array(Schema.Literal("pause", "resume", "advance", "revert"))
}).annotations({ identifier: "RolloutStatus" })
export interface RolloutStatus extends Schema.Schema.Type<typeof RolloutStatus> {}

/** The share of new starts a rollout in this snapshot sends to its new version. */
const shareOf = (s: Snapshot, c: RolloutContext) =>
  s.state === "completed" ? 100 : isTerminal(s.status) || s.state === "reverting" ? 0 : c.phases[c.phase] ?? 0

const optional = <K extends string, V>(key: K, value: V | undefined) => (value === undefined ? {} : { [key]: value }) as { readonly [k in K]?: V }

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
    holdUntil: c.holdUntil,
    hold: Duration.format(Duration.millis(c.holdMillis)),
    revertWhen: {
      failureRate: c.failureRate,
      minExecutions: c.minExecutions,
      ...optional("p99State", c.p99StateMillis),
      ...optional("p99Execution", c.p99ExecutionMillis),
      ...optional("restarts", c.restarts)
    },
    ...optional("health", c.health),
    ...optional("reason", c.reason),
    controls: s.state === "holding" ? ["pause", "advance", "revert"] : s.state === "paused" ? ["resume", "advance", "revert"] : []
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

/** A rollout under way, as the health checks need it. */
export interface Active {
  readonly status: RolloutStatus
  readonly context: RolloutContext
}

/**
 * Which version a start goes to, by procedure name: the latest rollout of each name. A
 * start asking for the rollout's old or new version is routed by the current share; a
 * start of any other version is left alone.
 */
export class Routes {
  private readonly latest = new Map<string, { readonly snapshot: Snapshot; readonly status: RolloutStatus }>()
  /** called when a snapshot of a rollout under way is applied (wakes the health checks) */
  onActive: () => void = () => {}

  /** Takes a committed snapshot of a rollout execution (at start-up, after each commit, and from the health checks' reads). */
  apply(s: Snapshot) {
    const status = statusOf(s)
    const known = this.latest.get(status.procedure)?.snapshot
    if (known !== undefined && (known.id === s.id ? known.rowVersion > s.rowVersion : known.startedAt > s.startedAt)) return
    this.latest.set(status.procedure, { snapshot: s, status })
    if (!isTerminal(s.status)) this.onActive()
  }

  /** The rollout of this procedure that has not ended, if any. */
  active(procedure: string): RolloutStatus | undefined {
    const r = this.latest.get(procedure)?.status
    return r !== undefined && !isTerminal(r.status) ? r : undefined
  }

  /** Whether this execution's version is under a rollout (its health is sampled). */
  sampled(s: Snapshot): boolean {
    const r = this.active(s.procedure)
    return r !== undefined && (s.version === r.from || s.version === r.to)
  }

  /** The rollouts that have not ended. */
  underWay(): Array<Active> {
    const out: Array<Active> = []
    for (const { snapshot, status } of this.latest.values()) {
      if (!isTerminal(status.status)) out.push({ status, context: snapshot.context as RolloutContext })
    }
    return out
  }

  route(compiled: Compiled, key: string, registry: ReadonlyMap<string, Compiled>): Compiled {
    const r = this.latest.get(compiled.def.name)?.status
    if (r === undefined || (compiled.def.version !== r.from && compiled.def.version !== r.to)) return compiled
    const version = bucket(key) < r.share * 100 ? r.to : r.from
    return registry.get(procedureKey(compiled.def.name, version)) ?? compiled
  }
}
