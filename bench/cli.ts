/**
 * CLI start-up benchmark: wall time of the compiled command (`node dist/bin/proctor.js`,
 * as installed) for `-v`, `--help`, `list --help`, and `list` / `list --json --limit 1000`
 * / `show` on a SQLite database of 10,000 executions. Goals (issue 12 item 5): `--help`
 * under 300 ms, `list` on 10k executions under 500 ms.
 *
 *   npm run build && npx tsx bench/cli.ts [--runs 7] [--bin dist/bin/proctor.js] [--json FILE]
 *
 * Each command runs `--runs` times one after another; it prints the median and the
 * fastest wall time, the median CPU time of the process (user + system, through bash's
 * `time`; less sensitive than wall time to other work on the machine), and the load
 * average before and after. Compare with `node -e 0` measured the same way. Asserts nothing.
 * `--bin dist/cli/main.js` times the unbundled CLI, for a comparison with the bundle that
 * `list` and `show` run from (dist/cli/read.js) under the same load.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Schema } from "effect"
import { Procedure, Runtime, SqlStore } from "proctor"

const argv = process.argv.slice(2)
const flag = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const RUNS = Number(flag("--runs") ?? 7)
const EXECUTIONS = Number(flag("--executions") ?? 10_000)
const bin = path.resolve(flag("--bin") ?? "dist/bin/proctor.js")
const jsonOut = flag("--json")

if (!fs.existsSync(bin)) {
  process.stderr.write(`${bin} does not exist: run npm run build first (or pass --bin PATH)\n`)
  process.exit(1)
}

/** one wait: every started execution stays `waiting`, as a real database mostly does */
const Parked = Procedure.make("bench-parked", {
  version: 1,
  input: Schema.Struct({ n: Schema.Number }),
  context: Schema.Struct({ n: Schema.Number }),
  events: Schema.TaggedStruct("Go", {})
}, {
  initial: "parked",
  states: {
    parked: Procedure.wait({ on: { Go: { goto: "done" } } }),
    done: Procedure.final({ outcome: "succeeded" })
  }
})

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-cli-"))
const db = path.join(dir, "proctor.db")

const fill = Effect.gen(function*() {
  const ids: Array<string> = []
  yield* Effect.forEach(
    Array.from({ length: EXECUTIONS }, (_, n) => n),
    (n) => Effect.map(Runtime.start(Parked, { n }), (id) => void (ids.push(id))),
    { concurrency: 256, discard: true }
  )
  return ids
}).pipe(
  Effect.provide(Runtime.layer({ procedures: [Parked] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: db }))))
)

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

interface Row {
  readonly command: string
  readonly medianMs: number
  readonly minMs: number
  readonly cpuMedianMs: number
  readonly exit: number | null
}

/** runs `node ...argv` under bash's `time`: the child's CPU time, user + system, in ms */
const runTimed = (argv: ReadonlyArray<string>) => {
  const r = spawnSync("bash", ["-c", `TIMEFORMAT='@@cpu %3U %3S'; time "$@" >/dev/null 2>"$ERR_FILE"`, "bash", process.execPath, ...argv], {
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ERR_FILE: path.join(dir, "stderr.txt") }
  })
  const m = /@@cpu ([\d.]+) ([\d.]+)/.exec(r.stderr)
  return { status: r.status, cpuMs: m === null ? NaN : (Number(m[1]) + Number(m[2])) * 1000 }
}

const time = (label: string, args: ReadonlyArray<string>, program: ReadonlyArray<string> = [bin]): Row => {
  const ms: Array<number> = []
  const cpu: Array<number> = []
  let exit: number | null = 0
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint()
    const r = runTimed([...program, ...args])
    ms.push(Number(process.hrtime.bigint() - start) / 1e6)
    cpu.push(r.cpuMs)
    exit = r.status
    if (r.status !== 0) process.stderr.write(`${label} exited ${r.status}: ${fs.readFileSync(path.join(dir, "stderr.txt"), "utf8").slice(0, 400)}\n`)
  }
  const row = { command: label, medianMs: Math.round(median(ms)), minMs: Math.round(Math.min(...ms)), cpuMedianMs: Math.round(median(cpu)), exit }
  process.stdout.write(
    `${label.padEnd(40)} wall median ${String(row.medianMs).padStart(5)} ms, fastest ${String(row.minMs).padStart(5)} ms; cpu median ${String(row.cpuMedianMs).padStart(5)} ms\n`
  )
  return row
}

const main = async () => {
  process.stderr.write(`filling ${db} with ${EXECUTIONS} executions...\n`)
  const ids = await Effect.runPromise(fill)
  const loadBefore = os.loadavg()
  process.stdout.write(`node ${process.version}, ${os.cpus().length} cpus, load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")}\n`)
  process.stdout.write(`${path.relative(process.cwd(), bin)}, ${RUNS} runs each\n\n`)
  const rows = [
    time("node -e 0 (Node's own start)", [], ["-e", "0"]),
    time("proctor -v", ["-v"]),
    time("proctor --help", ["--help"]),
    time("proctor list --help", ["list", "--help"]),
    time(`proctor list (${EXECUTIONS} executions)`, ["list", "--db", db]),
    time(`proctor list --json --limit 1000`, ["list", "--json", "--limit", "1000", "--db", db]),
    time("proctor show <id>", ["show", ids[EXECUTIONS - 1]!, "--db", db])
  ]
  const loadAfter = os.loadavg()
  process.stdout.write(`\nload average after ${loadAfter.map((l) => l.toFixed(2)).join(" ")}\n`)
  if (jsonOut !== undefined) {
    fs.writeFileSync(jsonOut, JSON.stringify({ node: process.version, cpus: os.cpus().length, loadBefore, loadAfter, runs: RUNS, rows }, null, 2))
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((error) => {
  process.stderr.write(`${String(error)}\n`)
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(1)
})
