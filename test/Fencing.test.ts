/**
 * Fenced stores (several runtimes on one database, docs/scale-out.md): a store commits an
 * execution only while it holds the execution's shard at the epoch stored for it, so a store
 * that lost the shard writes nothing, fails with a typed `Fenced` error, and the runtime drops
 * the execution instead of retrying. Runs on SQLite (portable path, a temporary file) and, with
 * PROCTOR_TEST_PG_URL, on Postgres; the conformance suite runs on fenced stores in Store.test.ts.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Context, Deferred, Effect, Exit, Layer, Logger, Option, Redacted, Schema, TestClock } from "effect"
import type { StoreError } from "proctor"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import { journal, Journal, record } from "./fixtures/procedures.js"
import { lease, leasesTable, onPg, onSqlite } from "./fixtures/fencedDb.js"
import { snapshot, transition } from "./Store.conformance.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

const failure = <A, R>(effect: Effect.Effect<A, StoreError, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return assert.fail("expected a StoreError")
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    assert.isDefined(error, String(exit.cause))
    return error!
  })

const shards = 4
/** ids in shard 1 and in another shard (of 4) */
const ids = (shardOf: (id: string) => number) => {
  const all = Array.from({ length: 64 }, (_, i) => `exec-${i}`)
  const inOne = all.filter((id) => shardOf(id) === 1)
  const elsewhere = all.filter((id) => shardOf(id) !== 1)
  return { a: inOne[0]!, b: inOne[1]!, other: elsewhere[0]! }
}

const suite = (name: string, run: (body: (prefix: string) => Effect.Effect<void, unknown, SqlClient.SqlClient | Scope.Scope>) => Effect.Effect<void, unknown>) =>
  describe(`fenced store: ${name}`, () => {
    it.effect("a store that does not hold an execution's shard cannot commit it", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const { shards: s, store } = yield* SqlStore.makeFenced({ prefix, shards })
          const { a } = ids(s.shardOf)
          const first = snapshot(a)
          // creating is not fenced: any runtime may start an execution
          assert.isTrue((yield* store.create(first, transition(a, 0))).created)
          const error = yield* failure(store.commit({ snapshot: { ...first, rowVersion: 1, seq: 1 }, expectedVersion: 0, transition: transition(a, 1) }))
          assert.strictEqual(error.kind, "Fenced")
          assert.include(error.detail, `shard ${s.shardOf(a)}`)
          assert.deepStrictEqual(yield* store.get(a), Option.some(first))
          assert.strictEqual((yield* store.history(a)).length, 1)
        })
      ))

    it.effect("claimAll takes several shards in one statement, each at a new epoch, fencing out their earlier holder", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          const two = yield* SqlStore.makeFenced({ prefix, shards })
          const { a } = ids(one.shards.shardOf)
          const first = yield* one.shards.claimAll([3, 1], "runner-1")
          assert.deepStrictEqual([...first.entries()].sort(), [[1, 1], [3, 1]])
          assert.deepStrictEqual(yield* one.shards.held, first)
          yield* one.store.create(snapshot(a), transition(a, 0))
          const taken = yield* two.shards.claimAll([1, 2, 3], "runner-2")
          assert.deepStrictEqual([...taken.entries()].sort(), [[1, 2], [2, 1], [3, 2]])
          const error = yield* failure(one.store.commit({ snapshot: { ...snapshot(a), rowVersion: 1, seq: 1 }, expectedVersion: 0 }))
          assert.strictEqual(error.kind, "Fenced")
          assert.deepStrictEqual(yield* two.shards.claimAll([], "runner-2"), new Map())
        })
      ))

    it.effect("once another store claims the shard, the first one's commits are refused and write nothing", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          const two = yield* SqlStore.makeFenced({ prefix, shards })
          const { a, other } = ids(one.shards.shardOf)
          const e1 = yield* one.shards.claim(1, "runner-1")
          const s0 = snapshot(a)
          yield* one.store.create(s0, transition(a, 0))
          const s1 = { ...s0, seq: 1, rowVersion: 1, state: "s1" }
          yield* one.store.commit({ snapshot: s1, expectedVersion: 0, transition: transition(a, 1) })

          // runner 2 takes shard 1 (runner 1 was paused past its lease, say)
          const e2 = yield* two.shards.claim(1, "runner-2")
          assert.isAbove(e2, e1)
          const late = { ...s1, seq: 2, rowVersion: 2, state: "s2" }
          const error = yield* failure(one.store.commit({ snapshot: late, expectedVersion: 1, transition: transition(a, 2) }))
          assert.strictEqual(error.kind, "Fenced")
          assert.include(error.detail, "runner-2")
          assert.deepStrictEqual(yield* two.store.get(a), Option.some(s1))
          assert.strictEqual((yield* two.store.history(a)).length, 2)

          // the new owner commits from what was committed
          yield* two.store.commit({ snapshot: late, expectedVersion: 1, transition: transition(a, 2) })
          assert.deepStrictEqual(yield* one.store.get(a), Option.some(late))

          // taking it back fences the second one in turn
          const e3 = yield* one.shards.claim(1, "runner-1")
          assert.isAbove(e3, e2)
          const next = { ...late, seq: 3, rowVersion: 3, state: "s3" }
          assert.strictEqual((yield* failure(two.store.commit({ snapshot: next, expectedVersion: 2 }))).kind, "Fenced")
          yield* one.store.commit({ snapshot: next, expectedVersion: 2 })

          // a stale row version on a shard held is still a Conflict, not Fenced
          assert.strictEqual((yield* failure(one.store.commit({ snapshot: next, expectedVersion: 2 }))).kind, "Conflict")
          // and a shard given up refuses at once
          yield* one.shards.release(1)
          assert.strictEqual((yield* failure(one.store.commit({ snapshot: { ...next, rowVersion: 4 }, expectedVersion: 3 }))).kind, "Fenced")
          assert.deepStrictEqual([...(yield* one.shards.held).keys()], [])
          assert.notStrictEqual(one.shards.shardOf(other), 1)
        })
      ))

    it.effect("with leases, claimAll takes only the shards whose lease row names the claimer (expired or not: no one else took it)", () =>
      run((prefix) =>
        Effect.gen(function*() {
          yield* lease(prefix, [
            { shard: 1, address: "runner-1" },
            { shard: 2, address: "runner-2" },
            { shard: 3, address: "runner-1", expired: true }
          ])
          const leases = { table: leasesTable(prefix) }
          const one = yield* SqlStore.makeFenced({ prefix, shards, leases })
          assert.deepStrictEqual([...(yield* one.shards.claimAll([1, 2, 3, 4], "runner-1")).entries()], [[1, 1], [3, 1]])
          assert.deepStrictEqual([...(yield* one.shards.held).keys()].sort(), [1, 3])
          const refused = yield* failure(one.shards.claim(2, "runner-1"))
          assert.strictEqual(refused.kind, "Fenced")
          assert.include(refused.detail, "shard 2 is not leased to runner-1")
          // runner 2 holds shard 2's lease: its claim fences nobody else out of shard 1
          const two = yield* SqlStore.makeFenced({ prefix, shards, leases })
          assert.deepStrictEqual([...(yield* two.shards.claimAll([1, 2], "runner-2")).entries()], [[2, 1]])
          assert.deepStrictEqual([...(yield* one.shards.claimAll([1], "runner-1")).entries()], [[1, 2]])
        })
      ))

    it.effect("a store that finds another one claimed a shard since it did no longer holds it", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          const two = yield* SqlStore.makeFenced({ prefix, shards })
          const { a } = ids(one.shards.shardOf)
          yield* one.shards.claimAll([1, 2], "runner-1")
          yield* one.store.create(snapshot(a), transition(a, 0))
          yield* two.shards.claim(1, "runner-2")
          assert.deepStrictEqual([...(yield* one.shards.held).keys()].sort(), [1, 2])
          const error = yield* failure(one.store.commit({ snapshot: { ...snapshot(a), rowVersion: 1, seq: 1 }, expectedVersion: 0 }))
          assert.strictEqual(error.kind, "Fenced")
          assert.deepStrictEqual([...(yield* one.shards.held).keys()], [2])
        })
      ))

    it.effect("in a batch, the fenced commit fails alone", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          const two = yield* SqlStore.makeFenced({ prefix, shards })
          const { a, other } = ids(one.shards.shardOf)
          const otherShard = one.shards.shardOf(other)
          yield* one.shards.claim(1, "runner-1")
          yield* one.shards.claim(otherShard, "runner-1")
          yield* one.store.create(snapshot(a), transition(a, 0))
          yield* one.store.create(snapshot(other), transition(other, 0))
          yield* two.shards.claim(1, "runner-2")
          // both queued together: one group-commit transaction
          const [fencedExit, okExit] = yield* Effect.all([
            Effect.exit(one.store.commit({ snapshot: { ...snapshot(a), rowVersion: 1, seq: 1 }, expectedVersion: 0 })),
            Effect.exit(one.store.commit({ snapshot: { ...snapshot(other), rowVersion: 1, seq: 1 }, expectedVersion: 0 }))
          ], { concurrency: "unbounded" })
          assert.isTrue(Exit.isFailure(fencedExit))
          assert.isTrue(Exit.isSuccess(okExit))
          assert.strictEqual(Option.getOrThrow(yield* one.store.get(a)).rowVersion, 0)
          assert.strictEqual(Option.getOrThrow(yield* one.store.get(other)).rowVersion, 1)
        })
      ))

    it.effect("recovery and timers see only the executions of the shards held", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          const { a, other } = ids(one.shards.shardOf)
          yield* one.store.create(snapshot(a), transition(a, 0))
          yield* one.store.create(snapshot(other, { status: "waiting", timerDueAt: 5 }), transition(other, 0))
          assert.deepStrictEqual(yield* one.store.active(), [])
          assert.deepStrictEqual(yield* one.store.activePage!({ limit: 10 }), [])
          assert.deepStrictEqual(yield* one.store.dueTimers({ until: 10, limit: 10 }), [])
          yield* one.shards.claim(1, "runner-1")
          assert.deepStrictEqual(yield* one.store.active(), [a])
          assert.deepStrictEqual((yield* one.store.activePage!({ limit: 10 })).map((e) => e.id), [a])
          assert.deepStrictEqual(yield* one.store.dueTimers({ until: 10, limit: 10 }), [])
          yield* one.shards.claim(one.shards.shardOf(other), "runner-1")
          assert.deepStrictEqual(yield* one.store.dueTimers({ until: 10, limit: 10 }), [{ id: other, dueAt: 5 }])
        })
      ))

    it.effect("executions an unfenced store wrote get their shard when a fenced store opens", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const plain = yield* SqlStore.make({ prefix })
          yield* plain.create(snapshot("old-1"), transition("old-1", 0))
          const one = yield* SqlStore.makeFenced({ prefix, shards })
          yield* one.shards.claim(one.shards.shardOf("old-1"), "runner-1")
          assert.deepStrictEqual(yield* one.store.active(), ["old-1"])
          yield* one.store.commit({ snapshot: { ...snapshot("old-1"), rowVersion: 1, seq: 1 }, expectedVersion: 0 })
        })
      ))

    it.effect("every store on a database must spread executions over the same number of shards", () =>
      run((prefix) =>
        Effect.gen(function*() {
          yield* SqlStore.makeFenced({ prefix, shards })
          const error = yield* failure(SqlStore.makeFenced({ prefix, shards: 8 }))
          assert.strictEqual(error.kind, "Incompatible")
          assert.include(error.detail, "shards: 4")
        })
      ))
  })

describe.skipIf(pgUrl === undefined || pgUrl === "")("fenced stores on Postgres, opened together", () => {
  it.effect("runtimes opening an empty database at once (replicas started together) all open it", () =>
    onPg(pgUrl!)((prefix) =>
      Effect.gen(function*() {
        // each on a client of its own, as separate processes are
        const open = Effect.either(SqlStore.makeFenced({ prefix, shards })).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl!) })))
        const opened = yield* Effect.all(Array.from({ length: 6 }, () => open), { concurrency: "unbounded" })
        for (const o of opened) assert.isTrue(o._tag === "Right", o._tag === "Left" ? o.left.message : "")
      })
    ))
})

suite("SQLite (portable path, one file)", onSqlite)
if (pgUrl !== undefined && pgUrl !== "") suite("Postgres", onPg(pgUrl))

/** The first step waits for the test to open the gate: the test takes the shard away meanwhile. */
class Gate extends Context.Tag("test/Gate")<Gate, Deferred.Deferred<void>>() {}

const Gated = Procedure.make("gated", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "a",
  states: {
    a: Procedure.step({ run: () => Effect.zipRight(record("a"), Effect.flatMap(Gate, Deferred.await)), next: "b" }),
    b: Procedure.step({ run: () => record("b"), next: "done" }),
    done: Procedure.final()
  }
})

describe("a runtime on a fenced store", () => {
  it.effect("drops an execution whose shard another runtime took: the late commit writes nothing and nothing is retried", () =>
    onSqlite((prefix) =>
      Effect.gen(function*() {
        const one = yield* SqlStore.makeFenced({ prefix, shards })
        const two = yield* SqlStore.makeFenced({ prefix, shards })
        for (let shard = 1; shard <= shards; shard++) yield* one.shards.claim(shard, "runner-1")
        const gate = yield* Deferred.make<void>()
        const logs: Array<string> = []
        const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
        const runtime = Runtime.layer({ procedures: [Gated], supervision: { maxRestarts: 3, within: "1 minute", backoff: "1 second" } }).pipe(
          Layer.provideMerge(Layer.succeed(Store.Store, one.store)),
          Layer.provideMerge(Journal.layer),
          Layer.provideMerge(Layer.succeed(Gate, gate)),
          Layer.provide(Logger.replace(Logger.defaultLogger, logger))
        )
        yield* Effect.gen(function*() {
          const id = yield* Runtime.start(Gated, {})
          yield* TestClock.adjust("1 millis")
          assert.deepStrictEqual(yield* journal, ["a"])
          // runner 2 takes the shard while the step runs; then the step finishes here
          yield* two.shards.claim(one.shards.shardOf(id), "runner-2")
          yield* Deferred.succeed(gate, undefined)
          yield* TestClock.adjust("10 minutes")
          // the step's result was not committed, and it was not run again here
          assert.deepStrictEqual(yield* journal, ["a"])
          const row = Option.getOrThrow(yield* two.store.get(id))
          assert.strictEqual(row.state, "a")
          assert.strictEqual(row.status, "running")
          assert.deepStrictEqual(yield* two.store.errors(id), [])
          assert.strictEqual(logs.filter((m) => /giving up|restarting/.test(m)).length, 0)
          assert.strictEqual(logs.filter((m) => m.includes("stopped here, another runtime owns it")).length, 1)
          // a command here is refused with the same typed error, and changes nothing
          const refused = yield* Effect.flip(Runtime.pause(id))
          assert.strictEqual(refused._tag, "StoreError")
          assert.strictEqual(refused._tag === "StoreError" ? refused.kind : undefined, "Fenced")
          assert.strictEqual(Option.getOrThrow(yield* two.store.get(id)).rowVersion, row.rowVersion)
        }).pipe(Effect.provide(runtime))
      })
    ))

  it.effect("a commit refused for its row version again and again is read again a few times, then restarted as a failure, then given up: never a loop", () =>
    Effect.gen(function*() {
      const memory = yield* Store.makeMemory
      // a store several runtimes share (it has `holds`) whose commits of the execution all conflict
      let target: string | undefined
      const store: Store.StoreService = {
        ...memory,
        holds: () => true,
        commit: (commit) =>
          commit.snapshot.id === target
            ? Effect.fail(Store.conflict("commit", commit.snapshot.id, commit.expectedVersion, commit.expectedVersion + 1))
            : memory.commit(commit)
      }
      const Once = Procedure.make("once", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
        initial: "a",
        states: { a: Procedure.step({ run: () => record("a"), next: "done" }), done: Procedure.final() }
      })
      const logs: Array<string> = []
      const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
      const runtime = Runtime.layer({ procedures: [Once], supervision: { maxRestarts: 3, within: "1 minute", backoff: "1 second" } }).pipe(
        Layer.provideMerge(Layer.succeed(Store.Store, store)),
        Layer.provideMerge(Journal.layer),
        Layer.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Once, {}, { id: "always-conflicts" })
        target = id
        yield* TestClock.adjust("10 minutes")
        // the first run, 3 reloads (no restart counted), then 3 restarts, each running the step: then the supervisor gives up
        assert.strictEqual((yield* journal).length, 7)
        assert.strictEqual(logs.filter((m) => /actor failed, restarting/.test(m)).length, 3)
        assert.strictEqual(logs.filter((m) => /giving up after 3 restarts/.test(m)).length, 1)
        assert.strictEqual(yield* (yield* Runtime.Runtime).activeCount, 0)
      }).pipe(Effect.provide(runtime))
    }))
})
