/**
 * A procedure's states and transitions as an SVG picture, laid out in layers from the
 * initial state down (a small Sugiyama-style layout: breadth-first layers, barycentre
 * ordering, straight edges forward and curved edges back). No external renderer.
 * The CLI's `diagram --format svg` and the dashboard use it.
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
  readonly kind: "step" | "wait" | "final"
  readonly layer: number
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
  /** a step whose `next` is a function without `targets`: it may go to any state */
  readonly anyTarget: boolean
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
  state._tag === "Step" ? "step" : state._tag === "Wait" ? "wait" : "final"

/**
 * Positions the states and routes the transitions.
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
      if (!(e.to in procedure.states)) continue
      const labels = merged.get(e.to) ?? []
      if (e.label !== "") labels.push(e.label)
      merged.set(e.to, labels)
    }
    out.set(name, [...merged].map(([to, labels]) => ({ to, label: labels.join(" / ") })))
  }

  // layers: breadth-first distance from the initial state
  const layerOf = new Map<string, number>()
  const order: Array<string> = []
  const start = procedure.initial in procedure.states ? procedure.initial : names[0]
  if (start !== undefined) {
    layerOf.set(start, 0)
    const queue = [start]
    while (queue.length > 0) {
      const n = queue.shift()!
      order.push(n)
      for (const e of out.get(n) ?? []) {
        if (!layerOf.has(e.to)) {
          layerOf.set(e.to, layerOf.get(n)! + 1)
          queue.push(e.to)
        }
      }
    }
  }
  let maxLayer = Math.max(0, ...layerOf.values())
  for (const n of names) {
    if (!layerOf.has(n)) {
      layerOf.set(n, ++maxLayer)
      order.push(n)
    }
  }
  const layers: Array<Array<string>> = Array.from({ length: maxLayer + 1 }, () => [])
  for (const n of order) layers[layerOf.get(n)!]!.push(n)

  // order within layers by the barycentre of predecessors in earlier layers
  const preds = new Map<string, Array<string>>()
  for (const [from, edges] of out) {
    for (const e of edges) {
      if (layerOf.get(from)! < layerOf.get(e.to)!) preds.set(e.to, [...(preds.get(e.to) ?? []), from])
    }
  }
  const position = new Map<string, number>()
  layers.forEach((l) => l.forEach((n, i) => position.set(n, i)))
  for (let sweep = 0; sweep < 2; sweep++) {
    for (let i = 1; i < layers.length; i++) {
      const bary = (n: string) => {
        const ps = preds.get(n) ?? []
        return ps.length === 0 ? position.get(n)! : ps.reduce((a, p) => a + position.get(p)!, 0) / ps.length
      }
      layers[i]!.sort((a, b) => bary(a) - bary(b))
      layers[i]!.forEach((n, j) => position.set(n, j))
    }
  }

  const widthOf = (n: string) => Math.max(96, Math.ceil(n.length * CHAR_W) + 36)
  const rowWidth = (l: ReadonlyArray<string>) => l.reduce((a, n) => a + widthOf(n), 0) + H_GAP * Math.max(0, l.length - 1)
  const inner = Math.max(...layers.map(rowWidth), 120)
  const boxes = new Map<string, NodeBox>()
  layers.forEach((l, i) => {
    let x = MARGIN + (inner - rowWidth(l)) / 2
    const y = TOP + i * (NODE_H + V_GAP)
    for (const n of l) {
      const state = procedure.states[n]!
      boxes.set(n, { name: n, kind: kindOf(state), layer: i, x, y, width: widthOf(n), height: NODE_H, anyTarget: anyTarget.has(n) })
      x += widthOf(n) + H_GAP
    }
  })

  const edges: Array<EdgePath> = []
  let backIndex = 0
  for (const [from, list] of out) {
    const a = boxes.get(from)!
    list.forEach((e, k) => {
      const b = boxes.get(e.to)!
      if (from === e.to) {
        const x = a.x + a.width
        const y = a.y + a.height / 2
        edges.push({ from, to: e.to, label: e.label, d: `M ${x} ${y - 8} C ${x + 44} ${y - 34}, ${x + 44} ${y + 34}, ${x} ${y + 8}`, labelX: x + 40, labelY: y })
      } else if (b.layer > a.layer) {
        // spread the start points along the bottom edge when a node has several exits
        const spread = list.length > 1 ? (k - (list.length - 1) / 2) * Math.min(24, a.width / (list.length + 1)) : 0
        const x1 = a.x + a.width / 2 + spread
        const y1 = a.y + a.height
        const x2 = b.x + b.width / 2
        const y2 = b.y
        const my = (y1 + y2) / 2
        edges.push({
          from,
          to: e.to,
          label: e.label,
          d: `M ${x1} ${y1} C ${x1} ${my}, ${x2} ${my}, ${x2} ${y2}`,
          labelX: (x1 + x2) / 2,
          labelY: b.layer - a.layer === 1 ? my : y1 + V_GAP / 2
        })
      } else {
        // back or sideways edge: leave on the right, bulge out, come in on the right
        const bulge = 40 + 18 * (backIndex++ % 4)
        const x1 = a.x + a.width
        const y1 = a.y + a.height / 2
        const x2 = b.x + b.width
        const y2 = b.y + b.height / 2
        const cx = Math.max(x1, x2) + bulge
        edges.push({ from, to: e.to, label: e.label, d: `M ${x1} ${y1} C ${cx} ${y1}, ${cx} ${y2}, ${x2 + 2} ${y2}`, labelX: cx - 6, labelY: (y1 + y2) / 2 })
      }
    })
  }

  const rightmost = Math.max(...[...boxes.values()].map((b) => b.x + b.width), ...edges.map((e) => e.labelX + e.label.length * 3.5 + 20))
  return {
    width: Math.ceil(Math.max(MARGIN * 2 + inner, rightmost + MARGIN)),
    height: TOP + layers.length * (NODE_H + V_GAP) - V_GAP + MARGIN,
    nodes: [...boxes.values()],
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
    const kind = n.kind + (n.anyTarget ? " → any" : "")
    parts.push(
      `<g class="${cls.join(" ")}" data-state="${esc(n.name)}"><rect x="${n.x}" y="${n.y}" width="${n.width}" height="${n.height}" rx="${r}"/>${inner}` +
        `<text x="${n.x + n.width / 2}" y="${n.y + 16}">${esc(n.name)}</text>` +
        `<text class="kind" x="${n.x + n.width / 2}" y="${n.y + 31}">${esc(kind)}</text></g>`
    )
  }
  parts.push(`</svg>`)
  return parts.join("\n")
}
