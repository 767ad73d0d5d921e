/**
 * The recovery actions of the `workflow` tool: retry the current phase, roll back to an
 * earlier phase, and page through a session's errors.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { WorkflowToolError } from "./errors.js"
import type * as Params from "./params.js"
import { integer, optionalBoolean, optionalInteger } from "./params.js"
import { phaseOf, phaseState } from "./procedure.js"
import type { Sessions } from "./session.js"
import { fail, fromRuntime } from "./session.js"
import { DEFAULT_ERRORS_PAGE, draftOf, iso, latest, LATEST_ERRORS, MAX_ERRORS_PAGE, phaseView } from "./views.js"

/**
 * Builds the handlers of these actions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sessions: Sessions) => {
  const { runtime, sessionIdOf, loadSession, require, changing, deliver } = sessions
  // -------------------------------------------------------------------------
  // recovery

  const retryPhase = (args: Params.Args) =>
    Effect.gen(function*() {
      const id = yield* sessionIdOf(args)
      const phase = yield* integer(args, "phase", 1, 50)
      const reset = (yield* optionalBoolean(args, "reset_evidence")) ?? false
      return yield* changing(id, (s) =>
        Effect.gen(function*() {
          yield* require(s, "retry a phase", { event: "RetryPhase" })
          if (phase !== s.phase) {
            return yield* new WorkflowToolError({
              code: "PHASE_MISMATCH",
              parameter: "phase",
              problem: `Session ${id} is at phase ${s.phase}; retry_phase retries the current phase only.`,
              fix: phase < s.phase!
                ? `Call rollback with to_phase ${phase} to go back to phase ${phase}.`
                : `Pass phase ${s.phase}.`,
              details: { current_phase: s.phase }
            })
          }
          yield* deliver(s, (request_id, at) => ({ _tag: "RetryPhase", phase, reset_evidence: reset, request_id, at }))
          const previous = s.context.errors.filter((e) => e.phase === phase)
          const draft = reset ? undefined : draftOf(s, phase)
          return {
            session_id: id,
            retrying: true,
            phase,
            reset_evidence: reset,
            phase_content: phaseView(s.entry.workflow.phases[phase - 1]!, s.entry.workflow.phases.length, draft),
            previous_errors: latest(previous, LATEST_ERRORS).map((e) => ({ ...e, timestamp: iso(e.timestamp) })),
            previous_error_count: previous.length,
            next_action: reset
              ? `The evidence of phase ${phase} was discarded; submit the full evidence with complete_phase.`
              : `Evidence you sent before is kept as a draft; submit the missing or corrected fields with complete_phase.`
          }
        }))
    })

  const rollback = (args: Params.Args) =>
    Effect.gen(function*() {
      const id = yield* sessionIdOf(args)
      const to = yield* integer(args, "to_phase", 1, 50)
      const s = yield* loadSession(id)
      yield* require(s, "roll back", { event: "RolledBack" })
      const from = s.phase!
      if (to >= from) {
        return yield* new WorkflowToolError({
          code: "PHASE_MISMATCH",
          parameter: "to_phase",
          problem: `Session ${id} is at phase ${from}; to_phase must be an earlier phase (1..${from - 1}), got ${to}.`,
          fix: to === from
            ? "To redo the current phase, call retry_phase instead."
            : from === 1
            ? "The session is at phase 1; there is nothing to roll back."
            : `Pass to_phase from 1 to ${from - 1}.`,
          details: { current_phase: from }
        })
      }
      const cleared = s.context.artifacts.filter((a) => a.phase >= to).map((a) => a.phase)
      // two commits (the workflow's events cannot go to another phase): the move, then the
      // record of it in the phase moved to, which clears the later phases' evidence
      yield* runtime.skip(id, phaseState(to)).pipe(Effect.mapError(fromRuntime(id)))
      yield* changing(id, (moved) =>
        moved.phase === to
          ? deliver(moved, (request_id, at) => ({ _tag: "RolledBack", from_phase: from, to_phase: to, request_id, at }))
          : fail(
            "CONFLICT",
            `Session ${id} was moved back to phase ${to}, but another client moved it on before the rollback was recorded.`,
            "Call get_state to see where the session is now; call rollback again if it still applies."
          ))
      const total = s.entry.workflow.phases.length
      return {
        session_id: id,
        rolled_back: true,
        from_phase: from,
        to_phase: to,
        current_phase: to,
        cleared_artifacts_of_phases: cleared,
        phase_content: phaseView(s.entry.workflow.phases[to - 1]!, total),
        next_action: `Redo phase ${to} and complete it again; phases ${to}..${total} must be completed anew.`
      }
    })

  const getErrors = (args: Params.Args) =>
    Effect.gen(function*() {
      const s = yield* loadSession(yield* sessionIdOf(args))
      const phase = yield* optionalInteger(args, "phase", 1, s.entry.workflow.phases.length)
      const offset = (yield* optionalInteger(args, "offset", 0, Number.MAX_SAFE_INTEGER)) ?? 0
      const limit = (yield* optionalInteger(args, "limit", 1, MAX_ERRORS_PAGE)) ?? DEFAULT_ERRORS_PAGE
      const runtimeErrors = yield* runtime.errors(s.id).pipe(Effect.mapError(fromRuntime(s.id)))
      const all = [
        ...s.context.errors.map((e) => ({ ...e })),
        ...runtimeErrors.map((e) => ({
          phase: phaseOf(e.state) ?? 0,
          timestamp: e.at,
          error_type: e.tag === "PhaseConflict" || e.tag === "VersionConflict" ? "conflict" : e.tag,
          // a request another call overtook; the action that sent it read the session again
          message: e.tag === "VersionConflict"
            ? "another call changed the session first, so this request was not applied"
            : e.message.replace(/\[request [^\]]+\]\s*/, ""),
          details: { source: "runtime", state: e.state }
        }))
      ]
        .filter((e) => phase === undefined || e.phase === phase)
        .sort((a, b) => a.timestamp - b.timestamp)
        .map((e) => ({ ...e, timestamp: iso(e.timestamp) }))
      const page = all.slice(offset, offset + limit)
      const next = offset + page.length < all.length ? offset + page.length : null
      return {
        session_id: s.id,
        errors: page,
        error_count: all.length,
        offset,
        next_offset: next,
        last_error: all.length === 0 ? null : all[all.length - 1]!,
        ...(next === null ? {} : { next_action: `Errors are listed oldest first; call get_errors with offset ${next} for the next ${limit}.` })
      }
    })

  return { retry_phase: retryPhase, rollback, get_errors: getErrors }
}
