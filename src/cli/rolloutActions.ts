/**
 * What `proctor rollout …` does: each subcommand calls one operation of the `Operator`
 * (a runtime in this process, the database read-only for `status`, or a running server)
 * and prints what it answers.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Option } from "effect"
import type { Health, Side } from "../internal/rolloutHealth.js"
import { maxReasonLength } from "../internal/limits.js"
import type { RolloutControl, RolloutStatus } from "../Runtime.js"
import { withOperator } from "./actions.js"
import type { CommonArgs } from "./args.js"
import { usage } from "./args.js"
import * as Out from "./output.js"

const percent = (x: number) => `${(x * 100).toFixed(1)}%`
const ms = (x: number | undefined) => x === undefined ? "-" : Out.formatElapsed(x)
const rate = (s: Side) => `${s.failed} of ${s.ended}${s.ended === 0 ? "" : ` (${percent(s.failed / s.ended)})`}`

/** both versions' health, one row per measure */
const healthRows = (r: RolloutStatus, h: Health): Array<Array<string>> => {
  const states = [...new Set([...Object.keys(h.from.states ?? {}), ...Object.keys(h.to.states ?? {})])].sort()
  return [
    ["", `version ${r.from}`, `version ${r.to}`],
    ["started", String(h.from.started ?? "-"), String(h.to.started ?? "-")],
    ["failed of ended", rate(h.from), rate(h.to)],
    ["p99 whole execution", ms(h.from.p99), ms(h.to.p99)],
    ...states.map((s) => [`p99 ${s}`, ms(h.from.states?.[s]), ms(h.to.states?.[s])]),
    ["supervisor restarts", String(h.from.restarts ?? 0), String(h.to.restarts ?? 0)]
  ]
}

const print = (r: RolloutStatus, now: number) =>
  Effect.gen(function*() {
    const under = r.status !== "succeeded" && r.status !== "failed" && r.status !== "cancelled" && r.status !== "rolled_back"
    const when = r.state === "holding" ? `, advances in ${Out.formatElapsed(Math.max(0, r.holdUntil - now))}` : ""
    yield* Out.line(
      `Rollout of ${r.procedure}: version ${r.from} -> ${r.to}, phase ${r.phase} of ${r.phases.length} ` +
        `(${r.share}% of new starts on version ${r.to}), ${r.state}${when}`
    )
    const bars = [
      `failure rate above ${percent(r.revertWhen.failureRate)}`,
      ...(r.revertWhen.p99State === undefined ? [] : [`a state's p99 above ${ms(r.revertWhen.p99State)}`]),
      ...(r.revertWhen.p99Execution === undefined ? [] : [`executions' p99 above ${ms(r.revertWhen.p99Execution)}`]),
      ...(r.revertWhen.restarts === undefined ? [] : [`more than ${r.revertWhen.restarts} restarts`])
    ]
    yield* Out.line(`  phases ${r.phases.join(", ")}%, each held ${r.hold}; reverts on ${bars.join(", ")} (over at least ${r.revertWhen.minExecutions})`)
    if (r.health !== undefined) {
      yield* Out.line(`  health ${under ? "since the phase began" : "when it last changed"}:`)
      yield* Out.line(Out.table(healthRows(r, r.health)).trimEnd().split("\n").map((l) => `    ${l}`).join("\n"))
    }
    if (r.reason !== undefined) yield* Out.line(`  reverted: ${r.reason}`)
    yield* Out.line(`  execution ${r.id} (proctor show ${r.id})`)
  })

const output = (json: boolean, r: RolloutStatus) => Effect.flatMap(Clock.currentTimeMillis, (now) => json ? Out.json(r) : print(r, now))

/** @internal `proctor rollout start name@version --to N …` */
export const start = (a: CommonArgs & {
  readonly from: string
  readonly to: number
  readonly phases: Option.Option<string>
  readonly hold: Option.Option<string>
  readonly failureRate: Option.Option<number>
  readonly p99: Option.Option<string>
  readonly p99Execution: Option.Option<string>
  readonly restarts: Option.Option<number>
  readonly minExecutions: Option.Option<number>
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const from = /^(.+)@(\d+)$/.exec(a.from)
    if (from === null) return yield* usage(`give the procedure and the version new starts go to now, e.g. proctor rollout start ${a.from}@1 --to ${a.to}`)
    const phases = Option.map(a.phases, (p) => p.split(",").map((x) => Number(x.trim())))
    if (Option.isSome(phases) && phases.value.some((p) => !Number.isFinite(p))) {
      return yield* usage(`--phases takes percentages separated by commas, e.g. --phases 1,5,25,50,100`)
    }
    const p99 = Option.getOrUndefined(a.p99)
    const p99Execution = Option.getOrUndefined(a.p99Execution)
    const revertWhen = {
      ...Option.match(a.failureRate, { onNone: () => ({}), onSome: (failureRate) => ({ failureRate }) }),
      ...Option.match(a.minExecutions, { onNone: () => ({}), onSome: (minExecutions) => ({ minExecutions }) }),
      ...Option.match(a.restarts, { onNone: () => ({}), onSome: (restarts) => ({ restarts }) }),
      ...(p99Execution === undefined ? p99 === undefined ? {} : { p99 } : { p99: { ...(p99 === undefined ? {} : { state: p99 }), execution: p99Execution } })
    }
    const r = yield* withOperator(a, "rollout start", { read: false }, (op) =>
      op.rollout({ name: from[1]!, version: Number(from[2]) }, {
        to: a.to,
        ...Option.match(phases, { onNone: () => ({}), onSome: (phases) => ({ phases }) }),
        ...Option.match(a.hold, { onNone: () => ({}), onSome: (hold) => ({ hold }) }),
        revertWhen
      }))
    yield* output(a.json, r)
  })

/** @internal `proctor rollout status [name]` */
export const status = (a: CommonArgs & { readonly procedure: Option.Option<string>; readonly json: boolean }) =>
  withOperator(a, "rollout status", { read: true }, (op) =>
    Effect.gen(function*() {
      const all = yield* op.rollouts(Option.getOrUndefined(a.procedure))
      if (a.json) return yield* Out.json(all)
      if (all.length === 0) {
        return yield* Out.line(`No rollouts${Option.match(a.procedure, { onNone: () => "", onSome: (p) => ` of ${p}` })}. Start one with proctor rollout start <name@version> --to N.`)
      }
      const now = yield* Clock.currentTimeMillis
      for (const r of all) yield* print(r, now)
    }))

/** @internal `proctor rollout advance|pause|resume|revert name` */
export const control = (
  action: RolloutControl,
  a: CommonArgs & { readonly procedure: string; readonly reason?: Option.Option<string>; readonly json: boolean }
) =>
  Effect.gen(function*() {
    const reason = a.reason === undefined ? undefined : Option.getOrUndefined(a.reason)
    if (reason !== undefined && (reason.length === 0 || reason.length > maxReasonLength)) {
      return yield* usage(`--reason must have 1 to ${maxReasonLength} characters (it has ${reason.length}); say why briefly, or leave it out`)
    }
    const r = yield* withOperator(a, `rollout ${action}`, { read: false }, (op) => op.controlRollout(a.procedure, action, reason))
    yield* output(a.json, r)
  })
