/**
 * The MCP front end's parts, in process: the workflow loader, checkpoint compilation,
 * the procedure's in-transition phase guard, path safety, the guarded transport and the
 * server's side of the protocol.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { spawnSync } from "node:child_process"
import { PassThrough } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { Procedure, Runtime, Store, VersionConflict } from "proctor"
import * as Actions from "../src/mcp/actions.js"
import { serverArgv } from "../src/mcp/command.js"
import { compileCheckpoint } from "../src/mcp/definition.js"
import type { WorkflowToolError } from "../src/mcp/errors.js"
import { load, loadFolder } from "../src/mcp/loader.js"
import { loadWorkflows } from "../src/mcp/main.js"
import type { EvidenceLimits, SessionContext } from "../src/mcp/procedure.js"
import { compile, defaultLimits, phaseState } from "../src/mcp/procedure.js"
import * as Protocol from "../src/mcp/protocol.js"
import { checkTarget, depthExceeds, isSessionId, newSessionId, rawDepthExceeds } from "../src/mcp/safety.js"
import { refusal } from "../src/mcp/toolSpec.js"
import { GuardedStdioTransport } from "../src/mcp/transport.js"

const fixtures = path.resolve(import.meta.dirname, "fixtures/mcp-workflows")
const shipped = path.resolve(import.meta.dirname, "../workflows")

describe("workflow loader", () => {
  it.effect("loads the shipped workflows with their Markdown content", () =>
    Effect.gen(function*() {
      const loaded = yield* load(shipped)
      assert.deepStrictEqual(loaded.problems, [])
      assert.deepStrictEqual(loaded.workflows.map((w) => w.name).sort(), ["spec_creation", "test_generation"])
      const tg = loaded.workflows.find((w) => w.name === "test_generation")!
      assert.deepStrictEqual(tg.phases.map((p) => p.title), ["Analyse the code", "Plan the tests", "Write the tests", "Verify"])
      assert.isTrue(tg.phases[0]!.content.startsWith("# Phase 1: Analyse the code"))
      const spec = loaded.workflows.find((w) => w.name === "spec_creation")!
      assert.deepStrictEqual(spec.phases.map((p) => p.title), ["Requirements", "Design", "Tasks"])
      // every shipped workflow compiles to a valid procedure
      const compiled = yield* loadWorkflows(shipped)
      assert.deepStrictEqual(compiled.problems, [])
      assert.strictEqual(compiled.workflows.size, 2)
    }))

  it.effect("reports each bad folder with its path and problem, and loads the good ones", () =>
    Effect.gen(function*() {
      const loaded = yield* load(fixtures)
      assert.deepStrictEqual(loaded.workflows.map((w) => w.name), ["mini"])
      const byFolder = new Map(loaded.problems.map((p) => [path.basename(path.dirname(p.path)), p]))
      assert.deepStrictEqual([...byFolder.keys()].sort(), ["bad_json", "bad_regex", "bad_schema", "escape_md", "mini_copy", "missing_md"])
      for (const p of loaded.problems) assert.isTrue(p.path.endsWith("workflow.json"), p.path)
      assert.match(byFolder.get("bad_json")!.problem, /not valid JSON/)
      assert.match(byFolder.get("bad_schema")!.problem, /version/)
      assert.match(byFolder.get("bad_schema")!.problem, /phases/)
      assert.match(byFolder.get("bad_regex")!.problem, /phases\.0\.checkpoint\.evidence\.label: pattern is not a valid regular expression/)
      assert.match(byFolder.get("missing_md")!.problem, /docs\/nope\.md" does not exist/)
      assert.match(byFolder.get("escape_md")!.problem, /inside the workflow folder/)
      assert.match(byFolder.get("mini_copy")!.problem, /already used/)
    }))

  it.effect("reports a missing workflows directory", () =>
    Effect.gen(function*() {
      const loaded = yield* load(path.join(fixtures, "does-not-exist"))
      assert.strictEqual(loaded.workflows.length, 0)
      assert.match(loaded.problems[0]!.problem, /does not exist/)
    }))

  it("rejects constraints that do not fit the field type", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-wf-"))
    try {
      const def = JSON.parse(fs.readFileSync(path.join(fixtures, "mini/workflow.json"), "utf8"))
      def.phases[0].content = "inline"
      def.phases[0].checkpoint.evidence.count = { type: "boolean", min: 1 }
      def.phases[0].checkpoint.evidence.label = { type: "string", minLength: 5, maxLength: 2 }
      fs.writeFileSync(path.join(dir, "workflow.json"), JSON.stringify(def))
      const loaded = loadFolder(dir)
      assert.isTrue(Either.isLeft(loaded))
      const problem = Either.isLeft(loaded) ? loaded.left.problem : ""
      assert.match(problem, /evidence\.count: "min" applies to number fields, not boolean/)
      assert.match(problem, /evidence\.label: minLength \(5\) is greater than maxLength \(2\)/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("checkpoints", () => {
  const checkpoint = compileCheckpoint({
    evidence: {
      count: { type: "number", integer: true, min: 1, max: 10 },
      label: { type: "string", pattern: "^[a-z]+$", minLength: 2 },
      kind: { type: "string", enum: ["a", "b"], required: false },
      flags: { type: "array", minLength: 1, items: { type: "boolean" } },
      meta: { type: "object", properties: { owner: { type: "string" } } }
    }
  })

  it("passes evidence that meets every constraint, extra fields allowed", () => {
    assert.deepStrictEqual(
      checkpoint.check({ count: 3, label: "abc", flags: [true], meta: { owner: "ann" }, extra: 1 }),
      { passed: true }
    )
  })

  it("names missing and invalid fields", () => {
    const r = checkpoint.check({ count: 11, label: "A", kind: "c", flags: [], meta: {} })
    assert.isFalse(r.passed)
    if (r.passed) return
    assert.deepStrictEqual(r.missing, ["meta.owner"])
    assert.deepStrictEqual(r.invalid.map((i) => i.field).sort(), ["count", "flags", "kind", "label"])
    assert.match(r.invalid.find((i) => i.field === "label")!.problem, /at least 2/)
    assert.match(r.invalid.find((i) => i.field === "kind")!.problem, /must be one of "a", "b"/)
  })

  it("lists every required field when the evidence is not an object", () => {
    const r = checkpoint.check([1, 2])
    assert.isFalse(r.passed)
    if (!r.passed) assert.deepStrictEqual(r.missing, ["count", "label", "flags", "meta"])
  })

  it("names at most 20 invalid fields, so a huge array of bad items does not make a huge error record", () => {
    const list = compileCheckpoint({ evidence: { items: { type: "array", items: { type: "object", properties: { id: { type: "string" } } } } } })
    const r = list.check({ items: Array.from({ length: 5000 }, () => ({ id: 1 })) })
    assert.isFalse(r.passed)
    if (r.passed) return
    assert.strictEqual(r.invalid.length, 21)
    assert.deepStrictEqual(r.invalid[20], { field: "…", problem: "and 4980 more invalid fields" })
    const missing = list.check({ items: Array.from({ length: 5000 }, () => ({})) })
    if (!missing.passed) assert.deepStrictEqual([missing.missing.length, missing.missing[20]], [21, "… and 4980 more missing fields"])
  })

  it("truncates problems so a huge value is not echoed back", () => {
    const r = checkpoint.check({ count: 1, label: "x".repeat(100_000) + "A", flags: [true], meta: { owner: "a" } })
    assert.isFalse(r.passed)
    if (!r.passed) for (const i of r.invalid) assert.isAtMost(i.problem.length, 301)
  })
})

describe("phase guard inside the transition", () => {
  it.effect("applies one of two completions of the same phase; the guard refuses the other (GuardRefused)", () =>
    Effect.gen(function*() {
      const loaded = yield* load(fixtures)
      const mini = loaded.workflows.find((w) => w.name === "mini")!
      const procedure = compile(mini)
      assert.isTrue(Either.isRight(Procedure.validate(procedure)))
      const layer = Runtime.layer({ procedures: [procedure] }).pipe(Layer.provide(Store.layerMemory))
      yield* Effect.gen(function*() {
        const id = newSessionId()
        yield* Runtime.start(procedure, { workflow_type: "mini", target_file: "a.ts", options: {} }, { id })
        const evidence = { count: 2, label: "ab" }
        yield* Runtime.send(id, { _tag: "CompletePhase", phase: 1, evidence, request_id: "first", at: 1 })
        yield* Runtime.send(id, { _tag: "CompletePhase", phase: 1, evidence, request_id: "second", at: 2 })
        let errors = yield* Runtime.errors(id)
        for (let i = 0; i < 1000 && errors.length === 0; i++) {
          yield* Effect.yieldNow()
          errors = yield* Runtime.errors(id)
        }
        const s = yield* Runtime.get(id)
        assert.strictEqual(s.state, phaseState(2))
        assert.strictEqual((s.context as { last_request: string }).last_request, "first")
        assert.strictEqual(errors.length, 1)
        assert.strictEqual(errors[0]!.tag, "GuardRefused")
        assert.include(errors[0]!.message, "completesThisPhase")
        const history = yield* Runtime.history(id)
        assert.deepStrictEqual(history.map((t) => t.to), [phaseState(1), phaseState(2)])
      }).pipe(Effect.provide(layer))
    }))

  it.effect("discards a completion whose evidence fails the checkpoint even if sent directly", () =>
    Effect.gen(function*() {
      const loaded = yield* load(fixtures)
      const procedure = compile(loaded.workflows.find((w) => w.name === "mini")!)
      const layer = Runtime.layer({ procedures: [procedure] }).pipe(Layer.provide(Store.layerMemory))
      yield* Effect.gen(function*() {
        const id = newSessionId()
        yield* Runtime.start(procedure, { workflow_type: "mini", target_file: "a.ts", options: {} }, { id })
        yield* Runtime.send(id, { _tag: "CompletePhase", phase: 1, evidence: { count: 0 }, request_id: "bad", at: 1 })
        let errors = yield* Runtime.errors(id)
        for (let i = 0; i < 1000 && errors.length === 0; i++) {
          yield* Effect.yieldNow()
          errors = yield* Runtime.errors(id)
        }
        assert.strictEqual(errors[0]!.tag, "GuardRefused")
        assert.include(errors[0]!.message, "completesThisPhase")
        assert.strictEqual((yield* Runtime.get(id)).state, phaseState(1))
      }).pipe(Effect.provide(layer))
    }))
})

describe("evidence limits inside the transition", () => {
  /** sends an event and waits (without a clock) until it was applied or discarded */
  const sendAndSettle = (id: string, event: unknown) =>
    Effect.gen(function*() {
      const before = (yield* Runtime.errors(id)).length
      const request = (event as { request_id: string }).request_id
      yield* Runtime.send(id, event)
      for (let i = 0; i < 10_000; i++) {
        const s = yield* Runtime.get(id)
        if ((s.context as { last_request?: string }).last_request === request) return "applied" as const
        const errors = yield* Runtime.errors(id)
        if (errors.length > before) return errors[errors.length - 1]!.tag
        yield* Effect.yieldNow()
      }
      return "stuck" as const
    })
  /** runs `body` with a new session of the mini workflow compiled with `limits` */
  const withSession = <A, E>(limits: EvidenceLimits, body: (id: string) => Effect.Effect<A, E, Runtime.Runtime>) =>
    Effect.gen(function*() {
      const loaded = yield* load(fixtures)
      const procedure = compile(loaded.workflows.find((w) => w.name === "mini")!, limits)
      const id = newSessionId()
      return yield* Effect.zipRight(
        Runtime.start(procedure, { workflow_type: "mini", target_file: "a.ts", options: {} }, { id }),
        body(id)
      ).pipe(Effect.provide(Runtime.layer({ procedures: [procedure] }).pipe(Layer.provide(Store.layerMemory))))
    })
  const failed = (field: string, bytes: number, request_id: string) => ({
    _tag: "CheckpointFailed",
    phase: 1,
    draft: { [field]: "x".repeat(bytes) },
    error: { phase: 1, timestamp: 0, error_type: "checkpoint_failed", message: "failed" },
    request_id,
    at: 0
  })

  it.effect("fields merged from failed submissions cannot grow a phase past its limit; only the fields sent go into the history", () =>
    withSession({ phaseBytes: 2500, sessionBytes: 100_000 }, (id) =>
      Effect.gen(function*() {
        assert.strictEqual(yield* sendAndSettle(id, failed("a", 1000, "r1")), "applied")
        assert.strictEqual(yield* sendAndSettle(id, failed("b", 1000, "r2")), "applied")
        // a third field would take the merged draft past 2500 bytes
        assert.strictEqual(yield* sendAndSettle(id, failed("c", 1000, "r3")), "GuardRefused")
        const s = yield* Runtime.get(id)
        const draft = (s.context as SessionContext).drafts[0]!.evidence as Record<string, string>
        assert.deepStrictEqual(Object.keys(draft).sort(), ["a", "b"])
        // replacing a field keeps the phase under its limit
        assert.strictEqual(yield* sendAndSettle(id, failed("a", 1200, "r4")), "applied")
        const history = yield* Runtime.history(id)
        for (const t of history.filter((t) => t.cause === "event:CheckpointFailed")) {
          assert.strictEqual(Object.keys((t.event as { draft: object }).draft).length, 1, "the history keeps the submission, not the merged draft")
        }
        const errors = yield* Runtime.errors(id)
        assert.include(errors[0]!.message, "forThisPhaseWithinLimits")
      })))

  it.effect("a session records at most its limit of evidence over its life, passed or failed", () =>
    withSession({ phaseBytes: 2500, sessionBytes: 5000 }, (id) =>
      Effect.gen(function*() {
        // the same field again and again: the draft stays small, the history grows
        for (let i = 0; i < 4; i++) assert.strictEqual(yield* sendAndSettle(id, failed("a", 1000, `r${i}`)), "applied")
        assert.strictEqual(yield* sendAndSettle(id, failed("a", 1000, "r5")), "GuardRefused")
        const complete = { _tag: "CompletePhase", phase: 1, evidence: { count: 2, label: "ab" }, request_id: "done", at: 0 }
        assert.strictEqual(yield* sendAndSettle(id, complete), "applied")
        const s = yield* Runtime.get(id)
        assert.strictEqual(s.state, phaseState(2))
        assert.isAtMost((s.context as SessionContext).evidence_bytes!, 5000)
        // the artifact is the draft with the passing submission merged over it
        assert.deepStrictEqual(Object.keys((s.context as SessionContext).artifacts[0]!.evidence as object).sort(), ["a", "count", "label"])
      })))
})

describe("path safety", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-root-"))
  const root = path.join(dir, "root")
  fs.mkdirSync(path.join(root, "src"), { recursive: true })
  fs.writeFileSync(path.join(root, "src", "a.ts"), "")
  fs.writeFileSync(path.join(dir, "secret.txt"), "secret")
  fs.symlinkSync(path.join(dir, "secret.txt"), path.join(root, "link-out"))
  fs.symlinkSync(dir, path.join(root, "dir-out"))
  fs.symlinkSync(path.join(root, "src", "a.ts"), path.join(root, "link-in"))
  fs.symlinkSync(path.join(dir, "missing"), path.join(root, "dangling"))

  const refused = (target: string) => {
    const r = checkTarget(root, target)
    assert.isFalse("ok" in r, `${JSON.stringify(target)} should be refused`)
    return "reason" in r ? r.reason : ""
  }

  it("accepts relative paths inside the root, existing or not", () => {
    assert.deepStrictEqual(checkTarget(root, "src/a.ts"), { ok: "src/a.ts" })
    assert.deepStrictEqual(checkTarget(root, "./src/new/b.ts"), { ok: "src/new/b.ts" })
    assert.deepStrictEqual(checkTarget(root, "link-in"), { ok: "link-in" })
  })

  it("refuses traversal, absolute, encoded, NUL and symlinks out", () => {
    assert.match(refused("../secret.txt"), /\.\./)
    assert.match(refused("src/../../secret.txt"), /\.\./)
    assert.match(refused("/etc/passwd"), /absolute/)
    assert.match(refused("C:/Windows/win.ini"), /absolute/)
    assert.match(refused("~/x"), /absolute/)
    assert.match(refused("..\\secret.txt"), /backslash/)
    assert.match(refused("%2e%2e/secret.txt"), /URL-encoded/)
    assert.match(refused("%252e%252e/secret.txt"), /URL-encoded/)
    assert.match(refused("src/a.ts\0.png"), /NUL/)
    assert.match(refused("\uFF0E\uFF0E/secret.txt"), /\.\./)
    assert.match(refused("link-out"), /symlink/)
    assert.match(refused("dir-out/secret.txt"), /symlink/)
    assert.match(refused("dangling"), /dangling/)
    assert.match(refused(""), /empty/)
    assert.match(refused("."), /root itself/)
  })

  it("refuses control characters in target_file, naming the character", () => {
    for (const c of ["\n", "\r", "\t", "\u0001", "\u001b", "\u007f", "\u0085", "\u009f"]) {
      const code = `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`
      assert.include(refused(`src/a${c}b.ts`), code, JSON.stringify(c))
      assert.match(refused(`src/a${c}b.ts`), /control character/)
    }
  })

  it("accepts a colon in a relative POSIX name, refuses Windows drive paths", () => {
    assert.deepStrictEqual(checkTarget(root, "a:b.ts"), { ok: "a:b.ts" })
    assert.deepStrictEqual(checkTarget(root, "src/c:d.ts"), { ok: "src/c:d.ts" })
    assert.match(refused("C:/Windows/win.ini"), /absolute/)
    assert.match(refused("c:"), /absolute/)
    assert.match(refused("C:\\Windows\\win.ini"), /backslash|absolute/)
    assert.match(refused("/a:b.ts"), /absolute/)
    assert.match(refused("a:b/../../x.ts"), /\.\./)
  })

  it("checks session ids and JSON depth", () => {
    assert.isTrue(isSessionId(newSessionId()))
    assert.isFalse(isSessionId("ses_123"))
    assert.isFalse(isSessionId("ses_" + "A".repeat(36)))
    assert.isFalse(isSessionId("../ses_3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b"))
    let deep: unknown = 1
    for (let i = 0; i < 40; i++) deep = [deep]
    assert.isTrue(depthExceeds(deep, 32))
    assert.isFalse(depthExceeds({ a: [{ b: 1 }] }, 3))
    assert.isTrue(depthExceeds({ a: [{ b: 1 }] }, 2))
    assert.isTrue(rawDepthExceeds(Buffer.from("[".repeat(50) + "]".repeat(50)), 40))
    assert.isFalse(rawDepthExceeds(Buffer.from(JSON.stringify({ s: "[".repeat(50) })), 40))
    assert.isFalse(rawDepthExceeds(Buffer.from(JSON.stringify({ s: "\\\"[[[[" })), 2))
  })
})

describe("guarded transport", () => {
  const setup = () => {
    const stdin = new PassThrough()
    const stdout = new PassThrough()
    const transport = new GuardedStdioTransport(stdin, stdout, { maxLineBytes: 1000, maxDepth: 10, refusal })
    const received: Array<unknown> = []
    transport.onmessage = (m) => void received.push(m)
    const written: Array<any> = []
    stdout.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n")) if (line !== "") written.push(JSON.parse(line))
    })
    return { stdin, transport, received, written }
  }

  it.effect("delivers messages split across chunks and answers refused ones by id", () =>
    Effect.gen(function*() {
      const { stdin, transport, received, written } = setup()
      yield* Effect.promise(() => transport.start())
      const msg = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      stdin.write(msg.slice(0, 10))
      stdin.write(msg.slice(10) + "\n")
      // too large, id at the end (as the SDK client writes it)
      stdin.write(JSON.stringify({ method: "tools/call", params: { arguments: { evidence: "x".repeat(5000) } }, jsonrpc: "2.0", id: 7 }) + "\n")
      // too deep
      stdin.write(JSON.stringify({ method: "tools/call", params: { arguments: { evidence: JSON.parse("[".repeat(20) + "]".repeat(20)) } }, jsonrpc: "2.0", id: "deep" }) + "\n")
      // not JSON
      stdin.write("{oops\n")
      yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
      assert.deepStrictEqual(received, [{ jsonrpc: "2.0", id: 1, method: "tools/list" }])
      const byId = new Map(written.map((w) => [w.id, w]))
      assert.isTrue(byId.get(7).result.isError)
      assert.include(byId.get(7).result.content[0].text, "EVIDENCE_TOO_LARGE")
      assert.isTrue(byId.get("deep").result.isError)
      assert.include(byId.get("deep").result.content[0].text, "EVIDENCE_TOO_DEEP")
      assert.strictEqual(byId.get(null).error.code, -32700)
      yield* Effect.promise(() => transport.close())
    }))
})

describe("protocol", () => {
  /** a server of one echo tool on an in-memory transport; `ask` sends a request and returns its answer */
  const setup = () => {
    const sent: Array<any> = []
    const transport: Protocol.Transport = {
      start: () => Promise.resolve(),
      send: (m) => {
        sent.push(m)
        return Promise.resolve()
      }
    }
    const calls: Array<unknown> = []
    const served = Protocol.serve(transport, {
      name: "test",
      version: "1.0.0",
      tools: [{ name: "echo" }],
      call: (name, args) => {
        calls.push([name, args])
        return name === "broken" ? Promise.reject(new Error("boom")) : Promise.resolve({ content: [{ type: "text", text: JSON.stringify(args) }] })
      }
    })
    const ask = (message: Protocol.Message) =>
      Effect.promise(async () => {
        const before = sent.length
        transport.onmessage!(message)
        await new Promise((r) => setImmediate(r))
        return sent.slice(before)
      })
    return { served, ask, calls }
  }

  it.effect("answers initialize with the version the client asked for when it speaks it, else its newest", () =>
    Effect.gen(function*() {
      const { ask } = setup()
      const [known] = yield* ask({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-03-26" } })
      assert.deepStrictEqual(known.result, { protocolVersion: "2025-03-26", capabilities: { tools: {} }, serverInfo: { name: "test", version: "1.0.0" } })
      const [unknown] = yield* ask({ jsonrpc: "2.0", id: 2, method: "initialize", params: { protocolVersion: "1999-01-01" } })
      assert.strictEqual(unknown.result.protocolVersion, Protocol.PROTOCOL_VERSIONS[0])
    }))

  it.effect("answers ping, tools/list and tools/call; refuses other methods and bad calls by JSON-RPC error; ignores notifications", () =>
    Effect.gen(function*() {
      const { ask, calls } = setup()
      assert.deepStrictEqual(yield* ask({ jsonrpc: "2.0", id: "p", method: "ping" }), [{ jsonrpc: "2.0", id: "p", result: {} }])
      assert.deepStrictEqual((yield* ask({ jsonrpc: "2.0", id: 3, method: "tools/list" }))[0].result, { tools: [{ name: "echo" }] })
      const [called] = yield* ask({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "echo", arguments: { a: 1 } } })
      assert.deepStrictEqual(called.result, { content: [{ type: "text", text: "{\"a\":1}" }] })
      assert.strictEqual((yield* ask({ jsonrpc: "2.0", id: 5, method: "resources/list" }))[0].error.code, Protocol.ErrorCode.MethodNotFound)
      const [bad] = yield* ask({ jsonrpc: "2.0", id: 6, method: "tools/call", params: { arguments: [] } })
      assert.strictEqual(bad.error.code, Protocol.ErrorCode.InvalidParams)
      assert.strictEqual((yield* ask({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "broken" } }))[0].error.code, Protocol.ErrorCode.InternalError)
      assert.deepStrictEqual(yield* ask({ jsonrpc: "2.0", method: "notifications/initialized" }), [])
      assert.deepStrictEqual(calls, [["echo", { a: 1 }], ["broken", undefined]])
    }))

  it("tells JSON-RPC 2.0 messages from other JSON", () => {
    assert.isDefined(Protocol.toMessage({ jsonrpc: "2.0", id: 1, method: "x", params: {} }))
    assert.isDefined(Protocol.toMessage({ jsonrpc: "2.0", method: "x" }))
    assert.isDefined(Protocol.toMessage({ jsonrpc: "2.0", id: 1, result: null }))
    assert.isDefined(Protocol.toMessage({ jsonrpc: "2.0", id: null, error: { code: 1, message: "m" } }))
    for (const bad of [null, [], "x", { id: 1, method: "x" }, { jsonrpc: "1.0", id: 1, method: "x" }, { jsonrpc: "2.0", id: {}, method: "x" }, { jsonrpc: "2.0", method: "x", params: [1] }, { jsonrpc: "2.0", id: 1 }]) {
      assert.isUndefined(Protocol.toMessage(bad), JSON.stringify(bad))
    }
  })
})

describe("proctor mcp's own start", () => {
  it("serves plain options itself and leaves help and anything malformed to the full CLI", () => {
    const env = {}
    const plain = ["--db", "a.db", "--workflows", "w", "--root", ".", "--max-phase-bytes", "100", "--max-session-bytes", "200"]
    assert.deepStrictEqual(serverArgv(plain, env), plain)
    assert.deepStrictEqual(serverArgv([], env), [])
    for (
      const args of [
        ["--help"],
        ["-h"],
        ["--db"],
        ["--db", "--root", "."],
        ["--db=a.db"],
        ["--db", "a.db", "--db", "b.db"],
        ["--port", "1"],
        ["--max-phase-bytes", "0"],
        ["--max-phase-bytes", "-1"],
        ["--max-session-bytes", "1e6"],
        ["--max-session-bytes", "99999999999999999999"]
      ]
    ) assert.isUndefined(serverArgv(args, env), JSON.stringify(args))
  })

  it("takes PROCTOR_DB as the database when --db is not given", () => {
    assert.deepStrictEqual(serverArgv(["--root", "."], { PROCTOR_DB: "env.db" }), ["--root", ".", "--db", "env.db"])
    assert.deepStrictEqual(serverArgv(["--db", "flag.db"], { PROCTOR_DB: "env.db" }), ["--db", "flag.db"])
    assert.deepStrictEqual(serverArgv([], { PROCTOR_DB: "" }), [])
  })

  it("this Node's V8 knows --semi-space-growth-factor, and with it the young generation stays small", () => {
    // V8 prints an unknown flag's error on stdout, which is the protocol's: if this fails, take the Node version out of smallYoungGeneration
    const script = `require("v8").setFlagsFromString("--semi-space-growth-factor=1");
      let keep = []; for (let i = 0; i < 3e6; i++) { keep.push({ i }); if (keep.length > 100000) keep = [] }
      const s = require("v8").getHeapSpaceStatistics().find((x) => x.space_name === "new_space");
      process.stdout.write(JSON.stringify({ mb: s.physical_space_size / 1048576 }))`
    const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" })
    assert.strictEqual(child.status, 0, child.stderr)
    const { mb } = JSON.parse(child.stdout) as { mb: number }
    assert.isAtMost(mb, 4)
  })
})

describe("the actions in process: one commit per change, optimistic concurrency instead of locks", () => {
  type Handlers = Effect.Effect.Success<ReturnType<typeof Actions.make>>
  /** the action handlers over a memory store; `wrap` may replace runtime operations */
  const withActions = <A, E>(
    body: (actions: Handlers) => Effect.Effect<A, E, Runtime.Runtime>,
    wrap: (runtime: Runtime.RuntimeService) => Runtime.RuntimeService = (r) => r
  ) =>
    Effect.gen(function*() {
      const { problems, workflows } = yield* loadWorkflows(fixtures)
      const base = Runtime.layer({ procedures: [...workflows.values()].map((e) => e.procedure) }).pipe(Layer.provide(Store.layerMemory))
      const layer = Layer.effect(Runtime.Runtime, Effect.map(Runtime.Runtime, wrap)).pipe(Layer.provide(base))
      return yield* Effect.flatMap(
        Actions.make({ workflows, problems, workspaceRoot: fixtures, limits: defaultLimits }),
        body
      ).pipe(Effect.provide(layer))
    })
  /** an action's reply, or its error */
  const call = (actions: Handlers, action: keyof Handlers, args: Record<string, unknown>) =>
    Effect.either(actions[action](args)) as Effect.Effect<Either.Either<any, WorkflowToolError>>
  const started = (actions: Handlers) =>
    Effect.map(actions.start({ workflow_type: "mini", target_file: "mini/workflow.json" }), (r) => (r as { session_id: string }).session_id)

  it.effect("delete_session is one commit: the history's cancel row, with the reason, which get_session and a second delete read", () =>
    withActions((actions) =>
      Effect.gen(function*() {
        const id = yield* started(actions)
        const deleted = yield* call(actions, "delete_session", { session_id: id, reason: "test over" })
        assert.deepInclude(Either.getOrThrow(deleted), { deleted: true, already_deleted: false, reason: "test over" })
        const history = yield* Runtime.history(id)
        assert.deepStrictEqual(history.map((t) => t.cause), ["start", "cancel"])
        assert.strictEqual(history[1]!.reason, "test over")
        const record = Either.getOrThrow(yield* call(actions, "get_session", { session_id: id }))
        assert.strictEqual(record.status, "deleted")
        assert.deepStrictEqual(record.deleted, { at: new Date(history[1]!.at).toISOString(), reason: "test over" })
        const again = Either.getOrThrow(yield* call(actions, "delete_session", { session_id: id }))
        assert.deepInclude(again, { already_deleted: true, reason: "test over" })
        // a paused session is cancelled as it is: no resume first
        const paused = yield* started(actions)
        yield* call(actions, "pause", { session_id: paused })
        yield* call(actions, "delete_session", { session_id: paused })
        assert.deepStrictEqual((yield* Runtime.history(paused)).map((t) => t.cause), ["start", "pause", "cancel"])
      })))

  it.effect("a session deleted the old way (MarkDeleted, then cancel) still shows its reason", () =>
    withActions((actions) =>
      Effect.gen(function*() {
        const id = yield* started(actions)
        yield* Runtime.sendAndWait(id, { _tag: "MarkDeleted", reason: "old way", request_id: "r", at: 5 })
        yield* Runtime.cancel(id)
        const record = Either.getOrThrow(yield* call(actions, "get_session", { session_id: id }))
        assert.strictEqual(record.deleted.reason, "old way")
        assert.strictEqual(Either.getOrThrow(yield* call(actions, "delete_session", { session_id: id })).reason, "old way")
      })))

  it.effect("concurrent completions of one phase: one applies, the others read the session again and answer CONFLICT", () =>
    withActions((actions) =>
      Effect.gen(function*() {
        const id = yield* started(actions)
        const evidence = { count: 2, label: "ab" }
        const results = yield* Effect.all(
          Array.from({ length: 3 }, () => call(actions, "complete_phase", { session_id: id, phase: 1, evidence })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter(Either.isRight).length, 1)
        for (const lost of results.filter(Either.isLeft)) {
          assert.strictEqual(lost.left.code, "CONFLICT")
          assert.include(lost.left.problem, "already completed")
        }
        const history = yield* Runtime.history(id)
        assert.deepStrictEqual(history.map((t) => t.cause), ["start", "event:CompletePhase"])
        // an overtaken request is refused when sent, or discarded from the inbox into the
        // error log (whichever the scheduling gives), before any guard runs
        const logged = yield* Runtime.errors(id)
        assert.isAtMost(logged.length, 2)
        for (const e of logged) assert.strictEqual(e.tag, "VersionConflict")
        const errors = Either.getOrThrow(yield* call(actions, "get_errors", { session_id: id }))
        assert.deepStrictEqual(errors.errors.map((e: { error_type: string }) => e.error_type), logged.map(() => "conflict"))
      })))

  it.effect("a session that keeps changing under a call: it tries a bounded number of times, then says to call again", () => {
    let sends = 0
    return withActions(
      (actions) =>
        Effect.gen(function*() {
          const id = yield* started(actions)
          const result = yield* call(actions, "complete_phase", { session_id: id, phase: 1, evidence: { count: 2, label: "ab" } })
          assert.isTrue(Either.isLeft(result))
          if (Either.isRight(result)) return
          assert.strictEqual(result.left.code, "CONFLICT")
          assert.include(result.left.problem, "changed nothing")
          assert.include(result.left.fix, "make the call again")
          assert.strictEqual(sends, 3)
          assert.strictEqual((yield* Runtime.get(id)).state, phaseState(1))
        }),
      (runtime) => ({
        ...runtime,
        sendAndWait: (id, _event, options) =>
          Effect.flatMap(runtime.get(id), (s) => {
            sends++
            return Effect.fail(
              new VersionConflict({ executionId: id, expected: options?.expectVersion ?? -1, actual: s.seq + 1, state: s.state, status: s.status })
            )
          })
      })
    )
  })
})
