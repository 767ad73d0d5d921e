/**
 * How the `workflow` tool shows a session: its status in the tool's words, a phase and
 * its checkpoint, stored evidence as a summary (bytes and field names, never the content),
 * the latest entries of a log, and the history folded into one entry per visit of a phase.
 * Pure functions of a loaded session; the actions put them together.
 *
 * @since 0.1.0
 */
import type { Transition } from "../Execution.js"
import { Status } from "../Execution.js"
import type { FieldSpec, Phase, Workflow } from "./definition.js"
import { describeField } from "./definition.js"
import type { SessionContext } from "./procedure.js"
import { phaseOf } from "./procedure.js"
import { jsonBytes } from "./safety.js"
import type { Session } from "./session.js"

/**
 * The status of a session as the tool shows it.
 *
 * @since 0.1.0
 * @category models
 */
export type SessionStatus = "active" | "paused" | "completed" | "deleted" | "failed"

export const SESSION_STATUSES: ReadonlyArray<SessionStatus> = ["active", "paused", "completed", "deleted", "failed"]

export const sessionStatus = (status: Status): SessionStatus =>
  status === "paused"
    ? "paused"
    : status === "succeeded"
    ? "completed"
    : status === "cancelled"
    ? "deleted"
    : status === "failed" || status === "rolled_back"
    ? "failed"
    : "active"

/** The runtime's statuses a session shows as any of `shown`: the inverse of `sessionStatus`. */
export const runtimeStatuses = (shown: ReadonlyArray<SessionStatus>): ReadonlyArray<Status> =>
  Status.literals.filter((status) => shown.includes(sessionStatus(status)))

export const iso = (ms: number) => new Date(ms).toISOString()

export const fieldView = (spec: FieldSpec) => ({
  type: spec.type,
  required: spec.required !== false,
  constraints: describeField(spec),
  ...(spec.description === undefined ? {} : { description: spec.description })
})

/** How many names a summary lists of a stored object's fields (`fields_count` has them all). */
export const MAX_LISTED_FIELDS = 50

/** Where replies that summarize evidence say how to read it. */
export const READ_EVIDENCE =
  "Stored evidence is summarized (bytes and field names); call get_artifact with session_id and phase to read its content, a page at a time."

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Stored evidence without its content: how large it is and which fields it has. */
export const evidenceSummary = (evidence: unknown) => {
  const fields = isRecord(evidence) ? Object.keys(evidence) : []
  return { bytes: jsonBytes(evidence), fields: fields.slice(0, MAX_LISTED_FIELDS), fields_count: fields.length }
}

/** The latest `n` entries of a log, oldest first. */
export const latest = <A>(log: ReadonlyArray<A>, n: number): ReadonlyArray<A> => log.slice(Math.max(0, log.length - n))

export type Draft = SessionContext["drafts"][number]

export const draftView = (draft: Draft) => ({ ...evidenceSummary(draft.evidence), updated_at: iso(draft.at) })

export const phaseView = (phase: Phase, total: number, draft?: Draft) => ({
  phase: phase.number,
  total_phases: total,
  title: phase.title,
  content: phase.content,
  tasks: phase.tasks.map((t, i) => ({ task_number: i + 1, title: t.title, steps: t.execution_steps.length, artifacts: t.artifacts })),
  checkpoint: {
    ...(phase.checkpoint.description === undefined ? {} : { description: phase.checkpoint.description }),
    required_evidence: Object.fromEntries(Object.entries(phase.checkpoint.fields).map(([n, s]) => [n, fieldView(s)]))
  },
  ...(draft === undefined ? {} : { draft: draftView(draft) }),
  how_to_complete:
    `Work through the tasks (get_task with task_number 1..${phase.tasks.length} gives each in full), then call ` +
    `complete_phase with phase ${phase.number} and evidence holding the fields of checkpoint.required_evidence.`
})

export const completedArtifactOf = (s: Session, phase: number) =>
  s.phase !== undefined && phase >= s.phase ? undefined : s.context.artifacts.find((a) => a.phase === phase)

export const completedArtifacts = (s: Session) =>
  s.context.artifacts
    .filter((a) => s.phase === undefined || a.phase < s.phase)
    .map((a) => ({
      phase: a.phase,
      title: s.entry.workflow.phases[a.phase - 1]?.title ?? `phase ${a.phase}`,
      completed_at: iso(a.completed_at),
      ...evidenceSummary(a.evidence)
    }))

interface PhaseVisit {
  phase: number
  title: string
  entered_at: number
  left_at: number | undefined
  outcome: "completed" | "rolled_back" | "deleted" | "in_progress"
  failed_checkpoints: number
  paused_ms: number
  pausedAt: number | undefined
}

/** Folds the transitions into one entry per visit of a phase (self-transitions stay in the visit). */
export const phaseHistory = (workflow: Workflow, history: ReadonlyArray<Transition>, now: number) => {
  const visits: Array<PhaseVisit> = []
  let open: PhaseVisit | undefined
  const openAt = (state: string, at: number) => {
    const phase = phaseOf(state)
    open = phase === undefined ? undefined : {
      phase,
      title: workflow.phases[phase - 1]?.title ?? `phase ${phase}`,
      entered_at: at,
      left_at: undefined,
      outcome: "in_progress",
      failed_checkpoints: 0,
      paused_ms: 0,
      pausedAt: undefined
    }
    if (open !== undefined) visits.push(open)
  }
  for (const t of history) {
    if (open === undefined && t.cause !== "start") openAt(t.from, t.at - t.duration)
    if (t.cause === "start") {
      openAt(t.to, t.at)
      continue
    }
    if (open === undefined) continue
    if (t.cause === "pause") open.pausedAt = t.at
    else if (t.cause === "resume" && open.pausedAt !== undefined) {
      open.paused_ms += t.at - open.pausedAt
      open.pausedAt = undefined
    } else if (t.cause === "event:CheckpointFailed") open.failed_checkpoints++
    else if (t.cause === "cancel") {
      open.left_at = t.at
      open.outcome = "deleted"
      open = undefined
    } else if (t.from !== t.to) {
      open.left_at = t.at
      open.outcome = t.cause === "event:CompletePhase" ? "completed" : "rolled_back"
      openAt(t.to, t.at)
    }
  }
  return visits.map((v) => {
    const end = v.left_at ?? now
    return {
      phase: v.phase,
      title: v.title,
      outcome: v.outcome,
      entered_at: iso(v.entered_at),
      ...(v.left_at === undefined ? {} : { left_at: iso(v.left_at) }),
      duration_seconds: Math.round((end - v.entered_at) / 10) / 100,
      paused_seconds: Math.round((v.paused_ms + (v.pausedAt === undefined ? 0 : end - v.pausedAt)) / 10) / 100,
      failed_checkpoints: v.failed_checkpoints
    }
  })
}

/** get_session shows the latest entries of each log, with its count */
export const LATEST_NOTES = 10
export const LATEST_ENTRIES = 20
export const LATEST_VISITS = 50
/** retry_phase shows the phase's latest errors; get_errors pages through all of them */
export const LATEST_ERRORS = 5
export const DEFAULT_ERRORS_PAGE = 20
export const MAX_ERRORS_PAGE = 50

/** The draft a phase holds from failed submissions, if any. */
export const draftOf = (s: Session, phase: number): Draft | undefined => s.context.drafts.find((d) => d.phase === phase)
