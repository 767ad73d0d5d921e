/**
 * The SCXML 1.0 algorithm (W3C Recommendation, Appendix D), pure. Given a chart, a
 * snapshot (the active configuration and the recorded history) and an event, it selects
 * the optimal enabled transition set; given that set, it returns a microstep as a PLAN:
 * the next snapshot and the ordered steps that lead to it (exit content from the inside
 * out, transition content, entry content from the outside in, document order within a
 * level, `done.state.*` events where the algorithm raises them). Nothing is executed here:
 * the caller runs the steps one by one (and may commit after each), so a crash can resume
 * a microstep without running a committed step twice. Guards are evaluated through a
 * callback, because their value depends on a data model this module never sees.
 */
import { Data } from "effect"
import type { Chart, ChartState, ChartTransition } from "./model.js"
import { ChartError, matchesEvent } from "./model.js"

/** Plain, serialisable state of a chart: active state ids and history values, both in document order. */
export interface Snapshot {
  readonly configuration: ReadonlyArray<string>
  readonly history: Readonly<Record<string, ReadonlyArray<string>>>
}

/** One step of a microstep, in the order it must run. */
export type PlanStep<A> =
  /** Run an `onexit` block of `state` (the state is still active while it runs). */
  | { readonly kind: "exit"; readonly state: string; readonly action: A }
  /** `state` has left the configuration. */
  | { readonly kind: "exited"; readonly state: string }
  /** Run a block of a selected transition's content. */
  | { readonly kind: "transition"; readonly source: string; readonly transition: number; readonly action: A }
  /** `state` has joined the configuration (before its `onentry` content runs). */
  | { readonly kind: "entered"; readonly state: string }
  /** Run an `onentry` block of `state`. */
  | { readonly kind: "entry"; readonly state: string; readonly action: A }
  /** Run the content of `state`'s `<initial>` transition or of its history state's default transition. */
  | { readonly kind: "initial"; readonly state: string; readonly action: A }
  /** Raise the internal event `done.state.<state>`; `final` is the final state whose entry caused it. */
  | { readonly kind: "done"; readonly state: string; readonly final: string }

export interface Plan<A> {
  /** The selected transitions' indices (`ChartTransition.index`), in the order they were selected. */
  readonly transitions: ReadonlyArray<number>
  readonly steps: ReadonlyArray<PlanStep<A>>
  readonly next: Snapshot
  /** A top-level final state was entered: the chart is done. */
  readonly halted: boolean
}

export const emptySnapshot: Snapshot = { configuration: [], history: {} }

type Any<A> = Chart<A, unknown>

const byOrder = (a: number, b: number) => a - b

const isDescendant = <A>(chart: Any<A>, state: number, ancestor: number): boolean => {
  for (let p = chart.states[state]!.parent; p >= 0; p = chart.states[p]!.parent) if (p === ancestor) return true
  return false
}

/** Proper ancestors from the parent upwards, stopping before `upTo` (exclusive). */
const properAncestors = <A>(chart: Any<A>, state: number, upTo: number): Array<number> => {
  const out: Array<number> = []
  for (let p = chart.states[state]!.parent; p >= 0 && p !== upTo; p = chart.states[p]!.parent) out.push(p)
  return out
}

const isAtomic = (s: ChartState<unknown, unknown>) => s.kind === "atomic" || s.kind === "final"

const toIndices = <A>(chart: Any<A>, ids: ReadonlyArray<string>): Array<number> =>
  ids.map((id) => {
    const index = chart.byId.get(id)
    if (index === undefined) {
      throw new ChartError({ state: id, reason: "the snapshot names this state, which the chart does not have (was the chart changed since the snapshot was taken?)" })
    }
    return index
  })

interface Work<A, G> {
  readonly chart: Chart<A, G>
  readonly configuration: Set<number>
  readonly history: Map<number, ReadonlyArray<number>>
}

const load = <A, G>(chart: Chart<A, G>, snapshot: Snapshot): Work<A, G> => ({
  chart,
  configuration: new Set(toIndices(chart, snapshot.configuration)),
  history: new Map(Object.entries(snapshot.history).map(([id, states]) => [toIndices(chart, [id])[0]!, toIndices(chart, states)]))
})

const effectiveTargets = <A, G>(w: Work<A, G>, t: ChartTransition<A, G>): Set<number> => {
  const out = new Set<number>()
  for (const s of t.targets) {
    const state = w.chart.states[s]!
    if (state.kind !== "history") out.add(s)
    else {
      const recorded = w.history.get(s)
      if (recorded !== undefined) for (const r of recorded) out.add(r)
      else for (const r of effectiveTargets(w, state.initial!)) out.add(r)
    }
  }
  return out
}

const findLCCA = <A, G>(w: Work<A, G>, states: ReadonlyArray<number>): number => {
  const [head, ...tail] = states
  for (const anc of properAncestors(w.chart, head!, -1)) {
    const kind = w.chart.states[anc]!.kind
    if ((kind === "compound" || anc === 0) && tail.every((s) => isDescendant(w.chart, s, anc))) return anc
  }
  return 0
}

/** The state whose descendants the transition exits and enters; undefined for a targetless one. */
const transitionDomain = <A, G>(w: Work<A, G>, t: ChartTransition<A, G>): number | undefined => {
  const targets = effectiveTargets(w, t)
  if (targets.size === 0) return undefined
  const source = w.chart.states[t.source]!
  if (
    t.type === "internal" && (source.kind === "compound" || source.index === 0) &&
    [...targets].every((s) => isDescendant(w.chart, s, t.source))
  ) return t.source
  return findLCCA(w, [t.source, ...targets])
}

const exitSet = <A, G>(w: Work<A, G>, transitions: ReadonlyArray<ChartTransition<A, G>>): Set<number> => {
  const out = new Set<number>()
  for (const t of transitions) {
    if (t.targets.length === 0) continue
    const domain = transitionDomain(w, t)
    if (domain === undefined) continue
    for (const s of w.configuration) if (isDescendant(w.chart, s, domain)) out.add(s)
  }
  return out
}

/** The transitions enabled by `event` (undefined: the eventless ones), with conflicts removed. */
export const selectTransitions = <A, G>(
  chart: Chart<A, G>,
  snapshot: Snapshot,
  event: string | undefined,
  cond: (transition: ChartTransition<A, G>) => boolean
): ReadonlyArray<ChartTransition<A, G>> => {
  const w = load(chart, snapshot)
  const enabled: Array<ChartTransition<A, G>> = []
  const atomic = [...w.configuration].filter((s) => isAtomic(chart.states[s]!)).sort(byOrder)
  for (const s of atomic) {
    for (const state of [s, ...properAncestors(chart, s, -1)]) {
      const found = chart.states[state]!.transitions.find((t) =>
        (event === undefined ? t.events.length === 0 : matchesEvent(t.events, event)) &&
        (t.cond === undefined || cond(t))
      )
      if (found !== undefined) {
        if (!enabled.includes(found)) enabled.push(found)
        break
      }
    }
  }
  return removeConflicts(w, enabled)
}

const removeConflicts = <A, G>(w: Work<A, G>, enabled: ReadonlyArray<ChartTransition<A, G>>) => {
  let filtered: Array<ChartTransition<A, G>> = []
  for (const t1 of enabled) {
    let preempted = false
    const toRemove = new Set<ChartTransition<A, G>>()
    const exit1 = exitSet(w, [t1])
    for (const t2 of filtered) {
      const exit2 = exitSet(w, [t2])
      if ([...exit1].some((s) => exit2.has(s))) {
        if (isDescendant(w.chart, t1.source, t2.source)) toRemove.add(t2)
        else {
          preempted = true
          break
        }
      }
    }
    if (!preempted) {
      filtered = filtered.filter((t) => !toRemove.has(t))
      filtered.push(t1)
    }
  }
  return filtered
}

interface Entry<A, G> {
  readonly toEnter: Set<number>
  readonly defaultEntry: Set<number>
  readonly historyContent: Map<number, ReadonlyArray<A>>
  readonly w: Work<A, G>
}

const addDescendants = <A, G>(e: Entry<A, G>, s: number): void => {
  const state = e.w.chart.states[s]!
  if (state.kind === "history") {
    const recorded = e.w.history.get(s)
    const targets = recorded ?? state.initial!.targets
    if (recorded === undefined) e.historyContent.set(state.parent, state.initial!.actions)
    for (const t of targets) addDescendants(e, t)
    for (const t of targets) addAncestors(e, t, state.parent)
    return
  }
  e.toEnter.add(s)
  if (state.kind === "compound") {
    e.defaultEntry.add(s)
    for (const t of state.initial!.targets) addDescendants(e, t)
    for (const t of state.initial!.targets) addAncestors(e, t, s)
  } else if (state.kind === "parallel") addRegions(e, state)
}

const addRegions = <A, G>(e: Entry<A, G>, state: ChartState<A, G>) => {
  for (const child of state.children) {
    if (![...e.toEnter].some((s) => isDescendant(e.w.chart, s, child))) addDescendants(e, child)
  }
}

const addAncestors = <A, G>(e: Entry<A, G>, s: number, upTo: number): void => {
  for (const anc of properAncestors(e.w.chart, s, upTo)) {
    if (anc === 0) continue
    e.toEnter.add(anc)
    const state = e.w.chart.states[anc]!
    if (state.kind === "parallel") addRegions(e, state)
  }
}

const isInFinalState = <A, G>(w: Work<A, G>, config: ReadonlySet<number>, s: number): boolean => {
  const state = w.chart.states[s]!
  if (state.kind === "compound") return state.children.some((c) => w.chart.states[c]!.kind === "final" && config.has(c))
  if (state.kind === "parallel") return state.children.every((c) => isInFinalState(w, config, c))
  return false
}

/** Plans the microstep that takes `transitions` (from `selectTransitions`, or the chart's initial entry). */
export const planMicrostep = <A, G>(
  chart: Chart<A, G>,
  snapshot: Snapshot,
  transitions: ReadonlyArray<ChartTransition<A, G>>
): Plan<A> => {
  const w = load(chart, snapshot)
  const steps: Array<PlanStep<A>> = []
  const id = (s: number) => chart.states[s]!.id

  // exit: record history for every exited state first, then exit from the inside out
  const exiting = [...exitSet(w, transitions)].sort((a, b) => b - a)
  for (const s of exiting) {
    for (const h of chart.states[s]!.histories) {
      const deep = chart.states[h]!.history === "deep"
      w.history.set(h, [...w.configuration].filter((c) =>
        deep ? isAtomic(chart.states[c]!) && isDescendant(chart, c, s) : chart.states[c]!.parent === s
      ).sort(byOrder))
    }
  }
  for (const s of exiting) {
    for (const action of chart.states[s]!.onExit) steps.push({ kind: "exit", state: id(s), action })
    steps.push({ kind: "exited", state: id(s) })
    w.configuration.delete(s)
  }

  for (const t of transitions) {
    for (const action of t.actions) steps.push({ kind: "transition", source: id(t.source), transition: t.index, action })
  }

  const e: Entry<A, G> = { toEnter: new Set(), defaultEntry: new Set(), historyContent: new Map(), w }
  for (const t of transitions) {
    for (const s of t.targets) addDescendants(e, s)
    const domain = transitionDomain(w, t)
    for (const s of effectiveTargets(w, t)) addAncestors(e, s, domain ?? -1)
  }
  let halted = false
  for (const s of [...e.toEnter].sort(byOrder)) {
    const state = chart.states[s]!
    w.configuration.add(s)
    steps.push({ kind: "entered", state: state.id })
    for (const action of state.onEntry) steps.push({ kind: "entry", state: state.id, action })
    if (e.defaultEntry.has(s)) for (const action of state.initial!.actions) steps.push({ kind: "initial", state: state.id, action })
    for (const action of e.historyContent.get(s) ?? []) steps.push({ kind: "initial", state: state.id, action })
    if (state.kind !== "final") continue
    if (state.parent === 0) {
      halted = true
      continue
    }
    const parent = chart.states[state.parent]!
    steps.push({ kind: "done", state: parent.id, final: state.id })
    const grandparent = chart.states[parent.parent]
    if (grandparent?.kind === "parallel" && grandparent.children.every((c) => isInFinalState(w, w.configuration, c))) {
      steps.push({ kind: "done", state: grandparent.id, final: state.id })
    }
  }

  return {
    transitions: transitions.map((t) => t.index),
    steps,
    next: snapshotOf(w),
    halted
  }
}

const snapshotOf = <A, G>(w: Work<A, G>): Snapshot => ({
  configuration: [...w.configuration].sort(byOrder).map((s) => w.chart.states[s]!.id),
  history: Object.fromEntries(
    [...w.history].sort(([a], [b]) => a - b).map(([h, states]) => [w.chart.states[h]!.id, states.map((s) => w.chart.states[s]!.id)])
  )
})

/** Plans leaving every active state (from the inside out), when a session ends or is cancelled. */
export const planExit = <A, G>(chart: Chart<A, G>, snapshot: Snapshot): ReadonlyArray<PlanStep<A>> =>
  toIndices(chart, snapshot.configuration).sort((a, b) => b - a).flatMap((s) => {
    const state = chart.states[s]!
    return [...state.onExit.map((action): PlanStep<A> => ({ kind: "exit", state: state.id, action })), { kind: "exited", state: state.id }]
  })

/** Plans the chart's first microstep: entering its initial configuration from nothing. */
export const planStart = <A, G>(chart: Chart<A, G>): Plan<A> => planMicrostep(chart, emptySnapshot, [chart.states[0]!.initial!])

/** Looks selected transitions up again by index, e.g. to resume a stored plan after a restart. */
export const transitionsAt = <A, G>(chart: Chart<A, G>, indices: ReadonlyArray<number>): ReadonlyArray<ChartTransition<A, G>> =>
  indices.map((i) => (i === -1 ? chart.states[0]!.initial! : chart.transitions[i]!))

/** The atomic states of a configuration (what the SCION tests call the basic configuration). */
export const atomicStates = <A, G>(chart: Chart<A, G>, snapshot: Snapshot): ReadonlyArray<string> =>
  snapshot.configuration.filter((id) => isAtomic(chart.states[chart.byId.get(id)!]!))

/** Whether `id` is active (the `In()` predicate). */
export const isActive = (snapshot: Snapshot, id: string): boolean => snapshot.configuration.includes(id)

/** What a macrostep needs from whoever runs the chart's content. */
export interface MacrostepHost<A, G> {
  readonly cond: (transition: ChartTransition<A, G>) => boolean
  /** Runs one step of a plan (content, bookkeeping, raising `done.state.*`). */
  readonly execute: (step: PlanStep<A>) => void
  /** Takes the next internal event (making it the current event), or undefined when the queue is empty. */
  readonly nextInternal: () => string | undefined
}

/** An eventless-transition or internal-event loop ran past `maxMicrosteps` (microsteps plus internal events) in one macrostep. */
export class MacrostepLimitError extends Data.TaggedError("MacrostepLimitError")<{
  readonly maxMicrosteps: number
  readonly configuration: ReadonlyArray<string>
}> {
  override get message(): string {
    return `The statechart took more than ${this.maxMicrosteps} microsteps without waiting for an event ` +
      `(configuration: ${this.configuration.join(", ")}): an eventless transition or a raised event loops. ` +
      `Add a guard that ends the loop, or raise maxMicrosteps if the chart really needs more.`
  }
}

/** Runs a plan's steps through the host and returns its next snapshot. */
export const runPlan = <A, G>(plan: Plan<A>, host: MacrostepHost<A, G>): Snapshot => {
  for (const step of plan.steps) host.execute(step)
  return plan.next
}

/**
 * Completes a macrostep from `snapshot`: takes `first` (the transitions an external event
 * enabled, if any), then eventless transitions, then internal events one by one, until
 * neither enables anything (or the chart halts).
 */
export const macrostep = <A, G>(
  chart: Chart<A, G>,
  start: { readonly snapshot: Snapshot; readonly halted: boolean },
  host: MacrostepHost<A, G>,
  maxMicrosteps: number,
  first: ReadonlyArray<ChartTransition<A, G>> = []
): { readonly snapshot: Snapshot; readonly halted: boolean } => {
  let { halted, snapshot } = start
  let microsteps = 0
  if (first.length > 0 && !halted) {
    const plan = planMicrostep(chart, snapshot, first)
    snapshot = runPlan(plan, host)
    halted = plan.halted
  }
  while (!halted) {
    // counts internal events too: a guard that fails raises error.execution, which can loop without a microstep
    if (++microsteps > maxMicrosteps) throw new MacrostepLimitError({ maxMicrosteps, configuration: snapshot.configuration })
    let enabled = selectTransitions(chart, snapshot, undefined, host.cond)
    if (enabled.length === 0) {
      const event = host.nextInternal()
      if (event === undefined) break
      enabled = selectTransitions(chart, snapshot, event, host.cond)
    }
    if (enabled.length === 0) continue
    const plan = planMicrostep(chart, snapshot, enabled)
    snapshot = runPlan(plan, host)
    halted = plan.halted
  }
  return { snapshot, halted }
}
