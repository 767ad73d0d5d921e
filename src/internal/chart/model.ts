/**
 * The statechart model: a tree of states (atomic, compound, parallel, final, history) in
 * document order, with their transitions, built and checked from a plain definition.
 * Executable content (`A`) and guards (`G`) are opaque here: the algorithm only orders
 * them, and whoever interprets the chart (the SCXML interpreter, later the durable
 * runtime) runs them. A state's index is its position in document order, so sorting by
 * index is sorting by document order.
 */
import { Data } from "effect"

export type StateKind = "atomic" | "compound" | "parallel" | "final" | "history"

/** A transition as written: `target` holds state ids, `event` space-separated descriptors. */
export interface TransitionDefinition<A, G> {
  readonly event?: string | undefined
  readonly cond?: G | undefined
  readonly target?: ReadonlyArray<string> | undefined
  readonly type?: "external" | "internal" | undefined
  readonly actions?: ReadonlyArray<A> | undefined
}

/** A state as written. `kind: "state"` becomes atomic or compound by whether it has child states. */
export interface StateDefinition<A, G> {
  readonly id?: string | undefined
  readonly kind: "state" | "parallel" | "final" | "history"
  /** The `initial` attribute: the ids of the default initial states. */
  readonly initial?: ReadonlyArray<string> | undefined
  /** An `<initial>` child: its transition's targets and content. */
  readonly initialTransition?: { readonly target: ReadonlyArray<string>; readonly actions: ReadonlyArray<A> } | undefined
  /** For a history state. @default "shallow" */
  readonly history?: "shallow" | "deep" | undefined
  readonly onEntry?: ReadonlyArray<A> | undefined
  readonly onExit?: ReadonlyArray<A> | undefined
  /** For a history state: at most one, its default (targets and content, no event nor cond). */
  readonly transitions?: ReadonlyArray<TransitionDefinition<A, G>> | undefined
  readonly children?: ReadonlyArray<StateDefinition<A, G>> | undefined
}

/** A whole chart as written: the root's children and its `initial` attribute. */
export interface ChartDefinition<A, G> {
  readonly initial?: ReadonlyArray<string> | undefined
  readonly children: ReadonlyArray<StateDefinition<A, G>>
}

export interface ChartTransition<A, G> {
  /** Position among all transitions in document order (the root's initial transition is -1). */
  readonly index: number
  readonly source: number
  /** Event descriptors, normalised (`foo.*` and `foo.` become `foo`); empty for an eventless transition. */
  readonly events: ReadonlyArray<string>
  readonly cond: G | undefined
  /** Target state indices; empty for a targetless transition. */
  readonly targets: ReadonlyArray<number>
  readonly type: "external" | "internal"
  readonly actions: ReadonlyArray<A>
}

export interface ChartState<A, G> {
  /** Position in document order; the root is 0. */
  readonly index: number
  readonly id: string
  readonly kind: StateKind
  /** The parent's index; -1 for the root. */
  readonly parent: number
  readonly depth: number
  /** Child states (not history states), in document order. */
  readonly children: ReadonlyArray<number>
  readonly histories: ReadonlyArray<number>
  /** For a compound state (and the root): its default entry. For a history state: its default transition. */
  readonly initial: ChartTransition<A, G> | undefined
  readonly history: "shallow" | "deep" | undefined
  readonly onEntry: ReadonlyArray<A>
  readonly onExit: ReadonlyArray<A>
  readonly transitions: ReadonlyArray<ChartTransition<A, G>>
}

export interface Chart<A, G> {
  /** All states in document order; `states[0]` is the root (the `<scxml>` element). */
  readonly states: ReadonlyArray<ChartState<A, G>>
  readonly byId: ReadonlyMap<string, number>
  readonly transitions: ReadonlyArray<ChartTransition<A, G>>
}

/** The chart is not valid: a duplicate id, a target that does not exist, a misplaced initial state. */
export class ChartError extends Data.TaggedError("ChartError")<{ readonly state: string; readonly reason: string }> {
  override get message(): string {
    return `Invalid statechart at state "${this.state}": ${this.reason}`
  }
}

/** The id the root gets; it never appears in a configuration. */
export const rootId = "#root"

/** Normalises an `event` attribute into descriptors: `foo.*` and `foo.` match the same events as `foo`. */
export const eventDescriptors = (event: string | undefined): ReadonlyArray<string> =>
  (event ?? "").split(/\s+/).filter((d) => d !== "").map((d) => (d === "*" || d === ".*" ? "*" : d.replace(/\.\*$|\.$/, "")))

/** Whether an event name matches one of the descriptors: equal, a dotted prefix of it, or `*`. */
export const matchesEvent = (descriptors: ReadonlyArray<string>, name: string): boolean =>
  descriptors.some((d) => d === "*" || d === name || (name.startsWith(d) && name.charCodeAt(d.length) === 46))

interface Draft<A, G> {
  index: number
  id: string
  kind: StateKind
  parent: number
  depth: number
  children: Array<number>
  histories: Array<number>
  definition: StateDefinition<A, G> | undefined
  initial: ChartTransition<A, G> | undefined
  history: "shallow" | "deep" | undefined
  transitions: Array<ChartTransition<A, G>>
}

/** Builds and checks a chart; throws a `ChartError` saying which state is wrong and how. */
export const makeChart = <A, G>(definition: ChartDefinition<A, G>): Chart<A, G> => {
  const drafts: Array<Draft<A, G>> = []
  const byId = new Map<string, number>()
  const add = (def: StateDefinition<A, G> | undefined, parent: number, depth: number): number => {
    const index = drafts.length
    const children = def === undefined ? definition.children : def.children ?? []
    const id = def === undefined ? rootId : def.id ?? `#state${index}`
    const kind: StateKind = def === undefined
      ? "compound"
      : def.kind === "state"
      ? children.some((c) => c.kind !== "history") ? "compound" : "atomic"
      : def.kind
    if (byId.has(id)) throw new ChartError({ state: id, reason: "the id is used by two states; give each state its own id" })
    if ((kind === "final" || kind === "history") && children.length > 0) {
      throw new ChartError({ state: id, reason: `a ${kind} state cannot have child states` })
    }
    byId.set(id, index)
    const draft: Draft<A, G> = {
      index,
      id,
      kind,
      parent,
      depth,
      children: [],
      histories: [],
      definition: def,
      initial: undefined,
      history: kind === "history" ? def?.history ?? "shallow" : undefined,
      transitions: []
    }
    drafts.push(draft)
    for (const child of children) {
      const childIndex = add(child, index, depth + 1)
      if (child.kind === "history") draft.histories.push(childIndex)
      else draft.children.push(childIndex)
    }
    return index
  }
  add(undefined, -1, 0)
  const root = drafts[0]!
  if (root.children.length === 0) throw new ChartError({ state: rootId, reason: "the chart has no states; add at least one <state>" })

  const resolve = (from: Draft<A, G>, ids: ReadonlyArray<string>): ReadonlyArray<number> =>
    ids.map((target) => {
      const index = byId.get(target)
      if (index === undefined) throw new ChartError({ state: from.id, reason: `the target "${target}" is not the id of any state` })
      return index
    })
  const isDescendant = (state: number, ancestor: number): boolean => {
    for (let p = drafts[state]!.parent; p >= 0; p = drafts[p]!.parent) if (p === ancestor) return true
    return false
  }
  const transitions: Array<ChartTransition<A, G>> = []
  const defaultEntry = (draft: Draft<A, G>, initial: ReadonlyArray<string> | undefined, actions: ReadonlyArray<A>) => {
    const targets = initial !== undefined && initial.length > 0 ? resolve(draft, initial) : [draft.children[0]!]
    for (const target of targets) {
      if (!isDescendant(target, draft.index)) {
        throw new ChartError({ state: draft.id, reason: `the initial state "${drafts[target]!.id}" is not a descendant of this state` })
      }
    }
    draft.initial = { index: -1, source: draft.index, events: [], cond: undefined, targets, type: "internal", actions }
  }
  defaultEntry(root, definition.initial, [])
  for (const draft of drafts) {
    const def = draft.definition
    if (def === undefined) continue
    for (const t of def.transitions ?? []) {
      const transition: ChartTransition<A, G> = {
        index: transitions.length,
        source: draft.index,
        events: eventDescriptors(t.event),
        cond: t.cond,
        targets: resolve(draft, t.target ?? []),
        type: t.type ?? "external",
        actions: t.actions ?? []
      }
      if (draft.kind === "history") {
        if (draft.initial !== undefined) throw new ChartError({ state: draft.id, reason: "a history state has at most one default transition" })
        draft.initial = { ...transition, index: -1 }
      } else {
        transitions.push(transition)
        draft.transitions.push(transition)
      }
    }
    if (draft.kind === "compound") {
      const it = def.initialTransition
      if (it !== undefined && def.initial !== undefined) {
        throw new ChartError({ state: draft.id, reason: "give either an initial attribute or an <initial> element, not both" })
      }
      defaultEntry(draft, it?.target ?? def.initial, it?.actions ?? [])
    } else if (def.initial !== undefined || def.initialTransition !== undefined) {
      throw new ChartError({ state: draft.id, reason: `a ${draft.kind} state has no initial state; only a state with child states has one` })
    }
    if (draft.kind === "history") {
      const parent = drafts[draft.parent]!
      if (draft.initial === undefined) {
        // without a default transition, a history state enters its parent's default entry (a common extension)
        const targets = parent.children.length > 0 ? [parent.children[0]!] : []
        draft.initial = { index: -1, source: draft.index, events: [], cond: undefined, targets, type: "external", actions: [] }
      }
      for (const target of draft.initial.targets) {
        if (!isDescendant(target, parent.index)) {
          throw new ChartError({ state: draft.id, reason: `the default history target "${drafts[target]!.id}" is not inside "${parent.id}"` })
        }
      }
    }
  }
  const states = drafts.map((d): ChartState<A, G> => ({
    index: d.index,
    id: d.id,
    kind: d.kind,
    parent: d.parent,
    depth: d.depth,
    children: d.children,
    histories: d.histories,
    initial: d.initial,
    history: d.history,
    onEntry: d.definition?.onEntry ?? [],
    onExit: d.definition?.onExit ?? [],
    transitions: d.transitions
  }))
  return { states, byId, transitions }
}
