/**
 * The discovery and execution actions of the `workflow` tool: list the workflows, start a
 * session, read its phase, a task, its state and stored evidence, and complete a phase with
 * the checkpoint's evidence.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Either } from "effect"
import { WorkflowToolError } from "./errors.js"
import type * as Params from "./params.js"
import { integer, optionalInteger, optionalObject, optionalString, string } from "./params.js"
import type { ErrorRecord, EvidenceOverLimit } from "./procedure.js"
import { admitEvidence, phaseOf, recordedBytes } from "./procedure.js"
import { checkTarget, depthExceeds, jsonBytes, MAX_DEPTH, MAX_EVIDENCE_BYTES, MAX_OPTIONS_BYTES, newSessionId } from "./safety.js"
import type { Sessions } from "./session.js"
import { fail, fromRuntime } from "./session.js"
import {
  completedArtifactOf,
  completedArtifacts,
  draftOf,
  draftView,
  fieldView,
  iso,
  MAX_LISTED_FIELDS,
  phaseView,
  READ_EVIDENCE,
  sessionStatus
} from "./views.js"

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

/** The most characters `get_artifact` returns in one page (also its default). */
const MAX_PAGE_CHARS = 65_536

/**
 * Builds the handlers of these actions.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (sessions: Sessions) => {
  const { runtime, env, workflowNames, sessionIdOf, loadSession, require, changing, deliver, phaseEnteredAt } = sessions
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
          : e._tag === "QuotaExceeded"
          ? new WorkflowToolError({ code: "CONFLICT", problem: e.message, fix: "Wait for the time it names, then call start again." })
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
      return yield* changing(id, (s) =>
        Effect.gen(function*() {
          yield* require(s, "complete a phase", { event: "CompletePhase" })
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

  return { list_workflows: listWorkflows, start, get_phase: getPhase, get_task: getTask, complete_phase: completePhase, get_state: getState, get_artifact: getArtifact }
}
