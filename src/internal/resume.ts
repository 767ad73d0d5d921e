/**
 * Resuming many executions at once: recovery when a runtime starts, and the executions of
 * the shards a cluster runner gains (`Cluster.layer`). The ids wait in a queue, oldest
 * first; a page of them at a time has its snapshots read in one query (`getMany`) and its
 * actors started, while fewer than `recoverWindow` executions run. A turn of the event loop
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
import type { Cached, Msg } from "./handle.js"
import type { Shared } from "./shared.js"

/**
 * ids whose snapshots one query reads (the SQL stores' `IN` list), and whose actors start
 * between two turns of the event loop: at 50-100 µs each here, a page keeps the event loop
 * for tens of milliseconds, well under a cluster's lease refresh (a third of the lease).
 */
export const pageSize = 500

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
      if (counts.closed || limit <= 0 || head >= queue.length) return Effect.void
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

  /**
   * Queues these executions after those still waiting to be resumed, and takes pages off
   * the queue in this fiber unless another does already.
   */
  const resume = (ids: ReadonlyArray<string>): Effect.Effect<void, StoreError> =>
    Effect.suspend(() => {
      for (const id of ids) {
        if (queued.has(id) || handles.has(id)) continue
        queued.add(id)
        queue.push(id)
      }
      return draining ? Effect.void : drain
    })

  /** Resumes the executions that were in flight or had events waiting (recovery). */
  const recover = Effect.flatMap(Effect.suspend(() => store.active()), resume)

  /** An actor ended or parked: the window may have room for more (from the caller's synchronous step). */
  const more = () => {
    if (!draining && head < queue.length && !counts.closed && room() > 0) {
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
