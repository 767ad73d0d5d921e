/**
 * The MCP server: one `workflow` tool over stdio, backed by the Runtime and the SQLite
 * store. `runMcp` serves until stdin closes; run it standalone with
 * `npx tsx src/mcp/main.ts [--db PATH] [--workflows DIR] [--root DIR]`.
 *
 * stdout carries the protocol: logs go to stderr, and `console.log` is sent to stderr
 * while the server runs so that no library can corrupt the stream.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import type { Scope } from "effect"
import { Deferred, Effect, Either, Layer, Logger, LogLevel, Runtime as EffectRuntime } from "effect"
import type { DefinitionError, StoreError } from "../Errors.js"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as Actions from "./actions.js"
import type { LoadProblem } from "./loader.js"
import { load } from "./loader.js"
import type { EvidenceLimits } from "./procedure.js"
import { compile, defaultLimits } from "./procedure.js"
import * as Protocol from "./protocol.js"
import * as McpStore from "./store.js"
import { dispatch } from "./tool.js"
import type { ToolResult } from "./toolSpec.js"
import { SERVER_INFO, tool } from "./toolSpec.js"
import { stdio } from "./transport.js"

/**
 * Options of `runMcp`.
 *
 * @since 0.1.0
 * @category models
 */
export interface McpOptions {
  /** the SQLite file of the sessions (`":memory:"` for a throwaway server) */
  readonly db: string
  /** the folder of workflow folders */
  readonly workflowsDir: string
  /** target files must stay inside this folder */
  readonly workspaceRoot: string
  /** the most evidence one phase may hold, in bytes of JSON. @default 10485760 (10 MiB) */
  readonly maxPhaseEvidenceBytes?: number | undefined
  /** the most evidence one session may record over its life, in bytes of JSON. @default 16777216 (16 MiB) */
  readonly maxSessionEvidenceBytes?: number | undefined
}

/**
 * The evidence limits of the options, each defaulted.
 *
 * @since 0.1.0
 * @category models
 */
export const limitsOf = (options: Pick<McpOptions, "maxPhaseEvidenceBytes" | "maxSessionEvidenceBytes">): EvidenceLimits => ({
  phaseBytes: options.maxPhaseEvidenceBytes ?? defaultLimits.phaseBytes,
  sessionBytes: options.maxSessionEvidenceBytes ?? defaultLimits.sessionBytes
})

/**
 * The workflows shipped with Proctor (the repository's `workflows/` folder).
 *
 * @since 0.1.0
 * @category constants
 */
export const bundledWorkflowsDir: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../workflows")

/**
 * `./workflows` when it exists, else the bundled workflows.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultWorkflowsDir = (cwd: string = process.cwd()): string => {
  const local = path.resolve(cwd, "workflows")
  return fs.existsSync(local) ? local : bundledWorkflowsDir
}

/** Sends `console.log` and `console.info` to stderr while the server runs. */
const guardStdout = Effect.acquireRelease(
  Effect.sync(() => {
    const c = globalThis.console
    const saved = { log: c.log, info: c.info, debug: c.debug }
    c.log = c.error
    c.info = c.error
    c.debug = c.error
    return saved
  }),
  (saved) =>
    Effect.sync(() => {
      Object.assign(globalThis.console, saved)
    })
)

const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))

/**
 * Loads the workflows and compiles them; a workflow whose procedure is not valid is
 * reported as a load problem, like a bad file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadWorkflows = (workflowsDir: string, limits: EvidenceLimits = defaultLimits) =>
  Effect.map(load(workflowsDir), (loaded) => {
    const workflows = new Map<string, Actions.Entry>()
    const problems: Array<LoadProblem> = [...loaded.problems]
    for (const workflow of loaded.workflows) {
      // makeUnsafe throws the first DefinitionError it finds; validate finds the others
      const valid = Either.flatMap(
        Either.try({ try: () => compile(workflow, limits), catch: (e) => (e instanceof Error ? e : new Error(String(e))) }),
        (procedure) => Either.map(Procedure.validate(procedure), () => procedure)
      )
      if (Either.isLeft(valid)) {
        problems.push({ path: path.join(workflow.path, "workflow.json"), problem: valid.left.message })
        continue
      }
      workflows.set(workflow.name, { workflow, procedure: valid.right })
    }
    return { workflows, problems }
  })

/**
 * Runs `effect` as the server runs: scoped, its logs as logfmt on stderr from Info up, and
 * `console.log` sent to stderr, since stdout carries the protocol.
 *
 * @since 0.1.0
 * @category entry points
 */
export const asServer = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<A, E> =>
  Effect.zipRight(guardStdout, effect).pipe(Effect.scoped, Effect.provide(stderrLogger), Logger.withMinimumLogLevel(LogLevel.Info))

/**
 * What the tool's actions need besides the Runtime, from the options: the workflows loaded
 * (a workflow that does not load is left out, and listed in `problems`), the workspace root
 * and the evidence limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadEnvironment = (
  options: Pick<McpOptions, "workflowsDir" | "workspaceRoot" | "maxPhaseEvidenceBytes" | "maxSessionEvidenceBytes">
): Effect.Effect<Actions.Environment> =>
  Effect.gen(function*() {
    const limits = limitsOf(options)
    const { problems, workflows } = yield* loadWorkflows(options.workflowsDir, limits)
    return { workflows, problems, workspaceRoot: path.resolve(options.workspaceRoot), limits }
  })

/**
 * The procedures of the environment's workflows, for the Runtime that serves their sessions.
 *
 * @since 0.1.0
 * @category getters
 */
export const proceduresOf = (environment: Actions.Environment): ReadonlyArray<Procedure.Any> =>
  [...environment.workflows.values()].map((e) => e.procedure)

/**
 * The `workflow` tool's call over the Runtime in context: every transport (stdio, Streamable
 * HTTP) runs this one. It never fails: a failure is a result with `isError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeToolCall = (environment: Actions.Environment): Effect.Effect<(name: string, args: unknown) => Effect.Effect<ToolResult>, never, Runtime.Runtime> =>
  Effect.map(Actions.make(environment), (handlers) => (name, args) => dispatch(handlers, name, args))

/**
 * The `workflow` tool's server, ready to answer calls for the life of the scope: the
 * workflows loaded, and the runtime built on the SQLite store at `options.db` (which
 * resumes the sessions stored there).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeToolServer = (options: McpOptions): Effect.Effect<Protocol.ToolServer, StoreError | DefinitionError, Scope.Scope> =>
  Effect.gen(function*() {
    const environment = yield* loadEnvironment(options)
    for (const p of environment.problems) yield* Effect.logWarning(`Workflow not loaded: ${p.path}: ${p.problem}`)
    yield* Effect.logInfo(
      `Proctor MCP server: ${environment.workflows.size} workflow(s) from ${path.resolve(options.workflowsDir)}, db ${options.db}, root ${environment.workspaceRoot}`
    )
    const context = yield* Layer.build(Runtime.layer({ procedures: proceduresOf(environment) }).pipe(Layer.provide(McpStore.layer(options.db))))
    const call = yield* Effect.provide(makeToolCall(environment), context)
    const run = EffectRuntime.runPromise(yield* Effect.runtime<never>())
    return { ...SERVER_INFO, tools: [tool], call: (name, args) => run(call(name, args)) }
  })

/**
 * Serves the `workflow` tool over stdio (process.stdin / process.stdout) until stdin
 * closes. Sessions live in the SQLite store at `options.db`.
 *
 * @since 0.1.0
 * @category entry points
 */
export const runMcp = (options: McpOptions): Effect.Effect<void, StoreError | DefinitionError> =>
  asServer(Effect.gen(function*() {
    const server = yield* makeToolServer(options)
    const transport = stdio()
    const closed = yield* Deferred.make<void>()
    transport.onclose = () => Deferred.unsafeDone(closed, Effect.void)
    yield* Effect.acquireRelease(Effect.promise(() => Protocol.serve(transport, server)), () => Effect.promise(() => transport.close()))
    // the server's lifetime is the client's: it ends when stdin closes (or on SIGINT/SIGTERM)
    yield* Deferred.await(closed)
  }))

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(name)
  if (i >= 0) return argv[i + 1]
  const inline = argv.find((a) => a.startsWith(`${name}=`))
  return inline?.slice(name.length + 1)
}

const byteFlag = (argv: ReadonlyArray<string>, name: string): number | undefined => {
  const value = flag(argv, name)
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} takes a positive whole number of bytes, e.g. ${name} 1048576; got "${value}".`)
  return n
}

/**
 * The options from command-line flags: `--db PATH` (default `./.proctor/proctor.db`),
 * `--workflows DIR` (default `./workflows`, else the bundled ones), `--root DIR`
 * (default the current directory), `--max-phase-bytes N` and `--max-session-bytes N` (the
 * evidence limits, positive whole numbers of bytes; anything else throws, naming the flag).
 *
 * @since 0.1.0
 * @category entry points
 */
export const optionsFromArgv = (argv: ReadonlyArray<string>): McpOptions => ({
  db: flag(argv, "--db") ?? McpStore.defaultDbPath,
  workflowsDir: flag(argv, "--workflows") ?? defaultWorkflowsDir(),
  workspaceRoot: flag(argv, "--root") ?? process.cwd(),
  maxPhaseEvidenceBytes: byteFlag(argv, "--max-phase-bytes"),
  maxSessionEvidenceBytes: byteFlag(argv, "--max-session-bytes")
})

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href

if (isMain) {
  NodeRuntime.runMain(runMcp(optionsFromArgv(process.argv.slice(2))), { disablePrettyLogger: true })
}
