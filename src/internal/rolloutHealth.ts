/**
 * A rollout's health: the samples the runtime keeps of the two versions while a rollout of
 * their procedure is under way (how long their steps and whole executions took, how often
 * the supervisor restarted them), and the pure decision a health check takes from those
 * and from the store's counts of how executions ended: hold, advance or revert, and why.
 */
import { Duration, Schema } from "effect"
import type { Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { VersionCount } from "../Store.js"

const Side = Schema.Struct({
  /** executions started since the phase began */
  started: Schema.optional(Schema.Number),
  /** of those, the ended ones, and the failed ones among them */
  ended: Schema.Number,
  failed: Schema.Number,
  /** supervisor restarts of this version's executions during the phase (in this runtime) */
  restarts: Schema.optional(Schema.Number),
  /** p99 of whole executions that ended during the phase, in ms */
  p99: Schema.optional(Schema.Number),
  /** p99 of each step state's visits that ended during the phase, in ms */
  states: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number }))
})
export type Side = typeof Side.Type

export const Health = Schema.Struct({ from: Side, to: Side, at: Schema.Number })
export type Health = typeof Health.Type

/** The thresholds of a rollout (`revertWhen`), in the units the check uses. */
export interface Thresholds {
  readonly failureRate: number
  readonly minExecutions: number
  readonly p99StateMillis?: number | undefined
  readonly p99ExecutionMillis?: number | undefined
  readonly restarts?: number | undefined
}

/** What a health check decided, and why. */
export interface Decision {
  readonly next: "holding" | "advancing" | "reverting"
  readonly health: Health
  readonly reason?: string | undefined
}

/** how many recent samples are kept of each state (and of whole executions) per version */
export const samplesKept = 2048

/** The latest `samplesKept` durations of one thing, with when each ended. */
class Ring {
  private readonly durations = new Float64Array(samplesKept)
  private readonly ats = new Float64Array(samplesKept)
  private next = 0
  private size = 0
  push(at: number, duration: number) {
    this.durations[this.next] = duration
    this.ats[this.next] = at
    this.next = (this.next + 1) % samplesKept
    if (this.size < samplesKept) this.size++
  }
  since(from: number): Array<number> {
    const out: Array<number> = []
    for (let i = 0; i < this.size; i++) if (this.ats[i]! >= from) out.push(this.durations[i]!)
    return out
  }
}

interface VersionSamples {
  readonly states: Map<string, Ring>
  readonly executions: Ring
  readonly restarts: Array<number>
}

/** What the samples of one version say about a window. */
export interface Latency {
  /** p99 and sample count of whole executions */
  readonly execution: { readonly p99: number; readonly samples: number } | undefined
  readonly states: ReadonlyMap<string, { readonly p99: number; readonly samples: number }>
  readonly restarts: number
}

/** nearest-rank percentile */
const p99Of = (xs: Array<number>) => {
  xs.sort((a, b) => a - b)
  return xs[Math.max(0, Math.ceil(xs.length * 0.99) - 1)]!
}

/**
 * The samples of the versions under a rollout, kept in memory by the runtime that runs
 * their executions (they start over when the runtime restarts; the failure rate is
 * counted in the store). Only procedures under a rollout are sampled.
 */
export class Recorder {
  private readonly byVersion = new Map<string, VersionSamples>()

  private of(procedure: string, version: number): VersionSamples {
    const key = `${procedure}@${version}`
    let s = this.byVersion.get(key)
    if (s === undefined) {
      s = { states: new Map(), executions: new Ring(), restarts: [] }
      this.byVersion.set(key, s)
    }
    return s
  }

  /** Takes a committed transition: a step's visit that ended, an execution that ended. */
  record(snapshot: Snapshot, t: Transition) {
    const s = this.of(snapshot.procedure, snapshot.version)
    // a visit of a step ends with its result ("step") or its failure for good ("failure")
    if (t.cause === "step" || t.cause === "failure") {
      let ring = s.states.get(t.from)
      if (ring === undefined) s.states.set(t.from, ring = new Ring())
      ring.push(t.at, t.duration)
    }
    if (isTerminal(snapshot.status)) s.executions.push(t.at, t.at - snapshot.startedAt)
  }

  /** The supervisor restarted an execution of this version after a defect. */
  restarted(procedure: string, version: number, at: number) {
    const r = this.of(procedure, version).restarts
    r.push(at)
    if (r.length > samplesKept) r.shift()
  }

  /**
   * The samples of one version since `since`; with `earlier`, a state (or whole
   * executions) with fewer than `min` samples since `since` is judged from `earlier` on
   * (the old version gets few starts in the last phases of a rollout).
   */
  latency(procedure: string, version: number, since: number, earlier?: { readonly since: number; readonly min: number }): Latency {
    const s = this.byVersion.get(`${procedure}@${version}`)
    if (s === undefined) return { execution: undefined, states: new Map(), restarts: 0 }
    const window = (ring: Ring) => {
      const xs = ring.since(since)
      return earlier !== undefined && xs.length < earlier.min ? ring.since(earlier.since) : xs
    }
    const states = new Map<string, { p99: number; samples: number }>()
    for (const [name, ring] of s.states) {
      const xs = window(ring)
      if (xs.length > 0) states.set(name, { p99: p99Of(xs), samples: xs.length })
    }
    const xs = window(s.executions)
    return {
      execution: xs.length === 0 ? undefined : { p99: p99Of(xs), samples: xs.length },
      states,
      restarts: s.restarts.filter((at) => at >= since).length
    }
  }

  /** Drops the samples of a procedure whose rollout ended. */
  forget(procedure: string) {
    for (const key of [...this.byVersion.keys()]) if (key.startsWith(`${procedure}@`)) this.byVersion.delete(key)
  }
}

const side = (counts: ReadonlyArray<VersionCount>, version: number, latency: Latency): Side => {
  let started = 0
  let ended = 0
  let failed = 0
  for (const c of counts) {
    if (c.version !== version) continue
    started += c.count
    // a step that failed for good and waits for a person counts as a failure already
    const failure = c.status === "failed" || c.status === "rolled_back" || c.status === "needs_intervention"
    if (isTerminal(c.status) || failure) ended += c.count
    if (failure) failed += c.count
  }
  const states: Record<string, number> = {}
  for (const [name, l] of latency.states) states[name] = l.p99
  return {
    started,
    ended,
    failed,
    restarts: latency.restarts,
    ...(latency.execution === undefined ? {} : { p99: latency.execution.p99 }),
    ...(latency.states.size === 0 ? {} : { states })
  }
}

const rate = (s: { readonly ended: number; readonly failed: number }) => s.ended === 0 ? 0 : s.failed / s.ended
const percent = (x: number) => `${(x * 100).toFixed(1)}%`
const ms = (x: number) => Duration.format(Duration.millis(Math.round(x)))

/** The window a check judges: the phase, the versions, and the samples of both. */
export interface Window {
  readonly from: number
  readonly to: number
  /** 1 for the first phase, and its share in percent */
  readonly phase: number
  readonly share: number
  readonly counts: ReadonlyArray<VersionCount>
  /** the old version's counts since the rollout began, when it ended too few executions in the phase */
  readonly earlier?: ReadonlyArray<VersionCount> | undefined
  readonly latency: { readonly from: Latency; readonly to: Latency }
  readonly now: number
}

/**
 * Whether the new version is worse than the old one over the window: its failure rate,
 * the p99 of one of its step states or of its whole executions, or its supervisor
 * restarts pass the threshold *and* the old version's over the same window (a dependency
 * that hurts both is not the new version's fault). Rates and latencies are judged over at
 * least `minExecutions` samples of the new version; the old version's are taken over the
 * rollout so far where the phase has fewer (`earlier`), and where the rollout has fewer
 * too, the threshold alone decides. Returns the reason to revert, or `undefined`.
 */
export const judge = (t: Thresholds, w: Window): { readonly health: Health; readonly reason: string | undefined } => {
  const health: Health = { from: side(w.earlier ?? w.counts, w.from, w.latency.from), to: side(w.counts, w.to, w.latency.to), at: w.now }
  const where = `in phase ${w.phase} (${w.share}%)`
  const newRate = rate(health.to)
  if (health.to.ended >= t.minExecutions && newRate > t.failureRate && newRate > rate(health.from)) {
    return {
      health,
      reason: `version ${w.to} failed ${health.to.failed} of ${health.to.ended} executions (${percent(newRate)}) ${where}, ` +
        `above ${percent(t.failureRate)} and version ${w.from}'s ${percent(rate(health.from))}`
    }
  }
  const slower = (bar: number | undefined, to: { p99: number; samples: number } | undefined, from: { p99: number; samples: number } | undefined) =>
    bar !== undefined && to !== undefined && to.samples >= t.minExecutions && to.p99 > bar &&
    (from === undefined || from.samples < t.minExecutions || to.p99 > from.p99)
  const old = (from: { p99: number; samples: number } | undefined) =>
    from === undefined || from.samples < t.minExecutions ? `too few samples of version ${w.from} to compare` : `version ${w.from}'s ${ms(from.p99)}`
  for (const [state, l] of w.latency.to.states) {
    const before = w.latency.from.states.get(state)
    if (slower(t.p99StateMillis, l, before)) {
      return {
        health,
        reason: `version ${w.to}'s state ${state} took ${ms(l.p99)} at p99 over ${l.samples} visits ${where}, ` +
          `above ${ms(t.p99StateMillis!)} (${old(before)})`
      }
    }
  }
  const ex = w.latency.to.execution
  if (slower(t.p99ExecutionMillis, ex, w.latency.from.execution)) {
    return {
      health,
      reason: `version ${w.to}'s executions took ${ms(ex!.p99)} at p99 over ${ex!.samples} ${where}, ` +
        `above ${ms(t.p99ExecutionMillis!)} (${old(w.latency.from.execution)})`
    }
  }
  const perExecution = (s: Side) => (s.restarts ?? 0) / Math.max(1, s.started ?? 0)
  if (t.restarts !== undefined && (health.to.restarts ?? 0) > t.restarts && perExecution(health.to) > perExecution(health.from)) {
    return {
      health,
      reason: `the supervisor restarted version ${w.to}'s executions ${health.to.restarts} times ${where}, above ${t.restarts} ` +
        `(version ${w.from}: ${health.from.restarts ?? 0} over ${health.from.started ?? 0} executions)`
    }
  }
  return { health, reason: undefined }
}
