/**
 * The macrostep of a procedure whose states form a tree (compound and history states,
 * entry/exit/transition actions, eventless transitions). The procedure is turned into a
 * statechart once (`makeTree`), and each transition is planned by the chart engine
 * (`chart/algorithm.ts`, `planMicrostep`), so the SCXML rules (exit set from the inside
 * out, transition actions, entry set from the outside in, history) live in one place.
 * The actions run here, synchronously, on the context; eventless (`always`) and done
 * (`onDone`) transitions follow in the same macrostep. It is pure: `transition.ts` turns
 * the result into the next snapshot, committed in one write.
 */
import { planMicrostep } from "./chart/algorithm.js"
import type { Chart, ChartTransition, StateDefinition } from "./chart/model.js"
import { makeChart } from "./chart/model.js"
import { lineOf, parentOf, walk } from "./compound.js"
import type { AnyState } from "./states.js"
import { stateOf } from "./states.js"

/** An action as the macrostep runs it: a new context, or nothing to keep it. */
type RunAction = (args: { readonly context: unknown; readonly event: unknown }) => unknown

/** A procedure's states as a statechart, with what the macrostep looks up by path. */
export interface Tree {
  readonly chart: Chart<RunAction, unknown>
  readonly states: { readonly [name: string]: AnyState }
  /** every path, in document order */
  readonly paths: ReadonlyArray<string>
  /** the history states: their path, their compound's and their kind */
  readonly histories: ReadonlyArray<{ readonly path: string; readonly compound: string; readonly type: "shallow" | "deep" }>
  /** the compounds with a history state: their last active leaf is kept when they are left */
  readonly remembered: ReadonlySet<string>
}

export const makeTree = (def: { readonly initial: string; readonly states: { readonly [name: string]: AnyState } }): Tree => {
  const histories: Array<{ path: string; compound: string; type: "shallow" | "deep" }> = []
  const toDefinitions = (states: { readonly [name: string]: AnyState }, prefix: string, initial: string): Array<StateDefinition<RunAction, unknown>> =>
    Object.entries(states).map(([name, state]): StateDefinition<RunAction, unknown> => {
      const id = prefix === "" ? name : `${prefix}.${name}`
      switch (state._tag) {
        case "Compound":
          return {
            id,
            kind: "state",
            initial: [`${id}.${state.initial}`],
            onEntry: state.onEnter as ReadonlyArray<RunAction>,
            onExit: state.onExit as ReadonlyArray<RunAction>,
            children: toDefinitions(state.states, id, state.initial)
          }
        case "History":
          histories.push({ path: id, compound: prefix, type: state.type })
          return { id, kind: "history", history: state.type, transitions: [{ target: [state.default ?? `${prefix}.${initial}`] }] }
        case "Chart":
          return { id, kind: "state" }
        default:
          return {
            id,
            kind: state._tag === "Final" ? "final" : "state",
            onEntry: (state.onEnter ?? []) as ReadonlyArray<RunAction>,
            onExit: (state.onExit ?? []) as ReadonlyArray<RunAction>
          }
      }
    })
  const chart = makeChart({ initial: [def.initial], children: toDefinitions(def.states, "", def.initial) })
  return {
    chart,
    states: def.states,
    paths: walk(def.states).map(([path]) => path),
    histories,
    remembered: new Set(histories.map((h) => h.compound))
  }
}

/** A transition to take: the state whose transition it is ("" for the start), its target path and actions. */
export interface Move {
  readonly source: string
  readonly target: string
  readonly actions: ReadonlyArray<RunAction>
}

export type Result =
  /** the macrostep ended in `leaf`, with the context and history values it made */
  | {
    readonly _tag: "Entered"
    readonly leaf: string
    readonly context: unknown
    readonly history: Readonly<Record<string, string>> | undefined
  }
  /** an action or a guard threw: nothing of the macrostep is kept */
  | { readonly _tag: "Threw"; readonly error: unknown; readonly where: string }
  /** eventless transitions went on past the loop limit */
  | { readonly _tag: "Looped"; readonly states: ReadonlyArray<string> }

/** What the macrostep needs besides the tree. */
export interface Options {
  /** the active leaf before the macrostep ("" at the start) */
  readonly leaf: string
  readonly history: Readonly<Record<string, string>> | undefined
  readonly context: unknown
  /** the event that caused it, given to the actions */
  readonly event: unknown
  /** how many eventless or done transitions may follow the first one */
  readonly limit: number
  /** when `verify` replays a history: guards are choices and actions do not run */
  readonly choose?: ((n: number) => number) | undefined
}

/**
 * Takes `first`, then the eventless transitions (`always`: the leaf's, then its
 * ancestors', the first whose guard holds) and done transitions (a final child entered:
 * its compound's `onDone`) that follow, one microstep at a time, until none applies.
 */
export const macrostep = (tree: Tree, first: Move, options: Options): Result => {
  const { chart } = tree
  let leaf = options.leaf
  let context = options.context
  let history = options.history
  let move: Move | undefined = first
  const visited: Array<string> = []
  for (let count = 0; move !== undefined; count++) {
    if (count > options.limit) return { _tag: "Looped", states: [...new Set(visited)] }
    const plan = planMicrostep(chart, { configuration: leaf === "" ? [] : lineOf(leaf), history: chartHistory(tree, history) }, [
      transitionOf(tree, move)
    ])
    for (const step of plan.steps) {
      if (step.kind === "exited") {
        if (tree.remembered.has(step.state)) history = { ...history, [step.state]: leaf }
        continue
      }
      if (step.kind !== "exit" && step.kind !== "transition" && step.kind !== "entry") continue
      if (options.choose !== undefined) continue
      try {
        const next = step.action({ context, event: options.event })
        if (next !== undefined) context = next
      } catch (error) {
        const where = step.kind === "exit"
          ? `the onExit action of state "${step.state}"`
          : step.kind === "entry"
          ? `the onEnter action of state "${step.state}"`
          : `an action of the transition from "${step.source || "the start"}"`
        return { _tag: "Threw", error, where }
      }
    }
    leaf = deepest(plan.next.configuration)
    visited.push(leaf)
    try {
      move = eventless(tree, leaf, context, options.choose)
    } catch (error) {
      return { _tag: "Threw", error, where: `a guard of an \`always\` transition active in "${leaf}"` }
    }
  }
  return { _tag: "Entered", leaf, context, history }
}

/** The next eventless transition from `leaf`, or the done transition of its compound, if any. */
const eventless = (tree: Tree, leaf: string, context: unknown, choose: ((n: number) => number) | undefined): Move | undefined => {
  for (const path of lineOf(leaf)) {
    const state = stateOf(tree, path)!
    const always = state._tag === "Compound" ? state.always : state._tag === "Wait" ? state.always ?? [] : []
    for (const t of always) {
      const holds = t.guard === undefined || (choose === undefined ? t.guard(context) : choose(2) === 0)
      if (holds) return { source: path, target: t.goto, actions: (t.actions ?? []) as ReadonlyArray<RunAction> }
    }
  }
  const compound = parentOf(leaf)
  const parent = compound === "" ? undefined : stateOf(tree, compound)
  if (stateOf(tree, leaf)?._tag === "Final" && parent?._tag === "Compound" && parent.onDone !== undefined) {
    return { source: compound, target: parent.onDone, actions: [] }
  }
  return undefined
}

/** The active leaf of a configuration (without parallel states, the one with the most names). */
const deepest = (configuration: ReadonlyArray<string>): string =>
  configuration.reduce((a, b) => (b.split(".").length > a.split(".").length ? b : a))

const transitionOf = (tree: Tree, move: Move): ChartTransition<RunAction, unknown> => ({
  index: -2,
  source: move.source === "" ? 0 : tree.chart.byId.get(move.source)!,
  events: [],
  cond: undefined,
  targets: [tree.chart.byId.get(move.target)!],
  type: "external",
  actions: move.actions
})

/**
 * The stored history values (a compound's last active leaf) as the chart engine reads
 * them (a history state's recorded states: the child on the way to that leaf, or the leaf).
 */
const chartHistory = (tree: Tree, history: Readonly<Record<string, string>> | undefined): Record<string, ReadonlyArray<string>> => {
  const out: Record<string, ReadonlyArray<string>> = {}
  if (history === undefined) return out
  for (const h of tree.histories) {
    const leaf = Object.hasOwn(history, h.compound) ? history[h.compound]! : undefined
    if (leaf === undefined || !tree.chart.byId.has(leaf)) continue
    const rest = leaf.slice(h.compound.length + 1)
    const dot = rest.indexOf(".")
    out[h.path] = [h.type === "deep" || dot < 0 ? leaf : `${h.compound}.${rest.slice(0, dot)}`]
  }
  return out
}
