/**
 * Events sent to executions (`Runtime.send`, `sendAndWait`): an event is checked against
 * the execution's snapshot and its procedure's Schema, then put in the execution's durable
 * inbox and its actor woken; or, for an execution waiting out of memory, its transition
 * committed in the sender's fiber (`wakeDirect.ts`); or, for a parent in a parallel state,
 * given to the regions that take it (`regionSend.ts`). `sendAndWait` then waits for the
 * actor to commit the event (`eventWaiters.ts`).
 */
import type { Tracer } from "effect"
import { Clock, Deferred, Duration, Effect, Exit, Option } from "effect"
import type { ExecutionNotFound, StoreError, ValidationError, VersionConflict } from "../Errors.js"
import { InvalidTransition, SendTimeout } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import { stateOf } from "../Procedure.js"
import type { Holder } from "./clusterHooks.js"
import { acceptedTags } from "./compound.js"
import type { EventWaiters, SendResult } from "./eventWaiters.js"
import type { SendAndWaitOptions } from "./options.js"
import { versionConflict } from "./reconcile.js"
import type { Accepted } from "./regionSend.js"
import * as RegionSend from "./regionSend.js"
import type { StoreService } from "../Store.js"
import * as Spans from "./spans.js"
import type { Compiled } from "./transition.js"
import type * as WakeDirect from "./wakeDirect.js"
import type * as Children from "./children.js"

export interface Deps {
  readonly store: StoreService
  readonly tracing: boolean
  readonly children: ReturnType<typeof Children.make>
  readonly eventWaiters: EventWaiters
  readonly getSnapshot: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly lookup: (snapshot: Snapshot) => Compiled | undefined
  readonly unavailable: (snapshot: Snapshot) => string
  /** delivers a nudge to the execution's actor here */
  readonly activate: (id: string, span?: Tracer.Span) => Effect.Effect<void>
  /** `activate`, or the cluster's routing of it to the runner that owns the execution */
  readonly wake: (id: string, span?: Tracer.Span) => Effect.Effect<void>
  readonly wakeDirect: ReturnType<typeof WakeDirect.make>
  readonly cluster: Holder | undefined
}

export const make = (deps: Deps) => {
  const { store, tracing, children, eventWaiters, getSnapshot, lookup, unavailable, activate, wake, wakeDirect, cluster } = deps

  /**
   * Validates an event for the execution's snapshot and encodes it, unless `refuseFirst`
   * finds an error in the snapshot first.
   */
  const accept = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined,
    /** the snapshot the caller has just read, to not read it again */
    read?: Snapshot
  ) =>
    Effect.gen(function*() {
      const snapshot = read ?? (yield* getSnapshot(id))
      const compiled = lookup(snapshot)
      if (compiled === undefined) {
        return yield* new InvalidTransition({
          executionId: id,
          operation: "send an event to",
          status: snapshot.status,
          state: snapshot.state,
          hint: unavailable(snapshot)
        })
      }
      const decoded = yield* compiled.decodeEvent(event)
      span?.attribute("proctor.event.type", decoded._tag)
      const state = stateOf(compiled.def, snapshot.state)!
      // in a tree, the wait's enclosing states handle events too
      const tags = acceptedTags(compiled.def, snapshot.state)
      const refuse = (snapshot: Snapshot) => {
        const accepts = tags.join(", ")
        return new InvalidTransition({
          executionId: id,
          operation: `send "${decoded._tag}" to`,
          status: snapshot.status,
          state: snapshot.state,
          hint: isTerminal(snapshot.status)
            ? "It has already ended and takes no more events."
            : `State "${snapshot.state}" accepts ${accepts === "" ? "no events" : accepts}.`
        })
      }
      if (isTerminal(snapshot.status) || (snapshot.status === "waiting" && state._tag === "Wait" && !tags.includes(decoded._tag))) {
        return yield* refuse(snapshot)
      }
      const refused = refuseFirst?.(snapshot)
      if (refused !== undefined) return yield* Effect.fail(refused)
      const encoded = yield* compiled.encodeEvent(decoded)
      const now = yield* Clock.currentTimeMillis
      return { snapshot, compiled, decoded, encoded, now, refuse }
    })

  /** Puts an accepted event in the execution's durable inbox. */
  const write = (id: string, accepted: Accepted) =>
    // the store refuses, atomically, an execution that has ended since it was read
    store.enqueue(id, accepted.encoded, accepted.now).pipe(
      Effect.catchIf((error) => error.kind === "Conflict", (error) =>
        Effect.flatMap(store.get(id), (found): Effect.Effect<never, InvalidTransition | StoreError> =>
          Option.isSome(found) && isTerminal(found.value.status) ? Effect.fail(accepted.refuse(found.value)) : Effect.fail(error)))
    )

  const regionSend = RegionSend.make({ store, children, getSnapshot, accept, write, wake })

  /**
   * Validates an event and puts it in the execution's durable inbox, unless `refuse` finds
   * an error in the execution's snapshot first.
   */
  const enqueue = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined
  ) => Effect.flatMap(accept(id, event, refuseFirst, span), (accepted) => write(id, accepted))

  const send = (id: string, event: unknown) =>
    Spans.around(tracing, "proctor.send", { "proctor.execution.id": id }, (span) => sendTo(id, event, span))

  /**
   * To the execution's inbox, or, while it is in a parallel state whose regions take the
   * event, to theirs. An execution waiting out of memory takes the event in the sender's
   * fiber, when it can (`wakeDirect.ts`).
   */
  const sendTo = (id: string, event: unknown, span: Tracer.Span | undefined): Effect.Effect<void, ExecutionNotFound | ValidationError | InvalidTransition | StoreError> =>
    Effect.flatMap(getSnapshot(id), (snapshot) => {
      const to = children.receivers(snapshot, event)
      if (to !== undefined) return regionSend.toRegions(to, event, span)
      return Effect.flatMap(accept(id, event, undefined, span, snapshot), (accepted) => {
        const queued = Effect.zipRight(write(id, accepted), wake(id, span))
        const direct = cluster?.route === undefined ? wakeDirect.attempt(accepted, span) : undefined
        return direct === undefined ? queued : Effect.flatMap(direct, (done) => done ? Effect.void : queued)
      })
    })

  /**
   * Sends an event and waits until the actor has consumed or discarded it. The event is
   * durable once enqueued; the wait is in memory, owned by the caller (and bounded by
   * `timeout`, after which the event still stands).
   */
  const sendAndWait = (id: string, event: unknown, options?: SendAndWaitOptions) =>
    cluster?.route === undefined ? sendAndWaitHere(id, event, options) : cluster.route.sendAndWait(id, event, options, sendAndWaitHere(id, event, options))

  const sendAndWaitHere = (id: string, event: unknown, options?: SendAndWaitOptions) =>
    Spans.around(tracing, "proctor.sendAndWait", { "proctor.execution.id": id }, (span) => sendAndWaitIn(id, event, options, span))

  const sendAndWaitIn = (id: string, event: unknown, options: SendAndWaitOptions | undefined, span: Tracer.Span | undefined) =>
    Effect.gen(function*() {
      const reply = yield* Deferred.make<SendResult, VersionConflict | StoreError>()
      // the actor leaves the inbox alone from here until the waiter is registered, in one
      // synchronous step with the enqueue's end (uninterruptible: the mark must be cleared)
      const entry = yield* Effect.uninterruptibleMask((restore) => {
        eventWaiters.takeOff(id)
        const expected = options?.expectVersion
        const stale = (s: Snapshot) => expected !== undefined && s.seq !== expected ? versionConflict(s, expected) : children.refuseWait(s, event)
        return Effect.onExit(restore(enqueue(id, event, stale, span)), (exit) =>
          Effect.sync(() => {
            if (Exit.isSuccess(exit)) eventWaiters.landed(id, exit.value.seq, reply, options?.expectVersion)
            else eventWaiters.failed(id)
          }))
      })
      yield* activate(id, span)
      const wait = Deferred.await(reply)
      return yield* (options?.timeout === undefined ? wait : Effect.timeoutFail(wait, {
        duration: options.timeout,
        onTimeout: () => new SendTimeout({ executionId: id, inboxSeq: entry.seq, timeout: Duration.format(Duration.decode(options.timeout!)) })
      })).pipe(Effect.ensuring(Effect.sync(() => eventWaiters.remove(id, entry.seq))))
    })

  return { send, sendAndWait, sendAndWaitHere }
}
