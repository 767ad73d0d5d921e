/**
 * Trees of states: the constructors of compound and history states (`Procedure.compound`,
 * `Procedure.history`) and the walks over a tree by full dotted path that the checks, the
 * compiler and the transition function share.
 */
import type { Action, Always, AnyState, Compound, EventHandler, Handler, History, Paths, RequirementsOf, State, Tags, TargetsIn } from "./states.js"
import { handlerFrom, ownRecord, stateOf } from "./states.js"

/**
 * Options of a compound state.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompoundOptions<
  S,
  C,
  Ev extends { readonly _tag: string },
  K extends Tags<Ev>,
  T extends string,
  D extends string,
  A extends string
> {
  /** the child entered when the compound is entered (a name of `states`) */
  readonly initial: keyof S & string
  /** the child states (their names may not contain ".") */
  readonly states: S
  /**
   * handlers of events, for as long as any state inside is active: the innermost state
   * whose handler accepts an event (its guard holds) takes it
   */
  readonly on?: { readonly [P in K]: EventHandler<T, C, Extract<Ev, { readonly _tag: P }>> } | undefined
  /** where to go when one of the compound's final children is entered (required when it has one) */
  readonly onDone?: D | undefined
  readonly onEnter?: ReadonlyArray<Action<C, Ev>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, Ev>> | undefined
  /** eventless transitions, tried after every transition that leaves the compound active, innermost state first */
  readonly always?: ReadonlyArray<Always<A, C, Ev>> | undefined
}

/**
 * A state with child states. Targets anywhere in a procedure are full dotted paths from
 * the top (`"deploy.api"`); a transition to the compound enters its `initial` child, and
 * the execution's `state` is always the active leaf's path.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Procedure } from "proctor"
 *
 * const deploy = Procedure.compound({
 *   initial: "db",
 *   states: {
 *     db: Procedure.step({ run: () => Effect.void, next: "deploy.api" }),
 *     api: Procedure.step({ run: () => Effect.void, next: "deploy.done" }),
 *     done: Procedure.final()
 *   },
 *   onDone: "verify"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const compound = <
  C,
  Ev extends { readonly _tag: string },
  const S extends Record<string, State<C, Ev>>,
  const K extends Tags<Ev> = never,
  const T extends string = never,
  const D extends string = never,
  const A extends string = never
>(options: CompoundOptions<S, C, Ev, K, T, D, A>): Compound<NoInfer<Extract<TargetsIn<S>, string> | T | D | A>, C, Ev, Paths<S>, RequirementsOf<S>> => {
  const on: Record<string, Handler<C>> = Object.create(null)
  for (const [tag, handler] of Object.entries(options.on ?? {}) as Array<[string, EventHandler<string, C, any>]>) on[tag] = handlerFrom(handler)
  return {
    _tag: "Compound",
    initial: options.initial,
    states: ownRecord(options.states as { readonly [name: string]: AnyState }),
    on,
    onDone: options.onDone,
    onEnter: options.onEnter ?? [],
    onExit: options.onExit ?? [],
    always: options.always ?? []
  }
}

/**
 * A history state inside a compound: a transition to it resumes the compound where it
 * was last left (`shallow`, the default: its last active child, entered by its initial
 * states; `deep`: its last active leaf). Before the compound was ever left, it enters
 * `default` (a full path inside the compound; by default the compound's initial child).
 *
 * @since 0.1.0
 * @category constructors
 */
export const history = <const D extends string = never>(
  options?: { readonly type?: "shallow" | "deep" | undefined; readonly default?: D | undefined }
): History<NoInfer<D>> => ({ _tag: "History", type: options?.type ?? "shallow", default: options?.default })

/** The parent path of a path ("" at the top). */
export const parentOf = (path: string): string => {
  const dot = path.lastIndexOf(".")
  return dot < 0 ? "" : path.slice(0, dot)
}

/** A path and its ancestors, from the path up (the active configuration of a leaf). */
export const lineOf = (path: string): Array<string> => {
  const out: Array<string> = []
  for (let p = path; p !== ""; p = parentOf(p)) out.push(p)
  return out
}

/** Every state of a tree with its full path, parents before their children, in document order. */
export const walk = (states: { readonly [name: string]: AnyState }, prefix = ""): Array<readonly [string, AnyState]> => {
  const out: Array<readonly [string, AnyState]> = []
  for (const [name, state] of Object.entries(states)) {
    const path = prefix === "" ? name : `${prefix}.${name}`
    out.push([path, state])
    if (state._tag === "Compound") out.push(...walk(state.states, path))
  }
  return out
}

/**
 * Why a chart state cannot be where it is (inside a compound state, or in a parallel
 * state's region): it keeps the whole chart in the execution's context and ends in the
 * procedure's top-level finals, so it runs only as the top of a procedure of its own.
 */
export const misplacedChart = (where: string) =>
  `it is a chart (the state Procedure.fromSCXML makes), which runs only at the top of its own procedure, not ${where}: ` +
  `it keeps the whole chart in the execution's context. Run the fromSCXML procedure as a child state instead ` +
  `(Procedure.child(chartProcedure, { input, next })) and register it too`

/** Whether a procedure uses anything of a tree: compound or history states, actions, eventless transitions. */
export const isTree = (states: { readonly [name: string]: AnyState }): boolean =>
  Object.values(states).some((state) =>
    state._tag === "Compound" || state._tag === "History" ||
    // a chart state (Procedure.fromSCXML) runs its own statechart: it is not part of a tree
    (state._tag !== "Chart" && (state.onEnter !== undefined || state.onExit !== undefined)) ||
    (state._tag === "Wait" && (state.always !== undefined || Object.values(state.on).some((h) => h.actions !== undefined)))
  )

/**
 * The states whose `on` handlers apply while `leaf` is active, innermost first: the leaf
 * (a wait) and its compound ancestors.
 */
export const handlersLine = (
  procedure: { readonly states: { readonly [name: string]: AnyState } },
  leaf: string
): Array<{ readonly path: string; readonly on: { readonly [tag: string]: Handler<any> } }> => {
  const out: Array<{ readonly path: string; readonly on: { readonly [tag: string]: Handler<any> } }> = []
  for (const path of lineOf(leaf)) {
    const state = stateOf(procedure, path)
    if (state?._tag === "Wait" || state?._tag === "Compound") out.push({ path, on: state.on })
  }
  return out
}

/** The event tags that `leaf` and its ancestors handle. */
export const acceptedTags = (procedure: { readonly states: { readonly [name: string]: AnyState } }, leaf: string): Array<string> => [
  ...new Set(handlersLine(procedure, leaf).flatMap((h) => Object.keys(h.on)))
]
