/**
 * The physical limit of durable mode: better-sqlite3 alone writing, per execution, the
 * rows SqlStore writes for W1 (an `executions` row and its first `transitions` row at
 * start, then per step an `UPDATE` of the execution row with its row-version check and a
 * history `INSERT`), with the same statements, the same parameter encoding, the same
 * connection tuning (WAL, 64 MB cache, checkpoints every 10,000 pages) and the same
 * batching: transactions of at most 512 writes (SqlStore's `maxBatchSize`). No runtime,
 * no fibers, no queue: the N executions advance in lock step, one write each per round.
 * Ids are made as Proctor makes them (time-ordered UUIDs): the id format alone doubles or
 * halves what SQLite does here, by how many B-tree pages a batch touches.
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import type { Execution } from "proctor"
import { SqlStore } from "proctor"
import {
  executionColumns,
  snapshotParams,
  snapshotUpdateParams,
  tables,
  transitionColumns,
  transitionParams
} from "../../src/internal/sqlSchema.js"
import { newId } from "../../src/internal/runtime.js"
import { bestNote, bestOf, peakRssMb, progress, reporter } from "../lib/child.js"
import { STEPS, tempDb } from "../lib/proctor.js"
import { round } from "../lib/stats.js"

interface Args {
  readonly synchronous: "NORMAL" | "FULL"
  readonly sizes: ReadonlyArray<number>
  readonly batch?: number
  readonly warmup?: number
  readonly reps?: number
  readonly repBudget?: number
}

/** execution ids as Proctor makes them (UUID v7: time-ordered; see `newId`) */
let ids: Array<string> = []

const snapshot = (i: number, k: number, now: number): Execution.Snapshot => {
  const state = k <= STEPS ? `s${k}` : "done"
  return {
    id: ids[i]!,
    procedure: "bench-linear10",
    version: 1,
    state,
    status: k <= STEPS ? "running" : "succeeded",
    context: { i },
    visit: k,
    attempt: 0,
    seq: k,
    rowVersion: k,
    startedAt: now,
    enteredAt: now,
    updatedAt: now
  }
}

const transition = (i: number, k: number, now: number): Execution.Transition => ({
  executionId: ids[i]!,
  seq: k,
  from: k === 1 ? "" : `s${k - 1}`,
  to: k <= STEPS ? `s${k}` : "done",
  status: k <= STEPS ? "running" : "succeeded",
  cause: k === 1 ? "start" : "step",
  at: now,
  duration: 0
})

export const main = async (args: Args) => {
  const system = `raw better-sqlite3 (${args.synchronous === "FULL" ? "synchronous=FULL" : "NORMAL"})`
  const report = reporter("W1", system)
  const batch = args.batch ?? 512
  const warmup = args.warmup ?? 0
  for (const [pass, n] of [...(warmup > 0 ? [warmup] : []), ...args.sizes].entries()) {
    const out: typeof report = (...a) => (pass === 0 && warmup > 0 ? undefined : report(...a))
    const once = async () => {
      const db = tempDb(`raw-${n}`)
      // the store's own migrations make the tables
      await Effect.runPromise(Effect.provide(Effect.void, Layer.fresh(SqlStore.layerSqlite({ filename: db.file }))))
      const conn = new Database(db.file)
      conn.pragma("journal_mode = WAL")
      conn.pragma(`synchronous = ${args.synchronous}`)
      conn.pragma("cache_size = -65536")
      conn.pragma("wal_autocheckpoint = 10000")
      const t = tables("proctor")
      const insertExecution = conn.prepare(
        `INSERT INTO ${t.executions} (${executionColumns.join(", ")}) VALUES (${executionColumns.map(() => "?").join(", ")})`
      )
      const update = conn.prepare(
        `UPDATE ${t.executions} SET ${executionColumns.slice(1).map((c) => `${c} = ?`).join(", ")} WHERE execution_id = ? AND row_version = ?`
      )
      const insertTransition = conn.prepare(
        `INSERT INTO ${t.transitions} (${transitionColumns.join(", ")}) VALUES (${transitionColumns.map(() => "?").join(", ")})`
      )
      const begin = conn.prepare("BEGIN IMMEDIATE")
      const commit = conn.prepare("COMMIT")
      const t0 = performance.now()
      const cpu0 = process.cpuUsage()
      ids = Array.from({ length: n }, () => newId(Date.now()))
      // round 1 creates, rounds 2..11 are the ten step transitions
      for (let k = 1; k <= STEPS + 1; k++) {
        for (let from = 0; from < n; from += batch) {
          const now = Date.now()
          begin.run()
          for (let i = from; i < Math.min(n, from + batch); i++) {
            if (k === 1) {
              insertExecution.run(snapshotParams(snapshot(i, 1, now)))
            } else if (update.run(snapshotUpdateParams(snapshot(i, k, now), k - 1)).changes !== 1) {
              throw new Error("conflict")
            }
            insertTransition.run(transitionParams(transition(i, k, now)))
          }
          commit.run()
        }
      }
      const seconds = (performance.now() - t0) / 1000
      const cpu = process.cpuUsage(cpu0)
      conn.close()
      db.remove()
      progress(`  ${system}: N=${n} ${Math.round((n * STEPS) / seconds)} transitions/s, CPU ${round((cpu.user + cpu.system) / (n * STEPS))} µs per transition`)
      return { seconds }
    }
    const { runs, seconds } = await bestOf(pass === 0 && warmup > 0 ? 1 : args.reps ?? 1, args.repBudget ?? 20, once)
    const note = bestNote(runs)
    out(n, "executions/s", round(n / seconds), "1/s", note)
    out(n, "transitions/s", round((n * STEPS) / seconds), "1/s", note)
    out(n, "peak RSS", round(peakRssMb()), "MB")
  }
}
