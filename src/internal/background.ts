/**
 * The runtime's background fibers, forked into its scope: the one that wakes passivated
 * executions whose timers come within the horizon, and history retention.
 */
import { Clock, Deferred, Duration, Effect, FiberId } from "effect"
import type { StoreService, TimerEntry } from "../Store.js"
import * as Deadlines from "./deadlines.js"
import type { RuntimeOptions } from "./runtime.js"
import type { Shared } from "./shared.js"
import { waitForStoreSchedule } from "./shared.js"
import * as StoreHealth from "./storeHealth.js"

/**
 * Timers of passivated executions: one fiber wakes them when they come within the
 * horizon. It sleeps until the next timer needs it, and is woken early when an actor
 * passivates with an earlier timer.
 */
export const passivatedTimers = (shared: Shared, activate: (id: string) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const { store, handles, timerPoll } = shared
    const { horizon } = shared.settings
    let cursor: TimerEntry | undefined
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const until = now + horizon
      const batch = yield* store.dueTimers({ after: cursor, until, limit: 1000 })
      for (const t of batch) if (!handles.has(t.id)) yield* activate(t.id)
      if (batch.length === 1000) {
        cursor = batch[batch.length - 1]
        continue
      }
      cursor = { dueAt: until, id: "\uffff" }
      const next = yield* store.dueTimers({ after: cursor, until: Number.MAX_SAFE_INTEGER, limit: 1 })
      timerPoll.planned = next.length === 0 ? Infinity : next[0]!.dueAt - horizon
      const wake = timerPoll.wake = Deferred.unsafeMake<void>(FiberId.none)
      yield* timerPoll.planned === Infinity
        ? Deferred.await(wake) // owned by the runtime's scope; woken by a passivating actor
        // a timer months away is waited for in chunks: the loop re-checks the clock when it wakes
        : Effect.race(Deferred.await(wake), Effect.sleep(Duration.millis(Deadlines.chunk(timerPoll.planned - now))))
    }
  }).pipe(
    // a store outage is waited out; the loop starts over when the store answers again
    Effect.retry({ schedule: waitForStoreSchedule, while: StoreHealth.isOutage }),
    Effect.catchAllCause((cause) => Effect.logError("The timer fiber failed; timers of passivated executions will fire when they are next woken", cause))
  )

/** History retention of ended executions, applied every `every`. */
export const retention = (store: StoreService, retention: RuntimeOptions["retention"]) =>
  Effect.gen(function*() {
    if (retention !== undefined && (retention.keepLast !== undefined || retention.maxAge !== undefined)) {
      const every = Duration.toMillis(retention.every ?? "1 hour")
      const maxAge = retention.maxAge === undefined ? undefined : Duration.toMillis(retention.maxAge)
      yield* Effect.forkScoped(
        Effect.gen(function*() {
          while (true) {
            yield* Deadlines.sleepMillis(every)
            const now = yield* Clock.currentTimeMillis
            const deleted = yield* store.prune({ keepLast: retention.keepLast, before: maxAge === undefined ? undefined : now - maxAge }).pipe(
              Effect.catchAll((e) => Effect.as(Effect.logWarning("History retention failed; it will be tried again", e), 0))
            )
            if (deleted > 0) yield* Effect.logDebug(`History retention deleted ${deleted} transitions`)
          }
        })
      )
    }
  })
