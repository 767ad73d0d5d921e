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
import { JSONSchema, Schema } from "effect"
import * as Procedure from "../Procedure.js"
import * as Diagram from "./diagram.js"
import * as Tree from "./diagramTree.js"

/**
 * @since 0.1.0
 * @category models
 */
export const StateInfo = Schema.Struct({
  /** the state's name: the full dotted path of a state inside a compound state ("deploy.api") */
  name: Schema.String,
  /**
   * `step`, `wait`, `final`; `compound` and `parallel` hold other states (a parallel state's
   * children are its regions); `history` is a history pseudo-state; `chart` is the state
   * that runs a whole SCXML chart (`Procedure.fromSCXML`), holding the chart's states;
   * `atomic` is a state of such a chart with no children
   */
  kind: Schema.Literal("step", "wait", "final", "compound", "parallel", "history", "chart", "atomic"),
  /** the event tags a wait state accepts (for a compound state: the events it handles for the states inside it) */
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
  child: Schema.optional(Schema.String),
  /** the name of the compound or parallel state holding this one; absent at the top */
  parent: Schema.optional(Schema.String),
  /** a compound or parallel state's states (a parallel state's are its regions), by name */
  children: Schema.optional(Schema.Array(Schema.String)),
  /** a compound state's initial state, by name */
  initial: Schema.optional(Schema.String),
  /** a history state's kind */
  history: Schema.optional(Schema.Literal("shallow", "deep")),
  /**
   * `region`: a state of a parallel state's region, run by a child execution; `chart`: a
   * state of an SCXML chart. Neither is one of the procedure's own states: a snapshot's
   * `state` never names it and `skip` cannot go there
   */
  runsIn: Schema.optional(Schema.Literal("region", "chart"))
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
  svg: Schema.String,
  /** how many executions of this version have not ended (`Runtime.versions`); absent where no runtime counted them */
  inFlight: Schema.optional(Schema.Number)
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
  const tree = Tree.fromProcedure(procedure)
  const states: Array<StateInfo> = []
  const visit = (node: Tree.DiagramNode) => {
    states.push({
      name: node.id,
      kind: node.kind,
      accepts: node.accepts,
      edges: tree.edges.filter((e) => e.from === node.id).map((e) => ({ to: e.to, label: e.label })),
      anyTarget: node.anyTarget,
      ...(node.timer === undefined ? {} : { timer: node.timer }),
      ...(node.outcome === undefined ? {} : { outcome: node.outcome }),
      ...(node.child === undefined ? {} : { child: node.child }),
      ...(node.parent === undefined ? {} : { parent: node.parent }),
      ...(Tree.isContainer(node) ? { children: node.children.map((c) => c.id) } : {}),
      ...(node.kind === "compound" && node.initial.length > 0 ? { initial: node.initial[0]! } : {}),
      ...(node.history === undefined ? {} : { history: node.history }),
      ...(node.runsIn === undefined ? {} : { runsIn: node.runsIn })
    })
    node.children.forEach(visit)
  }
  tree.roots.forEach(visit)
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
