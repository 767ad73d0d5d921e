/**
 * What the examples share: the record of one demonstrated execution, a bounded wait for
 * its end, and a report that shows each execution's path through its states.
 *
 * @since 0.1.0
 */
import { pathToFileURL } from "node:url"
import { Console, Duration, Effect, Schedule, Schema } from "effect"
import type { Execution } from "proctor"
import { Runtime } from "proctor"

/**
 * One execution an example started, with a label saying what it demonstrates.
 *
 * @since 0.1.0
 */
export interface Run {
  readonly example: string
  readonly label: string
  readonly id: string
  /** what happened besides the state changes (side effects, decisions) */
  readonly notes?: ReadonlyArray<string> | undefined
}

/**
 * An execution did not end (or reach a state) within the time an example gives it.
 *
 * @since 0.1.0
 */
export class ExampleTimeout extends Schema.TaggedError<ExampleTimeout>()("ExampleTimeout", {
  id: Schema.String,
  waited: Schema.String
}) {
  override get message(): string {
    return `Execution ${this.id} did not get there within ${this.waited}; look at it with Runtime.get and Runtime.history`
  }
}

/**
 * Waits for an execution to end, for at most `within` (every wait has a bound).
 *
 * @since 0.1.0
 */
export const awaitEnd = (id: string, within: Duration.DurationInput = "30 seconds") =>
  Runtime.await(id).pipe(
    Effect.timeoutFail({ duration: within, onTimeout: () => new ExampleTimeout({ id, waited: Duration.format(within) }) })
  )

/**
 * Waits until an execution reaches `state` (polling the store), for at most `within`.
 * Demos use it to act at the right moment; tests use `TestClock` instead.
 *
 * @since 0.1.0
 */
export const awaitState = (id: string, state: string, within: Duration.DurationInput = "10 seconds") =>
  Runtime.get(id).pipe(
    Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (s) => s.state === state }),
    Effect.timeoutFail({ duration: within, onTimeout: () => new ExampleTimeout({ id, waited: Duration.format(within) }) })
  )

/**
 * One execution's report: its final snapshot, its history and its error log.
 *
 * @since 0.1.0
 */
export interface Row {
  readonly run: Run
  readonly snapshot: Execution.Snapshot
  readonly history: ReadonlyArray<Execution.Transition>
  readonly errors: ReadonlyArray<Execution.ErrorEntry>
}

/**
 * Reads what the runtime recorded about each run.
 *
 * @since 0.1.0
 */
export const collect = (runs: ReadonlyArray<Run>) =>
  Effect.forEach(runs, (run) =>
    Effect.all({
      run: Effect.succeed(run),
      snapshot: Runtime.get(run.id),
      history: Runtime.history(run.id),
      errors: Runtime.errors(run.id)
    }))

/** Transitions that move to a state (as opposed to changing only the status). */
const moves = (t: Execution.Transition) =>
  t.cause === "step" || t.cause === "timer" || t.cause === "skip" || t.cause.startsWith("event:") ||
  (t.cause === "failure" && t.from !== t.to)

/**
 * The path of an execution: `a → b →(Approve) c ⇒ compensating ⇒ failed`. A plain arrow
 * is a step's `next`; `→(X)` names the event, timer or command that moved it; `⇒ s` is a
 * change of status without a change of state.
 *
 * @since 0.1.0
 */
export const formatPath = (history: ReadonlyArray<Execution.Transition>): string =>
  history.map((t) => {
    if (t.cause === "start") return t.to
    if (moves(t)) {
      const why = t.cause === "step" ? "" : `(${t.cause.replace(/^event:/, "")})`
      return ` →${why} ${t.to}`
    }
    return ` ⇒ ${t.status}`
  }).join("")

const pad = (s: string, n: number) => s.length >= n ? s : s + " ".repeat(n - s.length)

const outcomeOf = (s: Execution.Snapshot) =>
  s.outcome !== undefined && s.outcome !== s.status ? `${s.status} (${s.outcome})` : s.status

const wallTime = (s: Execution.Snapshot) => `${s.updatedAt - s.startedAt} ms`

/**
 * The report, as lines: one block per execution, then a summary table.
 *
 * @since 0.1.0
 */
export const formatReport = (rows: ReadonlyArray<Row>): ReadonlyArray<string> => {
  const lines: Array<string> = []
  for (const { errors, history, run, snapshot } of rows) {
    lines.push(`${run.example} · ${run.label}`)
    lines.push(`  status     ${outcomeOf(snapshot)}   (wall time ${wallTime(snapshot)}, ${history.length} transitions)`)
    lines.push(`  states     ${formatPath(history)}`)
    for (const e of errors) {
      const handled = e.transient ? "retried" : "not retried"
      lines.push(`  error      ${e.state} attempt ${e.attempt}: ${e.message} [${handled}]`)
    }
    for (const note of run.notes ?? []) lines.push(`  note       ${note}`)
    lines.push("")
  }
  const header = ["example", "execution", "final state", "status", "transitions", "wall time"]
  const table = rows.map(({ history, run, snapshot }) => [
    run.example,
    run.label,
    snapshot.state,
    outcomeOf(snapshot),
    String(history.length),
    wallTime(snapshot)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => pad(c, widths[i]!)).join("  ").trimEnd()
  lines.push(line(header))
  lines.push(line(widths.map((w) => "─".repeat(w))))
  for (const r of table) lines.push(line(r))
  return lines
}

/**
 * Prints the report of the given runs.
 *
 * @since 0.1.0
 */
export const printReport = (runs: ReadonlyArray<Run>) =>
  Effect.flatMap(collect(runs), (rows) => Console.log(formatReport(rows).join("\n")))

/**
 * True when the module with this `import.meta.url` is the script node was asked to run.
 *
 * @since 0.1.0
 */
export const isMain = (url: string): boolean =>
  process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === url
