/**
 * Replays a recorded history against a procedure's definition: every transition must be
 * one the definition allows from where the previous one left, in gapless order, with the
 * status the transition function gives, and the last one must be the stored snapshot.
 */
import { Either } from "effect"
import type { Snapshot, Status, Transition } from "../Execution.js"
import * as Procedure from "../Procedure.js"
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

/** The statuses a status-only transition (from = to) may give, by its cause. */
const statusOnly: Record<string, ReadonlyArray<Status>> = {
  failure: ["needs_intervention", "compensating", "failed"],
  pause: ["paused"],
  resume: ["running", "waiting"],
  cancel: ["cancelled"],
  rollback: ["compensating", "rolled_back"],
  retry: ["running"],
  compensated: ["failed", "rolled_back"],
  defect: ["failed"]
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
    const to = def.states[t.to]
    if (to === undefined) {
      problems.push(`${where} goes to a state the procedure does not have`)
      prev = t
      continue
    }
    const from = prev === undefined ? undefined : def.states[t.from]
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
        if (from._tag !== "Wait" || from.on[tag]?.goto !== t.to) return false
        if (t.event !== undefined && Either.isLeft(compiled.decodeEvent(t.event))) return false
        return true
      }
      if (t.cause === "failure" && t.to !== t.from) {
        return from._tag === "Step" && typeof from.onFailure === "object" && from.onFailure.goto === t.to
      }
      return t.to === t.from && t.cause in statusOnly
    })()
    if (!legal) problems.push(`${where} is not a transition the definition of ${def.name} v${def.version} allows`)
    const statusOk = t.to !== t.from || t.cause === "step" || t.cause === "skip" || t.cause.startsWith("event:") ||
        t.cause === "timer" || (t.cause === "failure" && typeof (from as Procedure.Step<any, any, any, any, any>)?.onFailure === "object")
      ? t.status === entered(to) || (t.cause === "failure" && t.status === "failed")
      : (statusOnly[t.cause] ?? []).includes(t.status)
    if (!statusOk) problems.push(`${where} ends with status ${t.status}, which that transition cannot give`)
    prev = t
  }
  const last = history[history.length - 1]!
  if (last.seq !== snapshot.seq) problems.push(`the last transition is seq ${last.seq} but the execution is at seq ${snapshot.seq}`)
  if (last.to !== snapshot.state) problems.push(`the history ends in "${last.to}" but the execution is in "${snapshot.state}"`)
  if (last.status !== snapshot.status) problems.push(`the history ends ${last.status} but the execution is ${snapshot.status}`)
  return report()
}
