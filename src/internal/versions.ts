/**
 * Versions in flight: the migrations between versions of a procedure, checked when the
 * runtime is built (`check`) and applied to one execution as one committed transition
 * (`migrate`, pure like the transition function: the actor commits what it returns).
 */
import { Duration, Either } from "effect"
import { DefinitionError, InvalidTransition } from "../Errors.js"
import type { Snapshot, Status, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { VersionCount } from "../Store.js"
import { statuses } from "./statuses.js"
import type * as Procedure from "../Procedure.js"
import { stateOf } from "./states.js"
import { walk } from "./compound.js"
import type { Compiled, Machine } from "./transition.js"
import { errorInfo, procedureKey } from "./transition.js"

/** A migration as the runtime keeps it, by `name@from->to`. */
export interface Registered {
  readonly name: string
  readonly from: Compiled
  readonly to: Compiled
  readonly migration: Procedure.Migration
}

export const migrationKey = (name: string, from: number, to: number) => `${name}@${from}->${to}`

/** The kinds of state an execution can be in, each of which maps to the same kind. */
const leafKinds = new Set(["Step", "Wait", "Final", "Chart"])

/**
 * Checks the declared migrations against the registry: both versions registered (these
 * very definitions), at most one migration per pair of versions, and every state an
 * execution of `from` can be in mapped to a state of `to` of the same kind.
 */
export const check = (
  registry: ReadonlyMap<string, Compiled>,
  migrations: ReadonlyArray<Procedure.Migration>
): Either.Either<Map<string, Registered>, DefinitionError> => {
  const out = new Map<string, Registered>()
  for (const m of migrations) {
    const name = m.from.name
    const refuse = (reason: string, state?: string) =>
      Either.left(new DefinitionError({ procedure: name, reason: `migration ${m.from.version} -> ${m.to.version}: ${reason}`, ...(state === undefined ? {} : { state }) }))
    if (m.to.name !== name) return refuse(`it goes to another procedure (${m.to.name}); a migration moves executions between versions of one procedure`)
    if (m.from.version === m.to.version) return refuse("both sides are the same version")
    const from = registry.get(procedureKey(name, m.from.version))
    const to = registry.get(procedureKey(name, m.to.version))
    for (const [side, def, compiled] of [["from", m.from, from], ["to", m.to, to]] as const) {
      if (compiled === undefined || compiled.def !== def) {
        return refuse(`version ${def.version} (its "${side}" side) is not registered with this runtime; add it to Runtime.layer({ procedures })`)
      }
    }
    const key = migrationKey(name, m.from.version, m.to.version)
    if (out.has(key)) return refuse("it is declared twice; keep one")
    for (const [path, state] of walk(m.from.states)) {
      if (!leafKinds.has(state._tag)) continue
      let target: string
      try {
        target = m.state(path)
      } catch (error) {
        return refuse(`its state mapping threw for state "${path}": ${errorInfo(error).message}`, path)
      }
      const mapped = typeof target === "string" ? stateOf(m.to, target) : undefined
      if (mapped === undefined) {
        return refuse(`state "${path}" maps to "${String(target)}", which version ${m.to.version} does not have; map it to one of its states`, path)
      }
      if (mapped._tag !== state._tag) {
        return refuse(
          `state "${path}" (a ${state._tag.toLowerCase()}) maps to "${target}", a ${mapped._tag.toLowerCase()} in version ${m.to.version}; ` +
            `map it to a state of the same kind`,
          path
        )
      }
    }
    out.set(key, { name, from: from!, to: to!, migration: m })
  }
  return Either.right(out)
}

const refusal = (s: Snapshot, hint: string) =>
  new InvalidTransition({ executionId: s.id, operation: "migrate", status: s.status, state: s.state, hint })

/** Why an execution in this snapshot cannot be migrated now, or `undefined`. */
export const refuseNow = (s: Snapshot, to: number): InvalidTransition | undefined =>
  isTerminal(s.status)
    ? refusal(s, "It has ended; only running executions are migrated.")
    : s.status === "compensating"
    ? refusal(s, "It is rolling back; migrate it after the rollback, or not at all.")
    : s.version === to
    ? refusal(s, `It already runs on version ${to}.`)
    : undefined

/**
 * The execution moved to the migration's `to` version, as one transition (cause
 * `migrate`): its state and context mapped, its context encoded and decoded again with
 * the new version's Schema (a context that does not fit it refuses the migration), its
 * timer kept, or set if the new state has one and the old had none.
 */
export const migrate = (
  registered: Registered,
  machine: Machine,
  now: number
): Either.Either<{ readonly machine: Machine; readonly transition: Transition }, InvalidTransition> => {
  const s = machine.snapshot
  const refused = refuseNow(s, registered.to.def.version)
  if (refused !== undefined) return Either.left(refused)
  const { from, migration, to } = registered
  const state = (migration.state as (state: string) => string)(s.state)
  const target = stateOf(to.def, state)
  const before = stateOf(from.def, s.state)
  if (target === undefined || before === undefined || target._tag !== before._tag) {
    return Either.left(refusal(s, `Its state maps to "${state}", which is not a state of the same kind in version ${to.def.version}.`))
  }
  if (target._tag === "Chart" || (target._tag === "Step" && target.child !== undefined)) {
    return Either.left(refusal(s, `It is in a ${target._tag === "Chart" ? "chart" : "child or parallel"} state, whose inner executions are not migrated; migrate it once it has left "${s.state}".`))
  }
  let mapped: unknown
  try {
    mapped = (migration.context as (c: unknown) => unknown)(machine.context)
  } catch (error) {
    return Either.left(refusal(s, `The migration's context function threw: ${errorInfo(error).message}. It stays on version ${s.version}.`))
  }
  const encoded = to.encodeContext(mapped)
  const decoded = Either.flatMap(encoded, to.decodeContext)
  if (Either.isLeft(encoded) || Either.isLeft(decoded)) {
    const issue = Either.isLeft(encoded) ? encoded.left.issue : Either.isLeft(decoded) ? decoded.left.issue : ""
    return Either.left(refusal(s, `Its migrated context does not fit version ${to.def.version}'s context Schema: ${issue}. It stays on version ${s.version}; fix the migration's context function.`))
  }
  const hadTimer = before._tag === "Wait" && before.after !== undefined
  const timerDueAt = target._tag !== "Wait" || target.after === undefined
    ? undefined
    : hadTimer && s.timerDueAt !== undefined
    ? s.timerDueAt
    : now + Duration.toMillis(target.after.delay)
  const history = s.history === undefined ? undefined : mapHistory(s.history, migration.state as (state: string) => string, to)
  const { history: _h, timerDueAt: _t, ...rest } = s
  const snapshot: Snapshot = {
    ...rest,
    version: to.def.version,
    fingerprint: to.fingerprint,
    state,
    context: encoded.right,
    seq: s.seq + 1,
    rowVersion: s.rowVersion + 1,
    updatedAt: now,
    ...(timerDueAt === undefined ? {} : { timerDueAt }),
    ...(history === undefined ? {} : { history })
  }
  const transition: Transition = {
    executionId: s.id,
    seq: snapshot.seq,
    from: s.state,
    to: state,
    status: s.status,
    cause: "migrate",
    reason: `version ${s.version} -> ${to.def.version}`,
    at: now,
    duration: Math.max(0, now - s.enteredAt)
  }
  return Either.right({ machine: { snapshot, context: decoded.right }, transition })
}

/** A history record (compound path -> last leaf) in the new version's names; what it cannot name is dropped. */
const mapHistory = (history: Readonly<Record<string, string>>, state: (s: string) => string, to: Compiled) => {
  const out: Record<string, string> = {}
  for (const [compound, leaf] of Object.entries(history)) {
    const mapped = state(leaf)
    if (stateOf(to.def, compound) !== undefined && stateOf(to.def, mapped) !== undefined) out[compound] = mapped
  }
  return Object.keys(out).length === 0 ? undefined : out
}

/** The statuses of executions that have not ended. */
export const inFlight: ReadonlyArray<Status> = statuses.filter((s) => !isTerminal(s))

/** How many executions of a version there are, and how many have not ended (`Runtime.versions`). */
export interface VersionInFlight {
  readonly procedure: string
  readonly version: number
  /** whether this runtime runs this version (an execution of a version it lacks waits for a runtime that has it) */
  readonly registered: boolean
  /** executions that have not ended */
  readonly inFlight: number
  /** all of them, ended or not, by status */
  readonly byStatus: Readonly<Partial<Record<Status, number>>>
}

/** The counts of the store by version, with every registered version listed (at 0 if none runs on it). */
export const inFlightBy = (counts: ReadonlyArray<VersionCount>, registry: ReadonlyMap<string, Compiled>): ReadonlyArray<VersionInFlight> => {
  const out = new Map<string, { procedure: string; version: number; registered: boolean; inFlight: number; byStatus: Partial<Record<Status, number>> }>()
  const entry = (procedure: string, version: number) => {
    const key = procedureKey(procedure, version)
    let found = out.get(key)
    if (found === undefined) {
      found = { procedure, version, registered: registry.has(key), inFlight: 0, byStatus: {} }
      out.set(key, found)
    }
    return found
  }
  for (const c of registry.values()) entry(c.def.name, c.def.version)
  for (const c of counts) {
    const e = entry(c.procedure, c.version)
    e.byStatus[c.status] = (e.byStatus[c.status] ?? 0) + c.count
    if (!isTerminal(c.status)) e.inFlight += c.count
  }
  return [...out.values()].sort((a, b) => a.procedure.localeCompare(b.procedure) || a.version - b.version)
}
