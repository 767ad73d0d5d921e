/**
 * The one `workflow` tool: its JSON input schema (an `action` enum of the 15 actions and
 * their parameters) and the dispatcher that turns a call into a tool result. Every
 * failure, including defects, becomes a tool error result (`isError: true`) whose text
 * says how to fix the call; the server never crashes on input.
 *
 * @since 0.1.0
 */
import { Cause, Effect } from "effect"
import type { Action } from "./actions.js"
import { ACTIONS } from "./actions.js"
import { WorkflowToolError } from "./errors.js"
import type * as Params from "./params.js"
import { MAX_DEPTH, MAX_EVIDENCE_BYTES, SESSION_ID_FORMAT } from "./safety.js"

/**
 * The tool's name.
 *
 * @since 0.1.0
 * @category constants
 */
export const TOOL_NAME = "workflow"

/**
 * The tool as `tools/list` shows it.
 *
 * @since 0.1.0
 * @category constants
 */
export const tool = {
  name: TOOL_NAME,
  title: "Phase-gated workflows",
  description:
    "Run phase-gated workflows (such as test_generation and spec_creation) as durable sessions. " +
    "Each phase has tasks and a checkpoint: complete_phase advances only when the evidence passes it. " +
    "Sessions survive restarts. Discovery: list_workflows. Execution: start, get_phase, get_task, complete_phase, get_state, " +
    "get_artifact (stored evidence is summarized elsewhere; this reads its content a page at a time). " +
    "Management: list_sessions, get_session, delete_session, pause, resume. Recovery: retry_phase, rollback, get_errors.",
  inputSchema: {
    type: "object" as const,
    properties: {
      action: {
        type: "string",
        enum: [...ACTIONS],
        description: "What to do. Each action reads the parameters listed in its description below."
      },
      session_id: {
        type: "string",
        description: `The session (${SESSION_ID_FORMAT}). For get_phase, get_task, complete_phase, get_state, get_artifact, get_session, delete_session, pause, resume, retry_phase, rollback, get_errors.`
      },
      workflow_type: { type: "string", description: "start (required), list_sessions (filter): the workflow's name from list_workflows." },
      target_file: { type: "string", description: "start: the file to work on, relative to the workspace root." },
      options: { type: "object", description: "start: free-form options recorded with the session (JSON object, at most 64 KiB)." },
      category: { type: "string", description: "list_workflows: only workflows of this category." },
      phase: {
        type: "integer",
        minimum: 1,
        description: "complete_phase, retry_phase (required: the current phase); get_artifact (required: a completed phase, or the current one for its draft); get_task, get_errors (optional)."
      },
      task_number: { type: "integer", minimum: 1, description: "get_task: the task within the phase, from 1." },
      evidence: {
        type: "object",
        description: `complete_phase: the checkpoint's evidence fields (at most ${MAX_EVIDENCE_BYTES} bytes of JSON, ${MAX_DEPTH} levels deep). ` +
          "Fields sent with a failed submission are kept as a draft and count toward the phase's limit; every submission counts " +
          "toward the session's limit (both named in the EVIDENCE_TOO_LARGE error)."
      },
      status: {
        type: "string",
        enum: ["active", "paused", "completed", "deleted", "failed"],
        description: "list_sessions: only sessions with this status."
      },
      limit: {
        type: "integer",
        minimum: 1,
        maximum: 65536,
        description: "list_sessions: at most this many sessions (default 100, at most 1000); get_errors: errors per page (default 20, at most 50); " +
          "get_artifact: characters per page (default and at most 65536)."
      },
      offset: {
        type: "integer",
        minimum: 0,
        description: "get_artifact: the character to start the page at (default 0; each page gives next_offset); get_errors: the error to start at (default 0)."
      },
      reason: { type: "string", description: "delete_session: why (kept with the session)." },
      checkpoint_note: { type: "string", description: "pause: a note on where you stopped, shown again on resume." },
      reset_evidence: { type: "boolean", description: "retry_phase: discard the evidence kept from failed submissions (default false)." },
      to_phase: { type: "integer", minimum: 1, description: "rollback: the earlier phase to go back to." }
    },
    required: ["action"]
  }
}

/**
 * A tool result.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolResult {
  readonly [key: string]: unknown
  readonly content: ReadonlyArray<{ readonly type: "text"; readonly text: string }>
  readonly structuredContent?: { readonly [key: string]: unknown } | undefined
  readonly isError?: boolean | undefined
}

/**
 * A successful result: the payload as JSON text and as structured content.
 *
 * @since 0.1.0
 * @category constructors
 */
export const success = (payload: object): ToolResult => ({
  content: [{ type: "text", text: JSON.stringify(payload, null, 2) }],
  structuredContent: payload as { readonly [key: string]: unknown }
})

/**
 * An error result.
 *
 * @since 0.1.0
 * @category constructors
 */
export const failure = (error: WorkflowToolError): ToolResult => {
  const payload = {
    error: {
      code: error.code,
      message: error.problem,
      fix: error.fix,
      ...(error.parameter === undefined ? {} : { parameter: error.parameter }),
      ...(error.details === undefined ? {} : { details: error.details })
    }
  }
  return { content: [{ type: "text", text: JSON.stringify(payload, null, 2) }], structuredContent: payload, isError: true }
}

/**
 * The result for a request the transport refused before parsing it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const refusal = (reason: "too_large" | "too_deep", bytes: number) =>
  failure(
    reason === "too_large"
      ? new WorkflowToolError({
        code: "EVIDENCE_TOO_LARGE",
        parameter: "evidence",
        problem: `The request is ${bytes} bytes; evidence may be at most ${MAX_EVIDENCE_BYTES} bytes. It was not parsed.`,
        fix: "Send a summary and file paths instead of whole file contents."
      })
      : new WorkflowToolError({
        code: "EVIDENCE_TOO_DEEP",
        parameter: "evidence",
        problem: `The request nests deeper than allowed (evidence may nest ${MAX_DEPTH} levels). It was not parsed.`,
        fix: "Flatten the evidence: checkpoints need summaries, not deep structures."
      })
  ) as ToolResult & { readonly isError: true }

const isAction = (u: unknown): u is Action => typeof u === "string" && (ACTIONS as ReadonlyArray<string>).includes(u)

/**
 * Dispatches one call of the tool. Never fails: errors and defects become error results.
 *
 * @since 0.1.0
 * @category dispatch
 */
export const dispatch = (
  handlers: { readonly [A in Action]: (args: Params.Args) => Effect.Effect<object, WorkflowToolError> },
  name: string,
  args: unknown
): Effect.Effect<ToolResult> => {
  const run = Effect.suspend((): Effect.Effect<object, WorkflowToolError> => {
    if (name !== TOOL_NAME) {
      return Effect.fail(
        new WorkflowToolError({ code: "UNKNOWN_ACTION", problem: `There is no tool named "${name}".`, fix: `Call the tool "${TOOL_NAME}" with an action.` })
      )
    }
    if (typeof args !== "object" || args === null || Array.isArray(args)) {
      return Effect.fail(
        new WorkflowToolError({
          code: "INVALID_PARAMETER",
          parameter: "arguments",
          problem: "The arguments must be a JSON object.",
          fix: `Pass { "action": "list_workflows" } or another action: ${ACTIONS.join(", ")}.`
        })
      )
    }
    const action = (args as Params.Args).action
    if (!isAction(action)) {
      return Effect.fail(
        new WorkflowToolError({
          code: action === undefined ? "INVALID_PARAMETER" : "UNKNOWN_ACTION",
          parameter: "action",
          problem: action === undefined
            ? `Parameter "action" is required.`
            : `Unknown action ${JSON.stringify(action)?.slice(0, 100)}.`,
          fix: `Pass action as one of: ${ACTIONS.join(", ")}.`,
          details: { valid_actions: ACTIONS }
        })
      )
    }
    return handlers[action](args as Params.Args).pipe(Effect.withSpan(`proctor.mcp.${action}`))
  })
  return run.pipe(
    Effect.map(success),
    Effect.catchAll((error) => Effect.succeed(failure(error))),
    Effect.catchAllCause((cause) =>
      Effect.as(
        Effect.logError("workflow tool: unexpected failure", cause),
        failure(
          new WorkflowToolError({
            code: "INTERNAL",
            problem: `The server failed unexpectedly: ${Cause.pretty(cause).split("\n")[0]}`,
            fix: "Try the call again; get_state shows whether the session changed. Report the problem if it repeats."
          })
        )
      )
    )
  )
}
