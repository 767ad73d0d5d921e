/**
 * Who hears of a committed transition (`publish`): `Runtime.watch`'s subscribers, the
 * callers of `Runtime.await` (at the execution's end), `sendAndWait` callers whose
 * execution ended, the rollouts' routing table and health samples, and the start quotas.
 * The run loop, the direct wake and the supervisor publish each commit once it is durable.
 */
import { Deferred, Effect, Exit, PubSub, Stream } from "effect"
import type { ExecutionNotFound, StoreError } from "../Errors.js"
import type { ExecutionEvent, Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { EventWaiters } from "./eventWaiters.js"
import type { Quotas } from "./resilienceQuotas.js"
import * as Rollout from "./rollout.js"
import type * as RolloutHealth from "./rolloutHealth.js"

export interface Deps {
  readonly routes: Rollout.Routes
  readonly samples: RolloutHealth.Recorder
  readonly quotas: Quotas
  readonly eventWaiters: EventWaiters
  readonly getSnapshot: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  /** how many events a slow `watch` subscriber may fall behind before it loses the oldest */
  readonly watchBuffer: number
}

export const make = (deps: Deps) =>
  Effect.gen(function*() {
    const { routes, samples, quotas, eventWaiters, getSnapshot } = deps
    const events = yield* PubSub.sliding<ExecutionEvent>(deps.watchBuffer)
    // what waits for an execution's end: `await`'s callers, and a parallel state's attempt (`onEnd`)
    const waiters = new Map<string, Array<Deferred.Deferred<Snapshot> | ((end: Snapshot) => void)>>()

    const publish = (snapshot: Snapshot, t: Transition) => {
      if (snapshot.procedure === Rollout.rolloutName) routes.apply(snapshot)
      else if (routes.sampled(snapshot)) samples.record(snapshot, t)
      if (isTerminal(snapshot.status)) {
        quotas.ended()
        eventWaiters.ended(snapshot)
        const ws = waiters.get(snapshot.id)
        if (ws !== undefined) {
          waiters.delete(snapshot.id)
          for (const w of ws) typeof w === "function" ? w(snapshot) : Deferred.unsafeDone(w, Exit.succeed(snapshot))
        }
      }
      events.unsafeOffer({
        executionId: snapshot.id,
        procedure: snapshot.procedure,
        seq: t.seq,
        from: t.from,
        state: snapshot.state,
        status: snapshot.status,
        cause: t.cause,
        at: t.at
      })
    }

    /** Waits, in this runtime, for the execution's end. */
    const awaitHere = (id: string) =>
      Effect.gen(function*() {
        const waiter = yield* Deferred.make<Snapshot>()
        const list = waiters.get(id) ?? []
        list.push(waiter)
        waiters.set(id, list)
        const remove = Effect.sync(() => {
          const ws = waiters.get(id)
          if (ws === undefined) return
          const i = ws.indexOf(waiter)
          if (i >= 0) ws.splice(i, 1)
          if (ws.length === 0) waiters.delete(id)
        })
        return yield* Effect.gen(function*() {
          const snapshot = yield* getSnapshot(id)
          if (isTerminal(snapshot.status)) return snapshot
          return yield* Deferred.await(waiter)
        }).pipe(Effect.ensuring(remove))
      })

    /** Calls `f` with the end of execution `id` when it commits here; returns what stops the wait. */
    const onEnd = (id: string, f: (end: Snapshot) => void) => {
      const list = waiters.get(id) ?? []
      list.push(f)
      waiters.set(id, list)
      return () => {
        const ws = waiters.get(id)
        const i = ws === undefined ? -1 : ws.indexOf(f)
        if (i >= 0) ws!.splice(i, 1)
        if (ws?.length === 0) waiters.delete(id)
      }
    }

    const watch = (id?: string): Stream.Stream<ExecutionEvent> => {
      const all = Stream.fromPubSub(events)
      return id === undefined ? all : Stream.filter(all, (e) => e.executionId === id)
    }

    return { publish, awaitHere, onEnd, watch }
  })
