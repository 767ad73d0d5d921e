/**
 * The `proctor` CLI, run in this process (through `runCli`, with its output captured)
 * against a temporary SQLite database, and as a child process through the `bin` shim.
 * These tests run on the real clock: the CLI follows executions by polling them. The
 * tests themselves never sleep; every wait is for an event (a line of output, an exit).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Execution, Runtime, SqlStore, Store } from "proctor"
import { Status } from "../src/Execution.js"
import { helpTexts, runCli, statusNames, version } from "../src/cli/commands.js"
import * as Modules from "../src/cli/modules.js"
import * as Op from "../src/cli/operator.js"
import * as Out from "../src/cli/output.js"
import * as Server from "../src/http/Server.js"
import { cliSandbox } from "./fixtures/cliSandbox.js"
import { Approval, Broken, Gated } from "./fixtures/ops.js"

const fixture = "test/fixtures/ops.ts"
let dir = ""
let db = ""
cliSandbox("proctor-cli-", (d) => {
  dir = d
  db = path.join(d, "proctor.db")
})

/** runs the CLI in this process; returns its exit code and what it printed */
const cli = (...argv: ReadonlyArray<string>) => cliWith({}, ...argv)

const cliWith = (options: Parameters<typeof Out.makeCapture>[0], ...argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const capture = Out.makeCapture(options)
    const code = yield* runCli(argv).pipe(
      Effect.provideService(Out.Output, capture.service),
      Effect.provide(NodeContext.layer)
    )
    return { code, out: capture.stdout(), err: capture.stderr() }
  })

const local = () => ["--db", db, "--no-examples", "--module", fixture]

const startApproval = (doc: string, on: string = db) =>
  Effect.gen(function*() {
    const r = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", JSON.stringify({ doc }), "--json", "--db", on, "--no-examples")
    assert.strictEqual(r.code, 0, r.err)
    const [s] = JSON.parse(r.out) as Array<{ id: string; status: string; state: string }>
    assert.strictEqual(s!.status, "waiting")
    return s!.id
  })

describe("proctor CLI", () => {
  it.live("run starts a module's procedure, follows it until it waits, and says what it waits for", () =>
    Effect.gen(function*() {
      const r = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"q3.pdf"}`, "--db", db, "--no-examples")
      assert.strictEqual(r.code, 0, r.err)
      assert.include(r.out, "Started 1 execution on the database")
      assert.match(r.out, /review\s+waiting/)
      assert.match(r.out, /waits in "review" for Approve or Reject: proctor send \S+ Approve/)
      const json = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"b"}`, "--count", "2", "--json", "--db", db, "--no-examples")
      const started = JSON.parse(json.out) as Array<{ status: string; context: unknown }>
      assert.deepStrictEqual(started.map((s) => s.status), ["waiting", "waiting"])
      assert.deepStrictEqual(started[0]!.context, { doc: "b" })
    }))

  it.live("run --tenant starts the executions for a tenant, and list --tenant finds them", () =>
    Effect.gen(function*() {
      const r = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"t"}`, "--tenant", "acme", "--json", "--db", db, "--no-examples")
      assert.strictEqual(r.code, 0, r.err)
      const [s] = JSON.parse(r.out) as Array<{ id: string; tenant?: string }>
      assert.strictEqual(s!.tenant, "acme")
      const listed = JSON.parse((yield* cli("list", "--tenant", "acme", "--json", ...local())).out) as Array<{ id: string }>
      assert.deepStrictEqual(listed.map((e) => e.id), [s!.id])
    }))

  it.live("list filters executions, as a table or JSON", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("listed")
      const table = yield* cli("list", "--status", "waiting", ...local())
      assert.strictEqual(table.code, 0, table.err)
      assert.match(table.out, /^ID\s+PROCEDURE\s+STATE\s+STATUS/)
      assert.include(table.out, id)
      const json = yield* cli("list", "--status", "waiting,paused", "--procedure", "ops-approval", "--json", ...local())
      const rows = JSON.parse(json.out) as Array<{ id: string; status: string }>
      assert.isTrue(rows.some((s) => s.id === id))
      assert.isTrue(rows.every((s) => s.status === "waiting"))
      const none = yield* cli("list", "--status", "rolled_back", "--json", ...local())
      assert.deepStrictEqual(JSON.parse(none.out), [])
      const limited = yield* cli("list", "--limit", "1", "--json", ...local())
      assert.strictEqual(JSON.parse(limited.out).length, 1)
    }))

  it.live("show prints the snapshot, history and errors", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("shown")
      const text = yield* cli("show", id, ...local())
      assert.strictEqual(text.code, 0, text.err)
      assert.match(text.out, /state\s+review/)
      assert.match(text.out, /accepts\s+Approve, Reject/)
      assert.match(text.out, /submit → review\s+waiting\s+step/)
      assert.include(text.out, `"doc": "shown"`)
      assert.include(text.out, `proctor send ${id} Approve`)
      // the commands offered are the runtime's own (Execution.allowedOperations), not a table of the CLI's
      const allowed = Execution.allowedOperations({ status: "waiting", state: "review" }, Approval)
      assert.isAbove(allowed.commands.length, 0)
      for (const c of allowed.commands) assert.include(text.out, c === "skip" ? `proctor skip ${id} <state>` : `proctor ${c} ${id}`)
      assert.notInclude(text.out, `proctor resume ${id}`)
      const json = yield* cli("show", id, "--json", ...local())
      const shown = JSON.parse(json.out)
      assert.strictEqual(shown.snapshot.id, id)
      assert.deepStrictEqual(shown.history.map((t: { to: string }) => t.to), ["submit", "review"])
      assert.deepStrictEqual(shown.errors, [])
    }))

  it.live("show names an execution's parent and lists its children", () =>
    Effect.gen(function*() {
      const parent = yield* startApproval("contract")
      const child = yield* Runtime.start(Approval, { doc: "annex" }, { parentId: parent }).pipe(
        Effect.provide(Runtime.layer({ procedures: [Approval, Gated, Broken] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: db })))),
        Effect.scoped
      )
      const shown = yield* cli("show", parent, ...local())
      assert.match(shown.out, new RegExp(`children\\n\\s+${child}\\s+ops-approval@1\\s+review\\s+waiting`))
      assert.deepStrictEqual(JSON.parse((yield* cli("show", parent, "--json", ...local())).out).children, [child])
      const ofChild = yield* cli("show", child, ...local())
      assert.match(ofChild.out, new RegExp(`parent\\s+${parent} \\(proctor show ${parent}\\)`))
      assert.notInclude(ofChild.out, "children")
    }))

  it.live("show prints the reason a cancel was given (Runtime.cancel(id, { reason })) on the cancel row", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("withdrawn")
      yield* Runtime.cancel(id, { reason: "the document was withdrawn" }).pipe(
        Effect.provide(Runtime.layer({ procedures: [Approval, Gated, Broken] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: db })))),
        Effect.scoped
      )
      const text = yield* cli("show", id, ...local())
      assert.match(text.out, /review → review\s+cancelled\s+cancel: the document was withdrawn/)
      const shown = JSON.parse((yield* cli("show", id, "--json", ...local())).out)
      assert.strictEqual(shown.history.at(-1).reason, "the document was withdrawn")
    }))

  it.live("send delivers an event and follows the execution to its end; exit codes say what went wrong", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("to approve")
      const sent = yield* cli("send", id, "Approve", `{"by":"ann"}`, ...local())
      assert.strictEqual(sent.code, 0, sent.err)
      assert.include(sent.out, `Sent Approve to ${id}: now succeeded in state "approved"`)
      const shown = JSON.parse((yield* cli("show", id, "--json", ...local())).out)
      assert.deepStrictEqual(shown.snapshot.context, { doc: "to approve", approvedBy: "ann" })

      const late = yield* cli("send", id, "Reject", `{"reason":"late"}`, ...local())
      assert.strictEqual(late.code, 1)
      assert.include(late.err, "already ended")

      const other = yield* startApproval("bad events")
      const badJson = yield* cli("send", other, "Approve", `{by:"ann"}`, ...local())
      assert.strictEqual(badJson.code, 2)
      assert.include(badJson.err, `not valid JSON`)
      assert.include(badJson.err, `'{"by":"ann"}'`)
      const notAccepted = yield* cli("send", other, "Escalate", `{}`, ...local())
      assert.strictEqual(notAccepted.code, 2)
      assert.include(notAccepted.err, `waits in "review" for Approve or Reject, not Escalate`)
      const notObject = yield* cli("send", other, "Approve", `[1]`, ...local())
      assert.strictEqual(notObject.code, 2)
      const missing = yield* cli("send", other, "Approve", "{}", ...local())
      assert.strictEqual(missing.code, 2)
      assert.include(missing.err, `["by"]`)
      const unknown = yield* cli("send", "no-such-id", "Approve", `{"by":"x"}`, ...local())
      assert.strictEqual(unknown.code, 1)
      assert.include(unknown.err, `No execution with id "no-such-id"`)
      // nothing was written by the bad events
      const after = JSON.parse((yield* cli("show", other, "--json", ...local())).out)
      assert.strictEqual(after.snapshot.status, "waiting")
      assert.strictEqual(after.history.length, 2)
    }))

  it.live("pause, resume, cancel and rollback", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("operated")
      const paused = yield* cli("pause", id, ...local())
      assert.strictEqual(paused.code, 0, paused.err)
      assert.include(paused.out, `Paused ${id}: now paused in state "review"`)
      const again = yield* cli("pause", id, ...local())
      assert.strictEqual(again.code, 1)
      assert.include(again.err, "Cannot pause")
      const resumed = yield* cli("resume", id, "--json", ...local())
      assert.strictEqual(JSON.parse(resumed.out).status, "waiting")
      const cancelled = yield* cli("cancel", id, ...local())
      assert.include(cancelled.out, "now cancelled")
      const other = yield* startApproval("rolled")
      const rolled = yield* cli("rollback", other, "--json", ...local())
      assert.strictEqual(rolled.code, 0, rolled.err)
      assert.strictEqual(JSON.parse(rolled.out).status, "rolled_back")
    }))

  it.live("cancel --reason records why on the history's cancel row; an empty or too long one is refused with exit code 2", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("cancelled with a reason")
      const empty = yield* cli("cancel", id, "--reason", "", ...local())
      assert.strictEqual(empty.code, 2)
      assert.include(empty.err, "--reason must have 1 to 1000 characters (it has 0)")
      const long = yield* cli("cancel", id, "--reason", "x".repeat(1001), "--json", ...local())
      assert.strictEqual(long.code, 2)
      assert.deepInclude(JSON.parse(long.out).error, { tag: "UsageError", exitCode: 2 })
      assert.include(JSON.parse(long.out).error.message, "--reason must have 1 to 1000 characters (it has 1001)")
      const refused = JSON.parse((yield* cli("show", id, "--json", ...local())).out)
      assert.strictEqual(refused.snapshot.status, "waiting", "a refused --reason cancels nothing")
      const cancelled = yield* cli("cancel", id, "--reason", "the document was withdrawn", ...local())
      assert.strictEqual(cancelled.code, 0, cancelled.err)
      assert.include(cancelled.out, `Cancelled ${id}: now cancelled`)
      const shown = yield* cli("show", id, ...local())
      assert.match(shown.out, /review → review\s+cancelled\s+cancel: the document was withdrawn/)
      const json = JSON.parse((yield* cli("show", id, "--json", ...local())).out)
      assert.strictEqual(json.history.at(-1).reason, "the document was withdrawn")
    }))

  it.live("a step that needs a person: run exits 1, retry runs it again, skip moves on", () =>
    Effect.gen(function*() {
      const run = yield* cli("run", fixture, "--procedure", "ops-broken", "--json", "--db", db, "--no-examples")
      assert.strictEqual(run.code, 1)
      const [s] = JSON.parse(run.out)
      assert.strictEqual(s.status, "needs_intervention")
      assert.include(run.err, "did not succeed")
      const retried = yield* cli("retry", s.id, "--json", ...local())
      assert.strictEqual(retried.code, 0, retried.err)
      assert.strictEqual(JSON.parse(retried.out).status, "needs_intervention")
      const shown = JSON.parse((yield* cli("show", s.id, "--json", ...local())).out)
      assert.strictEqual(shown.errors.length, 2)
      assert.include(shown.errors[0].message, "the check always fails")
      const skipped = yield* cli("skip", s.id, "manual", ...local())
      assert.strictEqual(skipped.code, 0, skipped.err)
      assert.include(skipped.out, `now succeeded in state "manual"`)
    }))

  it.live("skip to a name from Object.prototype exits non-zero and moves nothing", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("own names")
      for (const name of ["constructor", "__proto__", "hasOwnProperty", "toString"]) {
        const r = yield* cli("skip", id, name, ...local())
        assert.notStrictEqual(r.code, 0, `${name}: ${r.out}`)
        assert.include(r.err, "There is no such state")
      }
      const shown = JSON.parse((yield* cli("show", id, "--json", ...local())).out)
      assert.strictEqual(shown.snapshot.state, "review")
      assert.strictEqual(shown.snapshot.status, "waiting")
    }))

  it.live("diagram prints Mermaid, or one procedure as SVG", () =>
    Effect.gen(function*() {
      const mermaid = yield* cli("diagram", fixture)
      assert.strictEqual(mermaid.code, 0, mermaid.err)
      assert.include(mermaid.out, "%% ops-approval@1\nstateDiagram-v2")
      assert.include(mermaid.out, "review --> approved: Approve")
      assert.include(mermaid.out, "%% ops-gated@1")
      const ambiguous = yield* cli("diagram", fixture, "--format", "svg")
      assert.strictEqual(ambiguous.code, 2)
      assert.include(ambiguous.err, "add --procedure ops-approval")
      const svg = yield* cli("diagram", fixture, "--format", "svg", "--procedure", "ops-approval")
      assert.strictEqual(svg.code, 0)
      assert.match(svg.out, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
      assert.include(svg.out, `data-state="review"`)
      // nested states: Mermaid blocks, and SVG boxes whose states name their parent
      const nested = yield* cli("diagram", "test/fixtures/nested.ts", "--procedure", "deploy-nested")
      assert.strictEqual(nested.code, 0, nested.err)
      assert.include(nested.out, "  state rollout {\n    [*] --> rollout_db")
      const nestedSvg = yield* cli("diagram", "test/fixtures/nested.ts", "--format", "svg", "--procedure", "release")
      assert.strictEqual(nestedSvg.code, 0, nestedSvg.err)
      assert.include(nestedSvg.out, `class="node parallel container" data-state="rollout"`)
      assert.include(nestedSvg.out, `data-parent="rollout.web" data-state="rollout.web.approve"`)
      const missing = yield* cli("diagram", "test/fixtures/nope.ts")
      assert.strictEqual(missing.code, 2)
      assert.include(missing.err, "no such file")
      const notProcedures = yield* cli("diagram", "vitest.config.ts")
      assert.strictEqual(notProcedures.code, 2)
      assert.include(notProcedures.err, "exports no procedure")
    }))

  it.live("procedures lists what is registered, with the examples by default", () =>
    Effect.gen(function*() {
      const mine = yield* cli("procedures", "--json", ...local())
      const names = (JSON.parse(mine.out) as Array<{ name: string }>).map((p) => p.name)
      assert.deepStrictEqual(names, ["ops-approval", "ops-gated", "ops-broken"])
      const text = yield* cli("procedures", ...local())
      assert.match(text.out, /review\s+wait\s+accepts Approve, Reject/)
      const withExamples = yield* cli("procedures", "--json", "--db", db, "--module", fixture)
      const all = (JSON.parse(withExamples.out) as Array<{ name: string; source: string }>)
      assert.includeMembers(all.map((p) => p.name), ["ops-approval", "expense", "approval"])
      assert.include(all.find((p) => p.name === "expense")!.source, "examples/quickstart.ts#Expense")
      assert.isAbove(Modules.exampleFiles().length, 0)
    }))

  it.live("bad usage exits 2 and says what to type instead", () =>
    Effect.gen(function*() {
      const unknown = yield* cli("lst")
      assert.strictEqual(unknown.code, 2)
      assert.include(unknown.err, "Run `proctor --help`")
      const missingArg = yield* cli("show")
      assert.strictEqual(missingArg.code, 2)
      assert.include(missingArg.err, "Run `proctor show --help`")
      const badStatus = yield* cli("list", "--status", "bogus", ...local())
      assert.strictEqual(badStatus.code, 2)
      assert.include(badStatus.err, "e.g. --status waiting,paused")
      const badInput = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", "{doc}", "--db", db, "--no-examples")
      assert.strictEqual(badInput.code, 2)
      assert.include(badInput.err, `--input '{"doc":"q3.pdf"}'`)
      const wrongInput = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":1}`, "--db", db, "--no-examples")
      assert.strictEqual(wrongInput.code, 2)
      assert.include(wrongInput.err, "does not match its Schema")
      const wrongProcedure = yield* cli("run", fixture, "--procedure", "nope", "--db", db, "--no-examples")
      assert.strictEqual(wrongProcedure.code, 2)
      assert.include(wrongProcedure.err, "Try --procedure ops-approval")
      const noCommand = yield* cli()
      assert.strictEqual(noCommand.code, 2)
      assert.include(noCommand.err, "proctor --help")
      const openBind = yield* cli("serve", "--host", "0.0.0.0", "--db", db, "--no-examples")
      assert.strictEqual(openBind.code, 2)
      assert.include(openBind.err, "Refusing to listen on 0.0.0.0 without a token")
    }))

  it.live("every command has --help with an example", () =>
    Effect.gen(function*() {
      for (const command of ["run", "list", "show", "send", "pause", "resume", "cancel", "rollback", "retry", "skip", "diagram", "procedures", "dependencies", "validate", "serve", "mcp"]) {
        const r = yield* cli(command, "--help")
        assert.strictEqual(r.code, 0, command)
        assert.include(r.out, "Example: proctor", command)
        assert.notInclude(r.out, "\x1b[", "no colour codes when the output is not a terminal")
      }
    }))
})

describe("proctor CLI against a server", () => {
  const RuntimeLive = Runtime.layer({ procedures: [Approval, Gated, Broken] }).pipe(Layer.provide(Store.layerMemory))
  const serve = (token?: string, runtime: Layer.Layer<Runtime.Runtime, unknown> = RuntimeLive) =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Server.layerNode({ host: "127.0.0.1", port: 0, token }).pipe(Layer.provideMerge(runtime))
      )
      const address = Context.get(context, HttpServer.HttpServer).address
      return `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
    })

  it.live("run --tenant over the server's quota says when to run it again", () =>
    Effect.gen(function*() {
      const url = yield* serve(
        undefined,
        Runtime.layer({ procedures: [Approval], quotas: { tenants: { byTenant: { acme: { concurrent: 1 } } } } })
          .pipe(Layer.provide(Store.layerMemory))
      )
      const args = ["run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"q"}`, "--tenant", "acme", "--server", url]
      const first = yield* cli(...args)
      assert.strictEqual(first.code, 0, first.err)
      const second = yield* cli(...args)
      assert.strictEqual(second.code, 1, second.out)
      assert.include(second.err, `tenant "acme" has 1 execution`)
      assert.include(second.err, "Run the command again after")
      assert.notInclude(second.err, "unexpectedly")
    }).pipe(Effect.scoped))

  it.live("--server drives a running server's executions", () =>
    Effect.gen(function*() {
      const url = yield* serve()
      const run = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"remote"}`, "--server", url)
      assert.strictEqual(run.code, 0, run.err)
      assert.include(run.out, `Started 1 execution on the server ${url}`)
      const [s] = JSON.parse((yield* cli("list", "--json", "--server", url)).out)
      assert.strictEqual(s.status, "waiting")
      const shown = yield* cli("show", s.id, "--server", url)
      assert.include(shown.out, `It waits for Approve or Reject: proctor send ${s.id} Approve`, "the server's allowed operations")
      assert.include(shown.out, `proctor cancel ${s.id}`)
      const sent = yield* cli("send", s.id, "Approve", `{"by":"bob"}`, "--server", url)
      assert.strictEqual(sent.code, 0, sent.err)
      assert.include(sent.out, "now succeeded")
      // cancel --reason goes through the API's cancel body; the server records it
      const other = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"withdrawn"}`, "--json", "--server", url)
      const [o] = JSON.parse(other.out)
      const cancelled = yield* cli("cancel", o.id, "--reason", "the document was withdrawn", "--server", url)
      assert.strictEqual(cancelled.code, 0, cancelled.err)
      assert.match((yield* cli("show", o.id, "--server", url)).out, /cancelled\s+cancel: the document was withdrawn/)
      const plain = JSON.parse((yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"plain"}`, "--json", "--server", url)).out)
      assert.strictEqual((yield* cli("cancel", plain[0].id, "--server", url)).code, 0, "a cancel without --reason")
      const missing = yield* cli("show", "nope", "--server", url)
      assert.strictEqual(missing.code, 1)
      assert.include(missing.err, `No execution with id "nope"`)
      const notThere = yield* cli("run", "examples/quickstart.ts", "--server", url)
      assert.strictEqual(notThere.code, 1)
      assert.include(notThere.err, `No procedure "expense@1" is registered with this server`)
    }).pipe(Effect.scoped))

  it.live("a server with a token needs --token (or PROCTOR_TOKEN)", () =>
    Effect.gen(function*() {
      const url = yield* serve("tok")
      const refused = yield* cli("list", "--server", url)
      assert.strictEqual(refused.code, 1)
      assert.include(refused.err, "requires a token: pass --token")
      const ok = yield* cli("list", "--json", "--server", url, "--token", "tok")
      assert.strictEqual(ok.code, 0, ok.err)
    }).pipe(Effect.scoped))

  it.live("finds the server that owns the database from the file it leaves next to it", () =>
    Effect.gen(function*() {
      const url = yield* serve()
      const owned = path.join(dir, "owned.db")
      // a live process other than this one owns it (the test runner's parent stands in)
      fs.writeFileSync(Op.serverFile(owned), JSON.stringify({ url, pid: process.ppid }))
      const r = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"found"}`, "--db", owned)
      assert.strictEqual(r.code, 0, r.err)
      assert.include(r.out, `on the server ${url}`)
      assert.isFalse(fs.existsSync(owned), "the database itself was not opened")
      fs.writeFileSync(Op.serverFile(owned), JSON.stringify({ url, pid: 2 ** 22 + 12345 }))
      const stale = yield* cli("list", "--db", owned, "--no-examples")
      assert.strictEqual(stale.code, 1, "a dead server's file is ignored: the database itself is looked for")
      assert.include(stale.err, `There is no Proctor database at ${owned}`)
    }).pipe(Effect.scoped))
})

describe("proctor CLI output", () => {
  const snapshot = (i: number, status: string) => ({
    id: `id-${i}`,
    procedure: "p",
    version: 1,
    state: "s",
    status: status as "running",
    context: {},
    visit: 1,
    attempt: 0,
    seq: 1,
    rowVersion: 1,
    startedAt: 0,
    enteredAt: 0,
    updatedAt: 0
  })

  it.effect("redraws progress in place on a terminal, with a bar when many run", () =>
    Effect.gen(function*() {
      const capture = Out.makeCapture({ isTTY: true })
      yield* Effect.gen(function*() {
        const progress = yield* Out.makeProgress
        yield* progress.update([snapshot(1, "running"), snapshot(2, "waiting")], 1500)
        yield* progress.update([snapshot(1, "succeeded"), snapshot(2, "waiting")], 1600)
      }).pipe(Effect.provideService(Out.Output, capture.service))
      const out = capture.stdout()
      assert.include(out, "\x1b[2F\x1b[0J", "the second frame moves up over the first")
      assert.include(out, "✔")
      capture.reset()
      yield* Effect.gen(function*() {
        const progress = yield* Out.makeProgress
        const many = Array.from({ length: 20 }, (_, i) => snapshot(i, i < 5 ? "succeeded" : "running"))
        yield* progress.update(many, 1000)
      }).pipe(Effect.provideService(Out.Output, capture.service))
      assert.include(capture.stdout(), "5/20 finished")
      assert.match(capture.stdout(), /\[█+░+\]/)
    }))

  it.effect("prints plain lines, only for changes, when not a terminal", () =>
    Effect.gen(function*() {
      const capture = Out.makeCapture({ isTTY: false })
      yield* Effect.gen(function*() {
        const progress = yield* Out.makeProgress
        yield* progress.update([snapshot(1, "running")], 10)
        yield* progress.update([snapshot(1, "running")], 20)
        yield* progress.update([snapshot(1, "waiting")], 30)
      }).pipe(Effect.provideService(Out.Output, capture.service))
      const lines = capture.stdout().trim().split("\n")
      assert.strictEqual(lines.length, 2)
      assert.notInclude(capture.stdout(), "\x1b[")
      assert.match(lines[1]!, /id-1\s+p\s+s\s+waiting$/)
    }))
})

describe("proctor as a command", () => {
  // the sources, through tsx; the compiled command (dist/bin/proctor.js) is run from an
  // installed tarball by test/consumer/run.sh
  const bin = ["--import", "tsx", path.resolve("src/bin/proctor.ts")]

  it("runs through the bin shim with real exit codes 0, 1 and 2", () => {
    const ok = spawnSync(process.execPath, [...bin, "list", "--json", "--db", db, "--no-examples"], { encoding: "utf8" })
    assert.strictEqual(ok.status, 0, ok.stderr)
    assert.isArray(JSON.parse(ok.stdout))
    const failed = spawnSync(process.execPath, [...bin, "show", "nope", "--db", db, "--no-examples"], { encoding: "utf8" })
    assert.strictEqual(failed.status, 1)
    assert.include(failed.stderr, `No execution with id "nope"`)
    const usage = spawnSync(process.execPath, [...bin, "frobnicate"], { encoding: "utf8" })
    assert.strictEqual(usage.status, 2)
    assert.include(usage.stderr, "Run `proctor --help`")
  })

  it.live("serve owns the database; other commands reach it through the server; Ctrl-C stops it cleanly with exit code 130", () =>
    Effect.gen(function*() {
      const served = path.join(dir, "served.db")
      const child = spawn(process.execPath, [...bin, "serve", "--port", "0", "--db", served, "--no-examples", "--module", fixture], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const url = yield* Effect.async<string, Error>((resume) => {
        let text = ""
        child.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString()
          const m = /dashboard\s+(http:\/\/\S+?)\/?\s/.exec(text)
          if (m) resume(Effect.succeed(m[1]!))
        })
        child.on("exit", (code) => resume(Effect.fail(new Error(`serve exited with ${code}`))))
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("serve did not start") }))
      assert.isTrue(fs.existsSync(Op.serverFile(served)))
      const run = yield* cli("run", fixture, "--procedure", "ops-approval", "--input", `{"doc":"served"}`, "--db", served)
      assert.strictEqual(run.code, 0, run.err)
      assert.include(run.out, `on the server ${url}`)
      const [s] = JSON.parse((yield* cli("list", "--json", "--db", served)).out)
      const sent = yield* cli("send", s.id, "Approve", `{"by":"cat"}`, "--db", served)
      assert.include(sent.out, "now succeeded")
      const again = yield* cli("serve", "--port", "0", "--db", served, "--no-examples")
      assert.strictEqual(again.code, 2)
      assert.include(again.err, `is already served at ${url}`)
      const code = yield* Effect.async<number | null>((resume) => {
        child.on("exit", (c) => resume(Effect.succeed(c)))
        child.kill("SIGINT")
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("serve did not stop") }))
      assert.strictEqual(code, 130, "Ctrl-C exits 130")
      assert.isFalse(fs.existsSync(Op.serverFile(served)), "the server file is removed")
      assert.isFalse(fs.existsSync(`${served}.lock`), "the database lock is released")
      // the database now opens locally, with what the server committed
      const shown = JSON.parse((yield* cli("show", s.id, "--json", "--db", served, "--no-examples", "--module", fixture)).out)
      assert.strictEqual(shown.snapshot.status, "succeeded")
    }).pipe(Effect.scoped))
})

describe("proctor CLI: output a script can read", () => {
  it.live("-v prints the version; --json errors are one JSON object on stdout, in the CLI's words", () =>
    Effect.gen(function*() {
      const v = yield* cli("-v")
      assert.strictEqual(v.code, 0)
      assert.strictEqual(v.out, `${version}\n`)
      assert.strictEqual(version, JSON.parse(fs.readFileSync("package.json", "utf8")).version)
      yield* startApproval("json errors")
      const missing = yield* cli("show", "nope", "--json", ...local())
      assert.strictEqual(missing.code, 1)
      const parsed = JSON.parse(missing.out)
      assert.strictEqual(parsed.error.tag, "ExecutionNotFound")
      assert.strictEqual(parsed.error.exitCode, 1)
      assert.include(parsed.error.message, "`proctor list` shows the known ones")
      assert.notInclude(parsed.error.message, "Runtime.")
      const bad = yield* cli("list", "--status", "bogus", "--json", ...local())
      assert.strictEqual(bad.code, 2)
      assert.strictEqual(JSON.parse(bad.out).error.tag, "UsageError")
      const unknownOption = yield* cli("list", "--bogus", "--json", ...local())
      assert.strictEqual(unknownOption.code, 2)
      assert.strictEqual(JSON.parse(unknownOption.out).error.tag, "ValidationError")
    }))

  it.live("--log-level is accepted after the command, and logs go to stderr, not into the JSON", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("logged")
      const r = yield* cli("show", id, "--json", "--log-level", "debug", ...local())
      assert.strictEqual(r.code, 0, r.err)
      assert.strictEqual(JSON.parse(r.out).snapshot.id, id)
      const sent = yield* cli("send", id, "Approve", `{"by":"log"}`, "--json", "--log-level=all", ...local())
      assert.strictEqual(sent.code, 0, sent.err)
      assert.strictEqual(JSON.parse(sent.out).status, "succeeded")
    }))

  it("colour follows NO_COLOR, FORCE_COLOR and the terminal", () => {
    const tty = { isTTY: true, hasColors: () => true }
    assert.isTrue(Out.colorFor(tty, {}))
    assert.isFalse(Out.colorFor(tty, { NO_COLOR: "1" }))
    assert.isFalse(Out.colorFor({ isTTY: true, hasColors: () => false }, {}))
    assert.isFalse(Out.colorFor({ isTTY: false }, {}))
    assert.isTrue(Out.colorFor({ isTTY: false }, { FORCE_COLOR: "1" }))
    assert.isFalse(Out.colorFor(tty, { FORCE_COLOR: "0" }))
  })

  it.live("tables are coloured only when colour is on, whatever the terminal", () =>
    Effect.gen(function*() {
      yield* startApproval("coloured")
      const plain = yield* cliWith({ isTTY: true, color: false }, "list", ...local())
      assert.notInclude(plain.out, "\x1b[")
      const coloured = yield* cliWith({ isTTY: false, color: true }, "list", ...local())
      assert.include(coloured.out, "\x1b[")
    }))

  it.live("each command's --help reads `$ proctor <command>`, without filler under the options", () =>
    Effect.gen(function*() {
      for (const command of ["run", "list", "show", "send", "diagram", "serve"]) {
        const r = yield* cli(command, "--help")
        assert.strictEqual(r.code, 0, command)
        assert.include(r.out, `$ proctor ${command} `)
        for (const filler of ["A user-defined piece of text.", "This setting is optional.", "A true or false value.", "An integer.", "may be repeated zero or more times"]) {
          assert.notInclude(r.out, filler, `${command} --help`)
        }
      }
    }))

  it.live("a subcommand's --help reads `$ proctor <command> <subcommand>`", () =>
    Effect.gen(function*() {
      for (const sub of ["start", "status", "advance", "revert"]) {
        const r = yield* cli("rollout", sub, "--help")
        assert.strictEqual(r.code, 0, sub)
        assert.include(r.out, `$ proctor rollout ${sub} `)
        assert.notInclude(r.out, `$ proctor ${sub} `)
      }
      const coloured = yield* cliWith({ color: true }, "--log-level", "info", "rollout", "pause", "-h")
      assert.include(Out.stripAnsi(coloured.out), "$ proctor rollout pause ")
      // a command's own help is untouched, whatever its arguments
      assert.include((yield* cli("show", "start", "--help")).out, "$ proctor show ")
    }))

  it.effect("the help the build renders for the compiled command (dist/cli/help.json) is the CLI's own, uncoloured", () =>
    Effect.gen(function*() {
      const texts = yield* helpTexts.pipe(Effect.provide(NodeContext.layer))
      assert.deepStrictEqual(Object.keys(texts), ["", "run", "list", "show", "send", "pause", "resume", "cancel", "rollback", "retry", "skip", "migrate", "rollout", "diagram", "procedures", "dependencies", "validate", "serve", "mcp"])
      assert.strictEqual(texts.list, (yield* cli("list", "--help")).out)
      assert.include(texts[""], "$ proctor")
      for (const text of Object.values(texts)) assert.notInclude(text, "\x1b[")
    }))

  it("--status takes exactly the statuses an execution can have", () => {
    assert.deepStrictEqual([...statusNames], [...Status.literals])
  })
})

describe("proctor validate", () => {
  it.live("prints the readiness report: NOT READY, exit code 1, with the reason of the refused procedure; progress on stderr; nothing beside the database is left", () =>
    Effect.gen(function*() {
      const folder = path.join(dir, "validate")
      fs.mkdirSync(folder)
      const r = yield* cli("validate", "--db", path.join(folder, "app.db"), "--no-examples", "--module", fixture, "--module", "test/fixtures/validate-broken.ts", "--json")
      assert.strictEqual(r.code, 1, r.err)
      const report = JSON.parse(r.out) as { verdict: string; failures: Array<string>; figures: Record<string, number>; checks: Array<{ id: string; ok: boolean }> }
      assert.strictEqual(report.verdict, "NOT READY")
      assert.deepStrictEqual(report.failures.filter((f) => !f.startsWith("Registration")).map((f) => f.slice(0, f.indexOf(":"))), ["procedure unreachable@1"])
      assert.isTrue(report.checks.filter((c) => c.id !== "registration").every((c) => c.ok), JSON.stringify(report.checks))
      for (const figure of ["transitionMicros", "heapPerExecutionBytes", "concurrentMillis", "recoveryMillis"]) assert.isAbove(report.figures[figure] ?? 0, 0, figure)
      assert.include(r.err, "validate: [1/8] Linear flow")
      assert.include(r.err, "Error: NOT READY")
      // the checks ran in a folder beside the database, removed; the database was never created
      assert.deepStrictEqual(fs.readdirSync(folder), [])
    }), 240_000)
})

describe("proctor CLI: the database", () => {
  it.live("a mistyped --db is an error for every command but run and serve, and creates nothing", () =>
    Effect.gen(function*() {
      const typo = path.join(dir, "no-such-folder", "typo.db")
      for (const argv of [["list"], ["show", "some-id"], ["send", "some-id", "Approve", "{}"], ["pause", "some-id"]]) {
        const r = yield* cli(...argv, "--db", typo, "--no-examples", "--module", fixture)
        assert.strictEqual(r.code, 1, argv.join(" "))
        assert.include(r.err, `There is no Proctor database at ${typo}`)
        assert.include(r.err, "Check --db")
      }
      assert.isFalse(fs.existsSync(path.dirname(typo)), "no folder was created")
    }))

  it.live("list and show read a database another process owns; changes say how to reach that process", () =>
    Effect.gen(function*() {
      const owned = path.join(dir, "held.db")
      const s = { id: yield* startApproval("held", owned) }
      const holder = spawn(process.execPath, ["--import", "tsx", path.resolve("test/fixtures/sqlHolder.ts"), owned], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.kill("SIGKILL")))
      yield* Effect.async<void, Error>((resume) => {
        let text = ""
        holder.stdout.on("data", (chunk: Buffer) => {
          text += chunk.toString()
          if (text.includes("ready")) resume(Effect.void)
          else if (text.includes("failed")) resume(Effect.fail(new Error(text)))
        })
      }).pipe(Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("the holder did not start") }))
      const listed = yield* cli("list", "--json", "--db", owned)
      assert.strictEqual(listed.code, 0, listed.err)
      assert.deepStrictEqual((JSON.parse(listed.out) as Array<{ id: string }>).map((x) => x.id), [s.id])
      const shown = yield* cli("show", s.id, "--db", owned)
      assert.strictEqual(shown.code, 0, shown.err)
      assert.match(shown.out, /accepts\s+Approve, Reject/, "the module recorded by run tells what the wait accepts")
      const paused = yield* cli("pause", s.id, "--db", owned, "--no-examples")
      assert.strictEqual(paused.code, 1)
      assert.include(paused.err, `is owned by another process (pid ${holder.pid})`)
      assert.include(paused.err, "--server URL")
      holder.stdin.end()
    }).pipe(Effect.scoped))

  it.live("commands on an execution started from a module find its procedure without --module, or say what to pass", () =>
    Effect.gen(function*() {
      const own = path.join(dir, "registry.db")
      const id = yield* startApproval("found", own)
      const sent = yield* cli("send", id, "Approve", `{"by":"reg"}`, "--db", own, "--no-examples")
      assert.strictEqual(sent.code, 0, sent.err)
      assert.include(sent.out, "now succeeded")
      const lost = { id: yield* startApproval("lost", own) }
      fs.rmSync(`${own}.modules.json`)
      const refused = yield* cli("pause", lost.id, "--db", own, "--no-examples")
      assert.strictEqual(refused.code, 1)
      assert.include(refused.err, `runs the procedure ops-approval@1`)
      assert.include(refused.err, `proctor pause ${lost.id} … --module PATH`)
    }))

  it.live("SqlStore's readOnly mode reads an existing database, writes nothing and creates nothing", () =>
    Effect.gen(function*() {
      const id = yield* startApproval("read-only")
      const readOnly = (filename: string) => SqlStore.layerSqlite({ filename, readOnly: true })
      const read = yield* Effect.flatMap(Store.Store, (store) =>
        Effect.all([store.get(id), Effect.flip(store.appendErrors([{ executionId: id, state: "review", attempt: 1, tag: "X", message: "x", transient: false, at: 0 }]))])
      ).pipe(Effect.provide(readOnly(db)))
      assert.strictEqual(read[0]._tag, "Some")
      assert.strictEqual(read[1].kind, "ReadOnly")
      const missing = path.join(dir, "absent", "x.db")
      const error = yield* Effect.flip(Effect.provide(Store.Store, readOnly(missing)))
      assert.strictEqual(error.kind, "Unavailable")
      assert.include(error.detail, "does not exist")
      assert.isFalse(fs.existsSync(path.dirname(missing)))
    }))

  it("Proctor's own examples are offered only from a clone of its repository, never from node_modules", () => {
    assert.isTrue(Modules.examplesByDefault())
    assert.isFalse(Modules.examplesByDefault(path.join(dir, "node_modules", "proctor", "examples")))
  })
})
