/**
 * Fairness between the actors and the rest of the process: how often a run loop gives the
 * event loop a turn (timers, I/O) when it never has to wait.
 */
import { Effect } from "effect"

/**
 * Fairness: the actors of a runtime hand the event loop a full turn (timers, I/O) once they
 * have kept it for `turnBudgetMillis`. Effect's own yields (`maxOpsBeforeYield`,
 * `Effect.yieldNow`) go through microtasks and reach a `setTimeout` only after 2048 nested
 * ones of the same fiber; an actor that suspends on every commit (a SQL store) starts that
 * count again each time, so a loop that never waits would never let a timer or an I/O
 * callback of the process run. This is about the real event loop, not about time a step
 * or a timer sees: TestClock has nothing to control here.
 */
const turnBudgetMillis = 4

/**
 * Run-loop rounds (attempts, transitions) between two looks at the budget. Measured on one
 * execution looping on a no-op step: a turn every round doubled the CPU of a transition
 * (memory store, 50 -> 99 µs); a turn every 32 rounds of each actor cost 2,000 actors of
 * 100 steps 5 µs more per transition (bench/costs.ts), as all of them then run interleaved;
 * one turn per budget, whoever asks, costs nothing measurable.
 */
export const roundsPerLook = 32

/** when the event loop last gave the actors their turn back */
let lastTurn = performance.now()

const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => {
    lastTurn = performance.now()
    resume(Effect.void)
  })
  return Effect.sync(() => clearImmediate(handle))
})

/** A turn of the event loop if the actors have kept it longer than the budget. */
export const fairTurn: Effect.Effect<void> = Effect.suspend(() => performance.now() - lastTurn >= turnBudgetMillis ? eventLoopTurn : Effect.void)
