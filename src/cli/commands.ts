/**
 * The `proctor` command line: its commands, their options and what they do. Each
 * command is a thin layer over the `Operator` (a runtime in this process, or a running
 * server); printing is left to `output.ts`.
 *
 * Exit codes: 0 ok, 1 the operation failed, 2 bad usage (with what to type instead).
 *
 * @since 0.1.0
 */
import { Args, CliConfig, Command, Options, ValidationError as CliValidationError } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { Clock, Context, Data, Duration, Effect, Either, Layer, Option } from "effect"
import type { Snapshot } from "../Execution.js"
import { isTerminal, Status } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as Auth from "../http/Auth.js"
import * as Diagram from "../http/Diagram.js"
import * as Server from "../http/Server.js"
import * as Modules from "./modules.js"
import type { OperatorError, ProcedureView } from "./operator.js"
import * as Op from "./operator.js"
import * as Out from "./output.js"
import { resolveDbPath, storeLayer } from "./store.js"

/**
 * A command was used wrongly; `message` says what to type instead. Exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/**
 * Everything a command can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type CommandError = UsageError | OperatorError | Modules.ModuleLoadError | Auth.TokenRequired

const usage = (message: string) => new UsageError({ message })

// ---------------------------------------------------------------------------
// shared options

const db = Options.text("db").pipe(
  Options.withDescription("the SQLite database (default ./.proctor/proctor.db, or $PROCTOR_DB); :memory: for a throwaway one"),
  Options.optional
)
const moduleOption = Options.text("module").pipe(
  Options.withAlias("m"),
  Options.withDescription("a TS/JS module whose exported procedures to register (repeatable; also $PROCTOR_MODULES)"),
  Options.repeated
)
const noExamples = Options.boolean("no-examples").pipe(
  Options.withDescription("do not register the procedures of the repository's examples/ folder")
)
const server = Options.text("server").pipe(
  Options.withDescription("the URL of a running `proctor serve` to talk to (or $PROCTOR_SERVER); found automatically for the same database"),
  Options.optional
)
const token = Options.text("token").pipe(
  Options.withDescription("the server's token (or $PROCTOR_TOKEN)"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("print JSON instead of text"))
const timeout = (seconds: number, what: string) =>
  Options.integer("timeout").pipe(
    Options.withDescription(`how many seconds to follow ${what} (default ${seconds})`),
    Options.withDefault(seconds)
  )

const common = { db, module: moduleOption, noExamples, server, token }

interface Common {
  readonly db: Option.Option<string>
  readonly module: ReadonlyArray<string>
  readonly noExamples: boolean
  readonly server: Option.Option<string>
  readonly token: Option.Option<string>
}

const env = (name: string) => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : v
}

const tokenOf = (c: Common) => Option.getOrUndefined(c.token) ?? env("PROCTOR_TOKEN")

/** Where the command's executions live: the server named or found, else this process. */
const target = (c: Common, extra: ReadonlyArray<Modules.Loaded> = [], recover = false) =>
  Effect.gen(function*() {
    const explicit = Option.getOrUndefined(c.server) ?? env("PROCTOR_SERVER")
    if (explicit !== undefined) return { _tag: "Remote", url: explicit, token: tokenOf(c) } as const
    const dbPath = resolveDbPath(Option.getOrUndefined(c.db))
    const found = Op.discoverServer(dbPath)
    if (Option.isSome(found)) return { _tag: "Remote", url: found.value, token: tokenOf(c), via: Op.serverFile(dbPath) } as const
    const { loaded, warnings } = yield* Modules.loadAll({
      modules: [...c.module, ...Modules.envModules()],
      examples: !c.noExamples && env("PROCTOR_EXAMPLES") !== "0"
    })
    for (const w of warnings) yield* Out.errorLine(`warning: ${w}`)
    const keys = new Set(loaded.map((l) => `${l.procedure.name}@${l.procedure.version}`))
    const all = [...extra.filter((l) => !keys.has(`${l.procedure.name}@${l.procedure.version}`)), ...loaded]
    return { _tag: "Local", dbPath, loaded: all, recover } as const
  })

/** Runs `f` with an operator for the command's target. */
const withOperator = <A, E, R>(
  c: Common,
  f: (op: Op.OperatorService) => Effect.Effect<A, E, R>,
  extra?: ReadonlyArray<Modules.Loaded>
) =>
  Effect.flatMap(target(c, extra), (t) => Effect.flatMap(Op.Operator, f).pipe(Effect.provide(Op.layer(t))))

const parseJson = (text: string, what: string, example: string) =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) =>
      usage(`${what} is not valid JSON (${e instanceof Error ? e.message : String(e)}). Quote it for your shell, e.g. ${example}`)
  })

const acceptsOf = (procedures: ReadonlyArray<ProcedureView>) => (s: Snapshot): ReadonlyArray<string> => {
  const p = procedures.find((x) => x.name === s.procedure && x.version === s.version)
  return p?.states.find((x) => x.name === s.state)?.accepts ?? []
}

/** settled: nothing more will happen without an event, a timer, or a person */
const settled = (s: Snapshot) => s.status !== "running" && s.status !== "compensating"

const failedStatuses = new Set(["failed", "cancelled", "rolled_back", "needs_intervention"])

/**
 * Polls the executions until `done` holds for all of them, drawing progress, for at
 * most `seconds`. Returns the last snapshots.
 */
const follow = (
  op: Op.OperatorService,
  ids: ReadonlyArray<string>,
  options: {
    readonly seconds: number
    readonly done: (s: Snapshot) => boolean
    readonly progress: boolean
  }
) =>
  Effect.gen(function*() {
    const output = yield* Out.Output
    const progress = yield* Out.makeProgress
    const deadline = (yield* Clock.currentTimeMillis) + options.seconds * 1000
    const latest = new Map<string, Snapshot>()
    const tick = Duration.millis(output.isTTY ? 100 : 200)
    while (true) {
      for (const id of ids) {
        const known = latest.get(id)
        if (known !== undefined && isTerminal(known.status)) continue
        latest.set(id, yield* op.get(id))
      }
      const snapshots = ids.map((id) => latest.get(id)!)
      const now = yield* Clock.currentTimeMillis
      if (options.progress) yield* progress.update(snapshots, now)
      if (snapshots.every(options.done)) return { snapshots, timedOut: false }
      if (now >= deadline) return { snapshots, timedOut: true }
      yield* Effect.sleep(tick)
    }
  })

// ---------------------------------------------------------------------------
// commands

const runCommand = Command.make(
  "run",
  {
    file: Args.text({ name: "module" }).pipe(Args.withDescription("the TS/JS file that exports the procedures")),
    input: Options.text("input").pipe(Options.withDescription("the input as JSON (default {})"), Options.optional),
    procedure: Options.text("procedure").pipe(
      Options.withDescription("start only this procedure of the module"),
      Options.optional
    ),
    count: Options.integer("count").pipe(Options.withDescription("how many executions of each (default 1)"), Options.withDefault(1)),
    wait: Options.boolean("wait").pipe(
      Options.withDescription("follow until every execution ends, not only until each waits for something")
    ),
    timeout: timeout(600, "the executions"),
    json,
    ...common
  },
  (a) =>
    Effect.gen(function*() {
      if (a.count < 1 || a.count > 10_000) return yield* usage(`--count must be between 1 and 10000, e.g. --count 5`)
      const input = Option.isSome(a.input) ? yield* parseJson(a.input.value, "--input", `--input '{"doc":"q3.pdf"}'`) : {}
      const found = yield* Modules.loadModule(a.file)
      let chosen = found
      const only = Option.getOrUndefined(a.procedure)
      if (only !== undefined) {
        chosen = found.filter((l) => l.procedure.name === only)
        if (chosen.length === 0) {
          return yield* usage(
            `${a.file} exports no procedure named "${only}"; it exports ${found.map((l) => l.procedure.name).join(", ")}. ` +
              `Try --procedure ${found[0]!.procedure.name}`
          )
        }
      }
      yield* withOperator(a, (op) =>
        Effect.gen(function*() {
          const started: Array<Snapshot> = []
          for (const l of chosen) {
            for (let i = 0; i < a.count; i++) {
              started.push(yield* op.start(l.procedure.name, l.procedure.version, input))
            }
          }
          if (!a.json) yield* Out.line(`Started ${started.length} execution${started.length === 1 ? "" : "s"} on the ${op.where}`)
          const result = yield* follow(op, started.map((s) => s.id), {
            seconds: a.timeout,
            done: a.wait ? (s) => isTerminal(s.status) : settled,
            progress: !a.json
          })
          const procedures = yield* op.procedures
          if (a.json) yield* Out.json(result.snapshots)
          else {
            yield* Out.runSummary(result.snapshots, acceptsOf(procedures))
            if (result.timedOut) {
              yield* Out.line(
                `Stopped following after ${a.timeout}s. ` +
                  (op.remote ? "The server keeps running them." : "They continue when a runtime next opens the database (e.g. `proctor serve`).")
              )
            }
          }
          if (result.snapshots.some((s) => failedStatuses.has(s.status))) {
            return yield* Effect.fail(new RunFailed({ count: result.snapshots.filter((s) => failedStatuses.has(s.status)).length }))
          }
        }), found)
    })
).pipe(
  Command.withDescription(
    "Start each procedure a module exports (or --procedure NAME) with --input, and follow them live " +
      "until each ends or waits for an event. Example: proctor run examples/quickstart.ts --input '{\"amount\":250}'"
  )
)

/**
 * Some executions started by `run` failed or need a person. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class RunFailed extends Data.TaggedError("RunFailed")<{ readonly count: number }> {
  override get message() {
    return `${this.count} execution${this.count === 1 ? "" : "s"} did not succeed; see \`proctor show <id>\``
  }
}

const statusNames = Status.literals

const listCommand = Command.make(
  "list",
  {
    status: Options.text("status").pipe(
      Options.withDescription(`only these statuses, comma-separated (${statusNames.join(", ")})`),
      Options.optional
    ),
    procedure: Options.text("procedure").pipe(Options.withDescription("only this procedure"), Options.optional),
    state: Options.text("state").pipe(Options.withDescription("only executions in this state"), Options.optional),
    limit: Options.integer("limit").pipe(Options.withDescription("at most this many (default 50)"), Options.withDefault(50)),
    json,
    ...common
  },
  (a) =>
    Effect.gen(function*() {
      const statuses = Option.isSome(a.status) ? a.status.value.split(",").map((s) => s.trim()).filter((s) => s !== "") : []
      const bad = statuses.filter((s) => !(statusNames as ReadonlyArray<string>).includes(s))
      if (bad.length > 0) {
        return yield* usage(`unknown status ${bad.join(", ")}; use one of ${statusNames.join(", ")}, e.g. --status waiting,paused`)
      }
      if (a.limit < 1 || a.limit > 1000) return yield* usage("--limit must be between 1 and 1000, e.g. --limit 20")
      yield* withOperator(a, (op) =>
        Effect.gen(function*() {
          const rows = yield* op.list({
            ...(statuses.length > 0 ? { status: statuses as Array<Status> } : {}),
            ...(Option.isSome(a.procedure) ? { procedure: a.procedure.value } : {}),
            ...(Option.isSome(a.state) ? { state: a.state.value } : {}),
            limit: a.limit
          })
          if (a.json) yield* Out.json(rows)
          else yield* Out.executions(rows, yield* Clock.currentTimeMillis)
        }))
    })
).pipe(Command.withDescription("List executions, filtered by status, procedure or state. Example: proctor list --status waiting --procedure expense"))

const idArg = Args.text({ name: "id" }).pipe(Args.withDescription("the execution's id (see `proctor list`)"))

const showCommand = Command.make("show", { id: idArg, json, ...common }, (a) =>
  withOperator(a, (op) =>
    Effect.gen(function*() {
      const snapshot = yield* op.get(a.id)
      const [history, errors, procedures] = yield* Effect.all([op.history(a.id), op.errors(a.id), op.procedures])
      if (a.json) return yield* Out.json({ snapshot, history, errors })
      yield* Out.execution(snapshot, history, errors, yield* Clock.currentTimeMillis, acceptsOf(procedures)(snapshot))
    }))).pipe(Command.withDescription("Show one execution: its state, context, history and errors. Example: proctor show 3f2c…"))

const sendCommand = Command.make(
  "send",
  {
    id: idArg,
    tag: Args.text({ name: "EventTag" }).pipe(Args.withDescription("the event's tag, e.g. Approve")),
    body: Args.text({ name: "JSON" }).pipe(Args.withDescription("the event's fields as a JSON object"), Args.optional),
    timeout: timeout(10, "the execution after the event"),
    json,
    ...common
  },
  (a) =>
    Effect.gen(function*() {
      const fields = Option.isSome(a.body) ? yield* parseJson(a.body.value, "The event", `'{"by":"ann"}'`) : {}
      if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
        return yield* usage(`The event's fields must be a JSON object, e.g. proctor send ${a.id} ${a.tag} '{"by":"ann"}'`)
      }
      yield* withOperator(a, (op) =>
        Effect.gen(function*() {
          const before = yield* op.get(a.id)
          yield* op.send(a.id, { ...(fields as Record<string, unknown>), _tag: a.tag })
          const result = yield* follow(op, [a.id], {
            seconds: a.timeout,
            done: (s) => s.seq > before.seq && settled(s),
            progress: false
          })
          const s = result.snapshots[0]!
          if (a.json) return yield* Out.json(s)
          if (s.seq === before.seq) {
            return yield* Out.line(`Sent ${a.tag} to ${a.id}; it is in the inbox and the execution has not moved yet (${s.status} in "${s.state}").`)
          }
          yield* Out.outcome(`Sent ${a.tag} to`, s)
        }))
    })
).pipe(Command.withDescription("Send an event to an execution. Example: proctor send 3f2c… Approve '{\"by\":\"ann\"}'"))

/** pause and cancel: done when the command returns */
const immediateCommand = <N extends "pause" | "cancel">(name: N, verb: string, description: string) =>
  Command.make(name, { id: idArg, json, ...common }, (a) =>
    withOperator(a, (op) =>
      Effect.gen(function*() {
        const after = yield* op.command(name, a.id)
        if (a.json) return yield* Out.json(after)
        yield* Out.outcome(verb, after)
      }))).pipe(Command.withDescription(`${description} Example: proctor ${name} 3f2c…`))

/** resume, rollback and retry: the execution moves on; follow it until it settles */
const followingCommand = <N extends "resume" | "rollback" | "retry">(name: N, verb: string, description: string) =>
  Command.make(name, { id: idArg, timeout: timeout(10, "the execution afterwards"), json, ...common }, (a) =>
    withOperator(a, (op) =>
      Effect.gen(function*() {
        yield* op.command(name, a.id)
        const result = (yield* follow(op, [a.id], { seconds: a.timeout, done: settled, progress: false })).snapshots[0]!
        if (a.json) return yield* Out.json(result)
        yield* Out.outcome(verb, result)
      }))).pipe(Command.withDescription(`${description} Example: proctor ${name} 3f2c…`))

const skipCommand = Command.make(
  "skip",
  {
    id: idArg,
    state: Args.text({ name: "state" }).pipe(Args.withDescription("the state to move to")),
    timeout: timeout(10, "the execution afterwards"),
    json,
    ...common
  },
  (a) =>
    withOperator(a, (op) =>
      Effect.gen(function*() {
        yield* op.skip(a.id, a.state)
        const result = (yield* follow(op, [a.id], { seconds: a.timeout, done: settled, progress: false })).snapshots[0]!
        if (a.json) return yield* Out.json(result)
        yield* Out.outcome(`Moved`, result)
      }))
).pipe(Command.withDescription("Move an execution to another state (e.g. past a step that needs a person). Example: proctor skip 3f2c… done"))

const diagramCommand = Command.make(
  "diagram",
  {
    module: Args.text({ name: "module" }).pipe(Args.withDescription("the TS/JS file that exports the procedures")),
    format: Options.choice("format", ["mermaid", "svg"]).pipe(
      Options.withDescription("mermaid (default) or svg"),
      Options.withDefault("mermaid" as const)
    ),
    procedure: Options.text("procedure").pipe(Options.withDescription("only this procedure"), Options.optional)
  },
  (a) =>
    Effect.gen(function*() {
      const found = yield* Modules.loadModule(a.module)
      const only = Option.getOrUndefined(a.procedure)
      const chosen = only !== undefined ? found.filter((l) => l.procedure.name === only) : found
      if (chosen.length === 0) {
        return yield* usage(
          `${a.module} exports no procedure named "${Option.getOrElse(a.procedure, () => "")}"; try --procedure ${found[0]!.procedure.name}`
        )
      }
      if (a.format === "svg") {
        if (chosen.length > 1) {
          return yield* usage(
            `${a.module} exports ${chosen.length} procedures (${chosen.map((l) => l.procedure.name).join(", ")}); an SVG holds one: add --procedure ${chosen[0]!.procedure.name}`
          )
        }
        return yield* Out.line(Diagram.toSvg(chosen[0]!.procedure))
      }
      yield* Out.line(
        chosen.map((l) => `%% ${l.procedure.name}@${l.procedure.version}\n${Procedure.toMermaid(l.procedure)}`).join("\n\n")
      )
    })
).pipe(Command.withDescription("Print a module's procedures as Mermaid state diagrams, or one as SVG. Example: proctor diagram examples/approval.ts --format svg > approval.svg"))

const proceduresCommand = Command.make("procedures", { json, ...common }, (a) =>
  withOperator(a, (op) =>
    Effect.gen(function*() {
      const procedures = yield* op.procedures
      if (a.json) return yield* Out.json(procedures.map(({ svg: _, ...p }) => p))
      yield* Out.procedures(procedures.map((p) => ({
        name: p.name,
        version: p.version,
        description: p.description,
        source: p.source,
        states: p.states.map((s) => ({ name: s.name, kind: s.kind, accepts: s.accepts }))
      })))
    }))).pipe(Command.withDescription("List the registered procedures, their states and the events each wait accepts. Example: proctor procedures --module ./flows.ts"))

/** the port `serve` listens on unless told otherwise */
const defaultPort = 7878

const serveCommand = Command.make(
  "serve",
  {
    host: Options.text("host").pipe(Options.withDescription("the address to listen on (default 127.0.0.1; others need a token)"), Options.withDefault("127.0.0.1")),
    port: Options.integer("port").pipe(Options.withDescription(`the port (default ${defaultPort}; 0 picks a free one)`), Options.withDefault(defaultPort)),
    db,
    module: moduleOption,
    noExamples,
    token
  },
  (a) =>
    Effect.gen(function*() {
      const secret = Option.getOrUndefined(a.token) ?? env("PROCTOR_TOKEN")
      const bind = Auth.checkBind({ host: a.host, token: secret })
      if (Either.isLeft(bind)) return yield* bind.left
      if (a.port < 0 || a.port > 65535) return yield* usage("--port must be between 0 and 65535, e.g. --port 8080")
      const dbPath = resolveDbPath(Option.getOrUndefined(a.db))
      const running = Op.discoverServer(dbPath)
      if (Option.isSome(running)) {
        return yield* usage(`${dbPath} is already served at ${running.value}; open that, or serve another database with --db PATH`)
      }
      const { loaded, warnings } = yield* Modules.loadAll({
        modules: [...a.module, ...Modules.envModules()],
        examples: !a.noExamples && env("PROCTOR_EXAMPLES") !== "0"
      })
      for (const w of warnings) yield* Out.errorLine(`warning: ${w}`)
      const runtime = Runtime.layer({ procedures: loaded.map((l) => l.procedure) }).pipe(Layer.provide(storeLayer(dbPath)))
      const app = Server.layerNode({ host: a.host, port: a.port, token: secret }).pipe(Layer.provide(runtime))
      yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(app).pipe(
          Effect.catchTag("ServeError", (e) => Effect.fail(new ListenFailed({ host: a.host, port: a.port, cause: e.cause })))
        )
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
        yield* Out.line(`Press Ctrl-C to stop.`)
        // serves until the process is interrupted (Ctrl-C / SIGTERM)
        return yield* Effect.never
      }))
    })
).pipe(Command.withDescription("Serve the HTTP API, its docs and the live dashboard. Example: proctor serve --port 7878 (then open http://127.0.0.1:7878/)"))

const mcpCommand = Command.make(
  "mcp",
  {
    db,
    workflows: Options.text("workflows").pipe(Options.withDescription("the folder of workflow folders"), Options.optional),
    root: Options.text("root").pipe(Options.withDescription("target files must stay inside this folder (default: the current folder)"), Options.optional),
    maxPhaseBytes: Options.integer("max-phase-bytes").pipe(Options.withDescription("the most evidence one phase may hold, in bytes of JSON (default 10485760)"), Options.optional),
    maxSessionBytes: Options.integer("max-session-bytes").pipe(Options.withDescription("the most evidence one session may record, in bytes of JSON (default 16777216)"), Options.optional)
  },
  (a) =>
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
      const options = yield* Effect.try({ try: () => mcp.optionsFromArgv(argv), catch: (e) => usage((e as Error).message) })
      yield* mcp.runMcp(options)
    })
).pipe(Command.withDescription("Serve the MCP server over stdio (for AI agents). Example: proctor mcp --workflows ./workflows"))

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

/**
 * `proctor mcp` could not load the MCP server's modules; `cause` is why. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class McpUnavailable extends Data.TaggedError("McpUnavailable")<{ readonly cause: unknown }> {
  override get message() {
    const why = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `The MCP server could not be loaded: ${why}. Reinstall Proctor (npm ci), or run npm run build in a checkout.`
  }
}

/**
 * The commands, for documentation and tests: name → command.
 *
 * @since 0.1.0
 * @category commands
 */
export const commands = {
  run: runCommand,
  list: listCommand,
  show: showCommand,
  send: sendCommand,
  pause: immediateCommand("pause", "Paused", "Pause a running or waiting execution (a running step is interrupted and re-runs on resume)."),
  resume: followingCommand("resume", "Resumed", "Resume a paused execution."),
  cancel: immediateCommand("cancel", "Cancelled", "Cancel an execution (no compensation runs)."),
  rollback: followingCommand("rollback", "Rolled back", "Run the compensations of completed steps in reverse order, then end rolled_back."),
  retry: followingCommand("retry", "Retried", "Run the current step again, for an execution that needs intervention."),
  skip: skipCommand,
  diagram: diagramCommand,
  procedures: proceduresCommand,
  serve: serveCommand,
  mcp: mcpCommand
}

const root = Command.make("proctor", {}, () =>
  Effect.fail(usage("Choose a command, e.g. `proctor list` or `proctor run <module>`; `proctor --help` lists them all."))).pipe(
    Command.withDescription("Proctor: run, drive and watch durable state-machine procedures."),
    Command.withSubcommands([
      commands.run,
      commands.list,
      commands.show,
      commands.send,
      commands.pause,
      commands.resume,
      commands.cancel,
      commands.rollback,
      commands.retry,
      commands.skip,
      commands.diagram,
      commands.procedures,
      commands.serve,
      commands.mcp
    ])
  )

const cli = Command.run(root, { name: "proctor", version: "0.1.0" })

/** Exit code 2: the user typed something wrong. */
const isUsage = (e: unknown): boolean => {
  const tag = (e as { _tag?: unknown })?._tag
  return tag === "UsageError" || tag === "ValidationError" || tag === "ModuleLoadError" || tag === "TokenRequired"
}

const commandOf = (argv: ReadonlyArray<string>) => argv.find((a) => Object.hasOwn(commands, a))

/**
 * Runs the CLI on `argv` (without the `node script` prefix) and returns the exit code.
 * Everything is printed through `Output`.
 *
 * @since 0.1.0
 * @category entry points
 */
export const runCli = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const output = yield* Out.Output
    return yield* cli(["node", "proctor", ...argv]).pipe(
      Effect.as(0),
      Effect.catchAll((e) =>
        Effect.gen(function*() {
          if (CliValidationError.isValidationError(e)) {
            const cmd = commandOf(argv)
            yield* Out.errorLine(`Run \`proctor ${cmd === undefined ? "" : `${cmd} `}--help\` to see how to use it.`)
            return 2
          }
          const error = e as { readonly message?: unknown; readonly _tag?: unknown }
          const message = typeof error.message === "string" && error.message !== ""
            ? error.message
            : typeof error._tag === "string" ? error._tag : String(e)
          yield* Out.errorLine(`Error: ${message}`)
          if (error._tag === "InvalidTransition" && message.includes("is not registered")) {
            yield* Out.errorLine("Register its procedure with --module PATH (or PROCTOR_MODULES), or run the command against the server that runs it.")
          }
          return isUsage(e) ? 2 : 1
        })
      ),
      Effect.withConsole(Out.consoleFor(output)),
      Effect.provide(CliConfig.layer({ showBuiltIns: false }))
    )
  })
