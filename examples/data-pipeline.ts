/**
 * A batch pipeline: fetch → transform → validate → store, once per batch. The source is
 * flaky at first (a transient error, retried with backoff); `validate` routes a batch
 * with bad rows to `quarantine` instead of `store`; every step updates the context, and
 * the pipeline loops back to `fetch` until all batches are done.
 *
 * Run it: `npx tsx examples/data-pipeline.ts`
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schedule, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * The source did not answer. Declared `transient` on the fetch step, so it is retried.
 *
 * @since 0.1.0
 */
export class SourceUnavailable extends Schema.TaggedError<SourceUnavailable>()("SourceUnavailable", {
  source: Schema.String,
  attempt: Schema.Number
}) {
  override get message(): string {
    return `source "${this.source}" did not answer (attempt ${this.attempt})`
  }
}

const Row = Schema.Struct({ id: Schema.Number, value: Schema.Number })

/**
 * The pipeline's input: which source, how many batches, which batches hold bad rows,
 * and how many attempts of the first fetch fail (the source warming up).
 *
 * @since 0.1.0
 */
export const PipelineInput = Schema.Struct({
  source: Schema.String,
  batches: Schema.Int.pipe(Schema.positive()),
  corrupt: Schema.Array(Schema.Int),
  flakyFetches: Schema.Int.pipe(Schema.nonNegative())
})

const PipelineContext = Schema.Struct({
  ...PipelineInput.fields,
  /** the batch being processed, from 0 */
  batch: Schema.Int,
  rows: Schema.Array(Row),
  problems: Schema.Array(Schema.String),
  stored: Schema.Int,
  quarantined: Schema.Array(Schema.Int)
})

/** The rows of one batch: deterministic, with a negative value in corrupt batches. */
const readBatch = (batch: number, corrupt: boolean) =>
  Array.from({ length: 4 }, (_, i) => ({ id: batch * 4 + i, value: corrupt && i === 2 ? -1 : (batch * 7 + i * 3) % 10 }))

/**
 * The pipeline procedure.
 *
 * @since 0.1.0
 */
export const Pipeline = Procedure.make("data-pipeline", {
  version: 1,
  description: "fetch, transform, validate and store batches; quarantine bad ones",
  input: PipelineInput,
  context: PipelineContext,
  init: (input) => ({ ...input, batch: 0, rows: [], problems: [], stored: 0, quarantined: [] })
}, {
  initial: "fetch",
  states: {
    fetch: Procedure.step({
      run: ({ attempt, context }) =>
        context.batch === 0 && attempt <= context.flakyFetches
          ? Effect.fail(new SourceUnavailable({ source: context.source, attempt }))
          : Effect.as(Effect.sleep("10 millis"), readBatch(context.batch, context.corrupt.includes(context.batch))),
      // only these are retried; any other failure is a business error and ends the run
      transient: ["SourceUnavailable", "TimeoutError"],
      retry: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(4))),
      timeout: "5 seconds",
      update: (rows, context) => ({ ...context, rows }),
      next: "transform"
    }),
    transform: Procedure.step({
      // cents to whole units, say
      run: ({ context }) => Effect.succeed(context.rows.map((r) => ({ ...r, value: r.value * 100 }))),
      update: (rows, context) => ({ ...context, rows }),
      next: "validate"
    }),
    validate: Procedure.step({
      run: ({ context }) =>
        Effect.succeed(context.rows.filter((r) => r.value < 0).map((r) => `row ${r.id} has a negative value`)),
      update: (problems, context) => ({ ...context, problems }),
      // a branch: `next` sees the step's result; `targets` lists where it may go
      next: (problems) => problems.length === 0 ? "store" : "quarantine",
      targets: ["store", "quarantine"]
    }),
    store: Procedure.step({
      run: ({ context }) => Effect.as(Effect.sleep("10 millis"), context.rows.length),
      update: (count, context) => ({ ...context, stored: context.stored + count, batch: context.batch + 1, rows: [] }),
      // a loop: `next` sees the context before `update`, so the batch just stored is `context.batch`
      next: (_, context) =>
        context.batch + 1 < context.batches ? "fetch" : context.quarantined.length > 0 ? "partial" : "done",
      targets: ["fetch", "done", "partial"]
    }),
    quarantine: Procedure.step({
      run: () => Effect.void,
      update: (_, context) => ({
        ...context,
        quarantined: [...context.quarantined, context.batch],
        batch: context.batch + 1,
        rows: []
      }),
      next: (_, context) => context.batch + 1 < context.batches ? "fetch" : "partial",
      targets: ["fetch", "partial"]
    }),
    done: Procedure.final({ outcome: "succeeded" }),
    // a custom outcome: the execution ends `succeeded` and keeps "partial" as its outcome
    partial: Procedure.final({ outcome: "partial" })
  }
})

// ---------------------------------------------------------------------------
// the demo

/**
 * Two runs: "orders" (3 batches, batch 1 corrupt, the first fetch fails twice) and
 * "refunds" (2 clean batches).
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const orders = yield* Runtime.start(Pipeline, { source: "orders", batches: 3, corrupt: [1], flakyFetches: 2 })
  const refunds = yield* Runtime.start(Pipeline, { source: "refunds", batches: 2, corrupt: [], flakyFetches: 0 })
  const [o, r] = yield* Effect.all([awaitEnd(orders), awaitEnd(refunds)], { concurrency: "unbounded" })
  const summary = (context: unknown) => {
    const c = Schema.decodeUnknownSync(PipelineContext)(context)
    return [`stored ${c.stored} rows; quarantined batches: ${c.quarantined.length === 0 ? "none" : c.quarantined.join(", ")}`]
  }
  const runs: ReadonlyArray<Run> = [
    { example: "data-pipeline", label: "orders (flaky source, batch 1 bad)", id: orders, notes: summary(o.context) },
    { example: "data-pipeline", label: "refunds (clean)", id: refunds, notes: summary(r.context) }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`data-pipeline example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Pipeline] }).pipe(Layer.provide(StoreLive))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
