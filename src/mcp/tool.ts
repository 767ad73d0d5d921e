/**
 * The dispatcher of the one `workflow` tool (src/mcp/toolSpec.ts describes it): turns a
 * call into a tool result. Every failure, including defects, becomes a tool error result
 * (`isError: true`) whose text says how to fix the call; the server never crashes on input.
 *
 * @since 0.1.0
 */
import { Cause, Effect } from "effect"
import { WorkflowToolError } from "./errors.js"
import type * as Params from "./params.js"
import type { Action, ToolResult } from "./toolSpec.js"
import { ACTIONS, failure, success, TOOL_NAME } from "./toolSpec.js"

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
