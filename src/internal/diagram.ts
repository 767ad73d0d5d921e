/**
 * A procedure's states and transitions as an SVG picture, laid out in layers from the
 * initial state down (a small Sugiyama-style layout: breadth-first layers, barycentre
 * ordering, straight edges forward and curved edges back). No external renderer.
 * The CLI's `diagram --format svg` and the dashboard (through `describe.ts`) use it;
 * internal, like `describe.ts`, and beside it for the same reason.
 *
 * @since 0.1.0
 */
import * as Procedure from "../Procedure.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface NodeBox {
  readonly name: string
  readonly kind: "step" | "wait" | "final" | "chart"
  readonly layer: number
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
  /** a step whose `next` is a function without `targets`: it may go to any state */
  readonly anyTarget: boolean
  /** a child state's procedure, `name@version` */
  readonly child?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EdgePath {
  readonly from: string
  readonly to: string
  readonly label: string
  /** the SVG path data */
  readonly d: string
  readonly labelX: number
  readonly labelY: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Layout {
  readonly width: number
  readonly height: number
  readonly nodes: ReadonlyArray<NodeBox>
  readonly edges: ReadonlyArray<EdgePath>
}

const NODE_H = 40
const H_GAP = 48
const V_GAP = 76
const MARGIN = 24
const TOP = 36
const CHAR_W = 7.2

const kindOf = (state: Procedure.AnyState): NodeBox["kind"] =>
  state._tag === "Step" ? "step" : state._tag === "Wait" ? "wait" : state._tag === "Chart" ? "chart" : "final"

/** A child state's procedure, `name@version`, drawn under its name. */
export const childOf = (state: Procedure.AnyState | undefined): string | undefined =>
  state?._tag === "Step" && state.child?.name !== undefined ? `${state.child.name}@${state.child.version}` : undefined

/**
 * Positions the states and routes the transitions: back edges are reversed to make the
 * graph acyclic, states get the layer of their longest path from the initial state
 * (final states last), edges longer than one layer pass through virtual points, layers
 * are ordered by barycentre sweeps, and positions are relaxed towards neighbours.
 *
 * @since 0.1.0
 * @category layout
 */
export const layout = (procedure: Procedure.Any): Layout => {
  const names = Object.keys(procedure.states)
  const out = new Map<string, Array<{ to: string; label: string }>>()
  const anyTarget = new Set<string>()
  for (const name of names) {
    const edges = Procedure.edges(procedure.states[name]!)
    if (edges === undefined) anyTarget.add(name)
    // merge parallel edges into one labelled "A / B"
    const merged = new Map<string, Array<string>>()
    for (const e of edges ?? []) {
      if (Procedure.stateOf(procedure, e.to) === undefined) continue
      const labels = merged.get(e.to) ?? []
      if (e.label !== "") labels.push(e.label)
      merged.set(e.to, labels)
    }
    out.set(name, [...merged].map(([to, labels]) => ({ to, label: labels.join(" / ") })))
  }

  // 1. back edges, found by a depth-first walk from the initial state
  const start = Procedure.stateOf(procedure, procedure.initial) !== undefined ? procedure.initial : names[0]
  const back = new Set<string>()
  const finished: Array<string> = []
  const onStack = new Set<string>()
  const seen = new Set<string>()
  const key = (from: string, to: string) => `${from}\u0000${to}`
  const dfs = (n: string) => {
    seen.add(n)
    onStack.add(n)
    for (const e of out.get(n) ?? []) {
      if (onStack.has(e.to)) back.add(key(n, e.to))
      else if (!seen.has(e.to)) dfs(e.to)
    }
    onStack.delete(n)
    finished.push(n)
  }
  if (start !== undefined) dfs(start)
  for (const n of names) if (!seen.has(n)) dfs(n)
  const topo = [...finished].reverse()

  // 2. layers: longest path over the acyclic graph; final states in the last layer
  const layerOf = new Map<string, number>()
  for (const n of topo) {
    if (!layerOf.has(n)) layerOf.set(n, 0)
    for (const e of out.get(n) ?? []) {
      if (back.has(key(n, e.to)) || e.to === n) continue
      layerOf.set(e.to, Math.max(layerOf.get(e.to) ?? 0, layerOf.get(n)! + 1))
    }
  }
  const isFinal = (n: string) => procedure.states[n]!._tag === "Final"
  const lastInner = Math.max(0, ...names.filter((n) => !isFinal(n)).map((n) => layerOf.get(n)!))
  for (const n of names) if (isFinal(n)) layerOf.set(n, Math.max(layerOf.get(n)!, lastInner + 1))
  const layerCount = Math.max(0, ...layerOf.values()) + 1

  // 3. the layered graph: real nodes, and virtual points on edges longer than one layer
  interface Item { readonly id: string; readonly real: boolean; readonly width: number; layer: number; order: number; x: number }
  const items = new Map<string, Item>()
  const layers: Array<Array<Item>> = Array.from({ length: layerCount }, () => [])
  const widthOf = (n: string) => {
    // a child state's label ("child name@version", in the small font) may be wider than its name
    const child = childOf(procedure.states[n])
    return Math.max(96, Math.ceil(n.length * CHAR_W) + 36, child === undefined ? 0 : Math.ceil(`child ${child}`.length * 5.4) + 24)
  }
  for (const n of topo) {
    const item: Item = { id: n, real: true, width: widthOf(n), layer: layerOf.get(n)!, order: 0, x: 0 }
    items.set(n, item)
    layers[item.layer]!.push(item)
  }
  const up = new Map<Item, Array<Item>>()
  const down = new Map<Item, Array<Item>>()
  const link = (a: Item, b: Item) => {
    down.set(a, [...(down.get(a) ?? []), b])
    up.set(b, [...(up.get(b) ?? []), a])
  }
  interface Route { readonly from: string; readonly to: string; readonly label: string; readonly reversed: boolean; readonly chain: ReadonlyArray<Item> }
  const routes: Array<Route> = []
  let virtual = 0
  for (const [from, list] of out) {
    for (const e of list) {
      if (from === e.to) {
        routes.push({ from, to: e.to, label: e.label, reversed: false, chain: [items.get(from)!] })
        continue
      }
      const reversed = layerOf.get(e.to)! <= layerOf.get(from)!
      const top = items.get(reversed ? e.to : from)!
      const bottom = items.get(reversed ? from : e.to)!
      const chain: Array<Item> = [top]
      for (let l = top.layer + 1; l < bottom.layer; l++) {
        // the first virtual point carries the label: it is as wide as the label
        const labelled = l === (reversed ? bottom.layer - 1 : top.layer + 1) && e.label !== ""
        const width = labelled ? Math.ceil(e.label.length * 6.6) + 10 : 14
        const v: Item = { id: `~${virtual++}`, real: false, width, layer: l, order: 0, x: 0 }
        layers[l]!.push(v)
        chain.push(v)
      }
      chain.push(bottom)
      for (let i = 0; i + 1 < chain.length; i++) link(chain[i]!, chain[i + 1]!)
      routes.push({ from, to: e.to, label: e.label, reversed, chain })
    }
  }

  // 4. order within layers: barycentre sweeps down and up
  const renumber = (l: Array<Item>) => l.forEach((it, i) => it.order = i)
  layers.forEach(renumber)
  const bary = (it: Item, neighbours: Map<Item, Array<Item>>) => {
    const ns = neighbours.get(it) ?? []
    return ns.length === 0 ? it.order : ns.reduce((a, n) => a + n.order, 0) / ns.length
  }
  for (let sweep = 0; sweep < 4; sweep++) {
    for (let i = 1; i < layers.length; i++) {
      const scores = new Map(layers[i]!.map((it) => [it, bary(it, up)]))
      layers[i]!.sort((a, b) => scores.get(a)! - scores.get(b)! || a.order - b.order)
      renumber(layers[i]!)
    }
    for (let i = layers.length - 2; i >= 0; i--) {
      const scores = new Map(layers[i]!.map((it) => [it, bary(it, down)]))
      layers[i]!.sort((a, b) => scores.get(a)! - scores.get(b)! || a.order - b.order)
      renumber(layers[i]!)
    }
  }

  // 5. x positions: packed, then relaxed towards the neighbours' centres, keeping order and gaps
  const gapOf = (a: Item, b: Item) => (a.real && b.real ? H_GAP : 18)
  for (const l of layers) {
    let x = 0
    l.forEach((it, i) => {
      if (i > 0) x += gapOf(l[i - 1]!, it)
      it.x = x
      x += it.width
    })
  }
  const centre = (it: Item) => it.x + it.width / 2
  for (let round = 0; round < 12; round++) {
    for (const l of round % 2 === 0 ? layers : [...layers].reverse()) {
      const wanted = l.map((it) => {
        const ns = [...(up.get(it) ?? []), ...(down.get(it) ?? [])]
        return ns.length === 0 ? it.x : ns.reduce((a, n) => a + centre(n), 0) / ns.length - it.width / 2
      })
      // place left to right at the wanted spot when it keeps the gap
      l.forEach((it, i) => {
        const min = i === 0 ? -Infinity : l[i - 1]!.x + l[i - 1]!.width + gapOf(l[i - 1]!, it)
        it.x = Math.max(wanted[i]!, min)
      })
      // then right to left, pulling back nodes pushed past their wanted spot
      for (let i = l.length - 2; i >= 0; i--) {
        const it = l[i]!
        const max = l[i + 1]!.x - gapOf(it, l[i + 1]!) - it.width
        it.x = Math.min(it.x, Math.max(wanted[i]!, max))
      }
    }
  }
  const minX = Math.min(...[...layers.flat()].map((it) => it.x))
  for (const it of layers.flat()) it.x += MARGIN - minX
  const yOf = (layer: number) => TOP + layer * (NODE_H + V_GAP)

  const boxes = new Map<string, NodeBox>()
  for (const it of items.values()) {
    boxes.set(it.id, {
      name: it.id,
      kind: kindOf(procedure.states[it.id]!),
      layer: it.layer,
      x: Math.round(it.x),
      y: yOf(it.layer),
      width: it.width,
      height: NODE_H,
      anyTarget: anyTarget.has(it.id),
      child: childOf(procedure.states[it.id])
    })
  }

  // 6. edge paths: a smooth curve through the chain's points
  const edges: Array<EdgePath> = []
  const exits = new Map<string, number>()
  for (const r of routes) {
    const a = boxes.get(r.from)!
    if (r.from === r.to) {
      const x = a.x + a.width
      const y = a.y + a.height / 2
      edges.push({ from: r.from, to: r.to, label: r.label, d: `M ${x} ${y - 8} C ${x + 44} ${y - 34}, ${x + 44} ${y + 34}, ${x} ${y + 8}`, labelX: x + 40, labelY: y })
      continue
    }
    const points = r.chain.map((it, i) => {
      const cx = Math.round(it.x + it.width / 2)
      const y = yOf(it.layer)
      if (i === 0) return { x: cx, y: y + NODE_H }
      if (i === r.chain.length - 1) return { x: cx, y }
      return { x: cx, y: y + NODE_H / 2 }
    })
    // spread the exits of one node along its bottom edge
    const first = r.chain[0]!
    const count = (down.get(first) ?? []).length
    if (count > 1) {
      const k = exits.get(first.id) ?? 0
      exits.set(first.id, k + 1)
      const sorted = [...(down.get(first) ?? [])].sort((p, q) => p.order - q.order)
      const rank = sorted.indexOf(r.chain[1]!)
      points[0] = { x: points[0]!.x + (rank - (count - 1) / 2) * Math.min(22, first.width / (count + 1)), y: points[0]!.y }
    }
    let d = `M ${points[0]!.x} ${points[0]!.y}`
    for (let i = 1; i < points.length; i++) {
      const p = points[i - 1]!
      const q = points[i]!
      const my = (p.y + q.y) / 2
      d += ` C ${p.x} ${my}, ${q.x} ${my}, ${q.x} ${q.y}`
    }
    if (r.reversed) {
      // drawn bottom-up: from the source's top (the lower node) to the target's bottom
      const pts = [...points].reverse()
      d = `M ${pts[0]!.x} ${pts[0]!.y}`
      for (let i = 1; i < pts.length; i++) {
        const p = pts[i - 1]!
        const q = pts[i]!
        const my = (p.y + q.y) / 2
        d += ` C ${p.x} ${my}, ${q.x} ${my}, ${q.x} ${q.y}`
      }
    }
    if (r.chain.length > 2) {
      const v = r.reversed ? points[points.length - 2]! : points[1]!
      edges.push({ from: r.from, to: r.to, label: r.label, d, labelX: v.x, labelY: v.y })
    } else {
      edges.push({ from: r.from, to: r.to, label: r.label, d, labelX: (points[0]!.x + points[1]!.x) / 2, labelY: (points[0]!.y + points[1]!.y) / 2 })
    }
  }

  const all = [...boxes.values()]
  const rightmost = Math.max(
    ...all.map((b) => b.x + b.width),
    ...layers.flat().map((it) => it.x + it.width),
    ...edges.map((e) => e.labelX + e.label.length * 3.5 + 8)
  )
  return {
    width: Math.ceil(rightmost + MARGIN),
    height: yOf(layerCount - 1) + NODE_H + MARGIN,
    nodes: all,
    edges
  }
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * Options of `toSvg`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SvgOptions {
  /** the state to highlight (class `current`) */
  readonly current?: string | undefined
  /** states to mark as visited (class `visited`) */
  readonly visited?: Iterable<string> | undefined
  /** prefix of the ids inside the SVG, so that several diagrams can share a page. @default "pd" */
  readonly idPrefix?: string | undefined
}

/**
 * The procedure as a standalone SVG document. Each state is a `<g class="node ..."
 * data-state="name">`, so a page can restyle the current and visited states by toggling
 * the `current` and `visited` classes.
 *
 * @since 0.1.0
 * @category diagrams
 */
export const toSvg = (procedure: Procedure.Any, options?: SvgOptions): string => {
  const l = layout(procedure)
  const p = (options?.idPrefix ?? "pd").replace(/[^A-Za-z0-9_-]/g, "")
  const visited = new Set(options?.visited ?? [])
  const parts: Array<string> = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="proctor-diagram" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" role="img" aria-label="${esc(procedure.name)} state diagram">`,
    `<title>${esc(procedure.name)}@${procedure.version}</title>`,
    `<defs><marker id="${p}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#475569"/></marker></defs>`,
    `<style>` +
      `.proctor-diagram{font-family:ui-sans-serif,system-ui,sans-serif;font-size:13px}` +
      `.proctor-diagram .edge path{fill:none;stroke:#475569;stroke-width:1.4}` +
      `.proctor-diagram .edge text{fill:#334155;font-size:11px}` +
      `.proctor-diagram .edge rect{fill:#ffffff;opacity:.85}` +
      `.proctor-diagram .node rect{fill:#f8fafc;stroke:#64748b;stroke-width:1.4}` +
      `.proctor-diagram .node.wait rect{fill:#fefce8}` +
      `.proctor-diagram .node.final rect{fill:#f1f5f9}` +
      `.proctor-diagram .node text{fill:#0f172a;text-anchor:middle;dominant-baseline:central}` +
      `.proctor-diagram .node .kind{fill:#64748b;font-size:9px}` +
      `.proctor-diagram .node.visited rect{fill:#dbeafe;stroke:#2563eb}` +
      `.proctor-diagram .node.current rect{fill:#fde68a;stroke:#d97706;stroke-width:3}` +
      `</style>`
  )
  const init = l.nodes.find((n) => n.name === procedure.initial)
  if (init !== undefined) {
    const cx = init.x + init.width / 2
    parts.push(
      `<g class="initial"><circle cx="${cx}" cy="${init.y - 26}" r="6" fill="#0f172a"/>` +
        `<path d="M ${cx} ${init.y - 20} L ${cx} ${init.y - 1}" stroke="#0f172a" stroke-width="1.4" marker-end="url(#${p}-arrow)"/></g>`
    )
  }
  for (const e of l.edges) {
    parts.push(
      `<g class="edge" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path d="${e.d}" marker-end="url(#${p}-arrow)"/>` +
        (e.label === ""
          ? ""
          : `<rect x="${e.labelX - e.label.length * 3.3 - 3}" y="${e.labelY - 8}" width="${e.label.length * 6.6 + 6}" height="15" rx="3"/>` +
            `<text x="${e.labelX}" y="${e.labelY + 4}" text-anchor="middle">${esc(e.label)}</text>`) +
        `</g>`
    )
  }
  for (const n of l.nodes) {
    const cls = ["node", n.kind]
    if (visited.has(n.name)) cls.push("visited")
    if (options?.current === n.name) cls.push("current")
    const r = n.kind === "final" ? 18 : n.kind === "wait" ? 4 : 8
    const inner = n.kind === "final"
      ? `<rect x="${n.x + 3}" y="${n.y + 3}" width="${n.width - 6}" height="${n.height - 6}" rx="${r - 3}" style="fill:none"/>`
      : ""
    const kind = n.child !== undefined ? `child ${n.child}` : n.kind + (n.anyTarget ? " → any" : "")
    parts.push(
      `<g class="${cls.join(" ")}" data-state="${esc(n.name)}"><rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="${r}"/>${inner}` +
        `<text x="${n.x + n.width / 2}" y="${n.y + 16}">${esc(n.name)}</text>` +
        `<text class="kind" x="${n.x + n.width / 2}" y="${n.y + 31}">${esc(kind)}</text></g>`
    )
  }
  parts.push(`</svg>`)
  return parts.join("\n")
}
