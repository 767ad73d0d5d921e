/**
 * The checks of `Validate.run` that need processes of their own (validateChild.ts): crash
 * recovery (a process killed with SIGKILL mid-run, then a new one that resumes its
 * executions; no committed step may run again) and the heap per execution (measured
 * after a full GC, which needs `node --expose-gc`).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Duration, Effect } from "effect"
import { crashSteps, killedIn, type MeasureResult, type ResumeResult } from "./validateChild.js"
import { expect, Mismatch } from "./validateModel.js"

/** How a child process ended, and what it printed. */
interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** whether the parent killed it (on `killOn`) */
  readonly killed: boolean
  readonly stdout: string
  readonly stderr: string
}

const here = fileURLToPath(import.meta.url)

/**
 * The child's script: dist/bin/validateChild.js next to the compiled code, or, when Proctor
 * runs from its TypeScript sources (tests, a checkout), src/bin/validateChild.ts through tsx.
 */
export const defaultScript = path.join(path.dirname(here), "..", "bin", here.endsWith(".ts") ? "validateChild.ts" : "validateChild.js")

const nodeArgs = (script: string, gc: boolean): ReadonlyArray<string> => [
  ...(gc ? ["--expose-gc"] : []),
  ...(script.endsWith(".ts") ? ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href] : []),
  script
]

/**
 * Runs the child with `args` until it exits, or kills it with SIGKILL once its output has
 * the line `killOn`. Fails when it runs longer than `within`.
 */
const runChild = (script: string, args: ReadonlyArray<string>, options: { readonly gc?: boolean; readonly killOn?: string; readonly within: Duration.DurationInput }) =>
  Effect.async<Outcome>((resume) => {
    const child = spawn(process.execPath, [...nodeArgs(script, options.gc === true), ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let killed = false
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      if (options.killOn !== undefined && !killed && stdout.includes(`${options.killOn}\n`)) {
        killed = true
        child.kill("SIGKILL")
      }
    })
    child.stderr.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-4000)))
    child.on("error", (error) => resume(Effect.succeed({ code: null, signal: null, killed, stdout, stderr: `${stderr}${error.message}` })))
    child.on("exit", (code, signal) => resume(Effect.succeed({ code, signal, killed, stdout, stderr })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  }).pipe(
    Effect.timeoutFail({
      duration: options.within,
      onTimeout: () => new Mismatch({ reason: `its child process (${args[0]}) did not end within ${Duration.format(Duration.decode(options.within))}` })
    })
  )

const tail = (o: Outcome) => (o.stderr.trim().split("\n").slice(-3).join(" ") || o.stdout.trim().split("\n").slice(-3).join(" ")).slice(0, 300)

const resultOf = <A>(o: Outcome, what: string) =>
  Effect.gen(function*() {
    yield* expect(o.code === 0, () => `${what} exited with ${o.signal ?? `code ${o.code}`}: ${tail(o)}`)
    const line = o.stdout.split("\n").find((l) => l.startsWith("@@result "))
    if (line === undefined) return yield* new Mismatch({ reason: `${what} printed no result: ${tail(o)}` })
    return JSON.parse(line.slice("@@result ".length)) as A
  })

/** How many times each `(execution, state)` ran, from the runs file. */
const countRuns = (file: string): Map<string, number> => {
  const counts = new Map<string, number>()
  const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  for (const line of text.split("\n")) {
    const [id, state] = line.split(" ")
    if (id === undefined || state === undefined || id === "") continue
    counts.set(`${id} ${state}`, (counts.get(`${id} ${state}`) ?? 0) + 1)
  }
  return counts
}

/**
 * Crash recovery: a process runs `n` executions on the SQLite file `<dir>/crash.db` and is
 * killed with SIGKILL while all of them are in their third step; a new process resumes
 * them. Every execution must end once, with a gapless history; the steps committed before
 * the kill must not run again; the step in flight must (steps run at least once).
 */
export const crashRecovery = (dir: string, n: number, script: string) =>
  Effect.gen(function*() {
    const db = path.join(dir, "crash.db")
    const runs = path.join(dir, "crash.runs")
    const crashed = yield* runChild(script, ["crash", db, runs, String(n)], { killOn: "@@mid-run", within: "60 seconds" })
    yield* expect(crashed.killed && crashed.signal === "SIGKILL", () =>
      `the process to kill ended by itself (${crashed.signal ?? `code ${crashed.code}`}) before all ${n} executions were in step ${killedIn}: ${tail(crashed)}`)
    const resumed = yield* resultOf<ResumeResult>(yield* runChild(script, ["resume", db, runs, String(n)], { within: "60 seconds" }), "the resuming process")
    yield* expect(resumed.executions.length === n, () => `after the kill the store holds ${resumed.executions.length} executions of the ${n} started`)
    const expected = ["→s1 start", ...crashSteps.map((s, i) => `${s}→${crashSteps[i + 1] ?? "done"} step`)]
    const counts = countRuns(runs)
    for (const e of resumed.executions) {
      yield* expect(e.status === "succeeded" && e.state === "done", () => `execution ${e.id} ended ${e.status} in "${e.state}" after the restart, expected succeeded in "done"`)
      yield* expect(e.history.join(",") === expected.join(","), () =>
        `execution ${e.id}'s history after the restart is [${e.history.join(", ")}], expected each transition once: [${expected.join(", ")}]`)
      for (const state of crashSteps) {
        const times = counts.get(`${e.id} ${state}`) ?? 0
        const want = state === killedIn ? 2 : 1
        yield* expect(times === want, () =>
          state === killedIn
            ? `step ${state} of execution ${e.id}, in flight at the kill, ran ${times} times: expected once before the kill and once after`
            : `step ${state} of execution ${e.id} ran ${times} times: a step ${crashSteps.indexOf(state) < crashSteps.indexOf(killedIn) ? "committed before the kill ran again" : "ran other than once"}`)
      }
    }
    return {
      recoveryMillis: resumed.millis,
      detail: `a process running ${n} executions was killed with SIGKILL in step ${killedIn}; a new process resumed them: the steps committed before the kill did not run again, ${killedIn} ran again, each execution ended once`
    }
  })

/** The heap per execution held in flight, measured in a process of its own after a full GC. */
export const heapPerExecution = (db: string, n: number, script: string) =>
  Effect.flatMap(
    runChild(script, ["measure", db, String(n)], { gc: true, within: "120 seconds" }),
    (o) => resultOf<MeasureResult>(o, "the measuring process")
  )
