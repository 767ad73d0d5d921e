/**
 * The layered layout of one level of a diagram: boxes of given sizes and the transitions
 * between them, placed in layers from the initial box down (a small Sugiyama-style
 * layout: back edges reversed, longest-path layers, virtual points on long edges,
 * barycentre ordering, positions relaxed towards neighbours). `diagram.ts` runs it once
 * per compound state, inside out, and nests the results.
 *
 * @since 0.1.0
 */

/**
 * A box to place.
 *
 * @since 0.1.0
 * @category models
 */
export interface LevelItem {
  readonly id: string
  readonly width: number
  readonly height: number
  /** final states go to the last layer */
  readonly final: boolean
}

/**
 * A transition between two boxes of the level; `key` tells apart several transitions
 * between the same two boxes (from states nested inside them).
 *
 * @since 0.1.0
 * @category models
 */
export interface LevelEdge {
  readonly key: string
  readonly from: string
  readonly to: string
  readonly label: string
}

/**
 * A routed transition: the points of its curve, top to bottom as the layers go, and where
 * its label goes.
 *
 * @since 0.1.0
 * @category models
 */
export interface LevelRoute {
  readonly key: string
  readonly from: string
  readonly to: string
  readonly label: string
  /** it goes up (a back edge): drawn from the last point to the first */
  readonly reversed: boolean
  /** a transition of a box to itself: `points` is empty and `d` is the loop */
  readonly self: boolean
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }>
  readonly labelX: number
  readonly labelY: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LevelBox {
  readonly id: string
  readonly layer: number
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LevelLayout {
  readonly width: number
  readonly height: number
  readonly boxes: ReadonlyMap<string, LevelBox>
  readonly routes: ReadonlyArray<LevelRoute>
}

const H_GAP = 48
const V_GAP = 76
const NODE_H = 40

/** Pixels per character of an edge label (11px font). */
export const LABEL_CHAR_W = 6.6

/**
 * Places `items` (in definition order) and routes `edges`; `start` is the box the
 * layers grow from. `margin` is left around the boxes, `top` above the first layer.
 *
 * @since 0.1.0
 * @category layout
 */
export const layoutLevel = (
  items: ReadonlyArray<LevelItem>,
  edges: ReadonlyArray<LevelEdge>,
  start: string | undefined,
  space: { readonly margin: number; readonly top: number }
): LevelLayout => {
  const byId = new Map(items.map((it) => [it.id, it]))
  const names = items.map((it) => it.id)
  const out = new Map<string, Array<LevelEdge>>(names.map((n) => [n, []]))
  for (const e of edges) if (byId.has(e.from) && byId.has(e.to)) out.get(e.from)!.push(e)

  // 1. back edges, found by a depth-first walk from the initial box
  const first = start !== undefined && byId.has(start) ? start : names[0]
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
  if (first !== undefined) dfs(first)
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
  const isFinal = (n: string) => byId.get(n)!.final
  const lastInner = Math.max(0, ...names.filter((n) => !isFinal(n)).map((n) => layerOf.get(n)!))
  for (const n of names) if (isFinal(n)) layerOf.set(n, Math.max(layerOf.get(n)!, lastInner + 1))
  const layerCount = names.length === 0 ? 0 : Math.max(0, ...layerOf.values()) + 1

  // 3. the layered graph: real boxes, and virtual points on edges longer than one layer
  interface Item { readonly id: string; readonly real: boolean; readonly width: number; readonly height: number; layer: number; order: number; x: number }
  const placed = new Map<string, Item>()
  const layers: Array<Array<Item>> = Array.from({ length: layerCount }, () => [])
  for (const n of topo) {
    const it = byId.get(n)!
    const item: Item = { id: n, real: true, width: it.width, height: it.height, layer: layerOf.get(n)!, order: 0, x: 0 }
    placed.set(n, item)
    layers[item.layer]!.push(item)
  }
  const up = new Map<Item, Array<Item>>()
  const down = new Map<Item, Array<Item>>()
  const link = (a: Item, b: Item) => {
    down.set(a, [...(down.get(a) ?? []), b])
    up.set(b, [...(up.get(b) ?? []), a])
  }
  interface Route { readonly edge: LevelEdge; readonly reversed: boolean; readonly chain: ReadonlyArray<Item> }
  const routes: Array<Route> = []
  let virtual = 0
  for (const [from, list] of out) {
    for (const e of list) {
      if (from === e.to) {
        routes.push({ edge: e, reversed: false, chain: [placed.get(from)!] })
        continue
      }
      const reversed = layerOf.get(e.to)! <= layerOf.get(from)!
      const top = placed.get(reversed ? e.to : from)!
      const bottom = placed.get(reversed ? from : e.to)!
      const chain: Array<Item> = [top]
      for (let l = top.layer + 1; l < bottom.layer; l++) {
        // the first virtual point carries the label: it is as wide as the label
        const labelled = l === (reversed ? bottom.layer - 1 : top.layer + 1) && e.label !== ""
        const width = labelled ? Math.ceil(e.label.length * LABEL_CHAR_W) + 10 : 14
        const v: Item = { id: `~${virtual++}`, real: false, width, height: 0, layer: l, order: 0, x: 0 }
        layers[l]!.push(v)
        chain.push(v)
      }
      chain.push(bottom)
      for (let i = 0; i + 1 < chain.length; i++) link(chain[i]!, chain[i + 1]!)
      routes.push({ edge: e, reversed, chain })
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
      // then right to left, pulling back boxes pushed past their wanted spot
      for (let i = l.length - 2; i >= 0; i--) {
        const it = l[i]!
        const max = l[i + 1]!.x - gapOf(it, l[i + 1]!) - it.width
        it.x = Math.min(it.x, Math.max(wanted[i]!, max))
      }
    }
  }
  const minX = Math.min(...[...layers.flat()].map((it) => it.x))
  for (const it of layers.flat()) it.x += space.margin - minX

  // 6. y positions: each layer as tall as its tallest box (a nested state is taller)
  const layerH = layers.map((l) => Math.max(NODE_H, ...l.map((it) => it.height)))
  const layerTop: Array<number> = []
  for (let l = 0, y = space.top; l < layerCount; l++) {
    layerTop.push(y)
    y += layerH[l]! + V_GAP
  }

  const boxes = new Map<string, LevelBox>()
  for (const it of placed.values()) {
    boxes.set(it.id, { id: it.id, layer: it.layer, x: Math.round(it.x), y: layerTop[it.layer]!, width: it.width, height: it.height })
  }

  // 7. routes: the chain's points, from the upper box's bottom to the lower box's top
  const result: Array<LevelRoute> = []
  for (const r of routes) {
    const e = r.edge
    const a = boxes.get(e.from)!
    if (e.from === e.to) {
      result.push({ ...e, reversed: false, self: true, points: [], labelX: a.x + a.width + 40, labelY: a.y + a.height / 2 })
      continue
    }
    const points = r.chain.map((it, i) => {
      const cx = Math.round(it.x + it.width / 2)
      const y = layerTop[it.layer]!
      if (i === 0) return { x: cx, y: y + it.height }
      if (i === r.chain.length - 1) return { x: cx, y }
      return { x: cx, y: y + layerH[it.layer]! / 2 }
    })
    // spread the exits of one box along its bottom edge
    const head = r.chain[0]!
    const count = (down.get(head) ?? []).length
    if (count > 1) {
      const sorted = [...(down.get(head) ?? [])].sort((p, q) => p.order - q.order)
      const rank = sorted.indexOf(r.chain[1]!)
      points[0] = { x: points[0]!.x + (rank - (count - 1) / 2) * Math.min(22, head.width / (count + 1)), y: points[0]!.y }
    }
    const label = r.chain.length > 2
      ? (r.reversed ? points[points.length - 2]! : points[1]!)
      : { x: (points[0]!.x + points[1]!.x) / 2, y: (points[0]!.y + points[1]!.y) / 2 }
    result.push({ ...e, reversed: r.reversed, self: false, points, labelX: label.x, labelY: label.y })
  }

  const rightmost = Math.max(
    0,
    ...layers.flat().map((it) => it.x + it.width),
    ...result.map((e) => e.labelX + e.label.length * 3.5 + 8)
  )
  return {
    width: Math.ceil(rightmost + space.margin),
    height: layerCount === 0 ? space.top + space.margin : layerTop[layerCount - 1]! + layerH[layerCount - 1]! + space.margin,
    boxes,
    routes: result
  }
}

/**
 * The SVG path of a curve through `points`: vertical tangents at each point, so that it
 * leaves and enters boxes straight.
 *
 * @since 0.1.0
 * @category layout
 */
export const curve = (points: ReadonlyArray<{ readonly x: number; readonly y: number }>): string => {
  let d = `M ${points[0]!.x} ${points[0]!.y}`
  for (let i = 1; i < points.length; i++) {
    const p = points[i - 1]!
    const q = points[i]!
    const my = (p.y + q.y) / 2
    d += ` C ${p.x} ${my}, ${q.x} ${my}, ${q.x} ${q.y}`
  }
  return d
}
