/**
 * Property-based tests of the pure statechart algorithm (src/internal/chart/algorithm.ts):
 * random charts (compound, parallel, final and history states, external and internal
 * transitions, targetless ones) × random event sequences. After every microstep the
 * configuration is legal, the plan's `exited`/`entered` steps lead from the old
 * configuration to the new one, exits run inside out before the transitions' content and
 * entries run outside in after it, history records what its kind says (deep: atomic
 * descendants, shallow: children), and the plan is the same when recomputed from the JSON
 * of what a runtime would store. Seeded: replays with `PROCTOR_PROPERTY_SEED=<seed>`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { Plan, Snapshot } from "../src/internal/chart/algorithm.js"
import { planMicrostep, planStart, selectTransitions, transitionsAt } from "../src/internal/chart/algorithm.js"
import type { Chart, StateDefinition } from "../src/internal/chart/model.js"
import { makeChart } from "../src/internal/chart/model.js"

const seed = Number(process.env.PROCTOR_PROPERTY_SEED ?? 20261201)
const events = ["a", "b", "c", "a.x"]

type Def = StateDefinition<string, boolean>
interface Shape {
  readonly kind: "state" | "parallel" | "final"
  readonly history: "none" | "shallow" | "deep"
  readonly children: ReadonlyArray<Shape>
  readonly transitions: ReadonlyArray<{ readonly event: number; readonly target: number; readonly internal: boolean; readonly cond: boolean }>
}

const transition = fc.record({
  event: fc.nat({ max: events.length }), // events.length: targetless when target says so too
  target: fc.nat({ max: 1000 }),
  internal: fc.boolean(),
  cond: fc.boolean()
})
const shape: fc.Arbitrary<Shape> = fc.letrec<{ node: Shape }>((tie) => ({
  node: fc.record({
    kind: fc.constantFrom<Shape["kind"]>("state", "state", "parallel", "final"),
    history: fc.constantFrom<Shape["history"]>("none", "none", "shallow", "deep"),
    children: fc.oneof({ depthSize: "small", withCrossShrink: true }, fc.constant([]), fc.array(tie("node"), { minLength: 1, maxLength: 3 })),
    transitions: fc.array(transition, { maxLength: 3 })
  })
})).node

/** Turns a random shape into a valid chart definition: finals are leaves, targets are real ids. */
const build = (roots: ReadonlyArray<Shape>): Chart<string, boolean> => {
  let n = 0
  const ids: Array<string> = []
  const histories: Array<string> = []
  const pending: Array<{ def: { transitions?: Def["transitions"] }; shape: Shape; id: string }> = []
  const make = (s: Shape): Def => {
    const id = `s${n++}`
    ids.push(id)
    const kind = s.children.length === 0 && s.kind === "parallel" ? "state" : s.children.length > 0 && s.kind === "final" ? "state" : s.kind
    const children: Array<Def> = s.children.map(make)
    if (kind === "state" && children.length > 0 && s.history !== "none") {
      const hid = `h${n++}`
      ids.push(hid)
      histories.push(hid)
      children.push({ id: hid, kind: "history", history: s.history })
    }
    const def: Def & { transitions?: Def["transitions"] } = {
      id,
      kind,
      onEntry: [`enter ${id}`],
      onExit: [`exit ${id}`],
      children
    }
    if (kind !== "final") pending.push({ def, shape: s, id })
    return def
  }
  const children = roots.map(make)
  for (const { def, shape } of pending) {
    ;(def as { transitions?: Def["transitions"] }).transitions = shape.transitions.map((t) => {
      // one transition in five is targetless, one in three aims at a history state when there is one
      const pool = t.target % 3 === 0 && histories.length > 0 ? histories : ids
      return {
        event: t.event === events.length ? undefined : events[t.event],
        target: t.target % 5 === 0 ? [] : [pool[t.target % pool.length]!],
        type: t.internal ? "internal" as const : "external" as const,
        cond: t.cond,
        actions: [`t ${ids.length}`]
      }
    })
  }
  return makeChart({ children })
}

/** The violations of the W3C rules for a legal configuration. */
const illegal = (chart: Chart<string, boolean>, snapshot: Snapshot): Array<string> => {
  const active = new Set(snapshot.configuration.map((id) => chart.byId.get(id)!))
  const out: Array<string> = []
  for (const state of chart.states) {
    const isActive = state.index === 0 || active.has(state.index)
    if (state.kind === "history" && active.has(state.index)) out.push(`history ${state.id} active`)
    if (!isActive) continue
    if (state.parent >= 0 && state.parent !== 0 && !active.has(state.parent)) out.push(`${state.id} active without its parent`)
    const on = state.children.filter((c) => active.has(c)).length
    if (state.kind === "compound" && on !== 1) out.push(`compound ${state.id} has ${on} active children`)
    if (state.kind === "parallel" && on !== state.children.length) out.push(`parallel ${state.id} has ${on} of ${state.children.length} regions active`)
  }
  return out
}

const isInside = (chart: Chart<string, boolean>, state: number, ancestor: number): boolean => {
  for (let p = chart.states[state]!.parent; p >= 0; p = chart.states[p]!.parent) if (p === ancestor) return true
  return false
}

/** Checks a plan against the configuration it starts from (and what it records as history). */
const checkPlan = (chart: Chart<string, boolean>, before: Snapshot, plan: Plan<string>): Array<string> => {
  const out = illegal(chart, plan.next)
  const config = new Set(before.configuration)
  let phase = 0
  let lastExit = Infinity
  let lastEntry = -1
  for (const step of plan.steps) {
    const order = step.kind === "exit" || step.kind === "exited" ? 0 : step.kind === "transition" ? 1 : 2
    if (order < phase) out.push(`step ${step.kind} after a later phase`)
    phase = order
    if (step.kind === "exited") {
      const index = chart.byId.get(step.state)!
      if (index > lastExit) out.push(`exit of ${step.state} is not inside out`)
      lastExit = index
      if (!config.delete(step.state)) out.push(`exited ${step.state}, which was not active`)
    }
    if (step.kind === "entered") {
      const index = chart.byId.get(step.state)!
      if (index < lastEntry) out.push(`entry of ${step.state} is not outside in`)
      lastEntry = index
      // no "already active" check: the Recommendation re-enters the ancestors of a history
      // state's recorded states up to its parent, even inside an internal transition's domain
      // (docs/statecharts.md, "A quirk kept")
      config.add(step.state)
    }
  }
  for (const [h, recorded] of Object.entries(plan.next.history)) {
    const history = chart.states[chart.byId.get(h)!]!
    for (const id of recorded) {
      const state = chart.states[chart.byId.get(id)!]!
      const inside = history.history === "deep"
        ? (state.kind === "atomic" || state.kind === "final") && isInside(chart, state.index, history.parent)
        : state.parent === history.parent
      if (!inside) out.push(`${history.history} history ${h} recorded ${id}`)
    }
  }
  const after = [...config].sort((a, b) => chart.byId.get(a)! - chart.byId.get(b)!)
  if (JSON.stringify(after) !== JSON.stringify(plan.next.configuration)) {
    out.push(`steps lead to [${after.join(", ")}], the snapshot says [${plan.next.configuration.join(", ")}]`)
  }
  return out
}

describe("statechart algorithm properties", () => {
  it("keeps every configuration legal and every plan consistent with its snapshot", () => {
    fc.assert(
      fc.property(fc.array(shape, { minLength: 1, maxLength: 3 }), fc.array(fc.nat({ max: events.length - 1 }), { maxLength: 20 }), (roots, sequence) => {
        const chart = build(roots)
        const start = planStart(chart)
        assert.deepStrictEqual(checkPlan(chart, { configuration: [], history: {} }, start), [])
        let snapshot = start.next
        for (const e of sequence) {
          if (start.halted) break
          // eventless transitions first, as a macrostep would (bounded: charts may loop)
          for (let i = 0; i < 5; i++) {
            const eventless = selectTransitions(chart, snapshot, undefined, (t) => t.cond === true)
            if (eventless.length === 0) break
            const plan = planMicrostep(chart, snapshot, eventless)
            assert.deepStrictEqual(checkPlan(chart, snapshot, plan), [])
            snapshot = plan.next
          }
          const selected = selectTransitions(chart, snapshot, events[e]!, (t) => t.cond === true)
          const plan = planMicrostep(chart, snapshot, selected)
          assert.deepStrictEqual(checkPlan(chart, snapshot, plan), [])
          const stored = JSON.parse(JSON.stringify({ snapshot, transitions: plan.transitions }))
          assert.deepStrictEqual(planMicrostep(chart, stored.snapshot, transitionsAt(chart, stored.transitions)), plan)
          snapshot = plan.next
          if (plan.halted) break
        }
      }),
      { seed, numRuns: 500 }
    )
  })
})
