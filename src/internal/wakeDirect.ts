/**
 * Waking a passivated execution with an event, in the sender's fiber: when the execution is
 * waiting and not in memory, `send` commits the event's transition itself (the event is
 * consumed in the commit that records it) instead of enqueueing the event and starting an
 * actor that reads it back and commits the transition. One group commit instead of two, and
 * no fiber, inbox row or second read of the execution; an execution that has more to do
 * after the event (a step) then gets a run that starts from the committed snapshot.
 *
 * It keeps the promises of the queued path: the execution is claimed in memory first (no
 * run of it starts until the commit is done, and what is delivered meanwhile waits for
 * that run), its inbox is read empty first (an older event goes first, through the queued
 * path), the commit is checked against the row version the sender read, and `send`
 * returns once the commit is durable. Anything else (another outcome than a transition, a
 * conflict, an event already queued) releases the claim and takes the queued path.
 */
import type { Fiber, Tracer } from "effect"
import { Cause, Effect, Either, Exit } from "effect"
import type { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { Handle } from "./handle.js"
import { finishedBy, stateDuration, transitionsTotal } from "./metrics.js"
import type { Shared } from "./shared.js"
import type * as Spans from "./spans.js"
import type { Compiled } from "./transition.js"
import { transition } from "./transition.js"

/** What the direct path asks of the supervisor. */
export interface Claims {
  readonly claim: (id: string) => Handle | undefined
  readonly release: (handle: Handle, run: boolean) => Effect.Effect<void>
}

/** An event `send` has validated and encoded for this snapshot. */
export interface Accepted {
  readonly snapshot: Snapshot
  readonly compiled: Compiled
  readonly decoded: { readonly _tag: string }
  readonly encoded: unknown
  /** when it was accepted (the transition's time) */
  readonly now: number
}

export const make = (shared: Shared, claims: Claims) => {
  const { store, eventWaiters } = shared

  /**
   * Commits the event's transition, when the direct path applies, or else runs `queued` (the
   * caller's enqueue of the event, as usual: the execution is in memory, or its inbox holds
   * an event, ...). Undefined (nothing done) when the execution is not waiting, or is one
   * whose first run reads more than its row (a procedure with compensations reads its
   * history; a child checks its parent).
   */
  const attempt = <E>(
    event: Accepted,
    /** the sender's fiber, and its span maker */
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    spans: Spans.Spans,
    span: Tracer.Span | undefined,
    queued: () => Effect.Effect<void, E>
  ): Effect.Effect<void, StoreError | E> | undefined => {
    const { compiled, snapshot } = event
    if (
      snapshot.status !== "waiting" || snapshot.parentId !== undefined || compiled.compensable.size > 0 ||
      eventWaiters.isEnqueuing(snapshot.id)
    ) return undefined
    // claimed and released in one uninterruptible region: an interrupted sender waits for the
    // commit (the queued path, once the claim is released, is interruptible as it always was)
    return Effect.uninterruptibleMask((restore) => {
      const handle = claims.claim(snapshot.id)
      const fallBack = () => restore(queued())
      if (handle === undefined) return fallBack()
      return Effect.matchCauseEffect(store.inbox(snapshot.id, 1), {
        onFailure: (cause) => Effect.zipRight(claims.release(handle, false), Effect.failCause(cause)),
        onSuccess: (pending) =>
          pending.length > 0 ? Effect.zipRight(claims.release(handle, false), fallBack()) : commit(fiber, spans, handle, event, span, fallBack)
      })
    })
  }

  const commit = <E>(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    spans: Spans.Spans,
    handle: Handle,
    event: Accepted,
    cause: Tracer.Span | undefined,
    queued: () => Effect.Effect<void, E>
  ): Effect.Effect<void, StoreError | E> => {
    const { compiled, snapshot: s } = event
    const context = compiled.decodeContext(s.context)
    const output = Either.isLeft(context) ? undefined : transition(compiled, { snapshot: s, context: context.right }, {
      _tag: "Event",
      event: event.decoded,
      encoded: event.encoded,
      compensable: false
    }, event.now)
    // a discard (a guard said no) or a rejection is the actor's to commit, with its error entry
    if (output?._tag !== "Next") return Effect.zipRight(claims.release(handle, false), queued())
    const next = output.machine
    const t = output.transition
    // the spans the actor's run would make: the run, and the visit of the wait state it ends;
    // none under Effect's own tracer (`Spans.lazy`), which exports nothing: they would be
    // read by nothing (a run makes its own there only when a step reads its parents)
    const def = compiled.def
    const run = spans.enabled && !spans.lazy
      ? spans.make("proctor.execution", cause ?? fiber.currentSpan, {
        "proctor.execution.id": s.id,
        "proctor.procedure.name": def.name,
        "proctor.procedure.version": def.version
      })
      : undefined
    const visit = run === undefined ? undefined : spans.make("proctor.state", run, {
      "proctor.execution.id": s.id,
      "proctor.procedure.name": def.name,
      "proctor.state.name": s.state,
      "proctor.state.visit": s.visit
    })
    const end = (exit: Exit.Exit<unknown, unknown>, status: string) => {
      if (run === undefined) return
      const at = spans.now()
      visit!.end(at, exit)
      run.attribute("proctor.execution.status", status)
      run.end(at, exit)
    }
    return Effect.matchCauseEffect(store.commit({ snapshot: next.snapshot, expectedVersion: s.rowVersion, transition: t }), {
      onFailure: (failure): Effect.Effect<void, StoreError | E> => {
        end(Exit.failCause(failure), s.status)
        const error = Cause.failureOption(failure)
        // the row moved on since the sender read it (or, fenced, another runtime owns it): the
        // queued path decides from the current one, as it would have
        if (error._tag === "Some" && (error.value.kind === "Conflict" || error.value.kind === "Fenced")) {
          return Effect.zipRight(claims.release(handle, false), queued())
        }
        return Effect.zipRight(claims.release(handle, false), Effect.failCause(failure))
      },
      onSuccess: () => {
        const status = next.snapshot.status
        end(Exit.void, status)
        stateDuration.unsafeUpdate(t.duration, [])
        transitionsTotal.unsafeUpdate(1, [])
        if (isTerminal(status)) finishedBy(status).unsafeUpdate(1, [])
        shared.publish(next.snapshot, t)
        const more = !isTerminal(status)
        // a run that follows (more to do, or a message came meanwhile) starts from this commit
        if (more || handle.mailbox.size > 0) handle.cached = { compiled, machine: next, completed: [] }
        // and joins the sender's trace, as a run the event started would
        if (more) handle.mailbox.offer({ _tag: "Inbox", cause })
        return claims.release(handle, more)
      }
    })
  }

  return { attempt }
}
