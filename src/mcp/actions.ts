/**
 * The 15 actions of the `workflow` tool, as Effects over the Runtime. A session is an
 * execution of a workflow's procedure; its id is the execution id.
 *
 * Replies stay small whatever a session stores: stored evidence (artifacts and drafts) is
 * shown as a summary (bytes and field names) and its content only by `get_artifact`, a page
 * at a time; logs are shown by their latest entries with their counts, `get_errors` by page.
 *
 * Changes to one session are serialized in this process (a lock per session) and each
 * event is confirmed: the action waits until the event's request id shows in the
 * session's context (applied) or in its error log (discarded by the transition, e.g. a
 * `PhaseConflict` when another process moved the session first).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Either, Schema } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError, ValidationError } from "../Errors.js"
import type { Snapshot, Status, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { Runtime } from "../Runtime.js"
import type { FieldSpec, Phase, Workflow } from "./definition.js"
import { describeField } from "./definition.js"
import { WorkflowToolError } from "./errors.js"
import type { LoadProblem } from "./loader.js"
import type * as Params from "./params.js"
import type { Action } from "./toolSpec.js"
import { integer, optionalBoolean, optionalInteger, optionalLiteral, optionalObject, optionalString, string } from "./params.js"
import type { EvidenceLimits, EvidenceOverLimit, ErrorRecord, SessionEvent } from "./procedure.js"
import { admitEvidence, phaseOf, phaseState, procedureName, recordedBytes, SessionContext } from "./procedure.js"
import {
  checkTarget,
  depthExceeds,
  isSessionId,
  jsonBytes,
  MAX_DEPTH,
  MAX_EVIDENCE_BYTES,
  MAX_OPTIONS_BYTES,
  newSessionId,
  SESSION_ID_FORMAT
} from "./safety.js"

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

/**
 * The status of a session as the tool shows it.
 *
 * @since 0.1.0
 * @category models
 */
export type SessionStatus = "active" | "paused" | "completed" | "deleted" | "failed"

const SESSION_STATUSES: ReadonlyArray<SessionStatus> = ["active", "paused", "completed", "deleted", "failed"]

const sessionStatus = (status: Status): SessionStatus =>
  status === "paused"
    ? "paused"
    : status === "succeeded"
    ? "completed"
    : status === "cancelled"
    ? "deleted"
    : status === "failed" || status === "rolled_back"
    ? "failed"
    : "active"

const runtimeStatuses = (status: SessionStatus): ReadonlyArray<Status> =>
  status === "active"
    ? ["waiting", "running", "needs_intervention", "compensating"]
    : status === "paused"
    ? ["paused"]
    : status === "completed"
    ? ["succeeded"]
    : status === "deleted"
    ? ["cancelled"]
    : ["failed", "rolled_back"]

const iso = (ms: number) => new Date(ms).toISOString()

const fail = (code: WorkflowToolError["code"], problem: string, fix: string, details?: unknown) =>
  Effect.fail(new WorkflowToolError({ code, problem, fix, ...(details === undefined ? {} : { details }) }))

/** Maps the Runtime's errors to tool errors that say what to do. */
const fromRuntime = (sessionId: string) =>
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

/** A submission the phase or the session has no room for: the limit, what is held, and what to do. */
const overLimit = (sessionId: string, phase: number, over: EvidenceOverLimit): WorkflowToolError =>
  new WorkflowToolError({
    code: "EVIDENCE_TOO_LARGE",
    parameter: "evidence",
    problem: over.scope === "phase"
      ? `Phase ${phase} would hold ${over.wouldBeBytes} bytes of evidence (its draft from failed submissions holds ${over.currentBytes} ` +
        `bytes, merged with this submission); a phase may hold at most ${over.limitBytes} bytes. Nothing was stored.`
      : `Session ${sessionId} has recorded ${over.currentBytes} bytes of evidence; this submission of ${over.wouldBeBytes} bytes would ` +
        `pass the session's limit of ${over.limitBytes} bytes (every submission is kept in the session's history). Nothing was stored.`,
    fix: over.scope === "phase"
      ? `Send only the fields that are missing or wrong, as summaries and file paths rather than whole contents; or call retry_phase ` +
        `with phase ${phase} and reset_evidence true to remove the draft, then submit the evidence anew.`
      : "Send smaller evidence (summaries and file paths, only the fields that are missing or wrong), or start a new session for this work.",
    details: { limit: over.scope, limit_bytes: over.limitBytes, current_bytes: over.currentBytes, submitted_bytes: over.wouldBeBytes }
  })

const decodeContext = Schema.decodeUnknownEither(SessionContext)

/** A session: its snapshot, decoded context and workflow. */
interface Session {
  readonly id: string
  readonly snapshot: Snapshot
  readonly context: SessionContext
  readonly entry: Entry
  /** the current phase, or undefined once completed */
  readonly phase: number | undefined
}

const fieldView = (spec: FieldSpec) => ({
  type: spec.type,
  required: spec.required !== false,
  constraints: describeField(spec),
  ...(spec.description === undefined ? {} : { description: spec.description })
})

/** How many names a summary lists of a stored object's fields (`fields_count` has them all). */
const MAX_LISTED_FIELDS = 50

/** The most characters `get_artifact` returns in one page (also its default). */
const MAX_PAGE_CHARS = 65_536

/** Where replies that summarize evidence say how to read it. */
const READ_EVIDENCE =
  "Stored evidence is summarized (bytes and field names); call get_artifact with session_id and phase to read its content, a page at a time."

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Stored evidence without its content: how large it is and which fields it has. */
const evidenceSummary = (evidence: unknown) => {
  const fields = isRecord(evidence) ? Object.keys(evidence) : []
  return { bytes: jsonBytes(evidence), fields: fields.slice(0, MAX_LISTED_FIELDS), fields_count: fields.length }
}

/** The latest `n` entries of a log, oldest first. */
const latest = <A>(log: ReadonlyArray<A>, n: number): ReadonlyArray<A> => log.slice(Math.max(0, log.length - n))

type Draft = SessionContext["drafts"][number]

const draftView = (draft: Draft) => ({ ...evidenceSummary(draft.evidence), updated_at: iso(draft.at) })

const phaseView = (phase: Phase, total: number, draft?: Draft) => ({
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

const completedArtifactOf = (s: Session, phase: number) =>
  s.phase !== undefined && phase >= s.phase ? undefined : s.context.artifacts.find((a) => a.phase === phase)

const completedArtifacts = (s: Session) =>
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
const phaseHistory = (workflow: Workflow, history: ReadonlyArray<Transition>, now: number) => {
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
const LATEST_NOTES = 10
const LATEST_ENTRIES = 20
const LATEST_VISITS = 50
/** retry_phase shows the phase's latest errors; get_errors pages through all of them */
const LATEST_ERRORS = 5
const DEFAULT_ERRORS_PAGE = 20
const MAX_ERRORS_PAGE = 50

const LOCK_STRIPES = 64

const hash = (s: string) => {
  let h = 0
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0
  return Math.abs(h)
}

/** How long an action waits for the runtime to apply its event. */
const CONFIRM_TIMEOUT = Duration.seconds(15)

/**
 * Builds the action handlers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (env: Environment) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const locks = yield* Effect.all(Array.from({ length: LOCK_STRIPES }, () => Effect.makeSemaphore(1)))
    const withLock = <A, E, R>(id: string, effect: Effect.Effect<A, E, R>) => locks[hash(id) % LOCK_STRIPES]!.withPermits(1)(effect)

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

    const requireUsable = (s: Session, operation: string) => {
      const status = sessionStatus(s.snapshot.status)
      if (status === "deleted") {
        return fail("SESSION_DELETED", `Session ${s.id} was deleted; it cannot ${operation}.`, "Call start to begin a new session.")
      }
      if (status === "completed") {
        return fail("INVALID_STATE", `Session ${s.id} has completed all its phases; it cannot ${operation}.`, "Call get_session to read its record, or start a new session.")
      }
      if (status === "failed") {
        return fail("INVALID_STATE", `Session ${s.id} has failed; it cannot ${operation}.`, "Call get_errors to see why, then start a new session.")
      }
      return Effect.void
    }

    const requireActive = (s: Session, operation: string) =>
      Effect.zipRight(
        requireUsable(s, operation),
        s.snapshot.status === "paused"
          ? fail("INVALID_STATE", `Session ${s.id} is paused; it cannot ${operation}.`, "Call resume first, then try again.")
          : s.snapshot.status !== "waiting"
          ? fail("INVALID_STATE", `Session ${s.id} is ${s.snapshot.status}; it cannot ${operation}.`, "Try again in a moment; get_state shows its status.")
          : Effect.void
      )

    const draftOf = (s: Session, phase: number): Draft | undefined => s.context.drafts.find((d) => d.phase === phase)

    /** Sends an event and waits until the runtime applied it, or discarded it (a conflict). */
    const deliver = (s: Session, make: (requestId: string, at: number) => SessionEvent) =>
      Effect.gen(function*() {
        const requestId = crypto.randomUUID()
        const event = make(requestId, yield* Clock.currentTimeMillis)
        const result = yield* runtime.sendAndWait(s.id, event, { timeout: CONFIRM_TIMEOUT }).pipe(
          Effect.catchTags({
            SendTimeout: () =>
              fail(
                "INTERNAL",
                `The request was stored but not applied within ${Duration.format(CONFIRM_TIMEOUT)}.`,
                "Call get_state in a moment: the runtime applies it when it catches up."
              ),
            VersionConflict: (e) =>
              fail("CONFLICT", `Another client changed session ${s.id} first (${e.message}).`, "Call get_state to see where the session is now, then continue from there.")
          }),
          Effect.mapError((e) => e._tag === "WorkflowToolError" ? e : fromRuntime(s.id)(e))
        )
        if (result._tag === "Consumed") return result.snapshot
        if (isTerminal(result.snapshot.status) && result.reason.tag === "EventDiscarded") {
          return yield* fail("CONFLICT", `Session ${s.id} ended (${result.snapshot.status}) before the request was applied.`, "Call get_session to read its record.")
        }
        return yield* fail(
          "CONFLICT",
          `Another client changed session ${s.id} first: ${result.reason.message.replace(`[request ${requestId}]`, "").trim()}.`,
          "Call get_state to see where the session is now, then continue from there.",
          { error_type: result.reason.tag }
        )
      })

    // -------------------------------------------------------------------------
    // discovery

    const listWorkflows = (args: Params.Args) =>
      Effect.gen(function*() {
        const category = yield* optionalString(args, "category", "testing", 200)
        const all = [...env.workflows.values()].map((e) => e.workflow)
        const selected = category === undefined ? all : all.filter((w) => w.category.toLowerCase() === category.toLowerCase())
        return {
          workflows: selected.map((w) => ({
            workflow_type: w.name,
            version: w.version,
            description: w.description,
            category: w.category,
            estimated_duration: w.estimated_duration,
            total_phases: w.phases.length,
            phases: w.phases.map((p) => ({ phase: p.number, title: p.title, tasks: p.tasks.length }))
          })),
          count: selected.length,
          categories: [...new Set(all.map((w) => w.category))].sort(),
          ...(env.problems.length === 0 ? {} : { load_errors: env.problems }),
          next_action: "Call start with a workflow_type and the target_file to work on."
        }
      })

    // -------------------------------------------------------------------------
    // execution

    const start = (args: Params.Args) =>
      Effect.gen(function*() {
        const type = yield* string(args, "workflow_type", "test_generation", 100)
        const entry = env.workflows.get(type)
        if (entry === undefined) {
          return yield* fail(
            "WORKFLOW_NOT_FOUND",
            `No workflow named "${type}" is loaded.`,
            `Pass one of: ${workflowNames()} (list_workflows describes them).`
          )
        }
        const target = yield* string(args, "target_file", "src/math.ts")
        const checked = checkTarget(env.workspaceRoot, target)
        if (!("ok" in checked)) {
          return yield* new WorkflowToolError({
            code: "UNSAFE_PATH",
            parameter: "target_file",
            problem: `Parameter "target_file" was refused: ${checked.reason}.`,
            fix: "Pass a relative path to a file inside the workspace root, such as src/module.ts."
          })
        }
        const options = (yield* optionalObject(args, "options")) ?? {}
        if (Object.keys(options).some((k) => k === "__proto__" || k === "constructor" || k === "prototype")) {
          return yield* fail("INVALID_PARAMETER", `Parameter "options" uses a reserved key (__proto__, constructor or prototype).`, "Rename that key.")
        }
        if (depthExceeds(options, MAX_DEPTH)) {
          return yield* fail("INVALID_PARAMETER", `Parameter "options" nests deeper than ${MAX_DEPTH} levels.`, "Flatten the options object.")
        }
        if (Buffer.byteLength(JSON.stringify(options)) > MAX_OPTIONS_BYTES) {
          return yield* fail("INVALID_PARAMETER", `Parameter "options" is larger than ${MAX_OPTIONS_BYTES} bytes of JSON.`, "Pass smaller options.")
        }
        const id = newSessionId()
        yield* runtime.start(entry.procedure, { workflow_type: type, target_file: checked.ok, options }, { id }).pipe(
          Effect.mapError((e) => e._tag === "DefinitionError"
            ? new WorkflowToolError({ code: "INTERNAL", problem: e.message, fix: "Check the workflow definition." })
            : fromRuntime(id)(e))
        )
        const first = entry.workflow.phases[0]!
        return {
          session_id: id,
          workflow_type: type,
          target_file: checked.ok,
          status: "active" as const,
          current_phase: 1,
          total_phases: entry.workflow.phases.length,
          phase_content: phaseView(first, entry.workflow.phases.length),
          next_action: `Read phase 1, work through its tasks, then call complete_phase with session_id "${id}", phase 1 and the evidence.`
        }
      })

    const getPhase = (args: Params.Args) =>
      Effect.gen(function*() {
        const s = yield* loadSession(yield* sessionIdOf(args))
        const total = s.entry.workflow.phases.length
        return {
          session_id: s.id,
          status: sessionStatus(s.snapshot.status),
          current_phase: s.phase ?? null,
          total_phases: total,
          phase_content: s.phase === undefined ? null : phaseView(s.entry.workflow.phases[s.phase - 1]!, total, draftOf(s, s.phase)),
          completed_artifacts: completedArtifacts(s),
          read_evidence: READ_EVIDENCE
        }
      })

    const getTask = (args: Params.Args) =>
      Effect.gen(function*() {
        const s = yield* loadSession(yield* sessionIdOf(args))
        const phases = s.entry.workflow.phases
        const requested = yield* optionalInteger(args, "phase", 1, phases.length)
        const phaseNumber = requested ?? s.phase
        if (phaseNumber === undefined) {
          return yield* fail("INVALID_PARAMETER", `Session ${s.id} has completed; there is no current phase.`, `Pass phase (1..${phases.length}).`)
        }
        const phase = phases[phaseNumber - 1]!
        const taskNumber = yield* integer(args, "task_number", 1, phase.tasks.length)
        const task = phase.tasks[taskNumber - 1]!
        return {
          session_id: s.id,
          phase: phaseNumber,
          phase_title: phase.title,
          task_number: taskNumber,
          total_tasks: phase.tasks.length,
          title: task.title,
          content: task.content,
          execution_steps: task.execution_steps.map((step, i) => ({ step: i + 1, instruction: step })),
          artifacts: task.artifacts,
          next_action: taskNumber < phase.tasks.length
            ? `Do these steps, then call get_task with task_number ${taskNumber + 1}.`
            : `This is the last task of phase ${phaseNumber}; when done, call complete_phase with the checkpoint evidence.`
        }
      })

    const completePhase = (args: Params.Args) =>
      Effect.gen(function*() {
        const id = yield* sessionIdOf(args)
        const phase = yield* integer(args, "phase", 1, 50)
        const evidence = yield* optionalObject(args, "evidence")
        if (evidence === undefined) {
          return yield* new WorkflowToolError({
            code: "INVALID_PARAMETER",
            parameter: "evidence",
            problem: `Parameter "evidence" is required.`,
            fix: "Pass evidence as an object holding the checkpoint's fields (get_phase lists them under checkpoint.required_evidence)."
          })
        }
        if (depthExceeds(evidence, MAX_DEPTH)) {
          return yield* new WorkflowToolError({
            code: "EVIDENCE_TOO_DEEP",
            parameter: "evidence",
            problem: `Parameter "evidence" nests deeper than ${MAX_DEPTH} levels.`,
            fix: "Flatten the evidence: checkpoints need summaries, not deep structures."
          })
        }
        const bytes = Buffer.byteLength(JSON.stringify(evidence))
        if (bytes > MAX_EVIDENCE_BYTES) {
          return yield* new WorkflowToolError({
            code: "EVIDENCE_TOO_LARGE",
            parameter: "evidence",
            problem: `Parameter "evidence" is ${bytes} bytes of JSON; the limit is ${MAX_EVIDENCE_BYTES} bytes.`,
            fix: "Send a summary and file paths instead of whole file contents."
          })
        }
        return yield* withLock(id, Effect.gen(function*() {
          const s = yield* loadSession(id)
          yield* requireActive(s, "complete a phase")
          const current = s.phase!
          if (phase !== current) {
            return yield* new WorkflowToolError({
              code: phase < current ? "CONFLICT" : "PHASE_MISMATCH",
              parameter: "phase",
              problem: phase < current
                ? `Phase ${phase} of session ${id} was already completed (by another client or an earlier call); the session is at phase ${current}.`
                : `Session ${id} is at phase ${current}; phase ${phase} cannot be completed before it.`,
              fix: phase < current
                ? `Complete phase ${current} next, or call rollback with to_phase ${phase} to redo phase ${phase}.`
                : `Call complete_phase with phase ${current} first.`,
              details: { current_phase: current }
            })
          }
          const total = s.entry.workflow.phases.length
          const spec = s.entry.workflow.phases[current - 1]!
          const admitted = admitEvidence(env.limits, s.context, current, evidence)
          if (Either.isLeft(admitted)) return yield* overLimit(id, current, admitted.left)
          const merged = admitted.right.merged
          const result = spec.checkpoint.check(merged)
          if (!result.passed) {
            const now = yield* Clock.currentTimeMillis
            const error: ErrorRecord = {
              phase: current,
              timestamp: now,
              error_type: "checkpoint_failed",
              message: `Checkpoint of phase ${current} failed: ${
                [
                  result.missing.length > 0 ? `missing ${result.missing.join(", ")}` : "",
                  result.invalid.length > 0 ? `invalid ${result.invalid.map((i) => i.field).join(", ")}` : ""
                ].filter((x) => x !== "").join("; ")
              }`,
              details: { missing_evidence: result.missing, invalid_evidence: result.invalid }
            }
            yield* deliver(s, (request_id, at) => ({ _tag: "CheckpointFailed", phase: current, draft: evidence, error, request_id, at }))
            const failures = s.context.errors.filter((e) => e.phase === current && e.error_type === "checkpoint_failed").length + 1
            return {
              session_id: id,
              checkpoint_passed: false,
              phase: current,
              current_phase: current,
              phase_completed: false,
              missing_evidence: result.missing,
              invalid_evidence: result.invalid,
              expected_evidence: Object.fromEntries(Object.entries(spec.checkpoint.fields).map(([n, f]) => [n, fieldView(f)])),
              kept_as_draft: Object.keys(merged as object).slice(0, MAX_LISTED_FIELDS),
              kept_as_draft_count: Object.keys(merged as object).length,
              failed_attempts: failures,
              what_to_do:
                `The phase did not advance. Provide ${
                  result.missing.length > 0 ? `the missing fields (${result.missing.join(", ")})` : ""
                }${result.missing.length > 0 && result.invalid.length > 0 ? " and " : ""}${
                  result.invalid.length > 0 ? `valid values for ${result.invalid.map((i) => i.field).join(", ")}` : ""
                }, then call complete_phase again with phase ${current}. Fields you sent are kept as a draft and merged ` +
                `with your next submission; call retry_phase with reset_evidence true to start the evidence over.`
            }
          }
          const snapshot = yield* deliver(s, (request_id, at) => ({ _tag: "CompletePhase", phase: current, evidence, request_id, at }))
          const done = phaseOf(snapshot.state) === undefined
          const next = done ? undefined : s.entry.workflow.phases[current]!
          return {
            session_id: id,
            checkpoint_passed: true,
            phase_completed: current,
            status: done ? "completed" as const : "active" as const,
            current_phase: done ? null : current + 1,
            total_phases: total,
            workflow_completed: done,
            next_phase: next === undefined ? null : phaseView(next, total),
            next_action: done
              ? `All ${total} phases are complete. get_session shows the full record.`
              : `Continue with phase ${current + 1}: ${next!.title}.`
          }
        }))
      })

    /** When the current phase was entered: self-transitions (a failed checkpoint, a note) stay in the phase. */
    const phaseEnteredAt = (s: Session) =>
      Effect.map(runtime.history(s.id, { tail: 200 }).pipe(Effect.mapError(fromRuntime(s.id))), (history) => {
        for (let i = history.length - 1; i >= 0; i--) {
          const t = history[i]!
          if (t.to === s.snapshot.state && (t.from !== t.to || t.cause === "start")) return t.at
        }
        return history[0]?.at ?? s.snapshot.startedAt
      })

    const getState = (args: Params.Args) =>
      Effect.gen(function*() {
        const s = yield* loadSession(yield* sessionIdOf(args))
        const status = sessionStatus(s.snapshot.status)
        const enteredAt = yield* phaseEnteredAt(s)
        const draft = s.phase === undefined ? undefined : draftOf(s, s.phase)
        return {
          session_id: s.id,
          workflow_type: s.context.workflow_type,
          target_file: s.context.target_file,
          status,
          current_phase: s.phase ?? null,
          total_phases: s.entry.workflow.phases.length,
          completed_phases: completedArtifacts(s).map((a) => a.phase),
          artifacts: completedArtifacts(s),
          ...(draft === undefined ? {} : { draft: draftView(draft) }),
          evidence_storage: {
            phase_bytes: draft === undefined ? 0 : jsonBytes(draft.evidence),
            phase_limit_bytes: env.limits.phaseBytes,
            session_recorded_bytes: recordedBytes(s.context),
            session_limit_bytes: env.limits.sessionBytes
          },
          read_evidence: READ_EVIDENCE,
          started_at: iso(s.snapshot.startedAt),
          updated_at: iso(s.snapshot.updatedAt),
          phase_entered_at: iso(enteredAt),
          resume_capable: status === "active" || status === "paused",
          next_action: status === "paused"
            ? "Call resume to continue."
            : status === "active"
            ? `Continue phase ${s.phase}; get_phase shows it.`
            : "This session has ended."
        }
      })

    /** The stored evidence of a phase (its artifact, or the current phase's draft) as JSON text, a page at a time. */
    const getArtifact = (args: Params.Args) =>
      Effect.gen(function*() {
        const s = yield* loadSession(yield* sessionIdOf(args))
        const total = s.entry.workflow.phases.length
        const phase = yield* integer(args, "phase", 1, total)
        const offset = (yield* optionalInteger(args, "offset", 0, Number.MAX_SAFE_INTEGER)) ?? 0
        const limit = (yield* optionalInteger(args, "limit", 1, MAX_PAGE_CHARS)) ?? MAX_PAGE_CHARS
        const artifact = completedArtifactOf(s, phase)
        const draft = phase === s.phase ? draftOf(s, phase) : undefined
        const stored = artifact !== undefined
          ? { kind: "artifact" as const, evidence: artifact.evidence }
          : draft !== undefined
          ? { kind: "draft" as const, evidence: draft.evidence }
          : undefined
        if (stored === undefined) {
          return yield* new WorkflowToolError({
            code: "INVALID_PARAMETER",
            parameter: "phase",
            problem: `Phase ${phase} of session ${s.id} has no stored evidence: it is neither completed nor the current phase with a draft.`,
            fix: "get_state lists the completed phases (artifacts) and the current phase's draft; pass one of those phases."
          })
        }
        const text = JSON.stringify(stored.evidence) ?? "null"
        if (offset > text.length) {
          return yield* new WorkflowToolError({
            code: "INVALID_PARAMETER",
            parameter: "offset",
            problem: `Parameter "offset" is ${offset}, past the end of the evidence (${text.length} characters).`,
            fix: "Start at offset 0 and pass each page's next_offset to read the next one."
          })
        }
        let end = Math.min(text.length, offset + limit)
        // never split a surrogate pair across two pages
        if (end < text.length && end > offset + 1 && /[\uD800-\uDBFF]/.test(text[end - 1]!)) end--
        const next = end < text.length ? end : null
        return {
          session_id: s.id,
          phase,
          kind: stored.kind,
          format: "json",
          total_chars: text.length,
          offset,
          content: text.slice(offset, end),
          next_offset: next,
          next_action: next === null
            ? "This is the last page: join the content of the pages in order and parse it as JSON."
            : `Call get_artifact with phase ${phase} and offset ${next} for the next page; join the pages' content in order and parse it as JSON.`
        }
      })

    // -------------------------------------------------------------------------
    // management

    const listSessions = (args: Params.Args) =>
      Effect.gen(function*() {
        const status = yield* optionalLiteral(args, "status", SESSION_STATUSES)
        const type = yield* optionalString(args, "workflow_type", "test_generation", 100)
        const limit = (yield* optionalInteger(args, "limit", 1, 1000)) ?? 100
        const statuses: ReadonlyArray<Status> = status === undefined
          ? ["waiting", "running", "needs_intervention", "compensating", "paused", "succeeded", "failed", "rolled_back"]
          : runtimeStatuses(status)
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
          ...(s.context.deleted === undefined
            ? {}
            : { deleted: { at: iso(s.context.deleted.at), ...(s.context.deleted.reason === undefined ? {} : { reason: s.context.deleted.reason }) } }),
          resume_capable: status === "active" || status === "paused"
        }
      })

    const deleteSession = (args: Params.Args) =>
      Effect.gen(function*() {
        const id = yield* sessionIdOf(args)
        const reason = yield* optionalString(args, "reason", "no longer needed", 1000)
        return yield* withLock(id, Effect.gen(function*() {
          let s = yield* loadSession(id)
          if (s.snapshot.status === "cancelled") {
            return {
              session_id: id,
              deleted: true,
              already_deleted: true,
              ...(s.context.deleted?.reason === undefined ? {} : { reason: s.context.deleted.reason }),
              deleted_at: iso(s.context.deleted?.at ?? s.snapshot.updatedAt)
            }
          }
          if (isTerminal(s.snapshot.status)) {
            return yield* fail(
              "INVALID_STATE",
              `Session ${id} has ended (${sessionStatus(s.snapshot.status)}); ended sessions are kept as a record and cannot be deleted.`,
              "Nothing to do: it no longer shows as active in list_sessions."
            )
          }
          if (s.snapshot.status === "paused") {
            yield* runtime.resume(id).pipe(Effect.mapError(fromRuntime(id)))
            s = yield* loadSession(id)
          }
          if (s.context.deleted === undefined) {
            yield* deliver(s, (request_id, at) => ({ _tag: "MarkDeleted", ...(reason === undefined ? {} : { reason }), request_id, at }))
          }
          const snapshot = yield* runtime.cancel(id).pipe(Effect.mapError(fromRuntime(id)))
          return {
            session_id: id,
            deleted: true,
            already_deleted: false,
            ...(reason === undefined ? {} : { reason }),
            deleted_at: iso(snapshot.updatedAt)
          }
        }))
      })

    const pause = (args: Params.Args) =>
      Effect.gen(function*() {
        const id = yield* sessionIdOf(args)
        const note = yield* optionalString(args, "checkpoint_note", "stopped after writing half the tests", 4000)
        return yield* withLock(id, Effect.gen(function*() {
          const s = yield* loadSession(id)
          yield* requireActive(s, "be paused")
          if (note !== undefined) {
            yield* deliver(s, (request_id, at) => ({ _tag: "AddNote", phase: s.phase!, note, request_id, at }))
          }
          const snapshot = yield* runtime.pause(id).pipe(Effect.mapError(fromRuntime(id)))
          return {
            session_id: id,
            status: "paused" as const,
            paused_at: iso(snapshot.updatedAt),
            current_phase: s.phase!,
            ...(note === undefined ? {} : { checkpoint_note: note }),
            next_action: "Call resume with this session_id to continue where you stopped."
          }
        }))
      })

    const resume = (args: Params.Args) =>
      Effect.gen(function*() {
        const id = yield* sessionIdOf(args)
        return yield* withLock(id, Effect.gen(function*() {
          const s = yield* loadSession(id)
          yield* requireUsable(s, "be resumed")
          if (s.snapshot.status !== "paused") {
            return yield* fail("INVALID_STATE", `Session ${id} is not paused (it is ${sessionStatus(s.snapshot.status)}).`, "Only a paused session can be resumed; continue it with get_phase.")
          }
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
        }))
      })

    // -------------------------------------------------------------------------
    // recovery

    const retryPhase = (args: Params.Args) =>
      Effect.gen(function*() {
        const id = yield* sessionIdOf(args)
        const phase = yield* integer(args, "phase", 1, 50)
        const reset = (yield* optionalBoolean(args, "reset_evidence")) ?? false
        return yield* withLock(id, Effect.gen(function*() {
          const s = yield* loadSession(id)
          yield* requireActive(s, "retry a phase")
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
        return yield* withLock(id, Effect.gen(function*() {
          const s = yield* loadSession(id)
          yield* requireActive(s, "roll back")
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
          yield* runtime.skip(id, phaseState(to)).pipe(Effect.mapError(fromRuntime(id)))
          const moved = yield* loadSession(id)
          yield* deliver(moved, (request_id, at) => ({ _tag: "RolledBack", from_phase: from, to_phase: to, request_id, at }))
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
        }))
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
            error_type: e.tag === "PhaseConflict" ? "conflict" : e.tag,
            message: e.message.replace(/\[request [^\]]+\]\s*/, ""),
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

    const handlers: { readonly [A in Action]: (args: Params.Args) => Effect.Effect<object, WorkflowToolError> } = {
      list_workflows: listWorkflows,
      start,
      get_phase: getPhase,
      get_task: getTask,
      complete_phase: completePhase,
      get_state: getState,
      get_artifact: getArtifact,
      list_sessions: listSessions,
      get_session: getSession,
      delete_session: deleteSession,
      pause,
      resume,
      retry_phase: retryPhase,
      rollback,
      get_errors: getErrors
    }
    return handlers
  })
