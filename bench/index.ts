/**
 * The benchmark suite: Proctor side by side with XState v5, @effect/workflow and raw
 * better-sqlite3, in the same run, so that ratios hold even on a noisy machine. Each
 * system runs in a child process of its own (memory figures are its own); children run
 * one after another, never two at once.
 *
 *   npm run bench                        # full: minutes; updates docs/benchmarks.md and docs/bench/
 *   npm run bench:quick                  # the same workloads at smaller sizes, about 40 s on 2 cores
 *   npm run bench -- --json out.json     # every figure, with machine info, as JSON
 *   npm run bench -- --only W1,W4        # some workloads only
 *   npm run bench -- --only W7           # Proctor runners and DBOS Transact on Postgres (PROCTOR_BENCH_PG_URL, or a throwaway server)
 *   npm run bench -- --no-docs           # do not touch docs/
 *
 * Workloads (bench/cases/*.ts say how each system maps to them):
 *   W1 throughput, W2 idle executions, W3 latency, W4 recovery after SIGKILL, W5 supervision,
 *   W6 a parallel state of 4 regions of 5 steps (bench/cases/w6.ts),
 *   W7 Postgres with 1-3 runner processes next to DBOS Transact (bench/lib/w7.ts).
 * See docs/benchmarks.md for the method.
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import { bundleWorker, repoRoot } from "./lib/bundle.js"
import type { Figure } from "./lib/child.js"
import { chart, goalLines, goals, metricTable, ratioLines, ratios, table } from "./lib/report.js"
import { round } from "./lib/stats.js"
import type { Info as W7Info } from "./lib/w7.js"
import { runW7, w7Lines } from "./lib/w7.js"

const argv = process.argv.slice(2)
const flag = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = argv.includes("--quick")
const jsonOut = flag("--json")
const only = flag("--only")?.toUpperCase().split(",")
const writeDocs = !quick && !argv.includes("--no-docs") && only === undefined
const mode = quick ? "quick" : "full"

interface Job {
  readonly workload: string
  readonly label: string
  readonly case: string
  readonly args: Record<string, unknown>
  readonly timeoutSeconds: number
}

const q = <A>(quickValue: A, fullValue: A) => (quick ? quickValue : fullValue)

const w1Sizes = q([1000, 10_000], [1000, 10_000, 100_000])
const w1SqlSizes = q([1000, 10_000], [100, 1000, 10_000, 100_000])
const w1FullSizes = q([1000], [1000, 10_000, 100_000])
const heapAt = q([1000], w1Sizes)
// an unreported pass first in each child, so that every system runs with a warm JIT
const warmup = q(500, 2000)
// W1: each size up to 3 times while a child has spent less than 20 s on it, the fastest counting (quick: once)
const best = { reps: q(1, 3), repBudget: 20 }
const T = q(60, 1800)
const w2 = (n: ReadonlyArray<number>) => ({ workload: "w2", sizes: n })
const w3 = { workload: "w3", samples: q(100, 1000), loadedSamples: q(10, 20), load: q(500, 10_000) }

const plan: ReadonlyArray<Job> = [
  // W1 (and the peers' W3 at low load: it measures no memory, so it shares their child)
  { workload: "W1", label: "Proctor, memory store", case: "proctor", args: { workload: "w1", store: "memory", sizes: w1Sizes, heap: heapAt, warmup, ...best }, timeoutSeconds: T },
  { workload: "W1", label: "XState v5 (and W3)", case: "xstate", args: { tasks: [{ workload: "w1", sizes: w1Sizes, heap: heapAt, warmup, ...best }, { workload: "w3", samples: w3.samples }] }, timeoutSeconds: T },
  // the least an execution with an Effect fiber of its own can take (heap only)
  { workload: "W1", label: "Effect fiber parked on a Deferred (the heap floor)", case: "fiber", args: { heap: heapAt }, timeoutSeconds: q(60, 600) },
  // @effect/workflow's memory engine makes ~1-2k transitions/s: 100k executions would take ~10 minutes
  {
    workload: "W1",
    label: "@effect/workflow, memory engine (and W3)",
    case: "workflow",
    args: { tasks: [{ workload: "w1", engine: "memory", sizes: q([500], [1000, 10_000]), heap: q([], [1000]), warmup: q(100, 1000), ...best }, { workload: "w3", engine: "memory", samples: q(50, 500) }] },
    timeoutSeconds: T
  },
  { workload: "W1", label: "Proctor, SQLite", case: "proctor", args: { workload: "w1", store: "sqlite", sizes: w1SqlSizes, warmup, ...best }, timeoutSeconds: T },
  { workload: "W1", label: "Proctor, SQLite synchronous=FULL", case: "proctor", args: { workload: "w1", store: "sqlite-full", sizes: w1FullSizes, warmup, ...best }, timeoutSeconds: T },
  { workload: "W1", label: "raw better-sqlite3, NORMAL and synchronous=FULL", case: "raw", args: { tasks: [{ synchronous: "NORMAL", sizes: w1SqlSizes, warmup, ...best }, { synchronous: "FULL", sizes: w1FullSizes, warmup, ...best }] }, timeoutSeconds: T },
  // the cluster engine makes a few hundred transitions/s: small N only
  { workload: "W1", label: "@effect/workflow, cluster engine on SQLite", case: "workflow", args: { workload: "w1", engine: "sqlite", sizes: q([50], [100, 1000]) }, timeoutSeconds: T },
  // W2: one child per configuration, since it measures memory
  { workload: "W2", label: "Proctor, SQLite, passivation on", case: "proctor", args: { ...w2(q([2000], [100_000, 1_000_000])), store: "sqlite", passivation: true }, timeoutSeconds: q(60, 3600) },
  { workload: "W2", label: "Proctor, SQLite, passivation off", case: "proctor", args: { ...w2(q([2000], [100_000])), store: "sqlite", passivation: false }, timeoutSeconds: T },
  { workload: "W2", label: "Proctor, memory store, passivation on", case: "proctor", args: { ...w2(q([2000], [100_000])), store: "memory", passivation: true }, timeoutSeconds: T },
  { workload: "W2", label: "Proctor, memory store, passivation off", case: "proctor", args: { ...w2(q([2000], [100_000])), store: "memory", passivation: false }, timeoutSeconds: T },
  { workload: "W2", label: "XState v5", case: "xstate", args: w2(q([2000], [100_000, 1_000_000])), timeoutSeconds: T },
  // W3: Proctor, low load and under a W1 load
  { workload: "W3", label: "Proctor, memory store and SQLite", case: "proctor", args: { tasks: [{ ...w3, store: "memory" }, { ...w3, store: "sqlite" }] }, timeoutSeconds: T },
  // W4 (two processes each; see runRecovery)
  ...q([1000], [10_000, 100_000]).map((n): Job => ({ workload: "W4", label: `Proctor, SQLite, kill with ${n} in flight`, case: "recovery", args: { n }, timeoutSeconds: q(60, 1800) })),
  // W5
  { workload: "W5", label: "Proctor, memory store, with and without defects", case: "proctor", args: { workload: "w5", store: "memory", sizes: q([5000], [10_000, 100_000]), every: 1000, shortBackoff: !quick, warmup }, timeoutSeconds: T },
  // W6: a parallel state, Proctor (memory, SQLite) next to XState (memory)
  ...(["memory", "sqlite"] as const).map((store): Job => ({ workload: "W6", label: `Proctor, ${store}`, case: "w6", args: { system: "proctor", store, sizes: q([500], [1000, 5000]), warmup: q(100, 500), reps: q(1, 3) }, timeoutSeconds: T })),
  { workload: "W6", label: "XState v5", case: "w6", args: { system: "xstate", sizes: q([500], [1000, 5000]), warmup: q(100, 500), reps: q(1, 3) }, timeoutSeconds: T },
  // W7: runner processes on Postgres, DBOS Transact beside them (bench/lib/w7.ts); the timeout is per process
  { workload: "W7", label: "Proctor runners and DBOS Transact on Postgres", case: "w7", args: { concurrency: 64, processes: q([1], [1, 2, 3]), warmupSeconds: q(2, 5), ramp: q(1, 3), seconds: q(3, 10), runs: q(1, 3), alone: q(50, 500), shards: 64, fsync: q(["on"], ["on", "off"]) }, timeoutSeconds: q(300, 1200) }
]

// ---------------------------------------------------------------------------------------

const machine = () => {
  const cpus = os.cpus()
  let uptime = ""
  try {
    uptime = execFileSync("uptime", { encoding: "utf8" }).trim()
  } catch {
    uptime = `load average: ${os.loadavg().map((l) => l.toFixed(2)).join(", ")}`
  }
  const git = (args: ReadonlyArray<string>) => {
    try {
      return execFileSync("git", args, { cwd: repoRoot, encoding: "utf8" }).trim()
    } catch {
      return ""
    }
  }
  return {
    commit: git(["rev-parse", "--short", "HEAD"]),
    /** files of src/ that differ from the commit: the run measured them as they were */
    uncommittedSrc: git(["status", "--porcelain", "--", "src"]).split("\n").filter((l) => l !== "").map((l) => l.slice(3)),
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memoryGB: round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((l) => round(l)),
    uptime
  }
}

const t0 = performance.now()
const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s`
const log = (line: string) => console.log(`[${elapsed()}] ${line}`)

const figures: Array<Figure> = []
const failures: Array<string> = []
let w7Info: W7Info | undefined

interface Child {
  readonly done: Promise<number | null>
  readonly kill: () => void
  /** writes a line to the child's stdin (W7's runners take their phases there) */
  readonly send: (line: string) => void
}

/** runs a bench child; `onLine` sees its stdout lines that are not figures */
const runChild = (worker: string, job: Job, args: Record<string, unknown>, onLine?: (line: string, kill: () => void) => void): Child => {
  // PROCTOR_BENCH_CPU_PROF=<dir>: a CPU profile of each child (a W7 runner, say) in that folder, for bench/profile.ts
  const prof = process.env.PROCTOR_BENCH_CPU_PROF === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.PROCTOR_BENCH_CPU_PROF}`]
  const child = spawn(process.execPath, [...prof, "--expose-gc", "--max-old-space-size=12288", worker, job.case, JSON.stringify(args)], {
    cwd: repoRoot,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NODE_NO_WARNINGS: "1" }
  })
  const kill = () => child.kill("SIGKILL")
  // a child that has exited closes its stdin: a late write must not crash the orchestrator
  child.stdin.on("error", () => {})
  const send = (line: string) => void child.stdin.write(`${line}\n`)
  const timer = setTimeout(() => {
    failures.push(`${job.workload} ${job.label}: timed out after ${job.timeoutSeconds} s (figures so far are kept)`)
    log(`  ${job.label}: timed out after ${job.timeoutSeconds} s, killing it`)
    kill()
  }, job.timeoutSeconds * 1000)
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    if (line.startsWith("@@result ")) {
      const figure = JSON.parse(line.slice("@@result ".length)) as Figure
      figures.push(figure)
    } else if (onLine !== undefined) {
      onLine(line, kill)
    } else {
      log(`  ${line}`)
    }
  })
  readline.createInterface({ input: child.stderr }).on("line", (line) => log(line))
  const done = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer)
      resolve(code)
    })
  )
  return { done, kill, send }
}

const runJob = async (worker: string, job: Job) => {
  const code = await runChild(worker, job, job.args).done
  if (code !== 0) failures.push(`${job.workload} ${job.label}: the child exited with ${code}`)
}

/** W4: a child starts N executions and holds them in flight; SIGKILL; a second child recovers them */
const runRecovery = async (worker: string, job: Job) => {
  const n = job.args["n"] as number
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-w4-"))
  const file = path.join(dir, "w4.db")
  let readyAt = 0
  const load = runChild(worker, job, { phase: "load", file, n }, (line, kill) => {
    if (line === "@@ready") {
      readyAt = performance.now()
      log(`  W4: ${n} executions in flight; SIGKILL`)
      kill()
    } else {
      log(`  ${line}`)
    }
  })
  await load.done
  if (readyAt === 0) {
    failures.push(`W4 N=${n}: the load phase ended before all executions were in flight`)
    fs.rmSync(dir, { recursive: true, force: true })
    return
  }
  const spawnedAt = performance.now()
  const recover = runChild(worker, job, { phase: "recover", file, n })
  const code = await recover.done
  if (code !== 0) failures.push(`W4 N=${n}: the recovering child exited with ${code}`)
  log(`  W4: recovery process ran ${round((performance.now() - spawnedAt) / 1000)} s in all`)
  fs.rmSync(dir, { recursive: true, force: true })
}

const section = (title: string, lines: ReadonlyArray<string>) => (lines.length === 0 ? [] : [`### ${title}`, "", ...lines])

const markdown = (info: ReturnType<typeof machine>, seconds: number) => {
  const rs = ratios(figures)
  const lines = [
    `Run: \`npm run bench${quick ? ":quick" : ""}\`, ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${round(seconds)} s in all.`,
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGB} GB, Node ${info.node}, ${info.platform}.`,
    `Code: commit ${info.commit}${info.uncommittedSrc.length === 0 ? "" : ` with uncommitted changes to ${info.uncommittedSrc.join(", ")}`}.`,
    `Load when it started: \`${info.uptime}\`; when it ended: load average ${os.loadavg().map((l) => l.toFixed(2)).join(", ")}.`,
    "",
    ...section("Goals", goalLines(goals(figures))),
    ...section("Ratios Proctor / peer (same run)", ratioLines(rs)),
    ...section("W1 throughput", [
      ...table(figures, "W1", "transitions/s", "transitions/s"),
      ...table(figures, "W1", "executions/s", "executions/s"),
      ...table(figures, "W1", "overhead p50", "transition overhead p50"),
      ...table(figures, "W1", "overhead p99", "transition overhead p99"),
      ...table(figures, "W1", "heap per in-flight execution", "heap per in-flight execution"),
      ...table(figures, "W1", "peak RSS", "peak RSS of the child process")
    ]),
    ...section("W2 idle executions", metricTable(figures, "W2")),
    ...section("W3 latency", metricTable(figures, "W3")),
    ...section("W4 recovery after SIGKILL", metricTable(figures, "W4")),
    ...section("W5 supervision overhead", metricTable(figures, "W5")),
    ...section("W6 parallel states: 4 regions of 5 steps", metricTable(figures, "W6")),
    ...section("W7 Postgres: runner processes, next to DBOS Transact", w7Lines(figures, w7Info)),
    ...(failures.length === 0 ? [] : ["### Did not complete", "", ...failures.map((f) => `- ${f}`), ""])
  ]
  return lines.join("\n")
}

const main = async () => {
  const info = machine()
  log(`proctor bench (${mode}): ${info.cpu}, ${info.cores} cores, Node ${info.node}`)
  log(`machine load: ${info.uptime}`)
  if (info.loadAverage[0]! > info.cores * 0.5) {
    log(`note: the machine is busy (load ${info.loadAverage[0]} on ${info.cores} cores); absolute figures will be low, ratios of the same run still hold`)
  }
  log("bundling the bench worker")
  const worker = await bundleWorker()
  const jobs = plan.filter((j) => only === undefined || only.includes(j.workload))
  // the figures so far, after each job: a run that is killed leaves what it measured
  const partial = jsonOut ?? path.join(os.tmpdir(), `proctor-bench-${mode}-partial.json`)
  log(`figures so far go to ${partial} after each job`)
  for (const [i, job] of jobs.entries()) {
    log(`(${i + 1}/${jobs.length}) ${job.workload} ${job.label}`)
    if (job.case === "recovery") await runRecovery(worker, job)
    else if (job.case === "w7") w7Info = await runW7({ log, figures, failures, spawn: (args, onLine) => runChild(worker, job, args, onLine) }, job.args as never)
    else await runJob(worker, job)
    fs.writeFileSync(partial, JSON.stringify({ mode, partial: true, machine: info, figures, failures }, null, 2) + "\n")
  }
  const seconds = (performance.now() - t0) / 1000
  const md = markdown(info, seconds)
  console.log(`\n${md}`)
  const result = {
    mode,
    startedAt: new Date(Date.now() - seconds * 1000).toISOString(),
    seconds: round(seconds),
    machine: { ...info, loadAverageAtEnd: os.loadavg().map((l) => round(l)) },
    figures,
    ratios: ratios(figures),
    goals: goals(figures),
    w7: w7Info,
    failures
  }
  if (jsonOut !== undefined) {
    fs.writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n")
    log(`wrote ${jsonOut}`)
  }
  if (writeDocs) {
    const dir = path.join(repoRoot, "docs", "bench")
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "latest.json"), JSON.stringify(result, null, 2) + "\n")
    const caption = `${info.cpu}, ${info.cores} cores, Node ${info.node}; load at start: ${info.loadAverage.join(", ")}`
    fs.writeFileSync(path.join(dir, "w1-throughput.svg"), chart(figures, caption))
    const doc = path.join(repoRoot, "docs", "benchmarks.md")
    const begin = "<!-- bench:results:begin -->", end = "<!-- bench:results:end -->"
    const text = fs.existsSync(doc) ? fs.readFileSync(doc, "utf8") : ""
    if (text.includes(begin) && text.includes(end)) {
      const updated = text.slice(0, text.indexOf(begin) + begin.length) + "\n" + md + "\n" + text.slice(text.indexOf(end))
      fs.writeFileSync(doc, updated)
      log("updated docs/benchmarks.md, docs/bench/latest.json and docs/bench/w1-throughput.svg")
    } else {
      log(`docs/benchmarks.md has no ${begin} ... ${end} section; wrote docs/bench/latest.json and the chart only`)
    }
  }
  log(`done in ${round(seconds)} s${failures.length === 0 ? "" : `; ${failures.length} job(s) did not complete`}`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
