/**
 * The registration checks of a procedure: what types cannot see (unreachable states, no
 * way to a final state, bad durations, a retry Schedule that waits forever).
 */
import { Duration, Effect, Either, Exit, ScheduleDecision, ScheduleIntervals } from "effect"
import type { Schedule } from "effect"
import { DefinitionError } from "../Errors.js"
import type { Any } from "../Procedure.js"
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
  Effect.forEach(Object.entries(procedure.states), ([name, state]) =>
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
 * reachable from the initial one, and a final state is reachable from every state.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (procedure: Any): Either.Either<Any, DefinitionError> => {
  const fail = (reason: string, state?: string) =>
    Either.left(new DefinitionError({ procedure: procedure.name, reason, ...(state === undefined ? {} : { state }) }))
  const names = Object.keys(procedure.states)
  if (procedure.name.trim() === "") return fail("the name is empty; give the procedure a name")
  if (!Number.isInteger(procedure.version) || procedure.version < 1) {
    return fail(`version ${procedure.version} is not a positive integer`)
  }
  const loopLimit = procedure.maxTransitionsWithoutWaiting
  if (loopLimit !== undefined && (!Number.isSafeInteger(loopLimit) || loopLimit < 1)) {
    return fail(`maxTransitionsWithoutWaiting ${loopLimit} is not a positive integer; leave it out for the default of 10000`)
  }
  if (stateOf(procedure, procedure.initial) === undefined) {
    return fail(`the initial state "${procedure.initial}" is not one of the states (${names.join(", ")})`, procedure.initial)
  }
  const graph = new Map<string, ReadonlyArray<string>>()
  for (const name of names) {
    const state = procedure.states[name]!
    if (state._tag === "Wait" && Object.keys(state.on).length === 0 && state.after === undefined) {
      return fail("the wait state accepts no event and has no timer: it could never leave", name)
    }
    const invalid = state._tag === "Final" ? undefined : state["~invalid"]
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
    const targets = out === undefined ? names : out.map((e) => e.to)
    for (const target of targets) {
      if (stateOf(procedure, target) === undefined) {
        return fail(`it goes to "${target}", which is not one of the states (${names.join(", ")})`, name)
      }
    }
    graph.set(name, targets)
  }
  const reachable = new Set<string>([procedure.initial])
  const queue = [procedure.initial]
  while (queue.length > 0) {
    for (const target of graph.get(queue.pop()!)!) {
      if (!reachable.has(target)) {
        reachable.add(target)
        queue.push(target)
      }
    }
  }
  for (const name of names) {
    if (!reachable.has(name)) {
      return fail(`the state is unreachable from the initial state "${procedure.initial}"; remove it or add a transition to it`, name)
    }
  }
  // a chart without a top-level <final> runs until it is cancelled, as SCXML allows
  const finishing = new Set(names.filter((n) => procedure.states[n]!._tag === "Final" || procedure.states[n]!._tag === "Chart"))
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
    if (!finishing.has(name)) {
      return fail("no final state can be reached from this state; add a transition towards a final state", name)
    }
  }
  return Either.right(procedure)
}
