/**
 * Resuming many executions at once: recovery when a runtime starts, and the executions of
 * the shards a cluster runner gains (`Cluster.layer`). The ids wait in a queue, oldest
 * first (recovery reads them from the store a page at a time, `Store.activePage`, when the
 * queue is empty and the window has room); a page of them at a time has its snapshots read
 * in one query (`getMany`) and its actors started, while fewer than `recoverWindow`
 * executions run. A turn of the event loop
 * follows each page, so that timers and I/O (a cluster's lease refresh, health checks) keep
 * running during a burst of tens of thousands; and an actor started by a burst re-enters
 * the step that was in flight and, once the step returns, waits until the burst has started
 * the rest before it commits the step's outcome (`Hold`), so that every execution is
 * running again before the first ones move on, and their commits do not compete for the
 * CPU with those still waiting to start (100k recovered: 29% less CPU until all run again).
 */
import { Effect, Either } from "effect"
import type { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { ActiveEntry } from "../Store.js"
import type { Cached, Msg } from "./handle.js"
import type { Shared } from "./shared.js"
import { waitForStoreSchedule } from "./shared.js"
import { isOutage } from "./storeHealth.js"

/**
 * ids whose snapshots one query reads (the SQL stores' `IN` list), and whose actors start
 * between two turns of the event loop: at 50-100 µs each here, a page keeps the event loop
 * for tens of milliseconds, well under a cluster's lease refresh (a third of the lease).
 */
export const pageSize = 500

/**
 * How many ids recovery reads in one query (`Store.activePage`) once the queue is empty: as
 * many as the window lets run (`recoverWindow`, 100,000 by default), but a page at least.
 * Each query sorts all that is active (no index keeps them in start order), so the pages are
 * large: 100k recovered on SQLite read in pages of 1,000 cost 6 s of CPU, of 5,000 1.2 s, of
 * 20,000 0.43 s, in one result 0.14-0.23 s, against ~13 s for the whole recovery. The ids
 * held beyond the running executions are then at most the window's (~100 B each, against
 * 6-20 KB for an execution the window lets run).
 */
export const idPageSize = (recoverWindow: number) => Math.max(pageSize, recoverWindow)

/**
 * What the actors a burst started wait for before they commit their step's outcome (or
 * after a first round that commits no step outcome): the burst's end (or its window
 * filling up). Released once, after which waiting costs nothing.
 */
export class Hold {
  open = true
  private waiters: Array<() => void> = []
  /** resumes the caller once the hold is released (interruptible: a closing runtime stops the wait) */
  readonly wait: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (!this.open) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    this.waiters.push(waiter)
    return Effect.sync(() => {
      const i = this.waiters.indexOf(waiter)
      if (i >= 0) this.waiters.splice(i, 1)
    })
  })
  release() {
    if (!this.open) return
    this.open = false
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

export const make = (
  shared: Shared,
  /** starts an actor with this message (and this state, when read in bulk), as `deliver` does */
  deliverNow: (id: string, msg: Msg, cached?: Cached, hold?: Hold) => void
) => {
  const { store, handles, lookup, counts } = shared
  const { recoverWindow } = shared.settings
  // the ids still to resume, oldest first, from `head` on; `queued` holds the same ids
  let queue: Array<string> = []
  let head = 0
  const queued = new Set<string>()
  /** whether a fiber is taking pages off the queue */
  let draining = false
  /** while a page's snapshots are read: the ids whose actor started meanwhile (their snapshot may be stale) */
  const reading = new Set<Set<string>>()
  /** recovery's place in the store's active executions while there are more to read (`Store.activePage`) */
  let cursor: { readonly after: ActiveEntry | undefined } | undefined

  const room = () => recoverWindow - (counts.active - counts.parked)

  /** the next page: ids not in memory, at most `limit` */
  const nextPage = (limit: number): Array<string> => {
    const page: Array<string> = []
    while (head < queue.length && page.length < limit) {
      const id = queue[head++]!
      queued.delete(id)
      if (!handles.has(id)) page.push(id)
    }
    if (head >= queue.length) {
      queue = []
      head = 0
    }
    return page
  }

  /**
   * What a run would load for this snapshot, when it needs nothing more (a procedure with
   * compensations also reads the history, and a child checks that its parent still waits
   * for it: their runs load them as usual).
   */
  const cachedOf = (snapshot: Snapshot | undefined): Cached | undefined => {
    const compiled = snapshot === undefined || snapshot.parentId !== undefined ? undefined : lookup(snapshot)
    if (compiled === undefined || compiled.compensable.size > 0) return undefined
    const context = compiled.decodeContext(snapshot!.context)
    return Either.isRight(context) ? { compiled, machine: { snapshot: snapshot!, context: context.right }, completed: [] } : undefined
  }

  /**
   * The snapshots of a page, read in one query when the store can. Only actors change an
   * execution's row, so a snapshot is current if no actor of that execution was in memory
   * from the read to the start of its own (the passivated timers' fiber, or a command, may
   * start one meanwhile): otherwise its run loads its own. A failed read leaves every run
   * of the page to load its own, with the usual handling of a store outage.
   */
  const readPage = (page: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, Snapshot> | undefined> => {
    if (store.getMany === undefined || page.length === 0) return Effect.succeed(undefined)
    const started = new Set<string>()
    reading.add(started)
    return store.getMany(page).pipe(
      Effect.map((snapshots) => {
        const current = new Map<string, Snapshot>()
        for (const s of snapshots) if (!started.has(s.id)) current.set(s.id, s)
        return current
      }),
      Effect.catchAll((error: StoreError) =>
        Effect.as(Effect.logDebug("Resuming: a page of snapshots could not be read; each run loads its own", error), undefined)
      ),
      Effect.ensuring(Effect.sync(() => reading.delete(started)))
    )
  }

  /**
   * Takes pages off the queue while the window has room, with a turn of the event loop
   * after each. Its actors wait, before committing their first outcome, until it stops.
   */
  const drain: Effect.Effect<void> = Effect.suspend(() => {
    draining = true
    const hold = new Hold()
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      const limit = Math.min(pageSize, room())
      if (counts.closed || limit <= 0) return Effect.void
      if (head >= queue.length) return cursor === undefined ? Effect.void : Effect.zipRight(readIds(cursor.after), loop)
      const page = nextPage(limit)
      return Effect.flatMap(readPage(page), (snapshots) => {
        for (const id of page) {
          if (handles.has(id) || counts.closed) continue
          deliverNow(id, { _tag: "Inbox" }, snapshots === undefined ? undefined : cachedOf(snapshots.get(id)), hold)
        }
        return Effect.zipRight(eventLoopTurn, loop)
      })
    })
    // the last page's actors re-enter their step (to the hold) in the turn before the release
    return Effect.ensuring(
      Effect.zipRight(loop, eventLoopTurn),
      Effect.sync(() => {
        draining = false
        hold.release()
        // ids queued during the last turn
        more()
      })
    )
  })

  const enqueue = (ids: ReadonlyArray<string>) => {
    for (const id of ids) {
      if (queued.has(id) || handles.has(id)) continue
      queued.add(id)
      queue.push(id)
    }
  }

  /**
   * Queues these executions after those still waiting to be resumed, and takes pages off
   * the queue in this fiber unless another does already.
   */
  const resume = (ids: ReadonlyArray<string>): Effect.Effect<void, StoreError> =>
    Effect.suspend(() => {
      enqueue(ids)
      return draining ? Effect.void : drain
    })

  /** ids per read of recovery: the ids held beyond the running executions are at most a read */
  const idLimit = idPageSize(recoverWindow)

  /** queues a page of recovery's ids, and moves the cursor past it (or drops it after the last page) */
  const queuePage = (entries: ReadonlyArray<ActiveEntry>, limit: number) => {
    cursor = entries.length < limit ? undefined : { after: entries[entries.length - 1] }
    enqueue(entries.map((e) => e.id))
  }

  /**
   * The next page of recovery's ids, read in a burst: an outage is waited out (the burst's
   * actors could not commit meanwhile either); another failure ends recovery here, logged.
   */
  const readIds = (after: ActiveEntry | undefined): Effect.Effect<void> => {
    const limit = idLimit
    return store.activePage!({ after, limit }).pipe(
      Effect.retry({ schedule: waitForStoreSchedule, while: isOutage }),
      Effect.matchEffect({
        onSuccess: (entries) => Effect.sync(() => queuePage(entries, limit)),
        onFailure: (error) =>
          Effect.zipRight(
            Effect.sync(() => void (cursor = undefined)),
            Effect.logError("Recovery: could not read the next executions to resume; they resume when the runtime starts again", error)
          )
      })
    )
  }

  /**
   * Resumes the executions that were in flight or had events waiting (recovery): a page of
   * their ids at a time from the store, read whenever the queue is empty and the window has
   * room, so that neither all their ids nor one result of all their rows is held at once.
   */
  const recover = Effect.suspend(() => {
    if (store.activePage === undefined) return Effect.flatMap(store.active(), resume)
    const limit = idLimit
    return Effect.flatMap(store.activePage({ limit }), (first) => {
      queuePage(first, limit)
      return draining ? Effect.void : drain
    })
  })

  /** An actor ended or parked: the window may have room for more (from the caller's synchronous step). */
  const more = () => {
    if (!draining && (head < queue.length || cursor !== undefined) && !counts.closed && room() > 0) {
      draining = true
      shared.fork(Effect.suspend(() => drain))
    }
  }

  /** An actor started outside a burst: a page being read must not hand it a stale snapshot. */
  const started = (id: string) => {
    for (const s of reading) s.add(id)
  }

  return { resume, recover, more, started }
}
