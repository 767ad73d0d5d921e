import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect, Fiber, Layer, Logger, Metric, Option, TestClock } from "effect"
import * as path from "node:path"
import { Errors, Runtime, SqlStore, Store } from "proctor"
import { Approval, journal, Journal, Linear } from "./fixtures/procedures.js"
import { tempDir } from "./fixtures/sqlTemp.js"

/**
 * A memory store that can be taken down: while `down` says so for a commit, the commit
 * fails with an `Unavailable` StoreError (a locked or full database) and writes nothing.
 * `die` makes a commit die instead (a defect in the runtime's machinery).
 */
const outageStore = () => {
  const control = {
    down: (_: Store.Commit) => false,
    die: (_: Store.Commit) => false
  }
  const layer = Layer.effect(
    Store.Store,
    Effect.map(Store.makeMemory, (store) => ({
      ...store,
      commit: (c: Store.Commit) =>
        Effect.suspend(() =>
          control.die(c)
            ? Effect.die(new Error("injected defect"))
            : control.down(c)
            ? Effect.fail(new Errors.StoreError({ kind: "Unavailable", operation: "commit", detail: "database is locked (SQLITE_BUSY)" }))
            : store.commit(c)
        )
    }))
  )
  return { control, layer }
}

const withOutageStore = (test: (control: ReturnType<typeof outageStore>["control"], logs: Array<string>) => Effect.Effect<void, unknown, Runtime.Runtime | Journal>) => {
  const { control, layer } = outageStore()
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
  const runtime = Runtime.layer({ procedures: [Linear], supervision: { maxRestarts: 3, within: "1 minute", backoff: "1 second" } }).pipe(
    Layer.provideMerge(layer),
    Layer.provideMerge(Journal.layer),
    Layer.provide(Logger.replace(Logger.defaultLogger, logger))
  )
  return test(control, logs).pipe(Effect.provide(runtime))
}

const gauge = Effect.map(Metric.value(Runtime.metrics.storeUnavailable), (s) => s.value)

describe("a store outage is waited out and reported", () => {
  it.effect("an execution whose commits fail for 10 minutes waits (not counted as restarts), is reported, and carries on when the store is back", () =>
    withOutageStore((control, logs) =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Linear, { n: 0 })
        // the store goes down from the first step's commit on
        control.down = () => true
        yield* TestClock.adjust("1 millis")
        const health = yield* Runtime.health
        assert.isFalse(health.storeReachable)
        assert.strictEqual(health.unavailableSince, 0)
        assert.strictEqual(health.lastStoreError?.kind, "Unavailable")
        assert.strictEqual(health.waitingForStore, 1)
        assert.strictEqual(yield* gauge, 1)
        // far past the intensity limit (3 restarts within 1 minute): still running, still retried
        yield* TestClock.adjust("10 minutes")
        assert.strictEqual((yield* Runtime.get(id)).status, "running")
        const tries = (yield* journal).length
        assert.isTrue(tries > 20, `the step was tried ${tries} times`)
        // the backoff is capped at 30 s: at most ~20 more tries in the last 10 minutes
        assert.isTrue(tries < 60, `the step was tried ${tries} times`)
        assert.strictEqual((yield* Runtime.health).waitingForStore, 1)
        // back: the actor carries on by itself, within the backoff cap
        control.down = () => false
        yield* TestClock.adjust("30 seconds")
        const final = yield* Runtime.get(id)
        assert.strictEqual(final.status, "succeeded")
        assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.to), ["a", "b", "c", "done"])
        assert.deepStrictEqual(yield* Runtime.health, {
          storeReachable: true,
          unavailableSince: undefined,
          lastStoreError: undefined,
          waitingForStore: 0
        })
        assert.strictEqual(yield* gauge, 0)
        // logged once when it began and once when it ended, not on every retry
        assert.strictEqual(logs.filter((m) => m.startsWith("The store is unavailable")).length, 1)
        assert.strictEqual(logs.filter((m) => /^The store is available again after 6[0-3]\d{4} ms/.test(m)).length, 1)
        assert.strictEqual(logs.filter((m) => /giving up|restarting/.test(m)).length, 0)
      })
    ))

  it.effect("a give-up that cannot be recorded during an outage is retried until it commits", () =>
    withOutageStore((control) =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Linear, { n: 0 })
        // the step's commit is a defect (so the supervisor gives up), and the store is down for the give-up
        control.die = (c) => c.transition?.cause === "step"
        control.down = (c) => c.transition?.cause === "defect"
        yield* TestClock.adjust("10 minutes")
        assert.strictEqual((yield* Runtime.get(id)).status, "running")
        assert.deepStrictEqual(yield* journal, ["a", "a", "a", "a"])
        const health = yield* Runtime.health
        assert.isFalse(health.storeReachable)
        assert.strictEqual(health.waitingForStore, 1)
        control.down = () => false
        yield* TestClock.adjust("30 seconds")
        // not Runtime.await: an execution left without an actor would hang the test instead of failing it
        const final = yield* Runtime.get(id)
        assert.strictEqual(final.status, "failed")
        assert.strictEqual(final.error?.tag, "RuntimeDefect")
        assert.isTrue((yield* Runtime.health).storeReachable)
      })
    ))

  it.effect("a command during an outage answers at once with the StoreError; one after it is applied", () =>
    withOutageStore((control) =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Linear, { n: 0 })
        control.down = () => true
        yield* TestClock.adjust("5 minutes")
        // no time passes: the command is tried on the store at once, not after the backoff
        const refused = yield* Effect.flip(Runtime.pause(id))
        assert.strictEqual(refused._tag, "StoreError")
        assert.strictEqual((refused as Errors.StoreError).kind, "Unavailable")
        control.down = () => false
        // the actor is in its backoff again; the store is back, and the command is applied at once
        const paused = yield* Runtime.pause(id)
        assert.strictEqual(paused.status, "paused")
        yield* Runtime.resume(id)
        assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
      })
    ))

  it.scoped("on SQLite: a write lock held by another connection for 3 minutes is waited out; the timer's transition commits after it", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "outage.db")
      // the store gives up on a lock after 1 s (StoreError Unavailable); the runtime waits on
      const layer = Runtime.layer({ procedures: [Approval] }).pipe(
        Layer.provide(SqlStore.layerSqlite({ filename: file, busyTimeout: "1 second" }))
      )
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Approval, { doc: "d" })
        // another connection takes the write lock
        const other = new Database(file)
        other.exec("BEGIN IMMEDIATE")
        // the wait's timer falls due (24 hours), and its transition cannot commit
        yield* TestClock.adjust("24 hours")
        const ended = yield* Effect.fork(Runtime.await(id))
        // 3 minutes of virtual time, a real turn of the event loop each second (SQLite polls the lock)
        const drive = (seconds: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < seconds && Option.isNone(yield* Fiber.poll(ended)); i++) {
              yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
              yield* TestClock.adjust("1 second")
            }
          })
        yield* drive(180)
        assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
        const health = yield* Runtime.health
        assert.isFalse(health.storeReachable)
        assert.strictEqual(health.lastStoreError?.kind, "Unavailable")
        assert.strictEqual(health.waitingForStore, 1)
        other.exec("ROLLBACK")
        other.close()
        yield* drive(60)
        assert.isTrue(Option.isSome(yield* Fiber.poll(ended)), "the execution ends once the lock is released")
        const final = yield* Fiber.join(ended)
        assert.strictEqual(final.state, "escalated")
        assert.isTrue((yield* Runtime.health).storeReachable)
      }).pipe(Effect.provide(layer))
    }))
})
