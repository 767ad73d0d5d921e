/**
 * The one `workflow` tool as clients see it: its name, its JSON input schema (an `action`
 * enum of the 15 actions and their parameters) and the shape of its results. Plain data
 * without Effect, so that `proctor mcp` can answer the protocol with it while the server's
 * modules are still loading (src/mcp/command.ts).
 *
 * @since 0.1.0
 */
import { MAX_DEPTH, MAX_EVIDENCE_BYTES, SESSION_ID_FORMAT } from "./safety.js"

/**
 * The actions, in the order the tool lists them.
 *
 * @since 0.1.0
 * @category constants
 */
export const ACTIONS = [
  "list_workflows",
  "start",
  "get_phase",
  "get_task",
  "complete_phase",
  "get_state",
  "get_artifact",
  "list_sessions",
  "get_session",
  "delete_session",
  "pause",
  "resume",
  "retry_phase",
  "rollback",
  "get_errors"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export type Action = typeof ACTIONS[number]

/**
 * The server's name and version, as `initialize` answers them.
 *
 * @since 0.1.0
 * @category constants
 */
export const SERVER_INFO = { name: "proctor", version: "0.1.0" } as const

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
 * What a tool error result says: `WorkflowToolError` is one.
 *
 * @since 0.1.0
 * @category models
 */
export interface ErrorBody {
  readonly code: string
  /** what went wrong */
  readonly problem: string
  /** how to fix the call */
  readonly fix: string
  readonly parameter?: string | undefined
  readonly details?: unknown
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
export const failure = (error: ErrorBody): ToolResult => {
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
      ? {
        code: "EVIDENCE_TOO_LARGE",
        parameter: "evidence",
        problem: `The request is ${bytes} bytes; evidence may be at most ${MAX_EVIDENCE_BYTES} bytes. It was not parsed.`,
        fix: "Send a summary and file paths instead of whole file contents."
      }
      : {
        code: "EVIDENCE_TOO_DEEP",
        parameter: "evidence",
        problem: `The request nests deeper than allowed (evidence may nest ${MAX_DEPTH} levels). It was not parsed.`,
        fix: "Flatten the evidence: checkpoints need summaries, not deep structures."
      }
  ) as ToolResult & { readonly isError: true }

