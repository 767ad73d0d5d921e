/**
 * Compiles a loaded workflow into a procedure. Each phase is a `wait` state
 * (`phase_1`, `phase_2`, ...) and the last one leads to the final state `completed`.
 *
 * Every phase state accepts:
 * - `CompletePhase`: goes to the next phase. Its guard checks, inside the transition,
 *   that the event names this phase (a stale completion is discarded as `GuardRefused`),
 *   that the evidence fits the limits and passes the checkpoint; the evidence becomes the
 *   phase's artifact.
 * - `CheckpointFailed`, `RetryPhase`, `AddNote`, `RolledBack`: stay in the phase (a new
 *   visit) and record what happened in the context, so a failed checkpoint, a retry, a
 *   pause note and a rollback are durable and in the history. A deletion is the history's
 *   `cancel` row, with its reason (`Runtime.cancel(id, { reason })`); `MarkDeleted` is
 *   what sessions deleted before that were sent.
 *
 * @since 0.1.0
 */
import { Either, Schema } from "effect"
import * as Procedure from "../Procedure.js"
import type { Workflow } from "./definition.js"
import { jsonBytes, MAX_PHASE_EVIDENCE_BYTES, MAX_SESSION_EVIDENCE_BYTES } from "./safety.js"

/**
 * One entry of a session's error log.
 *
 * @since 0.1.0
 * @category models
 */
export const ErrorRecord = Schema.Struct({
  phase: Schema.Int,
  timestamp: Schema.Number,
  error_type: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorRecord = typeof ErrorRecord.Type

/**
 * The evidence a phase was completed with.
 *
 * @since 0.1.0
 * @category models
 */
export const Artifact = Schema.Struct({
  phase: Schema.Int,
  evidence: Schema.Unknown,
  completed_at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type Artifact = typeof Artifact.Type

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * What a session starts with.
 *
 * @since 0.1.0
 * @category models
 */
export const SessionInput = Schema.Struct({
  workflow_type: Schema.String,
  target_file: Schema.String,
  options: JsonObject
})

/**
 * The context of a session (the execution's context).
 *
 * @since 0.1.0
 * @category models
 */
export const SessionContext = Schema.Struct({
  workflow_type: Schema.String,
  target_file: Schema.String,
  options: JsonObject,
  /** completed phases' evidence, in phase order */
  artifacts: Schema.Array(Artifact),
  /** evidence of failed submissions, per phase; the next submission is merged over it */
  drafts: Schema.Array(Schema.Struct({ phase: Schema.Int, evidence: Schema.Unknown, at: Schema.Number })),
  errors: Schema.Array(ErrorRecord),
  notes: Schema.Array(Schema.Struct({ phase: Schema.Int, note: Schema.String, at: Schema.Number })),
  retries: Schema.Array(Schema.Struct({ phase: Schema.Int, reset_evidence: Schema.Boolean, at: Schema.Number })),
  rollbacks: Schema.Array(Schema.Struct({ from_phase: Schema.Int, to_phase: Schema.Int, at: Schema.Number })),
  deleted: Schema.optional(Schema.Struct({ reason: Schema.optional(Schema.String), at: Schema.Number })),
  /** the request id of the last event applied: lets a caller see that its event landed */
  last_request: Schema.optional(Schema.String),
  /** bytes of JSON of every submission recorded so far (absent in sessions older than the count) */
  evidence_bytes: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category models
 */
export type SessionContext = typeof SessionContext.Type

const Common = { request_id: Schema.String, at: Schema.Number }

/**
 * A submission that passes the checkpoint: `evidence` holds the fields sent, which the
 * transition merges over the phase's draft (sessions recorded before that carry the merged
 * evidence, and merging it again gives the same result).
 *
 * @since 0.1.0
 * @category events
 */
export const CompletePhase = Schema.TaggedStruct("CompletePhase", { phase: Schema.Int, evidence: Schema.Unknown, ...Common })
/**
 * A submission that fails the checkpoint: `draft` holds the fields sent, which the
 * transition merges over the phase's draft (older sessions carry the merged draft; merging
 * it again gives the same result). Only the fields sent go into the history.
 *
 * @since 0.1.0
 * @category events
 */
export const CheckpointFailed = Schema.TaggedStruct("CheckpointFailed", {
  phase: Schema.Int,
  draft: Schema.Unknown,
  error: ErrorRecord,
  ...Common
})
/**
 * @since 0.1.0
 * @category events
 */
export const RetryPhase = Schema.TaggedStruct("RetryPhase", { phase: Schema.Int, reset_evidence: Schema.Boolean, ...Common })
/**
 * @since 0.1.0
 * @category events
 */
export const AddNote = Schema.TaggedStruct("AddNote", { phase: Schema.Int, note: Schema.String, ...Common })
/**
 * @since 0.1.0
 * @category events
 */
export const RolledBack = Schema.TaggedStruct("RolledBack", { from_phase: Schema.Int, to_phase: Schema.Int, ...Common })
/**
 * @since 0.1.0
 * @category events
 */
export const MarkDeleted = Schema.TaggedStruct("MarkDeleted", { reason: Schema.optional(Schema.String), ...Common })

/**
 * The events of a session.
 *
 * @since 0.1.0
 * @category events
 */
export const SessionEvent = Schema.Union(CompletePhase, CheckpointFailed, RetryPhase, AddNote, RolledBack, MarkDeleted)

/**
 * @since 0.1.0
 * @category events
 */
export type SessionEvent = typeof SessionEvent.Type

/**
 * How many entries of each log (errors, notes, retries, rollbacks) a session keeps; older ones are dropped.
 *
 * @since 0.1.0
 * @category constants
 */
export const LOG_LIMIT = 100

/**
 * The name of the procedure a workflow compiles to.
 *
 * @since 0.1.0
 * @category naming
 */
export const procedureName = (workflow: string) => `workflow/${workflow}`

/**
 * The state of phase `n`.
 *
 * @since 0.1.0
 * @category naming
 */
export const phaseState = (n: number) => `phase_${n}`

/**
 * The final state of a workflow.
 *
 * @since 0.1.0
 * @category naming
 */
export const COMPLETED = "completed"

/**
 * The phase number of a state, or `undefined` for `completed`.
 *
 * @since 0.1.0
 * @category naming
 */
export const phaseOf = (state: string): number | undefined => {
  const m = /^phase_(\d+)$/.exec(state)
  return m === null ? undefined : Number(m[1])
}

/**
 * How much evidence a phase and a session may hold.
 *
 * @since 0.1.0
 * @category models
 */
export interface EvidenceLimits {
  /** bytes of JSON one phase may hold: its draft merged with a submission, or its artifact */
  readonly phaseBytes: number
  /** bytes of JSON of all the submissions a session records over its life (its history keeps each) */
  readonly sessionBytes: number
}

/**
 * `MAX_PHASE_EVIDENCE_BYTES` (10 MiB) per phase, `MAX_SESSION_EVIDENCE_BYTES` (16 MiB) per session.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits: EvidenceLimits = { phaseBytes: MAX_PHASE_EVIDENCE_BYTES, sessionBytes: MAX_SESSION_EVIDENCE_BYTES }

/**
 * A submission refused because the phase or the session would hold more than its limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface EvidenceOverLimit {
  readonly scope: "phase" | "session"
  readonly limitBytes: number
  /** what the phase's draft, or the session's recorded submissions, take now */
  readonly currentBytes: number
  /** the phase's evidence with the submission merged in (phase), or the submission (session) */
  readonly wouldBeBytes: number
}

/**
 * What a session has recorded; a session from before the count is measured by what it holds.
 *
 * @since 0.1.0
 * @category limits
 */
export const recordedBytes = (context: SessionContext): number =>
  context.evidence_bytes ?? jsonBytes(context.artifacts) + jsonBytes(context.drafts)

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The phase's draft with `submitted` merged over it (top-level fields). */
const mergeDraft = (context: SessionContext, phase: number, submitted: unknown): unknown => {
  const draft = context.drafts.find((d) => d.phase === phase)?.evidence
  return isRecord(draft) && isRecord(submitted) ? { ...draft, ...submitted } : submitted
}

/**
 * The phase's draft with `submitted` merged over it (top-level fields), and the session's new
 * recorded total; or why the submission is refused. The action asks first, to answer with a
 * clear error before anything is written; the transition asks again and is the authority.
 *
 * @since 0.1.0
 * @category limits
 */
export const admitEvidence = (
  limits: EvidenceLimits,
  context: SessionContext,
  phase: number,
  submitted: unknown
): Either.Either<{ readonly merged: unknown; readonly recorded: number }, EvidenceOverLimit> => {
  const draft = context.drafts.find((d) => d.phase === phase)?.evidence
  const merged = mergeDraft(context, phase, submitted)
  const mergedBytes = jsonBytes(merged)
  if (mergedBytes > limits.phaseBytes) {
    return Either.left({
      scope: "phase",
      limitBytes: limits.phaseBytes,
      currentBytes: draft === undefined ? 0 : jsonBytes(draft),
      wouldBeBytes: mergedBytes
    })
  }
  const recorded = recordedBytes(context)
  const submittedBytes = jsonBytes(submitted)
  if (recorded + submittedBytes > limits.sessionBytes) {
    return Either.left({ scope: "session", limitBytes: limits.sessionBytes, currentBytes: recorded, wouldBeBytes: submittedBytes })
  }
  return Either.right({ merged, recorded: recorded + submittedBytes })
}

const push = <A>(log: ReadonlyArray<A>, item: A): ReadonlyArray<A> => {
  const out = log.length >= LOG_LIMIT ? log.slice(log.length - LOG_LIMIT + 1) : log.slice()
  out.push(item)
  return out
}

type Ctx = SessionContext
type Handler = {
  readonly goto: string
  readonly guard?: (event: any, context: Ctx) => boolean
  readonly update: (event: any, context: Ctx) => Ctx
}

/**
 * Compiles a workflow into a procedure whose phases hold at most `limits` of evidence
 * (`Procedure.makeUnsafe`: it throws a `DefinitionError` when the workflow makes a wrong one).
 *
 * The rules are the handlers' guards, so the runtime is their authority: an event that
 * names another phase, would take the phase or the session past its limits, or (for
 * `CompletePhase`) does not pass the checkpoint is discarded with a `GuardRefused` entry
 * in the error log that names the guard, and the session still waits. The actions check
 * the same first, to answer with a clear error, and send with the snapshot's seq as
 * `expectVersion`, so a guard refuses only an event sent around them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const compile = (workflow: Workflow, limits: EvidenceLimits = defaultLimits): Procedure.Any => {
  const total = workflow.phases.length
  const states: Record<string, Procedure.StateDescription> = {}
  for (const phase of workflow.phases) {
    const k = phase.number
    const self = phaseState(k)
    const forThisPhase = (e: { readonly phase: number }) => e.phase === k
    const forThisPhaseWithinLimits = (e: typeof CheckpointFailed.Type, c: Ctx) =>
      e.phase === k && Either.isRight(admitEvidence(limits, c, k, e.draft))
    const completesThisPhase = (e: typeof CompletePhase.Type, c: Ctx) =>
      e.phase === k &&
      Either.match(admitEvidence(limits, c, k, e.evidence), {
        onLeft: () => false,
        onRight: ({ merged }) => phase.checkpoint.check(merged).passed
      })
    const rolledBackHere = (e: typeof RolledBack.Type) => e.to_phase === k
    const on: Record<string, Handler> = {
      CompletePhase: {
        goto: k < total ? phaseState(k + 1) : COMPLETED,
        guard: completesThisPhase,
        update: (e: typeof CompletePhase.Type, c) => ({
          ...c,
          artifacts: [...c.artifacts.filter((a) => a.phase < k), { phase: k, evidence: mergeDraft(c, k, e.evidence), completed_at: e.at }],
          drafts: c.drafts.filter((d) => d.phase < k),
          last_request: e.request_id,
          evidence_bytes: recordedBytes(c) + jsonBytes(e.evidence)
        })
      },
      CheckpointFailed: {
        goto: self,
        guard: forThisPhaseWithinLimits,
        update: (e: typeof CheckpointFailed.Type, c) => ({
          ...c,
          errors: push(c.errors, e.error),
          drafts: [...c.drafts.filter((d) => d.phase !== k), { phase: k, evidence: mergeDraft(c, k, e.draft), at: e.at }],
          last_request: e.request_id,
          evidence_bytes: recordedBytes(c) + jsonBytes(e.draft)
        })
      },
      RetryPhase: {
        goto: self,
        guard: forThisPhase,
        update: (e: typeof RetryPhase.Type, c) => ({
          ...c,
          retries: push(c.retries, { phase: k, reset_evidence: e.reset_evidence, at: e.at }),
          drafts: e.reset_evidence ? c.drafts.filter((d) => d.phase !== k) : c.drafts,
          last_request: e.request_id
        })
      },
      AddNote: {
        goto: self,
        guard: forThisPhase,
        update: (e: typeof AddNote.Type, c) => ({ ...c, notes: push(c.notes, { phase: k, note: e.note, at: e.at }), last_request: e.request_id })
      },
      RolledBack: {
        goto: self,
        guard: rolledBackHere,
        update: (e: typeof RolledBack.Type, c) => ({
          ...c,
          artifacts: c.artifacts.filter((a) => a.phase < k),
          drafts: c.drafts.filter((d) => d.phase < k),
          rollbacks: push(c.rollbacks, { from_phase: e.from_phase, to_phase: k, at: e.at }),
          last_request: e.request_id
        })
      },
      // sent by delete_session before it was one `Runtime.cancel` with the reason; kept so
      // that those sessions' histories replay and their event tags (the fingerprint) stay
      MarkDeleted: {
        goto: self,
        update: (e: typeof MarkDeleted.Type, c) => ({
          ...c,
          deleted: e.reason === undefined ? { at: e.at } : { reason: e.reason, at: e.at },
          last_request: e.request_id
        })
      }
    }
    states[self] = { type: "wait", on }
  }
  states[COMPLETED] = { type: "final", outcome: "succeeded" }
  return Procedure.makeUnsafe({
    name: procedureName(workflow.name),
    version: workflow.version,
    description: workflow.description,
    input: SessionInput,
    context: SessionContext,
    events: SessionEvent,
    init: (input: typeof SessionInput.Type): SessionContext => ({
      workflow_type: input.workflow_type,
      target_file: input.target_file,
      options: input.options,
      artifacts: [],
      drafts: [],
      errors: [],
      notes: [],
      retries: [],
      rollbacks: [],
      evidence_bytes: 0
    }),
    initial: phaseState(1),
    states
  })
}
