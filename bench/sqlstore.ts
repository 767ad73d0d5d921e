/**
 * Group-commit throughput of the SQLite store: N fibers each drive their own execution
 * and commit transitions back to back (a snapshot update + a history row per commit,
 * each awaited, as actors do). Prints commits/s for several N, next to a raw
 * better-sqlite3 baseline that writes the same rows in transactions of N commits.
 *
 *   npx tsx bench/sqlstore.ts [totalCommits=60000] [synchronous=NORMAL]
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Execution } from "proctor"
import { SqlStore, Store } from "proctor"

const total = Number(process.argv[2] ?? 60_000)
const synchronous = (process.argv[3] ?? "NORMAL") === "FULL" ? "FULL" : "NORMAL"
const concurrencies = [1, 16, 64, 256, 1024]
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-"))

const snapshot = (id: string, seq: number): Execution.Snapshot => ({
  id,
  procedure: "bench",
  version: 1,
  state: `s${seq % 7}`,
  status: "running",
  context: { orderId: id, amount: 42.5, items: ["a", "b", "c"], step: seq },
  visit: seq,
  attempt: 0,
  seq,
  rowVersion: seq,
  startedAt: 1_700_000_000_000,
  enteredAt: 1_700_000_000_000 + seq,
  updatedAt: 1_700_000_000_000 + seq
})

const transition = (id: string, seq: number): Execution.Transition => ({
  executionId: id,
  seq,
  from: `s${(seq + 6) % 7}`,
  to: `s${seq % 7}`,
  status: "running",
  cause: "step",
  at: 1_700_000_000_000 + seq,
  duration: 1
})

interface Rates {
  readonly wall: number
  readonly cpu: number
}

const rates = (commits: number, start: number, cpu: NodeJS.CpuUsage): Rates => {
  const used = process.cpuUsage(cpu)
  return {
    wall: commits / ((performance.now() - start) / 1000),
    cpu: commits / ((used.user + used.system) / 1e6)
  }
}

const fmt = (r: Rates) => `${Math.round(r.wall).toString().padStart(7)} (${Math.round(r.cpu).toString().padStart(7)}/cpu-s)`

const viaStore = (n: number) => {
  const perActor = Math.ceil(total / n)
  const file = path.join(dir, `store-${n}.db`)
  const program = Effect.gen(function*() {
    const store = yield* Store.Store
    const ids = Array.from({ length: n }, (_, i) => `exec-${i}`)
    yield* Effect.forEach(ids, (id) => store.create(snapshot(id, 0), transition(id, 0)), { concurrency: "unbounded" })
    const start = performance.now()
    const cpu = process.cpuUsage()
    yield* Effect.forEach(
      ids,
      (id) =>
        Effect.gen(function*() {
          for (let seq = 1; seq <= perActor; seq++) {
            yield* store.commit({ snapshot: snapshot(id, seq), expectedVersion: seq - 1, transition: transition(id, seq) })
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    return rates(perActor * n, start, cpu)
  })
  return Effect.runPromise(
    program.pipe(Effect.provide(Layer.fresh(SqlStore.layerSqlite({ filename: file, synchronous }))))
  )
}

/** The same rows through better-sqlite3 alone, in transactions of `batch` commits. */
const raw = async (batch: number) => {
  const file = path.join(dir, `raw-${batch}.db`)
  // create the schema the store uses, then close it
  await Effect.runPromise(Effect.provide(Effect.void, Layer.fresh(SqlStore.layerSqlite({ filename: file }))))
  const db = new Database(file)
  db.pragma("journal_mode = WAL")
  db.pragma(`synchronous = ${synchronous}`)
  // the same tuning the store gives its writer connection
  db.pragma("cache_size = -65536")
  db.pragma("wal_autocheckpoint = 10000")
  const cols = [
    "procedure_name", "procedure_version", "current_state", "status", "context", "visit", "retry_count", "seq",
    "row_version", "started_at", "entered_at", "updated_at"
  ]
  const insertExec = db.prepare(`INSERT INTO proctor_executions (execution_id, ${cols.join(", ")}) VALUES (${["?", ...cols.map(() => "?")].join(", ")})`)
  const update = db.prepare(`UPDATE proctor_executions SET ${cols.map((c) => `${c} = ?`).join(", ")} WHERE execution_id = ? AND row_version = ?`)
  const insertT = db.prepare(
    "INSERT INTO proctor_transitions (execution_id, seq, from_state, to_state, status, cause, event, at, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const values = (s: Execution.Snapshot) => [
    s.procedure, s.version, s.state, s.status, JSON.stringify(s.context), s.visit, s.attempt, s.seq, s.rowVersion, s.startedAt,
    s.enteredAt, s.updatedAt
  ]
  const ids = Array.from({ length: batch }, (_, i) => `exec-${i}`)
  db.transaction(() => {
    for (const id of ids) insertExec.run(id, ...values(snapshot(id, 0)))
  })()
  const perActor = Math.ceil(total / batch)
  const start = performance.now()
  const cpu = process.cpuUsage()
  const write = db.transaction((seq: number) => {
    for (const id of ids) {
      const s = snapshot(id, seq)
      if (update.run(...values(s), id, seq - 1).changes !== 1) throw new Error("conflict")
      const t = transition(id, seq)
      insertT.run(t.executionId, t.seq, t.from, t.to, t.status, t.cause, null, t.at, t.duration)
    }
  })
  for (let seq = 1; seq <= perActor; seq++) write(seq)
  const rate = rates(perActor * batch, start, cpu)
  db.close()
  return rate
}

const main = async () => {
  console.log(`SQLite group commit, synchronous=${synchronous}, ~${total} commits per row, ${os.cpus().length} cores`)
  console.log("committers | SqlStore commits/s           | raw better-sqlite3 rows/s (txn of N)")
  for (const n of concurrencies) {
    const store = await viaStore(n)
    const baseline = await raw(n)
    console.log(`${String(n).padStart(10)} | ${fmt(store)} | ${fmt(baseline)}`)
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
