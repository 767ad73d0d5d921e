/**
 * The registration checks of a procedure: what types cannot see (unreachable states, no
 * way to a final state, bad durations, a retry Schedule that waits forever).
 */
import { Duration, Effect, Either, Exit, ScheduleDecision, ScheduleIntervals } from "effect"
import type { Schedule } from "effect"
import { DefinitionError } from "../Errors.js"
import type { Any } from "../Procedure.js"
import { isTree, lineOf, misplacedChart, parentOf, walk } from "./compound.js"
import { edges, stateOf } from "./states.js"

/**
 * Refuses a step whose retry Schedule gives an infinite delay: the step would wait forever.
 * A Schedule is a value whose durations cannot be read, so its first delays are computed
 * (with no input; one that needs its input to step, or fails, is not probed). `validate`
 * is pure, so the runtime runs this at registration after it.
 *
 * @internal
 */
export const checkRetries = (procedure: Any): Effect.Effect<void, DefinitionError> =>
  Effect.forEach(walk(procedure.states), ([name, state]) =>
    state._tag !== "Step" ? Effect.void : Effect.flatMap(Effect.exit(infiniteRetry(state.retry)), (exit) =>
      Exit.isSuccess(exit) && exit.value !== undefined
        ? Effect.fail(
          new DefinitionError({
            procedure: procedure.name,
            state: name,
            reason: `its \`retry\` Schedule waits forever (an infinite delay) before retry ${exit.value}; give the step a Schedule with finite delays`
          })
        )
        : Effect.void), { discard: true })

/** How many delays of a retry Schedule `checkRetries` computes. */
const retryProbe = 16

/** The first retry (1-based) before which the Schedule waits forever, if one of the first `retryProbe` does. */
const infiniteRetry = (schedule: Schedule.Schedule<unknown, unknown>) =>
  Effect.gen(function*() {
    let state = schedule.initial
    let now = 0
    for (let retry = 1; retry <= retryProbe; retry++) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return undefined
      const at = ScheduleIntervals.start(decision.intervals)
      if (!Number.isFinite(at)) return retry
      now = Math.max(now, at)
      state = next
    }
    return undefined
  })

/**
 * Checks what types cannot: the initial state and every target exist, every state is
 * reachable from the initial one, and a final state is reachable from every state. In a
 * tree of states (compound states), targets are full dotted paths, names have no ".",
 * each compound has a valid `initial` child and, when it has a final child, an `onDone`.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (procedure: Any): Either.Either<Any, DefinitionError> => {
  const fail = (reason: string, state?: string) =>
    Either.left(new DefinitionError({ procedure: procedure.name, reason, ...(state === undefined ? {} : { state }) }))
  const all = walk(procedure.states)
  const names = all.map(([path]) => path)
  if (procedure.name.trim() === "") return fail("the name is empty; give the procedure a name")
  if (!Number.isInteger(procedure.version) || procedure.version < 1) {
    return fail(`version ${procedure.version} is not a positive integer`)
  }
  const loopLimit = procedure.maxTransitionsWithoutWaiting
  if (loopLimit !== undefined && (!Number.isSafeInteger(loopLimit) || loopLimit < 1)) {
    return fail(`maxTransitionsWithoutWaiting ${loopLimit} is not a positive integer; leave it out for the default of 10000`)
  }
  const tree = isTree(procedure.states)
  const initial = stateOf(procedure, procedure.initial)
  if (initial === undefined || (tree && (procedure.initial.includes(".") || initial._tag === "History"))) {
    return fail(`the initial state "${procedure.initial}" is not one of the states (${names.join(", ")})`, procedure.initial)
  }
  const graph = new Map<string, Array<string>>()
  if (tree) {
    const dotted = dottedName(procedure.states, "")
    if (dotted !== undefined) {
      return fail(
        `the name "${dotted.name}" ${dotted.name === "" ? "is empty" : "contains \".\""}: targets are paths of names joined by "." ("deploy.api"), ` +
          `so a name cannot hold one; rename the state (e.g. with "-" or "_")`,
        dotted.path
      )
    }
  }
  for (const [name, state] of all) {
    if (state._tag === "Chart" && name.includes(".")) return fail(misplacedChart("inside a compound state"), name)
    // the transitions of a state's ancestors apply while it is active
    const leaves = lineOf(name).some((p) => (edges(stateOf(procedure, p)!)?.length ?? 1) > 0)
    if (state._tag === "Wait" && !leaves) {
      return fail("the wait state accepts no event and has no timer: it could never leave", name)
    }
    const invalid = state._tag === "Step" || state._tag === "Wait" ? state["~invalid"] : undefined
    if (invalid !== undefined && invalid.length > 0) {
      return fail(`${invalid.join("; ")}; give a finite duration that is not negative, like "30 seconds"`, name)
    }
    if (state._tag === "Step") {
      if (Duration.lessThanOrEqualTo(state.timeout, Duration.zero) || !Duration.isFinite(state.timeout)) {
        return fail("the step's timeout must be positive and finite", name)
      }
    }
    if (state._tag === "Wait" && state.after !== undefined && !Duration.isFinite(state.after.delay)) {
      return fail("the wait's `after.delay` is infinite; leave `after` out to wait without a timer", name)
    }
    const out = edges(state)
    const targets = out === undefined ? [...names] : out.map((e) => e.to)
    for (const target of targets) {
      const to = stateOf(procedure, target)
      if (to === undefined) {
        return fail(`it goes to "${target}", which is not one of the states (${names.join(", ")})${tree ? nestedHint(target, names) : ""}`, name)
      }
    }
    if (state._tag === "Compound") {
      const children = Object.keys(state.states)
      const entry = Object.hasOwn(state.states, state.initial) ? state.states[state.initial]! : undefined
      if (entry === undefined) {
        return fail(`its initial state "${state.initial}" is not one of its child states (${children.join(", ") || "none"}); name one of them`, name)
      }
      if (!children.some((c) => state.states[c]!._tag !== "History")) {
        return fail("the compound state has no child states to enter; add some, or make it a step or a wait", name)
      }
      const hasFinal = children.some((c) => state.states[c]!._tag === "Final")
      if (hasFinal && state.onDone === undefined) {
        return fail("it has a final child state but no `onDone`: say where to go when the compound is done (`onDone: \"<path>\"`)", name)
      }
      // entering the compound enters its initial child
      targets.push(`${name}.${state.initial}`)
    }
    if (state._tag === "History") {
      const parent = parentOf(name)
      const compound = stateOf(procedure, parent)
      if (parent === "" || compound?._tag !== "Compound") {
        return fail("a history state belongs inside a compound state (Procedure.compound); move it into one", name)
      }
      if (state.default !== undefined && !state.default.startsWith(`${parent}.`)) {
        return fail(`its default "${state.default}" is not inside its compound "${parent}"; give a path inside it`, name)
      }
      if (state.default !== undefined && stateOf(procedure, state.default)?._tag === "History") {
        return fail(`its default "${state.default}" is a history state; give a state to enter`, name)
      }
      // it may resume any state of its compound (the last one active), or enter the default
      for (const [other] of all) if (other.startsWith(`${parent}.`) && other !== name) targets.push(other)
    }
    // while a state is active, so are its ancestors, whose transitions (a final child's `onDone`) apply too
    for (const p of lineOf(name).slice(1)) for (const e of edges(stateOf(procedure, p)!) ?? []) targets.push(e.to)
    graph.set(name, targets)
  }
  const reachable = new Set<string>([procedure.initial])
  const queue = [procedure.initial]
  while (queue.length > 0) {
    for (const target of graph.get(queue.pop()!)!) {
      // entering a state enters its ancestors
      for (const p of lineOf(target)) {
        if (!reachable.has(p)) {
          reachable.add(p)
          queue.push(p)
        }
      }
    }
  }
  for (const name of names) {
    if (!reachable.has(name) && stateOf(procedure, name)?._tag !== "History") {
      return fail(`the state is unreachable from the initial state "${procedure.initial}"; remove it or add a transition to it`, name)
    }
  }
  // a chart without a top-level <final> runs until it is cancelled, as SCXML allows
  const finishing = new Set(names.filter((n) => parentOf(n) === "" && (stateOf(procedure, n)!._tag === "Final" || stateOf(procedure, n)!._tag === "Chart")))
  if (finishing.size === 0) return fail("it has no final state; add one with Procedure.final")
  let grew = true
  while (grew) {
    grew = false
    for (const [name, targets] of graph) {
      if (!finishing.has(name) && targets.some((t) => finishing.has(t))) {
        finishing.add(name)
        grew = true
      }
    }
  }
  for (const name of names) {
    if (!finishing.has(name) && stateOf(procedure, name)?._tag !== "History") {
      return fail("no final state can be reached from this state; add a transition towards a final state", name)
    }
  }
  return Either.right(procedure)
}

/** The first state (at any depth) whose name is empty or contains ".", with its path. */
const dottedName = (states: Any["states"], prefix: string): { readonly name: string; readonly path: string } | undefined => {
  for (const [name, state] of Object.entries(states)) {
    const path = prefix === "" ? name : `${prefix}.${name}`
    if (name === "" || name.includes(".")) return { name, path }
    const inner = state._tag === "Compound" ? dottedName(state.states, path) : undefined
    if (inner !== undefined) return inner
  }
  return undefined
}

/** A hint for a target that names a child without its parent's path. */
const nestedHint = (target: string, paths: ReadonlyArray<string>): string => {
  const full = paths.filter((p) => p.endsWith(`.${target}`))
  return full.length === 0 ? "" : `; targets are full paths from the top: did you mean ${full.map((p) => `"${p}"`).join(" or ")}?`
}
