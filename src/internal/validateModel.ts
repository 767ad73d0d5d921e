/**
 * The shapes of a readiness report (`Validate.Report` and its parts) and the helpers every
 * check of `Validate.run` shares: a check that passes or fails with a reason, bounded in
 * time, and never fails the run itself.
 */
import { Cause, Data, Duration, Effect } from "effect"

/**
 * One check of the report: what it did (`detail`), and when it failed, why (`reason`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Check {
  /** a short stable name: `linear`, `crash-recovery`, ... */
  readonly id: string
  /** what the report calls it */
  readonly title: string
  /** whether it passed */
  readonly ok: boolean
  /** what was run and found, in a sentence */
  readonly detail: string
  /** why it failed, and what to do; absent when it passed */
  readonly reason?: string | undefined
}

/**
 * The definition checks of one registered procedure.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcedureReport {
  /** the procedure's name */
  readonly name: string
  /** its version */
  readonly version: number
  /** the module and export it came from, when known */
  readonly source?: string | undefined
  /** whether the runtime's registration checks accept it */
  readonly ok: boolean
  /** the registration check that refused it */
  readonly reason?: string | undefined
  /** how many states it has (at any depth) */
  readonly states: number
  /** how many of them are steps */
  readonly steps: number
  /** how many are waits */
  readonly waits: number
  /** how many are final states */
  readonly finals: number
  /** the steps with a `compensate` */
  readonly compensated: ReadonlyArray<string>
  /** what a person should look at; a warning does not change the verdict */
  readonly warnings: ReadonlyArray<string>
}

/**
 * The figures measured on the spot. Wall-clock figures depend on the machine's load at
 * the time; `heapPerExecutionBytes` (after a full GC) does not.
 *
 * @since 0.1.0
 * @category models
 */
export interface Figures {
  /** wall-clock microseconds per committed transition, executions run one at a time */
  readonly transitionMicros?: number | undefined
  /** how many transitions `transitionMicros` was measured over */
  readonly transitionsMeasured?: number | undefined
  /** heap in use per execution in flight (held in a step), after a full GC */
  readonly heapPerExecutionBytes?: number | undefined
  /** how many executions were in flight for `heapPerExecutionBytes` */
  readonly executionsMeasured?: number | undefined
  /** how many executions the concurrency check ran at once */
  readonly concurrentExecutions?: number | undefined
  /** how long they took, from the first start to the last end, in milliseconds */
  readonly concurrentMillis?: number | undefined
  /** how long the resumed process took to finish the executions the killed one left, in milliseconds */
  readonly recoveryMillis?: number | undefined
}

/**
 * A readiness report: `ready` when every procedure passed its definition checks and
 * every check passed; `failures` gives the reason of each one that did not.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  /** every procedure valid and every check passed */
  readonly ready: boolean
  /** `ready` in words */
  readonly verdict: "READY" | "NOT READY"
  /** where the checks ran (the store, the folder of the crash check) */
  readonly where: string
  /** when the run began, epoch milliseconds */
  readonly at: number
  /** how long it took, in milliseconds */
  readonly millis: number
  /** the Node.js version and platform */
  readonly node: string
  /** the definition checks of each registered procedure (and of the regions of its parallel states) */
  readonly procedures: ReadonlyArray<ProcedureReport>
  /** the checks, in the order they ran */
  readonly checks: ReadonlyArray<Check>
  /** what was measured */
  readonly figures: Figures
  /** one line per failed check or procedure: what failed and why */
  readonly failures: ReadonlyArray<string>
}

/** A check's expectation that did not hold: `reason` is what the report says. */
export class Mismatch extends Data.TaggedError("Mismatch")<{ readonly reason: string }> {}

/** Fails the check with `reason` unless `ok`. */
export const expect = (ok: boolean, reason: () => string): Effect.Effect<void, Mismatch> =>
  ok ? Effect.void : Effect.fail(new Mismatch({ reason: reason() }))

/** The reason an unexpected failure gives: its message, on one line, not too long. */
export const reasonOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  const text = failure instanceof Mismatch
    ? failure.reason
    : failure instanceof Error
    ? `${(failure as { _tag?: unknown })._tag ?? failure.name}: ${failure.message}`
    : String(failure)
  const line = text.replace(/\s+/g, " ").trim()
  return line.length > 400 ? `${line.slice(0, 397)}...` : line
}

/**
 * Runs one check: passed with the detail `body` returns, or failed with the reason of its
 * failure, or of its timeout (`within`). It never fails: a check that cannot run fails.
 */
export const check = <R>(
  id: string,
  title: string,
  within: Duration.DurationInput,
  body: Effect.Effect<string, unknown, R>
): Effect.Effect<Check, never, R> =>
  body.pipe(
    Effect.timeoutFail({
      duration: within,
      onTimeout: () =>
        new Mismatch({
          reason: `it did not finish within ${Duration.format(Duration.decode(within))}: an execution never ended, or the store stopped answering`
        })
    }),
    Effect.map((detail): Check => ({ id, title, ok: true, detail })),
    Effect.catchAllCause((cause) =>
      Effect.succeed<Check>({ id, title, ok: false, detail: title, reason: reasonOf(cause) })
    )
  )

/** Milliseconds of wall-clock time, for the figures (TestClock does not apply to them). */
export const wallMillis = Effect.sync(() => performance.now())
