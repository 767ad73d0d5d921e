/**
 * The diagram of nested procedures, in every form the front ends show: the tree they all
 * draw from, the SVG (nested boxes, parallel regions, the active configuration), Mermaid
 * and the HTTP API's states.
 */
import { assert, describe, it } from "@effect/vitest"
import { Procedure } from "proctor"
import * as Describe from "../src/internal/describe.js"
import * as Diagram from "../src/internal/diagram.js"
import * as Tree from "../src/internal/diagramTree.js"
import { Approval } from "./fixtures/ops.js"
import { Charted, Nested, Release } from "./fixtures/nested.js"

/** each `<g class="node ...">` of an SVG: its classes, parent and first rect or circle */
const svgNodes = (svg: string) => {
  const out = new Map<string, { classes: ReadonlyArray<string>; parent: string | undefined; x: number; y: number; width: number; height: number }>()
  const re = /<g class="([^"]*)"(?: data-parent="([^"]*)")? data-state="([^"]*)"><(?:rect x="([\d.-]+)" y="([\d.-]+)" width="([\d.]+)" height="([\d.]+)"|circle cx="([\d.-]+)" cy="([\d.-]+)" r="([\d.]+)")/g
  for (const m of svg.matchAll(re)) {
    const [, classes, parent, name, x, y, w, h, cx, cy, r] = m
    out.set(name!, {
      classes: classes!.split(" "),
      parent,
      ...(x !== undefined
        ? { x: Number(x), y: Number(y), width: Number(w), height: Number(h) }
        : { x: Number(cx) - Number(r), y: Number(cy) - Number(r), width: 2 * Number(r), height: 2 * Number(r) })
    })
  }
  return out
}

type Box = { readonly x: number; readonly y: number; readonly width: number; readonly height: number }
const contains = (outer: Box, inner: Box) =>
  inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height
const overlap = (a: Box, b: Box) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height

describe("the diagram tree", () => {
  it("nests compound states by full path, with their initial states, histories and transitions", () => {
    const tree = Tree.fromProcedure(Nested)
    assert.deepStrictEqual(tree.roots.map((n) => n.id), ["plan", "rollout", "done", "aborted"])
    const rollout = tree.nodes.get("rollout")!
    assert.strictEqual(rollout.kind, "compound")
    assert.deepStrictEqual(rollout.children.map((n) => n.id), ["rollout.resume", "rollout.db", "rollout.api", "rollout.verify", "rollout.finished"])
    assert.deepStrictEqual(rollout.initial, ["rollout.db"])
    assert.deepStrictEqual(rollout.accepts, ["Abort"])
    assert.strictEqual(tree.nodes.get("rollout.api.push")!.parent, "rollout.api")
    assert.strictEqual(tree.nodes.get("rollout.api.push")!.label, "push")
    assert.strictEqual(tree.nodes.get("rollout.resume")!.history, "deep")
    const edges = tree.edges.map((e) => `${e.from} -> ${e.to}${e.label === "" ? "" : ` (${e.label})`}${e.kind === "history" ? " [history]" : ""}`)
    for (const e of ["rollout -> aborted (Abort)", "rollout -> done (done)", "rollout.resume -> rollout.db [history]", "rollout.api.push -> rollout.verify"]) {
      assert.include(edges, e)
    }
  })

  it("the active configuration is the active states and all their ancestors", () => {
    const tree = Tree.fromProcedure(Nested)
    assert.deepStrictEqual([...Tree.configuration(tree, ["rollout.api.push"])].sort(), ["rollout", "rollout.api", "rollout.api.push"])
    assert.deepStrictEqual([...Tree.configuration(tree, ["plan"])], ["plan"])
    const chart = Tree.fromProcedure(Charted)
    assert.deepStrictEqual([...Tree.configuration(chart, ["db.done", "web.ship"])].sort(), ["chart", "db", "db.done", "deploy", "web", "web.ship"])
  })

  it("a statechart state holds the chart's states; a parallel state's children are its regions", () => {
    const tree = Tree.fromProcedure(Charted)
    const chart = tree.nodes.get("chart")!
    assert.strictEqual(chart.kind, "chart")
    // the chart's top-level final is the procedure's final state: drawn once, at the top
    assert.deepStrictEqual(tree.roots.map((n) => n.id), ["chart", "cancelled"])
    assert.deepStrictEqual(chart.children.map((n) => n.id), ["deploy"])
    assert.deepStrictEqual(chart.initial, ["deploy"])
    assert.strictEqual(tree.nodes.get("web.ship")!.runsIn, "chart")
    assert.strictEqual(tree.nodes.get("deploy")!.kind, "parallel")
    assert.deepStrictEqual(tree.nodes.get("deploy")!.children.map((n) => n.id), ["db", "web"])
    assert.strictEqual(tree.nodes.get("web.ship")!.kind, "atomic")
    assert.include(tree.edges.map((e) => `${e.from} -> ${e.to}: ${e.label}`), "deploy -> cancelled: cancel")
  })
})

describe("a parallel state (Procedure.parallel)", () => {
  it("holds its regions, each with its states named in the region", () => {
    const tree = Tree.fromProcedure(Release)
    const rollout = tree.nodes.get("rollout")!
    assert.strictEqual(rollout.kind, "parallel")
    assert.deepStrictEqual(rollout.children.map((n) => n.id), ["rollout.db", "rollout.web"])
    assert.deepStrictEqual(tree.nodes.get("rollout.web")!.initial, ["rollout.web.bundle"])
    assert.strictEqual(tree.nodes.get("rollout.web.approve")!.runsIn, "region")
    const edges = tree.edges.map((e) => `${e.from} -> ${e.to}${e.label === "" ? "" : ` (${e.label})`}`)
    for (const e of ["rollout -> live", "rollout.web.bundle -> rollout.web.approve", "rollout.web.approve -> rollout.web.done (Approve)"]) {
      assert.include(edges, e)
    }
    const nodes = svgNodes(Diagram.toSvg(Release, { current: "rollout", active: ["rollout.web.approve", "rollout.db.done"] }))
    assert.isTrue(contains(nodes.get("rollout")!, nodes.get("rollout.web.approve")!))
    assert.include(nodes.get("rollout")!.classes, "active")
    assert.include(nodes.get("rollout.web.approve")!.classes, "current")
    assert.include(nodes.get("rollout.db.done")!.classes, "current")
  })
})

describe("the SVG diagram", () => {
  it("draws compound states as boxes that hold their children, without overlaps", () => {
    const nodes = svgNodes(Diagram.toSvg(Nested))
    const tree = Tree.fromProcedure(Nested)
    assert.strictEqual(nodes.size, tree.nodes.size)
    for (const [name, box] of nodes) {
      const node = tree.nodes.get(name)!
      assert.strictEqual(box.parent, node.parent, name)
      if (box.parent !== undefined) assert.isTrue(contains(nodes.get(box.parent)!, box), `${name} inside ${box.parent}`)
      // siblings do not overlap
      for (const [other, b] of nodes) {
        if (other !== name && b.parent === box.parent) assert.isFalse(overlap(box, b), `${name} and ${other}`)
      }
    }
    assert.include(nodes.get("rollout")!.classes, "compound")
    assert.include(nodes.get("rollout.resume")!.classes, "history")
  })

  it("highlights the active state and every state holding it; marks visited states and their containers", () => {
    const nodes = svgNodes(Diagram.toSvg(Nested, { current: "rollout.api.push", visited: ["plan", "rollout.db"] }))
    assert.include(nodes.get("rollout.api.push")!.classes, "current")
    assert.include(nodes.get("rollout.api")!.classes, "active")
    assert.include(nodes.get("rollout")!.classes, "active")
    assert.notInclude(nodes.get("rollout")!.classes, "visited")
    assert.notInclude(nodes.get("rollout.api.build")!.classes, "current")
    assert.include(nodes.get("plan")!.classes, "visited")
    assert.include(nodes.get("rollout.db")!.classes, "visited")
    const after = svgNodes(Diagram.toSvg(Nested, { current: "done", visited: ["rollout.db"] }))
    assert.include(after.get("rollout")!.classes, "visited")
    assert.notInclude(after.get("rollout")!.classes, "active")
  })

  it("draws a parallel state's regions side by side, split by dashed lines, with each region's active state", () => {
    const svg = Diagram.toSvg(Charted, { active: ["db.done", "web.ship"] })
    const nodes = svgNodes(svg)
    const deploy = nodes.get("deploy")!
    const [db, web] = [nodes.get("db")!, nodes.get("web")!]
    assert.include(deploy.classes, "parallel")
    assert.include(db.classes, "region")
    assert.isTrue(contains(deploy, db) && contains(deploy, web))
    assert.isTrue(db.x + db.width <= web.x, "the regions are side by side")
    const line = svg.match(/<line class="sep" x1="([\d.]+)" y1="([\d.]+)" x2="([\d.]+)" y2="([\d.]+)"/)!
    assert.isTrue(Number(line[1]) >= db.x + db.width && Number(line[1]) <= web.x, "the dashed line is between the regions")
    for (const s of ["db.done", "web.ship"]) assert.include(nodes.get(s)!.classes, "current")
    for (const s of ["chart", "deploy", "db", "web"]) assert.include(nodes.get(s)!.classes, "active")
    assert.notInclude(nodes.get("web.build")!.classes, "current")
    assert.isTrue(contains(web, nodes.get("web.ship")!))
  })

  it("draws a flat procedure as before: no containers, every state at the top", () => {
    const svg = Diagram.toSvg(Approval, { current: "review" })
    const nodes = svgNodes(svg)
    assert.deepStrictEqual([...nodes.values()].filter((n) => n.parent !== undefined), [])
    assert.notInclude(svg, "data-parent")
    assert.deepStrictEqual(nodes.get("review")!.classes, ["node", "wait", "current"])
    // the layout of a flat procedure is unchanged: the initial state at the top, finals in the last layer
    assert.strictEqual(nodes.get("submit")!.y, 36)
    const finals = [...nodes.values()].filter((n) => n.classes.includes("final"))
    assert.isTrue(finals.every((f) => f.y === Math.max(...[...nodes.values()].map((n) => n.y))))
  })
})

describe("the Mermaid diagram", () => {
  it("writes compound states as blocks, with their initial states and the configuration's classes", () => {
    const mermaid = Procedure.toMermaid(Nested, { current: "rollout.api.push", visited: ["plan"] })
    const expected = [
      "  state rollout {",
      "    [*] --> rollout_db",
      "    state \"H*\" as rollout_resume",
      "    rollout_resume --> rollout_db",
      "    state \"api\" as rollout_api {",
      "      [*] --> rollout_api_build",
      "      state \"push\" as rollout_api_push",
      // a transition is written in the innermost block holding both its ends
      "    }",
      "    rollout_api_push --> rollout_verify"
    ]
    assert.include(mermaid, "  plan --> rollout\n")
    let at = 0
    for (const line of expected) {
      const i = mermaid.indexOf(`${line}\n`, at)
      assert.isAbove(i, -1, `${line} after ${at}`)
      at = i
    }
    assert.include(mermaid, "  rollout --> aborted: Abort")
    assert.include(mermaid, "    rollout_finished --> [*]")
    assert.include(mermaid, "class rollout_api_push current")
    assert.include(mermaid, "class rollout_api active")
    assert.include(mermaid, "class rollout active")
    assert.include(mermaid, "class plan visited")
  })

  it("splits a parallel state's regions with --", () => {
    const mermaid = Procedure.toMermaid(Charted, { active: ["db.done", "web.ship"] })
    assert.match(mermaid, /state deploy \{\n\s+state db \{[\s\S]*\n\s+\}\n\s+--\n\s+state web \{/)
    assert.include(mermaid, "deploy --> cancelled: cancel")
    assert.include(mermaid, "class db_done current")
    assert.include(mermaid, "class web_ship current")
  })
})

describe("the HTTP API's states", () => {
  it("name each state's parent and children, a compound state's initial state and a history's kind", () => {
    const info = Describe.describe(Nested)
    const state = (name: string) => info.states.find((s) => s.name === name)!
    assert.deepStrictEqual(info.states.map((s) => s.name), [
      "plan", "rollout", "rollout.resume", "rollout.db", "rollout.api", "rollout.api.build", "rollout.api.push", "rollout.verify",
      "rollout.finished", "done", "aborted"
    ])
    assert.deepStrictEqual(state("rollout").children, ["rollout.resume", "rollout.db", "rollout.api", "rollout.verify", "rollout.finished"])
    assert.strictEqual(state("rollout").initial, "rollout.db")
    assert.strictEqual(state("rollout").kind, "compound")
    assert.deepStrictEqual(state("rollout").edges, [{ to: "aborted", label: "Abort" }, { to: "done", label: "done" }])
    assert.strictEqual(state("rollout.api.push").parent, "rollout.api")
    assert.isUndefined(state("plan").parent)
    assert.strictEqual(state("rollout.resume").history, "deep")
    assert.strictEqual(state("rollout.verify").kind, "wait")
    // a flat procedure's states have no parent nor children
    assert.isTrue(Describe.describe(Approval).states.every((s) => s.parent === undefined && s.children === undefined))
  })
})
