/**
 * What every action of the `workflow` tool does with a session: read the `session_id`
 * parameter, load the session (its snapshot, decoded context and workflow), refuse an
 * operation its status does not allow, and send it an event and wait until the runtime
 * applied it, or discarded it (a conflict). Runtime errors become tool errors that say what
 * to do. A session is an execution of a workflow's procedure; its id is the execution id.
 *
 * Actions hold no lock and no rule of their own: an action reads the session, decides by
 * the core's rules, and sends its event with the seq it read as `expectVersion`; if another
 * client changed the session meanwhile, the action reads it again and decides anew
 * (`changing`). The procedure's guards are the authority on what an event may do.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Either, Schema } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError, ValidationError, VersionConflict } from "../Errors.js"
import type { Command, Snapshot, Transition } from "../Execution.js"
import { allowedOperations, isTerminal, refusal } from "../Execution.js"
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

/** How long an action waits for the runtime to apply its event. */
const CONFIRM_TIMEOUT = Duration.seconds(15)

/** How many times an action reads a session anew after another client changed it under the action. */
const ATTEMPTS = 3

/** What an action asks of a session: an operator command, or one of the session's events. */
export type Request = { readonly command: Command } | { readonly event: SessionEvent["_tag"] }

/**
 * The session operations the actions share, over the Runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (env: Environment) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime

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

    /**
     * Refuses what the session does not accept now, by the core's rules (`Execution.refusal`
     * for a command, `Execution.allowedOperations` for an event), in the tool's words. An
     * event is refused while paused too: the runtime would keep it until resume, and the
     * action waits for it to be applied.
     */
    const require = (s: Session, operation: string, request: Request) => {
      const status = s.snapshot.status
      if (isTerminal(status)) {
        const shown = sessionStatus(status)
        return shown === "deleted"
          ? fail("SESSION_DELETED", `Session ${s.id} was deleted; it cannot ${operation}.`, "Call start to begin a new session.")
          : shown === "completed"
          ? fail("INVALID_STATE", `Session ${s.id} has completed all its phases; it cannot ${operation}.`, "Call get_session to read its record, or start a new session.")
          : fail("INVALID_STATE", `Session ${s.id} has failed; it cannot ${operation}.`, "Call get_errors to see why, then start a new session.")
      }
      if ("command" in request) {
        const hint = refusal(request.command, status)
        return hint === undefined
          ? Effect.void
          : fail("INVALID_STATE", `Session ${s.id} cannot ${operation} now: ${hint}`, "Call get_state to see its status and what to do next.")
      }
      if (status === "paused") return fail("INVALID_STATE", `Session ${s.id} is paused; it cannot ${operation}.`, "Call resume first, then try again.")
      return allowedOperations(s.snapshot, s.entry.procedure).events.includes(request.event)
        ? Effect.void
        : fail("INVALID_STATE", `Session ${s.id} is ${status}; it cannot ${operation}.`, "Try again in a moment; get_state shows its status.")
    }

    /**
     * Runs `body` on the session as it is now: `body` reads it, decides, and changes it with
     * `deliver`, which the runtime applies only if nothing changed the session since the read
     * (optimistic concurrency). When something did, the session is read again and `body`
     * decides anew, up to `ATTEMPTS` times; then the action answers CONFLICT, and nothing was
     * changed by it.
     */
    const changing = <A>(id: string, body: (s: Session) => Effect.Effect<A, WorkflowToolError | VersionConflict>) =>
      Effect.flatMap(loadSession(id), body).pipe(
        Effect.retry({ times: ATTEMPTS - 1, while: (e) => e._tag === "VersionConflict" }),
        Effect.catchTag("VersionConflict", () =>
          fail(
            "CONFLICT",
            `Session ${id} was changed by other calls ${ATTEMPTS} times while this call tried to apply; this call changed nothing.`,
            "Call get_state to see where the session is now, then make the call again if it still applies."
          ))
      )

    /**
     * Sends an event and waits until the runtime applied it, or discarded it, provided the
     * session is still as `s` shows it (`expectVersion`); a `VersionConflict` is for `changing`.
     */
    const deliver = (s: Session, make: (requestId: string, at: number) => SessionEvent) =>
      Effect.gen(function*() {
        const requestId = crypto.randomUUID()
        const event = make(requestId, yield* Clock.currentTimeMillis)
        const result = yield* runtime.sendAndWait(s.id, event, { timeout: CONFIRM_TIMEOUT, expectVersion: s.snapshot.seq }).pipe(
          Effect.catchTag("SendTimeout", () =>
            fail(
              "INTERNAL",
              `The request was stored but not applied within ${Duration.format(CONFIRM_TIMEOUT)}.`,
              "Call get_state in a moment: the runtime applies it when it catches up."
            )),
          Effect.mapError((e) => e._tag === "WorkflowToolError" || e._tag === "VersionConflict" ? e : fromRuntime(s.id)(e))
        )
        if (result._tag === "Consumed") return result.snapshot
        if (isTerminal(result.snapshot.status) && result.reason.tag === "EventDiscarded") {
          return yield* fail("CONFLICT", `Session ${s.id} ended (${result.snapshot.status}) before the request was applied.`, "Call get_session to read its record.")
        }
        return yield* fail(
          "CONFLICT",
          `Session ${s.id} did not apply the request: ${result.reason.message}.`,
          "Call get_state to see where the session is now, then continue from there.",
          { error_type: result.reason.tag }
        )
      })

    /**
     * When a deleted session was deleted, and why: its history's `cancel` row, or, for one
     * deleted before the reason was kept there, what `MarkDeleted` put in its context.
     */
    const deletionOf = (s: Session, history?: ReadonlyArray<Transition>) =>
      Effect.map(
        history === undefined ? runtime.history(s.id, { tail: 1 }).pipe(Effect.mapError(fromRuntime(s.id))) : Effect.succeed(history),
        (rows) => {
          const row = [...rows].reverse().find((t) => t.cause === "cancel")
          const reason = row?.reason ?? s.context.deleted?.reason
          return { at: row?.at ?? s.context.deleted?.at ?? s.snapshot.updatedAt, ...(reason === undefined ? {} : { reason }) }
        }
      )

    /** When the current phase was entered: self-transitions (a failed checkpoint, a note) stay in the phase. */
    const phaseEnteredAt = (s: Session) =>
      Effect.map(runtime.history(s.id, { tail: 200 }).pipe(Effect.mapError(fromRuntime(s.id))), (history) => {
        for (let i = history.length - 1; i >= 0; i--) {
          const t = history[i]!
          if (t.to === s.snapshot.state && (t.from !== t.to || t.cause === "start")) return t.at
        }
        return history[0]?.at ?? s.snapshot.startedAt
      })

    return { runtime, env, workflowNames, sessionIdOf, loadSession, require, changing, deliver, deletionOf, phaseEnteredAt }
  })

/**
 * The session operations, as `make` builds them.
 *
 * @since 0.1.0
 * @category models
 */
export type Sessions = Effect.Effect.Success<ReturnType<typeof make>>
