/**
 * Failover at scale (issue 15 item 4): two runner processes (bench/cluster/scale-runner.ts)
 * split the shards, each starts `n` executions whose one step holds for 10 minutes; once all
 * of runner B's are in their step, B is killed with SIGKILL, and the bench times until A
 * holds every shard and until each of B's executions has started its step again on A.
 * Prints one JSON line.
 *
 *   PROCTOR_BENCH_PG_URL=postgres://postgres@127.0.0.1:55433/h_scale npx tsx bench/cluster/scale.ts [n] [lease ms] [shards]
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"

const url = process.env.PROCTOR_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:55433/postgres"
const here = path.dirname(fileURLToPath(import.meta.url))
const n = Number(process.argv[2] ?? 1000)
const lease = Number(process.argv[3] ?? 5000)
const shards = Number(process.argv[4] ?? 300)
const prefix = `scale${Date.now().toString(36)}`

interface Runner {
  readonly child: ChildProcess
  held: number
  started: number
  readonly waiters: Set<() => void>
}

const start = (port: number, profile = false): Runner => {
  const options = JSON.stringify({ shards, lease, hold: 600_000 })
  // PROCTOR_BENCH_PROFILE=<dir>: a CPU profile of the survivor, written when it exits at the end
  const prof = profile && process.env.PROCTOR_BENCH_PROFILE !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROCTOR_BENCH_PROFILE}`] : []
  const child = spawn(process.execPath, [...prof, "--import", "tsx", path.join(here, "scale-runner.ts"), url, prefix, String(port), options], {
    stdio: ["pipe", "pipe", "inherit"]
  })
  const runner: Runner = { child, held: 0, started: 0, waiters: new Set() }
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    if (!line.startsWith("{")) return void process.stderr.write(`${line}\n`)
    const m = JSON.parse(line) as { held?: number; started?: number }
    if (m.held !== undefined) runner.held = m.held
    if (m.started !== undefined) runner.started = m.started
    for (const w of runner.waiters) w()
  })
  return runner
}

const until = (runners: ReadonlyArray<Runner>, test: () => boolean, ms: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const t0 = Date.now()
    if (test()) return resolve(0)
    const check = () => test() && done()
    const timer = setTimeout(() => {
      for (const r of runners) r.waiters.delete(check)
      reject(new Error(`timed out after ${ms} ms`))
    }, ms)
    const done = () => {
      clearTimeout(timer)
      for (const r of runners) r.waiters.delete(check)
      resolve(Date.now() - t0)
    }
    for (const r of runners) r.waiters.add(check)
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const db = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url) }))
const query = (text: string) => db.runPromise(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<{ n: string }>(text)))
await query(`CREATE TABLE ${prefix}_effects (execution_id TEXT NOT NULL, pid INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`)
const count = async (where: string) => Number((await query(`SELECT count(DISTINCT execution_id) AS n FROM ${prefix}_effects WHERE ${where}`))[0]!.n)

/** the shards whose cluster lock the runner on this port holds */
const locksOf = async (port: number) =>
  Number((await query(`SELECT count(*) AS n FROM ${prefix}_cluster_locks WHERE address LIKE '%${port}'`))[0]!.n)

const port = 37000 + Math.floor(Math.random() * 1000)
const result: Record<string, unknown> = { n, lease, shards }
const a = start(port, true)
const runners = [a]
try {
  // one after the other: the first creates the tables
  await until([a], () => a.held === shards, 120_000)
  const b = start(port + 1)
  runners.push(b)
  await until([a, b], () => a.held > 0 && b.held > 0 && a.held + b.held === shards, 120_000)
  const t = Date.now()
  a.child.stdin!.write(`start ${n}\n`)
  b.child.stdin!.write(`start ${n}\n`)
  await until([a, b], () => a.started === n && b.started === n, 600_000)
  result.startMs = Date.now() - t
  // every execution of B in its step
  while ((await count(`pid = ${b.child.pid}`)) < n) await sleep(200)
  result.inFlightMs = Date.now() - t
  const kill = Date.now()
  b.child.kill("SIGKILL")
  // how old B's last lease refresh was at the kill: its locks expire a lease after it
  result.leaseAgeAtKillMs = Math.round(Number((await query(`SELECT extract(epoch FROM now() - max(acquired_at)) * 1000 AS n
    FROM ${prefix}_cluster_locks WHERE address LIKE '%${port + 1}'`))[0]!.n) - (Date.now() - kill))
  const deadline = kill + 600_000
  let shardsMoved: number | undefined
  // when A holds the cluster's lock of every shard (B's expired), before its claims in Proctor's store
  let locksMoved: number | undefined
  let half: number | undefined
  const progress: Array<[number, number, number]> = []
  result.progress = progress
  while (Date.now() < deadline) {
    if (shardsMoved === undefined && a.held === shards) shardsMoved = Date.now() - kill
    if (locksMoved === undefined && (await locksOf(port)) === shards) locksMoved = Date.now() - kill
    const again = await count(`pid = ${a.child.pid} AND execution_id LIKE '${port + 1}-%'`)
    if (half === undefined && again >= n / 2) half = Date.now() - kill
    if (progress.length === 0 || Date.now() - kill - progress[progress.length - 1]![0] >= 1000) {
      progress.push([Date.now() - kill, a.held, again])
      // PROCTOR_BENCH_PGSTAT=1: what the database's sessions are doing, each second
      if (process.env.PROCTOR_BENCH_PGSTAT === "1") {
        const rows = await query(`SELECT state, wait_event_type AS wt, wait_event AS w, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q, count(*) AS n
          FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC LIMIT 6`)
        process.stderr.write(`${Date.now() - kill} ${JSON.stringify(rows)}\n`)
      }
    }
    if (again === n) {
      result.allRunningAgainMs = Date.now() - kill
      break
    }
    await sleep(100)
  }
  Object.assign(result, { locksMovedMs: locksMoved, shardsMovedMs: shardsMoved, halfRunningAgainMs: half })
  if (result.allRunningAgainMs === undefined) result.allRunningAgainMs = "> 600000"
} finally {
  console.log(JSON.stringify(result))
  a.child.kill("SIGINT")
  await Promise.race([new Promise((r) => a.child.once("exit", r)), sleep(20_000)])
  for (const r of runners) r.child.kill("SIGKILL")
  for (const t of ["executions", "transitions", "errors", "inbox", "compensations", "shards", "migrations", "effects", "cluster_runners", "cluster_locks"]) {
    await query(`DROP TABLE IF EXISTS ${prefix}_${t}`)
  }
  await db.dispose()
}
