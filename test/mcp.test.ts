/**
 * The MCP server end to end: the official SDK client (`Client` + `StdioClientTransport`)
 * against a spawned `npx tsx src/mcp/main.ts` on a temp SQLite db and a temp workspace.
 * One server serves most cases; the restart case spawns its own twice.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { McpUnavailable, runCli } from "../src/cli/commands.js"
import * as Out from "../src/cli/output.js"
import type { Server, Workspace } from "./fixtures/mcpClient.js"
import { call, closeServer, killServer, makeWorkspace, readArtifact, repoRoot, spawnServer } from "./fixtures/mcpClient.js"
import { testGenerationEvidence as evidence } from "./fixtures/mcpEvidence.js"

const ACTIONS = [
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
]

let ws: Workspace
let server: Server

const start = async (target = "src/math.ts", options?: Record<string, unknown>) => {
  const r = await call(server, { action: "start", workflow_type: "test_generation", target_file: target, ...(options ? { options } : {}) })
  assert.isFalse(r.isError, JSON.stringify(r.body))
  return r.body.session_id as string
}

const complete = (session_id: string, phase: number, ev: unknown = evidence[phase - 1]) =>
  call(server, { action: "complete_phase", session_id, phase, evidence: ev })

const expectError = (r: { isError: boolean; body: any }, code: string, parameter?: string) => {
  assert.isTrue(r.isError, `expected ${code}, got ${JSON.stringify(r.body).slice(0, 300)}`)
  assert.strictEqual(r.body.error.code, code, JSON.stringify(r.body))
  assert.isString(r.body.error.fix)
  assert.isAbove(r.body.error.fix.length, 10)
  if (parameter !== undefined) assert.strictEqual(r.body.error.parameter, parameter)
}

beforeAll(async () => {
  ws = makeWorkspace()
  fs.writeFileSync(path.join(ws.dir, "secret.txt"), "secret")
  fs.symlinkSync(path.join(ws.dir, "secret.txt"), path.join(ws.root, "escape"))
  fs.symlinkSync(ws.dir, path.join(ws.root, "outside"))
  server = await spawnServer(ws)
})

afterAll(async () => {
  if (server !== undefined) await closeServer(server)
  ws?.cleanup()
})

describe("MCP server: the workflow tool", () => {
  it("tools/list shows exactly one tool, workflow, whose schema lists all 14 actions", async () => {
    const { tools } = await server.client.listTools()
    assert.deepStrictEqual(tools.map((t) => t.name), ["workflow"])
    const schema = tools[0]!.inputSchema as any
    assert.deepStrictEqual(schema.properties.action.enum, ACTIONS)
    assert.deepStrictEqual(schema.required, ["action"])
  })

  it("list_workflows describes the shipped workflows and filters by category", async () => {
    const all = await call(server, { action: "list_workflows" })
    assert.isFalse(all.isError)
    assert.strictEqual(all.body.count, 2)
    const tg = all.body.workflows.find((w: any) => w.workflow_type === "test_generation")
    assert.strictEqual(tg.category, "testing")
    assert.strictEqual(tg.total_phases, 4)
    assert.deepStrictEqual(tg.phases.map((p: any) => p.title), ["Analyse the code", "Plan the tests", "Write the tests", "Verify"])
    assert.isString(tg.estimated_duration)
    assert.isString(tg.description)
    const planning = await call(server, { action: "list_workflows", category: "planning" })
    assert.deepStrictEqual(planning.body.workflows.map((w: any) => w.workflow_type), ["spec_creation"])
  })

  it("runs test_generation from start to completion", async () => {
    const r = await call(server, { action: "start", workflow_type: "test_generation", target_file: "src/math.ts", options: { framework: "vitest" } })
    assert.isFalse(r.isError)
    const id = r.body.session_id as string
    assert.match(id, /^ses_[0-9a-f-]{36}$/)
    assert.strictEqual(r.body.current_phase, 1)
    assert.strictEqual(r.body.phase_content.title, "Analyse the code")
    assert.include(r.body.phase_content.content, "# Phase 1")
    assert.deepStrictEqual(Object.keys(r.body.phase_content.checkpoint.required_evidence).sort(), [
      "behaviours",
      "dependencies",
      "edge_cases",
      "existing_test_files",
      "public_api",
      "test_framework"
    ])

    const task = await call(server, { action: "get_task", session_id: id, task_number: 2 })
    assert.strictEqual(task.body.title, "State the behaviours and edge cases")
    assert.isAbove(task.body.execution_steps.length, 1)
    assert.deepStrictEqual(task.body.execution_steps[0].step, 1)
    assert.isArray(task.body.artifacts)

    for (let phase = 1; phase <= 4; phase++) {
      const before = await call(server, { action: "get_phase", session_id: id })
      assert.strictEqual(before.body.current_phase, phase)
      assert.strictEqual(before.body.completed_artifacts.length, phase - 1)
      const done = await complete(id, phase)
      assert.isFalse(done.isError, JSON.stringify(done.body))
      assert.isTrue(done.body.checkpoint_passed)
      assert.strictEqual(done.body.phase_completed, phase)
      if (phase < 4) {
        assert.strictEqual(done.body.next_phase.phase, phase + 1)
        assert.strictEqual(done.body.current_phase, phase + 1)
      } else {
        assert.isTrue(done.body.workflow_completed)
        assert.isNull(done.body.next_phase)
      }
    }
    const state = await call(server, { action: "get_state", session_id: id })
    assert.strictEqual(state.body.status, "completed")
    assert.strictEqual(state.body.workflow_type, "test_generation")
    assert.deepStrictEqual(state.body.completed_phases, [1, 2, 3, 4])
    assert.deepStrictEqual(state.body.artifacts[3].fields, Object.keys(evidence[3]!))
    assert.deepStrictEqual((await readArtifact(server, id, 4)).evidence, evidence[3])
    assert.isFalse(state.body.resume_capable)
    assert.isString(state.body.started_at)

    const session = await call(server, { action: "get_session", session_id: id })
    assert.deepStrictEqual(session.body.options, { framework: "vitest" })
    assert.deepStrictEqual(session.body.phase_history.map((h: any) => [h.phase, h.outcome]), [
      [1, "completed"],
      [2, "completed"],
      [3, "completed"],
      [4, "completed"]
    ])
    for (const h of session.body.phase_history) assert.isAtLeast(h.duration_seconds, 0)

    const again = await complete(id, 4)
    expectError(again, "INVALID_STATE")
  })

  it("a failing checkpoint does not advance; retry_phase shows the errors; the draft is merged", async () => {
    const id = await start()
    const partial = { public_api: ["add"], behaviours: ["too short"] }
    const failed = await complete(id, 1, partial)
    assert.isFalse(failed.isError)
    assert.isFalse(failed.body.checkpoint_passed)
    assert.strictEqual(failed.body.current_phase, 1)
    assert.deepStrictEqual(failed.body.missing_evidence.sort(), ["dependencies", "edge_cases", "test_framework"])
    assert.isTrue(failed.body.invalid_evidence.every((i: any) => i.field.startsWith("behaviours")), JSON.stringify(failed.body))
    assert.isAbove(failed.body.invalid_evidence.length, 0)
    assert.isString(failed.body.what_to_do)
    const stateAfterFailure = (await call(server, { action: "get_state", session_id: id })).body
    assert.strictEqual(stateAfterFailure.current_phase, 1)
    // a failed checkpoint stays in the phase: the phase was entered when the session started
    assert.strictEqual(stateAfterFailure.phase_entered_at, stateAfterFailure.started_at)

    const retry = await call(server, { action: "retry_phase", session_id: id, phase: 1 })
    assert.isFalse(retry.isError, JSON.stringify(retry.body))
    assert.isTrue(retry.body.retrying)
    assert.strictEqual(retry.body.phase_content.phase, 1)
    assert.strictEqual(retry.body.previous_errors.length, 1)
    assert.strictEqual(retry.body.previous_errors[0].error_type, "checkpoint_failed")
    assert.deepStrictEqual(retry.body.phase_content.draft.fields, ["public_api", "behaviours"])
    assert.deepStrictEqual(await readArtifact(server, id, 1), { kind: "draft", evidence: partial, pages: 1 })

    // the draft keeps public_api: sending the rest completes the phase
    const { public_api: _, ...rest } = evidence[0] as Record<string, unknown>
    const ok = await complete(id, 1, rest)
    assert.isTrue(ok.body.checkpoint_passed, JSON.stringify(ok.body))
    await call(server, { action: "get_state", session_id: id })
    assert.deepStrictEqual(((await readArtifact(server, id, 1)).evidence as any).public_api, ["add"])

    // reset_evidence discards the draft
    await complete(id, 2, { coverage_goal: 50 })
    const reset = await call(server, { action: "retry_phase", session_id: id, phase: 2, reset_evidence: true })
    assert.isUndefined(reset.body.phase_content.draft)
    const again = await complete(id, 2, { test_file: "src/math.test.ts" })
    assert.include(again.body.missing_evidence, "coverage_goal")
    expectError(await call(server, { action: "retry_phase", session_id: id, phase: 1 }), "PHASE_MISMATCH", "phase")
  })

  it("pause and resume: only active sessions pause, only paused ones resume", async () => {
    const id = await start()
    const paused = await call(server, { action: "pause", session_id: id, checkpoint_note: "halfway through task 2" })
    assert.isFalse(paused.isError, JSON.stringify(paused.body))
    assert.strictEqual(paused.body.status, "paused")
    expectError(await call(server, { action: "pause", session_id: id }), "INVALID_STATE")
    expectError(await complete(id, 1), "INVALID_STATE")
    const listed = await call(server, { action: "list_sessions", status: "paused" })
    assert.include(listed.body.sessions.map((s: any) => s.session_id), id)
    const resumed = await call(server, { action: "resume", session_id: id })
    assert.isFalse(resumed.isError, JSON.stringify(resumed.body))
    assert.strictEqual(resumed.body.status, "active")
    assert.isAtLeast(resumed.body.paused_duration_seconds, 0)
    assert.strictEqual(resumed.body.checkpoint_note, "halfway through task 2")
    assert.strictEqual(resumed.body.phase_content.phase, 1)
    expectError(await call(server, { action: "resume", session_id: id }), "INVALID_STATE")
    assert.isTrue((await complete(id, 1)).body.checkpoint_passed)
  })

  it("rollback goes back to an earlier phase and clears the artifacts from there on", async () => {
    const id = await start()
    for (let phase = 1; phase <= 3; phase++) assert.isTrue((await complete(id, phase)).body.checkpoint_passed)
    const back = await call(server, { action: "rollback", session_id: id, to_phase: 2 })
    assert.isFalse(back.isError, JSON.stringify(back.body))
    assert.strictEqual(back.body.from_phase, 4)
    assert.strictEqual(back.body.to_phase, 2)
    assert.deepStrictEqual(back.body.cleared_artifacts_of_phases, [2, 3])
    const state = await call(server, { action: "get_state", session_id: id })
    assert.strictEqual(state.body.current_phase, 2)
    assert.deepStrictEqual(state.body.completed_phases, [1])
    expectError(await complete(id, 3), "PHASE_MISMATCH", "phase")
    expectError(await call(server, { action: "rollback", session_id: id, to_phase: 2 }), "PHASE_MISMATCH", "to_phase")
    assert.isTrue((await complete(id, 2)).body.checkpoint_passed)
    const session = await call(server, { action: "get_session", session_id: id })
    assert.deepStrictEqual(session.body.phase_history.map((h: any) => [h.phase, h.outcome]), [
      [1, "completed"],
      [2, "completed"],
      [3, "completed"],
      [4, "rolled_back"],
      [2, "completed"],
      [3, "in_progress"]
    ])
    assert.deepStrictEqual(session.body.rollbacks.map((r: any) => [r.from_phase, r.to_phase]), [[4, 2]])
  })

  it("get_errors lists each error with phase, timestamp, type, message and details", async () => {
    const id = await start()
    const none = await call(server, { action: "get_errors", session_id: id })
    assert.strictEqual(none.body.error_count, 0)
    assert.isNull(none.body.last_error)
    await complete(id, 1, { public_api: [] })
    await complete(id, 1, { test_framework: "x" })
    const errors = await call(server, { action: "get_errors", session_id: id })
    assert.strictEqual(errors.body.error_count, 2)
    for (const e of errors.body.errors) {
      assert.strictEqual(e.phase, 1)
      assert.strictEqual(e.error_type, "checkpoint_failed")
      assert.isString(e.message)
      assert.isString(e.timestamp)
      assert.isObject(e.details)
    }
    assert.deepStrictEqual(errors.body.last_error, errors.body.errors[1])
    assert.include(errors.body.last_error.details.invalid_evidence.map((i: any) => i.field), "test_framework")
  })

  it("replies stay small with 5 MiB of evidence stored: summaries and sizes, contents by get_artifact a page at a time", async () => {
    const id = await start()
    // quotes, backslashes, newlines and non-ASCII make the JSON text longer than the characters
    const blob = (mib: number) => "ünïcødé \"quoted\" \\ line\n".repeat(Math.ceil(mib * 1024 * 1024 / 28))
    const phase1 = { ...evidence[0], appendix: blob(2) }
    const phase2 = { ...evidence[1], appendix: blob(2) }
    const draft3 = { test_file: "src/math.test.ts", appendix: blob(1) }
    assert.isTrue((await complete(id, 1, phase1)).body.checkpoint_passed)
    assert.isTrue((await complete(id, 2, phase2)).body.checkpoint_passed)
    assert.isFalse((await complete(id, 3, draft3)).body.checkpoint_passed)
    const stored = Buffer.byteLength(JSON.stringify([phase1, phase2, draft3]))
    assert.isAbove(stored, 5 * 1024 * 1024)

    /** the whole reply as the SDK client received it, text and structuredContent */
    const replySize = async (args: Record<string, unknown>) => {
      const result = await server.client.callTool({ name: "workflow", arguments: { session_id: id, ...args } }, undefined, { timeout: 60_000 })
      assert.notStrictEqual(result.isError, true, JSON.stringify(result).slice(0, 300))
      return Buffer.byteLength(JSON.stringify(result))
    }
    for (
      const args of [
        { action: "get_state" },
        { action: "get_phase" },
        { action: "get_session" },
        { action: "get_errors" },
        { action: "list_sessions" },
        { action: "retry_phase", phase: 3 },
        { action: "pause", checkpoint_note: "n".repeat(4000) },
        { action: "resume" },
        { action: "get_artifact", phase: 1 },
        { action: "get_artifact", phase: 3, offset: 1000 }
      ]
    ) {
      const size = await replySize(args)
      assert.isBelow(size, 256 * 1024, `${args.action}: ${size} bytes`)
    }
    const state = await call(server, { action: "get_state", session_id: id })
    assert.deepStrictEqual(state.body.artifacts.map((a: any) => [a.phase, a.bytes]), [
      [1, Buffer.byteLength(JSON.stringify(phase1))],
      [2, Buffer.byteLength(JSON.stringify(phase2))]
    ])
    assert.include(state.body.artifacts[0].fields, "appendix")
    assert.deepStrictEqual(state.body.draft.fields, ["test_file", "appendix"])
    // later reads still work, and the pages give back exactly what was stored
    const first = await readArtifact(server, id, 1)
    assert.deepStrictEqual(first.evidence, phase1)
    assert.deepStrictEqual(first.kind, "artifact")
    assert.isAbove(first.pages, 10)
    assert.deepStrictEqual((await readArtifact(server, id, 3, 65_536)).evidence, draft3)
    expectError(await call(server, { action: "get_artifact", session_id: id, phase: 4 }), "INVALID_PARAMETER", "phase")
    expectError(await call(server, { action: "get_artifact", session_id: id, phase: 1, offset: 1e9 }), "INVALID_PARAMETER", "offset")
    expectError(await call(server, { action: "get_artifact", session_id: id, phase: 1, limit: 65_537 }), "INVALID_PARAMETER", "limit")
  })

  it("list_sessions, get_session and an idempotent delete_session", async () => {
    const id = await start("src/other.ts", { depth: "thorough" })
    const listed = await call(server, { action: "list_sessions" })
    assert.strictEqual(listed.body.count, listed.body.sessions.length)
    const mine = listed.body.sessions.find((s: any) => s.session_id === id)
    assert.deepStrictEqual([mine.status, mine.current_phase, mine.target_file], ["active", 1, "src/other.ts"])
    const deleted = await call(server, { action: "delete_session", session_id: id, reason: "test over" })
    assert.isFalse(deleted.isError, JSON.stringify(deleted.body))
    assert.deepStrictEqual([deleted.body.deleted, deleted.body.already_deleted], [true, false])
    const twice = await call(server, { action: "delete_session", session_id: id })
    assert.deepStrictEqual([twice.body.deleted, twice.body.already_deleted, twice.body.reason], [true, true, "test over"])
    const after = await call(server, { action: "list_sessions" })
    assert.notInclude(after.body.sessions.map((s: any) => s.session_id), id)
    const gone = await call(server, { action: "list_sessions", status: "deleted" })
    assert.include(gone.body.sessions.map((s: any) => s.session_id), id)
    expectError(await complete(id, 1), "SESSION_DELETED")
    const record = await call(server, { action: "get_session", session_id: id })
    assert.strictEqual(record.body.status, "deleted")
    assert.strictEqual(record.body.deleted.reason, "test over")
    // a paused session can be deleted too
    const other = await start()
    await call(server, { action: "pause", session_id: other })
    assert.isTrue((await call(server, { action: "delete_session", session_id: other })).body.deleted)
  })

  it("concurrent completions of the same phase: exactly one wins, the others get a conflict", async () => {
    // stdio serves one client connection per server process (and one process per db file),
    // so clients racing on a session are concurrent requests on the server: sent at once here
    for (let round = 0; round < 3; round++) {
      const id = await start()
      const results = await Promise.all([complete(id, 1), complete(id, 1), complete(id, 1)])
      const winners = results.filter((r) => !r.isError && r.body.checkpoint_passed === true)
      const losers = results.filter((r) => r.isError)
      assert.strictEqual(winners.length, 1, JSON.stringify(results.map((r) => r.body)))
      assert.strictEqual(losers.length, 2)
      for (const l of losers) {
        assert.strictEqual(l.body.error.code, "CONFLICT")
        assert.match(l.body.error.message, /already completed/)
      }
      const state = await call(server, { action: "get_state", session_id: id })
      assert.strictEqual(state.body.current_phase, 2)
      const session = await call(server, { action: "get_session", session_id: id })
      assert.strictEqual(session.body.phase_history.filter((h: any) => h.outcome === "completed").length, 1)
    }
  })

  describe("security: every bad call is a tool error that says how to fix it", () => {
    const unsafeTargets: ReadonlyArray<[string, unknown]> = [
      ["parent traversal", "../etc/passwd"],
      ["traversal after a folder", "src/../../secret.txt"],
      ["absolute path", "/etc/passwd"],
      ["URL-encoded traversal", "%2e%2e/%2e%2e/etc/passwd"],
      ["double URL-encoded traversal", "%252e%252e/secret.txt"],
      ["encoded slash", "..%2fsecret.txt"],
      ["NUL byte", "src/math.ts\u0000.png"],
      ["newline", "src/math.ts\nforged log line"],
      ["escape character", "src/\u001b[2Jmath.ts"],
      ["backslash traversal", "..\\..\\secret.txt"],
      ["Windows drive", "C:/Windows/win.ini"],
      ["home directory", "~/.ssh/id_rsa"],
      ["symlink to a file outside", "escape"],
      ["symlink to a folder outside", "outside/secret.txt"],
      ["fullwidth dots", "\uFF0E\uFF0E/secret.txt"]
    ]
    for (const [name, target] of unsafeTargets) {
      it(`start refuses target_file: ${name}`, async () => {
        const r = await call(server, { action: "start", workflow_type: "test_generation", target_file: target })
        expectError(r, "UNSAFE_PATH", "target_file")
      })
    }

    it("start names a mistyped or missing target_file", async () => {
      expectError(await call(server, { action: "start", workflow_type: "test_generation", target_file: 42 }), "INVALID_PARAMETER", "target_file")
      expectError(await call(server, { action: "start", workflow_type: "test_generation" }), "INVALID_PARAMETER", "target_file")
    })

    it("an unknown action lists the valid actions", async () => {
      const r = await call(server, { action: "drop_tables" })
      expectError(r, "UNKNOWN_ACTION", "action")
      assert.deepStrictEqual(r.body.error.details.valid_actions, ACTIONS)
      for (const a of ACTIONS) assert.include(r.body.error.fix, a)
      expectError(await call(server, { action: 7 }), "UNKNOWN_ACTION", "action")
      expectError(await call(server, {}), "INVALID_PARAMETER", "action")
    })

    it("a call to another tool name is a tool error", async () => {
      const result = await server.client.callTool({ name: "shell", arguments: { action: "list_workflows" } })
      assert.isTrue(result.isError)
    })

    const badIds: ReadonlyArray<[string, unknown]> = [
      ["too short", "ses_123"],
      ["path traversal", "../../ses_3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b"],
      ["SQL injection", "ses_' OR '1'='1"],
      ["uppercase uuid", "ses_3F2B8C1E-9D4A-4E5F-8A7B-1C2D3E4F5A6B"],
      ["no prefix", "3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b"]
    ]
    for (const [name, id] of badIds) {
      it(`session_id is refused: ${name}`, async () => {
        expectError(await call(server, { action: "get_state", session_id: id }), "INVALID_SESSION_ID", "session_id")
      })
    }

    it("session_id of the wrong type or unknown", async () => {
      expectError(await call(server, { action: "get_state", session_id: 12 }), "INVALID_PARAMETER", "session_id")
      expectError(await call(server, { action: "get_state" }), "INVALID_PARAMETER", "session_id")
      expectError(await call(server, { action: "get_state", session_id: "ses_3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b" }), "SESSION_NOT_FOUND")
    })

    it("mistyped phase, task_number, evidence, options and status name the parameter", async () => {
      const id = await start()
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: "1", evidence: {} }), "INVALID_PARAMETER", "phase")
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: 1.5, evidence: {} }), "INVALID_PARAMETER", "phase")
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: 0, evidence: {} }), "INVALID_PARAMETER", "phase")
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: 1 }), "INVALID_PARAMETER", "evidence")
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: 1, evidence: [1, 2] }), "INVALID_PARAMETER", "evidence")
      expectError(await call(server, { action: "complete_phase", session_id: id, phase: 1, evidence: "all done" }), "INVALID_PARAMETER", "evidence")
      expectError(await call(server, { action: "get_task", session_id: id, task_number: 99 }), "INVALID_PARAMETER", "task_number")
      expectError(await call(server, { action: "start", workflow_type: "test_generation", target_file: "src/a.ts", options: [1] }), "INVALID_PARAMETER", "options")
      expectError(await call(server, { action: "list_sessions", status: "everything" }), "INVALID_PARAMETER", "status")
      expectError(await call(server, { action: "rollback", session_id: id, to_phase: "one" }), "INVALID_PARAMETER", "to_phase")
      expectError(await call(server, { action: "start", workflow_type: "rm -rf", target_file: "src/a.ts" }), "WORKFLOW_NOT_FOUND")
      const polluting = await call(server, {
        action: "start",
        workflow_type: "test_generation",
        target_file: "src/a.ts",
        options: JSON.parse("{\"__proto__\": {\"admin\": true}}")
      })
      expectError(polluting, "INVALID_PARAMETER")
      assert.include(polluting.body.error.message, "reserved key")
    })

    it("evidence over 10 MB is refused before parsing, and the server keeps serving", async () => {
      const id = await start()
      const r = await complete(id, 1, { public_api: ["x".repeat(11 * 1024 * 1024)] })
      expectError(r, "EVIDENCE_TOO_LARGE", "evidence")
      assert.include(r.body.error.message, "not parsed")
      const state = await call(server, { action: "get_state", session_id: id })
      assert.strictEqual(state.body.current_phase, 1)
      assert.strictEqual((await call(server, { action: "get_errors", session_id: id })).body.error_count, 0)
    })

    it("deeply nested evidence is refused, before parsing when very deep", async () => {
      const id = await start()
      let veryDeep: unknown = "x"
      for (let i = 0; i < 1000; i++) veryDeep = { a: veryDeep }
      const refused = await complete(id, 1, { public_api: veryDeep })
      expectError(refused, "EVIDENCE_TOO_DEEP", "evidence")
      assert.include(refused.body.error.message, "not parsed")
      let deep: unknown = "x"
      for (let i = 0; i < 34; i++) deep = [deep]
      expectError(await complete(id, 1, { public_api: deep }), "EVIDENCE_TOO_DEEP", "evidence")
      assert.strictEqual((await call(server, { action: "get_state", session_id: id })).body.current_phase, 1)
    })

    it("the server is still healthy after all the bad calls", async () => {
      const r = await call(server, { action: "list_workflows" })
      assert.isFalse(r.isError)
      assert.strictEqual(r.body.count, 2)
    })
  })
})

describe("MCP server: evidence limits", () => {
  it("a phase and a session hold at most their limit of evidence; the refusal names the limit, the total and what to do", async () => {
    const limitsWs = makeWorkspace()
    const limited = await spawnServer(limitsWs, { args: ["--max-phase-bytes", "100000", "--max-session-bytes", "300000"] })
    try {
      const started = await call(limited, { action: "start", workflow_type: "test_generation", target_file: "src/math.ts" })
      const id = started.body.session_id as string
      const submit = (ev: Record<string, unknown>) => call(limited, { action: "complete_phase", session_id: id, phase: 1, evidence: ev })
      const big = (n: number) => "x".repeat(n)
      const bytes = (u: unknown) => Buffer.byteLength(JSON.stringify(u))
      // a failed submission is kept as a draft...
      const first = await submit({ notes_a: big(60_000) })
      assert.isFalse(first.isError, JSON.stringify(first.body).slice(0, 300))
      // ...and fields merged over it may not take the phase past its limit
      const second = await submit({ notes_b: big(60_000) })
      expectError(second, "EVIDENCE_TOO_LARGE", "evidence")
      const draftBytes = bytes({ notes_a: big(60_000) })
      const mergedBytes = bytes({ notes_a: big(60_000), notes_b: big(60_000) })
      assert.include(second.body.error.message, "at most 100000 bytes")
      assert.include(second.body.error.message, `would hold ${mergedBytes} bytes`)
      assert.include(second.body.error.message, `holds ${draftBytes} bytes`)
      assert.include(second.body.error.fix, "reset_evidence")
      assert.deepStrictEqual(second.body.error.details, { limit: "phase", limit_bytes: 100000, current_bytes: draftBytes, submitted_bytes: mergedBytes })
      const draft = await call(limited, { action: "get_state", session_id: id })
      assert.deepStrictEqual(draft.body.draft.fields, ["notes_a"])
      assert.deepStrictEqual(draft.body.evidence_storage, { phase_bytes: draftBytes, phase_limit_bytes: 100000, session_recorded_bytes: draftBytes, session_limit_bytes: 300000 })
      // removing the draft makes room in the phase, not in the session's history
      assert.isFalse((await call(limited, { action: "retry_phase", session_id: id, phase: 1, reset_evidence: true })).isError)
      for (let i = 0; i < 3; i++) assert.isFalse((await submit({ notes_b: big(60_000) })).isError)
      const full = await submit({ notes_b: big(60_000) })
      expectError(full, "EVIDENCE_TOO_LARGE", "evidence")
      assert.include(full.body.error.message, "limit of 300000 bytes")
      assert.include(full.body.error.message, `has recorded ${4 * draftBytes} bytes`)
      assert.include(full.body.error.fix, "new session")
      // small evidence still fits, and the session goes on
      const ok = await submit(evidence[0] as Record<string, unknown>)
      assert.isTrue(ok.body.checkpoint_passed, JSON.stringify(ok.body).slice(0, 300))
    } finally {
      await closeServer(limited)
      limitsWs.cleanup()
    }
  })
})

describe("MCP server: durability", () => {
  it("a killed server loses nothing: a new one on the same db continues where the agent was", async () => {
    const space = makeWorkspace()
    let first: Server | undefined = await spawnServer(space)
    let second: Server | undefined
    try {
      const started = await call(first, { action: "start", workflow_type: "test_generation", target_file: "src/math.ts", options: { ci: true } })
      const id = started.body.session_id as string
      assert.isTrue((await call(first, { action: "complete_phase", session_id: id, phase: 1, evidence: evidence[0] })).body.checkpoint_passed)
      const partial = await call(first, { action: "complete_phase", session_id: id, phase: 2, evidence: { test_file: "src/math.test.ts" } })
      assert.isFalse(partial.body.checkpoint_passed)
      assert.isFalse((await call(first, { action: "pause", session_id: id, checkpoint_note: "planning" })).isError)
      const other = (await call(first, { action: "start", workflow_type: "spec_creation", target_file: "specs/x/requirements.md" })).body.session_id

      await killServer(first)
      first = undefined
      second = await spawnServer(space)

      const state = await call(second, { action: "get_state", session_id: id })
      assert.strictEqual(state.body.status, "paused")
      assert.strictEqual(state.body.current_phase, 2)
      assert.deepStrictEqual((await readArtifact(second, id, 1)).evidence, evidence[0])
      assert.deepStrictEqual((await readArtifact(second, id, 2)).evidence, { test_file: "src/math.test.ts" })
      assert.isTrue(state.body.resume_capable)
      const resumed = await call(second, { action: "resume", session_id: id })
      assert.strictEqual(resumed.body.checkpoint_note, "planning")
      const errors = await call(second, { action: "get_errors", session_id: id })
      assert.strictEqual(errors.body.error_count, 1)
      // the draft from before the crash is merged: the rest of the evidence completes phase 2
      const { test_file: _, ...rest } = evidence[1] as Record<string, unknown>
      assert.isTrue((await call(second, { action: "complete_phase", session_id: id, phase: 2, evidence: rest })).body.checkpoint_passed)
      for (const phase of [3, 4]) {
        assert.isTrue((await call(second, { action: "complete_phase", session_id: id, phase, evidence: evidence[phase - 1] })).body.checkpoint_passed)
      }
      const session = await call(second, { action: "get_session", session_id: id })
      assert.strictEqual(session.body.status, "completed")
      assert.deepStrictEqual(session.body.options, { ci: true })
      assert.deepStrictEqual(session.body.phase_history.map((h: any) => h.outcome), ["completed", "completed", "completed", "completed"])
      const otherState = await call(second, { action: "get_state", session_id: other })
      assert.deepStrictEqual([otherState.body.status, otherState.body.current_phase], ["active", 1])
    } finally {
      if (first !== undefined) await killServer(first)
      if (second !== undefined) await closeServer(second)
      space.cleanup()
    }
  })
})

describe("proctor mcp (the CLI command)", () => {
  it("passes --max-phase-bytes and --max-session-bytes to the server", async () => {
    const space = makeWorkspace()
    const viaCli = await spawnServer(space, {
      command: ["npx", "tsx", "src/bin/proctor.ts", "mcp"],
      args: ["--max-phase-bytes", "100000", "--max-session-bytes", "300000"]
    })
    try {
      const id = (await call(viaCli, { action: "start", workflow_type: "test_generation", target_file: "src/math.ts" })).body.session_id
      const state = await call(viaCli, { action: "get_state", session_id: id })
      assert.strictEqual(state.body.evidence_storage.phase_limit_bytes, 100000)
      assert.strictEqual(state.body.evidence_storage.session_limit_bytes, 300000)
    } finally {
      await closeServer(viaCli)
      space.cleanup()
    }
  })

  it("answers --help as the CLI does, though the server starts without the CLI", () => {
    const help = spawnSync("npx", ["tsx", "src/bin/proctor.ts", "mcp", "--help"], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, NODE_NO_WARNINGS: "1" } })
    assert.strictEqual(help.status, 0, help.stderr)
    assert.include(help.stdout, "--max-session-bytes")
  })

  it("refuses a limit that is not a positive number of bytes as bad usage (exit 2), naming the flag", async () => {
    const capture = Out.makeCapture()
    const code = await Effect.runPromise(
      runCli(["mcp", "--db", ":memory:", "--max-session-bytes", "0"]).pipe(Effect.provideService(Out.Output, capture.service), Effect.provide(NodeContext.layer))
    )
    assert.strictEqual(code, 2)
    assert.include(capture.stderr(), "--max-session-bytes takes a positive whole number of bytes")
  })

  it("says why the MCP server's modules could not be loaded, not only that they could not", () => {
    const error = new McpUnavailable({ cause: new Error("Cannot find package '@modelcontextprotocol/sdk'") })
    assert.include(error.message, "Cannot find package '@modelcontextprotocol/sdk'")
    assert.include(error.message, "npm ci")
  })
})
