/**
 * One 10-step execution at a time (W7's "alone" shape, without W7's orchestration), for A/B
 * comparisons of the latency of an execution alone: `Runtime.start` then `Runtime.await`,
 * `runs` times after 50 of warm-up. Prints the p50/p90 of an execution, the process's CPU per
 * execution, and, on Postgres, each commit split in two: the round trip (the writer's
 * statement handed to `pg` → its response, `pg`'s own work included) and the runner's time
 * (a response → the next statement handed to `pg`).
 *
 *   npm run build && npx tsx bench/pg-lone.ts <postgres url> single|cluster|sqlite|memory [runs] [--watch]
 *
 * `single`: `Runtime.layer` on `SqlStore.layer` (one process); `cluster`: `Cluster.layer`
 * (4 shards, fenced); `--watch`: a `Runtime.watch()` subscriber of every change, as W7 has.
 * Tables get a fresh prefix each run (`lone_*`), left in the database.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema, Stream } from "effect"
import { createRequire } from "node:module"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import * as Cluster from "proctor/Cluster"

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"))
const [url, mode = "single"] = args
const runs = Number(args[2] ?? 300)
const watch = process.argv.includes("--watch")
if (url === undefined || !["single", "cluster", "sqlite", "memory"].includes(mode)) {
  console.log("usage: npx tsx bench/pg-lone.ts <postgres url> single|cluster|sqlite|memory [runs] [--watch]")
  process.exit(1)
}

// each commit's round trip and the runner's time before the next, from `pg`'s side
const roundTrips: Array<number> = []
const runnerTimes: Array<number> = []
let measuring = false
let lastResponse = 0
type Query = (this: unknown, config: unknown, values?: unknown, callback?: unknown) => unknown
// `pg` as @effect/sql-pg loads it (no types of its own here)
const client = (createRequire(import.meta.url)("pg") as { readonly Client: { readonly prototype: { query: Query } } }).Client.prototype
const query = client.query
client.query = function(config, values, callback) {
  const done = typeof values === "function" ? values : callback
  const name = typeof config === "object" && config !== null ? String((config as { name?: unknown }).name ?? "") : ""
  // the writer's statements are named proctor_p_*: the others (reads, the cluster's) are not timed
  if (typeof done !== "function" || !name.startsWith("proctor_p_")) return query.call(this, config, values, callback)
  const sent = performance.now()
  if (measuring && lastResponse > 0) runnerTimes.push(sent - lastResponse)
  const timed = (error: unknown, result: unknown) => {
    lastResponse = performance.now()
    if (measuring) roundTrips.push(lastResponse - sent)
    done(error, result)
  }
  return typeof values === "function" ? query.call(this, config, timed) : query.call(this, config, values, timed)
}

const states: Record<string, Procedure.AnyState> = { done: Procedure.final() }
for (let k = 1; k <= 10; k++) states[`s${k}`] = Procedure.step({ run: () => Effect.void, next: (k < 10 ? `s${k + 1}` : "done") as "done" })
const Ten = Procedure.make("lone", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "s1",
  // built in a loop, so typed loosely here; registration checks the real graph
  states: states as unknown as { readonly s1: Procedure.Final; readonly done: Procedure.Final }
})

const prefix = `lone_${Math.random().toString(36).slice(2, 7)}`
const app = mode === "memory"
  ? Runtime.layer({ procedures: [Ten], tracing: false }).pipe(Layer.provideMerge(Store.layerMemory))
  : mode === "sqlite"
  ? Runtime.layer({ procedures: [Ten], tracing: false }).pipe(Layer.provideMerge(SqlStore.layerSqlite({ filename: `/tmp/${prefix}.db` })))
  : mode === "cluster"
  ? Cluster.layer({ procedures: [Ten], runner: { host: "127.0.0.1", port: 23999 }, shards: 4, tracing: false, store: { prefix } })
  : Runtime.layer({ procedures: [Ten], tracing: false }).pipe(Layer.provideMerge(SqlStore.layer({ prefix })))

const quantile = (xs: Array<number>, q: number) => xs.length === 0 ? NaN : xs.sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!

const main = Effect.gen(function*() {
  if (watch) {
    const runtime = yield* Runtime.Runtime
    let ended = 0
    yield* Effect.forkScoped(Stream.runForEachChunk(runtime.watch(), (chunk) =>
      Effect.sync(() => {
        for (const e of chunk) if (e.status === "succeeded") ended++
      })))
    yield* Effect.addFinalizer(() => Effect.sync(() => console.log(`watch saw ${ended} ends`)))
  }
  if (mode === "cluster") {
    const shards = yield* SqlStore.Shards
    yield* Effect.repeat(shards.held, { until: (held) => held.size === 4 }).pipe(Effect.timeout("60 seconds"), Effect.orDie)
  }
  const times: Array<number> = []
  let cpu0 = process.cpuUsage()
  for (let i = 0; i < runs + 50; i++) {
    if (i === 50) {
      measuring = true
      cpu0 = process.cpuUsage()
    }
    const t0 = performance.now()
    const id = yield* Runtime.start(Ten, {})
    yield* Runtime.await(id)
    if (i >= 50) times.push(performance.now() - t0)
  }
  measuring = false
  const cpu = process.cpuUsage(cpu0)
  const ms = (x: number) => `${x.toFixed(2)} ms`
  console.log(`${mode}${watch ? " --watch" : ""}: ${runs} executions alone, p50 ${ms(quantile(times, 0.5))}, p90 ${ms(quantile(times, 0.9))}; process CPU ${ms((cpu.user + cpu.system) / 1000 / runs)} per execution`)
  if (roundTrips.length > 0) {
    console.log(`  per commit: round trip p50 ${ms(quantile(roundTrips, 0.5))} (p90 ${ms(quantile(roundTrips, 0.9))}), runner p50 ${ms(quantile(runnerTimes, 0.5))} (p90 ${ms(quantile(runnerTimes, 0.9))})`)
  }
})

const pgLayer = PgClient.layer({ url: Redacted.make(url) })
Effect.runPromise(Effect.scoped(main).pipe(Effect.provide(app as Layer.Layer<Runtime.Runtime | SqlStore.Shards, unknown, never>), Effect.provide(pgLayer))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
