/**
 * What the child processes of `Validate.run` do (src/bin/validateChild.ts runs it):
 *
 * - `crash <db> <runs> <n>`: starts `n` executions of a chain of five steps on the SQLite
 *   file `<db>`; every run of a step appends `<id> <state> <attempt>` to the file `<runs>`.
 *   Once every execution is in its third step, prints `@@mid-run` and holds there: the
 *   parent kills the process with SIGKILL.
 * - `resume <db> <runs> <n>`: a runtime on the same file resumes them (the third step runs
 *   again: it was in flight), and prints `@@result` with each execution's end and history.
 * - `measure <db> <n>`: (under `node --expose-gc`) holds `n` executions in a step at once
 *   and prints `@@result` with the heap in use per execution, after a full GC.
 *
 * The parent checks what was printed and written (validateProcess.ts).
 */
import * as fs from "node:fs"
import type { Layer } from "effect"
import { Deferred, Effect, Schedule, Schema } from "effect"
import type { StoreError } from "../Errors.js"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as SqlStore from "../SqlStore.js"
import * as Store from "../Store.js"
import { rows } from "./validateFlows.js"

/** The chain the crash check runs; the third step is where the process is killed. */
export const crashSteps = ["s1", "s2", "s3", "s4", "s5"] as const
/** The step in flight when the process is killed. */
export const killedIn = "s3"

const Empty = Schema.Struct({})

const crashProcedure = (runs: string, hold: (args: Procedure.StepArgs<unknown>) => Effect.Effect<void>) => {
  const states: Record<string, Procedure.StateDescription> = { done: { type: "final" } }
  crashSteps.forEach((name, i) => {
    states[name] = {
      type: "step",
      run: (args: Procedure.StepArgs<unknown>) =>
        Effect.zipRight(
          Effect.sync(() => fs.appendFileSync(runs, `${args.executionId} ${args.state} ${args.attempt}\n`)),
          args.state === killedIn ? hold(args) : Effect.void
        ),
      next: crashSteps[i + 1] ?? "done"
    }
  })
  return Procedure.makeUnsafe({ name: "proctor.validate.crash", version: 1, input: Empty, context: Empty, initial: "s1", states })
}

/** The lines a child prints for its parent. */
const emit = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

/** What `resume` prints: each execution's end and history rows. */
export interface ResumeResult {
  readonly millis: number
  readonly executions: ReadonlyArray<{ readonly id: string; readonly status: string; readonly state: string; readonly history: ReadonlyArray<string> }>
}

/** What `measure` prints. */
export interface MeasureResult {
  readonly n: number
  readonly heapPerExecution: number
}

const crash = (runs: string, n: number) =>
  Effect.gen(function*() {
    let arrived = 0
    const procedure = crashProcedure(runs, () =>
      Effect.zipRight(
        Effect.suspend(() => ++arrived === n ? emit("@@mid-run") : Effect.void),
        // the parent kills the process long before this ends
        Effect.sleep("2 minutes")
      ))
    const runtime = yield* Runtime.make({ procedures: [procedure] })
    yield* Effect.forEach(Array.from({ length: n }), () => runtime.start(procedure, {}), { concurrency: "unbounded", discard: true })
    yield* Effect.sleep("2 minutes")
  })

const resume = (runs: string) =>
  Effect.gen(function*() {
    const began = performance.now()
    const procedure = crashProcedure(runs, () => Effect.void)
    const runtime = yield* Runtime.make({ procedures: [procedure] })
    const started = yield* runtime.list({ procedure: procedure.name, limit: 100_000 })
    const executions = yield* Effect.forEach(started, (s) =>
      Effect.gen(function*() {
        const end = yield* runtime.await(s.id)
        return { id: s.id, status: end.status, state: end.state, history: rows(yield* runtime.history(s.id)) }
      }), { concurrency: "unbounded" })
    const result: ResumeResult = { millis: performance.now() - began, executions }
    yield* emit(`@@result ${JSON.stringify(result)}`)
  })

const heapAfterGc = (gc: () => void) => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const measure = (n: number) =>
  Effect.gen(function*() {
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc === undefined) return yield* Effect.dieMessage("the measuring process must run under node --expose-gc")
    let release = yield* Deferred.make<void>()
    let held = 0
    const states: Record<string, Procedure.StateDescription> = {
      s1: { type: "step", run: () => Effect.void, next: "hold" },
      hold: {
        type: "step",
        run: () => Effect.zipRight(Effect.sync(() => held++), Effect.suspend(() => Deferred.await(release))),
        timeout: "5 minutes",
        next: "s3"
      },
      s3: { type: "step", run: () => Effect.void, next: "done" },
      done: { type: "final" }
    }
    const procedure = Procedure.makeUnsafe({ name: "proctor.validate.memory", version: 1, input: Empty, context: Empty, initial: "s1", states })
    const runtime = yield* Runtime.make({ procedures: [procedure] })
    /** starts `count` executions and returns once all of them are held in the step `hold` */
    const hold = (count: number) =>
      Effect.gen(function*() {
        held = 0
        release = yield* Deferred.make<void>()
        const ids = yield* Effect.forEach(Array.from({ length: count }), () => runtime.start(procedure, {}), { concurrency: 256 })
        yield* Effect.repeat(Effect.sync(() => held), { until: (h) => h >= count, schedule: Schedule.spaced("5 millis") })
        return ids
      })
    const finish = (ids: ReadonlyArray<string>) =>
      Effect.zipRight(Deferred.succeed(release, undefined), Effect.forEach(ids, (id) => runtime.await(id), { discard: true }))
    // a first round compiles the code and fills the caches before the baseline
    yield* Effect.flatMap(hold(Math.min(n, 100)), finish)
    const base = heapAfterGc(gc)
    const ids = yield* hold(n)
    const heap = heapAfterGc(gc)
    yield* finish(ids)
    const result: MeasureResult = { n, heapPerExecution: (heap - base) / n }
    yield* emit(`@@result ${JSON.stringify(result)}`)
  })

/** The store of a child: the SQLite file `db`, or a memory store for `:memory:`. */
export const sqliteOrMemory = (db: string): Layer.Layer<Store.Store, StoreError> =>
  db === ":memory:" ? Store.layerMemory : SqlStore.layerSqlite({ filename: db })

/** Runs the child's mode on its arguments (after `node script`), with the store `store` makes of the db path. */
export const main = (argv: ReadonlyArray<string>, store: (db: string) => Layer.Layer<Store.Store, StoreError> = sqliteOrMemory) => {
  const [mode, db, a, b] = argv
  if (db === undefined) return Effect.dieMessage("usage: validateChild crash|resume <db> <runs> <n> | measure <db> <n>")
  const program = mode === "crash" && a !== undefined
    ? crash(a, Number(b))
    : mode === "resume" && a !== undefined
    ? resume(a)
    : mode === "measure"
    ? measure(Number(a))
    : Effect.dieMessage(`unknown mode ${mode}`)
  return program.pipe(Effect.scoped, Effect.provide(store(db)))
}
