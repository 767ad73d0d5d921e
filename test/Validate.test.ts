/**
 * The readiness report (`Validate.run`): READY on sound procedures and a sound store, with
 * every figure filled in; and each kind of check able to fail, the verdict then NOT READY
 * with the reason: a broken definition, a store that loses writes (the flows, rollback and
 * concurrency checks), a process whose store loses writes before it is killed (crash
 * recovery), figures over their limits, and a store that holds an application's executions
 * (refused, and left as it was).
 *
 * The checks that run in this process (the flows, rollback order, concurrency) run on
 * virtual time: their steps time out, retry and wait on Effect's Clock, which the tests move
 * on. The whole runs are live: the crash check kills real processes and the heap is
 * measured in one; sizes are small to keep them to seconds. No test asserts a timing.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, SqlStore, Store, Validate } from "proctor"
import { Approval } from "./fixtures/ops.js"
import { Unreachable } from "./fixtures/validate-broken.js"

const small = { concurrent: 100, crashExecutions: 3, memoryExecutions: 200 } as const

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-validate-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A memory store that commits every execution row but loses the history rows. */
const losesHistory = Layer.effect(
  Store.Store,
  Effect.map(Store.makeMemory, (inner): Store.StoreService => ({ ...inner, commit: ({ transition: _, ...commit }) => inner.commit(commit) }))
)

const byId = (report: Validate.Report) => new Map(report.checks.map((c) => [c.id, c]))

/**
 * `charge` runs before `reserve`, which a rollback undoes, but has no compensation of its
 * own: a warning, not a failure. `ship` comes after the last compensated step (a saga's
 * pivot): no warning.
 */
const PartlyUndone = Procedure.make("partly-undone", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "charge",
  states: {
    charge: Procedure.step({ run: () => Effect.void, next: "reserve" }),
    reserve: Procedure.step({ run: () => Effect.void, compensate: () => Effect.void, next: "ship" }),
    ship: Procedure.step({ run: () => Effect.void, next: "done" }),
    done: Procedure.final()
  }
})

/** Moves virtual time on while the checks run (their steps time out, retry and wait on Effect's Clock). */
const driveClock = Effect.forkScoped(Effect.forever(Effect.zipRight(TestClock.adjust("1 millis"), Effect.yieldNow())))

/** the checks that run in this process, on the store */
const inProcess = ["linear", "branching", "looping", "error-recovery", "timeout", "rollback-order", "concurrency", "transition-overhead"]

describe("Validate", () => {
  it.scoped("on virtual time: the checks on the store pass on a sound one; without child processes the verdict is NOT READY", () =>
    Effect.gen(function*() {
      yield* driveClock
      const report = yield* Validate.run({ procedures: [Approval, PartlyUndone], concurrent: 50, processes: false })
      const checks = byId(report)
      const partly = report.procedures.find((p) => p.name === "partly-undone")!
      assert.isTrue(partly.ok)
      assert.deepStrictEqual(partly.compensated, ["reserve"])
      assert.deepStrictEqual(partly.warnings, [
        "charge can run before a step a rollback undoes (reserve) but has no `compensate`: a rollback from there leaves its effects; give it one if there are effects to undo"
      ])
      assert.deepStrictEqual(report.procedures.find((p) => p.name === "ops-approval")!.warnings, [])
      for (const id of ["registration", ...inProcess]) assert.isTrue(checks.get(id)!.ok, `${id}: ${checks.get(id)!.reason}`)
      assert.strictEqual(report.verdict, "NOT READY")
      assert.deepStrictEqual(report.failures, [
        "Crash recovery: not run: child processes were turned off (processes: false)",
        "Memory per execution: not run: child processes were turned off (processes: false)"
      ])
      assert.isAbove(report.figures.transitionMicros ?? 0, 0)
      assert.isUndefined(report.figures.heapPerExecutionBytes)
      assert.include(Validate.toMarkdown(report), "| Memory per execution | not measured |")
    }))

  it.scoped("on virtual time: a store that loses history rows fails each check on it, with the history it found", () =>
    Effect.gen(function*() {
      yield* driveClock
      const report = yield* Validate.run({ procedures: [Approval], concurrent: 50, processes: false, store: losesHistory })
      const checks = byId(report)
      for (const id of ["linear", "branching", "looping", "error-recovery", "timeout", "concurrency"]) {
        assert.include(checks.get(id)!.reason, "the history is", id)
      }
      // the runtime rebuilds an execution's compensations from its history: with the history lost, a rollback undoes nothing
      assert.include(checks.get("rollback-order")!.reason, "expected a, b, c, then undo c, b, a")
      assert.isTrue(report.failures.some((f) => f.startsWith("Linear flow: linear: the history is [→a start], expected [→a start, a→b step")), report.failures.join("\n"))
    }))

  it.live("a sound deployment is READY, with every check passed and every figure measured", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const progress: Array<string> = []
      const report = yield* Validate.run({
        procedures: [Approval],
        store: SqlStore.layerSqlite({ filename: path.join(dir, "flows.db") }),
        storeName: "a SQLite file",
        dir,
        ...small,
        onProgress: (m) => Effect.sync(() => progress.push(m))
      })
      assert.deepStrictEqual(report.failures, [])
      assert.strictEqual(report.verdict, "READY")
      assert.deepStrictEqual(report.checks.map((c) => c.id), [
        "registration", "linear", "branching", "looping", "error-recovery", "timeout", "rollback-order", "concurrency", "transition-overhead", "crash-recovery", "memory"
      ])
      const f = report.figures
      for (const figure of [f.transitionMicros, f.heapPerExecutionBytes, f.concurrentMillis, f.recoveryMillis]) assert.isAbove(figure ?? 0, 0)
      assert.strictEqual(f.concurrentExecutions, small.concurrent)
      assert.strictEqual(f.executionsMeasured, small.memoryExecutions)
      assert.deepStrictEqual(report.procedures.map((p) => [p.name, p.ok, p.steps, p.waits, p.finals]), [["ops-approval", true, 1, 1, 3]])
      assert.isTrue(progress.some((m) => m.includes("Crash") || m.includes("crash")), progress.join("\n"))
      const markdown = Validate.toMarkdown(report)
      assert.include(markdown, "**READY**")
      assert.notInclude(markdown, "not measured")
    }).pipe(Effect.scoped), 240_000)

  it.live("each kind of check fails when what it checks is broken, and the verdict is NOT READY with each reason", () =>
    Effect.gen(function*() {
      const report = yield* Validate.run({
        procedures: [Approval, Unreachable],
        store: losesHistory,
        ...small,
        childScript: path.join(__dirname, "fixtures", "validate-lossy-child.ts"),
        limits: { transitionMicros: 0.001, heapPerExecutionBytes: 1 }
      })
      assert.strictEqual(report.verdict, "NOT READY")
      assert.isFalse(report.ready)
      const refused = report.procedures.find((p) => p.name === "unreachable")!
      assert.isFalse(refused.ok)
      assert.include(refused.reason, "unreachable")
      assert.isTrue(report.procedures.find((p) => p.name === "ops-approval")!.ok)
      const checks = byId(report)
      assert.include(checks.get("registration")!.reason, "orphan")
      for (const id of ["linear", "branching", "looping", "error-recovery", "timeout", "concurrency", "rollback-order"]) assert.isFalse(checks.get(id)!.ok, id)
      assert.include(checks.get("crash-recovery")!.reason, "committed before the kill ran again")
      assert.include(checks.get("transition-overhead")!.reason, "over the limit")
      assert.include(checks.get("memory")!.reason, "over the limit")
      // every failed check and procedure has its line, with its reason
      assert.strictEqual(report.failures.length, report.checks.filter((c) => !c.ok).length + 1)
      assert.isTrue(report.failures.some((f) => f.startsWith("procedure unreachable@1: ")))
      const markdown = Validate.toMarkdown(report)
      assert.include(markdown, "**NOT READY**")
      assert.include(markdown, "## Why not ready")
    }), 240_000)

  it.live("a store that holds an application's executions is refused and left as it was", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = path.join(dir, "app.db")
      const app = Runtime.layer({ procedures: [Approval] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename })))
      const id = yield* Runtime.start(Approval, { doc: "kept" }).pipe(Effect.provide(app))
      const before = yield* Effect.all([Runtime.get(id), Runtime.history(id)]).pipe(Effect.provide(app))
      const report = yield* Validate.run({ procedures: [Approval], store: SqlStore.layerSqlite({ filename }), dir, ...small, processes: false })
      assert.strictEqual(report.verdict, "NOT READY")
      const linear = byId(report).get("linear")!
      assert.include(linear.reason, "the store holds executions of ops-approval")
      assert.include(byId(report).get("crash-recovery")!.reason, "not run")
      const after = yield* Effect.all([Runtime.get(id), Runtime.history(id)]).pipe(Effect.provide(app))
      assert.deepStrictEqual(after, before)
      assert.strictEqual((yield* Effect.provide(Effect.flatMap(Store.Store, (s) => s.countByVersion()), SqlStore.layerSqlite({ filename }))).length, 1)
    }).pipe(Effect.scoped))
})
