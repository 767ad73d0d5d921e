/**
 * Waiting for another connection's lock without blocking the event loop.
 *
 * better-sqlite3 is synchronous: while SQLite's busy handler waits for a lock that another
 * connection holds (a backup, the `sqlite3` shell, another program's open transaction),
 * the whole process waits with it: no timer fires, no request is answered, no timeout
 * around the caller can fire. So every connection of the store gives SQLite a busy timeout
 * of a few milliseconds only, and the wait happens here instead: a statement that finds
 * the database locked is tried again at once, then on a Schedule (backoff from 1 ms, at
 * most 1 second between tries), each pause an asynchronous sleep that leaves the event loop free, until
 * the budget (`busyTimeout`) has passed; then it fails with a `StoreError` that says who
 * holds what and what to do.
 */
import { Duration, Effect, Schedule } from "effect"
import { StoreError } from "../Errors.js"
import { errorCode } from "./sqlErrors.js"

/** SQLite's own busy timeout on every connection of the store: the longest the event loop waits for a lock at once. */
export const busyPollMillis = 2

/** The database is locked by another connection (SQLITE_BUSY, SQLITE_LOCKED and their extended codes): worth trying again. */
export const isBusy = (u: unknown): boolean => {
  const code = errorCode(u)
  return code !== undefined && (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
}

/**
 * Runs a store operation again while the database is locked, up to a budget; `stop` (the
 * store is closing) ends the waiting early. Costs nothing but one handler when the first
 * try succeeds.
 */
export type LockWait = <A, R>(effect: Effect.Effect<A, StoreError, R>, stop?: () => boolean) => Effect.Effect<A, StoreError, R>

/** A `LockWait` for the database `what` (e.g. "the SQLite database /srv/app.db") that waits at most `budget` in all. */
export const make = (what: string, budget: Duration.DurationInput): LockWait => {
  const limit = Duration.decode(budget)
  const schedule = Schedule.exponential("1 millis").pipe(
    Schedule.union(Schedule.spaced("1 second")),
    Schedule.upTo(limit)
  )
  const heldTooLong = (error: StoreError) =>
    new StoreError({
      kind: "Unavailable",
      operation: error.operation,
      detail: `${what}: another process or connection has held a lock on it for more than ${Duration.format(limit)} ` +
        `(${errorCode(error) ?? "SQLITE_BUSY"}): a backup, the sqlite3 shell, or another program with an open transaction. ` +
        `Nothing was written; the runtime tries again from the last committed state. End that transaction or stop ` +
        `that program; raise busyTimeout if such waits are expected.`,
      cause: error
    })
  return (effect, stop) =>
    Effect.catchIf(effect, isBusy, () =>
      effect.pipe(
        Effect.retry({ schedule, while: (error) => isBusy(error) && !(stop?.() ?? false) }),
        Effect.mapError((error) => isBusy(error) ? heldTooLong(error) : error)
      ))
}
