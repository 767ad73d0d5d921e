/**
 * The management actions of the `workflow` tool: list sessions, read one's whole record,
 * delete, pause and resume a session.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Either } from "effect"
import { maxReasonLength, refusal } from "../Execution.js"
import type * as Params from "./params.js"
import { optionalInteger, optionalLiteral, optionalString } from "./params.js"
import type { SessionContext } from "./procedure.js"
import { phaseOf, procedureName } from "./procedure.js"
import type { Sessions } from "./session.js"
import { fail, fromRuntime } from "./session.js"
import {
  completedArtifacts,
  draftOf,
  iso,
  latest,
  LATEST_ENTRIES,
  LATEST_NOTES,
  LATEST_VISITS,
  phaseHistory,
  phaseView,
  READ_EVIDENCE,
  runtimeStatuses,
  SESSION_STATUSES,
  sessionStatus
} from "./views.js"

/**
 * Builds the handlers of these actions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sessions: Sessions) => {
  const { runtime, env, sessionIdOf, loadSession, require, changing, deliver, deletionOf } = sessions
  // -------------------------------------------------------------------------
  // management

  const listSessions = (args: Params.Args) =>
    Effect.gen(function*() {
      const status = yield* optionalLiteral(args, "status", SESSION_STATUSES)
      const type = yield* optionalString(args, "workflow_type", "test_generation", 100)
      const limit = (yield* optionalInteger(args, "limit", 1, 1000)) ?? 100
      // deleted sessions are listed only when asked for
      const statuses = runtimeStatuses(status === undefined ? SESSION_STATUSES.filter((s) => s !== "deleted") : [status])
      const entries = [...env.workflows.values()].filter((e) => type === undefined || e.workflow.name === type)
      const lists = yield* Effect.forEach(entries, (e) =>
        runtime.list({ procedure: procedureName(e.workflow.name), status: statuses, limit: 1000 }).pipe(
          Effect.mapError(fromRuntime("(list)"))
        ))
      const snapshots = lists.flat().sort((a, b) => b.updatedAt - a.updatedAt)
      const sessions = snapshots.slice(0, limit).map((snap) => {
        const ctx = snap.context as SessionContext
        const entry = env.workflows.get(ctx.workflow_type)
        return {
          session_id: snap.id,
          workflow_type: ctx.workflow_type,
          target_file: ctx.target_file,
          status: sessionStatus(snap.status),
          current_phase: phaseOf(snap.state) ?? null,
          total_phases: entry?.workflow.phases.length ?? null,
          started_at: iso(snap.startedAt),
          updated_at: iso(snap.updatedAt)
        }
      })
      return {
        sessions,
        count: sessions.length,
        total_matching: snapshots.length,
        ...(status === undefined ? { note: "Deleted sessions are hidden; pass status \"deleted\" to list them." } : {})
      }
    })

  const getSession = (args: Params.Args) =>
    Effect.gen(function*() {
      const s = yield* loadSession(yield* sessionIdOf(args))
      const history = yield* runtime.history(s.id).pipe(Effect.mapError(fromRuntime(s.id)))
      const now = yield* Clock.currentTimeMillis
      const status = sessionStatus(s.snapshot.status)
      const visits = phaseHistory(s.entry.workflow, history, now)
      return {
        session_id: s.id,
        workflow_type: s.context.workflow_type,
        workflow_version: s.snapshot.version,
        target_file: s.context.target_file,
        options: s.context.options,
        status,
        current_phase: s.phase ?? null,
        total_phases: s.entry.workflow.phases.length,
        started_at: iso(s.snapshot.startedAt),
        updated_at: iso(s.snapshot.updatedAt),
        phase_history: latest(visits, LATEST_VISITS),
        phase_visits_count: visits.length,
        artifacts: completedArtifacts(s),
        read_evidence: READ_EVIDENCE,
        notes: latest(s.context.notes, LATEST_NOTES).map((n) => ({ phase: n.phase, note: n.note, at: iso(n.at) })),
        notes_count: s.context.notes.length,
        retries: latest(s.context.retries, LATEST_ENTRIES).map((r) => ({ phase: r.phase, reset_evidence: r.reset_evidence, at: iso(r.at) })),
        retries_count: s.context.retries.length,
        rollbacks: latest(s.context.rollbacks, LATEST_ENTRIES).map((r) => ({ from_phase: r.from_phase, to_phase: r.to_phase, at: iso(r.at) })),
        rollbacks_count: s.context.rollbacks.length,
        error_count: s.context.errors.length,
        ...(s.snapshot.status === "cancelled" ? { deleted: yield* Effect.map(deletionOf(s, history), (d) => ({ ...d, at: iso(d.at) })) } : {}),
        resume_capable: status === "active" || status === "paused"
      }
    })

  /** One commit: `Runtime.cancel` records the reason on the history's cancel row. */
  const deleteSession = (args: Params.Args) =>
    Effect.gen(function*() {
      const id = yield* sessionIdOf(args)
      const reason = yield* optionalString(args, "reason", "no longer needed", maxReasonLength)
      const s = yield* loadSession(id)
      if (refusal("cancel", s.snapshot.status) === undefined) {
        const cancelled = yield* Effect.either(runtime.cancel(id, reason === undefined ? undefined : { reason }))
        if (Either.isRight(cancelled)) {
          return {
            session_id: id,
            deleted: true,
            already_deleted: false,
            ...(reason === undefined ? {} : { reason }),
            deleted_at: iso(cancelled.right.updatedAt)
          }
        }
        // refused because it ended meanwhile (deleted by another call, say): answer from what it is now
        if (cancelled.left._tag !== "InvalidTransition") return yield* Effect.fail(fromRuntime(id)(cancelled.left))
      }
      const ended = s.snapshot.status === "cancelled" ? s : yield* loadSession(id)
      if (ended.snapshot.status !== "cancelled") {
        return yield* fail(
          "INVALID_STATE",
          `Session ${id} has ended (${sessionStatus(ended.snapshot.status)}); ended sessions are kept as a record and cannot be deleted.`,
          "Nothing to do: it no longer shows as active in list_sessions."
        )
      }
      const deletion = yield* deletionOf(ended)
      return {
        session_id: id,
        deleted: true,
        already_deleted: true,
        ...(deletion.reason === undefined ? {} : { reason: deletion.reason }),
        deleted_at: iso(deletion.at)
      }
    })

  const pause = (args: Params.Args) =>
    Effect.gen(function*() {
      const id = yield* sessionIdOf(args)
      const note = yield* optionalString(args, "checkpoint_note", "stopped after writing half the tests", 4000)
      const s = yield* changing(id, (s) =>
        Effect.gen(function*() {
          yield* require(s, "be paused", { command: "pause" })
          if (note !== undefined) {
            yield* require(s, "take a checkpoint note", { event: "AddNote" })
            yield* deliver(s, (request_id, at) => ({ _tag: "AddNote", phase: s.phase!, note, request_id, at }))
          }
          return s
        }))
      const snapshot = yield* runtime.pause(id).pipe(Effect.mapError(fromRuntime(id)))
      return {
        session_id: id,
        status: "paused" as const,
        paused_at: iso(snapshot.updatedAt),
        current_phase: s.phase!,
        ...(note === undefined ? {} : { checkpoint_note: note }),
        next_action: "Call resume with this session_id to continue where you stopped."
      }
    })

  const resume = (args: Params.Args) =>
    Effect.gen(function*() {
      const id = yield* sessionIdOf(args)
      const s = yield* loadSession(id)
      yield* require(s, "be resumed", { command: "resume" })
      const pauses = yield* runtime.history(id, { tail: 50 }).pipe(Effect.mapError(fromRuntime(id)))
      const pausedAt = [...pauses].reverse().find((t) => t.cause === "pause")?.at ?? s.snapshot.updatedAt
      const snapshot = yield* runtime.resume(id).pipe(Effect.mapError(fromRuntime(id)))
      const lastNote = [...s.context.notes].reverse().find((n) => n.phase === s.phase)
      const total = s.entry.workflow.phases.length
      return {
        session_id: id,
        status: "active" as const,
        resumed_at: iso(snapshot.updatedAt),
        paused_duration_seconds: Math.max(0, Math.round((snapshot.updatedAt - pausedAt) / 10) / 100),
        current_phase: s.phase!,
        ...(lastNote === undefined ? {} : { checkpoint_note: lastNote.note }),
        phase_content: phaseView(s.entry.workflow.phases[s.phase! - 1]!, total, draftOf(s, s.phase!)),
        completed_artifacts: completedArtifacts(s),
        read_evidence: READ_EVIDENCE
      }
    })

  return { list_sessions: listSessions, get_session: getSession, delete_session: deleteSession, pause, resume }
}
