/**
 * The callers of `Runtime.sendAndWait` waiting for their event to be consumed or
 * discarded: in memory, by execution id and inbox seq. The event itself is durable (it is
 * in the store's inbox before anyone waits); only the waiting is here.
 *
 * One race matters: between the store accepting the event and the caller registering
 * its waiter, the actor could read the inbox and apply the event with no waiter to settle
 * (and no `expectVersion` to check). So a `sendAndWait` marks the execution while its
 * enqueue is in flight, and the actor leaves the inbox alone while it is marked (it
 * checks after reading the inbox, see `isEnqueuing`); registering wakes the actor. An
 * execution that ends meanwhile discards the event in its ending commit; `ended` records
 * that for the flights still open.
 */
import { Deferred, Exit } from "effect"
import type { StoreError, VersionConflict } from "../Errors.js"
import type { Snapshot } from "../Execution.js"

/**
 * What became of an event sent with `sendAndWait`.
 *
 * @inline
 */
export type SendResult =
  | {
    /** the event was applied: `snapshot` is the execution right after its transition */
    readonly _tag: "Consumed"
    readonly snapshot: Snapshot
  }
  | {
    /**
     * the event was taken out of the inbox without a transition (the state did not accept it,
     * a guard refused it, its `update` threw, or the execution ended before consuming it);
     * `reason` is its error-log entry's tag and message, `snapshot` the execution after that
     */
    readonly _tag: "Discarded"
    readonly snapshot: Snapshot
    readonly reason: { readonly tag: string; readonly message: string }
  }

export interface Waiter {
  readonly reply: Deferred.Deferred<SendResult, VersionConflict | StoreError>
  readonly expectVersion: number | undefined
}

interface Flight {
  count: number
  ended?: Snapshot | undefined
}

export class EventWaiters {
  private readonly byExecution = new Map<string, Map<number, Waiter>>()
  private readonly flights = new Map<string, Flight>()

  /** Marks an enqueue of `sendAndWait` in flight; call `landed` (or `failed`) when it returns. */
  takeOff(id: string): void {
    const flight = this.flights.get(id)
    if (flight === undefined) this.flights.set(id, { count: 1 })
    else flight.count++
  }

  /** The enqueue failed: nothing to wait for. */
  failed(id: string): void {
    this.land(id)
  }

  /**
   * The event is in the inbox at `seq`: registers the caller's waiter, or settles it at once
   * when the execution ended meanwhile (its ending commit discarded the event).
   */
  landed(id: string, seq: number, reply: Waiter["reply"], expectVersion: number | undefined): void {
    const ended = this.land(id)
    if (ended !== undefined) {
      Deferred.unsafeDone(reply, Exit.succeed(endedResult(ended)))
      return
    }
    this.put(id, seq, { reply, expectVersion })
  }

  /** Removes a waiter whose caller stopped waiting (a timeout, an interruption). */
  remove(id: string, seq: number): void {
    const waiters = this.byExecution.get(id)
    if (waiters === undefined) return
    waiters.delete(seq)
    if (waiters.size === 0) this.byExecution.delete(id)
  }

  /** Whether a `sendAndWait` enqueue to `id` is in flight: the actor must not consume events now. */
  isEnqueuing(id: string): boolean {
    return this.flights.has(id)
  }

  /**
   * Takes the waiter of the event at `seq` out, before the actor applies the event: the
   * actor settles it (`settle`), not the end of the execution that this event may cause.
   * If the commit fails, the actor puts it back (`put`).
   */
  take(id: string, seq: number): Waiter | undefined {
    const waiter = this.byExecution.get(id)?.get(seq)
    if (waiter !== undefined) this.remove(id, seq)
    return waiter
  }

  put(id: string, seq: number, waiter: Waiter): void {
    let waiters = this.byExecution.get(id)
    if (waiters === undefined) this.byExecution.set(id, waiters = new Map())
    waiters.set(seq, waiter)
  }

  /** The execution ended: the events still in its inbox were discarded in the same commit. */
  ended(snapshot: Snapshot): void {
    const flight = this.flights.get(snapshot.id)
    if (flight !== undefined) flight.ended = snapshot
    const waiters = this.byExecution.get(snapshot.id)
    if (waiters === undefined) return
    this.byExecution.delete(snapshot.id)
    const result = endedResult(snapshot)
    for (const waiter of waiters.values()) Deferred.unsafeDone(waiter.reply, Exit.succeed(result))
  }

  /** The runtime closes: every caller still waiting gets `error`; their events stay in the inbox. */
  close(error: StoreError): void {
    for (const waiters of this.byExecution.values()) {
      for (const waiter of waiters.values()) Deferred.unsafeDone(waiter.reply, Exit.fail(error))
    }
    this.byExecution.clear()
  }

  private land(id: string): Snapshot | undefined {
    const flight = this.flights.get(id)
    if (flight === undefined) return undefined
    if (--flight.count === 0) this.flights.delete(id)
    return flight.ended
  }
}

/** The event was consumed or discarded (its commit is done), or refused for its `expectVersion`. */
export const settle = (waiter: Waiter, result: SendResult | VersionConflict): void =>
  Deferred.unsafeDone(waiter.reply, result._tag === "VersionConflict" ? Exit.fail(result) : Exit.succeed(result))

const endedResult = (snapshot: Snapshot): SendResult => ({
  _tag: "Discarded",
  snapshot,
  reason: {
    tag: "EventDiscarded",
    message: `the execution ended with status ${snapshot.status} before consuming the event`
  }
})
