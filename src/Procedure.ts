/**
 * The procedure DSL: a typed state machine whose states run steps, wait for events or
 * end. A transition to a state that does not exist is a compile-time error; what types
 * cannot see (unreachable states, no way to a final state) is rejected by `validate`
 * when the procedure is registered.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"
import { validate } from "./internal/checks.js"
import type { AnyState, CheckTargets, RequirementsOf, State } from "./internal/states.js"
import { ownRecord } from "./internal/states.js"
import type { StateDescription } from "./internal/unsafe.js"
import { checkFields, statesOf } from "./internal/unsafe.js"
import type { ChartContext } from "./internal/chartState.js"
import { chartContextOf } from "./internal/chartState.js"
import type { FromSCXMLOptions } from "./internal/scxmlProcedure.js"
import { scxmlParts } from "./internal/scxmlProcedure.js"
import { toMermaid as mermaid } from "./internal/mermaid.js"
import type { MermaidOptions } from "./internal/mermaid.js"

// The states' model and constructors live in internal/states.ts, the registration checks
// in internal/checks.ts; they are part of this module's surface.
export type {
  Action,
  Always,
  AnyState,
  CheckTargets,
  Compound,
  EventAction,
  EventHandler,
  Final,
  Handler,
  History,
  OnFailure,
  Paths,
  State,
  Step,
  StepArgs,
  Wait
} from "./internal/states.js"
export type { StepOptions } from "./internal/step.js"
export type { CompoundOptions } from "./internal/compound.js"
export { compound, history } from "./internal/compound.js"
export { edges, final, handlerOf, stateOf, wait } from "./internal/states.js"
export { defaultRetry, defaultTimeout, step } from "./internal/step.js"
export type { ChildOptions, ChildResult } from "./internal/child.js"
export type { ChildSpec } from "./internal/states.js"
export { child } from "./internal/child.js"
export type { CheckRegions, Parallel, ParallelOptions, ParallelResult, Region, RegionResult } from "./internal/parallel.js"
export type { ParallelMode, ParallelSpec } from "./internal/states.js"
export { parallel } from "./internal/parallel.js"
export { checkRetries, validate } from "./internal/checks.js"
export type { Chart, ChartContext } from "./internal/chartState.js"
export type { FromSCXMLOptions } from "./internal/scxmlProcedure.js"
export { ChartEvent } from "./internal/scxmlProcedure.js"
export type { MermaidOptions } from "./internal/mermaid.js"
export type {
  CompoundDescription,
  FinalDescription,
  HandlerDescription,
  HistoryDescription,
  StateDescription,
  StepDescription,
  WaitDescription
} from "./internal/unsafe.js"

/**
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("proctor/Procedure")

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A tagged event Schema (`Schema.TaggedStruct`, `Schema.TaggedClass` or a union of them).
 *
 * @since 0.1.0
 * @category models
 */
export type EventSchema<Ev, EvI> = Schema.Schema<Ev, EvI, never>

/**
 * A procedure: name, version, Schemas, an initial state and its states.
 *
 * @since 0.1.0
 * @category models
 */
export interface Procedure<Name extends string, I, C, Ev, R, S extends string = string> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly version: number
  readonly description: string | undefined
  readonly input: Schema.Schema<I, any, never>
  readonly context: Schema.Schema<C, any, never>
  readonly events: Schema.Schema<Ev, any, never>
  readonly init: (input: I) => C
  readonly initial: S
  readonly states: { readonly [K in S]: AnyState }
  /** see `Procedure.make`'s `maxTransitionsWithoutWaiting`. @default 10000 */
  readonly maxTransitionsWithoutWaiting?: number | undefined
  /** @internal phantom for the services the steps need */
  readonly "~R"?: R
}

/**
 * Any procedure, whatever its types.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly version: number
  readonly description: string | undefined
  readonly input: Schema.Schema<any, any, never>
  readonly context: Schema.Schema<any, any, never>
  readonly events: Schema.Schema<any, any, never>
  readonly init: (input: any) => any
  readonly initial: string
  readonly states: { readonly [name: string]: AnyState }
  readonly maxTransitionsWithoutWaiting?: number | undefined
  readonly "~R"?: unknown
}

/**
 * The services the steps of a procedure need.
 *
 * @since 0.1.0
 * @category type-level
 */
// `Exclude<R, undefined>`: see `RequirementsOf`
export type Services<P> = P extends { readonly "~R"?: infer R } ? unknown extends R ? never : Exclude<R, undefined> : never

/**
 * The input type of a procedure.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Input<P> = P extends Procedure<any, infer I, any, any, any, any> ? I : never

/**
 * The event type of a procedure.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Event<P> = P extends Procedure<any, any, any, infer Ev, any, any> ? Ev : never


/**
 * @since 0.1.0
 * @category guards
 */
export const isProcedure = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * Defines a procedure. The first object holds the Schemas, the second the machine; they
 * are two arguments so that TypeScript knows the context and event types before it
 * checks the states' functions.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Procedure } from "proctor"
 *
 * const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
 *
 * export const Approval = Procedure.make("approval", {
 *   version: 1,
 *   input: Schema.Struct({ doc: Schema.String }),
 *   context: Schema.Struct({ doc: Schema.String, approvedBy: Schema.optional(Schema.String) }),
 *   events: Approve
 * }, {
 *   initial: "submit",
 *   states: {
 *     submit: Procedure.step({ run: () => Effect.void, next: "review" }),
 *     review: Procedure.wait({
 *       on: { Approve: { goto: "approved", update: (e, c) => ({ ...c, approvedBy: e.by }) } },
 *       after: { delay: "24 hours", goto: "expired" }
 *     }),
 *     approved: Procedure.final({ outcome: "succeeded" }),
 *     expired: Procedure.final({ outcome: "failed" })
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Name extends string,
  I,
  II,
  C,
  CI,
  Ev extends { readonly _tag: string },
  EvI,
  const S extends Record<string, State<C, Ev>>
>(
  name: Name,
  schemas: {
    readonly version: number
    readonly description?: string | undefined
    readonly input: Schema.Schema<I, II, never>
    readonly context: Schema.Schema<C, CI, never>
    readonly events?: EventSchema<Ev, EvI> | undefined
    /** builds the initial context from the input; by default the input is the context */
    readonly init?: ((input: I) => C) | undefined
  },
  machine: {
    readonly initial: keyof S & string
    readonly states: S & CheckTargets<S>
    /**
     * The runaway-loop guard: how many transitions in a row an execution may make without
     * waiting (for an event, a timer or a person: a `wait` state, `paused`,
     * `needs_intervention`, or an operator command). Past it, the execution fails with
     * `LoopLimitExceeded` (its compensations run, as for a step that failed for good); the
     * rest of the runtime is not affected. Raise it for a loop of steps that is meant to be
     * longer, or put a `wait` with an `after` timer between its rounds.
     * @default 10000
     */
    readonly maxTransitionsWithoutWaiting?: number | undefined
  }
): Procedure<Name, I, C, Ev, RequirementsOf<S>, keyof S & string> => ({
  [TypeId]: TypeId,
  name,
  version: schemas.version,
  description: schemas.description,
  input: schemas.input,
  context: schemas.context,
  events: (schemas.events ?? Schema.Never) as Schema.Schema<Ev, any, never>,
  init: schemas.init ?? ((input: I) => input as unknown as C),
  initial: machine.initial,
  states: ownRecord(machine.states) as unknown as { readonly [K in keyof S & string]: AnyState },
  ...(machine.maxTransitionsWithoutWaiting === undefined ? {} : { maxTransitionsWithoutWaiting: machine.maxTransitionsWithoutWaiting })
})

/** the event Schema of a procedure that takes no events (`Never` is a Schema of `never`, narrower than `any`) */
const noEvents = Schema.Never as unknown as Schema.Schema<any, any, never>

/**
 * What `makeUnsafe` takes: the fields of `make`'s two objects in one, with states
 * described by plain values and named by strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface UnsafeDefinition {
  readonly name: string
  readonly version: number
  readonly description?: string | undefined
  readonly input: Schema.Schema<any, any, never>
  readonly context: Schema.Schema<any, any, never>
  readonly events?: Schema.Schema<any, any, never> | undefined
  /** builds the initial context from the input; by default the input is the context */
  readonly init?: ((input: any) => unknown) | undefined
  readonly initial: string
  readonly states: { readonly [name: string]: StateDescription }
  /** see `make`. @default 10000 */
  readonly maxTransitionsWithoutWaiting?: number | undefined
}

/**
 * Builds a procedure at run time, from state descriptions whose names are strings (a
 * workflow read from a file, a tool's request): `{ type: "step", run, next, ... }`,
 * `{ type: "wait", on: { Tag: "target" | { goto, guard?, update? } }, after? }`,
 * `{ type: "final", outcome? }`, or states built with `step`, `wait` and `final`. No
 * type checks the names, so every field is checked here, and then the definition as
 * `validate` checks it at registration. Unsafe: it throws the first `DefinitionError`
 * (naming the state and the field) instead of returning it.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Procedure } from "proctor"
 *
 * const Review = Procedure.makeUnsafe({
 *   name: "review",
 *   version: 1,
 *   input: Schema.Struct({}),
 *   context: Schema.Struct({}),
 *   events: Schema.TaggedStruct("Approve", {}),
 *   initial: "prepare",
 *   states: {
 *     prepare: { type: "step", run: () => Effect.void, next: "review" },
 *     review: { type: "wait", on: { Approve: "done" } },
 *     done: { type: "final" }
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (definition: UnsafeDefinition): Any => {
  const name = typeof definition.name === "string" ? definition.name : String(definition.name)
  checkFields(name, definition as unknown as Readonly<Record<string, unknown>>)
  const procedure: Any = {
    [TypeId]: TypeId,
    name,
    version: definition.version,
    description: definition.description,
    input: definition.input,
    context: definition.context,
    events: definition.events ?? noEvents,
    init: definition.init ?? ((input: unknown) => input),
    initial: definition.initial,
    states: statesOf(name, definition.states),
    ...(definition.maxTransitionsWithoutWaiting === undefined ? {} : { maxTransitionsWithoutWaiting: definition.maxTransitionsWithoutWaiting })
  }
  return Either.getOrThrowWith(validate(procedure), (error) => error)
}

/**
 * A procedure that runs an SCXML 1.0 document durably: the whole chart runs in one state
 * (`chart`), whose context is the chart's session (its active configuration, history, data
 * model and pending delayed sends); each event of `Runtime.send` (`{ _tag: "<SCXML event
 * name>", data? }`) is one macrostep, committed with the event's consumption. Entering a
 * top-level `<final>` ends the execution in the final state of the same id. The ECMAScript
 * data model RUNS THE DOCUMENT'S CODE with the rights of the process: only for documents
 * you trust. Throws a `DefinitionError` (naming the element and line) for an invalid
 * document or one using what the runtime does not support (`<invoke>`, a `<send>` to
 * another target than the chart itself or `#_internal`).
 *
 * @example
 * ```ts
 * import { Procedure } from "proctor"
 *
 * const Light = Procedure.fromSCXML(`
 *   <scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" datamodel="ecmascript" name="light">
 *     <state id="off"><transition event="switch.on" target="on"/></state>
 *     <state id="on"><transition event="switch.off" target="off"/><transition event="break" target="broken"/></state>
 *     <final id="broken"/>
 *   </scxml>`, { outcomes: { broken: "failed" } })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSCXML = <I = Readonly<Record<string, unknown>>>(
  xml: string,
  options?: FromSCXMLOptions<I>
): Procedure<string, I, ChartContext, { readonly _tag: string; readonly data?: unknown }, never> => {
  const parts = scxmlParts(xml, options)
  const procedure = { [TypeId]: TypeId, ...parts } as unknown as Procedure<string, I, ChartContext, { readonly _tag: string; readonly data?: unknown }, never>
  return Either.getOrThrowWith(validate(procedure), (error) => error) as typeof procedure
}

/**
 * The active configuration of an execution of a procedure made by `fromSCXML`: every
 * active state of the chart, in document order (what a diagram highlights), or `undefined`
 * when the procedure runs no chart or the context is not a chart's.
 *
 * @since 0.1.0
 * @category getters
 */
export const chartConfiguration = (procedure: Any, snapshot: { readonly context?: unknown }): ReadonlyArray<string> | undefined =>
  Object.values(procedure.states).some((s) => s._tag === "Chart") ? chartContextOf(snapshot.context)?.configuration : undefined

/**
 * The procedure as a Mermaid `stateDiagram-v2`: compound states as `state X { ... }`
 * blocks, a parallel state's regions split by `--`. `current` (or the `active` states of
 * parallel regions) is highlighted with the states enclosing it, and `visited` states are
 * marked, for dashboards.
 *
 * @since 0.1.0
 * @category diagrams
 */
export const toMermaid = (procedure: Any, options?: MermaidOptions): string => mermaid(procedure, options)

/** @internal */
export const formatParseError = (error: ParseResult.ParseError): string =>
  ParseResult.TreeFormatter.formatErrorSync(error).replace(/\n/g, " ")

/**
 * The context type of a procedure.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Context<P> = P extends Procedure<any, any, infer C, any, any, any> ? C : never

/**
 * A state of a procedure as a snapshot names it: a top-level state, or the dotted path of
 * one inside a compound state (`"deploy.api"`).
 *
 * @since 0.1.0
 * @category type-level
 */
export type StateName<P> = P extends Procedure<any, any, any, any, any, infer S> ? S | `${S}.${string}` : string

/**
 * A declared move of running executions from one version of a procedure to another:
 * `state` maps each state of `from` to a state of `to`, `context` the context. Passed to
 * `Runtime.layer({ migrations })`, checked when the runtime is built (both versions
 * registered, every state of `from` mapped to an existing state of the same kind in
 * `to`), and applied by `Runtime.migrate` at a safe point, never during a step.
 *
 * @since 0.1.0
 * @category models
 */
export interface Migration<From extends Any = Any, To extends Any = Any> {
  readonly _tag: "Migration"
  readonly from: From
  readonly to: To
  // methods, not function properties: a migration of two particular versions is a `Migration` of any
  state(state: StateName<From>): StateName<To>
  context(context: Context<From>): Context<To>
}

/**
 * Declares a migration between two versions of a procedure (either way: a migration back
 * from the new version lets a reverted rollout move executions back).
 *
 * @example
 * ```ts
 * import { Procedure } from "proctor"
 *
 * type Ctx = { readonly app: string }
 * declare const DeployV1: Procedure.Procedure<"deploy", Ctx, Ctx, { readonly _tag: "Go" }, never, "build" | "verify" | "done">
 * declare const DeployV2: Procedure.Procedure<"deploy", Ctx, Ctx & { readonly region: string }, { readonly _tag: "Go" }, never, "build" | "smoke" | "done">
 *
 * const toV2 = Procedure.migration(DeployV1, DeployV2, {
 *   state: (s) => s === "verify" ? "smoke" : s === "build" ? "build" : "done",
 *   context: (c) => ({ ...c, region: "eu" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const migration = <From extends Any, To extends Any>(
  from: From,
  to: To,
  map: {
    readonly state: (state: StateName<From>) => StateName<To>
    readonly context: (context: Context<From>) => Context<To>
  }
): Migration<From, To> => ({ _tag: "Migration", from, to, state: map.state, context: map.context })
