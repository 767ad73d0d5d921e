/**
 * The 15 actions of the `workflow` tool, as Effects over the Runtime: the handler of each
 * action by name. A session is an execution of a workflow's procedure; its id is the
 * execution id. `session.ts` loads sessions and delivers their events, `views.ts` shows
 * them; the actions are grouped as the tool lists them: `execution.ts` (discovery and
 * execution), `management.ts` and `recovery.ts`.
 *
 * Replies stay small whatever a session stores: stored evidence (artifacts and drafts) is
 * shown as a summary (bytes and field names) and its content only by `get_artifact`, a page
 * at a time; logs are shown by their latest entries with their counts, `get_errors` by page.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { WorkflowToolError } from "./errors.js"
import * as Execution from "./execution.js"
import * as Management from "./management.js"
import type * as Params from "./params.js"
import * as Recovery from "./recovery.js"
import * as Session from "./session.js"
import type { Action } from "./toolSpec.js"

/**
 * A loaded workflow with the procedure it compiles to.
 *
 * @since 0.1.0
 * @category models
 */
export type Entry = Session.Entry

/**
 * What the actions need besides the Runtime.
 *
 * @since 0.1.0
 * @category models
 */
export type Environment = Session.Environment

/**
 * Builds the action handlers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (env: Environment) =>
  Effect.map(Session.make(env), (sessions) => {
    const handlers: { readonly [A in Action]: (args: Params.Args) => Effect.Effect<object, WorkflowToolError> } = {
      ...Execution.make(sessions),
      ...Management.make(sessions),
      ...Recovery.make(sessions)
    }
    return handlers
  })
