/**
 * An execution's actor: what a run does before its loop (`run.ts`) starts. A run takes the
 * execution from the handle or loads it from the store, sets the execution's span and log
 * annotations on its fiber, and loops until the execution ends, parks, or leaves memory;
 * the supervisor (`supervisor.ts`) starts runs and decides what follows one.
 */
import { Clock, Context, Effect, Exit, FiberRef, HashMap } from "effect"
import type { StoreError } from "../Errors.js"
import { ExecutionNotFound, InvalidTransition } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { Handle } from "./handle.js"
import * as Load from "./load.js"
import type { Env, Restore, SupervisorOps } from "./run.js"
import { Run } from "./run.js"
import type { Shared } from "./shared.js"
import * as Spans from "./spans.js"
import { procedureKey } from "./transition.js"

export type { Restore, SupervisorOps } from "./run.js"
export { versionConflict } from "./run.js"

export const make = (shared: Shared, supervisor: SupervisorOps) => {
  const { loadMachine, detach } = Load.make(shared)
  const env: Env = { shared, supervisor, detach }

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
   * A run. The execution's span and log annotations are set on the run fiber (it is
   * dedicated to this execution) rather than scoped around the run: the same effect for
   * much less work. The run's span is a child of the `start` or `send` that started the
   * run (it joins the caller's trace), and links to those it serves after that. The run
   * fiber is uninterruptible except inside `restore` (a step, a backoff): commits cannot
   * be cut in half by a command; a command that must stop a step, or a step's timeout,
   * replaces the run instead (`restartNow`).
   */
  const runActor = (handle: Handle, restore: Restore) =>
    Effect.withFiberRuntime<void, StoreError>((fiber) => {
      const spans = Spans.make(fiber, shared.tracing, shared.fast)
      const first = handle.mailbox.peek()
      const cause = first?._tag === "Inbox" ? first.cause : undefined
      const executionSpan = spans.make("proctor.execution", cause ?? fiber.currentSpan, { "proctor.execution.id": handle.id })
      const annotations = HashMap.set(fiber.getFiberRef(FiberRef.currentLogAnnotations), "executionId", handle.id)
      let run: Run | undefined
      const body = Effect.flatMap(loadMachine(handle), (cached) => {
        if (cached === undefined) return supervisor.drainMailbox(handle, new ExecutionNotFound({ executionId: handle.id }))
        if ("missing" in cached) return cannotRun(handle, cached.missing!)
        const def = cached.compiled.def
        executionSpan.attribute("proctor.procedure.name", def.name)
        executionSpan.attribute("proctor.procedure.version", def.version)
        const withProcedure = HashMap.set(annotations, "procedure", def.name)
        run = new Run(env, handle, fiber, restore, spans, executionSpan, withProcedure, cached, Context.get(fiber.currentDefaultServices, Clock.Clock))
        const started = run
        return Spans.setParentAndAnnotations(fiber, spans, executionSpan, withProcedure, Effect.suspend(() => started.loop()))
      })
      // one frame on the fiber's stack for the run's end (`Effect.onExit` makes three): the
      // run is uninterruptible here, so the handlers always run
      const end = (exit: Exit.Exit<unknown, unknown>) => {
        run?.end(exit)
        executionSpan.end(spans.now(), exit)
      }
      return Spans.setParentAndAnnotations(
        fiber,
        spans,
        executionSpan,
        annotations,
        Effect.matchCauseEffect(body, {
          onFailure: (cause) => {
            end(Exit.failCause(cause))
            return Effect.failCause(cause)
          },
          onSuccess: () => {
            end(Exit.void)
            return Effect.void
          }
        })
      )
    })

  return { runActor }
}
