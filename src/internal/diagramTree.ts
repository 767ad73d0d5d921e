/**
 * The diagram of a procedure as a tree: its states (step, wait, final, and the nested
 * kinds: compound, parallel, history, and the atomic states of an imported statechart),
 * each with its children, and its transitions with their labels. Every front end draws
 * from it (the SVG in `diagram.ts`, Mermaid in `mermaid.ts`, the HTTP API's states in
 * `describe.ts`), so a state is nested, labelled and highlighted the same way everywhere.
 *
 * A node's `id` is the name a snapshot uses for it: the full dotted path of a state of a
 * compound state ("deploy.api"), the id of a state of a statechart. The active
 * configuration is the active states and all their ancestors (`configuration`).
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import type * as Procedure from "../Procedure.js"
import type { Chart as ChartModel, ChartState } from "./chart/model.js"
import { makeChart } from "./chart/model.js"
import type { Chart } from "./chartState.js"
import { edges as stateEdges } from "./states.js"

/**
 * @since 0.1.0
 * @category models
 */
export type NodeKind = "step" | "wait" | "final" | "compound" | "parallel" | "history" | "atomic" | "chart"

/**
 * A state of the diagram.
 *
 * @since 0.1.0
 * @category models
 */
export interface DiagramNode {
  /** what snapshots call it: a full dotted path, or a statechart state's id */
  readonly id: string
  /** what the picture shows: its own name */
  readonly label: string
  readonly kind: NodeKind
  /** the id of the enclosing state; `undefined` at the top */
  readonly parent: string | undefined
  /** for a parallel state: its regions */
  readonly children: ReadonlyArray<DiagramNode>
  /** for a compound state: the child (or deeper state) entered by default */
  readonly initial: ReadonlyArray<string>
  /** for a history state */
  readonly history?: "shallow" | "deep" | undefined
  /** a step whose next state is computed without declared `targets`: it may go anywhere */
  readonly anyTarget: boolean
  /** a child state's procedure, `name@version` */
  readonly child?: string | undefined
  /** a final state's outcome */
  readonly outcome?: string | undefined
  /** the event tags a wait state accepts */
  readonly accepts: ReadonlyArray<string>
  /** a wait state's timer */
  readonly timer?: { readonly after: string; readonly goto: string } | undefined
  /**
   * a state of a parallel state's region (run by a child execution) or of a statechart:
   * not one of the procedure's own states, so never a snapshot's `state` nor a `skip` target
   */
  readonly runsIn?: "region" | "chart" | undefined
}

/**
 * A transition. `kind: "history"` is a history state's default, drawn dashed.
 *
 * @since 0.1.0
 * @category models
 */
export interface DiagramEdge {
  readonly from: string
  readonly to: string
  readonly label: string
  readonly kind: "transition" | "history"
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DiagramTree {
  readonly name: string
  readonly version: number
  /** the top-level states, in definition order */
  readonly roots: ReadonlyArray<DiagramNode>
  /** the state entered at the start */
  readonly initial: ReadonlyArray<string>
  readonly edges: ReadonlyArray<DiagramEdge>
  /** every node by id */
  readonly nodes: ReadonlyMap<string, DiagramNode>
}

interface Builder {
  readonly nodes: Map<string, DiagramNode>
  readonly edges: Array<DiagramEdge>
  /** the procedure's final states that end a statechart (its top-level finals, by id) */
  readonly chartFinals: ReadonlySet<string>
}

/**
 * Where a record's states are: `parent` holds them, and their targets are named `scope +
 * target` (a region's states name each other by their own names; everywhere else a
 * target is a full path). `runsIn` marks the states of a region or of a statechart.
 */
interface Place {
  readonly parent: string | undefined
  readonly scope: string
  readonly runsIn: DiagramNode["runsIn"]
}

const bare = (id: string, label: string, kind: NodeKind, at: Place): DiagramNode => ({
  id,
  label,
  kind,
  parent: at.parent,
  children: [],
  initial: [],
  anyTarget: false,
  accepts: [],
  ...(at.runsIn === undefined ? {} : { runsIn: at.runsIn })
})

const leaf = (id: string, label: string, state: Procedure.Step<string, any, any, any, any> | Procedure.Wait<string, any, any> | Procedure.Final, at: Place, b: Builder): DiagramNode => {
  const out = stateEdges(state)
  for (const e of out ?? []) b.edges.push({ from: id, to: at.scope + e.to, label: e.label, kind: "transition" })
  const spec = state._tag === "Step" ? state.child : undefined
  return {
    ...bare(id, label, state._tag === "Step" ? "step" : state._tag === "Wait" ? "wait" : "final", at),
    anyTarget: out === undefined,
    accepts: state._tag === "Wait" ? Object.keys(state.on) : [],
    ...(spec?.name === undefined ? {} : { child: `${spec.name}@${spec.version}` }),
    ...(state._tag === "Final" ? { outcome: state.outcome } : {}),
    ...(state._tag === "Wait" && state.after !== undefined
      ? { timer: { after: Duration.format(state.after.delay), goto: at.scope + state.after.goto } }
      : {})
  }
}

/** The states of a record, each named `parent.name` (or `name` at the top), added to the builder; returns them in order. */
const states = (record: { readonly [name: string]: Procedure.AnyState }, at: Place, b: Builder): ReadonlyArray<DiagramNode> =>
  Object.entries(record).map(([name, state]) => {
    const id = at.parent === undefined ? name : `${at.parent}.${name}`
    const node = nodeOf(id, name, state, at, b)
    b.nodes.set(id, node)
    return node
  })

const nodeOf = (id: string, label: string, state: Procedure.AnyState, at: Place, b: Builder): DiagramNode => {
  const inside: Place = { ...at, parent: id }
  switch (state._tag) {
    case "Compound": {
      const children = states(state.states, inside, b)
      for (const e of stateEdges(state) ?? []) b.edges.push({ from: id, to: at.scope + e.to, label: e.label, kind: "transition" })
      const initial = `${id}.${state.initial}`
      // a history state without a default enters the compound's initial state
      for (const [name, child] of Object.entries(state.states)) {
        if (child._tag === "History") b.edges.push({ from: `${id}.${name}`, to: child.default === undefined ? initial : at.scope + child.default, label: "", kind: "history" })
      }
      return { ...bare(id, label, "compound", at), children, initial: [initial], accepts: Object.keys(state.on) }
    }
    case "History":
      return { ...bare(id, label, "history", at), history: state.type }
    case "Chart": {
      const chart = chartOf(state)
      const children = chart === undefined ? [] : chartChildren(chart, chart.states[0]!, { parent: id, scope: "", runsIn: "chart" }, b)
      const initial = chart === undefined ? [] : (chart.states[0]!.initial?.targets ?? []).map((t) => chart.states[t]!.id)
      return { ...bare(id, label, "chart", at), children, initial }
    }
    default: {
      const regions = state._tag === "Step" ? state.child?.parallel?.regions : undefined
      if (regions === undefined) return leaf(id, label, state, at, b)
      // a parallel state (`Procedure.parallel`): its regions run as child executions, their states named in the region
      const node = leaf(id, label, state, at, b)
      const children = Object.entries(regions).map(([name, region]) => {
        const rid = `${id}.${name}`
        const inner = states(region.states, { parent: rid, scope: `${rid}.`, runsIn: "region" }, b)
        const r: DiagramNode = { ...bare(rid, name, "compound", { ...inside, runsIn: "region" }), children: inner, initial: [`${rid}.${region.initial}`] }
        b.nodes.set(rid, r)
        return r
      })
      return { ...node, kind: "parallel", children }
    }
  }
}

/** The chart model of a statechart state; `undefined` if its document no longer builds (it did when registered). */
const chartOf = (state: Chart): ChartModel<unknown, unknown> | undefined => {
  try {
    return makeChart(state.document.chart)
  } catch {
    return undefined
  }
}

/**
 * A statechart's states under `parent`, named by their ids (as the chart's configuration
 * names them). A top-level final is the procedure's final state of the same id: it is
 * drawn once, at the top, and the chart's transitions go there.
 */
const chartChildren = (
  chart: ChartModel<unknown, unknown>,
  state: ChartState<unknown, unknown>,
  at: Place,
  b: Builder
): ReadonlyArray<DiagramNode> =>
  [...state.children, ...state.histories].sort((x, y) => x - y).flatMap((index) => {
    const s = chart.states[index]!
    if (s.parent === 0 && s.kind === "final" && b.chartFinals.has(s.id)) return []
    for (const t of s.kind === "history" ? [] : s.transitions) {
      const label = t.events.length === 0 ? "always" : t.events.join(" ")
      for (const target of t.targets) b.edges.push({ from: s.id, to: chart.states[target]!.id, label, kind: "transition" })
    }
    if (s.kind === "history") {
      for (const target of s.initial?.targets ?? []) b.edges.push({ from: s.id, to: chart.states[target]!.id, label: "", kind: "history" })
    }
    const node: DiagramNode = {
      ...bare(s.id, s.id, s.kind, at),
      children: chartChildren(chart, s, { ...at, parent: s.id }, b),
      initial: s.kind === "compound" ? (s.initial?.targets ?? []).map((t) => chart.states[t]!.id) : [],
      ...(s.history === undefined ? {} : { history: s.history })
    }
    b.nodes.set(s.id, node)
    return [node]
  })

/**
 * The diagram of a procedure: flat, with compound states, or an imported statechart.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromProcedure = (procedure: Procedure.Any): DiagramTree => {
  const chartFinals = new Set(
    Object.values(procedure.states).flatMap((s) => (s._tag === "Chart" ? s.finals.filter((f) => procedure.states[f]?._tag === "Final") : []))
  )
  const b: Builder = { nodes: new Map(), edges: [], chartFinals }
  const roots = states(procedure.states, { parent: undefined, scope: "", runsIn: undefined }, b)
  // an edge to a state that does not exist (a definition `validate` will refuse) is not drawn
  const edges = b.edges.filter((e) => b.nodes.has(e.to))
  return { name: procedure.name, version: procedure.version, roots, initial: [procedure.initial], edges, nodes: b.nodes }
}

/**
 * The active configuration: the active states and all their ancestors.
 *
 * @since 0.1.0
 * @category getters
 */
export const configuration = (tree: DiagramTree, active: Iterable<string>): ReadonlySet<string> => {
  const out = new Set<string>()
  for (const id of active) {
    for (let node = tree.nodes.get(id); node !== undefined && !out.has(node.id); node = node.parent === undefined ? undefined : tree.nodes.get(node.parent)) {
      out.add(node.id)
    }
  }
  return out
}

/**
 * Whether a node is drawn as a box holding other states.
 *
 * @since 0.1.0
 * @category getters
 */
export const isContainer = (node: DiagramNode): boolean => node.kind === "compound" || node.kind === "parallel" || node.kind === "chart"

/**
 * The ancestors of a node, nearest first.
 *
 * @since 0.1.0
 * @category getters
 */
export const ancestors = (tree: DiagramTree, id: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  // a chart whose state ids repeat a name of the procedure must not make this loop forever
  for (let p = tree.nodes.get(id)?.parent; p !== undefined && !out.includes(p) && p !== id; p = tree.nodes.get(p)?.parent) out.push(p)
  return out
}
