/**
 * Replays a recorded history against a procedure's definition with the transition function
 * itself (no second table of rules): every transition must be one it gives from where the
 * previous one left, in gapless order, with the same status, and the last one must be the
 * stored snapshot.
 */
import { Duration, Either, Schema } from "effect"
import { eventOf, Snapshot, Transition } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import { formatParseError } from "../Procedure.js"
import type { Compiled, Input, Machine } from "./transition.js"
import { start, transition } from "./transition.js"

/** @inline */
export interface VerifyReport {
  readonly executionId: string
  readonly procedure: string
  readonly version: number
  readonly transitions: number
  readonly ok: boolean
  readonly problems: ReadonlyArray<string>
}

/** A transition as a history or an export records it: its cause may be one no runtime gives. */
export interface Recorded extends Omit<Transition, "cause"> {
  readonly cause: string
}

const ExportLine = Schema.Union(
  Schema.Struct({ type: Schema.Literal("execution"), snapshot: Snapshot }),
  // any cause is read: a forged or unknown one is for `verify` to report, not a parse error
  Schema.Struct({ ...Transition.fields, type: Schema.Literal("transition"), cause: Schema.String }),
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
): Either.Either<{ readonly snapshot: Snapshot; readonly history: ReadonlyArray<Recorded> }, string> => {
  let snapshot: Snapshot | undefined
  const history: Array<Recorded> = []
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

/** The machine a recorded row leaves, when the transition function does not give it. */
const follow = (machine: Machine, t: Recorded): Machine => ({
  snapshot: { ...machine.snapshot, state: t.to, status: t.status, seq: t.seq, visit: t.from === t.to ? machine.snapshot.visit : t.seq },
  context: undefined
})

/**
 * The definition with the choices a history records put in place of the functions that
 * made them: a step goes where the row says (when the definition lets it go there), and
 * no `update` or guard runs. Contexts are not in the history, so they are not replayed;
 * states, statuses and causes are.
 */
const pinned = (compiled: Compiled, from: Procedure.AnyState, name: string, t: Recorded): Compiled => {
  const tag = eventOf(t.cause)
  const state: Procedure.AnyState | undefined = from._tag === "Step"
    ? { ...from, next: t.to, targets: undefined, update: undefined }
    : from._tag === "Wait" && tag !== undefined && Procedure.handlerOf(from, tag) !== undefined
    ? { ...from, on: { ...from.on, [tag]: { goto: Procedure.handlerOf(from, tag)!.goto, update: undefined } } }
    : from._tag === "Chart"
    ? chartAsWait(tag, t.to, t.cause)
    : undefined
  return state === undefined ? compiled : { ...compiled, def: { ...compiled.def, states: { ...compiled.def.states, [name]: state } } }
}

/**
 * A chart state (`Procedure.fromSCXML`) replays as a wait that goes where the row says: its
 * context is the chart's session, which the history does not hold.
 */
const chartAsWait = (tag: string | undefined, to: string, cause: string): Procedure.AnyState => ({
  _tag: "Wait",
  on: tag === undefined ? {} : { [tag]: { goto: to, update: undefined } },
  after: cause === "timer" ? { delay: Duration.zero, goto: to } : undefined
})

/** How many ways `explore` tries to make one recorded row. */
const maxTries = 64

/**
 * Runs `make` with each combination of the choices a tree's functions would make (the
 * guards of handlers and eventless transitions, a step's `next`), as the contexts that
 * decided them are not in the history: a row is allowed when one combination gives it.
 * A flat procedure's choices are pinned to the row instead (`pinned`), so it runs once.
 */
const explore = <A>(compiled: Compiled, make: (rules: Compiled) => ReadonlyArray<A>): ReadonlyArray<A> => {
  if (compiled.tree === undefined) return make(compiled)
  const out: Array<A> = []
  const pending: Array<ReadonlyArray<number>> = [[]]
  for (let tries = 0; pending.length > 0 && tries < maxTries; tries++) {
    const prefix = pending.pop()!
    const made: Array<number> = []
    const choose = (n: number) => {
      const choice = made.length < prefix.length ? prefix[made.length]! : 0
      if (made.length >= prefix.length) for (let k = n - 1; k >= 1; k--) pending.push([...made, k])
      made.push(choice)
      return choice
    }
    out.push(...make({ ...compiled, choose }))
  }
  return out
}

/** The inputs that could have made a recorded row, by its cause (a status-only failure has two). */
const inputsOf = (t: Recorded, compensable: boolean): ReadonlyArray<Input> => {
  const error = { tag: "Replay", message: "" }
  const tag = eventOf(t.cause)
  if (tag !== undefined) return [{ _tag: "Event", event: { _tag: tag }, encoded: t.event }]
  switch (t.cause) {
    case "start":
      return []
    case "step":
      return [{ _tag: "StepSucceeded", result: undefined, compensable }]
    case "failure":
      return [{ _tag: "StepFailed", error, compensable }, { _tag: "LoopLimit", error, compensable }]
    case "timer":
      return [{ _tag: "TimerFired" }]
    case "pause":
      return [{ _tag: "Pause" }]
    case "resume":
      return [{ _tag: "Resume" }]
    case "cancel":
      return [{ _tag: "Cancel" }]
    case "rollback":
      return [{ _tag: "Rollback", compensable }]
    case "retry":
      return [{ _tag: "Retry" }]
    case "skip":
      return [{ _tag: "Skip", state: t.to }]
    case "compensated":
      return [{ _tag: "Compensated" }]
    case "defect":
      return [{ _tag: "GiveUp", error }]
  }
  return []
}

/**
 * Replays a history with the transition function: from the start, each row's cause is
 * turned into the input that makes it, and the transition function must give the row's
 * state and status.
 */
export const verify = (
  compiled: Compiled,
  snapshot: Snapshot,
  history: ReadonlyArray<Recorded>
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
  // contexts are not replayed: every context is taken as storable
  const states = Object.fromEntries(
    Object.entries(def.states).map(([name, state]) => [name, state._tag === "Chart" ? chartAsWait(undefined, name, "") : state])
  )
  const lenient: Compiled = { ...compiled, encodeContext: Either.right, def: { ...def, states } }
  let machine: Machine | undefined
  let prev: Recorded | undefined
  let completed = 0
  // the rows up to the last migration were made by another version's definition: only
  // their order is checked, and the replay goes on from the migrated state
  let migrated = -1
  for (const [i, t] of history.entries()) if (t.cause === "migrate") migrated = i
  for (const [i, t] of history.entries()) {
    const where = `transition ${t.seq} (${t.from || "∅"} -> ${t.to}, ${t.cause})`
    if (t.executionId !== snapshot.id) problems.push(`${where} belongs to execution ${t.executionId}`)
    if (prev !== undefined && t.seq !== prev.seq + 1) problems.push(`${where} follows seq ${prev.seq}: a gap or a repeat`)
    const expectedFrom = prev === undefined ? "" : prev.to
    if (t.from !== expectedFrom) problems.push(`${where} starts from "${t.from}", but the previous transition ended in "${expectedFrom}"`)
    prev = t
    if (i <= migrated) {
      machine = follow(machine ?? { snapshot, context: undefined }, t)
      continue
    }
    if (Procedure.stateOf(def, t.to) === undefined) {
      problems.push(`${where} goes to a state the procedure does not have`)
      if (machine !== undefined) machine = follow(machine, t)
      continue
    }
    const outputs = ((): ReadonlyArray<{ readonly machine: Machine; readonly transition: Transition }> => {
      if (t.cause === "start") {
        if (machine !== undefined) return []
        return explore(lenient, (rules) => {
          const started = start(rules, { id: snapshot.id }, undefined, t.at)
          return Either.isRight(started) ? [started.right] : []
        })
      }
      const from = machine === undefined ? undefined : Procedure.stateOf(def, machine.snapshot.state)
      if (machine === undefined || from === undefined) return []
      const edges = from._tag === "Step" ? Procedure.edges(from) : []
      // in a tree, a step's target may be a compound, entered down to a leaf
      if (t.cause === "step" && compiled.tree === undefined && edges !== undefined && !edges.some((e) => e.to === t.to)) return []
      if (eventOf(t.cause) !== undefined && t.event !== undefined && Either.isLeft(compiled.decodeEvent(t.event))) return []
      const rules = compiled.tree === undefined ? pinned(lenient, from, machine.snapshot.state, t) : lenient
      return inputsOf(t, completed > 0).flatMap((input) =>
        explore(rules, (rules) => {
          const output = transition(rules, machine!, input, t.at)
          return output._tag === "Next" ? [output] : []
        })
      )
    })()
    const same = outputs.filter((o) => o.transition.to === t.to)
    const match = same.find((o) => o.transition.status === t.status)
    if (same.length === 0) {
      problems.push(`${where} is not a transition the definition of ${def.name} v${def.version} allows`)
    } else if (match === undefined) {
      problems.push(`${where} ends with status ${t.status}, which that transition cannot give`)
    }
    if (t.cause === "step" && compiled.compensable.has(t.from)) completed++
    // from the row the transition function gave, or, when it gave another, from the recorded one
    machine = match?.machine ?? follow(machine ?? { snapshot, context: undefined }, t)
  }
  const last = history[history.length - 1]!
  if (last.seq !== snapshot.seq) problems.push(`the last transition is seq ${last.seq} but the execution is at seq ${snapshot.seq}`)
  if (last.to !== snapshot.state) problems.push(`the history ends in "${last.to}" but the execution is in "${snapshot.state}"`)
  if (last.status !== snapshot.status) problems.push(`the history ends ${last.status} but the execution is ${snapshot.status}`)
  return report()
}
