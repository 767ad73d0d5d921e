/**
 * A procedure's diagram as Mermaid `stateDiagram-v2` text (`Procedure.toMermaid`): compound
 * states as `state X { ... }` blocks, a parallel state's regions split by `--`, the
 * active configuration and the visited states as classes. Drawn from the same tree as
 * the SVG (`diagramTree.ts`).
 *
 * @since 0.1.0
 */
import type * as Procedure from "../Procedure.js"
import type { DiagramEdge, DiagramNode, DiagramTree } from "./diagramTree.js"
import { ancestors, configuration, fromProcedure, isContainer } from "./diagramTree.js"

const mermaidId = (name: string) => name.replace(/[^A-Za-z0-9_]/g, "_")

/**
 * Options of `toMermaid`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MermaidOptions {
  /** the active state (class `current`); the states enclosing it get the class `active` */
  readonly current?: string | undefined
  /** the active states, when several are (parallel regions) */
  readonly active?: Iterable<string> | undefined
  /** states to mark as visited (class `visited`) */
  readonly visited?: Iterable<string> | undefined
}

/** The innermost container holding both ends of an edge (`undefined`: the top). */
const ownerOf = (tree: DiagramTree, e: DiagramEdge): string | undefined => {
  const outer = new Set(ancestors(tree, e.from))
  return ancestors(tree, e.to).find((a) => outer.has(a))
}

const edgeLine = (e: DiagramEdge) =>
  `${mermaidId(e.from)} --> ${mermaidId(e.to)}${e.label === "" ? "" : `: ${e.label}`}`

/**
 * The procedure as a Mermaid `stateDiagram-v2`.
 *
 * @since 0.1.0
 * @category diagrams
 */
export const toMermaid = (procedure: Procedure.Any, options?: MermaidOptions): string => {
  const tree = fromProcedure(procedure)
  const owned = new Map<string | undefined, Array<DiagramEdge>>()
  for (const e of tree.edges) {
    const owner = ownerOf(tree, e)
    owned.set(owner, [...(owned.get(owner) ?? []), e])
  }
  const lines = ["stateDiagram-v2"]
  const block = (owner: string | undefined, children: ReadonlyArray<DiagramNode>, initial: ReadonlyArray<string>, indent: string) => {
    for (const i of initial) lines.push(`${indent}[*] --> ${mermaidId(i)}`)
    const edges = owned.get(owner) ?? []
    children.forEach((node, index) => {
      if (index > 0 && owner !== undefined && tree.nodes.get(owner)!.kind === "parallel") lines.push(`${indent}--`)
      const id = mermaidId(node.id)
      const label = node.kind === "history" ? (node.history === "deep" ? "H*" : "H") : node.label
      if (isContainer(node)) {
        lines.push(`${indent}state ${id === label ? id : `"${label}" as ${id}`} {`)
        block(node.id, node.children, node.initial, `${indent}  `)
        lines.push(`${indent}}`)
      } else if (id !== label) {
        lines.push(`${indent}state "${label}" as ${id}`)
      } else if (owner !== undefined) {
        // a state in a block is declared there, so that Mermaid draws it inside
        lines.push(`${indent}${id}`)
      }
      if (node.child !== undefined) lines.push(`${indent}${id}: ${node.label} (child ${node.child})`)
      if (node.anyTarget) lines.push(`${indent}${id} --> ${id}: next (any state)`)
      // each edge once, after the state it leaves (or the state holding that one)
      for (const e of edges) if (e.from === node.id || ancestors(tree, e.from).includes(node.id)) lines.push(`${indent}${edgeLine(e)}`)
      if (node.kind === "final") lines.push(`${indent}${id} --> [*]`)
    })
  }
  block(undefined, tree.roots, tree.initial, "  ")

  const config = configuration(tree, [...(options?.active ?? []), ...(options?.current === undefined ? [] : [options.current])])
  const visited = new Set(options?.visited ?? [])
  for (const c of config) visited.delete(c)
  const current = [...config].filter((id) => !isContainer(tree.nodes.get(id)!))
  const active = [...config].filter((id) => isContainer(tree.nodes.get(id)!))
  if (visited.size > 0) {
    lines.push("  classDef visited fill:#dbeafe,stroke:#2563eb")
    for (const v of visited) lines.push(`  class ${mermaidId(v)} visited`)
  }
  if (current.length > 0) {
    lines.push("  classDef current fill:#fde68a,stroke:#d97706,stroke-width:3px")
    for (const c of current) lines.push(`  class ${mermaidId(c)} current`)
  }
  if (active.length > 0) {
    lines.push("  classDef active fill:#fffbeb,stroke:#d97706,stroke-width:2px")
    for (const a of active) lines.push(`  class ${mermaidId(a)} active`)
  }
  return lines.join("\n")
}
