/**
 * Replays a recorded history against a procedure's definition: every transition must be
 * one the definition allows from where the previous one left, in gapless order, with the
 * status the transition function gives, and the last one must be the stored snapshot.
 */
import { Either, Schema } from "effect"
import type { Status } from "../Execution.js"
import { Snapshot, Transition } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import { formatParseError } from "../Procedure.js"
import type { Compiled } from "./transition.js"

export interface VerifyReport {
  readonly executionId: string
  readonly procedure: string
  readonly version: number
  readonly transitions: number
  readonly ok: boolean
  readonly problems: ReadonlyArray<string>
}

const entered = (state: Procedure.AnyState): Status =>
  state._tag === "Step" ? "running" : state._tag === "Wait" ? "waiting" : state.outcome === "failed" ? "failed" : "succeeded"

/** The statuses a status-only transition (from = to) may give, by its cause (a Map: causes come from the history). */
const statusOnly: ReadonlyMap<string, ReadonlyArray<Status>> = new Map([
  ["failure", ["needs_intervention", "compensating", "failed"]],
  ["pause", ["paused"]],
  ["resume", ["running", "waiting"]],
  ["cancel", ["cancelled"]],
  ["rollback", ["compensating", "rolled_back"]],
  ["retry", ["running"]],
  ["compensated", ["failed", "rolled_back"]],
  ["defect", ["failed"]]
])

const ExportLine = Schema.Union(
  Schema.Struct({ type: Schema.Literal("execution"), snapshot: Snapshot }),
  Schema.extend(Schema.Struct({ type: Schema.Literal("transition") }), Transition),
  Schema.Struct({ type: Schema.Literal("error") })
)
const decodeLine = Schema.decodeUnknownEither(Schema.parseJson(ExportLine))

/**
 * Reads an export of `Runtime.exportHistory`. Each line is decoded with its Schema: an
 * export is input from outside, and a field of the wrong type must be refused here, not
 * found by a `TypeError` in `verify`.
 */
export const parseExport = (
  jsonl: string
): Either.Either<{ readonly snapshot: Snapshot; readonly history: ReadonlyArray<Transition> }, string> => {
  let snapshot: Snapshot | undefined
  const history: Array<Transition> = []
  for (const [i, line] of jsonl.split("\n").entries()) {
    if (line.trim() === "") continue
    const row = decodeLine(line)
    if (Either.isLeft(row)) {
      return Either.left(`line ${i + 1} is not an execution, transition or error line of an export: ${formatParseError(row.left)}`)
    }
    if (row.right.type === "execution") snapshot = row.right.snapshot
    else if (row.right.type === "transition") {
      const { type: _, ...t } = row.right
      history.push(t)
    }
  }
  if (snapshot === undefined) return Either.left(`no "execution" line: this is not an export of Runtime.exportHistory`)
  return Either.right({ snapshot, history })
}

export const verify = (
  compiled: Compiled,
  snapshot: Snapshot,
  history: ReadonlyArray<Transition>
): VerifyReport => {
  const def = compiled.def
  const problems: Array<string> = []
  const report = () => ({
    executionId: snapshot.id,
    procedure: snapshot.procedure,
    version: snapshot.version,
    transitions: history.length,
    ok: problems.length === 0,
    problems
  })
  if (history.length === 0) {
    problems.push("the history is empty")
    return report()
  }
  if (history[0]!.seq !== 1) {
    problems.push(`the history starts at seq ${history[0]!.seq}: it was pruned, so it cannot be replayed from the start`)
    return report()
  }
  let prev: Transition | undefined
  for (const t of history) {
    const where = `transition ${t.seq} (${t.from || "∅"} -> ${t.to}, ${t.cause})`
    if (t.executionId !== snapshot.id) problems.push(`${where} belongs to execution ${t.executionId}`)
    if (prev !== undefined && t.seq !== prev.seq + 1) problems.push(`${where} follows seq ${prev.seq}: a gap or a repeat`)
    const expectedFrom = prev === undefined ? "" : prev.to
    if (t.from !== expectedFrom) problems.push(`${where} starts from "${t.from}", but the previous transition ended in "${expectedFrom}"`)
    const to = Procedure.stateOf(def, t.to)
    if (to === undefined) {
      problems.push(`${where} goes to a state the procedure does not have`)
      prev = t
      continue
    }
    const from = prev === undefined ? undefined : Procedure.stateOf(def, t.from)
    const legal = (() => {
      if (t.cause === "start") return prev === undefined && t.to === def.initial
      if (from === undefined) return false
      if (t.cause === "skip") return true
      if (t.cause === "step") {
        if (from._tag !== "Step") return false
        const out = Procedure.edges(from)
        return out === undefined || out.some((e) => e.to === t.to)
      }
      if (t.cause === "timer") return from._tag === "Wait" && from.after?.goto === t.to
      if (t.cause.startsWith("event:")) {
        const tag = t.cause.slice("event:".length)
        if (from._tag !== "Wait" || Procedure.handlerOf(from, tag)?.goto !== t.to) return false
        if (t.event !== undefined && Either.isLeft(compiled.decodeEvent(t.event))) return false
        return true
      }
      if (t.cause === "failure" && t.to !== t.from) {
        return from._tag === "Step" && typeof from.onFailure === "object" && from.onFailure.goto === t.to
      }
      return t.to === t.from && statusOnly.has(t.cause)
    })()
    if (!legal) problems.push(`${where} is not a transition the definition of ${def.name} v${def.version} allows`)
    const statusOk = t.to !== t.from || t.cause === "step" || t.cause === "skip" || t.cause.startsWith("event:") ||
        t.cause === "timer" || (t.cause === "failure" && typeof (from as Procedure.Step<any, any, any, any, any>)?.onFailure === "object")
      ? t.status === entered(to) || (t.cause === "failure" && t.status === "failed")
      : (statusOnly.get(t.cause) ?? []).includes(t.status)
    if (!statusOk) problems.push(`${where} ends with status ${t.status}, which that transition cannot give`)
    prev = t
  }
  const last = history[history.length - 1]!
  if (last.seq !== snapshot.seq) problems.push(`the last transition is seq ${last.seq} but the execution is at seq ${snapshot.seq}`)
  if (last.to !== snapshot.state) problems.push(`the history ends in "${last.to}" but the execution is in "${snapshot.state}"`)
  if (last.status !== snapshot.status) problems.push(`the history ends ${last.status} but the execution is ${snapshot.status}`)
  return report()
}
