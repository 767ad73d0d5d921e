/**
 * A procedure prepared for the runtime: its Schema codecs made once (what is encoded must
 * come back from JSON as it went in, on every store), its compensable states, and the
 * fingerprint of its shape stored with each execution.
 */
import { Either, Schema } from "effect"
import type { ParseResult } from "effect"
import { ValidationError } from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import { formatParseError } from "../Procedure.js"
import { isTree, walk } from "./compound.js"
import type { Tree } from "./tree.js"
import { makeTree } from "./tree.js"

/** A procedure with its Schema codecs prepared once. */
export interface Compiled {
  readonly def: Procedure.Any
  readonly key: string
  readonly decodeInput: (u: unknown) => Either.Either<unknown, ValidationError>
  readonly encodeContext: (c: unknown) => Either.Either<unknown, ValidationError>
  readonly decodeContext: (u: unknown) => Either.Either<unknown, ValidationError>
  readonly decodeEvent: (u: unknown) => Either.Either<{ readonly _tag: string }, ValidationError>
  readonly encodeEvent: (e: unknown) => Either.Either<unknown, ValidationError>
  /** states whose steps have a compensation */
  readonly compensable: ReadonlySet<string>
  /** the definition's shape, stored with each execution (see `fingerprint`) */
  readonly fingerprint: string
  /** the statechart of a procedure with compound states, actions or eventless transitions; `undefined` for a flat one */
  readonly tree: Tree | undefined
  /**
   * @internal only when `verify` replays a history: the choices the functions of the
   * definition would make (a guard, a step's `next`), as an index among `n` options;
   * actions and updates do not run
   */
  readonly choose?: ((n: number) => number) | undefined
}

export const procedureKey = (name: string, version: number) => `${name}@${version}`

const isPlain = (u: object) => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * Whether `a` and `b` are the same JSON value: equal primitives, or arrays and plain
 * objects with the same keys holding the same values (a class instance, a Date, a Map
 * is never the same as what it is encoded to).
 */
const sameJson = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false
    return true
  }
  if (!isPlain(a) || !isPlain(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  for (const k of keys) {
    if (!Object.hasOwn(b, k) || !sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false
  }
  return true
}

export const compile = (def: Procedure.Any): Compiled => {
  const codec = (schema: Schema.Schema<any, any, never>, subject: ValidationError["subject"], encode: boolean) => {
    const run: (u: unknown) => Either.Either<any, ParseResult.ParseError> = encode
      ? Schema.encodeUnknownEither(schema)
      : Schema.decodeUnknownEither(schema)
    const invalid = (u: unknown): Either.Either<any, ValidationError> =>
      Either.mapLeft(run(u), (e) => new ValidationError({ procedure: def.name, subject, issue: formatParseError(e) }))
    // a context the codec gives back as it was, though in new objects, is kept once: the
    // snapshot's (encoded) and the run's (decoded) are then one value (W1's heap pass)
    if (!encode) return subject === "context" ? (u: unknown) => Either.map(invalid(u), (decoded) => sameJson(u, decoded) ? u : decoded) : invalid
    // what is encoded is what the store keeps: it must come back from JSON as it went in, on every store
    return (u: unknown): Either.Either<any, ValidationError> =>
      Either.flatMap(invalid(u), (encoded) => {
        const issue = jsonIssue(encoded, subject)
        if (issue !== undefined) return Either.left(new ValidationError({ procedure: def.name, subject, issue, kind: "JSON" }))
        return Either.right(subject === "context" && sameJson(u, encoded) ? u : encoded)
      })
  }
  const compensable = new Set<string>()
  for (const [name, state] of walk(def.states)) {
    // a child or parallel state's compensation undoes its child or regions (`children.ts`'s `undo`)
    if (state._tag === "Step" && (state.compensate !== undefined || state.child !== undefined)) compensable.add(name)
  }
  return {
    def,
    key: procedureKey(def.name, def.version),
    decodeInput: codec(def.input, "input", false),
    encodeContext: codec(def.context, "context", true),
    decodeContext: codec(def.context, "context", false),
    decodeEvent: codec(def.events, "event", false),
    encodeEvent: codec(def.events, "event", true),
    compensable,
    fingerprint: fingerprint(def),
    tree: isTree(def.states) ? makeTree(def) : undefined
  }
}

/**
 * A hash of a definition's shape: the initial state, each state's name and kind, where it
 * can go (a fixed `next`, declared `targets`, `onFailure`, each event tag's target, the
 * timer's target), whether a step compensates, and a final's outcome. Function bodies,
 * durations and Schemas are left out: changing them does not strand an execution in a
 * state that is gone. An execution stores the fingerprint it started with; a runtime whose
 * definition of that name and version has another one leaves the execution alone.
 */
export const fingerprint = (def: Procedure.Any): string => {
  const shape = [`initial ${def.initial}`]
  // a flat procedure's shape is what it was before trees: its paths are its names
  const targets = (ts: ReadonlyArray<{ readonly goto: string }> | undefined) => (ts ?? []).map((t) => t.goto).join(",")
  for (const [name, state] of walk(def.states).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    switch (state._tag) {
      case "Compound": {
        const on = Object.keys(state.on).sort().map((tag) => `${tag}:${state.on[tag]!.goto}`).join(",")
        shape.push(`compound ${name} initial ${state.initial} on ${on} | done ${state.onDone ?? ""} | always ${targets(state.always)}`)
        break
      }
      case "History":
        shape.push(`history ${name} ${state.type} ${state.default ?? ""}`)
        break
      case "Step": {
        const next = typeof state.next === "string" ? state.next : state.targets === undefined ? "*" : [...state.targets].sort().join(",")
        const onFailure = typeof state.onFailure === "string" ? state.onFailure : `goto ${state.onFailure.goto}`
        shape.push(`step ${name} -> ${next} | ${onFailure}${state.compensate === undefined ? "" : " | compensate"}`)
        break
      }
      case "Wait": {
        const on = Object.keys(state.on).sort().map((tag) => `${tag}:${state.on[tag]!.goto}`).join(",")
        shape.push(`wait ${name} on ${on}${state.after === undefined ? "" : ` | after ${state.after.goto}`}${state.always === undefined ? "" : ` | always ${targets(state.always)}`}`)
        break
      }
      case "Final":
        shape.push(`final ${name} ${state.outcome}`)
        break
      case "Chart":
        // the chart's states: a stored configuration names them
        shape.push(`chart ${name} ${state.stateIds.join(",")}`)
    }
  }
  return hash(JSON.stringify(shape))
}

/** cyrb53: a fast 53-bit string hash, as 14 hex digits (not cryptographic: it only tells shapes apart) */
const hash = (text: string): string => {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0")
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

/**
 * Where an encoded value would not come back from JSON as it is, and why (`undefined` when
 * it would): the SQL stores keep JSON, and the memory store must refuse what they cannot
 * keep, so that every store gives the same outcome. A property whose value is `undefined`
 * (or the whole value) is allowed (JSON leaves it out, as an optional field would be); `-0` is allowed and comes
 * back as `0` (the two are `===`).
 */
export const jsonIssue = (value: unknown, path: string): string | undefined => {
  // most events and contexts: no walk (and none of its allocations) needed
  if (flat(value)) return undefined
  const ancestors = new Set<object>()
  const visit = (v: unknown, at: string, inArray = false): string | undefined => {
    switch (typeof v) {
      case "string":
      case "boolean":
        return undefined
      case "number":
        return Number.isFinite(v) ? undefined : `${at}: ${v} cannot be stored (JSON has no ${Number.isNaN(v) ? "NaN" : "infinite numbers"})`
      case "bigint":
        return `${at}: the bigint ${v}n cannot be stored (JSON has no bigint)`
      case "object": {
        if (v === null) return undefined
        if (ancestors.has(v)) return `${at}: a cycle cannot be stored`
        ancestors.add(v)
        const issue = Array.isArray(v) ? visitArray(v, at) : visitObject(v, at)
        ancestors.delete(v)
        return issue
      }
      default:
        return `${at}: ${typeof v === "undefined" ? "undefined" : `a ${typeof v}`} cannot be stored (JSON ${
          inArray ? "turns it into null" : "has none"
        })`
    }
  }
  const visitArray = (array: ReadonlyArray<unknown>, at: string): string | undefined => {
    for (let i = 0; i < array.length; i++) {
      const issue = visit(array[i], `${at}[${i}]`, true)
      if (issue !== undefined) return issue
    }
    return undefined
  }
  const visitObject = (object: object, at: string): string | undefined => {
    const proto = Object.getPrototypeOf(object)
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
      return `${at}: ${typeof name === "string" && name !== "" ? `a ${name}` : "an object that is not plain"} cannot be stored ` +
        `as it is (JSON keeps only plain objects and arrays)`
    }
    for (const key of Object.keys(object)) {
      const field = (object as Record<string, unknown>)[key]
      if (field === undefined) continue
      const issue = visit(field, identifier.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`)
      if (issue !== undefined) return issue
    }
    return undefined
  }
  // a whole value that is undefined is stored as no value (a NULL column) and read back as undefined
  return value === undefined ? undefined : visit(value, path)
}

/** a value JSON keeps as it is: a string, boolean, finite number or null, or a plain object of those (or `undefined` there) */
const scalar = (v: unknown): boolean =>
  typeof v === "string" || typeof v === "boolean" || v === null || (typeof v === "number" && Number.isFinite(v))

const flat = (value: unknown): boolean => {
  if (typeof value !== "object" || value === null) return value === undefined || scalar(value)
  if (Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key]
    if (field !== undefined && !scalar(field)) return false
  }
  return true
}
