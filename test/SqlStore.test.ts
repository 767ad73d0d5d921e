import * as Reactivity from "@effect/experimental/Reactivity"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import type { Duration } from "effect"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Metric, Option, Schema, Scope, TestClock } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { StoreError } from "proctor"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import { layerFaultySqlite, makePlan } from "./fixtures/sqlFaults.js"
import type { FaultPlan } from "./fixtures/sqlFaults.js"
import { batchSize } from "../src/internal/sqlWriter.js"
import { Approval } from "./fixtures/procedures.js"
import { layerTempSqlite, tempDir } from "./fixtures/sqlTemp.js"
import { snapshot, transition } from "./Store.conformance.js"

// -----------------------------------------------------------------------------
// helpers

/** Opens the store on `filename` in a scope of its own; returns it and a way to close it. */
const open = (options: SqlStore.SqliteOptions) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const store = yield* SqlStore.makeSqlite(options).pipe(
      Effect.provide(Reactivity.layer),
      Scope.extend(scope),
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    return { store, close: Scope.close(scope, Exit.void) }
  })

/** The StoreError that opening `options` fails with. */
const openError = (options: SqlStore.SqliteOptions) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.scoped(SqlStore.makeSqlite(options).pipe(Effect.provide(Reactivity.layer))))
    if (Exit.isSuccess(exit)) return assert.fail("expected opening the store to fail")
    assert.strictEqual(exit.cause._tag, "Fail", `expected a typed failure, got ${String(exit.cause)}`)
    return (exit.cause as { error: StoreError }).error
  })

const storeFailure = <A>(effect: Effect.Effect<A, StoreError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return assert.fail("expected a StoreError")
    assert.strictEqual(exit.cause._tag, "Fail", `expected a typed failure, got ${String(exit.cause)}`)
    return (exit.cause as { error: StoreError }).error
  })

const dump = (store: Store.StoreService, id: string) =>
  Effect.all({
    snapshot: store.get(id),
    history: store.history(id),
    errors: store.errors(id),
    inbox: store.inbox(id, 100),
    compensations: store.compensations(id)
  })

const next = (s: Store.Commit["snapshot"], over: Partial<Store.Commit["snapshot"]> = {}) => ({
  ...s,
  seq: s.seq + 1,
  state: `s${s.seq + 1}`,
  rowVersion: s.rowVersion + 1,
  ...over
})

/** One real turn of Node's event loop (not virtual time): a test's way to let the rest of the process run. */
const nextTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Counts the turns of the real event loop for the scope's lifetime: it stops counting while the loop is blocked. */
const eventLoopTurns = Effect.acquireRelease(
  Effect.sync(() => {
    const counter = { turns: 0, handle: undefined as NodeJS.Immediate | undefined }
    const turn = () => {
      counter.turns++
      counter.handle = setImmediate(turn)
    }
    counter.handle = setImmediate(turn)
    return counter
  }),
  (counter) => Effect.sync(() => clearImmediate(counter.handle))
)

/**
 * Lets virtual time pass in steps of `step`, each after a real turn of the event loop, until
 * `fiber` is done (at most `steps` steps).
 */
const driveUntilDone = (fiber: Fiber.Fiber<unknown, unknown>, step: Duration.DurationInput, steps: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < steps && Option.isNone(yield* Fiber.poll(fiber)); i++) {
      yield* nextTurn
      yield* TestClock.adjust(step)
    }
  })

/** Runs `effect` while virtual time passes (1 second a step): for writes that wait out a lock. */
const overTime = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    yield* driveUntilDone(fiber, "1 second", 60)
    return yield* Fiber.join(fiber)
  })

/** Another connection on `file` that holds its write lock (`BEGIN IMMEDIATE`) until `release` or the scope's end. */
const holdWriteLock = (file: string) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const other = new Database(file)
        other.exec("BEGIN IMMEDIATE")
        return other
      }),
      (other) => Effect.sync(() => other.close())
    ),
    (other) => ({ release: Effect.sync(() => other.inTransaction && other.exec("ROLLBACK")) })
  )

/** Runs `test/fixtures/<script>` on `file` in a child process, killed (SIGKILL) when the scope ends. */
const spawnFixture = (script: string, file: string) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "fixtures", script), file], {
        stdio: ["pipe", "pipe", "inherit"]
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Reads a closed database file directly. */
const inspect = <A>(file: string, f: (db: Database.Database) => A): A => {
  const db = new Database(file, { readonly: true })
  try {
    return f(db)
  } finally {
    db.close()
  }
}

// -----------------------------------------------------------------------------

describe("SqlStore.layerSqlite", () => {
  it.scoped("creates the folder, the tables and the lock; keeps everything across a restart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "a", "b", "store.db")
      const first = yield* open({ filename: file })
      assert.isTrue(fs.existsSync(`${file}.lock`))
      assert.strictEqual(JSON.parse(fs.readFileSync(`${file}.lock`, "utf8")).pid, process.pid)
      const s0 = snapshot("e1", { status: "waiting", timerDueAt: 5 })
      yield* first.store.create(s0, transition("e1", 0))
      const s1 = next(s0)
      yield* first.store.commit({ snapshot: s1, expectedVersion: 0, transition: transition("e1", 1) })
      const queued = yield* first.store.enqueue("e1", { _tag: "Go" }, 7)
      const before = yield* dump(first.store, "e1")
      yield* first.close
      assert.isFalse(fs.existsSync(`${file}.lock`), "closing releases the lock")

      const tables = inspect(file, (db) =>
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'proctor_%' ORDER BY name").pluck().all())
      assert.deepStrictEqual(tables, [
        "proctor_compensations",
        "proctor_errors",
        "proctor_executions",
        "proctor_inbox",
        "proctor_migrations",
        "proctor_shards",
        "proctor_transitions"
      ])
      assert.strictEqual(inspect(file, (db) => db.pragma("journal_mode", { simple: true })), "wal")

      const second = yield* open({ filename: file })
      assert.deepStrictEqual(yield* dump(second.store, "e1"), before)
      assert.deepStrictEqual(yield* second.store.inbox("e1", 100), [queued])
      assert.deepStrictEqual(yield* second.store.dueTimers({ until: 10, limit: 10 }), [{ id: "e1", dueAt: 5 }])
      yield* second.close
    }))

  it.scoped("a table prefix names every table", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "store.db")
      const { close, store } = yield* open({ filename: file, prefix: "app1" })
      yield* store.create(snapshot("e1"), transition("e1", 0))
      yield* close
      const names = inspect(file, (db) => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all())
      assert.includeMembers(names, ["app1_executions", "app1_transitions", "app1_migrations"])
      assert.notInclude(names, "proctor_executions")
      const bad = yield* openError({ filename: path.join(path.dirname(file), "x.db"), prefix: "x; DROP TABLE y" })
      assert.include(bad.detail, "prefix")
    }))

  it.scoped("synchronous FULL opens and writes", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "full.db")
      const { close, store } = yield* open({ filename: file, synchronous: "FULL" })
      yield* store.create(snapshot("e1"), transition("e1", 0))
      assert.isTrue(Option.isSome(yield* store.get("e1")))
      yield* close
    }))

  it.scoped("a full queue makes writers wait for room (back-pressure), then takes them all", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "small.db")
      const { close, store } = yield* open({ filename: file, maxBatchSize: 2, queueCapacity: 2 })
      const ids = Array.from({ length: 40 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)), {
        concurrency: "unbounded",
        discard: true
      })
      assert.deepStrictEqual((yield* store.list({})).map((s) => s.id), ids)
      yield* close
    }))

  it.scoped("closing with writes queued: they are written and acknowledged before the store closes", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "inflight.db")
      const first = yield* open({ filename: file })
      const ids = Array.from({ length: 30 }, (_, i) => `e${i}`)
      const fibers = yield* Effect.forEach(ids, (id, i) => Effect.fork(first.store.create(snapshot(id, { startedAt: i }), transition(id, 0))))
      yield* Effect.yieldNow() // the writes are queued, the writer has not taken them yet
      yield* first.close
      const exits = yield* Effect.forEach(fibers, (fiber) => fiber.await)
      // the close wrote what was queued before it
      assert.strictEqual(exits.filter(Exit.isSuccess).length, ids.length)
      const second = yield* open({ filename: file })
      for (const [i, exit] of exits.entries()) {
        const stored = yield* second.store.get(ids[i]!)
        if (Exit.isSuccess(exit)) {
          assert.isTrue(Option.isSome(stored), `${ids[i]} was acknowledged, so it is stored`)
        } else {
          assert.isTrue(exit.cause._tag === "Fail" && exit.cause.error.kind === "Unavailable", String(exit.cause))
          assert.isTrue(Option.isNone(stored), `${ids[i]} failed, so it is not stored`)
        }
      }
      yield* second.close
    }))

  it.scoped("after its scope closes the store refuses writes with Unavailable", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "closed.db")
      const { close, store } = yield* open({ filename: file })
      yield* store.create(snapshot("e1"), transition("e1", 0))
      yield* close
      const error = yield* storeFailure(store.commit({ snapshot: next(snapshot("e1")), expectedVersion: 0 }))
      assert.strictEqual(error.kind, "Unavailable")
      assert.include(error.detail, "closed")
    }))
})

describe("SqlStore: reads in a shared read transaction", () => {
  it.scoped("a read right after a commit sees it, read after read, in the same turn of the event loop", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "reads.db")
      const { close, store } = yield* open({ filename: file })
      let s = snapshot("e1")
      yield* store.create(s, transition("e1", 0))
      for (let i = 1; i <= 20; i++) {
        // the first read opens the read transaction; the commit's batch must end it first
        assert.strictEqual(Option.getOrThrow(yield* store.get("e1")).rowVersion, s.rowVersion)
        assert.strictEqual((yield* store.inbox("e1", 100)).length, i - 1)
        const entry = yield* store.enqueue("e1", { _tag: "Go", i }, i)
        assert.strictEqual((yield* store.inbox("e1", 100)).at(-1)?.seq, entry.seq)
        const n = next(s)
        yield* store.commit({ snapshot: n, expectedVersion: s.rowVersion, transition: transition("e1", n.seq) })
        s = n
        assert.strictEqual(Option.getOrThrow(yield* store.get("e1")).rowVersion, s.rowVersion)
      }
      yield* close
    }))

  it.scoped("closing the store with a read transaction open leaves nothing behind", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "close-read.db")
      const first = yield* open({ filename: file })
      yield* first.store.create(snapshot("e1"), transition("e1", 0))
      // a read and the close in the same turn: the read transaction is still open when the file closes
      assert.isTrue(Option.isSome(yield* first.store.get("e1")))
      yield* first.close
      yield* nextTurn
      const second = yield* open({ filename: file })
      assert.isTrue(Option.isSome(yield* second.store.get("e1")))
      yield* second.store.create(snapshot("e2"), transition("e2", 0))
      yield* second.close
    }))
})

describe("SqlStore: bad files", () => {
  it.scoped("a folder that cannot be created fails at once, naming it (Node's recursive mkdir never returns under /proc)", () =>
    Effect.gen(function*() {
      const error = yield* openError({ filename: "/proc/proctor-nope/x.db" })
      assert.strictEqual(error.operation, "open")
      assert.include(error.detail, "cannot create its folder /proc/proctor-nope")
    }))

  it.scoped("a file that is not a database fails with Corrupt, naming the file", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "garbage.db")
      const garbage = "this is not an SQLite database, just text ".repeat(200)
      fs.writeFileSync(file, garbage)
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Corrupt")
      assert.strictEqual(error.operation, "open")
      assert.include(error.detail, file)
      assert.include(error.detail, "backup")
      assert.strictEqual(fs.readFileSync(file, "utf8"), garbage, "the file is left as it was")
      assert.isFalse(fs.existsSync(`${file}.lock`), "a failed open releases the lock")
    }))

  it.scoped("a database with damaged pages fails with Corrupt", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "damaged.db")
      const { close, store } = yield* open({ filename: file })
      yield* store.create(snapshot("e1"), transition("e1", 0))
      yield* close
      const bytes = fs.readFileSync(file)
      bytes.fill(0x5a, 100) // keep the 100-byte header, overwrite every page after it
      fs.writeFileSync(file, bytes)
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Corrupt")
      assert.include(error.detail, file)
    }))

  it.scoped("a database from a newer schema version fails with Incompatible and is left untouched", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "newer.db")
      const { close } = yield* open({ filename: file })
      yield* close
      const db = new Database(file)
      db.prepare("INSERT INTO proctor_migrations (migration_id, name) VALUES (999, 'from_the_future')").run()
      db.close()
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Incompatible")
      assert.include(error.detail, file)
      assert.include(error.detail, "999")
      assert.include(error.detail, "Upgrade proctor")
      const ids = inspect(file, (db) => db.prepare("SELECT migration_id FROM proctor_migrations ORDER BY 1").pluck().all())
      assert.deepStrictEqual(ids, [1, 2, 3, 4, 5, 999])
    }))

  it.scoped("a database that cannot be written fails with ReadOnly, naming the file", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "readonly.db")
      const { close } = yield* open({ filename: file })
      yield* close
      // byte 18 of the header is the file format's write version: above 2, SQLite opens the
      // file read-only for everyone (root included, unlike a chmod)
      const bytes = fs.readFileSync(file)
      bytes[18] = 3
      fs.writeFileSync(file, bytes)
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "ReadOnly")
      assert.include(error.detail, file)
      assert.include(error.detail, "permissions")
    }))
})

describe("SqlStore: one store per file", () => {
  it.scoped("a second layer on the same file in this process is refused with Locked", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "one.db")
      const first = yield* open({ filename: file })
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Locked")
      assert.include(error.detail, file)
      assert.include(error.detail, "another SqlStore layer")
      // also when it is named another way
      const link = path.join(path.dirname(file), "alias.db")
      fs.symlinkSync(file, link)
      assert.strictEqual((yield* openError({ filename: link })).kind, "Locked")
      const relative = path.relative(process.cwd(), file)
      assert.strictEqual((yield* openError({ filename: relative })).kind, "Locked")
      // the refused layer did not take the lock from the first one
      assert.strictEqual(JSON.parse(fs.readFileSync(`${file}.lock`, "utf8")).pid, process.pid)
      yield* first.store.create(snapshot("e1"), transition("e1", 0))
      yield* first.close
      const again = yield* open({ filename: file })
      assert.isTrue(Option.isSome(yield* again.store.get("e1")))
      yield* again.close
    }))

  it.scoped("a lock held by another live process is refused with its pid; a dead owner's lock is taken over", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "two.db")
      const lock = `${file}.lock`
      const host = os.hostname()
      // the parent of this test process is alive and is not us
      fs.writeFileSync(lock, JSON.stringify({ pid: process.ppid, host, since: "2024-01-01T00:00:00.000Z" }))
      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Locked")
      assert.include(error.detail, String(process.ppid))
      assert.include(error.detail, lock)
      // a lock left by a process that is gone (pids are at most 2^22 on Linux)
      fs.writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 17, host, since: "2024-01-01T00:00:00.000Z" }))
      const taken = yield* open({ filename: file })
      assert.strictEqual(JSON.parse(fs.readFileSync(lock, "utf8")).pid, process.pid)
      yield* taken.close
      // an unreadable lock may be one another process is writing this instant: refused...
      fs.writeFileSync(lock, "{\"pid\":")
      const young = yield* openError({ filename: file })
      assert.strictEqual(young.kind, "Locked")
      assert.include(young.detail, "Try again")
      // ...but one left unreadable by a crash a while ago is taken over
      fs.utimesSync(lock, new Date(2024, 0, 1), new Date(2024, 0, 1))
      const again = yield* open({ filename: file })
      yield* again.close
    }))

  it.live("a second process is refused while the first runs, and takes over after it was killed", () =>
    Effect.scoped(Effect.gen(function*() {
      const file = path.join(yield* tempDir, "shared.db")
      const child = yield* spawnFixture("sqlHolder.ts", file)
      const ready = yield* Deferred.make<void, Error>()
      child.stdout.on("data", (chunk: Buffer) => {
        const text = chunk.toString()
        if (text.includes("ready")) Deferred.unsafeDone(ready, Exit.void)
        else Deferred.unsafeDone(ready, Exit.fail(new Error(`holder: ${text}`)))
      })
      child.on("exit", (code) => Deferred.unsafeDone(ready, Exit.fail(new Error(`holder exited with ${code}`))))
      yield* Deferred.await(ready).pipe(Effect.timeout("90 seconds"))

      const error = yield* openError({ filename: file })
      assert.strictEqual(error.kind, "Locked")
      assert.include(error.detail, `process ${child.pid}`)

      const exited = yield* Deferred.make<void>()
      child.on("exit", () => Deferred.unsafeDone(exited, Exit.void))
      child.kill("SIGKILL") // no chance to release the lock
      yield* Deferred.await(exited).pipe(Effect.timeout("30 seconds"))
      assert.isTrue(fs.existsSync(`${file}.lock`), "the killed process left its lock behind")
      const taken = yield* open({ filename: file })
      yield* taken.store.create(snapshot("e1"), transition("e1", 0))
      yield* taken.close
    })))
})

describe("SqlStore: faults while writing", () => {
  const faulty = (plan: FaultPlan) => SqlStore.layer().pipe(Layer.provide(layerFaultySqlite(plan)))

  const setup = Effect.gen(function*() {
    const store = yield* Store.Store
    const s0 = snapshot("e1", { status: "waiting" })
    yield* store.create(s0, transition("e1", 0))
    const event = yield* store.enqueue("e1", { _tag: "Go" }, 3)
    const commit: Store.Commit = {
      snapshot: next(s0, { status: "running", context: { n: 1 } }),
      expectedVersion: 0,
      transition: transition("e1", 1, { cause: "event:Go", event: event.event }),
      errors: [{ executionId: "e1", state: "a", attempt: 1, tag: "X", message: "m", transient: false, at: 3 }],
      consumed: event.seq,
      compensation: { executionId: "e1", stepSeq: 0, state: "a", ok: true, at: 3 }
    }
    return { store, commit, before: yield* dump(store, "e1") }
  })

  for (
    const [title, fault, where] of [
      ["SQLITE_BUSY on the history insert", "busy", "INSERT INTO \"proctor_transitions\""],
      ["SQLITE_BUSY when the transaction begins", "busy", "BEGIN"],
      ["disk full on COMMIT", "full", "COMMIT"],
      ["disk full on the inbox delete", "full", "DELETE FROM \"proctor_inbox\""]
    ] as const
  ) {
    it.effect(`${title}: the commit fails with Unavailable and nothing is half-written`, () => {
      const plan = makePlan()
      return Effect.gen(function*() {
        const { before, commit, store } = yield* setup
        plan.rule = (sql) => (sql.startsWith(where) ? fault : undefined)
        // a lock is waited out (busyTimeout, 5 seconds) before the commit fails
        const error = yield* storeFailure(fault === "busy" ? overTime(store.commit(commit)) : store.commit(commit))
        assert.strictEqual(error.kind, "Unavailable")
        assert.include(error.detail, fault === "busy" ? "SQLITE_BUSY" : "SQLITE_FULL")
        if (fault === "busy") assert.include(error.detail, "another process or connection has held a lock on it for more than 5s")
        plan.rule = () => undefined
        assert.deepStrictEqual(yield* dump(store, "e1"), before)
        // the store works on: the same commit goes through once the fault is gone
        yield* store.commit(commit)
        const after = yield* dump(store, "e1")
        assert.deepStrictEqual(after.snapshot, Option.some(commit.snapshot))
        assert.strictEqual(after.history.length, 2)
        assert.deepStrictEqual(after.inbox, [])
        assert.strictEqual(after.errors.length, 1)
        assert.strictEqual(after.compensations.length, 1)
      }).pipe(Effect.provide(faulty(plan)))
    })
  }

  it.effect("a failed batch fails every commit in it, and writes none of them", () => {
    const plan = makePlan()
    return Effect.gen(function*() {
      const store = yield* Store.Store
      const ids = Array.from({ length: 10 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)))
      plan.rule = (sql) => (sql === "COMMIT" ? "full" : undefined)
      const exits = yield* Effect.forEach(
        ids,
        (id, i) => Effect.exit(store.commit({ snapshot: next(snapshot(id, { startedAt: i })), expectedVersion: 0, transition: transition(id, 1) })),
        { concurrency: "unbounded" }
      )
      for (const exit of exits) {
        assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.kind === "Unavailable")
      }
      plan.rule = () => undefined
      for (const id of ids) {
        assert.strictEqual(Option.getOrThrow(yield* store.get(id)).rowVersion, 0)
        assert.strictEqual((yield* store.history(id)).length, 1)
      }
    }).pipe(Effect.provide(faulty(plan)))
  })

  it.effect("SQLITE_BUSY that clears: commits and reads are tried again on a backoff and go through", () => {
    const plan = makePlan()
    return Effect.gen(function*() {
      const { commit, store } = yield* setup
      let busy = 3
      plan.rule = (sql) => (sql.startsWith("BEGIN") || sql.startsWith("SELECT")) && busy-- > 0 ? "busy" : undefined
      yield* overTime(store.commit(commit))
      assert.strictEqual(busy, -1, "the commit was tried again until it went through")
      busy = 3
      const read = yield* overTime(store.get("e1"))
      assert.deepStrictEqual(read, Option.some(commit.snapshot))
      assert.strictEqual(busy, -1, "the read was tried again until it went through")
      // a read that stays locked fails with Unavailable once busyTimeout has passed
      plan.rule = (sql) => (sql.startsWith("SELECT") ? "busy" : undefined)
      const error = yield* storeFailure(overTime(store.list({})))
      assert.strictEqual(error.kind, "Unavailable")
      assert.strictEqual(error.operation, "list")
      assert.include(error.detail, "End that transaction or stop that program")
    }).pipe(Effect.provide(faulty(plan)))
  })

  it.effect("a commit whose rows the database rejects fails alone; the rest of its batch commits", () => {
    const plan = makePlan()
    return Effect.gen(function*() {
      const store = yield* Store.Store
      const ids = Array.from({ length: 10 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)))
      plan.rule = (sql, params) => (sql.startsWith("INSERT INTO \"proctor_transitions\"") && params.includes("e3") ? "reject" : undefined)
      const exits = yield* Effect.forEach(
        ids,
        (id, i) => Effect.exit(store.commit({ snapshot: next(snapshot(id, { startedAt: i })), expectedVersion: 0, transition: transition(id, 1) })),
        { concurrency: "unbounded" }
      )
      plan.rule = () => undefined
      for (const [i, exit] of exits.entries()) {
        if (ids[i] === "e3") {
          assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.kind === "Unknown")
        } else {
          assert.isTrue(Exit.isSuccess(exit), `${ids[i]} should commit`)
        }
        const id = ids[i]!
        const rowVersion = Option.getOrThrow(yield* store.get(id)).rowVersion
        assert.strictEqual(rowVersion, id === "e3" ? 0 : 1)
        assert.strictEqual((yield* store.history(id)).length, id === "e3" ? 1 : 2)
      }
    }).pipe(Effect.provide(faulty(plan)))
  })

  it.effect("concurrent commits are group-committed: fewer transactions than commits", () => {
    const plan = makePlan()
    return Effect.gen(function*() {
      const store = yield* Store.Store
      const ids = Array.from({ length: 50 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)), {
        concurrency: "unbounded"
      })
      const begins = () => plan.log.filter((sql) => sql === "BEGIN").length
      const start = begins()
      yield* Effect.forEach(
        ids,
        (id, i) => store.commit({ snapshot: next(snapshot(id, { startedAt: i })), expectedVersion: 0, transition: transition(id, 1) }),
        { concurrency: "unbounded", discard: true }
      )
      const transactions = begins() - start
      assert.isAtLeast(transactions, 1)
      assert.isBelow(transactions, 5, `50 concurrent commits took ${transactions} transactions`)
      for (const id of ids) assert.strictEqual((yield* store.history(id)).length, 2)
    }).pipe(Effect.provide(faulty(plan)))
  })
})

describe("SqlStore: faults on the SQLite fast path", () => {
  it.scoped("a database locked by another connection fails the commit with Unavailable; nothing is written", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "busy.db")
      const { close, store } = yield* open({ filename: file, busyTimeout: 0 })
      const s0 = snapshot("e1")
      yield* store.create(s0, transition("e1", 0))
      const before = yield* dump(store, "e1")
      const other = new Database(file)
      other.exec("BEGIN IMMEDIATE") // holds the write lock
      const commit = { snapshot: next(s0), expectedVersion: 0, transition: transition("e1", 1) }
      const error = yield* storeFailure(store.commit(commit))
      assert.strictEqual(error.kind, "Unavailable")
      assert.include(error.detail, file)
      assert.include(error.detail, "SQLITE_BUSY")
      other.exec("ROLLBACK")
      other.close()
      assert.deepStrictEqual(yield* dump(store, "e1"), before)
      yield* store.commit(commit)
      assert.strictEqual((yield* store.history("e1")).length, 2)
      yield* close
    }))

  it.scoped("a commit whose rows SQLite rejects fails alone; the rest of its batch commits", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "reject.db")
      const { close, store } = yield* open({ filename: file })
      const ids = Array.from({ length: 10 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)))
      const other = new Database(file)
      other.exec(`CREATE TRIGGER reject_boom BEFORE INSERT ON proctor_transitions WHEN NEW.cause = 'event:boom'
        BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END`)
      other.close()
      const exits = yield* Effect.forEach(
        ids,
        (id, i) =>
          Effect.exit(store.commit({
            snapshot: next(snapshot(id, { startedAt: i })),
            expectedVersion: 0,
            transition: transition(id, 1, { cause: id === "e5" ? "event:boom" : "step" })
          })),
        { concurrency: "unbounded" }
      )
      for (const [i, exit] of exits.entries()) {
        const id = ids[i]!
        if (id === "e5") {
          assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.detail.includes("rejected by test trigger"))
        } else {
          assert.isTrue(Exit.isSuccess(exit), `${id} should commit`)
        }
        assert.strictEqual(Option.getOrThrow(yield* store.get(id)).rowVersion, id === "e5" ? 0 : 1)
        assert.strictEqual((yield* store.history(id)).length, id === "e5" ? 1 : 2)
      }
      yield* close
    }))
})

describe("SqlStore: the inbox, counted in memory on SQLite", () => {
  it.scoped("events queued before a restart are read after it; consumed and discarded ones are gone", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "inbox.db")
      const first = yield* open({ filename: file })
      for (const id of ["a", "b", "c"]) yield* first.store.create(snapshot(id, { status: "waiting" }), transition(id, 0))
      const [a1] = [yield* first.store.enqueue("a", { _tag: "Go", n: 1 }, 1), yield* first.store.enqueue("a", { _tag: "Go", n: 2 }, 2)]
      yield* first.store.enqueue("b", { _tag: "Go", n: 3 }, 3)
      yield* first.close
      const { close, store } = yield* open({ filename: file })
      assert.deepStrictEqual((yield* store.inbox("a", 10)).map((e) => e.event), [{ _tag: "Go", n: 1 }, { _tag: "Go", n: 2 }])
      assert.strictEqual((yield* store.inbox("b", 10)).length, 1)
      assert.strictEqual((yield* store.inbox("c", 10)).length, 0)
      // a consumes its first event; b ends with its event still queued (discarded, with an error entry)
      yield* store.commit({ snapshot: next(snapshot("a", { status: "waiting" })), expectedVersion: 0, transition: transition("a", 1), consumed: a1!.seq })
      yield* store.commit({ snapshot: next(snapshot("b"), { status: "succeeded" }), expectedVersion: 0, transition: transition("b", 1) })
      assert.deepStrictEqual((yield* store.inbox("a", 10)).map((e) => e.event), [{ _tag: "Go", n: 2 }])
      assert.strictEqual((yield* store.inbox("b", 10)).length, 0)
      assert.strictEqual((yield* store.errors("b")).filter((e) => e.tag === "EventDiscarded").length, 1)
      // an event queued now is seen at once
      yield* store.enqueue("c", { _tag: "Go", n: 4 }, 4)
      assert.strictEqual((yield* store.inbox("c", 10)).length, 1)
      yield* close
    }))

  it.scoped("a commit consuming an event that SQLite rejects leaves the event in the inbox, alone and in a batch", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "inbox-reject.db")
      const { close, store } = yield* open({ filename: file })
      const ids = Array.from({ length: 8 }, (_, i) => `e${i}`)
      yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { status: "waiting", startedAt: i }), transition(id, 0)))
      const seqs = yield* Effect.forEach(ids, (id) => Effect.map(store.enqueue(id, { _tag: "Go" }, 1), (e) => e.seq))
      const other = new Database(file)
      // the compensation record is written after the event's row is deleted: the delete is undone with it
      other.exec(`CREATE TRIGGER reject_comp BEFORE INSERT ON proctor_compensations WHEN NEW.state = 'boom'
        BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END`)
      other.close()
      const consume = (i: number) =>
        Effect.exit(store.commit({
          snapshot: next(snapshot(ids[i]!, { status: "waiting", startedAt: i })),
          expectedVersion: 0,
          transition: transition(ids[i]!, 1),
          consumed: seqs[i]!,
          compensation: { executionId: ids[i]!, stepSeq: 0, state: i % 2 === 0 ? "boom" : "fine", ok: true, at: 1 }
        }))
      // e0 alone (a batch of one), then the rest together (one batch, written again op by op)
      assert.isTrue(Exit.isFailure(yield* consume(0)))
      yield* Effect.forEach(ids.slice(1), (_, i) => consume(i + 1), { concurrency: "unbounded" })
      for (const [i, id] of ids.entries()) {
        assert.strictEqual((yield* store.inbox(id, 10)).length, i % 2 === 0 ? 1 : 0, id)
      }
      yield* close
      assert.strictEqual(inspect(file, (db) => (db.prepare("SELECT COUNT(*) AS n FROM proctor_inbox").get() as { n: number }).n), 4)
    }))
})

describe("SqlStore: bad input and group commit, on both write paths", () => {
  const paths = [
    ["SQLite file (fast path)", layerTempSqlite()],
    ["portable @effect/sql path", SqlStore.layer().pipe(Layer.provide(layerFaultySqlite(makePlan())))]
  ] as const

  for (const [name, layer] of paths) {
    it.effect(`${name}: a snapshot that cannot be encoded fails alone; nothing of it is written`, () =>
      Effect.gen(function*() {
        const store = yield* Store.Store
        const ids = Array.from({ length: 8 }, (_, i) => `e${i}`)
        yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)))
        const exits = yield* Effect.forEach(
          ids,
          (id, i) =>
            Effect.exit(store.commit({
              snapshot: next(snapshot(id, { startedAt: i }), { context: id === "e2" ? { n: BigInt(1) } : { n: 1 } }),
              expectedVersion: 0,
              transition: transition(id, 1)
            })),
          { concurrency: "unbounded" }
        )
        for (const [i, exit] of exits.entries()) {
          const id = ids[i]!
          if (id === "e2") {
            assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "StoreError")
          } else {
            assert.isTrue(Exit.isSuccess(exit), `${id} should commit`)
          }
          const s = Option.getOrThrow(yield* store.get(id))
          assert.deepStrictEqual(s.context, id === "e2" ? { n: 0 } : { n: 1 })
          assert.strictEqual((yield* store.history(id)).length, id === "e2" ? 1 : 2)
        }
        // an event that cannot be encoded is refused the same way
        const error = yield* storeFailure(store.enqueue("e1", { at: BigInt(1) }, 1))
        assert.strictEqual(error._tag, "StoreError")
        assert.deepStrictEqual(yield* store.inbox("e1", 100), [])
      }).pipe(Effect.provide(layer)))

    it.effect(`${name}: a lone write goes at once; concurrent writes share transactions`, () =>
      Effect.gen(function*() {
        const store = yield* Store.Store
        const histogram = () => Effect.map(Metric.value(batchSize), (state) => ({ count: state.count, sum: state.sum }))
        // under TestClock time stands still: a writer that waited for company would never write
        const before = yield* histogram()
        yield* store.create(snapshot("lone"), transition("lone", 0))
        const lone = yield* histogram()
        assert.deepStrictEqual({ count: lone.count - before.count, sum: lone.sum - before.sum }, { count: 1, sum: 1 })
        const ids = Array.from({ length: 50 }, (_, i) => `e${i}`)
        yield* Effect.forEach(ids, (id, i) => store.create(snapshot(id, { startedAt: i }), transition(id, 0)), {
          concurrency: "unbounded",
          discard: true
        })
        const burst = yield* histogram()
        assert.strictEqual(burst.sum - lone.sum, 50)
        assert.isBelow(burst.count - lone.count, 5, `50 concurrent creates took ${burst.count - lone.count} transactions`)
        assert.strictEqual((yield* store.list({ limit: 100 })).length, 51)
      }).pipe(Effect.provide(layer)))
  }
})

describe("SqlStore with the Runtime", () => {
  const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
  const Flow = Procedure.make("flow", {
    version: 1,
    input: Schema.Struct({ n: Schema.Number }),
    context: Schema.Struct({ n: Schema.Number, by: Schema.optional(Schema.String) }),
    events: Approve
  }, {
    initial: "a",
    states: {
      a: Procedure.step({ run: ({ context }) => Effect.succeed(context.n + 1), update: (n, c) => ({ ...c, n }), next: "b" }),
      b: Procedure.step({ run: () => Effect.sleep("1 second"), next: "w" }),
      w: Procedure.wait({
        on: { Approve: { goto: "done", update: (e, c) => ({ ...c, by: e.by }) } },
        after: { delay: "1 hour", goto: "late" }
      }),
      late: Procedure.final({ outcome: "failed" }),
      done: Procedure.final()
    }
  })

  it.scoped("runs a procedure on SQLite, and another runtime on the same file finishes it after a restart", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "runtime.db")
      const layer = () => Runtime.layer({ procedures: [Flow] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: file })))

      const id = yield* Effect.scoped(
        Effect.gen(function*() {
          const id = yield* Runtime.start(Flow, { n: 1 })
          yield* TestClock.adjust("2 seconds")
          const s = yield* Runtime.get(id)
          assert.strictEqual(s.state, "w")
          assert.strictEqual(s.status, "waiting")
          return id
        }).pipe(Effect.provide(layer()))
      )

      yield* Effect.scoped(
        Effect.gen(function*() {
          assert.strictEqual((yield* Runtime.get(id)).state, "w")
          yield* Runtime.send(id, { _tag: "Approve", by: "ann" })
          const final = yield* Runtime.await(id)
          assert.strictEqual(final.status, "succeeded")
          assert.deepStrictEqual(final.context, { n: 2, by: "ann" })
          assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.to), ["a", "b", "w", "done"])
        }).pipe(Effect.provide(layer()))
      )
    }))
})

describe("SqlStore: a database locked by another connection", () => {
  it.scoped("the event loop keeps turning, a timeout around start fires, and the write completes once the lock is released", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "locked.db")
      const layer = Runtime.layer({ procedures: [Approval] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: file })))
      yield* Effect.gen(function*() {
        const lock = yield* holdWriteLock(file)
        const loop = yield* eventLoopTurns
        const before = loop.turns

        // the start waits for the lock; the rest of the process (here: the event loop, and the
        // fiber that moves virtual time on) keeps running, so the caller's timeout fires
        const timedOut = yield* Effect.fork(Effect.exit(Effect.timeout(Runtime.start(Approval, { doc: "d1" }), "1 second")))
        yield* driveUntilDone(timedOut, "50 millis", 100)
        const exit = yield* Fiber.join(timedOut)
        assert.isTrue(
          Exit.isFailure(exit) && Option.exists(Cause.failureOption(exit.cause), Cause.isTimeoutException),
          `expected the timeout to fire, got ${String(exit)}`
        )
        assert.isAbove(loop.turns - before, 20, "the event loop turned while the start waited")

        // another start waits too, and completes once the lock is released
        const waiting = yield* Effect.fork(Runtime.start(Approval, { doc: "d2" }))
        yield* driveUntilDone(waiting, "50 millis", 10)
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)), "the start waits while the lock is held")
        yield* lock.release
        yield* driveUntilDone(waiting, "50 millis", 100)
        const id = yield* Fiber.join(waiting)
        assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
        // the timed-out start's write was still queued: it is written too (its caller had left)
        const started = (yield* Runtime.list({ procedure: "approval" })).map((s) => (s.context as { doc: string }).doc)
        assert.deepStrictEqual(started.sort(), ["d1", "d2"])
      }).pipe(Effect.provide(layer))
    }))
})

describe("SqlStore: database files removed or replaced under a running process", () => {
  /** The StoreError an effect fails with: kind Corrupt, naming what was lost. */
  const lostFile = <R>(effect: Effect.Effect<unknown, unknown, R>, name: string) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(effect)
      const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
      assert.isTrue(
        typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "StoreError",
        `expected a StoreError, got ${String(exit)}`
      )
      const storeError = error as StoreError
      assert.strictEqual(storeError.kind, "Corrupt")
      assert.include(storeError.detail, `${name} was removed or replaced while this process used it`)
      return storeError
    })

  const damages = [
    { title: "the database file removed", name: (file: string) => file, damage: (file: string) => fs.unlinkSync(file) },
    { title: "its -wal removed", name: (file: string) => `${file}-wal`, damage: (file: string) => fs.unlinkSync(`${file}-wal`) },
    {
      title: "the database file replaced by another",
      name: (file: string) => file,
      damage: (file: string) => {
        fs.writeFileSync(`${file}.other`, "")
        fs.renameSync(`${file}.other`, file)
      }
    }
  ]

  it.live("its -wal removed, then the process killed: what was committed before is in the database file", () =>
    Effect.scoped(Effect.gen(function*() {
      const file = path.join(yield* tempDir, "killed.db")
      const child = yield* spawnFixture("sqlWalLoss.ts", file)
      const report = yield* Deferred.make<{ ids: Array<string>; refused: string }, Error>()
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        if (!out.includes("\n")) return
        try {
          Deferred.unsafeDone(report, Exit.succeed(JSON.parse(out) as { ids: Array<string>; refused: string }))
        } catch {
          Deferred.unsafeDone(report, Exit.fail(new Error(`child: ${out}`)))
        }
      })
      const exited = yield* Deferred.make<void>()
      child.on("exit", (code) => {
        Deferred.unsafeDone(report, Exit.fail(new Error(`child exited with ${code}: ${out}`)))
        Deferred.unsafeDone(exited, Exit.void)
      })
      const { ids, refused } = yield* Deferred.await(report).pipe(Effect.timeout("90 seconds"))
      assert.strictEqual(refused, "Corrupt")
      child.kill("SIGKILL") // no clean close: only what the store copied into the file survives
      yield* Deferred.await(exited).pipe(Effect.timeout("30 seconds"))

      const reopened = yield* open({ filename: file })
      for (const id of ids) assert.isTrue(Option.isSome(yield* reopened.store.get(id)), `${id} survived`)
      yield* reopened.close
    })))

  for (const { damage, name, title } of damages) {
    it.scoped(`${title}: the next start fails with a typed StoreError and nothing more is acknowledged`, () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "gone.db")
        const layer = () => Runtime.layer({ procedures: [Approval] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: file })))
        const ids = yield* Effect.gen(function*() {
          const ids = yield* Effect.forEach(["d1", "d2", "d3"], (doc) => Runtime.start(Approval, { doc }))
          damage(file)
          yield* lostFile(Runtime.start(Approval, { doc: "d4" }), name(file))
          // and every later write: nothing more is acknowledged
          yield* lostFile(Runtime.start(Approval, { doc: "d5" }), name(file))
          yield* lostFile(Runtime.send(ids[0]!, { _tag: "Approve", by: "ann" }), name(file))
          return ids
        }).pipe(Effect.provide(layer()))

        // a new process goes on with what is at the file's name now
        yield* Effect.gen(function*() {
          const there = (yield* Runtime.list({ procedure: "approval" })).map((s) => s.id)
          if (title === "its -wal removed") {
            // what was committed before the -wal went is in the database file (the store copied it there)
            for (const id of ids) assert.include(there, id)
          } else {
            assert.deepStrictEqual(there, [])
          }
        }).pipe(Effect.provide(layer()))
      }))
  }
})
