/**
 * What every action of the `workflow` tool does with a session: read the `session_id`
 * parameter, load the session (its snapshot, decoded context and workflow), refuse an
 * operation its status does not allow, and send it an event and wait until the runtime
 * applied it, or discarded it (a conflict). Runtime errors become tool errors that say what
 * to do. A session is an execution of a workflow's procedure; its id is the execution id.
 *
 * Changes to one session are serialized in this process (a lock per session) and each
 * event is confirmed: the action waits until the event's request id shows in the
 * session's context (applied) or in its error log (discarded by the transition, e.g. a
 * `PhaseConflict` when another process moved the session first).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Either, Schema } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError, ValidationError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { Runtime } from "../Runtime.js"
import type { Workflow } from "./definition.js"
import { WorkflowToolError } from "./errors.js"
import type { LoadProblem } from "./loader.js"
import type * as Params from "./params.js"
import { string } from "./params.js"
import type { EvidenceLimits, SessionEvent } from "./procedure.js"
import { phaseOf, SessionContext } from "./procedure.js"
import { isSessionId, SESSION_ID_FORMAT } from "./safety.js"
import { sessionStatus } from "./views.js"


/**
 * A loaded workflow with the procedure it compiles to.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly workflow: Workflow
  readonly procedure: Procedure.Any
}

/**
 * What the actions need besides the Runtime.
 *
 * @since 0.1.0
 * @category models
 */
export interface Environment {
  readonly workflows: ReadonlyMap<string, Entry>
  readonly problems: ReadonlyArray<LoadProblem>
  /** target files must stay inside it */
  readonly workspaceRoot: string
  /** what a phase and a session may hold; the workflows' procedures were compiled with the same */
  readonly limits: EvidenceLimits
}

export const fail = (code: WorkflowToolError["code"], problem: string, fix: string, details?: unknown) =>
  Effect.fail(new WorkflowToolError({ code, problem, fix, ...(details === undefined ? {} : { details }) }))

/** Maps the Runtime's errors to tool errors that say what to do. */
export const fromRuntime = (sessionId: string) =>
(error: ExecutionNotFound | InvalidTransition | StoreError | ValidationError): WorkflowToolError => {
  switch (error._tag) {
    case "ExecutionNotFound":
      return new WorkflowToolError({
        code: "SESSION_NOT_FOUND",
        problem: `No session with id "${sessionId}" exists.`,
        fix: "Check the id; list_sessions shows the known sessions, or call start to begin a new one."
      })
    case "InvalidTransition":
      return new WorkflowToolError({
        code: "INVALID_STATE",
        problem: error.message,
        fix: "Call get_state to see the session's status and what it accepts."
      })
    case "ValidationError":
      return new WorkflowToolError({ code: "INVALID_PARAMETER", problem: error.message, fix: "Fix the values passed and try again." })
    case "StoreError":
      return new WorkflowToolError({
        code: "INTERNAL",
        problem: error.message,
        fix: "The session store could not be read or written; try the call again. Nothing was changed if it failed."
      })
  }
}


const decodeContext = Schema.decodeUnknownEither(SessionContext)

/** A session: its snapshot, decoded context and workflow. */
export interface Session {
  readonly id: string
  readonly snapshot: Snapshot
  readonly context: SessionContext
  readonly entry: Entry
  /** the current phase, or undefined once completed */
  readonly phase: number | undefined
}

const LOCK_STRIPES = 64

const hash = (s: string) => {
  let h = 0
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0
  return Math.abs(h)
}

/** How long an action waits for the runtime to apply its event. */
const CONFIRM_TIMEOUT = Duration.seconds(15)

/**
 * The session operations the actions share, over the Runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (env: Environment) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const locks = yield* Effect.all(Array.from({ length: LOCK_STRIPES }, () => Effect.makeSemaphore(1)))
    const withLock = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>) => locks[hash(id) % LOCK_STRIPES]!.withPermits(1)(effect)

    const workflowNames = () => [...env.workflows.keys()].join(", ") || "(none loaded)"

    const sessionIdOf = (args: Params.Args) =>
      Effect.flatMap(string(args, "session_id", "ses_3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b", 100), (id) =>
        isSessionId(id)
          ? Effect.succeed(id)
          : Effect.fail(
            new WorkflowToolError({
              code: "INVALID_SESSION_ID",
              parameter: "session_id",
              problem: `Parameter "session_id" is not a valid session id.`,
              fix: `A session id is ${SESSION_ID_FORMAT}; use the session_id returned by start or list_sessions.`
            })
          ))

    const loadSession = (id: string) =>
      Effect.gen(function*() {
        const snapshot = yield* runtime.get(id).pipe(Effect.mapError(fromRuntime(id)))
        const name = snapshot.procedure.startsWith("workflow/") ? snapshot.procedure.slice("workflow/".length) : undefined
        const entry = name === undefined ? undefined : env.workflows.get(name)
        if (entry === undefined || entry.procedure.version !== snapshot.version) {
          return yield* fail(
            name === undefined ? "SESSION_NOT_FOUND" : "WORKFLOW_NOT_FOUND",
            name === undefined
              ? `No session with id "${id}" exists.`
              : `Session ${id} runs workflow "${name}" version ${snapshot.version}, which this server has not loaded.`,
            name === undefined
              ? "Check the id; list_sessions shows the known sessions."
              : `Restore that workflow folder (workflows loaded: ${workflowNames()}) and restart the server.`
          )
        }
        const context = decodeContext(snapshot.context)
        if (Either.isLeft(context)) {
          return yield* fail("INTERNAL", `Session ${id} has a context this server cannot read.`, "Check that the workflow version matches.")
        }
        return { id, snapshot, context: context.right, entry, phase: phaseOf(snapshot.state) } satisfies Session
      })

    const requireUsable = (s: Session, operation: string) => {
      const status = sessionStatus(s.snapshot.status)
      if (status === "deleted") {
        return fail("SESSION_DELETED", `Session ${s.id} was deleted; it cannot ${operation}.`, "Call start to begin a new session.")
      }
      if (status === "completed") {
        return fail("INVALID_STATE", `Session ${s.id} has completed all its phases; it cannot ${operation}.`, "Call get_session to read its record, or start a new session.")
      }
      if (status === "failed") {
        return fail("INVALID_STATE", `Session ${s.id} has failed; it cannot ${operation}.`, "Call get_errors to see why, then start a new session.")
      }
      return Effect.void
    }

    const requireActive = (s: Session, operation: string) =>
      Effect.zipRight(
        requireUsable(s, operation),
        s.snapshot.status === "paused"
          ? fail("INVALID_STATE", `Session ${s.id} is paused; it cannot ${operation}.`, "Call resume first, then try again.")
          : s.snapshot.status !== "waiting"
          ? fail("INVALID_STATE", `Session ${s.id} is ${s.snapshot.status}; it cannot ${operation}.`, "Try again in a moment; get_state shows its status.")
          : Effect.void
      )

    /** Sends an event and waits until the runtime applied it, or discarded it (a conflict). */
    const deliver = (s: Session, make: (requestId: string, at: number) => SessionEvent) =>
      Effect.gen(function*() {
        const requestId = crypto.randomUUID()
        const event = make(requestId, yield* Clock.currentTimeMillis)
        const result = yield* runtime.sendAndWait(s.id, event, { timeout: CONFIRM_TIMEOUT }).pipe(
          Effect.catchTags({
            SendTimeout: () =>
              fail(
                "INTERNAL",
                `The request was stored but not applied within ${Duration.format(CONFIRM_TIMEOUT)}.`,
                "Call get_state in a moment: the runtime applies it when it catches up."
              ),
            VersionConflict: (e) =>
              fail("CONFLICT", `Another client changed session ${s.id} first (${e.message}).`, "Call get_state to see where the session is now, then continue from there.")
          }),
          Effect.mapError((e) => e._tag === "WorkflowToolError" ? e : fromRuntime(s.id)(e))
        )
        if (result._tag === "Consumed") return result.snapshot
        if (isTerminal(result.snapshot.status) && result.reason.tag === "EventDiscarded") {
          return yield* fail("CONFLICT", `Session ${s.id} ended (${result.snapshot.status}) before the request was applied.`, "Call get_session to read its record.")
        }
        return yield* fail(
          "CONFLICT",
          `Another client changed session ${s.id} first: ${result.reason.message.replace(`[request ${requestId}]`, "").trim()}.`,
          "Call get_state to see where the session is now, then continue from there.",
          { error_type: result.reason.tag }
        )
      })

    /** When the current phase was entered: self-transitions (a failed checkpoint, a note) stay in the phase. */
    const phaseEnteredAt = (s: Session) =>
      Effect.map(runtime.history(s.id, { tail: 200 }).pipe(Effect.mapError(fromRuntime(s.id))), (history) => {
        for (let i = history.length - 1; i >= 0; i--) {
          const t = history[i]!
          if (t.to === s.snapshot.state && (t.from !== t.to || t.cause === "start")) return t.at
        }
        return history[0]?.at ?? s.snapshot.startedAt
      })

    return { runtime, env, withLock, workflowNames, sessionIdOf, loadSession, requireUsable, requireActive, deliver, phaseEnteredAt }
  })

/**
 * The session operations, as `make` builds them.
 *
 * @since 0.1.0
 * @category models
 */
export type Sessions = Effect.Effect.Success<ReturnType<typeof make>>
