/**
 * The readiness report of a deployment (`proctor validate`): the definition checks of its
 * procedures, then Proctor's promises checked on the spot — the five flow patterns
 * (linear, branching, looping, error recovery, timeout) on the deployment's store, rollback
 * order, concurrent executions, crash recovery with a process killed by SIGKILL, the
 * transition overhead and the heap per execution — and a verdict, READY or NOT READY with
 * the reason of each check that failed. See docs/production.md, "Readiness report".
 *
 * @since 0.1.0
 */
import type { Layer } from "effect"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { StoreError } from "./Errors.js"
import type * as Procedure from "./Procedure.js"
import * as Store from "./Store.js"
import { runChecks } from "./internal/validateRun.js"
import type { Report } from "./internal/validateModel.js"

export type { Check, Figures, ProcedureReport, Report } from "./internal/validateModel.js"
export { toMarkdown } from "./internal/validateMarkdown.js"

/**
 * What `run` checks and where.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** the deployment's procedures, optionally with where each came from: their definitions are checked, never run */
  readonly procedures: ReadonlyArray<Procedure.Any | { readonly procedure: Procedure.Any; readonly source?: string | undefined }>
  /** the migrations the deployment declares, registered with the procedures. @default none */
  readonly migrations?: ReadonlyArray<Procedure.Migration> | undefined
  /**
   * The store the flows, rollback, concurrency and overhead checks run on: of the
   * deployment's kind, but holding nothing of the application's (a new SQLite file, a
   * Postgres database or table prefix of its own). Its executions are named
   * `proctor.validate.*`; a store holding executions of other procedures is refused (those
   * checks fail) rather than touched. @default Store.layerMemory
   */
  readonly store?: Layer.Layer<Store.Store, StoreError> | undefined
  /** how the report names the store. @default "the memory store" */
  readonly storeName?: string | undefined
  /**
   * Where the crash-recovery check and the heap measurement keep their SQLite files: a new
   * folder made inside this one (created if missing) and removed afterwards.
   * @default the system's temporary folder
   */
  readonly dir?: string | undefined
  /** the store the heap per execution is measured on. @default "sqlite" */
  readonly measureOn?: "sqlite" | "memory" | undefined
  /** how many executions the concurrency check runs at once. @default 1000 */
  readonly concurrent?: number | undefined
  /** how many executions the killed process runs. @default 20 */
  readonly crashExecutions?: number | undefined
  /** how many executions are held in flight to measure the heap per execution. @default 2000 */
  readonly memoryExecutions?: number | undefined
  /** the figures beyond which the deployment is not ready */
  readonly limits?: {
    /** wall-clock microseconds per transition. @default 20000 (20 ms) */
    readonly transitionMicros?: number | undefined
    /** heap bytes per execution in flight. @default 65536 (64 KiB) */
    readonly heapPerExecutionBytes?: number | undefined
  } | undefined
  /**
   * Run the checks that need child processes (crash recovery, the heap per execution).
   * `false` leaves them out, and they count as failed: the report is then NOT READY. @default true
   */
  readonly processes?: boolean | undefined
  /** told what the run is doing, a line at a time (the CLI prints it on stderr). @default none */
  readonly onProgress?: ((message: string) => Effect.Effect<void>) | undefined
  /** @internal the child processes' script (tests run one whose store loses writes) */
  readonly childScript?: string | undefined
}

/**
 * Checks a deployment and returns its readiness report. It never fails: a check that
 * cannot run is a failed check, with its reason. Takes seconds (processes are started
 * and killed, a thousand executions run).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Procedure, Validate } from "proctor"
 *
 * declare const Approval: Procedure.Any
 *
 * const program = Effect.gen(function*() {
 *   const report = yield* Validate.run({ procedures: [Approval] })
 *   console.log(Validate.toMarkdown(report))
 *   if (!report.ready) console.error(report.failures.join("\n"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (options: Options): Effect.Effect<Report> =>
  Effect.scoped(Effect.gen(function*() {
    // a folder of this run's own, so that a second run in the same `dir` starts afresh
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const parent = options.dir ?? os.tmpdir()
        fs.mkdirSync(parent, { recursive: true })
        return fs.mkdtempSync(path.join(parent, "proctor-validate-"))
      }),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    return yield* runChecks({
      ...options,
      procedures: options.procedures.map((p) => "procedure" in p ? p : { procedure: p }),
      store: options.store ?? Store.layerMemory,
      storeName: options.storeName ?? "the memory store",
      dir
    })
  }))
