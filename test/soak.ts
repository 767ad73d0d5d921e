/**
 * The soak: many seeded SIGKILL cycles on SQLite, then fault-injected runs in process.
 * Not part of `npm test` (vitest only runs `*.test.ts`); run it with
 *
 *   npm run soak -- [--cycles 1000] [--seed 1] [--count 12] [--kills 8] [--parallel 4] [--faults 40] [--keep]
 *
 * Kill cycles: rounds of the crash test's worker (test/fixtures/crash-worker.ts, bundled
 * once with esbuild so that a process starts in a fraction of a second) on a fresh SQLite
 * file each: `--kills` incarnations killed with SIGKILL at seeded moments (during start-up,
 * just after it while recovery resumes executions, or later while steps, waits, retries
 * and compensations run), then one that runs to the end; then the crash test's checker
 * reads what is left. One killed incarnation is one cycle; `--parallel` rounds run at once.
 *
 * Fault runs: random scenarios (test/fixtures/scenarios.ts) on a SQLite file behind the
 * fault store, in virtual time, checked against the same promises as the property tests.
 *
 * It prints progress, then cycles, executions, transitions, events and the counts of
 * lost, doubled and stuck (and of any other violation); it exits 1 unless all are 0.
 * Real time is its nature (it kills real processes); the kill moments are seeded, so a
 * seed replays a similar run, not an identical one.
 */
import { Effect, TestContext } from "effect"
import { build } from "esbuild"
import * as fc from "fast-check"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { check } from "./fixtures/crash-checker.js"
import { between, random } from "./fixtures/crash-procedure.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"
import type { Outcome } from "./fixtures/scenarios.js"
import { runScenario, scenario, violations } from "./fixtures/scenarios.js"

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback
}
const cycles = option("cycles", 1000)
const seed = option("seed", 1)
const count = option("count", 12)
const killsPerRound = option("kills", 8)
const faultRuns = option("faults", 40)
const parallel = option("parallel", 4)
const keep = args.includes("--keep")

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const work = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-soak-"))

const totals = { cycles: 0, rounds: 0, executions: 0, transitions: 0, events: 0, lost: 0, doubled: 0, stuck: 0, other: 0 }
const kills = { startup: 0, recovery: 0, running: 0 }
const reports: Array<string> = []

/** Which promise a violation of the crash checker or the scenario checks breaks. */
const classify = (violation: string): "lost" | "doubled" | "stuck" | "other" => {
  if (/twice|ran again|consumed [2-9]\d* times|ran \d+ times/.test(violation)) return "doubled"
  if (/never consumed|consumed 0 times|left in (the|its) inbox|never started|never committed|no recorded run|accepted, but/.test(violation)) {
    return "lost"
  }
  if (/stuck|never fired|waits with|still \w+ after|never answered|ended (running|waiting|paused|compensating|needs_intervention)/.test(violation)) {
    return "stuck"
  }
  return "other"
}

const record = (where: string, found: ReadonlyArray<string>) => {
  for (const v of found) {
    totals[classify(v)]++
    if (reports.length < 50) reports.push(`${where}: ${v}`)
  }
}

/** The worker as one ESM file: no TypeScript to compile at each start. */
const bundle = async () => {
  const outfile = path.join(work, "worker.mjs")
  await build({
    entryPoints: [path.join(root, "test", "fixtures", "crash-worker.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    alias: { proctor: path.join(root, "src", "index.ts") },
    // the native driver loads its binary relative to its own package
    external: ["better-sqlite3"],
    nodePaths: [path.join(root, "node_modules")],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: "error"
  })
  // `better-sqlite3` is resolved from the repository's node_modules
  fs.symlinkSync(path.join(root, "node_modules"), path.join(work, "node_modules"))
  return outfile
}

interface Incarnation {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
  /** where the kill hit, when there was one */
  readonly phase: keyof typeof kills | undefined
}

/**
 * Runs one incarnation. `kill` says when to kill it: `startup` ms after the spawn (often
 * before the runtime is up), or `after` ms after it printed "ready"; without, it runs to its end.
 */
const incarnation = (
  worker: string,
  dir: string,
  roundSeed: number,
  n: number,
  kill: { readonly startup: number } | { readonly after: number } | undefined
) =>
  new Promise<Incarnation>((resolve) => {
    const child = spawn(process.execPath, [worker, path.join(dir, "proctor.db"), String(roundSeed), String(count), String(n)], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    let ready = false
    let phase: Incarnation["phase"]
    let timer: NodeJS.Timeout | undefined
    const killNow = () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      phase = !ready ? "startup" : "after" in kill! && kill.after < 60 ? "recovery" : "running"
      child.kill("SIGKILL")
    }
    child.stdout.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000)
      if (!ready && output.includes("ready\n")) {
        ready = true
        if (kill !== undefined && "after" in kill) timer = setTimeout(killNow, kill.after)
      }
    })
    child.stderr.on("data", (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-20_000)))
    if (kill !== undefined && "startup" in kill) timer = setTimeout(killNow, kill.startup)
    // a run to the end that takes this long is stuck
    const guard = setTimeout(() => child.kill("SIGKILL"), kill === undefined ? 60_000 : 30_000)
    child.on("exit", (code, signal) => {
      clearTimeout(guard)
      if (timer !== undefined) clearTimeout(timer)
      resolve({ code, signal, output, phase })
    })
  })

/** One round: a fresh store, killed incarnations, one to the end, then the checker. */
const round = async (worker: string, r: number, killsLeft: number) => {
  const dir = fs.mkdtempSync(path.join(work, `round-${r}-`))
  const roundSeed = seed * 100_000 + r
  const killed = new Set<number>()
  let n = 0
  let finished = false
  for (; n < Math.min(killsPerRound, killsLeft); n++) {
    const mode = random(roundSeed, n, "mode")
    const kill = mode < 0.2
      ? { startup: between(5, 250, roundSeed, n, "startup") }
      : mode < 0.45
      ? { after: between(0, 59, roundSeed, n, "recovery") }
      : { after: between(60, 400, roundSeed, n, "running") }
    const outcome = await incarnation(worker, dir, roundSeed, n, kill)
    if (outcome.signal === "SIGKILL" && outcome.phase !== undefined) {
      killed.add(n)
      kills[outcome.phase]++
      totals.cycles++
      continue
    }
    if (outcome.code !== 0) {
      record(`round ${r} (seed ${roundSeed})`, [`incarnation ${n} failed (code ${outcome.code}): ${outcome.output.slice(-2000)}`])
    }
    // it ran to its end before the kill: everything is done
    finished = true
    n++
    break
  }
  const last = finished ? n - 1 : n
  if (!finished) {
    const outcome = await incarnation(worker, dir, roundSeed, n, undefined)
    if (outcome.code !== 0) {
      const why = outcome.signal === "SIGKILL" ? "stuck: did not end within 60 s" : `failed (code ${outcome.code})`
      record(`round ${r} (seed ${roundSeed})`, [`the last incarnation ${why}: ${outcome.output.slice(-2000)}`])
    }
  }
  const report = check({ dir, seed: roundSeed, count, killed, last })
  record(`round ${r} (seed ${roundSeed}, dir ${dir})`, report.violations)
  totals.rounds++
  totals.executions += report.summary.executions ?? 0
  totals.transitions += report.summary.transitions ?? 0
  totals.events += report.summary.acknowledgedSends ?? 0
  if (report.violations.length === 0 && !keep) fs.rmSync(dir, { recursive: true, force: true })
}

/** Fault-injected runs: random scenarios on a SQLite file behind the fault store, in virtual time. */
const faultRun = async (i: number) => {
  const [s] = fc.sample(scenario(), { seed: seed * 1000 + i, numRuns: 1 })
  const rates = { fail: 0.1, delay: 0.1, timeout: 0.03 }
  const outcome = await Effect.runPromise(
    Effect.scoped(runScenario(s!, { store: layerTempSqlite(), faults: { seed: seed * 1000 + i, rates } })).pipe(
      Effect.provide(TestContext.TestContext)
    ) as Effect.Effect<Outcome>
  )
  record(`fault run ${i} (scenario seed ${seed * 1000 + i})`, violations(outcome, { eventsAccounted: true, typedErrors: true }))
  totals.executions += outcome.ended.length
  for (const d of outcome.ended) {
    totals.transitions += d.history.length
    totals.events += d.accepted.length
  }
}

const main = async () => {
  const started = Date.now()
  console.log(`soak: seed ${seed}, ${cycles} kill cycles (${killsPerRound} a round, ${count} executions a round), ${faultRuns} fault runs; files in ${work}`)
  const worker = await bundle()
  // rounds run `parallel` at a time; each reserves the kills it plans, and gives back those
  // it did not need (its executions all ended before the kill)
  let reserved = 0
  let next = 0
  const lane = async () => {
    while (totals.cycles + reserved < cycles) {
      const r = next++
      const planned = Math.min(killsPerRound, cycles - totals.cycles - reserved)
      reserved += planned
      await round(worker, r, planned)
      reserved -= planned
      if (totals.rounds % 5 === 0) {
        const s = ((Date.now() - started) / 1000).toFixed(0)
        console.log(
          `  ${totals.cycles}/${cycles} cycles, ${totals.rounds} rounds, ${s} s: kills in start-up ${kills.startup}, recovery ${kills.recovery}, ` +
            `running ${kills.running}; lost ${totals.lost}, doubled ${totals.doubled}, stuck ${totals.stuck}, other ${totals.other}`
        )
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, lane))
  for (let i = 0; i < faultRuns; i++) {
    await faultRun(i)
    if (i % 10 === 9) console.log(`  ${i + 1}/${faultRuns} fault runs; lost ${totals.lost}, doubled ${totals.doubled}, stuck ${totals.stuck}, other ${totals.other}`)
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0)
  console.log(
    `soak (seed ${seed}, ${seconds} s): cycles ${totals.cycles} (kills in start-up ${kills.startup}, recovery ${kills.recovery}, running ${kills.running}), ` +
      `rounds ${totals.rounds}, fault runs ${faultRuns}, executions ${totals.executions}, transitions ${totals.transitions}, events ${totals.events}, ` +
      `lost ${totals.lost}, doubled ${totals.doubled}, stuck ${totals.stuck}, other ${totals.other}`
  )
  for (const line of reports) console.log(`  ${line}`)
  const bad = totals.lost + totals.doubled + totals.stuck + totals.other
  if (bad === 0 && !keep) fs.rmSync(work, { recursive: true, force: true })
  process.exit(bad === 0 ? 0 : 1)
}

main().catch((error) => {
  console.error(error)
  process.exit(2)
})
