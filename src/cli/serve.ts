/**
 * `proctor serve` and `proctor mcp`: the two commands that keep running. Imported only by
 * them, so no other command loads the HTTP server or the MCP server.
 *
 * @since 0.1.0
 */
import { HttpServer } from "@effect/platform"
import { Context, Data, Effect, Either, Layer, Option } from "effect"
import * as AuditLog from "../AuditLog.js"
import * as Runtime from "../Runtime.js"
import * as Auth from "../http/Auth.js"
import * as Server from "../http/Server.js"
import { env, loadNamed } from "./actions.js"
import { McpUnavailable, UsageError } from "./commands.js"
import * as Op from "./operator.js"
import * as Out from "./output.js"
import { rememberModules, resolveDbPath, storeLayer } from "./store.js"

/**
 * `proctor serve` could not listen on its address. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    const code = (this.cause as { code?: unknown } | undefined)?.code
    const why = code === "EADDRINUSE"
      ? "the port is in use"
      : code === "EACCES"
      ? "permission denied"
      : code === "EADDRNOTAVAIL"
      ? "this machine has no such address"
      : String((this.cause as Error | undefined)?.message ?? this.cause)
    return `Cannot listen on ${this.host}:${this.port}: ${why}. Pick another --port (0 picks a free one) or --host.`
  }
}

/** @internal */
export const serve = (a: {
  readonly host: string
  readonly port: number
  readonly db: Option.Option<string>
  readonly module: ReadonlyArray<string>
  readonly noExamples: boolean
  readonly token: Option.Option<string>
  readonly tokenName: Option.Option<string>
  readonly auditLog: Option.Option<string>
  readonly workflows: Option.Option<string>
  readonly root: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const secret = Option.getOrUndefined(a.token) ?? env("PROCTOR_TOKEN")
    const bind = Auth.checkBind({ host: a.host, token: secret })
    if (Either.isLeft(bind)) return yield* bind.left
    if (a.port < 0 || a.port > 65535) return yield* new UsageError({ message: "--port must be between 0 and 65535, e.g. --port 8080" })
    const dbPath = resolveDbPath(Option.getOrUndefined(a.db))
    const running = Op.discoverServer(dbPath)
    if (Option.isSome(running)) {
      return yield* new UsageError({
        message: `${dbPath} is already served at ${running.value}; open that, or serve another database with --db PATH`
      })
    }
    const loaded = yield* loadNamed(a)
    // the MCP tool at /mcp: its workflows run on the same Runtime and store as the API's procedures
    const [tools, mcp] = yield* Effect.tryPromise({
      try: () => Promise.all([import("../mcp/main.js"), import("../mcp/http.js")]),
      catch: (cause) => new McpUnavailable({ cause })
    })
    const tool = yield* tools.loadEnvironment({
      workflowsDir: Option.getOrElse(a.workflows, () => tools.defaultWorkflowsDir()),
      workspaceRoot: Option.getOrElse(a.root, () => process.cwd())
    })
    for (const p of tool.problems) yield* Out.errorLine(`warning: MCP workflow not loaded: ${p.path}: ${p.problem}`)
    const auditLog = Option.getOrUndefined(a.auditLog) ?? env("PROCTOR_AUDIT_LOG")
    const runtime = Runtime.layer({
      procedures: [...loaded.map((l) => l.procedure), ...tools.proceduresOf(tool)],
      plugins: auditLog === undefined ? [] : [AuditLog.jsonl({ path: auditLog })]
    }).pipe(
      Layer.provide(storeLayer(dbPath))
    )
    const extraRoutes = { layer: mcp.routes(tool), ownBodies: [mcp.PATH] }
    const app = Server.layerNode({ host: a.host, port: a.port, token: secret, tokenName: Option.getOrUndefined(a.tokenName), extraRoutes }).pipe(Layer.provide(runtime))
    yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(app).pipe(
        Effect.catchTag("ServeError", (e) => Effect.fail(new ListenFailed({ host: a.host, port: a.port, cause: e.cause })))
      )
      rememberModules(dbPath, loaded)
      const server = Context.get(context, HttpServer.HttpServer)
      const port = server.address._tag === "TcpAddress" ? server.address.port : a.port
      const shownHost = a.host === "0.0.0.0" || a.host === "::" ? "127.0.0.1" : a.host.includes(":") ? `[${a.host}]` : a.host
      const url = `http://${shownHost}:${port}`
      yield* Op.advertise(dbPath, url)
      yield* Out.line(`Proctor serves ${loaded.length} procedure${loaded.length === 1 ? "" : "s"} on the database ${dbPath}`)
      yield* Out.line(`  dashboard  ${url}/${secret === undefined ? "" : "?token=<your token>"}`)
      yield* Out.line(`  API docs   ${url}/docs`)
      yield* Out.line(`  OpenAPI    ${url}/openapi.json`)
      yield* Out.line(`  events     ${url}/events`)
      yield* Out.line(`  MCP        ${url}${mcp.PATH} (the workflow tool, ${tool.workflows.size} workflow${tool.workflows.size === 1 ? "" : "s"}, for several agents at once)`)
      yield* Out.line(`Press Ctrl-C to stop.`)
      // serves until the process is interrupted (Ctrl-C / SIGTERM)
      return yield* Effect.never
    }))
  })

/** @internal */
export const mcp = (a: {
  readonly db: Option.Option<string>
  readonly workflows: Option.Option<string>
  readonly root: Option.Option<string>
  readonly maxPhaseBytes: Option.Option<number>
  readonly maxSessionBytes: Option.Option<number>
}) =>
  Effect.gen(function*() {
    // loaded only for this command: the MCP server's modules are not part of the other commands
    const mcp = yield* Effect.tryPromise({ try: () => import("../mcp/main.js"), catch: (cause) => new McpUnavailable({ cause }) })
    const some = (name: string, o: Option.Option<string | number>) => Option.isSome(o) ? [name, String(o.value)] : []
    const argv = [
      ...some("--db", Option.orElse(a.db, () => Option.fromNullable(env("PROCTOR_DB")))),
      ...some("--workflows", a.workflows),
      ...some("--root", a.root),
      ...some("--max-phase-bytes", a.maxPhaseBytes),
      ...some("--max-session-bytes", a.maxSessionBytes)
    ]
    const options = yield* Effect.try({
      try: () => mcp.optionsFromArgv(argv),
      catch: (e) => new UsageError({ message: (e as Error).message })
    })
    yield* mcp.runMcp(options)
  })
