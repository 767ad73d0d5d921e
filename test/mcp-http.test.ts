/**
 * The `workflow` tool over Streamable HTTP (`/mcp` of the HTTP server, as `proctor serve`
 * serves it), in process: the server on a real port (`NodeHttpServer.layerTest`), the
 * workflows of test/fixtures/mcp-workflows on a memory store, driven with real HTTP requests
 * and with the official SDK client.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { HttpClient, type HttpClientError, HttpClientRequest, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Exit, Layer, TestClock } from "effect"
import { Runtime, Store } from "proctor"
import * as Server from "../src/http/Server.js"
import * as McpHttp from "../src/mcp/http.js"
import { loadEnvironment, proceduresOf } from "../src/mcp/main.js"
import * as McpStore from "../src/mcp/store.js"

const fixtures = path.resolve(import.meta.dirname, "fixtures/mcp-workflows")

const serverWith = (options: { readonly token?: string } & McpHttp.HttpOptions = {}) =>
  Layer.unwrapEffect(Effect.map(loadEnvironment({ workflowsDir: fixtures, workspaceRoot: fixtures }), (environment) =>
    Server.layer({ token: options.token, extraRoutes: { layer: McpHttp.routes(environment, options), ownBodies: [McpHttp.PATH] } }).pipe(
      Layer.provideMerge(Runtime.layer({ procedures: proceduresOf(environment) }).pipe(Layer.provide(Store.layerMemory))),
      Layer.provideMerge(NodeHttpServer.layerTest)
    )))

interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: any
}

/** POSTs `body` (a value sent as JSON, or raw text) to /mcp with the headers an MCP client sends */
const post = (body: unknown, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const request = HttpClientRequest.post(McpHttp.PATH).pipe(
      HttpClientRequest.setHeaders({ accept: "application/json, text/event-stream", ...headers }),
      HttpClientRequest.bodyText(typeof body === "string" ? body : JSON.stringify(body), "application/json")
    )
    return yield* read(yield* http.execute(request))
  })

const read = (response: { readonly status: number; readonly headers: Readonly<Record<string, string>>; readonly text: Effect.Effect<string, unknown> }) =>
  Effect.map(Effect.orDie(response.text), (text): Reply => {
    let body: any = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, headers: response.headers, body }
  })

const send = (method: "GET" | "DELETE", headers: Record<string, string>) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    return yield* read(yield* http.execute(HttpClientRequest.make(method)(McpHttp.PATH).pipe(HttpClientRequest.setHeaders(headers))))
  })

/** initializes a session; the headers its later requests carry */
const initialize = (headers: Record<string, string> = {}): Effect.Effect<Record<string, string>, HttpClientError.HttpClientError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const r = yield* post({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "0" } } }, headers)
    assert.strictEqual(r.status, 200, JSON.stringify(r.body))
    const session = r.headers["mcp-session-id"]
    assert.isString(session)
    return { ...headers, "mcp-session-id": session!, "mcp-protocol-version": "2025-06-18" }
  })

let nextId = 1
/** calls the tool in the session; its parsed answer */
const tool = (headers: Record<string, string>, args: Record<string, unknown>) =>
  Effect.map(post({ jsonrpc: "2.0", id: nextId++, method: "tools/call", params: { name: "workflow", arguments: args } }, headers), (r) => {
    assert.strictEqual(r.status, 200, JSON.stringify(r.body))
    return { isError: r.body.result.isError === true, body: JSON.parse(r.body.result.content[0].text) }
  })

const evidence = { count: 2, label: "ab" }

describe("MCP over Streamable HTTP", () => {
  it.effect("initialize opens a session; tools/list and tools/call answer in it as JSON; a notification gets 202", () =>
    Effect.gen(function*() {
      const init = yield* post({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-03-26" } })
      assert.strictEqual(init.status, 200)
      assert.match(init.headers["content-type"] ?? "", /^application\/json/)
      assert.deepStrictEqual(init.body.result.protocolVersion, "2025-03-26")
      assert.deepStrictEqual(init.body.result.capabilities, { tools: {} })
      const headers = { "mcp-session-id": init.headers["mcp-session-id"]! }
      const note = yield* post({ jsonrpc: "2.0", method: "notifications/initialized" }, headers)
      assert.strictEqual(note.status, 202)
      const list = yield* post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, headers)
      assert.deepStrictEqual(list.body.result.tools.map((t: { name: string }) => t.name), ["workflow"])
      const started = yield* tool(headers, { action: "start", workflow_type: "mini", target_file: "mini/workflow.json" })
      assert.isFalse(started.isError, JSON.stringify(started.body))
      const done = yield* tool(headers, { action: "complete_phase", session_id: started.body.session_id, phase: 1, evidence })
      assert.isTrue(done.body.checkpoint_passed)
      // the session is an execution of the Runtime the HTTP API serves
      assert.strictEqual((yield* Runtime.get(started.body.session_id)).procedure, "workflow/mini")
      // a tool error is a result with isError, as on stdio
      const bad = yield* tool(headers, { action: "fly" })
      assert.isTrue(bad.isError)
      assert.strictEqual(bad.body.error.code, "UNKNOWN_ACTION")
      const unknown = yield* post({ jsonrpc: "2.0", id: 3, method: "resources/list" }, headers)
      assert.strictEqual(unknown.body.error.code, -32601)
    }).pipe(Effect.provide(serverWith())))

  it.effect("two clients completing the same phase: exactly one wins, the other gets CONFLICT", () =>
    Effect.gen(function*() {
      const a = yield* initialize()
      const b = yield* initialize()
      assert.notStrictEqual(a["mcp-session-id"], b["mcp-session-id"])
      for (let round = 0; round < 3; round++) {
        const id = (yield* tool(a, { action: "start", workflow_type: "mini", target_file: "mini/workflow.json" })).body.session_id
        const results = yield* Effect.all([
          tool(a, { action: "complete_phase", session_id: id, phase: 1, evidence }),
          tool(b, { action: "complete_phase", session_id: id, phase: 1, evidence })
        ], { concurrency: "unbounded" })
        const winners = results.filter((r) => !r.isError && r.body.checkpoint_passed === true)
        const losers = results.filter((r) => r.isError)
        assert.strictEqual(winners.length, 1, JSON.stringify(results))
        assert.strictEqual(losers.length, 1)
        assert.strictEqual(losers[0]!.body.error.code, "CONFLICT")
        assert.include(losers[0]!.body.error.message, "already completed")
        const history = yield* Runtime.history(id)
        assert.deepStrictEqual(history.map((t) => t.cause), ["start", "event:CompletePhase"])
      }
    }).pipe(Effect.provide(serverWith())))

  it.effect("with a token: 401 without it or with a wrong one, for every method; the Bearer header lets a client in", () =>
    Effect.gen(function*() {
      const initialization = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18" } }
      for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "s3cret" }]) {
        const r = yield* post(initialization, headers)
        assert.strictEqual(r.status, 401, JSON.stringify(headers))
        assert.strictEqual(r.headers["www-authenticate"], "Bearer")
        assert.isUndefined(r.headers["mcp-session-id"])
      }
      const headers = yield* initialize({ authorization: "Bearer s3cret" })
      const { authorization: _, ...without } = headers
      assert.strictEqual((yield* post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, without)).status, 401)
      assert.strictEqual((yield* send("DELETE", without)).status, 401)
      assert.strictEqual((yield* post({ jsonrpc: "2.0", id: 2, method: "tools/list" }, headers)).status, 200)
      // a query token authorises reads of the dashboard, not a change
      assert.strictEqual((yield* post(initialization, {}).pipe(Effect.provideService(HttpClient.HttpClient, yield* queryTokenClient))).status, 401)
    }).pipe(Effect.provide(serverWith({ token: "s3cret" }))))

  it.effect("the size and depth limits: refused before parsing, a tools/call answered with a tool error by id; the server goes on", () =>
    Effect.gen(function*() {
      const headers = yield* initialize()
      const call = (id: number, args: unknown) => ({ method: "tools/call", params: { name: "workflow", arguments: args }, jsonrpc: "2.0", id })
      // over the limit, the id at the end as the SDK client writes it: never parsed, answered by id
      const large = yield* post(call(7, { action: "complete_phase", evidence: "x".repeat(5000) }), headers)
      assert.strictEqual(large.status, 200)
      assert.strictEqual(large.body.id, 7)
      assert.isTrue(large.body.result.isError)
      assert.include(large.body.result.content[0].text, "EVIDENCE_TOO_LARGE")
      const deep = yield* post(call(8, { action: "complete_phase", evidence: JSON.parse("[".repeat(60) + "]".repeat(60)) }), headers)
      assert.strictEqual(deep.body.id, 8)
      assert.include(deep.body.result.content[0].text, "EVIDENCE_TOO_DEEP")
      // another request over the limit: a JSON-RPC error with its id
      const list = yield* post({ jsonrpc: "2.0", id: 9, method: "tools/list", params: { pad: "x".repeat(5000) } }, headers)
      assert.strictEqual(list.body.error.code, -32600)
      assert.strictEqual(list.body.id, 9)
      // past four times the limit, the body is not read at all
      const huge = yield* post("x".repeat(20_000), headers)
      assert.strictEqual(huge.status, 413)
      assert.strictEqual(huge.body.error.code, -32600)
      // not JSON, not JSON-RPC, a batch
      const cases: ReadonlyArray<readonly [string, number]> = [["{oops", -32700], ["{\"id\":1}", -32600], ["[]", -32600], ["", -32700]]
      for (const [text, code] of cases) {
        const r = yield* post(text, headers)
        assert.strictEqual(r.status, 400, text)
        assert.strictEqual(r.body.error.code, code, text)
      }
      assert.strictEqual((yield* post({ jsonrpc: "2.0", id: 10, method: "ping" }, headers)).body.result !== undefined, true)
    }).pipe(Effect.provide(serverWith({ maxBodyBytes: 4000 }))))

  it.effect("sessions: required after initialize, ended by DELETE (then 404), at most maxSessions, and ended when idle", () =>
    Effect.gen(function*() {
      const ping = { jsonrpc: "2.0", id: 1, method: "ping" }
      const missing = yield* post(ping)
      assert.strictEqual(missing.status, 400)
      assert.include(missing.body.error.message, "Mcp-Session-Id")
      assert.strictEqual((yield* post(ping, { "mcp-session-id": "nope" })).status, 404)
      const a = yield* initialize()
      const b = yield* initialize()
      // the third is one too many
      const full = yield* post({ jsonrpc: "2.0", id: 5, method: "initialize", params: {} })
      assert.strictEqual(full.status, 503)
      assert.include(full.body.error.message, "DELETE")
      assert.strictEqual((yield* send("DELETE", a)).status, 204)
      assert.strictEqual((yield* post(ping, a)).status, 404)
      assert.strictEqual((yield* send("DELETE", a)).status, 404)
      const c = yield* initialize()
      // idle for the timeout: ended; one in use stays
      yield* TestClock.adjust("20 minutes")
      assert.strictEqual((yield* post(ping, c)).status, 200)
      yield* TestClock.adjust("15 minutes")
      assert.strictEqual((yield* post(ping, b)).status, 404)
      assert.strictEqual((yield* post(ping, c)).status, 200)
      // the sweeper freed b's place
      yield* initialize()
    }).pipe(Effect.provide(serverWith({ maxSessions: 2, idleTimeout: "30 minutes" }))))

  it.effect("refuses a foreign Origin, an unknown protocol version, GET (405) and what is not JSON", () =>
    Effect.gen(function*() {
      const headers = yield* initialize()
      const ping = { jsonrpc: "2.0", id: 1, method: "ping" }
      for (const origin of ["http://attacker.example", "null"]) {
        const r = yield* post(ping, { ...headers, origin })
        assert.strictEqual(r.status, 403, origin)
      }
      assert.strictEqual((yield* send("GET", { ...headers, origin: "http://attacker.example" })).status, 403)
      const version = yield* post(ping, { ...headers, "mcp-protocol-version": "1999-01-01" })
      assert.strictEqual(version.status, 400)
      assert.include(version.body.error.message, "2025-06-18")
      const get = yield* send("GET", headers)
      assert.strictEqual(get.status, 405)
      assert.strictEqual(get.headers["allow"], "POST, DELETE")
      const text = yield* Effect.flatMap(HttpClient.HttpClient, (http) =>
        Effect.flatMap(http.execute(HttpClientRequest.post(McpHttp.PATH).pipe(HttpClientRequest.setHeaders(headers), HttpClientRequest.bodyText("{}", "text/plain"))), read))
      assert.strictEqual(text.status, 415)
      const accept = yield* post(ping, { ...headers, accept: "text/html" })
      assert.strictEqual(accept.status, 406)
      // without a token, a request to a host other than this machine is refused (DNS rebinding)
      assert.strictEqual((yield* post(ping, { ...headers, host: "attacker.example:7878" })).status, 403)
    }).pipe(Effect.provide(serverWith())))

  it.effect("the official SDK client (StreamableHTTPClientTransport) connects, lists, calls and ends its session", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer.HttpServer
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}${McpHttp.PATH}`), {
        requestInit: { headers: { authorization: "Bearer s3cret" } }
      })
      const client = new Client({ name: "proctor-test", version: "0.0.0" })
      yield* Effect.acquireRelease(Effect.promise(() => client.connect(transport)), () => Effect.promise(() => client.close()))
      assert.isString(transport.sessionId)
      const { tools } = yield* Effect.promise(() => client.listTools())
      assert.deepStrictEqual(tools.map((t) => t.name), ["workflow"])
      const result = yield* Effect.promise(() => client.callTool({ name: "workflow", arguments: { action: "list_workflows" } }))
      const body = JSON.parse((result.content as Array<{ text: string }>)[0]!.text)
      assert.deepStrictEqual(body.workflows.map((w: { workflow_type: string }) => w.workflow_type).sort(), ["mini"])
      yield* Effect.promise(() => transport.terminateSession())
      assert.isUndefined(transport.sessionId)
    }).pipe(Effect.scoped, Effect.provide(serverWith({ token: "s3cret" }))))
})

/** a client that sends the token as `?token=`, as the dashboard's first page load does */
const queryTokenClient = Effect.map(HttpClient.HttpClient, HttpClient.mapRequest(HttpClientRequest.setUrlParam("token", "s3cret")))

describe("proctor mcp beside proctor serve", () => {
  it.effect("on a database a server has, the refusal names the server's /mcp endpoint", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-mcp-http-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      const db = path.join(dir, "proctor.db")
      // what a running `proctor serve` leaves: the lock and the server file, naming a live process other than this one
      const owner = { pid: process.ppid, host: os.hostname(), since: new Date().toISOString() }
      fs.writeFileSync(`${db}.lock`, JSON.stringify(owner))
      const plain = yield* Effect.exit(Layer.build(McpStore.layer(db)))
      assert.isTrue(Exit.isFailure(plain))
      assert.notInclude(JSON.stringify(plain), "/mcp")
      fs.writeFileSync(`${db}.server.json`, JSON.stringify({ url: "http://127.0.0.1:7878", pid: process.ppid }))
      const served = yield* Effect.flip(Layer.build(McpStore.layer(db)))
      assert.strictEqual(served.kind, "Locked")
      assert.include(served.message, "connect the MCP client to http://127.0.0.1:7878/mcp")
    }).pipe(Effect.scoped))
})
