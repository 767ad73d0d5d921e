/**
 * What the CLI's commands do (their options are declared in `commands.ts`, which imports
 * this module only when a command runs, so `proctor --help` loads none of it). Each
 * action is a thin layer over the `Operator`: a read-only connection for reads, a
 * runtime in this process or a running server for changes; printing is left to `output.ts`.
 *
 * @since 0.1.0
 */
import { Clock, Data, Duration, Effect, Option } from "effect"
import type { Snapshot, Status } from "../Execution.js"
import { allowedOperations, isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import type { CommonArgs } from "./args.js"
import { UsageError } from "./args.js"
import * as Modules from "./modules.js"
import type { ExecutionView } from "./operator.js"
import * as Op from "./operator.js"
import * as Resilience from "../internal/resilience.js"
import * as Dependencies from "./dependencies.js"
import * as Out from "./output.js"
import { rememberedModule, rememberModules, requireDatabase, resolveDbPath } from "./store.js"
import { storedConfiguration, takesEvent } from "../internal/chartView.js"

const usage = (message: string) => new UsageError({ message })

/**
 * @since 0.1.0
 * @category models
 */
export const env = (name: string): string | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : v
}

const tokenOf = (c: CommonArgs) => Option.getOrUndefined(c.token) ?? env("PROCTOR_TOKEN")

/**
 * The procedures `--module`, `PROCTOR_MODULES` and (in a clone of the repository) the
 * examples name, with a warning for each example that would not load.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadNamed = (c: { readonly module: ReadonlyArray<string>; readonly noExamples: boolean }) =>
  Effect.gen(function*() {
    const { loaded, warnings } = yield* Modules.loadAll({
      modules: [...c.module, ...Modules.envModules()],
      examples: !c.noExamples && env("PROCTOR_EXAMPLES") !== "0"
    })
    for (const w of warnings) yield* Out.errorLine(`warning: ${w}`)
    return loaded
  })

const keyOf = (p: { readonly name: string; readonly version: number }) => `${p.name}@${p.version}`

/**
 * The execution's procedure is not among those loaded, and no module was recorded for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcedureNotLoaded extends Data.TaggedError("ProcedureNotLoaded")<{
  readonly id: string
  readonly procedure: string
  readonly command: string
}> {
  override get message() {
    return `Execution ${this.id} runs the procedure ${this.procedure}, which this command has not loaded, and no ` +
      `module was recorded for it. Pass the file that exports it: proctor ${this.command} ${this.id} … --module PATH ` +
      `(or set PROCTOR_MODULES), or use --server URL to reach the process that runs it.`
  }
}

/** The server named (`--server`, `PROCTOR_SERVER`) or found next to the database, if any. */
const serverOf = (c: CommonArgs): Op.Target | undefined => {
  const explicit = Option.getOrUndefined(c.server) ?? env("PROCTOR_SERVER")
  if (explicit !== undefined) return { _tag: "Remote", url: explicit, token: tokenOf(c) }
  const dbPath = resolveDbPath(Option.getOrUndefined(c.db))
  const found = Op.discoverServer(dbPath)
  return Option.isSome(found) ? { _tag: "Remote", url: found.value, token: tokenOf(c), via: Op.serverFile(dbPath) } : undefined
}

/**
 * Where the command's executions live: the server named or found, else this process —
 * read-only for reads; for a change, a runtime with the procedures named, those of
 * `extra`, and the one that started execution `forId` (found from the module recorded
 * for it when it was started here).
 */
const target = (
  c: CommonArgs,
  command: string,
  mode:
    | { readonly read: true }
    | { readonly read: false; readonly extra?: ReadonlyArray<Modules.Loaded>; readonly forId?: string; readonly creates?: boolean }
) =>
  Effect.gen(function*() {
    const server = serverOf(c)
    if (server !== undefined) return server
    const dbPath = resolveDbPath(Option.getOrUndefined(c.db))
    if (mode.read || mode.creates !== true) yield* requireDatabase(dbPath, command)
    if (mode.read) return { _tag: "Read", dbPath } as const
    const named = yield* loadNamed(c)
    const loaded = new Map<string, Modules.Loaded>()
    for (const l of [...(mode.extra ?? []), ...named]) if (!loaded.has(keyOf(l.procedure))) loaded.set(keyOf(l.procedure), l)
    if (mode.forId !== undefined) {
      const s = yield* Effect.flatMap(Op.Operator, (op) => op.get(mode.forId!)).pipe(
        Effect.provide(Op.layer({ _tag: "Read", dbPath }))
      )
      const key = keyOf({ name: s.procedure, version: s.version })
      if (!loaded.has(key)) {
        const file = rememberedModule(dbPath, key)
        const from = file === undefined ? [] : yield* Modules.loadModule(file)
        for (const l of from) if (!loaded.has(keyOf(l.procedure))) loaded.set(keyOf(l.procedure), l)
        if (!loaded.has(key)) return yield* new ProcedureNotLoaded({ id: mode.forId, procedure: key, command })
      }
    }
    return { _tag: "Local", dbPath, loaded: [...loaded.values()], recover: false } as const
  })

/** @internal Runs `f` with an operator for the command's target. */
export const withOperator = <A, E, R>(
  c: CommonArgs,
  command: string,
  mode: Parameters<typeof target>[2],
  f: (op: Op.OperatorService) => Effect.Effect<A, E, R>
) => Effect.flatMap(target(c, command, mode), (t) => Effect.flatMap(Op.Operator, f).pipe(Effect.provide(Op.layer(t))))

const parseJson = (text: string, what: string, example: string) =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) =>
      usage(`${what} is not valid JSON (${e instanceof Error ? e.message : String(e)}). Quote it for your shell, e.g. ${example}`)
  })

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

/** @internal */
export const run = (a: CommonArgs & {
  readonly file: string
  readonly input: Option.Option<string>
  readonly procedure: Option.Option<string>
  readonly count: number
  readonly tenant: Option.Option<string>
  readonly wait: boolean
  readonly timeout: number
  readonly json: boolean
}) =>
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
    yield* withOperator(a, "run", { read: false, extra: found, creates: true }, (op) =>
      Effect.gen(function*() {
        if (!op.remote) rememberModules(resolveDbPath(Option.getOrUndefined(a.db)), chosen)
        const started: Array<Snapshot> = []
        for (const l of chosen) {
          for (let i = 0; i < a.count; i++) {
            started.push(yield* op.start(l.procedure, input, { tenant: Option.getOrUndefined(a.tenant) }))
          }
        }
        if (!a.json) yield* Out.line(`Started ${started.length} execution${started.length === 1 ? "" : "s"} on the ${op.where}`)
        const result = yield* follow(op, started.map((s) => s.id), {
          seconds: a.timeout,
          done: a.wait ? (s) => isTerminal(s.status) : settled,
          progress: !a.json
        })
        if (a.json) yield* Out.json(result.snapshots)
        else {
          const definition = (s: Snapshot) =>
            chosen.find((l) => l.procedure.name === s.procedure && l.procedure.version === s.version)?.procedure ?? { states: {} }
          yield* Out.runSummary(result.snapshots, (s) => allowedOperations(s, definition(s)).events)
          if (result.timedOut) {
            yield* Out.line(
              `Stopped following after ${a.timeout}s. ` +
                (op.remote ? "The server keeps running them." : "They continue when a runtime next opens the database (e.g. `proctor serve`).")
            )
          }
        }
        const failed = result.snapshots.filter((s) => failedStatuses.has(s.status)).length
        if (failed > 0) return yield* new RunFailed({ count: failed })
      }))
  })

/** @internal */
export const list = (a: CommonArgs & {
  readonly statuses: ReadonlyArray<Status>
  readonly procedure: Option.Option<string>
  readonly state: Option.Option<string>
  readonly tenant: Option.Option<string>
  readonly limit: number
  readonly json: boolean
}) =>
  withOperator(a, "list", { read: true }, (op) =>
    Effect.gen(function*() {
      const rows = yield* op.list({
        ...(a.statuses.length > 0 ? { status: a.statuses } : {}),
        ...(Option.isSome(a.procedure) ? { procedure: a.procedure.value } : {}),
        ...(Option.isSome(a.state) ? { state: a.state.value } : {}),
        ...(Option.isSome(a.tenant) ? { tenant: a.tenant.value } : {}),
        limit: a.limit
      })
      if (a.json) yield* Out.json(rows)
      else yield* Out.executions(rows, yield* Clock.currentTimeMillis)
    }))

/**
 * The procedure of a snapshot, when it is cheap to know: named with `--module`, or
 * recorded for this database. Only for showing what a wait accepts; never fails.
 */
const procedureFor = (c: CommonArgs, s: Snapshot) =>
  Effect.gen(function*() {
    const key = keyOf({ name: s.procedure, version: s.version })
    const named = c.module.length > 0 || Modules.envModules().length > 0 ? yield* loadNamed({ ...c, noExamples: true }) : []
    const file = rememberedModule(resolveDbPath(Option.getOrUndefined(c.db)), key)
    const recorded = file === undefined ? [] : yield* Modules.loadModule(file)
    return [...named, ...recorded].find((l) => keyOf(l.procedure) === key)?.procedure
  }).pipe(Effect.orElseSucceed((): Procedure.Any | undefined => undefined))

/** What a read-only `show` can tell without a runtime: the allowed operations by the definition when it is known. */
const localView = (c: CommonArgs, snapshot: Snapshot) =>
  Effect.map(procedureFor(c, snapshot), (procedure): ExecutionView => ({
    allowed: allowedOperations(snapshot, procedure ?? { states: {} }),
    configuration: storedConfiguration(snapshot)
  }))

/** @internal */
export const show = (a: CommonArgs & { readonly id: string; readonly json: boolean }) =>
  withOperator(a, "show", { read: true }, (op) =>
    Effect.gen(function*() {
      const snapshot = yield* op.get(a.id)
      const [history, errors, children] = yield* Effect.all([op.history(a.id), op.errors(a.id), op.list({ parentId: a.id })])
      if (a.json) return yield* Out.json({ snapshot, history, errors, children: children.map((c) => c.id) })
      // what it accepts now and its configuration, by the runtime's own rules: the server's
      // answer, or computed here from its definition when that is known (without it, the
      // commands its status allows and the configuration its snapshot tells)
      const view = op.remote ? yield* op.view(snapshot) : yield* localView(a, snapshot)
      yield* Out.execution(snapshot, history, errors, yield* Clock.currentTimeMillis, view, children)
    }))

/** @internal */
export const send = (a: CommonArgs & {
  readonly id: string
  readonly tag: string
  readonly body: Option.Option<string>
  readonly timeout: number
  readonly json: boolean
}) =>
  Effect.gen(function*() {
    const fields = Option.isSome(a.body) ? yield* parseJson(a.body.value, "The event", `'{"by":"ann"}'`) : {}
    if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
      return yield* usage(`The event's fields must be a JSON object, e.g. proctor send ${a.id} ${a.tag} '{"by":"ann"}'`)
    }
    yield* withOperator(a, "send", { read: false, forId: a.id }, (op) =>
      Effect.gen(function*() {
        const before = yield* op.get(a.id)
        // an event its wait does not handle would be discarded: refuse it, by the runtime's rules
        const events = (yield* op.view(before)).allowed.events
        if (events.length > 0 && !takesEvent(events, a.tag)) {
          return yield* usage(
            `${a.id} waits in "${before.state}" for ${events.join(" or ")}, not ${a.tag} (which it would discard). ` +
              `Send one of those, e.g. proctor send ${a.id} ${events[0]} '{...}'`
          )
        }
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

/** @internal pause and cancel (with its reason, if given): done when the command returns */
export const immediate = (
  name: "pause" | "cancel",
  verb: string,
  a: CommonArgs & { readonly id: string; readonly json: boolean; readonly reason?: string | undefined }
) =>
  withOperator(a, name, { read: false, forId: a.id }, (op) =>
    Effect.gen(function*() {
      const after = name === "pause"
        ? yield* op.command(name, a.id)
        : yield* op.cancel(a.id, a.reason === undefined ? undefined : { reason: a.reason })
      if (a.json) return yield* Out.json(after)
      yield* Out.outcome(verb, after)
    }))

/** @internal resume, rollback, retry and skip: the execution moves on; follow it until it settles */
export const following = (
  name: "resume" | "rollback" | "retry" | "skip",
  verb: string,
  a: CommonArgs & { readonly id: string; readonly timeout: number; readonly json: boolean; readonly state?: string }
) =>
  withOperator(a, name, { read: false, forId: a.id }, (op) =>
    Effect.gen(function*() {
      if (name === "skip") yield* op.skip(a.id, a.state ?? "")
      else yield* op.command(name, a.id)
      const result = (yield* follow(op, [a.id], { seconds: a.timeout, done: settled, progress: false })).snapshots[0]!
      if (a.json) return yield* Out.json(result)
      yield* Out.outcome(verb, result)
    }))

/** @internal `proctor migrate <id> --to N`, or `<name>@<from> --to N` for every execution of a version */
export const migrate = (a: CommonArgs & { readonly target: string; readonly to: number; readonly json: boolean }) => {
  const all = /^(.+)@(\d+)$/.exec(a.target)
  return withOperator(a, "migrate", all === null ? { read: false, forId: a.target } : { read: false }, (op) =>
    Effect.gen(function*() {
      if (all === null) {
        const after = yield* op.migrate(a.target, a.to)
        if (a.json) return yield* Out.json(after)
        return yield* Out.outcome(`Migrated to version ${a.to}:`, after)
      }
      const report = yield* op.migrateAll(all[1]!, Number(all[2]), a.to)
      if (a.json) return yield* Out.json(report)
      yield* Out.line(`Migrated ${report.migrated.length} execution(s) of ${a.target} to version ${a.to}.`)
      for (const r of report.refused) yield* Out.line(`  not ${r.id}: ${r.reason}`)
    }))
}

/** @internal */
export const diagram = (a: {
  readonly module: string
  readonly format: "mermaid" | "svg"
  readonly procedure: Option.Option<string>
}) =>
  Effect.gen(function*() {
    const found = yield* Modules.loadModule(a.module)
    const only = Option.getOrUndefined(a.procedure)
    const chosen = only !== undefined ? found.filter((l) => l.procedure.name === only) : found
    if (chosen.length === 0) {
      return yield* usage(`${a.module} exports no procedure named "${only ?? ""}"; try --procedure ${found[0]!.procedure.name}`)
    }
    if (a.format === "svg") {
      if (chosen.length > 1) {
        return yield* usage(
          `${a.module} exports ${chosen.length} procedures (${chosen.map((l) => l.procedure.name).join(", ")}); an SVG holds one: add --procedure ${chosen[0]!.procedure.name}`
        )
      }
      const Diagram = yield* Effect.promise(() => import("../internal/diagram.js"))
      return yield* Out.line(Diagram.toSvg(chosen[0]!.procedure))
    }
    const Procedure = yield* Effect.promise(() => import("../Procedure.js"))
    yield* Out.line(
      chosen.map((l) => `%% ${l.procedure.name}@${l.procedure.version}\n${Procedure.toMermaid(l.procedure)}`).join("\n\n")
    )
  })

/** @internal the procedures of the server, or those this command loads (no database needed) */
export const procedures = (a: CommonArgs & { readonly json: boolean }) =>
  Effect.gen(function*() {
    const server = serverOf(a)
    const procedures = server !== undefined
      ? yield* Effect.flatMap(Op.Operator, (op) => op.procedures).pipe(Effect.provide(Op.layer(server)))
      : Op.views(yield* loadNamed(a))
    // how many executions run on each version: the server counted them; here, the database does if there is one
    const counted = server !== undefined
      ? undefined
      : Option.getOrUndefined(yield* Effect.option(withOperator(a, "procedures", { read: true }, (op) => op.inFlight)))
    const withCounts = counted === undefined ? procedures : procedures.map((p) => ({ ...p, inFlight: counted.get(`${p.name}@${p.version}`) ?? 0 }))
    if (a.json) return yield* Out.json(withCounts.map(({ svg: _, ...p }) => p))
    yield* Out.procedures(withCounts.map((p) => ({
      name: p.name,
      version: p.version,
      description: p.description,
      source: p.source,
      inFlight: p.inFlight,
      states: p.states.map((s) => ({ name: s.name, kind: s.kind, accepts: s.accepts }))
    })))
  })

/**
 * `proctor dependencies`: the breakers, bulkheads and rate limits of the dependencies the
 * procedures' steps name, as the server that runs them sees them; without a server, the
 * loaded modules' dependencies as a new runtime starts them (closed, nothing counted).
 */
export const dependencies = (a: CommonArgs & { readonly json: boolean }) =>
  Effect.gen(function*() {
    const server = serverOf(a)
    const found = server !== undefined
      ? yield* Effect.flatMap(Op.Operator, (op) => op.dependencies).pipe(Effect.provide(Op.layer(server)))
      : yield* Effect.flatMap(Resilience.make((yield* loadNamed(a)).map((l) => l.procedure)), (r) => r.status)
    if (a.json) return yield* Out.json(found)
    yield* Dependencies.print(found, server?._tag === "Remote" ? server.url : undefined)
  })
