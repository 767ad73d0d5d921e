/**
 * Failover spike for docs/scale-out.md: how long @effect/cluster takes to move the shards of
 * a runner that dies (SIGKILL) or stops (SIGSTOP) to the survivor, on Postgres.
 *
 * Two runner processes (bench/cluster/runner.ts) share one database; once they have split the
 * shards, one is killed (or stopped, then continued) and the survivor's shard count is
 * followed until it holds them all. Prints one JSON line per scenario.
 *
 *   PROCTOR_BENCH_PG_URL=postgres://postgres@127.0.0.1:55433/h_cluster npx tsx bench/cluster/failover.ts
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import type { Options } from "./runner.js"

const url = process.env.PROCTOR_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:55433/postgres"
const here = path.dirname(fileURLToPath(import.meta.url))

interface Runner {
  readonly child: ChildProcess
  held: number
  /** resolves the waiters whenever `held` changes */
  readonly waiters: Set<() => void>
}

const start = (port: number, options: Options): Runner => {
  // node itself, not the tsx wrapper: a signal must reach the runner's own process
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "runner.ts"), String(port), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  const runner: Runner = { child, held: 0, waiters: new Set() }
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    // the cluster's own log lines share stdout
    if (!line.startsWith("{\"port\"")) return void process.stderr.write(`${line}\n`)
    runner.held = (JSON.parse(line) as { held: number }).held
    for (const w of runner.waiters) w()
  })
  return runner
}

/** waits until `test` holds, at most `ms`; returns the time it took, or undefined */
const until = (runners: ReadonlyArray<Runner>, test: () => boolean, ms: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const t0 = Date.now()
    if (test()) return resolve(0)
    const check = () => {
      if (!test()) return
      done(Date.now() - t0)
    }
    const timer = setTimeout(() => done(undefined), ms)
    const done = (result: number | undefined) => {
      clearTimeout(timer)
      for (const r of runners) r.waiters.delete(check)
      resolve(result)
    }
    for (const r of runners) r.waiters.add(check)
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const scenario = async (name: string, signal: "SIGKILL" | "SIGSTOP", options: Options, basePort: number) => {
  const a = start(basePort, options)
  await until([a], () => a.held === options.shards, 30_000)
  const b = start(basePort + 1, options)
  const split = await until([a, b], () => b.held > 0 && a.held + b.held === options.shards, 120_000)
  await sleep(2_000)
  const before = { a: a.held, b: b.held }
  const t0 = Date.now()
  b.child.kill(signal)
  const limit = 120_000
  const failover = await until([a], () => a.held === options.shards, limit)
  let continued: number | undefined
  if (signal === "SIGSTOP") {
    // the stopped runner comes back: how long until it notices it holds nothing it may not
    b.child.kill("SIGCONT")
    continued = await until([b], () => b.held === 0 || a.held + b.held === options.shards, 30_000)
  }
  const result = {
    name,
    signal,
    options: { ...options, url: undefined },
    splitMs: split,
    before,
    failoverMs: failover ?? `> ${limit}`,
    afterContinueMs: continued,
    after: { a: a.held, b: b.held },
    totalMs: Date.now() - t0
  }
  console.log(JSON.stringify(result))
  a.child.kill("SIGTERM")
  b.child.kill("SIGKILL")
  await sleep(1_000)
}

const base = { url, shards: 300 }
const only = process.argv[2]
const scenarios: Array<[string, "SIGKILL" | "SIGSTOP", Omit<Options, "url" | "shards" | "prefix">]> = [
  ["defaults, advisory locks", "SIGKILL", { advisory: true, expiration: 35_000, refresh: 10_000, assignments: 3_000, health: 60_000 }],
  ["tuned, advisory locks", "SIGKILL", { advisory: true, expiration: 6_000, refresh: 2_000, assignments: 1_000, health: 2_000 }],
  ["tuned, lock table", "SIGKILL", { advisory: false, expiration: 6_000, refresh: 2_000, assignments: 1_000, health: 2_000 }],
  ["tuned, advisory locks", "SIGSTOP", { advisory: true, expiration: 6_000, refresh: 2_000, assignments: 1_000, health: 2_000 }],
  ["tuned, lock table", "SIGSTOP", { advisory: false, expiration: 6_000, refresh: 2_000, assignments: 1_000, health: 2_000 }]
]
let port = 34600
for (const [name, signal, o] of scenarios) {
  if (only !== undefined && !`${name} ${signal}`.includes(only)) continue
  await scenario(name, signal, { ...base, ...o, prefix: `spike${port}` }, port)
  port += 10
}
