/**
 * The `proctor` command line: its commands and their options. What each command does is
 * in `actions.ts` (and `serve.ts`), imported only when a command runs, so that `--help`,
 * `-v` and usage errors load nothing but `@effect/cli`.
 *
 * Exit codes: 0 ok, 1 the operation failed, 2 bad usage (with what to type instead),
 * 130 interrupted (Ctrl-C).
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as CliValidationError from "@effect/cli/ValidationError"
import * as fs from "node:fs"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { maxReasonLength } from "../internal/limits.js"
import { listStatuses, statusNames, usage } from "./args.js"
import * as Out from "./output.js"
import * as Report from "./report.js"
import * as Rollout from "./rollout.js"

export { type CommonArgs, statusNames, UsageError } from "./args.js"

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

/** The version in package.json (two folders up from both src/cli and dist/cli). */
export const version: string = (() => {
  try {
    return String(JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version)
  } catch {
    return "unknown"
  }
})()

const actions = Effect.promise(() => import("./actions.js"))
const servers = Effect.promise(() => import("./serve.js"))
const validations = Effect.promise(() => import("./validate.js"))

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
  Options.withDescription("do not register the procedures of examples/ (only loaded in a clone of Proctor's repository)")
)
const server = Options.text("server").pipe(
  Options.withDescription("the URL of a running `proctor serve` to talk to (or $PROCTOR_SERVER); found automatically for the same database"),
  Options.optional
)
const token = Options.text("token").pipe(
  Options.withDescription("the server's token (or $PROCTOR_TOKEN)"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("print JSON instead of text (errors too)"))
const timeout = (seconds: number, what: string) =>
  Options.integer("timeout").pipe(
    Options.withDescription(`how many seconds to follow ${what} (default ${seconds})`),
    Options.withDefault(seconds)
  )

const common = { db, module: moduleOption, noExamples, server, token }

const idArg = Args.text({ name: "id" }).pipe(Args.withDescription("the execution's id (see `proctor list`)"))

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
    tenant: Options.text("tenant").pipe(
      Options.withDescription("start them for this tenant (its quotas apply; `proctor list --tenant` finds them)"),
      Options.optional
    ),
    wait: Options.boolean("wait").pipe(
      Options.withDescription("follow until every execution ends, not only until each waits for something")
    ),
    timeout: timeout(600, "the executions"),
    json,
    ...common
  },
  (a) => Effect.flatMap(actions, (m) => m.run(a))
).pipe(
  Command.withDescription(
    "Start each procedure a module exports (or --procedure NAME) with --input, and follow them live " +
      "until each ends or waits for an event. Example: proctor run examples/quickstart.ts --input '{\"amount\":250}'"
  )
)

const listCommand = Command.make(
  "list",
  {
    status: Options.text("status").pipe(
      Options.withDescription(`only these statuses, comma-separated (${statusNames.join(", ")})`),
      Options.optional
    ),
    procedure: Options.text("procedure").pipe(Options.withDescription("only this procedure"), Options.optional),
    state: Options.text("state").pipe(Options.withDescription("only executions in this state"), Options.optional),
    tenant: Options.text("tenant").pipe(Options.withDescription("only executions started for this tenant"), Options.optional),
    limit: Options.integer("limit").pipe(Options.withDescription("at most this many (default 50)"), Options.withDefault(50)),
    json,
    ...common
  },
  (a) => Effect.flatMap(listStatuses(a.status, a.limit), (statuses) => Effect.flatMap(actions, (m) => m.list({ ...a, statuses })))
).pipe(Command.withDescription(
  "List executions, filtered by status, procedure, state or tenant. Reads the database read-only, so it works while " +
    "another process owns it. Example: proctor list --status waiting --procedure expense"
))

const showCommand = Command.make("show", { id: idArg, json, ...common }, (a) => Effect.flatMap(actions, (m) => m.show(a))).pipe(
  Command.withDescription(
    "Show one execution: its state, context, history and errors (read-only, like list). Example: proctor show 3f2c…"
  )
)

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
  (a) => Effect.flatMap(actions, (m) => m.send(a))
).pipe(Command.withDescription("Send an event to an execution. Example: proctor send 3f2c… Approve '{\"by\":\"ann\"}'"))

/** pause and cancel: done when the command returns */
const immediateCommand = <N extends "pause" | "cancel">(name: N, verb: string, description: string) =>
  Command.make(name, { id: idArg, json, ...common }, (a) => Effect.flatMap(actions, (m) => m.immediate(name, verb, a))).pipe(
    Command.withDescription(`${description} Example: proctor ${name} 3f2c…`)
  )

/** the longest `--reason`: the core's bound (`Execution.maxReasonLength`), checked before anything is loaded */
const maxReason = maxReasonLength

const cancelCommand = Command.make(
  "cancel",
  {
    id: idArg,
    reason: Options.text("reason").pipe(
      Options.withDescription(`why, recorded on the history's cancel row (1 to ${maxReason} characters; \`proctor show\` prints it)`),
      Options.optional
    ),
    json,
    ...common
  },
  (a) =>
    Effect.gen(function*() {
      const reason = Option.getOrUndefined(a.reason)
      if (reason !== undefined && (reason.length === 0 || reason.length > maxReason)) {
        return yield* usage(
          `--reason must have 1 to ${maxReason} characters (it has ${reason.length}); say why briefly, e.g. --reason "the document was withdrawn", or leave it out`
        )
      }
      yield* Effect.flatMap(actions, (m) => m.immediate("cancel", "Cancelled", { ...a, reason }))
    })
).pipe(Command.withDescription(
  "Cancel an execution (no compensation runs), with an optional reason kept in its history. " +
    "Example: proctor cancel 3f2c… --reason \"the document was withdrawn\""
))

/** resume, rollback and retry: the execution moves on; the command follows it until it settles */
const followingCommand = <N extends "resume" | "rollback" | "retry">(name: N, verb: string, description: string) =>
  Command.make(
    name,
    { id: idArg, timeout: timeout(10, "the execution afterwards"), json, ...common },
    (a) => Effect.flatMap(actions, (m) => m.following(name, verb, a))
  ).pipe(Command.withDescription(`${description} Example: proctor ${name} 3f2c…`))

const skipCommand = Command.make(
  "skip",
  {
    id: idArg,
    state: Args.text({ name: "state" }).pipe(Args.withDescription("the state to move to")),
    timeout: timeout(10, "the execution afterwards"),
    json,
    ...common
  },
  (a) => Effect.flatMap(actions, (m) => m.following("skip", "Moved", a))
).pipe(Command.withDescription("Move an execution to another state (e.g. past a step that needs a person). Example: proctor skip 3f2c… done"))

const migrateCommand = Command.make(
  "migrate",
  {
    target: Args.text({ name: "id | name@version" }).pipe(Args.withDescription("an execution, or every execution of a version (e.g. deploy@1) not ended")),
    to: Options.integer("to").pipe(Options.withDescription("the version to move to (a migration to it must be declared in the runtime)")),
    json,
    ...common
  },
  (a) => Effect.flatMap(actions, (m) => m.migrate(a))
).pipe(Command.withDescription(
  "Move an execution (or every execution of a version) to another version by a declared migration, at a safe point: never during a step. " +
    "Example: proctor migrate deploy@1 --to 2"
))

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
  (a) => Effect.flatMap(actions, (m) => m.diagram(a))
).pipe(Command.withDescription("Print a module's procedures as Mermaid state diagrams, or one as SVG. Example: proctor diagram examples/approval.ts --format svg > approval.svg"))

const proceduresCommand = Command.make("procedures", { json, ...common }, (a) => Effect.flatMap(actions, (m) => m.procedures(a))).pipe(
  Command.withDescription("List the procedures the modules export (or a server runs), their states and the events each wait accepts. Example: proctor procedures --module ./flows.ts")
)

const dependenciesCommand = Command.make("dependencies", { json, ...common }, (a) => Effect.flatMap(actions, (m) => m.dependencies(a))).pipe(
  Command.withDescription("Show the dependencies the procedures' steps call: each circuit breaker's state, bulkhead and rate limit, and counts of calls, failures and refusals (a server's, or a new runtime's). Example: proctor dependencies --server http://127.0.0.1:7878")
)

const validateCommand = Command.make(
  "validate",
  { db, module: moduleOption, noExamples, json: Options.boolean("json").pipe(Options.withDescription("print the report as JSON instead of Markdown")) },
  (a) => Effect.flatMap(validations, (m) => m.validate(a))
).pipe(Command.withDescription(
  "Check a deployment and print a readiness report (Markdown, or --json): each procedure's definition checks, the five flow patterns, " +
    "rollback order, 1,000 concurrent executions, crash recovery (a process killed with SIGKILL, then resumed), the transition overhead " +
    "and the memory per execution, then READY or NOT READY (exit code 1) with the reason of each failed check. It runs in a new folder " +
    "beside --db, removed afterwards; the database itself is not opened. Takes about half a minute. Example: proctor validate --module ./flows.ts"
))

/** the port `serve` listens on unless told otherwise */
const defaultPort = 7878

const workflowsOption = Options.text("workflows").pipe(
  Options.withDescription("the folder of workflow folders the MCP tool runs (default ./workflows, else the bundled ones)"),
  Options.optional
)
const rootOption = Options.text("root").pipe(Options.withDescription("the MCP tool's target files must stay inside this folder (default: the current folder)"), Options.optional)

const serveCommand = Command.make(
  "serve",
  {
    host: Options.text("host").pipe(Options.withDescription("the address to listen on (default 127.0.0.1; others need a token)"), Options.withDefault("127.0.0.1")),
    port: Options.integer("port").pipe(Options.withDescription(`the port (default ${defaultPort}; 0 picks a free one)`), Options.withDefault(defaultPort)),
    db,
    module: moduleOption,
    noExamples,
    token,
    tokenName: Options.text("token-name").pipe(
      Options.withDescription("who requests with the token are recorded as in the audit log: http:<name> (default: token)"),
      Options.optional
    ),
    auditLog: Options.text("audit-log").pipe(
      Options.withDescription("append one JSON line per committed change and request, with who asked, to this file (rotated at 10 MiB; or $PROCTOR_AUDIT_LOG)"),
      Options.optional
    ),
    workflows: workflowsOption,
    root: rootOption
  },
  (a) => Effect.flatMap(servers, (m) => m.serve(a))
).pipe(
  Command.withDescription(
    "Serve the HTTP API, its docs, the live dashboard and the MCP tool (at /mcp, for several agents at once). Example: proctor serve --port 7878 (then open http://127.0.0.1:7878/)"
  )
)

const mcpCommand = Command.make(
  "mcp",
  {
    db,
    workflows: workflowsOption,
    root: rootOption,
    maxPhaseBytes: Options.integer("max-phase-bytes").pipe(Options.withDescription("the most evidence one phase may hold, in bytes of JSON (default 10485760)"), Options.optional),
    maxSessionBytes: Options.integer("max-session-bytes").pipe(Options.withDescription("the most evidence one session may record, in bytes of JSON (default 16777216)"), Options.optional)
  },
  (a) => Effect.flatMap(servers, (m) => m.mcp(a))
).pipe(Command.withDescription("Serve the MCP server over stdio (for AI agents). Example: proctor mcp --workflows ./workflows"))

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
  cancel: cancelCommand,
  rollback: followingCommand("rollback", "Rolled back", "Run the compensations of completed steps in reverse order, then end rolled_back."),
  retry: followingCommand("retry", "Retried", "Run the current step again, for an execution that needs intervention."),
  skip: skipCommand,
  migrate: migrateCommand,
  rollout: Rollout.make({ common, json, reasonLength: maxReason }),
  diagram: diagramCommand,
  procedures: proceduresCommand,
  dependencies: dependenciesCommand,
  validate: validateCommand,
  serve: serveCommand,
  mcp: mcpCommand
}

const root = Command.make("proctor", {}, () =>
  Effect.fail(usage("Choose a command, e.g. `proctor list` or `proctor run <module>`; `proctor --help` lists them all."))).pipe(
    Command.withDescription("Proctor: run, drive and watch durable state-machine procedures. `proctor -v` prints the version; `--log-level debug` (anywhere) shows the runtime's logs on stderr."),
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
      commands.migrate,
      commands.rollout,
      commands.diagram,
      commands.procedures,
      commands.dependencies,
      commands.validate,
      commands.serve,
      commands.mcp
    ])
  )

const cli = Command.run(root, { name: "proctor", version })

const commandOf = (argv: ReadonlyArray<string>) => argv.find((a) => Object.hasOwn(commands, a))

/**
 * `--log-level` is an option of `@effect/cli` itself, which reads it only before the
 * command: moved there from wherever it was typed (`proctor list --log-level debug`).
 */
const hoistLogLevel = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const i = argv.findIndex((a) => a === "--log-level" || a.startsWith("--log-level="))
  if (i < 0) return argv
  const n = argv[i]!.includes("=") ? 1 : 2
  return [...argv.slice(i, i + n), ...argv.slice(0, i), ...argv.slice(i + n)]
}

/**
 * The help of a subcommand of a command (`proctor rollout start --help`): @effect/cli's
 * usage line leaves the parent out (`$ proctor start …`), so it is put back in what is
 * printed. Only a usage line that starts with the subcommand's name is touched, which no
 * command's own help does.
 */
const nestedHelp = (argv: ReadonlyArray<string>): ((output: Out.OutputService) => Out.OutputService) | undefined => {
  const at = argv.findIndex((a) => Object.hasOwn(commands, a))
  const [parent, child] = [argv[at], argv[at + 1]]
  if (at < 0 || parent === undefined || child === undefined || child.startsWith("-")) return undefined
  if (!argv.includes("--help") && !argv.includes("-h")) return undefined
  const usage = new RegExp(`^(\\$ proctor )(${child.replace(/[^\w-]/g, "\\$&")} )`, "gm")
  return (output) => ({ ...output, out: (text) => output.out(text.replace(usage, `$1${parent} $2`)) })
}

/**
 * Runs the CLI on `argv` (without the `node script` prefix) and returns the exit code.
 * Everything is printed through `Output`.
 *
 * @since 0.1.0
 * @category entry points
 */
export const runCli = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    if (argv.length === 1 && (argv[0] === "-v" || argv[0] === "--version")) {
      yield* Out.line(version)
      return 0
    }
    const json = argv.includes("--json")
    return yield* Report.reporting(cli(["node", "proctor", ...hoistLogLevel(argv)]), (e, printed) =>
      CliValidationError.isValidationError(e)
        ? Effect.gen(function*() {
          const cmd = commandOf(argv)
          const hint = `Run \`proctor ${cmd === undefined ? "" : `${cmd} `}--help\` to see how to use it.`
          if (json && !printed) {
            const text = Out.stripAnsi(HelpDoc.toAnsiText(e.error)).trim()
            yield* Out.jsonError("ValidationError", `${text} ${hint}`.trim(), 2)
          }
          yield* Out.errorLine(hint)
          return 2
        })
        : Report.failure(e, json, printed)).pipe(
        Effect.provide(CliConfig.layer({ showBuiltIns: false })),
        (run) => {
          const nested = nestedHelp(argv)
          return nested === undefined ? run : Effect.updateService(run, Out.Output, nested)
        }
      )
  })

/**
 * The help of `proctor` and of each command, without colour, keyed by command name (`""`
 * for `proctor --help`). `npm run build` writes it to dist/cli/help.json, from which the
 * compiled `proctor --help` answers without loading `@effect/cli` (or Effect).
 *
 * @since 0.1.0
 * @category entry points
 */
export const helpTexts = Effect.gen(function*() {
  const texts: Record<string, string> = {}
  for (const name of ["", ...Object.keys(commands)]) {
    const capture = Out.makeCapture({ color: false })
    const code = yield* runCli(name === "" ? ["--help"] : [name, "--help"]).pipe(Effect.provideService(Out.Output, capture.service))
    if (code !== 0) return yield* Effect.dieMessage(`proctor ${name} --help exited ${code}: ${capture.stderr()}`)
    texts[name] = capture.stdout()
  }
  return texts
})
