/**
 * Store outages: which store errors are an outage to wait out (busy, locked, disk full,
 * unreachable) rather than a defect, the backoff of executions that wait for the store,
 * and the runtime's view of the store's health (for `Runtime.health`, metrics and logs).
 */
import { Cause, Clock, Deferred, Effect, Exit, FiberId, Option } from "effect"
import { StoreError } from "../Errors.js"
import type { StoreService } from "../Store.js"
import { errorCode } from "./sqlErrors.js"
import { storeErrors, storeUnavailable } from "./metrics.js"

/**
 * What the runtime knows of its store; see `Runtime.health`.
 *
 * @inline
 */
export interface Health {
  /** false from the first failed write of an outage until a write succeeds again */
  readonly storeReachable: boolean
  /** when the current outage began (epoch ms) */
  readonly unavailableSince?: number | undefined
  /** the last error of the current outage */
  readonly lastStoreError?: StoreError | undefined
  /** executions whose actor waits for the store to come back */
  readonly waitingForStore: number
}

/**
 * Whether an error is the store being unavailable for a while: busy, locked by another
 * writer, full, unreachable, or an I/O error of the file system. Those are waited out;
 * anything else (a `Conflict`, a corrupt row, a bug) is a defect for the supervisor.
 */
export const isOutage = (u: unknown): u is StoreError =>
  u instanceof StoreError &&
  (u.kind === "Unavailable" || u.kind === "Locked" || (u.kind === "Unknown" && isIoCode(errorCode(u.cause))))

// Node's system errors (EIO, ENOSPC, EMFILE, ...)
const isIoCode = (code: string | undefined) => code !== undefined && /^E[A-Z]+$/.test(code)

/** The backoff before the `attempt`-th retry of an execution that waits for the store: 100 ms doubling to 30 s. */
export const backoffMillis = (attempt: number) => Math.min(100 * 2 ** Math.max(0, attempt - 1), 30_000)

export interface StoreHealth {
  /** the store, watched: its outage errors start an outage, a write that succeeds ends it */
  readonly store: StoreService
  readonly health: Effect.Effect<Health>
  /** an execution's actor waits for the store; returns how many times in a row it has */
  readonly wait: (id: string) => number
  /** an execution no longer waits (its run ended otherwise, or it left memory) */
  readonly done: (id: string) => void
  /** completes when the current outage ends; never when there is none (then a backoff runs its course) */
  readonly back: () => Effect.Effect<void>
}

export const make = (inner: StoreService): StoreHealth => {
  let since: number | undefined
  let lastError: StoreError | undefined
  /** whether a write failed in this outage: then only a write ends it (reads may work while writes are locked out) */
  let writeFailed = false
  /** executions that wait, and how many times each has retried in this outage */
  const waiting = new Map<string, number>()
  let ended = Deferred.unsafeMake<void>(FiberId.none)

  const failed = (write: boolean, error: StoreError) =>
    Effect.suspend(() => {
      storeErrors.unsafeUpdate(1, [])
      lastError = error
      writeFailed ||= write
      if (since !== undefined) return Effect.void
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        since = now
        ended = Deferred.unsafeMake<void>(FiberId.none)
        storeUnavailable.unsafeUpdate(1, [])
        return Effect.logError(`The store is unavailable; executions wait for it and carry on when it is back: ${error.message}`)
      })
    })

  const succeeded = (write: boolean) =>
    Effect.suspend(() => {
      if (since === undefined || (writeFailed && !write)) return Effect.void
      const lasted = since
      since = undefined
      lastError = undefined
      writeFailed = false
      waiting.clear()
      storeUnavailable.unsafeUpdate(0, [])
      Deferred.unsafeDone(ended, Exit.void)
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.logWarning(`The store is available again after ${now - lasted} ms; executions carry on`))
    })

  // made once, not a closure per operation: a durable run waits on every commit with this
  // frame on its stack, and what it holds is promoted by the GC if the wait is long. A
  // failure handler only (`catchAllCause`): the fiber passes its frame by on a success,
  // where `matchCauseEffect` called back and made one more step of the fiber per operation
  const seeing = (write: boolean) => (cause: Cause.Cause<StoreError>): Effect.Effect<never, StoreError> => {
    const error = Cause.failureOption(cause)
    return Option.isSome(error) && isOutage(error.value) ? Effect.zipRight(failed(write, error.value), Effect.failCause(cause)) : Effect.failCause(cause)
  }
  const writes = seeing(true)
  const reads = seeing(false)
  const watch = <A>(write: boolean, effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> => {
    const watched = Effect.catchAllCause(effect, write ? writes : reads)
    // in the usual case (no outage) a success costs nothing more
    return since === undefined ? watched : Effect.tap(watched, () => succeeded(write))
  }

  // every operation is watched; one a store adds beyond these passes through unwatched
  const store: StoreService = {
    ...inner,
    create: (snapshot, transition) => watch(true, inner.create(snapshot, transition)),
    createWithin: inner.createWithin === undefined ? undefined : (snapshot, transition, limits) => watch(true, inner.createWithin!(snapshot, transition, limits)),
    commit: (commit) => watch(true, inner.commit(commit)),
    appendErrors: (entries) => watch(true, inner.appendErrors(entries)),
    enqueue: (id, event, at) => watch(true, inner.enqueue(id, event, at)),
    prune: (options) => watch(true, inner.prune(options)),
    get: (id) => watch(false, inner.get(id)),
    getMany: inner.getMany === undefined ? undefined : (ids) => watch(false, inner.getMany!(ids)),
    list: (filter) => watch(false, inner.list(filter)),
    countByVersion: (query) => watch(false, inner.countByVersion(query)),
    history: (id, options) => watch(false, inner.history(id, options)),
    errors: (id) => watch(false, inner.errors(id)),
    inbox: (id, limit) => watch(false, inner.inbox(id, limit)),
    compensations: (id) => watch(false, inner.compensations(id)),
    active: () => watch(false, inner.active()),
    activePage: inner.activePage === undefined ? undefined : (query) => watch(false, inner.activePage!(query)),
    dueTimers: (query) => watch(false, inner.dueTimers(query))
  }

  return {
    store,
    health: Effect.sync(() => ({
      storeReachable: since === undefined,
      unavailableSince: since,
      lastStoreError: lastError,
      waitingForStore: waiting.size
    })),
    wait: (id) => {
      const n = (waiting.get(id) ?? 0) + 1
      waiting.set(id, n)
      return n
    },
    done: (id) => void waiting.delete(id),
    back: () => since === undefined ? Effect.never : Deferred.await(ended)
  }
}
