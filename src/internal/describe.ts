/**
 * What front ends need to know about a procedure to drive it: its states, the events
 * each wait state accepts, each event's fields as JSON Schema (for generated forms), its
 * input's JSON Schema, and its diagram as Mermaid and SVG.
 *
 * It sits beside the runtime, not in `http/`, because every front end uses it (the HTTP
 * API and dashboard, the CLI, the MCP server) and none should import another's code. It is
 * internal (not in the package's exports): its shapes are the HTTP API's `ProcedureInfo`
 * and may change with it; applications read procedures through `Procedure` itself.
 *
 * @since 0.1.0
 */
import { Duration, JSONSchema, Schema } from "effect"
import * as Procedure from "../Procedure.js"
import * as Diagram from "./diagram.js"

/**
 * @since 0.1.0
 * @category models
 */
export const StateInfo = Schema.Struct({
  name: Schema.String,
  /** `chart`: the state that runs a whole SCXML chart (`Procedure.fromSCXML`) */
  kind: Schema.Literal("step", "wait", "final", "chart"),
  /** the event tags a wait state accepts */
  accepts: Schema.Array(Schema.String),
  /** a wait state's timer */
  timer: Schema.optional(Schema.Struct({ after: Schema.String, goto: Schema.String })),
  /** where the state can go */
  edges: Schema.Array(Schema.Struct({ to: Schema.String, label: Schema.String })),
  /** a step whose next state is computed without declared `targets`: it may go anywhere */
  anyTarget: Schema.Boolean,
  /** a final state's outcome */
  outcome: Schema.optional(Schema.String),
  /** a child state's procedure, as `name@version` (`Procedure.child`) */
  child: Schema.optional(Schema.String)
}).annotations({ identifier: "StateInfo" })

/**
 * @since 0.1.0
 * @category models
 */
export interface StateInfo extends Schema.Schema.Type<typeof StateInfo> {}

/**
 * An event of a procedure with the JSON Schema of its encoded form.
 *
 * @since 0.1.0
 * @category models
 */
export const EventInfo = Schema.Struct({
  tag: Schema.String,
  schema: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}).annotations({ identifier: "EventInfo" })

/**
 * @since 0.1.0
 * @category models
 */
export interface EventInfo extends Schema.Schema.Type<typeof EventInfo> {}

/**
 * @since 0.1.0
 * @category models
 */
export const ProcedureInfo = Schema.Struct({
  name: Schema.String,
  version: Schema.Number,
  description: Schema.optional(Schema.String),
  initial: Schema.String,
  states: Schema.Array(StateInfo),
  events: Schema.Array(EventInfo),
  /** the JSON Schema of the input */
  input: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  mermaid: Schema.String,
  svg: Schema.String
}).annotations({ identifier: "ProcedureInfo" })

/**
 * @since 0.1.0
 * @category models
 */
export interface ProcedureInfo extends Schema.Schema.Type<typeof ProcedureInfo> {}

type Json = { readonly [key: string]: unknown }

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** Inlines `$ref`s to `$defs` so that a form generator sees plain properties. */
const dereference = (node: unknown, defs: Json, depth = 0): unknown => {
  if (depth > 24) return {}
  if (Array.isArray(node)) return node.map((n) => dereference(n, defs, depth + 1))
  if (!isObject(node)) return node
  const ref = node.$ref
  if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
    const name = decodeURIComponent(ref.slice("#/$defs/".length))
    const target = Object.hasOwn(defs, name) ? defs[name] : {}
    const { $ref: _, ...rest } = node
    return { ...(dereference(target, defs, depth + 1) as Json), ...rest }
  }
  // built with fromEntries: a property named "__proto__" stays a property (assignment would set the prototype)
  return Object.fromEntries(
    Object.entries(node).filter(([k]) => k !== "$defs" && k !== "$schema").map(([k, v]) => [k, dereference(v, defs, depth + 1)])
  )
}

/**
 * The JSON Schema of a Schema's encoded form with every `$ref` inlined; `{}` when the
 * Schema has no JSON Schema representation.
 *
 * @since 0.1.0
 * @category getters
 */
export const jsonSchema = (schema: Schema.Schema<any, any, never>): Json => {
  try {
    const made = JSONSchema.make(schema) as unknown as Json
    const defs = isObject(made.$defs) ? made.$defs : {}
    const out = dereference(made, defs)
    return isObject(out) ? out : {}
  } catch {
    return {}
  }
}

const tagOf = (s: Json): string | undefined => {
  const props = s.properties
  if (!isObject(props) || !isObject(props._tag)) return undefined
  const tag = props._tag
  if (Array.isArray(tag.enum) && typeof tag.enum[0] === "string") return tag.enum[0]
  if (typeof tag.const === "string") return tag.const
  return undefined
}

/**
 * Each event of the procedure with the JSON Schema of its fields.
 *
 * @since 0.1.0
 * @category getters
 */
export const events = (procedure: Procedure.Any): ReadonlyArray<EventInfo> => {
  if (procedure.events.ast._tag === "NeverKeyword") return []
  const out: Array<EventInfo> = []
  const visit = (s: unknown) => {
    if (!isObject(s)) return
    if (Array.isArray(s.anyOf)) return s.anyOf.forEach(visit)
    if (Array.isArray(s.oneOf)) return s.oneOf.forEach(visit)
    const tag = tagOf(s)
    if (tag !== undefined && !out.some((e) => e.tag === tag)) out.push({ tag, schema: s })
  }
  visit(jsonSchema(procedure.events))
  return out
}

/**
 * Everything a front end shows about a procedure.
 *
 * @since 0.1.0
 * @category constructors
 */
export const describe = (procedure: Procedure.Any): ProcedureInfo => {
  const states: Array<StateInfo> = Object.entries(procedure.states).map(([name, state]) => {
    const edges = Procedure.edges(state)
    const base = {
      name,
      kind: state._tag === "Step" ? "step" as const : state._tag === "Wait" ? "wait" as const : state._tag === "Chart" ? "chart" as const : "final" as const,
      accepts: state._tag === "Wait" ? Object.keys(state.on) : [],
      edges: edges === undefined ? [] : edges.map((e) => ({ to: e.to, label: e.label })),
      anyTarget: edges === undefined
    }
    return {
      ...base,
      ...(state._tag === "Wait" && state.after !== undefined
        ? { timer: { after: Duration.format(state.after.delay), goto: state.after.goto } }
        : {}),
      ...(state._tag === "Final" ? { outcome: state.outcome } : {}),
      ...(state._tag === "Step" && state.child?.name !== undefined ? { child: `${state.child.name}@${state.child.version}` } : {})
    }
  })
  return {
    name: procedure.name,
    version: procedure.version,
    ...(procedure.description === undefined ? {} : { description: procedure.description }),
    initial: procedure.initial,
    states,
    events: events(procedure),
    input: jsonSchema(procedure.input),
    mermaid: Procedure.toMermaid(procedure),
    svg: Diagram.toSvg(procedure)
  }
}

/**
 * The event tags the procedure's state `state` accepts (empty unless it is a wait state).
 *
 * @since 0.1.0
 * @category getters
 */
export const accepts = (procedure: Procedure.Any | undefined, state: string): ReadonlyArray<string> => {
  const s = procedure === undefined ? undefined : Procedure.stateOf(procedure, state)
  return s !== undefined && s._tag === "Wait" ? Object.keys(s.on) : []
}
