/**
 * An execution's actor: what a run does before its loop (`run.ts`) starts. A run takes the
 * execution from the handle or loads it from the store, sets the execution's span and log
 * annotations on its fiber, and loops until the execution ends, parks, or leaves memory;
 * the supervisor (`supervisor.ts`) makes runs, forks them and decides what follows one.
 */
import { Effect, FiberRef, HashMap } from "effect"
import type { StoreError } from "../Errors.js"
import { ExecutionNotFound, InvalidTransition } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { Cached, Handle } from "./handle.js"
import * as Load from "./load.js"
import { LogAnnotations } from "./logAnnotations.js"
import type { Env, SupervisorOps } from "./run.js"
import { Run } from "./run.js"
import type { Shared } from "./shared.js"
import * as Spans from "./spans.js"
import { procedureKey } from "./transition.js"

export type { Restore, SupervisorOps } from "./run.js"

export const make = (shared: Shared, supervisor: SupervisorOps) => {
  const { loadMachine, detach } = Load.make(shared)

  /** The definition of this execution is not registered (or changed): its commands are refused. */
  const cannotRun = (handle: Handle, s: Snapshot) => {
    const key = procedureKey(s.procedure, s.version)
    const hint = shared.unavailable(s)
    const refuse = supervisor.drainMailbox(handle, new InvalidTransition({ executionId: handle.id, operation: "run", status: s.status, state: s.state, hint }))
    if (shared.reported.has(key)) return refuse
    shared.reported.add(key)
    return Effect.zipRight(Effect.logError(`Execution ${handle.id} (and any other of ${key}) cannot run: ${hint}`), refuse)
  }

  /**
   * The start of a run, in its fiber. The execution's span and log annotations are set on
   * the run fiber (it is dedicated to this execution) rather than scoped around the run:
   * the same effect for much less work. The run's span is a child of the `start` or
   * `send` that started the run (it joins the caller's trace), and links to those it
   * serves after that. The run fiber is uninterruptible except inside `restore` (a step,
   * a backoff): commits cannot be cut in half by a command; a command that must stop a
   * step, or a step's timeout, replaces the run instead (`restartNow`).
   */
  const start = (run: Run): Effect.Effect<void, StoreError> => {
    const { handle, self: fiber } = run
    if (env.spans === undefined) {
      env.spans = Spans.make(fiber, shared.tracing, shared.fast)
      env.betweenAttempts = Spans.currentRefs(fiber, env.spans)
    }
    const first = handle.mailbox.peek()
    const cause = first?._tag === "Inbox" ? first.cause : undefined
    const base = fiber.getFiberRef(FiberRef.currentLogAnnotations)
    run.started(cause ?? fiber.currentSpan, base)
    // in memory unless the run follows a restart or a passivation
    const cached = handle.cached
    if (cached !== undefined) return begin(run, cached)
    return Spans.setParentAndAnnotations(
      fiber,
      run.spans,
      parentSpan(run),
      HashMap.set(base, "executionId", handle.id),
      Effect.flatMap(loadMachine(handle), (cached) => {
        if (cached === undefined) return supervisor.drainMailbox(handle, new ExecutionNotFound({ executionId: handle.id }))
        if ("missing" in cached) return cannotRun(handle, cached.missing!)
        const span = parentSpan(run)
        span?.attribute("proctor.procedure.name", cached.compiled.def.name)
        span?.attribute("proctor.procedure.version", cached.compiled.def.version)
        return begin(run, cached)
      })
    )
  }

  /**
   * The parent span of what a run does outside a step's attempt (its store calls): its span,
   * unless that is made only when read (`Spans.lazy`: spans are then read only from a step).
   */
  const parentSpan = (run: Run) => run.spans.lazy ? undefined : run.executionSpan

  const begin = (run: Run, cached: Cached) => {
    const withProcedure = annotations.run(run.baseAnnotations, cached.compiled.def.name, run.id)
    return Spans.setParentAndAnnotations(run.self, run.spans, parentSpan(run), withProcedure, Effect.suspend(() => run.begin(cached)))
  }

  const annotations = new LogAnnotations()
  // the span maker of every run, made by the first from its fiber: every run's fiber is
  // forked from the runtime's (`Shared.forkRun`), with its tracer, clock and annotations
  const env: Env = { shared, supervisor, detach, start, annotations, spans: undefined, betweenAttempts: undefined }

  /** A run of the actor of `handle`, after `before` (a restart's backoff), for the supervisor to fork. */
  const makeRun = (handle: Handle, before?: Effect.Effect<void, StoreError>) => new Run(env, handle, before)

  return { makeRun }
}
