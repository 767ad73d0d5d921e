/**
 * Events sent to executions (`Runtime.send`, `sendAndWait`): an event is checked against
 * the execution's snapshot and its procedure's Schema, then put in the execution's durable
 * inbox and its actor woken; or, for an execution waiting out of memory, its transition
 * committed in the sender's fiber (`wakeDirect.ts`); or, for a parent in a parallel state,
 * given to the regions that take it (`regionSend.ts`). `sendAndWait` then waits for the
 * actor to commit the event (`eventWaiters.ts`).
 */
import type { Fiber, Tracer } from "effect"
import { Clock, Context, Deferred, Duration, Effect, Either, Exit, Option } from "effect"
import type { StoreError, ValidationError, VersionConflict } from "../Errors.js"
import { ExecutionNotFound, InvalidTransition, SendTimeout } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { AnyState } from "../Procedure.js"
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

/**
 * An event checked against the snapshot it was sent to and encoded: what `write` puts in the
 * inbox, and what the direct wake commits. A class, not an object with a closure per event:
 * `refuse` is only called when the execution ended before the event was stored.
 */
class Checked implements Accepted, WakeDirect.Accepted {
  constructor(
    readonly snapshot: Snapshot,
    readonly compiled: Compiled,
    readonly decoded: { readonly _tag: string },
    readonly encoded: unknown,
    readonly now: number
  ) {}

  /** the error of a send of this event to `snapshot`, which has ended or waits for other events */
  refuse(snapshot: Snapshot): InvalidTransition {
    // in a tree, the wait's enclosing states handle events too
    const accepts = acceptedTags(this.compiled.def, this.snapshot.state).join(", ")
    return new InvalidTransition({
      executionId: snapshot.id,
      operation: `send "${this.decoded._tag}" to`,
      status: snapshot.status,
      state: snapshot.state,
      hint: isTerminal(snapshot.status)
        ? "It has already ended and takes no more events."
        : `State "${snapshot.state}" accepts ${accepts === "" ? "no events" : accepts}.`
    })
  }
}

/** whether a wait in `state` (`path`) takes events tagged `tag`: its own or, in a tree, an enclosing state's */
const takes = (compiled: Compiled, path: string, state: AnyState | undefined, tag: string) =>
  state?._tag !== "Wait" || Object.hasOwn(state.on, tag) || (compiled.tree !== undefined && acceptedTags(compiled.def, path).includes(tag))

type SendError = ExecutionNotFound | ValidationError | InvalidTransition | StoreError

export const make = (deps: Deps) => {
  const { store, tracing, children, eventWaiters, getSnapshot, lookup, unavailable, activate, wake, wakeDirect, cluster } = deps

  /**
   * Validates an event for the execution's snapshot and encodes it, unless `refuseFirst`
   * finds an error in the snapshot first; synchronous (a send makes no Effect step for it).
   */
  const check = <E>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined,
    snapshot: Snapshot,
    now: number
  ): Either.Either<Checked, E | InvalidTransition | ValidationError> => {
    const compiled = lookup(snapshot)
    if (compiled === undefined) {
      return Either.left(
        new InvalidTransition({
          executionId: id,
          operation: "send an event to",
          status: snapshot.status,
          state: snapshot.state,
          hint: unavailable(snapshot)
        })
      )
    }
    const decoded = compiled.decodeEvent(event)
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    const tag = decoded.right._tag
    span?.attribute("proctor.event.type", tag)
    if (
      isTerminal(snapshot.status) ||
      (snapshot.status === "waiting" && !takes(compiled, snapshot.state, stateOf(compiled.def, snapshot.state), tag))
    ) {
      return Either.left(new Checked(snapshot, compiled, decoded.right, undefined, now).refuse(snapshot))
    }
    const refused = refuseFirst?.(snapshot)
    if (refused !== undefined) return Either.left(refused)
    const encoded = compiled.encodeEvent(decoded.right)
    if (Either.isLeft(encoded)) return Either.left(encoded.left)
    return Either.right(new Checked(snapshot, compiled, decoded.right, encoded.right, now))
  }

  /** `check` as an Effect, reading the snapshot unless the caller has just read it */
  const accept = <E = never>(
    id: string,
    event: unknown,
    refuseFirst: ((snapshot: Snapshot) => E | undefined) | undefined,
    span: Tracer.Span | undefined,
    read?: Snapshot
  ): Effect.Effect<Checked, E | InvalidTransition | ValidationError | ExecutionNotFound | StoreError> =>
    Effect.flatMap(read === undefined ? getSnapshot(id) : Effect.succeed(read), (snapshot) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => check(id, event, refuseFirst, span, snapshot, now)))

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

  /** `Spans.around`, with the fiber and its span maker given to the send (which needs both) */
  const send = (id: string, event: unknown) =>
    Effect.withFiberRuntime<void, SendError>((fiber) => {
      const spans = Spans.make(fiber, tracing)
      if (!spans.enabled) return sendTo(fiber, spans, id, event, undefined)
      const span = spans.make("proctor.send", fiber.currentSpan, { "proctor.execution.id": id })
      // the span ends on the way out, without an Effect of its own for it
      return Effect.uninterruptibleMask((restore) =>
        Effect.matchCauseEffect(restore(sendTo(fiber, spans, id, event, span)), {
          onFailure: (cause) => {
            const exit = Exit.failCause(cause)
            span.end(spans.now(), exit)
            return exit
          },
          onSuccess: () => {
            span.end(spans.now(), Exit.void)
            return Exit.void
          }
        })
      )
    })

  /**
   * To the execution's inbox, or, while it is in a parallel state whose regions take the
   * event, to theirs. An execution waiting out of memory takes the event in the sender's
   * fiber, when it can (`wakeDirect.ts`). The path of a wake makes few Effect steps: each
   * is a closure and a turn of the fiber's loop, and a wave of wakes makes them by the
   * hundred thousand.
   */
  const sendTo = (
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    spans: Spans.Spans,
    id: string,
    event: unknown,
    span: Tracer.Span | undefined
  ): Effect.Effect<void, SendError> =>
    Effect.flatMap(store.get(id), (found): Effect.Effect<void, SendError> => {
      if (found._tag === "None") return Effect.fail(new ExecutionNotFound({ executionId: id }))
      const snapshot = found.value
      const to = children.receivers(snapshot, event)
      if (to !== undefined) return regionSend.toRegions(to, event, span)
      const checked = check<never>(id, event, undefined, span, snapshot, Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis())
      if (Either.isLeft(checked)) return Effect.fail(checked.left)
      const accepted = checked.right
      const queued = () => Effect.zipRight(write(id, accepted), wake(id, span))
      return cluster?.route === undefined ? wakeDirect.attempt(accepted, fiber, spans, span, queued) ?? queued() : queued()
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
