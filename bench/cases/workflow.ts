/**
 * @effect/workflow 0.19, in a child process of its own: its in-memory engine
 * (`WorkflowEngine.layerMemory`) and, at small N, its durable engine (`@effect/cluster`'s
 * `ClusterWorkflowEngine` on a single-runner cluster, `SingleRunner.layer`, with its
 * message storage on SQLite through `@effect/sql-sqlite-node`).
 *
 * Mapping to Proctor's procedures:
 * - W1: one workflow per execution whose body runs ten activities s1..s10 in sequence;
 *   each activity is the no-op step (it marks the time). Executions are started all at
 *   once with `execute` (which returns the workflow's result), so all N are in flight
 *   together. Transition overhead is the time from one activity's mark to the next one's:
 *   recording the activity's result (a journal entry; on the cluster engine a durable
 *   reply) and starting the next activity.
 * - W3: `execute` to the first activity.
 */
import * as ClusterWorkflowEngine from "@effect/cluster/ClusterWorkflowEngine"
import * as SingleRunner from "@effect/cluster/SingleRunner"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Activity from "@effect/workflow/Activity"
import * as Workflow from "@effect/workflow/Workflow"
import * as WorkflowEngine from "@effect/workflow/WorkflowEngine"
import { Deferred, Effect, Exit, FiberId, Layer, Logger, LogLevel, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bestNote, bestOf, heapAfterGc, peakRssMb, progress, reporter, until } from "../lib/child.js"
import { Histogram, round } from "../lib/stats.js"

const STEPS = 10

const probe = {
  last: new Float64Array(0),
  firstStep: new Float64Array(0),
  overhead: new Histogram(),
  gateAt: 0,
  gate: undefined as Deferred.Deferred<void> | undefined,
  arrivals: 0,
  reset(n: number) {
    this.last = new Float64Array(n)
    this.firstStep = new Float64Array(n)
    this.overhead = new Histogram()
    this.gateAt = 0
    this.gate = undefined
    this.arrivals = 0
  }
}

const step = (i: number, k: number) =>
  Activity.make({
    name: `s${k}`,
    execute: Effect.suspend(() => {
      const t = performance.now()
      if (k === 1) probe.firstStep[i] = t
      else probe.overhead.record(t - probe.last[i]!)
      if (k === probe.gateAt) {
        probe.arrivals++
        if (probe.gate !== undefined) return Effect.map(Deferred.await(probe.gate), () => void (probe.last[i] = performance.now()))
      }
      probe.last[i] = t
      return Effect.void
    })
  })

/** a fresh workflow name per pass, so executions of one pass never hit another's journal */
const makeWorkflow = (name: string) => {
  const Linear10 = Workflow.make({
    name,
    payload: { i: Schema.Number },
    idempotencyKey: ({ i }) => String(i)
  })
  const handler = Linear10.toLayer(({ i }) =>
    Effect.gen(function*() {
      for (let k = 1; k <= STEPS; k++) yield* step(i, k)
    })
  )
  return { Linear10, handler }
}

type Engine = "memory" | "sqlite"

const engineLayer = (engine: Engine, file: string): Layer.Layer<WorkflowEngine.WorkflowEngine, unknown> =>
  engine === "memory"
    ? WorkflowEngine.layerMemory
    : ClusterWorkflowEngine.layer.pipe(
      Layer.provideMerge(SingleRunner.layer({ runnerStorage: "memory" })),
      Layer.provide(SqliteClient.layer({ filename: file })),
      Layer.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )

let passes = 0

const runPass = async (engine: Engine, n: number, onStarted?: () => Promise<void>) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-wf-"))
  const { handler, Linear10 } = makeWorkflow(`linear10-${passes++}`)
  const layer = handler.pipe(Layer.provideMerge(engineLayer(engine, path.join(dir, "wf.db"))))
  let t0 = 0
  const program = Effect.gen(function*() {
    t0 = performance.now()
    const all = Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => Linear10.execute({ i }), {
      concurrency: "unbounded",
      discard: true
    })
    if (onStarted === undefined) return yield* all
    const fiber = yield* Effect.fork(all)
    yield* Effect.promise(onStarted)
    yield* fiber.await
  })
  await Effect.runPromise(program.pipe(Effect.provide(layer), Effect.scoped))
  const seconds = (performance.now() - t0) / 1000
  fs.rmSync(dir, { recursive: true, force: true })
  return seconds
}

interface Args {
  readonly workload: "w1" | "w3"
  readonly engine: Engine
  readonly sizes: ReadonlyArray<number>
  readonly heap?: ReadonlyArray<number>
  readonly samples?: number
  readonly warmup?: number
  readonly reps?: number
  readonly repBudget?: number
}

const systemOf = (engine: Engine) =>
  engine === "memory" ? "@effect/workflow (memory engine)" : "@effect/workflow (cluster engine, SQLite)"

const w1 = async (args: Args) => {
  const system = systemOf(args.engine)
  const out = reporter("W1", system)
  if (args.warmup !== undefined && args.warmup > 0) {
    probe.reset(args.warmup)
    await runPass(args.engine, args.warmup)
  }
  for (const n of args.sizes) {
    const { overhead, runs, seconds } = await bestOf(args.reps ?? 1, args.repBudget ?? 20, async () => {
      probe.reset(n)
      const seconds = await runPass(args.engine, n)
      progress(`  ${system}: N=${n} ${Math.round((n * STEPS) / seconds)} transitions/s`)
      return { seconds, overhead: probe.overhead }
    })
    const note = bestNote(runs)
    out(n, "executions/s", round(n / seconds), "1/s", note)
    out(n, "transitions/s", round((n * STEPS) / seconds), "1/s", note)
    out(n, "overhead p50", round(overhead.quantile(0.5)), "ms", note)
    out(n, "overhead p99", round(overhead.quantile(0.99)), "ms", note)
    out(n, "peak RSS", round(peakRssMb()), "MB", "of the child process so far (sizes run in ascending order)")
    if (args.heap?.includes(n) === true) {
      probe.reset(n)
      probe.gateAt = 5
      const gate = probe.gate = Deferred.unsafeMake<void>(FiberId.none)
      const base = heapAfterGc()
      let perExecution = 0
      await runPass(args.engine, n, async () => {
        await until(() => probe.arrivals >= n)
        perExecution = (heapAfterGc() - base) / n
        Deferred.unsafeDone(gate, Exit.void)
      })
      out(n, "heap per in-flight execution", round(perExecution), "B", "all N held in activity 5 of 10, after a full GC")
    }
  }
}

const w3 = async (args: Args) => {
  const system = systemOf(args.engine)
  const out = reporter("W3", system)
  const samples = args.samples ?? 200
  const start = new Histogram()
  probe.reset(samples)
  const { handler, Linear10 } = makeWorkflow("latency")
  const layer = handler.pipe(Layer.provideMerge(engineLayer(args.engine, ":memory:")))
  await Effect.runPromise(
    Effect.gen(function*() {
      for (let i = 0; i < samples; i++) {
        const t0 = performance.now()
        yield* Linear10.execute({ i })
        start.record(probe.firstStep[i]! - t0)
      }
    }).pipe(Effect.provide(layer), Effect.scoped)
  )
  out(0, "start -> first step p50", round(start.quantile(0.5)), "ms", `low load, ${start.count} samples`)
  out(0, "start -> first step p99", round(start.quantile(0.99)), "ms", `low load, ${start.count} samples`)
}

export const main = (args: Args) => (args.workload === "w1" ? w1(args) : w3(args))
