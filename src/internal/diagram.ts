/**
 * A procedure's states and transitions as an SVG picture: each level laid out in layers
 * from its initial state down (`diagramLayout.ts`), compound states drawn as boxes holding
 * their children, parallel states as boxes whose regions are split by dashed lines (as in
 * UML). No external renderer. The CLI's `diagram --format svg` and the dashboard (through
 * `describe.ts`) use it; internal, like `describe.ts`, and beside it for the same reason.
 *
 * @since 0.1.0
 */
import type * as Procedure from "../Procedure.js"
import { curve, LABEL_CHAR_W, type LevelEdge, layoutLevel, type LevelRoute } from "./diagramLayout.js"
import type { DiagramNode, DiagramTree } from "./diagramTree.js"
import { ancestors, configuration, fromProcedure, isContainer } from "./diagramTree.js"

/**
 * A state placed on the picture.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeBox {
  readonly name: string
  readonly label: string
  readonly kind: DiagramNode["kind"]
  readonly parent: string | undefined
  /** the nesting depth: 0 at the top */
  readonly depth: number
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
  /** a step whose `next` is a function without `targets`: it may go to any state */
  readonly anyTarget: boolean
  /** a child state's procedure, `name@version` */
  readonly child?: string | undefined
  /** a parallel state: the x of the dashed lines between its regions */
  readonly separators: ReadonlyArray<number>
  /** a compound, parallel or statechart state: a box holding other states */
  readonly container: boolean
  /** a parallel state's region: drawn without a border of its own */
  readonly region: boolean
  /** a history state's kind */
  readonly history?: "shallow" | "deep" | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EdgePath {
  readonly from: string
  readonly to: string
  readonly label: string
  readonly kind: "transition" | "history"
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
  /** containers before the states they hold */
  readonly nodes: ReadonlyArray<NodeBox>
  readonly edges: ReadonlyArray<EdgePath>
  /** where the initial-state dots go: above these states */
  readonly initials: ReadonlyArray<string>
}

const NODE_H = 40
const HISTORY_D = 22
const CHAR_W = 7.2
/** a container's name line */
const HEADER = 22
/** inside a container: room for the name and the initial dot above the first layer */
const INNER = { margin: 16, top: HEADER + 32 }
const TOP = { margin: 24, top: 36 }
/** around a region's only state, when it has no states of its own */
const REGION_PAD = 16

/** A laid-out state: its size, and its children's places relative to it. */
interface Laid {
  readonly node: DiagramNode
  readonly width: number
  readonly height: number
  readonly inner: ReadonlyArray<{ readonly laid: Laid; readonly x: number; readonly y: number }>
  readonly routes: ReadonlyArray<LevelRoute>
  readonly separators: ReadonlyArray<number>
}

const leafWidth = (n: DiagramNode) =>
  // a child state's label ("child name@version", in the small font) may be wider than its name
  Math.max(96, Math.ceil(n.label.length * CHAR_W) + 36, n.child === undefined ? 0 : Math.ceil(`child ${n.child}`.length * 5.4) + 24)

/** Each real transition once, with the labels of the ones it merges joined by " / ". */
const merged = (tree: DiagramTree) => {
  const out = new Map<string, { from: string; to: string; labels: Array<string>; kind: "transition" | "history" }>()
  for (const e of tree.edges) {
    const key = `${e.from}\u0000${e.to}\u0000${e.kind}`
    const m = out.get(key) ?? { from: e.from, to: e.to, labels: [], kind: e.kind }
    if (e.label !== "") m.labels.push(e.label)
    out.set(key, m)
  }
  return [...out.values()].map((m) => ({ key: `${m.from}\u0000${m.to}\u0000${m.kind}`, from: m.from, to: m.to, kind: m.kind, label: m.labels.join(" / ") }))
}
type Merged = ReturnType<typeof merged>[number]

/** The child of a level (among `ids`) that is `id` or holds it. */
const liftTo = (tree: DiagramTree, ids: ReadonlySet<string>, id: string): string | undefined =>
  ids.has(id) ? id : ancestors(tree, id).find((a) => ids.has(a))

/** Lays out the states of one level and the transitions between them (or inside them). */
const level = (tree: DiagramTree, children: ReadonlyArray<DiagramNode>, initial: ReadonlyArray<string>, edges: ReadonlyArray<Merged>, space: typeof INNER) => {
  const laid = children.map((c) => lay(c, tree, edges))
  const ids = new Set(children.map((c) => c.id))
  const levelEdges: Array<LevelEdge> = []
  for (const e of edges) {
    const a = liftTo(tree, ids, e.from)
    const b = liftTo(tree, ids, e.to)
    if (a === undefined || b === undefined || (a === b && !(e.from === a && e.to === a))) continue
    levelEdges.push({ key: e.key, from: a, to: b, label: e.label })
  }
  const start = initial.map((i) => liftTo(tree, ids, i)).find((i) => i !== undefined)
  const items = laid.map((l) => ({ id: l.node.id, width: l.width, height: l.height, final: l.node.kind === "final" }))
  const result = layoutLevel(items, levelEdges, start, space)
  const inner = laid.map((l) => {
    const box = result.boxes.get(l.node.id)!
    return { laid: l, x: box.x, y: box.y }
  })
  return { result, inner }
}

/** History states sit in the container's name line, at the right (their transitions are drawn dashed). */
const withHistories = (l: Laid, histories: ReadonlyArray<DiagramNode>): Laid => ({
  ...l,
  inner: [
    ...l.inner,
    ...histories.map((h, k) => ({ laid: lay(h), x: l.width - 8 - (histories.length - k) * (HISTORY_D + 6), y: 3 }))
  ]
})

const lay = (node: DiagramNode, tree?: DiagramTree, edges?: ReadonlyArray<Merged>): Laid => {
  const none = { inner: [], routes: [], separators: [] }
  if (node.kind === "history") return { node, width: HISTORY_D, height: HISTORY_D, ...none }
  if (!isContainer(node) || tree === undefined || edges === undefined) return { node, width: leafWidth(node), height: NODE_H, ...none }
  const histories = node.children.filter((c) => c.kind === "history")
  const states = node.children.filter((c) => c.kind !== "history")
  const titleWidth = Math.ceil(node.label.length * CHAR_W) + 28 + histories.length * (HISTORY_D + 6)
  if (node.kind === "parallel") {
    // regions side by side under the name, split by dashed lines
    const inner: Array<{ laid: Laid; x: number; y: number }> = []
    const separators: Array<number> = []
    let x = 0
    let height = 0
    for (const child of states) {
      const laid = lay(child, tree, edges)
      const pad = isContainer(child) ? 0 : REGION_PAD
      if (inner.length > 0) separators.push(x)
      inner.push({ laid, x: x + pad, y: HEADER + pad })
      x += laid.width + 2 * pad
      height = Math.max(height, laid.height + 2 * pad)
    }
    return withHistories({ node, width: Math.max(x, titleWidth), height: HEADER + Math.max(height, NODE_H), inner, routes: [], separators }, histories)
  }
  const { inner, result } = level(tree, states, node.initial, edges, INNER)
  const width = Math.max(result.width, titleWidth)
  const shift = (width - result.width) / 2
  return withHistories({
    node,
    width,
    height: result.height,
    inner: inner.map((i) => ({ ...i, x: i.x + shift })),
    routes: result.routes.map((r) => ({ ...r, points: r.points.map((p) => ({ x: p.x + shift, y: p.y })), labelX: r.labelX + shift })),
    separators: []
  }, histories)
}

/**
 * Places every state and routes every transition: each compound state's children are
 * laid out as a level of their own (inside out), and a transition is routed on the
 * level where its two ends meet, from its real source to its real target.
 *
 * @since 0.1.0
 * @category layout
 */
export const layoutTree = (tree: DiagramTree): Layout => {
  const edges = merged(tree)
  const top = level(tree, tree.roots, tree.initial, edges, TOP)
  const nodes: Array<NodeBox> = []
  const boxes = new Map<string, NodeBox>()
  const routed: Array<{ route: LevelRoute; dx: number; dy: number }> = []
  const place = (l: Laid, x: number, y: number, depth: number, region: boolean) => {
    const box: NodeBox = {
      name: l.node.id,
      label: l.node.label,
      kind: l.node.kind,
      parent: l.node.parent,
      depth,
      x: Math.round(x),
      y: Math.round(y),
      width: l.width,
      height: l.height,
      anyTarget: l.node.anyTarget,
      child: l.node.child,
      separators: l.separators.map((s) => Math.round(x + s)),
      container: isContainer(l.node),
      region,
      history: l.node.history
    }
    boxes.set(box.name, box)
    nodes.push(box)
    for (const route of l.routes) routed.push({ route, dx: x, dy: y })
    for (const i of l.inner) place(i.laid, x + i.x, y + i.y, depth + 1, l.node.kind === "parallel" && isContainer(i.laid.node))
  }
  for (const i of top.inner) place(i.laid, i.x, i.y, 0, false)
  for (const route of top.result.routes) routed.push({ route, dx: 0, dy: 0 })

  const byKey = new Map(edges.map((e) => [e.key, e]))
  const paths: Array<EdgePath> = []
  const done = new Set<string>()
  for (const { route: r, dx, dy } of routed) {
    const e = byKey.get(r.key)!
    done.add(e.key)
    const a = boxes.get(e.from)!
    if (r.self) {
      const x = a.x + a.width
      const y = a.y + a.height / 2
      paths.push({ ...e, d: `M ${x} ${y - 8} C ${x + 44} ${y - 34}, ${x + 44} ${y + 34}, ${x} ${y + 8}`, labelX: x + 40, labelY: y })
      continue
    }
    const points = r.points.map((p) => ({ x: p.x + dx, y: p.y + dy }))
    // the level routes between the boxes that hold the two ends; the curve starts and ends at the ends themselves
    const b = boxes.get(e.to)!
    const [upper, lower] = r.reversed ? [b, a] : [a, b]
    if (upper.name !== (r.reversed ? r.to : r.from)) points[0] = { x: Math.round(upper.x + upper.width / 2), y: upper.y + upper.height }
    if (lower.name !== (r.reversed ? r.from : r.to)) points[points.length - 1] = { x: Math.round(lower.x + lower.width / 2), y: lower.y }
    paths.push({ ...e, d: curve(r.reversed ? [...points].reverse() : points), labelX: r.labelX + dx, labelY: r.labelY + dy })
  }
  // what no level routes: between a state and a state inside it, between parallel regions
  for (const e of edges) {
    if (done.has(e.key)) continue
    paths.push({ ...e, ...direct(boxes.get(e.from)!, boxes.get(e.to)!) })
  }

  const initials = [...tree.initial, ...nodes.flatMap((n) => tree.nodes.get(n.name)!.initial)]
  return {
    width: Math.ceil(Math.max(top.result.width, ...paths.map((p) => p.labelX + p.label.length * 3.5 + 8 + TOP.margin))),
    height: top.result.height,
    nodes,
    edges: paths,
    initials: initials.filter((id) => boxes.has(id))
  }
}

/** A curve between two states no level routes: side to side, or top to bottom. */
const direct = (a: NodeBox, b: NodeBox): { d: string; labelX: number; labelY: number } => {
  const cy = (n: NodeBox) => n.y + n.height / 2
  const inside = b.x >= a.x && b.x + b.width <= a.x + a.width && b.y >= a.y && b.y + b.height <= a.y + a.height
  const outside = a.x >= b.x && a.x + a.width <= b.x + b.width && a.y >= b.y && a.y + a.height <= b.y + b.height
  let p: { x: number; y: number }
  let q: { x: number; y: number }
  if (inside || outside) {
    // from a container's left border to a state inside it, or back
    const [outer, inner] = inside ? [a, b] : [b, a]
    const from = { x: outer.x, y: cy(inner) }
    const to = { x: inner.x, y: cy(inner) }
    ;[p, q] = inside ? [from, to] : [to, from]
  } else if (b.y >= a.y + a.height) {
    p = { x: a.x + a.width / 2, y: a.y + a.height }
    q = { x: b.x + b.width / 2, y: b.y }
  } else if (a.y >= b.y + b.height) {
    p = { x: a.x + a.width / 2, y: a.y }
    q = { x: b.x + b.width / 2, y: b.y + b.height }
  } else {
    const right = b.x >= a.x + a.width
    p = { x: right ? a.x + a.width : a.x, y: cy(a) }
    q = { x: right ? b.x : b.x + b.width, y: cy(b) }
  }
  const mx = Math.round((p.x + q.x) / 2)
  return { d: `M ${Math.round(p.x)} ${Math.round(p.y)} C ${mx} ${Math.round(p.y)}, ${mx} ${Math.round(q.y)}, ${Math.round(q.x)} ${Math.round(q.y)}`, labelX: mx, labelY: Math.round((p.y + q.y) / 2) }
}

/**
 * The layout of a procedure's diagram.
 *
 * @since 0.1.0
 * @category layout
 */
export const layout = (procedure: Procedure.Any): Layout => layoutTree(fromProcedure(procedure))

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * Options of `toSvg`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SvgOptions {
  /** the active state to highlight (class `current`); its enclosing states get the class `active` */
  readonly current?: string | undefined
  /** the active states, when several are (parallel regions); `current` is one of them */
  readonly active?: Iterable<string> | undefined
  /** states to mark as visited (class `visited`); the states enclosing them are marked too */
  readonly visited?: Iterable<string> | undefined
  /** prefix of the ids inside the SVG, so that several diagrams can share a page. @default "pd" */
  readonly idPrefix?: string | undefined
}

const style = `<style>` +
  `.proctor-diagram{font-family:ui-sans-serif,system-ui,sans-serif;font-size:13px}` +
  `.proctor-diagram .edge path{fill:none;stroke:#475569;stroke-width:1.4}` +
  `.proctor-diagram .edge.history path{stroke-dasharray:4 3}` +
  `.proctor-diagram .edge text{fill:#334155;font-size:11px}` +
  `.proctor-diagram .edge rect{fill:#ffffff;opacity:.85}` +
  `.proctor-diagram .node rect{fill:#f8fafc;stroke:#64748b;stroke-width:1.4}` +
  `.proctor-diagram .node.wait rect{fill:#fefce8}` +
  `.proctor-diagram .node.final rect{fill:#f1f5f9}` +
  `.proctor-diagram .node text{fill:#0f172a;text-anchor:middle;dominant-baseline:central}` +
  `.proctor-diagram .node .kind{fill:#64748b;font-size:9px}` +
  `.proctor-diagram .node.visited rect{fill:#dbeafe;stroke:#2563eb}` +
  `.proctor-diagram .node.current rect{fill:#fde68a;stroke:#d97706;stroke-width:3}` +
  // containers: a light box, a bold name at the top left, amber when the configuration is inside
  `.proctor-diagram .node.container>rect{fill:#ffffff;fill-opacity:.55;stroke:#94a3b8;stroke-width:1.4}` +
  `.proctor-diagram .node.region>rect{fill:none;stroke:none}` +
  `.proctor-diagram .node .name{text-anchor:start;font-weight:600}` +
  `.proctor-diagram .node.region .name{font-weight:400;fill:#64748b;font-size:11px}` +
  `.proctor-diagram .node .sep{stroke:#64748b;stroke-width:1.2;stroke-dasharray:6 4}` +
  `.proctor-diagram .node.container.visited>rect{fill:#eff6ff;stroke:#2563eb}` +
  `.proctor-diagram .node.container.active>rect{fill:#fffbeb;fill-opacity:1;stroke:#d97706;stroke-width:2.4}` +
  `.proctor-diagram .node.region.active>rect{fill:none;stroke:none}` +
  `.proctor-diagram .node.region.active .name{fill:#b45309}` +
  `.proctor-diagram .node.history circle{fill:#ffffff;stroke:#64748b;stroke-width:1.4}` +
  `.proctor-diagram .node.history text{font-size:11px;font-weight:600}` +
  `</style>`

const nodeSvg = (n: NodeBox, classes: ReadonlyArray<string>): string => {
  const attrs = `class="${["node", n.kind, ...(n.container ? ["container"] : []), ...(n.region ? ["region"] : []), ...classes].join(" ")}"` +
    (n.parent === undefined ? "" : ` data-parent="${esc(n.parent)}"`) + ` data-state="${esc(n.name)}"`
  if (n.container) {
    const seps = n.separators.map((x) => `<line class="sep" x1="${x}" y1="${n.y + HEADER}" x2="${x}" y2="${n.y + n.height - 6}"/>`).join("")
    return `<g ${attrs}><rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="10"/>${seps}` +
      `<text class="name" x="${n.x + 10}" y="${n.y + 13}">${esc(n.label)}</text></g>`
  }
  if (n.kind === "history") {
    const r = HISTORY_D / 2
    return `<g ${attrs}><circle cx="${n.x + r}" cy="${n.y + r}" r="${r}"/>` +
      `<text x="${n.x + r}" y="${n.y + r}">${n.history === "deep" ? "H*" : "H"}</text></g>`
  }
  const r = n.kind === "final" ? 18 : n.kind === "wait" ? 4 : 8
  const inner = n.kind === "final"
    ? `<rect x="${n.x + 3}" y="${n.y + 3}" width="${n.width - 6}" height="${n.height - 6}" rx="${r - 3}" style="fill:none"/>`
    : ""
  const kind = n.child !== undefined ? `child ${n.child}` : n.kind === "atomic" ? "" : n.kind + (n.anyTarget ? " → any" : "")
  return `<g ${attrs}><rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="${r}"/>${inner}` +
    (kind === ""
      ? `<text x="${n.x + n.width / 2}" y="${n.y + n.height / 2}">${esc(n.label)}</text></g>`
      : `<text x="${n.x + n.width / 2}" y="${n.y + 16}">${esc(n.label)}</text>` +
        `<text class="kind" x="${n.x + n.width / 2}" y="${n.y + 31}">${esc(kind)}</text></g>`)
}

/**
 * The procedure as a standalone SVG document. Each state is a `<g class="node ..."
 * data-state="id">` (with `data-parent="id"` inside a compound or parallel state), so a
 * page can restyle the active configuration and the visited states by toggling the
 * `current` (an active state), `active` (a state enclosing one) and `visited` classes.
 * Containers come first in the document, then the transitions, then the states they hold.
 *
 * @since 0.1.0
 * @category diagrams
 */
export const toSvg = (procedure: Procedure.Any, options?: SvgOptions): string => {
  const tree = fromProcedure(procedure)
  const l = layoutTree(tree)
  const p = (options?.idPrefix ?? "pd").replace(/[^A-Za-z0-9_-]/g, "")
  const active = [...(options?.active ?? []), ...(options?.current === undefined ? [] : [options.current])]
  const config = configuration(tree, active)
  const visitedLeaves = new Set(options?.visited ?? [])
  const visited = configuration(tree, visitedLeaves)
  const parts: Array<string> = []
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="proctor-diagram" viewBox="0 0 ${l.width} ${l.height}" width="${l.width}" height="${l.height}" role="img" aria-label="${esc(procedure.name)} state diagram">`,
    `<title>${esc(procedure.name)}@${procedure.version}</title>`,
    `<defs><marker id="${p}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#475569"/></marker></defs>`,
    style
  )
  const classes = (n: NodeBox) => {
    const container = n.container
    const out: Array<string> = []
    // a container is visited when a state inside it was, and is not active now
    if (container ? visited.has(n.name) && !config.has(n.name) : visitedLeaves.has(n.name)) out.push("visited")
    if (config.has(n.name)) out.push(container ? "active" : "current")
    return out
  }
  const containers = l.nodes.filter((n) => n.container)
  for (const n of containers) parts.push(nodeSvg(n, classes(n)))
  for (const id of l.initials) {
    const init = l.nodes.find((n) => n.name === id)!
    const cx = init.x + init.width / 2
    parts.push(
      `<g class="initial"><circle cx="${cx}" cy="${init.y - 26}" r="6" fill="#0f172a"/>` +
        `<path d="M ${cx} ${init.y - 20} L ${cx} ${init.y - 1}" stroke="#0f172a" stroke-width="1.4" marker-end="url(#${p}-arrow)"/></g>`
    )
  }
  for (const e of l.edges) {
    parts.push(
      `<g class="edge${e.kind === "history" ? " history" : ""}" data-from="${esc(e.from)}" data-to="${esc(e.to)}"><path d="${e.d}" marker-end="url(#${p}-arrow)"/>` +
        (e.label === ""
          ? ""
          : `<rect x="${e.labelX - e.label.length * (LABEL_CHAR_W / 2) - 3}" y="${e.labelY - 8}" width="${e.label.length * LABEL_CHAR_W + 6}" height="15" rx="3"/>` +
            `<text x="${e.labelX}" y="${e.labelY + 4}" text-anchor="middle">${esc(e.label)}</text>`) +
        `</g>`
    )
  }
  for (const n of l.nodes) if (!n.container) parts.push(nodeSvg(n, classes(n)))
  parts.push(`</svg>`)
  return parts.join("\n")
}
