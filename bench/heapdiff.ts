/**
 * Compares two V8 heap snapshots (bench/heapsnapshot.ts) per kind of object: for each
 * (node type, name), how many more objects and bytes (shallow) the second has, divided by
 * N. Closures are named by their function and source position, and the objects that
 * belong to one (its captured variables, a `system / Context`) or to an object (its
 * out-of-object properties and elements) by their owner, so that each closure a run
 * makes can be told apart.
 *
 *   node --import tsx bench/heapdiff.ts before.heapsnapshot after.heapsnapshot 1000 [rows]
 */
import * as fs from "node:fs"

interface Snapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: Array<string>
      readonly node_types: [Array<string>]
      readonly edge_fields: Array<string>
      readonly edge_types: [Array<string>]
      readonly location_fields: Array<string>
    }
  }
  readonly nodes: Array<number>
  readonly edges: Array<number>
  readonly locations: Array<number>
  readonly strings: Array<string>
}

const tally = (file: string) => {
  const s = JSON.parse(fs.readFileSync(file, "utf8")) as Snapshot
  const { edge_fields, edge_types, location_fields, node_fields, node_types } = s.snapshot.meta
  const nf = node_fields.length
  const ef = edge_fields.length
  const lf = location_fields.length
  const [iType, iName, iSize, iEdges] = ["type", "name", "self_size", "edge_count"].map((f) => node_fields.indexOf(f)) as [number, number, number, number]
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) => edge_fields.indexOf(f)) as [number, number, number]
  const types = node_types[0]
  const etypes = edge_types[0]
  const count = s.nodes.length / nf
  const firstEdge = new Int32Array(count + 1)
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e
    e += s.nodes[i * nf + iEdges]! * ef
  }
  firstEdge[count] = s.edges.length
  const edgeTo = (node: number, name: string): number | undefined => {
    for (let e = firstEdge[node]!; e < firstEdge[node + 1]!; e += ef) {
      if (etypes[s.edges[e + eType]!] === "internal" && s.strings[s.edges[e + eName]!] === name) return s.edges[e + eTo]! / nf
    }
    return undefined
  }
  // a closure's script: closure -> shared -> script_or_debug_info, named by its URL
  const scriptOf = (closure: number) => {
    const shared = edgeTo(closure, "shared")
    const script = shared === undefined ? undefined : edgeTo(shared, "script_or_debug_info")
    const url = script === undefined ? "?" : s.strings[s.nodes[script * nf + iName]!]!
    return url.replace(/^.*node_modules\//, "").replace(/^.*\/work\/[^/]+\/[^/]+\//, "").replace(/^file:\/\//, "")
  }
  const loc = new Map<number, string>()
  for (let i = 0; i < s.locations.length; i += lf) {
    const node = s.locations[i]! / nf
    if (types[s.nodes[s.locations[i]! + iType]!] !== "closure") continue
    loc.set(s.locations[i]!, `${scriptOf(node)}:${s.locations[i + 2]! + 1}:${s.locations[i + 3]! + 1}`)
  }
  const nameOf = (node: number): string => {
    const type = types[s.nodes[node * nf + iType]!]!
    const name = s.strings[s.nodes[node * nf + iName]!]!
    if (type === "closure") return `closure ${name || "(anonymous)"} @${loc.get(node * nf) ?? "?"}`
    if (type === "object" && name === "Object") {
      // plain objects: by their first few property names
      const props: Array<string> = []
      for (let e = firstEdge[node]!; e < firstEdge[node + 1]! && props.length < 4; e += ef) {
        if (etypes[s.edges[e + eType]!] === "property") props.push(s.strings[s.edges[e + eName]!]!)
      }
      return `object {${props.join(",")}}`
    }
    return `${type} ${name}`
  }
  // owners: a closure's Context, an object's properties and elements
  const owner = new Map<number, string>()
  for (let i = 0; i < count; i++) {
    const type = types[s.nodes[i * nf + iType]!]!
    if (type !== "closure" && type !== "object") continue
    for (let e = firstEdge[i]!; e < firstEdge[i + 1]!; e += ef) {
      if (etypes[s.edges[e + eType]!] !== "internal") continue
      const edgeName = s.strings[s.edges[e + eName]!]
      if (edgeName !== "context" && edgeName !== "properties" && edgeName !== "elements") continue
      const to = s.edges[e + eTo]! / nf
      if (!owner.has(to)) owner.set(to, `${edgeName} of ${nameOf(i)}`)
    }
  }
  const out = new Map<string, { count: number; size: number }>()
  for (let i = 0; i < count; i++) {
    const key = (owner.get(i) ?? nameOf(i)).slice(0, 110)
    const t = out.get(key) ?? { count: 0, size: 0 }
    t.count++
    t.size += s.nodes[i * nf + iSize]!
    out.set(key, t)
  }
  return out
}

const [a, b, nArg, rowsArg] = process.argv.slice(2)
const n = Number(nArg ?? 1000)
const before = tally(a!)
const after = tally(b!)
const rows: Array<{ key: string; count: number; size: number }> = []
for (const [key, t] of after) {
  const o = before.get(key) ?? { count: 0, size: 0 }
  rows.push({ key, count: (t.count - o.count) / n, size: (t.size - o.size) / n })
}
rows.sort((x, y) => y.size - x.size)
let total = 0
for (const r of rows) total += r.size
console.log(`total ${Math.round(total)} B per execution (shallow sizes, after - before, / ${n})`)
console.log("B/exec\tobj/exec\tname")
for (const r of rows.slice(0, Number(rowsArg ?? 60))) console.log(`${r.size.toFixed(0)}\t${r.count.toFixed(2)}\t${r.key}`)
