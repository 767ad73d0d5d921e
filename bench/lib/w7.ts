/**
 * W7 in the orchestrator: Proctor with 1, 2 and 3 runner processes (`Cluster.layer`) on one
 * Postgres, next to DBOS Transact with as many processes on the same server, in the same
 * run. Each configuration gets a fresh database; its processes (bench/cases/w7.ts) start one
 * after another, Proctor's until they have split the shards; then a warm-up phase, `runs`
 * measured phases (medians reported) and, with one process, a phase of one execution at a
 * time (the latency of an execution alone).
 */
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import type { PhaseResult } from "../cases/w7.js"
import { repoRoot } from "./bundle.js"
import type { Figure } from "./child.js"
import { findServer, freePort, query, serverCpu, settings, withDatabase } from "./postgres.js"
import { Histogram, round } from "./stats.js"

export interface Settings {
  /** total concurrent executions (closed loop), split evenly over a configuration's processes */
  readonly concurrency: number
  readonly processes: ReadonlyArray<number>
  readonly warmupSeconds: number
  /** each run: a closed loop for `ramp` seconds not measured (all clients start at once), then `seconds` measured */
  readonly ramp: number
  readonly seconds: number
  readonly runs: number
  /** executions one after another for the latency alone (configurations of one process) */
  readonly alone: number
  readonly shards: number
  /**
   * On a server the bench started: the fsync settings to run every configuration with, in
   * turn (the first pass's figures carry the plain names, the goals use them). A server
   * named by PROCTOR_BENCH_PG_URL runs once, as it is configured.
   */
  readonly fsync: ReadonlyArray<"on" | "off">
}

interface Child {
  readonly done: Promise<number | null>
  readonly kill: () => void
  readonly send: (line: string) => void
}

export interface Env {
  readonly log: (line: string) => void
  /** starts a bench child of case `w7` with these arguments; `onLine` sees its stdout */
  readonly spawn: (args: Record<string, unknown>, onLine: (line: string) => void) => Child
  readonly figures: Array<Figure>
  readonly failures: Array<string>
}

/** what the report says about the server and the peers, beside the figures */
export interface Info {
  readonly server?: string
  /** the server's settings in each pass, and the suffix of that pass's system names */
  readonly passes: Array<{ readonly suffix: string; readonly settings: Record<string, string> }>
  readonly dbos?: string
  readonly skipped: Array<string>
}

const STEPS = 10
const dbosVersion = "5.3.0"

/** the systems' names; `suffix` tells the second pass on a throwaway server (fsync off) apart */
export const w7Systems = {
  proctor: (n: number, suffix = "") => `Proctor, ${n} runner${n === 1 ? "" : "s"}${suffix}`,
  dbos: (n: number, suffix = "") => `DBOS Transact ${dbosVersion}, ${n} process${n === 1 ? "" : "es"}${suffix}`
}

/** the name suffix of the figures taken with fsync turned off on the bench's own server */
export const fsyncOffSuffix = ", fsync off"

interface Proc {
  readonly child: Child
  ready: boolean
  held: number
  exited: boolean
  readonly results: Array<PhaseResult>
  /** when each phase's measured window opened (performance.now()) */
  readonly windows: Array<number>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const waitFor = async (test: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting until ${what}`)
    await sleep(50)
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** DBOS installed into .cache/peers/dbos, or why not */
const installDbos = (): { dir: string } | { reason: string } => {
  try {
    const out = execFileSync(process.execPath, [path.join(repoRoot, "scripts", "bench-peers.mjs"), "dbos"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
    return { dir: out.trim().split("\n").pop()! }
  } catch (error) {
    const stderr = error instanceof Error && "stderr" in error ? String((error as { stderr: unknown }).stderr).trim() : String(error)
    return { reason: stderr.split("\n").slice(-3).join(" ") }
  }
}

interface Measured {
  readonly perProcess: ReadonlyArray<PhaseResult>
  /** the server's CPU time per second while every process's window was open, µs/s */
  readonly serverCpuRate: number | undefined
}

/** one configuration: its processes, the shards split, warm-up, the runs, the latency alone */
const configuration = async (
  env: Env,
  s: Settings,
  system: "proctor" | "dbos",
  count: number,
  url: string,
  peer: string | undefined,
  prefix: string,
  cpuOfServer: (() => number) | undefined,
  suffix: string
) => {
  const label = system === "proctor" ? w7Systems.proctor(count, suffix) : w7Systems.dbos(count, suffix)
  const procs: Array<Proc> = []
  const stop = async () => {
    for (const p of procs) p.child.send(JSON.stringify({ cmd: "exit" }))
    const all = Promise.all(procs.map((p) => p.child.done))
    if ((await Promise.race([all, sleep(30_000).then(() => "late" as const)])) === "late") for (const p of procs) p.child.kill()
    await all
  }
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort()
      const proc: Proc = { child: undefined as unknown as Child, ready: false, held: 0, exited: false, results: [], windows: [] }
      const child = env.spawn({ system, url, port, shards: s.shards, prefix, peer }, (line) => {
        if (line === "@@ready") proc.ready = true
        else if (line.startsWith("@@held ")) proc.held = Number(line.slice(7))
        else if (line.startsWith("@@phase ")) proc.results.push(JSON.parse(line.slice(8)) as PhaseResult)
        else if (line === "@@window") proc.windows.push(performance.now())
        else env.log(`  ${line}`)
      })
      ;(proc as { child: Child }).child = child
      void child.done.then(() => void (proc.exited = true))
      procs.push(proc)
      await waitFor(() => proc.ready || proc.exited, 120_000, `${label}: process ${i + 1} is ready`)
      if (proc.exited) throw new Error(`${label}: process ${i + 1} exited before it was ready`)
    }
    if (system === "proctor") {
      const split = () => procs.every((p) => p.held > 0) && procs.reduce((a, p) => a + p.held, 0) === s.shards
      const t0 = Date.now()
      await waitFor(split, 120_000, `${label}: the runners hold all ${s.shards} shards between them`)
      // the cluster may still move a few shards: wait until the split has held for 2 s
      let stable = Date.now()
      let last = procs.map((p) => p.held).join("/")
      while (Date.now() - stable < 2000) {
        await sleep(100)
        const now = procs.map((p) => p.held).join("/")
        if (now !== last || !split()) [stable, last] = [Date.now(), now]
        if (Date.now() - t0 > 120_000) throw new Error(`${label}: the shards did not settle`)
      }
      env.log(`  ${label}: shards split ${last}`)
    }
    const phase = async (concurrency: number, spec: { ramp?: number; seconds?: number; count?: number }, tag: string): Promise<Measured> => {
      const active = spec.count === undefined ? procs : procs.slice(0, 1)
      const before = active.map((p) => p.results.length)
      const windowsBefore = active.map((p) => p.windows.length)
      active.forEach((p, i) => {
        const share = Math.floor(concurrency / active.length) + (i < concurrency % active.length ? 1 : 0)
        p.child.send(JSON.stringify({ cmd: "run", concurrency: share, ...spec, tag }))
      })
      const limit = ((spec.ramp ?? 0) + (spec.seconds ?? 0) + 300) * 1000
      const ended = () => active.every((p, i) => p.results.length > before[i]! || p.exited)
      // the server's CPU while every process's window is open: from the last to open to the first to close
      let serverCpuRate: number | undefined
      if (cpuOfServer !== undefined && spec.seconds !== undefined) {
        await waitFor(() => ended() || active.every((p, i) => p.windows.length > windowsBefore[i]!), limit, `${label}: phase ${tag} measures`)
        if (!ended()) {
          const [t0, cpu0] = [performance.now(), cpuOfServer()]
          // windows last at least `seconds` (longer when the executions are slow: bench/cases/w7.ts)
          const firstToClose = Math.min(...active.map((p, i) => p.windows[windowsBefore[i]!]!)) + spec.seconds * 1000
          await sleep(Math.max(0, firstToClose - t0 - 50))
          const [t1, cpu1] = [performance.now(), cpuOfServer()]
          if (t1 - t0 > 500) serverCpuRate = (cpu1 - cpu0) / ((t1 - t0) / 1000)
        }
      }
      await waitFor(ended, limit, `${label}: phase ${tag} ends`)
      if (active.some((p) => p.exited)) throw new Error(`${label}: a process exited during phase ${tag}`)
      return { perProcess: active.map((p, i) => p.results[before[i]!]!), serverCpuRate }
    }
    env.log(`  ${label}: warm-up, ${s.warmupSeconds} s at ${s.concurrency} concurrent executions`)
    await phase(s.concurrency, { seconds: s.warmupSeconds }, "warm")
    const runs: Array<ReturnType<typeof summarize>> = []
    for (let r = 1; r <= s.runs; r++) {
      const m = summarize(await phase(s.concurrency, { ramp: s.ramp, seconds: s.seconds }, `r${r}`))
      env.log(`  ${label}: run ${r}/${s.runs}: ${Math.round(m.stepsPerSecond)} steps/s, p50 ${round(m.p50)} ms, p99 ${round(m.p99)} ms, ${round(m.cpuPerTransition)} µs CPU per transition per process${m.serverCpuPerTransition === undefined ? "" : `, Postgres ${round(m.serverCpuPerTransition)} µs`}${m.stuck > 0 ? `, ${m.stuck} stuck` : ""}`)
      if (m.stuck > 0) env.failures.push(`W7 ${label}: ${m.stuck} executions did not end within 60 s in run ${r}`)
      runs.push(m)
    }
    const report = (metric: string, value: number | undefined, unit: string, n = s.concurrency, note?: string) => {
      if (value !== undefined && Number.isFinite(value)) env.figures.push({ workload: "W7", system: label, n, metric, value: round(value), unit, ...(note === undefined ? {} : { note }) })
    }
    const note = `median of ${runs.length} run${runs.length === 1 ? "" : "s"} of ${s.seconds} s`
    const med = (f: (m: ReturnType<typeof summarize>) => number | undefined) => {
      const xs = runs.map(f).filter((x): x is number => x !== undefined)
      return xs.length === 0 ? undefined : median(xs)
    }
    report("steps/s", med((m) => m.stepsPerSecond), "1/s", s.concurrency, note)
    report("10-step latency p50", med((m) => m.p50), "ms", s.concurrency, note)
    report("10-step latency p99", med((m) => m.p99), "ms", s.concurrency, note)
    report("CPU per transition per process", med((m) => m.cpuPerTransition), "µs", s.concurrency, "user + system of each process over the phase, mean of the processes")
    report("Postgres CPU per transition", med((m) => m.serverCpuPerTransition), "µs", s.concurrency, "all server processes, while every process's window was open, over the steps/s")
    if (count === 1 && s.alone > 0) {
      env.log(`  ${label}: ${s.alone} executions one at a time`)
      const m = summarize(await phase(1, { count: s.alone }, "alone"))
      report("10-step latency alone p50", m.p50, "ms", 1, `${s.alone} executions one after another`)
      report("10-step latency alone p99", m.p99, "ms", 1, `${s.alone} executions one after another`)
    }
  } finally {
    await stop()
  }
}

/** one phase's figures, all processes together */
const summarize = (m: Measured) => {
  const latency = new Histogram()
  let stepsPerSecond = 0, stuck = 0
  const cpu: Array<number> = []
  for (const r of m.perProcess) {
    latency.addSparse(r.latency.sparse, r.latency.max, r.latency.sum)
    stepsPerSecond += (r.completed * STEPS) / r.seconds
    stuck += r.stuck
    if (r.total > 0) cpu.push(r.cpuUs / (r.total * STEPS))
  }
  return {
    stepsPerSecond,
    p50: latency.quantile(0.5),
    p99: latency.quantile(0.99),
    stuck,
    cpuPerTransition: cpu.length === 0 ? NaN : cpu.reduce((a, b) => a + b, 0) / cpu.length,
    serverCpuPerTransition: m.serverCpuRate === undefined || stepsPerSecond === 0 ? undefined : m.serverCpuRate / stepsPerSecond
  }
}

/** scaling efficiency: steps/s with n processes over n times the steps/s of one */
const efficiency = (env: Env, s: Settings, label: (n: number) => string) => {
  const one = env.figures.find((f) => f.workload === "W7" && f.system === label(1) && f.metric === "steps/s")
  if (one === undefined) return
  for (const n of s.processes) {
    const f = env.figures.find((g) => g.workload === "W7" && g.system === label(n) && g.metric === "steps/s")
    if (n > 1 && f !== undefined) {
      env.figures.push({ workload: "W7", system: label(n), n: s.concurrency, metric: "scaling efficiency", value: round(f.value / (n * one.value)), unit: "×", note: `steps/s over ${n} × those of 1` })
    }
  }
}

export const runW7 = async (env: Env, s: Settings): Promise<Info> => {
  const info: Info = { passes: [], skipped: [] }
  const found = await findServer()
  if (typeof found === "string") {
    const why = `W7 skipped: ${found}. To run it, set PROCTOR_BENCH_PG_URL=postgres://user@host:port/db (a role that may create databases) or install Postgres's server binaries (apt-get install postgresql)`
    env.log(why)
    info.skipped.push(why)
    return info
  }
  try {
    Object.assign(info, { server: found.origin })
    const cpuOfServer = await serverCpu(found.url)
    if (cpuOfServer === undefined) env.log("  (the server is not on this machine or its data directory is not readable: no Postgres CPU figures)")
    const dbos = installDbos()
    if ("reason" in dbos) {
      const why = `W7: DBOS Transact skipped: could not install it into .cache/peers/dbos (${dbos.reason}); it needs the npm registry once`
      env.log(why)
      info.skipped.push(why)
    } else Object.assign(info, { dbos: dbosVersion })
    let k = 0
    const run = async (system: "proctor" | "dbos", n: number, suffix: string) => {
      const name = `proctor_w7_${process.pid}_${k++}`
      let url = found.url, prefix = `w7_${process.pid}_${k}`, created = false
      try {
        await query(found.url, `CREATE DATABASE ${name}`)
        ;[url, prefix, created] = [withDatabase(found.url, name), "proctor", true]
      } catch (error) {
        // no right to create databases: the tables of each configuration get a prefix of their own
        if (system === "dbos") throw new Error(`W7: DBOS needs a database of its own and CREATE DATABASE failed: ${String(error)}`)
      }
      try {
        await configuration(env, s, system, n, url, "reason" in dbos ? undefined : dbos.dir, prefix, cpuOfServer, suffix)
      } catch (error) {
        env.failures.push(`W7 ${system} with ${n} process(es): ${error instanceof Error ? error.message : String(error)}`)
        env.log(`  failed: ${error instanceof Error ? error.message : String(error)}`)
      } finally {
        if (created) await query(found.url, `DROP DATABASE IF EXISTS ${name}`).catch(() => {})
      }
    }
    const passes = found.owned ? s.fsync : ["as configured"]
    for (const [i, fsync] of passes.entries()) {
      if (fsync !== "as configured") {
        // fsync takes effect on a reload; both systems of a pass run with the same setting
        await query(found.url, `ALTER SYSTEM SET fsync = ${fsync === "on" ? "on" : "off"}`, "SELECT pg_reload_conf()")
        await sleep(500)
      }
      const suffix = i === 0 ? "" : fsync === "off" ? fsyncOffSuffix : `, fsync ${fsync}`
      const conf = await settings(found.url)
      info.passes.push({ suffix, settings: conf })
      env.log(`W7 on ${found.origin}: Postgres ${conf["server_version"]}, fsync ${conf["fsync"]}, synchronous_commit ${conf["synchronous_commit"]}`)
      // the peer first at each count, then Proctor: both under the same conditions, in turns
      for (const n of s.processes) {
        if (!("reason" in dbos)) await run("dbos", n, suffix)
        await run("proctor", n, suffix)
      }
      efficiency(env, s, (n) => w7Systems.proctor(n, suffix))
      efficiency(env, s, (n) => w7Systems.dbos(n, suffix))
    }
  } finally {
    found.stop()
  }
  return info
}

const fmt = (v: number | undefined) =>
  v === undefined ? "–" : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(round(v))

/** the W7 part of the report: the server, one row per configuration, and what was skipped */
export const w7Lines = (figures: ReadonlyArray<Figure>, info: Info | undefined): Array<string> => {
  const rows = figures.filter((f) => f.workload === "W7")
  const out: Array<string> = []
  if (info?.server !== undefined) {
    out.push(`Server: ${info.server}. A fresh database per configuration; each process's connection pool at its default (10).`, "")
    for (const { settings: c, suffix } of info.passes) {
      out.push(`- ${suffix === "" ? "names without a suffix" : `names ending "${suffix}"`}: Postgres ${c["server_version"]}, fsync ${c["fsync"]}, synchronous_commit ${c["synchronous_commit"]}, wal_sync_method ${c["wal_sync_method"]}, shared_buffers ${c["shared_buffers"]} × 8 kB`)
    }
    out.push("")
  }
  out.push(...(info?.skipped ?? []).map((s) => `- ${s}`), ...(info?.skipped.length ? [""] : []))
  if (rows.length === 0) return out
  const names = [...new Set(rows.map((f) => f.system))]
  const load = rows.find((f) => f.metric === "steps/s")
  const get = (system: string, metric: string) => rows.find((f) => f.system === system && f.metric === metric)?.value
  out.push(
    `${load?.n ?? "?"} executions in flight at once (closed loop, split evenly over the processes), each 10 sequential no-op steps; ${load?.note ?? ""}. "Alone": one execution at a time on one process.`,
    "",
    "| system | steps/s | p50 (ms) | p99 (ms) | alone p50 (ms) | alone p99 (ms) | CPU per transition per process (µs) | Postgres CPU per transition (µs) | scaling efficiency |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  )
  for (const name of names) {
    const cells = ["steps/s", "10-step latency p50", "10-step latency p99", "10-step latency alone p50", "10-step latency alone p99", "CPU per transition per process", "Postgres CPU per transition", "scaling efficiency"]
    out.push(`| ${name} | ${cells.map((m) => fmt(get(name, m))).join(" | ")} |`)
  }
  out.push("")
  return out
}
