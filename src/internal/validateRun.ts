/**
 * The order of a readiness report's checks (`Validate.run`): definitions, then the checks
 * on a runtime of its own over the configured store (after making sure the store holds
 * nothing of the application's), then those in child processes; and the verdict.
 */
import * as path from "node:path"
import type { Layer } from "effect"
import { Clock, Effect, Exit } from "effect"
import type { StoreError } from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as Store from "../Store.js"
import { checkProcedure, checkRegistration, type Registered, withRegions } from "./validateDefinitions.js"
import { branchingFlow, linearFlow, loopingFlow, makeFlows, recoveryFlow, timeoutFlow, Trace } from "./validateFlows.js"
import { concurrency, makeLoad, overhead, rollbackOrder } from "./validateLoad.js"
import { check, type Check, type Figures, Mismatch, reasonOf, type Report, wallMillis } from "./validateModel.js"
import { crashRecovery, defaultScript, heapPerExecution } from "./validateProcess.js"

/** `Validate.Options` with the defaults that need a scope filled in. */
export interface RunOptions {
  readonly procedures: ReadonlyArray<Registered>
  readonly migrations?: ReadonlyArray<Procedure.Migration> | undefined
  readonly store: Layer.Layer<Store.Store, StoreError>
  readonly storeName: string
  readonly dir: string
  readonly measureOn?: "sqlite" | "memory" | undefined
  readonly concurrent?: number | undefined
  readonly crashExecutions?: number | undefined
  readonly memoryExecutions?: number | undefined
  readonly limits?: { readonly transitionMicros?: number | undefined; readonly heapPerExecutionBytes?: number | undefined } | undefined
  readonly onProgress?: ((message: string) => Effect.Effect<void>) | undefined
  readonly processes?: boolean | undefined
  readonly childScript?: string | undefined
}

/** the prefix of the names of the procedures the checks run */
const ownPrefix = "proctor.validate."

/** the steps of each execution the transition overhead is measured on, and how many run */
const overheadSteps = 20
const overheadExecutions = 25

/** Refuses a store that holds executions of procedures other than the checks' own. */
const ownStore = Effect.gen(function*() {
  const store = yield* Store.Store
  const others = (yield* store.countByVersion()).filter((c) => !c.procedure.startsWith(ownPrefix))
  if (others.length > 0) {
    const names = [...new Set(others.map((c) => c.procedure))].slice(0, 3).join(", ")
    return yield* new Mismatch({
      reason: `the store holds executions of ${names}: the checks run only on a store of their own (a new SQLite file, a database or table prefix of its own), so that nothing of the application's is touched`
    })
  }
})

const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits

/** Runs every check and returns the report. */
export const runChecks = (options: RunOptions): Effect.Effect<Report> =>
  Effect.gen(function*() {
    const at = yield* Clock.currentTimeMillis
    const began = yield* wallMillis
    const say = options.onProgress ?? (() => Effect.void)
    const limits = { transitionMicros: options.limits?.transitionMicros ?? 20_000, heapPerExecutionBytes: options.limits?.heapPerExecutionBytes ?? 65_536 }
    const concurrent = options.concurrent ?? 1000
    const crashN = options.crashExecutions ?? 20
    const memoryN = options.memoryExecutions ?? 2000
    const script = options.childScript ?? defaultScript
    const figures: { -readonly [K in keyof Figures]: Figures[K] } = {}
    const checks: Array<Check> = []

    yield* say(`checking the definitions of ${options.procedures.length} procedure${options.procedures.length === 1 ? "" : "s"}`)
    const procedures = yield* Effect.forEach(withRegions(options.procedures), checkProcedure)
    checks.push(yield* checkRegistration(options.procedures.map((p) => p.procedure), options.migrations ?? []))

    const trace = new Trace()
    const flows = makeFlows(trace)
    const load = makeLoad(trace, { overheadSteps })
    const onStore: ReadonlyArray<readonly [string, string, Effect.Effect<string, unknown, Runtime.Runtime>]> = [
      ["linear", "Linear flow", linearFlow(flows, trace)],
      ["branching", "Branching flow", branchingFlow(flows)],
      ["looping", "Looping flow", loopingFlow(flows, trace)],
      ["error-recovery", "Error recovery", recoveryFlow(flows, trace)],
      ["timeout", "Timeout", timeoutFlow(flows)],
      ["rollback-order", "Rollback order", rollbackOrder(load, trace)],
      ["concurrency", `${concurrent.toLocaleString("en-US")} concurrent executions`, Effect.map(concurrency(load, trace, concurrent), (r) => {
        figures.concurrentExecutions = concurrent
        figures.concurrentMillis = round(r.millis)
        return r.detail
      })],
      ["transition-overhead", "Transition overhead", Effect.flatMap(overhead(load, overheadExecutions, overheadSteps), (r) => {
        figures.transitionMicros = round(r.micros, 1)
        figures.transitionsMeasured = r.transitions
        return r.micros <= limits.transitionMicros
          ? Effect.succeed(`${round(r.micros, 1).toLocaleString("en-US")} µs per transition (wall clock), over ${r.transitions} transitions of executions run one at a time`)
          : Effect.fail(new Mismatch({ reason: `${round(r.micros, 1).toLocaleString("en-US")} µs per transition, over the limit of ${limits.transitionMicros.toLocaleString("en-US")} µs: the store commits too slowly (a network or slow disk?)` }))
      })]
    ]
    yield* say(`running the flows on ${options.storeName}`)
    const runtime = yield* Effect.exit(Effect.zipRight(ownStore, Runtime.make({ procedures: [...Object.values(flows), ...Object.values(load)], recover: false })).pipe(
      Effect.flatMap((rt) =>
        Effect.forEach(onStore, ([id, title, body], i) =>
          Effect.zipRight(
            say(`[${i + 1}/${onStore.length}] ${title}`),
            check(id, title, id === "concurrency" ? "120 seconds" : "30 seconds", Effect.provideService(body, Runtime.Runtime, rt))
          ))
      ),
      Effect.scoped,
      Effect.provide(options.store)
    ))
    if (Exit.isSuccess(runtime)) checks.push(...runtime.value)
    else {
      const reason = reasonOf(runtime.cause)
      checks.push(...onStore.map(([id, title]): Check => ({ id, title, ok: false, detail: title, reason: `no runtime could run on ${options.storeName}: ${reason}` })))
    }

    const measureOn = options.measureOn ?? "sqlite"
    const crash = check("crash-recovery", "Crash recovery", "150 seconds", Effect.map(crashRecovery(options.dir, crashN, script), (r) => {
      figures.recoveryMillis = round(r.recoveryMillis)
      return r.detail
    }))
    const memory = check("memory", "Memory per execution", "150 seconds",
      Effect.flatMap(heapPerExecution(measureOn === "sqlite" ? path.join(options.dir, "memory.db") : ":memory:", memoryN, script), (r) => {
        figures.heapPerExecutionBytes = round(r.heapPerExecution)
        figures.executionsMeasured = r.n
        const text = `${round(r.heapPerExecution).toLocaleString("en-US")} B of heap per execution in flight (${r.n.toLocaleString("en-US")} held in a step, after a full GC, ${measureOn === "sqlite" ? "SQLite" : "memory"} store)`
        return r.heapPerExecution <= limits.heapPerExecutionBytes
          ? Effect.succeed(text)
          : Effect.fail(new Mismatch({ reason: `${text}: over the limit of ${limits.heapPerExecutionBytes.toLocaleString("en-US")} B` }))
      }))
    if (options.processes === false) {
      const skipped = (id: string, title: string): Check => ({ id, title, ok: false, detail: title, reason: "not run: child processes were turned off (processes: false)" })
      checks.push(skipped("crash-recovery", "Crash recovery"), skipped("memory", "Memory per execution"))
    } else {
      yield* say(`crash recovery (a process killed with SIGKILL mid-run, then resumed) and the heap per execution (${memoryN.toLocaleString("en-US")} in flight, ${measureOn === "sqlite" ? "SQLite" : "memory store"}), in child processes in ${options.dir}`)
      // side by side: the heap does not depend on the machine's load, and neither check on time
      checks.push(...yield* Effect.all([crash, memory], { concurrency: 2 }))
    }

    const failures = [
      ...procedures.filter((p) => !p.ok).map((p) => `procedure ${p.name}@${p.version}: ${p.reason}`),
      ...checks.filter((c) => !c.ok).map((c) => `${c.title}: ${c.reason}`)
    ]
    const ready = failures.length === 0
    return {
      ready,
      verdict: ready ? "READY" : "NOT READY",
      where: `${options.storeName}; child processes in ${options.dir}`,
      at,
      millis: round((yield* wallMillis) - began),
      node: `Node.js ${process.version} on ${process.platform}/${process.arch}`,
      procedures,
      checks,
      figures,
      failures
    } satisfies Report
  })
