/**
 * Everything the CLI prints goes through this module: it is the only place in `src/`
 * that touches the process's stdout and stderr. Commands describe what to show; this
 * module decides how (tables, timelines, JSON, live progress).
 *
 * @since 0.1.0
 */
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { AllowedOperations, ErrorEntry, Snapshot, Transition } from "../Execution.js"
// not from Execution.js: `--help` prints through this module, and should not load the core
import { isTerminal } from "../internal/statuses.js"
import { stripAnsi, tidyHelp } from "./text.js"

export { cliWords, stripAnsi, tidyHelp } from "./text.js"

/**
 * Where the CLI writes. `isTTY` selects redrawn progress over plain lines; `color` whether
 * to colour (a terminal that has colours, unless `NO_COLOR`; or `FORCE_COLOR`).
 *
 * @since 0.1.0
 * @category models
 */
export interface OutputService {
  readonly out: (text: string) => Effect.Effect<void>
  readonly err: (text: string) => Effect.Effect<void>
  /** `err` at once, for the loggers, which write synchronously */
  readonly errNow: (text: string) => void
  readonly isTTY: boolean
  readonly color: boolean
  readonly columns: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Output extends Context.Tag("proctor/cli/Output")<Output, OutputService>() {}

/**
 * The process's stdout and stderr.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProcess: Layer.Layer<Output> = Layer.sync(Output, () => ({
  out: (text) => Effect.sync(() => void process.stdout.write(text)),
  err: (text) => Effect.sync(() => void process.stderr.write(text)),
  errNow: (text) => void process.stderr.write(text),
  isTTY: process.stdout.isTTY === true,
  color: colorFor(process.stdout),
  columns: process.stdout.columns ?? 100
}))

/**
 * Whether to colour what goes to `stream`: `NO_COLOR` (any value) turns colour off,
 * `FORCE_COLOR` (other than `0`) on, even into a pipe; otherwise a terminal decides
 * (`hasColors()`, which also reads `TERM` and `NODE_DISABLE_COLORS`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const colorFor = (
  stream: { readonly isTTY?: boolean | undefined; readonly hasColors?: (() => boolean) | undefined },
  env: NodeJS.ProcessEnv = process.env
): boolean => {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== "0" && env.FORCE_COLOR !== "false"
  return stream.isTTY === true && typeof stream.hasColors === "function" && stream.hasColors()
}

/**
 * An in-memory output, for running the CLI inside tests: `stdout()` and `stderr()`
 * return what was written so far.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCapture = (options?: { readonly isTTY?: boolean | undefined; readonly color?: boolean | undefined }) => {
  let stdout = ""
  let stderr = ""
  const service: OutputService = {
    out: (text) => Effect.sync(() => void (stdout += text)),
    err: (text) => Effect.sync(() => void (stderr += text)),
    errNow: (text) => void (stderr += text),
    isTTY: options?.isTTY ?? false,
    color: options?.color ?? options?.isTTY ?? false,
    columns: 120
  }
  return { service, stdout: () => stdout, stderr: () => stderr, reset: () => void (stdout = stderr = "") }
}

/**
 * A `Console` that writes through `Output`, so that what `@effect/cli` prints (help,
 * usage errors) lands in the same place as the rest. Help (`Console.log`) goes to stdout,
 * tidied (`tidyHelp`); everything else, and every log line (`unsafe`, which Effect's
 * loggers write to), to stderr, so that stdout holds only a command's output.
 *
 * @since 0.1.0
 * @category constructors
 */
export const consoleFor = (output: OutputService): Console.Console => {
  const plain = (s: string) => output.color ? s : stripAnsi(s)
  const text = (args: ReadonlyArray<any>) => plain(args.map((a) => typeof a === "string" ? a : JSON.stringify(a)).join(" "))
  const line = (write: (s: string) => Effect.Effect<void>) => (...args: ReadonlyArray<any>) => write(text(args) + "\n")
  const help = (...args: ReadonlyArray<any>) => output.out(tidyHelp(text(args)).trimEnd() + "\n")
  const toStderr = (...args: ReadonlyArray<any>) => output.errNow(text(args) + "\n")
  const unsafe = {
    ...globalThis.console,
    log: toStderr,
    info: toStderr,
    debug: toStderr,
    warn: toStderr,
    error: toStderr,
    trace: toStderr
  }
  const noop = () => Effect.void
  return {
    [Console.TypeId]: Console.TypeId,
    assert: noop,
    clear: Effect.void,
    count: noop,
    countReset: noop,
    debug: line(output.err),
    dir: line(output.out),
    dirxml: line(output.out),
    error: line(output.err),
    group: noop,
    groupEnd: Effect.void,
    info: line(output.out),
    log: help,
    table: line(output.out),
    time: noop,
    timeEnd: noop,
    timeLog: noop,
    trace: line(output.err),
    warn: line(output.err),
    unsafe
  } as Console.Console
}

// ---------------------------------------------------------------------------
// formatting helpers

const ansi = {
  bold: (s: string) => `\x1b[1m${s}\x1b[22m`,
  dim: (s: string) => `\x1b[2m${s}\x1b[22m`,
  color: (code: number) => (s: string) => `\x1b[${code}m${s}\x1b[39m`
}

const statusColor: Record<string, number> = {
  running: 36,
  waiting: 33,
  paused: 35,
  needs_intervention: 31,
  compensating: 35,
  succeeded: 32,
  failed: 31,
  cancelled: 90,
  rolled_back: 90
}

const paint = (color: boolean, status: string) => color ? ansi.color(statusColor[status] ?? 39)(status) : status

/**
 * A duration in milliseconds as `850ms`, `12.3s`, `4m05s`, `2h03m`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatElapsed = (ms: number): string => {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const s = Math.floor(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  const m = Math.floor(s / 60)
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
}

const time = (at: number) => new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z")

const visibleLength = (s: string) => stripAnsi(s).length

/** rows of cells in aligned columns (the last column is not padded) */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  if (rows.length === 0) return ""
  const widths: Array<number> = []
  for (const row of rows) row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell)))
  return rows.map((row) =>
    row.map((cell, i) => i === row.length - 1 ? cell : cell + " ".repeat(widths[i]! - visibleLength(cell))).join("  ")
  ).map((l) => l.trimEnd()).join("\n") + "\n"
}

const elapsedOf = (s: Snapshot, now: number) => (isTerminal(s.status) ? s.updatedAt : now) - s.startedAt

// ---------------------------------------------------------------------------
// what commands print

/**
 * @since 0.1.0
 * @category printing
 */
export const line = (text: string) => Effect.flatMap(Output, (o) => o.out(text + "\n"))

/**
 * @since 0.1.0
 * @category printing
 */
export const errorLine = (text: string) => Effect.flatMap(Output, (o) => o.err(text + "\n"))

/**
 * Prints a value as indented JSON (the `--json` output of every read command).
 *
 * @since 0.1.0
 * @category printing
 */
export const json = (value: unknown) => line(JSON.stringify(value, null, 2))

/**
 * A failure under `--json`: one JSON object on stdout, where a script reads, e.g.
 * `{"error":{"tag":"ExecutionNotFound","message":"…","exitCode":1}}`.
 *
 * @since 0.1.0
 * @category printing
 */
export const jsonError = (tag: string, message: string, exitCode: number) =>
  line(JSON.stringify({ error: { tag, message, exitCode } }))

/**
 * A table of executions.
 *
 * @since 0.1.0
 * @category printing
 */
export const executions = (snapshots: ReadonlyArray<Snapshot>, now: number) =>
  Effect.flatMap(Output, (o) => {
    if (snapshots.length === 0) return o.out("No executions match. Start one with `proctor run <module>`.\n")
    const rows = [
      ["ID", "PROCEDURE", "STATE", "STATUS", "ELAPSED", "STARTED"].map((h) => o.color ? ansi.bold(h) : h),
      ...snapshots.map((s) => [
        s.id,
        `${s.procedure}@${s.version}`,
        s.state,
        paint(o.color, s.status),
        formatElapsed(elapsedOf(s, now)),
        time(s.startedAt)
      ])
    ]
    return o.out(table(rows))
  })

/**
 * One execution: its snapshot, history as a timeline, and error log.
 *
 * @since 0.1.0
 * @category printing
 */
export const execution = (
  snapshot: Snapshot,
  history: ReadonlyArray<Transition>,
  errors: ReadonlyArray<ErrorEntry>,
  now: number,
  view: { readonly allowed: AllowedOperations; readonly configuration: ReadonlyArray<string> },
  /** the executions its child states started */
  children: ReadonlyArray<Snapshot> = []
) =>
  Effect.flatMap(Output, (o) => {
    const b = (s: string) => o.color ? ansi.bold(s) : s
    const accepts = view.allowed.events
    const fields: Array<[string, string]> = [
      ["id", snapshot.id],
      ["procedure", `${snapshot.procedure}@${snapshot.version}`],
      ["state", snapshot.state],
      ["status", paint(o.color, snapshot.status)],
      ["elapsed", formatElapsed(elapsedOf(snapshot, now))],
      ["started", time(snapshot.startedAt)],
      ["updated", time(snapshot.updatedAt)]
    ]
    if (snapshot.attempt > 0) fields.push(["failed attempts", String(snapshot.attempt)])
    if (snapshot.outcome !== undefined) fields.push(["outcome", snapshot.outcome])
    if (snapshot.error !== undefined) fields.push(["error", `${snapshot.error.tag}: ${snapshot.error.message}`])
    if (snapshot.timerDueAt !== undefined) fields.push(["timer due", time(snapshot.timerDueAt)])
    if (snapshot.tenant !== undefined) fields.push(["tenant", snapshot.tenant])
    if (snapshot.runner !== undefined) fields.push(["runner", snapshot.runner])
    if (snapshot.parentId !== undefined) fields.push(["parent", `${snapshot.parentId} (proctor show ${snapshot.parentId})`])
    if (accepts.length > 0) fields.push(["accepts", accepts.join(", ")])
    // nested, chart or parallel states: the whole active configuration (for a flat procedure, its state alone)
    if (view.configuration.length > 1) fields.push(["configuration", view.configuration.join(", ")])
    let text = table(fields.map(([k, v]) => [b(k), v]))
    text += `${b("context")}\n${indent(JSON.stringify(snapshot.context, null, 2))}\n`
    text += `${b("history")}\n`
    text += table(history.map((t) => [
      `  #${t.seq}`,
      time(t.at),
      t.from === "" ? `→ ${t.to}` : `${t.from} → ${t.to}`,
      paint(o.color, t.status),
      t.reason === undefined ? t.cause : `${t.cause}: ${t.reason}`,
      t.seq === 1 ? "" : `after ${formatElapsed(t.duration)}`
    ]))
    if (children.length > 0) {
      text += `${b("children")}\n`
      text += table(children.map((c) => [`  ${c.id}`, `${c.procedure}@${c.version}`, c.state, paint(o.color, c.status)]))
    }
    text += `${b("errors")}\n`
    text += errors.length === 0
      ? "  none\n"
      : table(errors.map((e) => [`  ${time(e.at)}`, e.state, `attempt ${e.attempt}`, e.transient ? "transient" : "final", `${e.tag}: ${e.message}`]))
    if (accepts.length > 0) {
      text += `\nIt ${snapshot.status === "paused" ? "will take" : "waits for"} ${accepts.join(" or ")}: proctor send ${snapshot.id} ${accepts[0]} '{...}'\n`
    }
    if (view.allowed.commands.length > 0) {
      const command = (c: string) => c === "skip" ? `proctor skip ${snapshot.id} <state>` : `proctor ${c} ${snapshot.id}`
      text += `${accepts.length > 0 ? "" : "\n"}It can be: ${view.allowed.commands.map(command).join(", ")}\n`
    }
    return o.out(text)
  })

const indent = (s: string) => s.split("\n").map((l) => "  " + l).join("\n")

/**
 * A one-line summary of what an operation left behind.
 *
 * @since 0.1.0
 * @category printing
 */
export const outcome = (verb: string, snapshot: Snapshot) =>
  Effect.flatMap(Output, (o) =>
    o.out(`${verb} ${snapshot.id}: now ${paint(o.color, snapshot.status)} in state "${snapshot.state}"\n`))

/**
 * The registered procedures.
 *
 * @since 0.1.0
 * @category printing
 */
export const procedures = (
  infos: ReadonlyArray<{
    readonly name: string
    readonly version: number
    readonly description: string | undefined
    readonly states: ReadonlyArray<{ readonly name: string; readonly kind: string; readonly accepts: ReadonlyArray<string> }>
    readonly source: string
    /** executions of this version not ended, when a store was there to count them */
    readonly inFlight?: number | undefined
  }>
) =>
  Effect.flatMap(Output, (o) => {
    if (infos.length === 0) {
      return o.out("No procedures are registered. Load some with --module PATH or PROCTOR_MODULES.\n")
    }
    let text = ""
    for (const p of infos) {
      text += `${o.color ? ansi.bold(`${p.name}@${p.version}`) : `${p.name}@${p.version}`}${p.description === undefined ? "" : ` — ${p.description}`}\n`
      text += `  from ${p.source}${p.inFlight === undefined ? "" : `, ${p.inFlight} execution(s) in flight`}\n`
      text += table(p.states.map((s) => [`  ${s.name}`, s.kind, s.accepts.length > 0 ? `accepts ${s.accepts.join(", ")}` : ""]))
    }
    return o.out(text)
  })

// ---------------------------------------------------------------------------
// live progress

const spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** Above this many executions, progress shows a bar and counts instead of one line each. */
const detailLimit = 10

/**
 * Draws the progress of running executions. On a TTY it redraws in place (one line per
 * execution, or a bar with counts when many run); otherwise it prints a plain line
 * each time an execution changes state or status.
 *
 * @since 0.1.0
 * @category printing
 */
export const makeProgress = Effect.map(Output, (o) => {
  let drawn = 0
  let frame = 0
  const seen = new Map<string, string>()
  const render = (snapshots: ReadonlyArray<Snapshot>, now: number): string => {
    const lines: Array<string> = []
    const spin = spinner[frame++ % spinner.length]!
    const mark = (s: Snapshot) =>
      s.status === "succeeded" ? ansi.color(32)("✔") :
      isTerminal(s.status) ? ansi.color(31)("✖") :
      s.status === "running" || s.status === "compensating" ? ansi.color(36)(spin) : ansi.color(33)("…")
    if (snapshots.length <= detailLimit) {
      const rows = snapshots.map((s) => [
        mark(s),
        s.id.slice(0, 8),
        s.procedure,
        s.state,
        paint(true, s.status),
        formatElapsed(elapsedOf(s, now))
      ])
      lines.push(...table(rows).trimEnd().split("\n"))
    } else {
      const done = snapshots.filter((s) => isTerminal(s.status)).length
      const width = Math.max(10, Math.min(40, o.columns - 40))
      const filled = Math.round((done / snapshots.length) * width)
      const counts = new Map<string, number>()
      for (const s of snapshots) counts.set(s.status, (counts.get(s.status) ?? 0) + 1)
      lines.push(`[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${done}/${snapshots.length} finished`)
      lines.push([...counts].map(([status, n]) => `${n} ${paint(true, status)}`).join(" · "))
      const active = snapshots.filter((s) => !isTerminal(s.status)).slice(0, 5)
      for (const s of active) {
        lines.push(`${mark(s)} ${s.id.slice(0, 8)}  ${s.procedure}  ${s.state}  ${paint(true, s.status)}  ${formatElapsed(elapsedOf(s, now))}`)
      }
    }
    return lines.map((l) => l.slice(0, o.columns + 40)).join("\n")
  }
  return {
    /** draws one frame (TTY) or prints the changes since the last call (plain) */
    update: (snapshots: ReadonlyArray<Snapshot>, now: number): Effect.Effect<void> => {
      if (o.isTTY) {
        const text = o.color ? render(snapshots, now) : stripAnsi(render(snapshots, now))
        const clear = drawn > 0 ? `\x1b[${drawn}F\x1b[0J` : ""
        drawn = text.split("\n").length
        return o.out(clear + text + "\n")
      }
      const changed: Array<string> = []
      for (const s of snapshots) {
        const key = `${s.state}/${s.status}`
        if (seen.get(s.id) === key) continue
        seen.set(s.id, key)
        changed.push(`${formatElapsed(elapsedOf(s, now)).padStart(7)}  ${s.id}  ${s.procedure}  ${s.state}  ${s.status}`)
      }
      return changed.length === 0 ? Effect.void : o.out(changed.join("\n") + "\n")
    }
  }
})

/**
 * What `run` prints when it stops following: how each execution ended and what it waits for.
 *
 * @since 0.1.0
 * @category printing
 */
export const runSummary = (
  snapshots: ReadonlyArray<Snapshot>,
  accepts: (s: Snapshot) => ReadonlyArray<string>
) =>
  Effect.flatMap(Output, (o) => {
    const waiting = snapshots.filter((s) => s.status === "waiting")
    const counts = new Map<string, number>()
    for (const s of snapshots) counts.set(s.status, (counts.get(s.status) ?? 0) + 1)
    let text = `${snapshots.length} execution${snapshots.length === 1 ? "" : "s"}: ${[...counts].map(([s, n]) => `${n} ${paint(o.color, s)}`).join(", ")}\n`
    for (const s of waiting.slice(0, 10)) {
      const tags = accepts(s)
      text += tags.length > 0
        ? `${s.id} waits in "${s.state}" for ${tags.join(" or ")}: proctor send ${s.id} ${tags[0]} '{...}'\n`
        : `${s.id} waits in "${s.state}" for its timer\n`
    }
    if (waiting.length > 10) text += `…and ${waiting.length - 10} more waiting: proctor list --status waiting\n`
    const stuck = snapshots.filter((x) => x.status === "needs_intervention")
    for (const s of stuck.slice(0, 10)) {
      text += `${s.id} needs a person in "${s.state}"${s.error === undefined ? "" : ` (${s.error.message})`}: proctor show ${s.id}\n`
    }
    if (stuck.length > 10) text += `…and ${stuck.length - 10} more: proctor list --status needs_intervention\n`
    return o.out(text)
  })
