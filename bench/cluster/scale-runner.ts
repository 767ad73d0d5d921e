/**
 * One runner of bench/cluster/scale.ts: `Cluster.layer` on Postgres with one procedure whose
 * single step records that it started (execution, this pid) in `<prefix>_effects` (in batches,
 * every 100 ms) and then holds for `hold` ms, so executions stay in flight. Prints `{"held":n}` when the number of
 * shards it holds changes; on `start <n>` it starts n executions in its own shards, 64 at a
 * time, and prints `{"started":n}`.
 *
 * argv: <postgres url> <table prefix> <port> <json options: { shards, lease, hold }>
 */
import { NodeRuntime } from "@effect/platform-node"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Effect, Logger, LogLevel, Queue, Redacted, Schedule, Schema } from "effect"
import * as readline from "node:readline"
import * as Cluster from "../../src/Cluster.js"
import * as Procedure from "../../src/Procedure.js"
import * as Runtime from "../../src/Runtime.js"
import * as SqlStore from "../../src/SqlStore.js"

const [url, prefix, port] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4])]
const options = JSON.parse(process.argv[5] ?? "{}") as { shards: number; lease: number; hold: number }

/**
 * The steps that started since the last flush: written every 100 ms in one statement, so that
 * the bench measures the failover rather than 10,000 single-row INSERTs through the pool
 * (which queue ahead of the store's own reads on a loaded machine).
 */
let started: Array<string> = []

const Hold = Procedure.make("hold", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "s1",
  states: {
    s1: Procedure.step({
      run: ({ executionId }) =>
        Effect.zipRight(Effect.sync(() => void started.push(executionId)), Effect.sleep(options.hold)),
      timeout: "1 hour",
      next: "done"
    }),
    done: Procedure.final()
  }
})

const print = (o: unknown) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(o)}\n`))

const main = Effect.gen(function*() {
  const shards = yield* SqlStore.Shards
  let last = -1
  const report = Effect.gen(function*() {
    const size = (yield* shards.held).size
    if (size === last) return
    last = size
    yield* print({ held: size })
  })
  yield* Effect.forkScoped(Effect.repeat(report, Schedule.spaced("20 millis")))
  const sql = yield* SqlClient.SqlClient
  const flush = Effect.suspend(() => {
    if (started.length === 0) return Effect.void
    const ids = started
    started = []
    return sql`INSERT INTO ${sql(`${prefix}_effects`)} ${sql.insert(ids.map((id) => ({ execution_id: id, pid: process.pid })))}`
  })
  yield* Effect.forkScoped(Effect.repeat(Effect.orDie(flush), Schedule.spaced("100 millis")))
  if (process.env.PROCTOR_BENCH_MEMORY === "1") {
    yield* Effect.forkScoped(Effect.repeat(
      Effect.sync(() => {
        const m = process.memoryUsage()
        process.stderr.write(`MEM ${port} heap ${Math.round(m.heapUsed / 1e6)}/${Math.round(m.heapTotal / 1e6)} MB rss ${Math.round(m.rss / 1e6)} MB\n`)
      }),
      Schedule.spaced("2 seconds")
    ))
  }
  const lines = yield* Queue.unbounded<string>()
  readline.createInterface({ input: process.stdin }).on("line", (line) => Queue.unsafeOffer(lines, line))
  let n = 0
  while (true) {
    const count = Number(/^start (\d+)$/.exec(yield* Queue.take(lines))?.[1] ?? 0)
    const held = yield* shards.held
    const ids: Array<string> = []
    while (ids.length < count) {
      const id = `${port}-${n++}`
      if (held.has(shards.shardOf(id))) ids.push(id)
    }
    yield* Effect.forEach(ids, (id) => Runtime.start(Hold, {}, { id }), { concurrency: 64, discard: true })
    yield* print({ started: ids.length })
  }
})

const app = Cluster.layer({
  procedures: [Hold],
  runner: { host: "127.0.0.1", port },
  shards: options.shards,
  lease: options.lease,
  tracing: false,
  store: { prefix }
})

Effect.scoped(main).pipe(
  Effect.provide(app),
  Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 20 })),
  Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  NodeRuntime.runMain
)
