/**
 * The scheduler of the actors' run fibers: Effect's default (`MixedScheduler`) with one
 * queue for all of them instead of one per fiber.
 *
 * Since Effect 3.20 the default scheduler keeps a `SchedulerRunner` (216 B with its
 * closure and queue) for every fiber it ever scheduled, for as long as the fiber lives:
 * every in-flight execution's run fiber has one (its start is scheduled, and so is its
 * resumption after a durable commit). With one queue, the run fibers' tasks are drained
 * together in one microtask, as Effect's scheduler did before 3.20, and after 2048 drains
 * in a row on a timer, which gives the event loop a turn.
 */
import { Effect, FiberRef, Scheduler } from "effect"

const maxNextTickBeforeTimer = 2048

const runner = new Scheduler.SchedulerRunner((depth, drain) => {
  // the event loop's turn, as Effect's own scheduler takes it: not time a step or a timer sees
  // eslint-disable-next-line no-restricted-globals
  if (depth >= maxNextTickBeforeTimer) setTimeout(() => drain(0), 0)
  else Promise.resolve(undefined).then(() => drain(depth + 1))
})

/** One queue for every run fiber of the process (of every runtime). */
export const runScheduler: Scheduler.Scheduler = Scheduler.make((task, priority) => runner.scheduleTask(task, priority))

/**
 * `effect` with the run fibers' scheduler, unless it runs with a scheduler other than
 * Effect's default (a test's, an application's), which it keeps.
 */
export const withRunScheduler = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    FiberRef.get(FiberRef.currentScheduler),
    (current) => current === Scheduler.defaultScheduler ? Effect.withScheduler(effect, runScheduler) : effect
  )
