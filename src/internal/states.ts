/**
 * The states of a procedure: their types (step, wait, final, and the compound and history
 * states of a tree, whose constructors are in `compound.ts`), the constructors of the
 * wait and final leaves (the step's is in `step.ts`), and the lookups every other module uses (`stateOf`, `handlerOf`, `edges`).
 * `Procedure` re-exports the public ones; this module needs nothing from it.
 */
import { Duration } from "effect"
import type { Effect, Schedule } from "effect"
import type { Dependency } from "../Dependency.js"
import type { Chart } from "./chartState.js"
import { decodeDuration } from "./durations.js"

declare const TargetsId: unique symbol
declare const PathsId: unique symbol

/**
 * An entry, exit or transition action: a synchronous function of the context and the
 * event that caused the transition (`undefined` when none did: a step's success, a
 * timer, a command). It returns the new context, or nothing to keep it. Actions run
 * inside the transition and commit with it: they must not have side effects (put
 * those in a step).
 *
 * @since 0.1.0
 * @category models
 */
// the result is `NoInfer`: an action that only throws (returns `never`) must not make the context type `never`
export type Action<C, Ev> = (args: { readonly context: C; readonly event: Ev | undefined }) => NoInfer<C> | void

/**
 * A handler's transition action: an `Action` whose event is the one handled.
 *
 * @since 0.1.0
 * @category models
 */
export type EventAction<C, Ev> = (args: { readonly context: C; readonly event: Ev }) => NoInfer<C> | void

/**
 * An eventless transition (`always`): taken as soon as a transition enters a
 * configuration where its state is active and its guard (of the context) holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Always<T extends string, C, Ev> {
  readonly goto: T
  readonly guard?: ((context: C) => boolean) | undefined
  readonly actions?: ReadonlyArray<Action<C, Ev>> | undefined
}

/** What an entered or left state runs, when it has actions. */
interface Actions<C, Ev> {
  /** run when the state is entered, after the actions of its ancestors that are entered with it */
  readonly onEnter?: ReadonlyArray<Action<C, Ev>> | undefined
  /** run when the state is left, before the actions of its ancestors that are left with it */
  readonly onExit?: ReadonlyArray<Action<C, Ev>> | undefined
}

/**
 * What a step's `run` and `compensate` receive.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepArgs<C> {
  readonly context: C
  readonly executionId: string
  readonly state: string
  /** 1 for the first attempt, then 2, 3, ... */
  readonly attempt: number
  /** `executionId/state/visit`: stable across retries and crash recovery of one visit */
  readonly idempotencyKey: string
}

/**
 * What to do when a step fails for good (a business error, or retries ran out):
 * - `"fail"`: run the compensations of completed steps, then end `failed` (the default)
 * - `"intervene"`: stop in `needs_intervention` and wait for a person
 * - `{ goto }`: go to another state (an error-handling state)
 *
 * @since 0.1.0
 * @category models
 */
export type OnFailure<T extends string> = "fail" | "intervene" | { readonly goto: T }

/**
 * A state that runs an Effect, then goes to the next state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Step<T extends string, C, A, E, R> {
  readonly _tag: "Step"
  readonly [TargetsId]?: T
  readonly run: (args: StepArgs<C>) => Effect.Effect<A, E, R>
  // results are `any` here so that a step whose `run` never succeeds (A = never) is still a State
  readonly next: string | ((result: any, context: C) => string)
  readonly targets: ReadonlyArray<string> | undefined
  readonly update: ((result: any, context: C) => C) | undefined
  readonly timeout: Duration.Duration
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly isTransient: (error: unknown) => boolean
  readonly onFailure: OnFailure<string>
  readonly compensate: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  readonly compensateTimeout: Duration.Duration
  /** a child state (`Procedure.child`): the run starts the child instead of calling `run` */
  readonly child?: ChildSpec | undefined
  /** the dependency whose breaker, bulkhead and rate limit each attempt goes through (see `Dependency`) */
  readonly dependency?: Dependency | undefined
  /** @internal what `step` found wrong with its options (a NaN timeout, ...); `validate` refuses the procedure */
  readonly "~invalid"?: ReadonlyArray<string> | undefined
  readonly onEnter?: ReadonlyArray<Action<C, unknown>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, unknown>> | undefined
}

/**
 * What a child state runs: the child's procedure (a `Procedure.Any`) and its input from
 * the parent's context (`Procedure.child`), or the regions of a parallel state
 * (`Procedure.parallel`, whose regions run as child executions).
 *
 * @since 0.1.0
 * @category models
 */
export type ChildSpec = {
  readonly name: string
  readonly version: number
  readonly procedure: unknown
  readonly input: (context: any) => unknown
  readonly parallel?: undefined
} | {
  readonly parallel: ParallelSpec
  readonly name?: undefined
}

/**
 * When a parallel state is done: every region succeeded (`"all"`), the first one did
 * (`"race"`), or `atLeast` of them did.
 *
 * @since 0.1.0
 * @category models
 */
export type ParallelMode = "all" | "race" | { readonly atLeast: number }

/**
 * The regions of a parallel state (`Procedure.parallel`), each an initial state and its
 * states, in the order they were written, and when the state is done.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParallelSpec {
  readonly mode: ParallelMode
  readonly regions: { readonly [name: string]: { readonly initial: string; readonly states: { readonly [name: string]: AnyState } } }
}

/**
 * A handler of one event in a wait state: a target state, or a target with a guard and a
 * context update. A `guard` that returns `false` refuses the event: it is discarded and
 * the error log says which guard refused it; the execution keeps waiting.
 *
 * @since 0.1.0
 * @category models
 */
export type EventHandler<T extends string, C, Ev> = T | {
  readonly goto: T
  readonly guard?: ((event: Ev, context: C) => boolean) | undefined
  readonly update?: ((event: Ev, context: C) => C) | undefined
  /** run between the exit actions of the states left and the entry actions of the states entered */
  readonly actions?: ReadonlyArray<EventAction<C, Ev>> | undefined
}

/**
 * A wait state's handler of one event, as the transition function reads it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handler<C> {
  readonly goto: string
  readonly guard?: ((event: any, context: C) => boolean) | undefined
  readonly update: ((event: any, context: C) => C) | undefined
  readonly actions?: ReadonlyArray<EventAction<C, any>> | undefined
}

/**
 * A state that waits for an event or a durable timer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Wait<T extends string, C, Ev> {
  readonly _tag: "Wait"
  readonly [TargetsId]?: T
  readonly on: { readonly [tag: string]: Handler<C> }
  readonly after: { readonly delay: Duration.Duration; readonly goto: string } | undefined
  readonly [EventsId]?: Ev
  /** @internal what `wait` found wrong with its options (a negative delay, ...); `validate` refuses the procedure */
  readonly "~invalid"?: ReadonlyArray<string> | undefined
  readonly onEnter?: ReadonlyArray<Action<C, Ev>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, Ev>> | undefined
  /** eventless transitions, tried when the wait is entered (see `Procedure.compound`'s `always`) */
  readonly always?: ReadonlyArray<Always<string, C, Ev>> | undefined
}
/** @internal the phantom of a state's event type (a wait's, a parallel state's) */
export declare const EventsId: unique symbol

/**
 * A state that ends the execution (at the top level), or its compound state (inside one:
 * the compound then takes its `onDone` transition).
 *
 * @since 0.1.0
 * @category models
 */
export interface Final<C = any> {
  readonly _tag: "Final"
  readonly [TargetsId]?: never
  /** `succeeded`, `failed` or a custom outcome (which ends `succeeded`) */
  readonly outcome: string
  readonly onEnter?: ReadonlyArray<Action<C, unknown>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, unknown>> | undefined
}

/**
 * A state with child states (`Procedure.compound`): entering it enters its `initial`
 * child; while one of its descendants is active, its `on` handlers and `always`
 * transitions apply too. Targets are full dotted paths from the top (`"deploy.api"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Compound<T extends string, C, Ev, P extends string = string, R = unknown> {
  readonly _tag: "Compound"
  readonly [TargetsId]?: T
  readonly [PathsId]?: P
  /** @internal phantom for the services the steps inside need */
  readonly "~R"?: R
  readonly [EventsId]?: Ev
  /** the name of the child entered when the compound is entered */
  readonly initial: string
  readonly states: { readonly [name: string]: AnyState }
  readonly on: { readonly [tag: string]: Handler<C> }
  /** where to go when a final child is entered */
  readonly onDone: string | undefined
  readonly onEnter: ReadonlyArray<Action<C, Ev>>
  readonly onExit: ReadonlyArray<Action<C, Ev>>
  readonly always: ReadonlyArray<Always<string, C, Ev>>
}

/**
 * A history pseudo-state inside a compound (`Procedure.history`): a transition to it
 * enters what was active in the compound when it was last left (`shallow`: the child,
 * entered by its initial states; `deep`: the leaf), or, the first time, `default` (a
 * full path; by default the compound's initial child).
 *
 * @since 0.1.0
 * @category models
 */
export interface History<T extends string = string> {
  readonly _tag: "History"
  readonly [TargetsId]?: T
  readonly type: "shallow" | "deep"
  readonly default: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type State<C, Ev> = Step<string, C, any, any, any> | Wait<string, C, Ev> | Final<C> | Compound<string, C, Ev> | History | Chart

/**
 * @since 0.1.0
 * @category models
 */
export type AnyState = Step<string, any, any, any, any> | Wait<string, any, any> | Final | Compound<string, any, any> | History | Chart

/** The tags of a union of tagged events. */
export type Tags<Ev> = Ev extends { readonly _tag: infer K extends string } ? K : never

// The phantoms are optional properties, so without `exactOptionalPropertyTypes` (a
// consumer's default flags) `infer` also yields `undefined`: it is never a target, so it is dropped.
type TargetsOf<S> = { [K in keyof S]: S[K] extends { readonly [TargetsId]?: infer T } ? Exclude<T, undefined> : never }[keyof S]

// The phantoms are optional properties: `Exclude<R, undefined>`, as for targets.
/** @internal the services the steps of a record of states need, at any depth */
export type RequirementsOf<S> = {
  [K in keyof S]: S[K] extends Step<any, any, any, any, infer R> ? R
    : S[K] extends { readonly _tag: "Compound"; readonly "~R"?: infer R } ? Exclude<R, undefined>
    : never
}[keyof S]

/** @internal the targets named anywhere in a record of states (a compound's phantom carries its children's) */
export type TargetsIn<S> = TargetsOf<S>

/**
 * The full dotted paths of a record of states and of their children (`"deploy" | "deploy.api"`).
 *
 * @since 0.1.0
 * @category type-level
 */
export type Paths<S> = {
  [K in keyof S & string]: K | (S[K] extends { readonly _tag: "Compound"; readonly [PathsId]?: infer P } ? `${K}.${Exclude<P, undefined> & string}` : never)
}[keyof S & string]

/**
 * Passes when every target named in `S` (at any depth) is the path of a state of `S`;
 * otherwise names the unknown ones.
 *
 * @since 0.1.0
 * @category type-level
 */
export type CheckTargets<S> = [Exclude<TargetsOf<S>, Paths<S>>] extends [never] ? unknown
  : { readonly "unknown target state": Exclude<TargetsOf<S>, Paths<S>> }

/**
 * A copy of a record without a prototype, so that no name a user gives (`constructor`,
 * `toString`, `__proto__`) finds something the definition did not declare.
 */
export const ownRecord = <V>(record: { readonly [key: string]: V }): Record<string, V> =>
  Object.assign(Object.create(null) as Record<string, V>, record)

/**
 * The state named `name`, or `undefined`: only the procedure's own states count, so a
 * name from `Object.prototype` (`constructor`, `toString`, `__proto__`) is not a state.
 * Every lookup of a state by a name from outside the definition goes through it.
 *
 * @since 0.1.0
 * @category getters
 */
export const stateOf = (procedure: { readonly states: { readonly [name: string]: AnyState } }, name: string): AnyState | undefined =>
  Object.hasOwn(procedure.states, name) ? procedure.states[name] : name.includes(".") ? nestedState(procedure.states, name) : undefined

/** The state at a dotted path: each name but the last must be a compound's. */
const nestedState = (states: { readonly [name: string]: AnyState }, path: string): AnyState | undefined => {
  let state: AnyState | undefined
  for (const name of path.split(".")) {
    if (!Object.hasOwn(states, name)) return undefined
    state = states[name]!
    states = state._tag === "Compound" ? state.states : {}
  }
  return state
}

/**
 * The handler of the event tagged `tag` in a wait state, or `undefined`: only the
 * wait's own handlers count (see `stateOf`).
 *
 * @since 0.1.0
 * @category getters
 */
export const handlerOf = (
  wait: Wait<string, any, any>,
  tag: string
): Handler<any> | undefined =>
  Object.hasOwn(wait.on, tag) ? wait.on[tag] : undefined

/** The `onEnter`/`onExit` fields of a leaf, only when given (a state without actions keeps its shape). */
export const actionsOf = <C, Ev>(options: Actions<C, Ev>): Actions<C, Ev> => ({
  ...(options.onEnter === undefined ? {} : { onEnter: options.onEnter }),
  ...(options.onExit === undefined ? {} : { onExit: options.onExit })
})

/** A handler as the transition function reads it, from a target or the handler's options. */
export const handlerFrom = <C>(handler: EventHandler<string, C, any>): Handler<C> =>
  typeof handler === "string"
    ? { goto: handler, guard: undefined, update: undefined }
    : handler.actions === undefined
    ? { goto: handler.goto, guard: handler.guard, update: handler.update }
    : { goto: handler.goto, guard: handler.guard, update: handler.update, actions: handler.actions }

/**
 * A state that waits for one of the events in `on`, or for its timer (`after`).
 * Events are decoded with the procedure's event Schema before they reach the inbox.
 *
 * @since 0.1.0
 * @category constructors
 */
export const wait = <
  C,
  Ev extends { readonly _tag: string },
  const T extends string,
  const K extends Tags<Ev>,
  const D extends string = never,
  const A extends string = never
>(options: {
  readonly on: { readonly [P in K]: EventHandler<T, C, Extract<Ev, { readonly _tag: P }>> }
  readonly after?: { readonly delay: Duration.DurationInput; readonly goto: D } | undefined
  /** eventless transitions, tried in order when the wait is entered: the first whose guard holds is taken */
  readonly always?: ReadonlyArray<Always<A, C, Ev>> | undefined
  readonly onEnter?: ReadonlyArray<Action<C, Ev>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, Ev>> | undefined
}): Wait<NoInfer<T | D | A>, C, Ev> => {
  const on: Record<string, Handler<C>> = Object.create(null)
  for (const [tag, handler] of Object.entries(options.on) as Array<[string, EventHandler<string, C, any>]>) on[tag] = handlerFrom(handler)
  const invalid: Array<string> = []
  return {
    _tag: "Wait",
    on,
    after: options.after === undefined
      ? undefined
      : { delay: decodeDuration("after.delay", options.after.delay, invalid), goto: options.after.goto },
    ...(invalid.length === 0 ? {} : { "~invalid": invalid }),
    ...actionsOf(options),
    ...(options.always === undefined || options.always.length === 0 ? {} : { always: options.always })
  }
}

/**
 * A state that ends the execution with an outcome. `"failed"` ends it `failed`; any
 * other outcome ends it `succeeded` and is kept as the snapshot's `outcome`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const final = <C = any>(options?: {
  readonly outcome?: "succeeded" | "failed" | (string & {}) | undefined
  readonly onEnter?: ReadonlyArray<Action<C, unknown>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, unknown>> | undefined
}): Final<C> => ({
  _tag: "Final",
  outcome: options?.outcome ?? "succeeded",
  ...(options === undefined ? {} : actionsOf(options))
})

/**
 * The states a state can go to, as far as the definition tells (`undefined` when a
 * step's `next` is a function without `targets`: it may go anywhere).
 *
 * @since 0.1.0
 * @category getters
 */
export const edges = (state: AnyState): ReadonlyArray<{ readonly to: string; readonly label: string }> | undefined => {
  switch (state._tag) {
    case "Final":
      return []
    case "Chart":
      return state.finals.map((to) => ({ to, label: `done (${to})` }))
    case "History":
      return state.default === undefined ? [] : [{ to: state.default, label: "history default" }]
    case "Compound": {
      const out = Object.entries(state.on).map(([tag, h]) => ({ to: h.goto, label: tag }))
      for (const a of state.always) out.push({ to: a.goto, label: "always" })
      if (state.onDone !== undefined) out.push({ to: state.onDone, label: "done" })
      return out
    }
    case "Wait": {
      const out = Object.entries(state.on).map(([tag, h]) => ({ to: h.goto, label: tag }))
      if (state.after !== undefined) {
        out.push({ to: state.after.goto, label: `after ${Duration.format(state.after.delay)}` })
      }
      for (const a of state.always ?? []) out.push({ to: a.goto, label: "always" })
      return out
    }
    case "Step": {
      const out: Array<{ to: string; label: string }> = []
      if (typeof state.next === "string") out.push({ to: state.next, label: "" })
      else if (state.targets !== undefined) for (const t of state.targets) out.push({ to: t, label: "" })
      else return undefined
      if (typeof state.onFailure === "object") out.push({ to: state.onFailure.goto, label: "on failure" })
      return out
    }
  }
}
