/**
 * The error every `workflow` tool action fails with. It becomes a tool error result
 * (`isError: true`) whose text says what went wrong and how to fix the call.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * What kind of mistake it was.
 *
 * @since 0.1.0
 * @category models
 */
export const ErrorCode = Schema.Literal(
  "UNKNOWN_ACTION",
  "INVALID_PARAMETER",
  "INVALID_SESSION_ID",
  "UNSAFE_PATH",
  "EVIDENCE_TOO_LARGE",
  "EVIDENCE_TOO_DEEP",
  "WORKFLOW_NOT_FOUND",
  "SESSION_NOT_FOUND",
  "SESSION_DELETED",
  "INVALID_STATE",
  "PHASE_MISMATCH",
  "CONFLICT",
  "INTERNAL"
)

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorCode = typeof ErrorCode.Type

/**
 * A tool call that cannot be served.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowToolError extends Schema.TaggedError<WorkflowToolError>()("WorkflowToolError", {
  code: ErrorCode,
  /** what went wrong */
  problem: Schema.String,
  /** how to fix the call */
  fix: Schema.String,
  parameter: Schema.optional(Schema.String),
  details: Schema.optional(Schema.Unknown)
}) {
  override get message(): string {
    return `${this.problem} ${this.fix}`
  }
}

/**
 * A missing or mistyped parameter.
 *
 * @since 0.1.0
 * @category constructors
 */
export const invalidParameter = (parameter: string, problem: string, fix: string) =>
  new WorkflowToolError({ code: "INVALID_PARAMETER", parameter, problem: `Parameter "${parameter}" ${problem}.`, fix })
