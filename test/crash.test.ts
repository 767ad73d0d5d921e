/**
 * Crash recovery with real processes: a worker process runs many executions on a SQLite
 * file and is killed with SIGKILL at random moments, then started again, over and over;
 * a last run goes to the end. Then the test reads what is left and checks the runtime's
 * promises: every execution reached the end its seed calls for, histories are gapless
 * with no transition twice, every acknowledged event was consumed exactly once, only
 * work in flight at a kill ran again, and compensations ran in reverse order, each
 * committed once. (See test/fixtures/crash-worker.ts for how the worker sends events.)
 *
 * Real time is this test's nature (processes, kills); it asserts no timing. The seed is
 * `PROCTOR_CRASH_SEED` when set, so that a failing run can be replayed with its seed
 * (the kill moments are real time, so a replay is similar, not identical).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Option } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { check } from "./fixtures/crash-checker.js"
import { between } from "./fixtures/crash-procedure.js"

const seed = Number(process.env.PROCTOR_CRASH_SEED ?? 20240611)
const count = 200
const kills = 22
const worker = path.join(__dirname, "fixtures", "crash-worker.ts")
const example = path.join(__dirname, "..", "examples", "crash-recovery.ts")
const window = path.join(__dirname, "fixtures", "crash-window.ts")
const childCrash = path.join(__dirname, "fixtures", "crash-child.ts")
const parallelCrash = path.join(__dirname, "fixtures", "crash-parallel.ts")
const undoCrash = path.join(__dirname, "fixtures", "crash-undo.ts")
const nestedCrash = path.join(__dirname, "fixtures", "crash-nested.ts")

/** Runs a script to its end (or its death) and returns what it printed. */
const runScript = (args: ReadonlyArray<string>) =>
  Effect.async<Outcome>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("exit", (code, signal) => resume(Effect.succeed({ code, signal, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  }).pipe(Effect.timeout("60 seconds"))

/**
 * Runs `script <db> <mode>` on a fresh SQLite file in a temporary folder (removed with the
 * scope), which must die by SIGKILL, then `script <db> resume`, which must end well.
 */
const crashThenResume = (script: string, name: string, mode: string) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), `proctor-crash-${name}-`))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const db = path.join(dir, `${name}.db`)
    const crashed = yield* runScript([script, db, mode])
    assert.strictEqual(crashed.signal, "SIGKILL", crashed.stdout + crashed.stderr)
    const resumed = yield* runScript([script, db, "resume"])
    assert.strictEqual(resumed.code, 0, resumed.stdout + resumed.stderr)
    return { db, resumed }
  })

interface Outcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs one incarnation of the worker. With `killAfter`, kills it that long after it
 * printed "ready" (unless it ended before); without, waits for it to end by itself.
 */
const incarnation = (dir: string, n: number, killAfter: Duration.Duration | undefined) =>
  Effect.scoped(Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, ["--import", "tsx", worker, path.join(dir, "proctor.db"), String(seed), String(count), String(n)], {
          stdio: ["ignore", "pipe", "pipe"]
        })
      ),
      (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
    )
    let stdout = ""
    let stderr = ""
    const ready = yield* Deferred.make<void>()
    const exited = yield* Deferred.make<Outcome>()
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
      if (stdout.includes("ready\n")) Deferred.unsafeDone(ready, Exit.void)
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-20_000)
    })
    child.on("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed({ code, signal, stdout, stderr })))
    if (killAfter !== undefined) {
      // the kill delay counts from "ready": before that the worker is loading code
      const early = yield* Effect.raceFirst(
        Effect.as(Deferred.await(ready), Option.none<Outcome>()),
        Effect.map(Deferred.await(exited), Option.some)
      ).pipe(Effect.timeout("60 seconds"))
      if (Option.isSome(early)) return early.value
      yield* Effect.raceFirst(Effect.sleep(killAfter), Deferred.await(exited))
      child.kill("SIGKILL")
    }
    return yield* Deferred.await(exited).pipe(Effect.timeout("120 seconds"))
  }))

describe("crash recovery", () => {
  it.live("executions survive repeated SIGKILLs of their process and keep every promise", () =>
    Effect.gen(function*() {
      // kept when the test fails, for a look at the store, runs.db and acks.log
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-crash-"))),
        (dir, exit) =>
          Exit.isSuccess(exit)
            ? Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
            : Effect.sync(() => console.log(`crash test: the files of the failed run are kept in ${dir}`))
      )
      const killed = new Set<number>()
      let n = 0
      for (; n < kills; n++) {
        const delay = Duration.millis(between(50, 400, seed, n, "kill"))
        const outcome = yield* incarnation(dir, n, delay)
        if (outcome.signal !== "SIGKILL") {
          assert.fail(`incarnation ${n} ended by itself (code ${outcome.code}) before its kill:\n${outcome.stdout}\n${outcome.stderr}`)
        }
        killed.add(n)
      }
      const last = yield* incarnation(dir, n, undefined)
      assert.strictEqual(last.code, 0, `the last incarnation failed:\n${last.stdout}\n${last.stderr}`)

      const report = check({ dir, seed, count, killed, last: n })
      console.log(
        `crash test (seed ${seed}): ${killed.size} kills, ${n + 1} incarnations; ` +
          Object.entries(report.summary).map(([k, v]) => `${k} ${v}`).join(", ")
      )
      if (report.violations.length > 0) {
        assert.fail(`${report.violations.length} violations (seed ${seed}):\n${report.violations.join("\n")}`)
      }
      assert.isAtLeast(killed.size, 20)
      assert.strictEqual(report.summary.executions, count)
    }).pipe(Effect.scoped), 600_000) // ~23 processes of ~3 s each when quiet; up to 15 s each at a load of 20 on 2 cores

  it.live("examples/crash-recovery.ts crashes in a step, resumes it on the next run, then has nothing to resume", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-crash-example-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const run = (...extra: Array<string>) => runScript([example, "--data", dir, ...extra])
      const payments = () => JSON.parse(fs.readFileSync(path.join(dir, "crash-recovery.payments.json"), "utf8"))

      const first = yield* run()
      assert.strictEqual(first.signal, "SIGKILL", first.stdout + first.stderr)
      assert.include(first.stdout, "starting order A-1001")
      assert.include(first.stdout, "crashing now in step charge")
      assert.notInclude(first.stdout, "step ship")
      assert.deepStrictEqual(payments(), { "A-1001/charge/2": 42 })

      const second = yield* run()
      assert.strictEqual(second.code, 0, second.stdout + second.stderr)
      assert.include(second.stdout, "resumed execution A-1001 at state charge (status running")
      // the interrupted step runs again with the same idempotency key, and pays once
      assert.include(second.stdout, "payment A-1001/charge/2 was already made")
      assert.include(second.stdout, "done: succeeded at state done (reserve → charge → ship → done)")
      assert.notInclude(second.stdout, "step reserve")
      assert.deepStrictEqual(payments(), { "A-1001/charge/2": 42 })

      const third = yield* run()
      assert.strictEqual(third.code, 0, third.stdout + third.stderr)
      assert.include(third.stdout, "execution A-1001 ended succeeded at state done")
      assert.include(third.stdout, "nothing to resume")
      assert.include(third.stdout, "--reset")

      const reset = yield* run("--reset")
      assert.strictEqual(reset.signal, "SIGKILL", reset.stdout + reset.stderr)
      assert.include(reset.stdout, "starting order A-1001")
    }).pipe(Effect.scoped), 120_000)

  it.live("a step that failed for good is not run again when the process dies before the failure transition commits", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-crash-window-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const db = path.join(dir, "window.db")
      // dies right after the commit that records the failed attempt (a business error, not transient)
      const crashed = yield* runScript([window, db, "crash"])
      assert.strictEqual(crashed.signal, "SIGKILL", crashed.stdout + crashed.stderr)
      assert.strictEqual(fs.readFileSync(`${db}.runs`, "utf8"), "ship attempt 1\n")
      const resumed = yield* runScript([window, db, "resume"])
      assert.strictEqual(resumed.code, 0, resumed.stdout + resumed.stderr)
      const end = JSON.parse(resumed.stdout) as { status: string; errors: Array<string>; history: Array<string> }
      assert.strictEqual(end.status, "failed")
      // a business error is not retried, crash or no crash: the step ran once, and failed once
      assert.strictEqual(fs.readFileSync(`${db}.runs`, "utf8"), "ship attempt 1\n", `history: ${end.history.join(", ")}`)
      assert.deepStrictEqual(end.errors, ["ship#1 OutOfStock final"])
    }).pipe(Effect.scoped), 120_000)

  const childRun = (mode: "step" | "cancel" | "resume") =>
    Effect.gen(function*() {
      const { db, resumed } = yield* crashThenResume(childCrash, "child", mode)
      const runs = fs.readFileSync(`${db}.runs`, "utf8").trim().split("\n")
      return { end: JSON.parse(resumed.stdout) as ChildEnd, runs }
    })
  interface ChildEnd {
    readonly parent: { readonly status: string; readonly context: { readonly receipt?: string } }
    readonly children: ReadonlyArray<{ readonly id: string; readonly parentId: string; readonly status: string }>
    readonly lastChildTransition: string
  }

  it.live("a child procedure killed in its step resumes with its parent: one child, its step re-run with the same key", () =>
    Effect.gen(function*() {
      const { end, runs } = yield* childRun("step")
      assert.strictEqual(end.parent.status, "succeeded")
      assert.strictEqual(end.children.length, 1)
      const [child] = end.children
      assert.deepStrictEqual([child!.parentId, child!.status], ["order-1", "succeeded"])
      // the interrupted step ran again, with the same idempotency key; the parent joined the same child
      assert.deepStrictEqual(runs, [`charge ${child!.id}/charge/1`, `charge ${child!.id}/charge/1`])
      assert.strictEqual(end.parent.context.receipt, `receipt for ${child!.id}/charge/1`)
    }).pipe(Effect.scoped), 120_000)

  it.live("a child whose parent was cancelled just before a SIGKILL is cancelled on recovery", () =>
    Effect.gen(function*() {
      const { end, runs } = yield* childRun("cancel")
      assert.strictEqual(end.parent.status, "cancelled")
      assert.deepStrictEqual(end.children.map((c) => c.status), ["cancelled"])
      assert.match(end.lastChildTransition, /^cancel: parent order-1 no longer waits in state "pay"/)
      // the child was ended before its step could run again
      assert.strictEqual(runs.length, 1)
    }).pipe(Effect.scoped), 120_000)

  it.live("a parallel state's regions killed mid-run resume with their parent: each step ran once but the one in flight, the parent ends", () =>
    Effect.gen(function*() {
      const { db, resumed } = yield* crashThenResume(parallelCrash, "parallel", "step")
      const end = JSON.parse(resumed.stdout) as {
        readonly parent: { readonly status: string; readonly context: { readonly done: ReadonlyArray<string> } }
        readonly regions: ReadonlyArray<{ readonly id: string; readonly procedure: string; readonly status: string }>
      }
      assert.strictEqual(end.parent.status, "succeeded")
      assert.sameMembers([...end.parent.context.done], ["prepare", "a1", "a2", "b1", "b2", "b3", "c1", "c2"])
      assert.deepStrictEqual(end.regions.map((r) => [r.procedure, r.status]), [
        ["crash-release.rollout.a", "succeeded"],
        ["crash-release.rollout.b", "succeeded"],
        ["crash-release.rollout.c", "succeeded"]
      ])
      // every step ran once, with its key, but b2, in flight at the kill: it ran again with the same key
      const runs = fs.readFileSync(`${db}.runs`, "utf8").trim().split("\n")
      const count = new Map<string, number>()
      for (const line of runs) count.set(line, (count.get(line) ?? 0) + 1)
      const [a, b, c] = end.regions.map((r) => r.id)
      assert.deepStrictEqual(Object.fromEntries(count), {
        [`prepare release-1/prepare/1`]: 1,
        [`a1 ${a}/a1/1`]: 1,
        [`a2 ${a}/a2/2`]: 1,
        [`b1 ${b}/b1/1`]: 1,
        [`b2 ${b}/b2/2`]: 2,
        [`b3 ${b}/b3/3`]: 1,
        [`c1 ${c}/c1/1`]: 1,
        [`c2 ${c}/c2/2`]: 1
      })
    }).pipe(Effect.scoped), 120_000)

  it.live("an event the parent gives to two waiting regions, killed right after its first write to a region's inbox: on resume both take it (one write for all)", () =>
    Effect.gen(function*() {
      const { db, resumed } = yield* crashThenResume(parallelCrash, "parallel-send", "send")
      const end = JSON.parse(resumed.stdout) as {
        readonly parent: { readonly status: string; readonly context: { readonly done: ReadonlyArray<string> } }
        readonly regions: ReadonlyArray<{ readonly procedure: string; readonly status: string }>
      }
      assert.strictEqual(end.parent.status, "succeeded")
      assert.deepStrictEqual(end.regions.map((r) => [r.procedure, r.status]), [
        ["crash-release.rollout.a", "succeeded"],
        ["crash-release.rollout.b", "succeeded"],
        ["crash-release.rollout.c", "succeeded"]
      ])
      // the kill came after the write: Go was not sent again, and every step ran once
      const runs = fs.readFileSync(`${db}.runs`, "utf8").trim().split("\n").map((line) => line.split(" ")[0])
      assert.deepStrictEqual(runs.filter((r) => r === "sent"), ["sent"])
      assert.sameMembers(runs.filter((r) => r !== "sent"), ["prepare", "a1", "a2", "b1", "b2", "b3", "c1", "c2"])
    }).pipe(Effect.scoped), 120_000)

  it.live("regions undone when another fails (one had succeeded), killed mid-undo: the undo resumes in the reverse order of completion across the regions, no finished compensation runs twice", () =>
    Effect.gen(function*() {
      const { db, resumed } = yield* crashThenResume(undoCrash, "undo", "undo")
      const end = JSON.parse(resumed.stdout) as {
        readonly parent: { readonly status: string; readonly error: { readonly message: string } }
        readonly regions: ReadonlyArray<{ readonly id: string; readonly procedure: string; readonly status: string }>
      }
      assert.strictEqual(end.parent.status, "failed")
      assert.include(end.parent.error.message, `Region "b"`)
      assert.include(end.parent.error.message, "rolled back, those that had succeeded too (c, a)")
      assert.deepStrictEqual(end.regions.map((r) => [r.procedure, r.status]), [
        ["crash-undo.rollout.a", "rolled_back"],
        ["crash-undo.rollout.b", "failed"],
        ["crash-undo.rollout.c", "rolled_back"]
      ])
      const runs = fs.readFileSync(`${db}.runs`, "utf8").trim().split("\n").map((line) => line.split(" ").slice(0, -1).join(" "))
      // the steps completed a1, c1, a2, c2 (b1 alongside); b undoes b1 as it fails; then the
      // others latest first across the regions: c2, a2 (in flight at the kill, so run again
      // after it), c1, a1; then the parent's own
      assert.deepStrictEqual(runs.slice(7), ["undo b1", "undo c2", "undo a2", "undo a2", "undo c1", "undo a1", "undo prepare"])
      assert.sameMembers(runs.slice(0, 7), ["prepare", "a1", "a2", "b1", "b2", "c1", "c2"])
      assert.deepStrictEqual(runs.filter((r) => ["a1", "a2", "c1", "c2"].includes(r)), ["a1", "c1", "a2", "c2"])
    }).pipe(Effect.scoped), 120_000)

  for (const mode of ["commit", "inside"] as const) {
    it.live(`a compound state's exit, transition and entry actions run exactly once, in order, when the process dies ${
      mode === "commit" ? "right after the event's macrostep commits" : "inside the event's macrostep (in an entry action)"
    }`, () =>
      Effect.gen(function*() {
        const { resumed } = yield* crashThenResume(nestedCrash, "nested", mode)
        const end = JSON.parse(resumed.stdout) as { status: string; log: Array<string>; history: Array<string>; verified: boolean }
        assert.strictEqual(end.status, "succeeded")
        // each action's effect once, in SCXML order: exits inside out, the transition's, entries outside in
        assert.deepStrictEqual(end.log, ["exit prepare", "enter deploy", "exit hold", "go", "enter apply", "exit deploy", "enter verify"])
        assert.deepStrictEqual(end.history, [
          "∅ -> prepare (start)",
          "prepare -> deploy.hold (step)",
          "deploy.hold -> deploy.apply (event:Go)",
          "deploy.apply -> verify (step)",
          "verify -> finished (event:Finish)"
        ])
        assert.isTrue(end.verified)
      }).pipe(Effect.scoped), 120_000)
  }
})
