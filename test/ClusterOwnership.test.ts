/**
 * Cluster.layer's ownership loop (src/internal/clusterOwnership.ts) with the cluster's view of
 * the shards under the test's control, on a fenced SQLite store (and Postgres with
 * PROCTOR_TEST_PG_URL). It looks at the cluster every 200 ms; a shard can leave a runner and
 * come back between two looks (the runner paused past its lease, or a look slowed by load)
 * while another runner claimed it meanwhile. The failover test at load 17-20 (seed 17) left 63
 * executions waiting with their acknowledged event in the inbox that way: the loop still held
 * the shard at its old epoch, so every commit of it was refused, the scan resumed them every
 * 10 s and each was refused again, for ever.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, Scope, TestClock } from "effect"
import { Procedure, Runtime, SqlStore, Store } from "proctor"
import type { Holder } from "../src/internal/clusterHooks.js"
import { ClusterHooks } from "../src/internal/clusterHooks.js"
import * as Ownership from "../src/internal/clusterOwnership.js"
import { lease, leasesTable, onPg, onSqlite } from "./fixtures/fencedDb.js"
import type { OnDb } from "./fixtures/fencedDb.js"
import { journal, Journal, record } from "./fixtures/procedures.js"

const shards = 4
const Go = Schema.TaggedStruct("Go", {})
const Gate = Procedure.make("gate", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Go }, {
  initial: "gate",
  states: {
    gate: Procedure.wait({ on: { Go: "s" } }),
    s: Procedure.step({ run: () => record("s"), next: "done" }),
    done: Procedure.final()
  }
})

/**
 * Runner B: a runtime on a fenced store whose claims need a lease, and its ownership loop, to
 * which the cluster gives every shard all along (it never sees the shard leave and come back).
 * Runner C: a fenced store only, which claims a shard as the runner that took it meanwhile.
 */
const runners = (prefix: string, options: Omit<Runtime.Options, "procedures"> = {}) =>
  Effect.gen(function*() {
    yield* lease(prefix, Array.from({ length: shards }, (_, i) => ({ shard: i + 1, address: "runner-b" })))
    const b = yield* SqlStore.makeFenced({ prefix, shards, leases: { table: leasesTable(prefix) } })
    const c = yield* SqlStore.makeFenced({ prefix, shards })
    const holder: Holder = { current: undefined, route: undefined }
    const sql = yield* SqlClient.SqlClient
    const context = yield* Layer.build(
      Runtime.layer({ ...options, procedures: [Gate, Stalls] }).pipe(
        Layer.provideMerge(Layer.succeed(Store.Store, b.store)),
        Layer.provideMerge(Layer.succeed(SqlStore.Shards, b.shards)),
        Layer.provideMerge(Layer.succeed(ClusterHooks, holder)),
        Layer.provideMerge(Journal.layer),
        Layer.provideMerge(Layer.succeed(SqlClient.SqlClient, sql))
      )
    )
    const held = new Set<number>()
    const loop = yield* Ownership.make({ count: shards, owner: "runner-b", prefix, scanMillis: 10_000, given: () => true }, holder.current!, held)
      .pipe(Effect.provide(context))
    const runtime = Layer.succeedContext(context)
    return { b, c, held, holder, loop, runtime }
  })

/** Runner C's runtime on its fenced store, in a scope of its own (closing it is C dying). */
const runnerC = (c: { readonly store: Store.StoreService; readonly shards: SqlStore.ShardsService }) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Runtime.layer({ procedures: [Gate, Stalls] }).pipe(
        Layer.provideMerge(Layer.succeed(Store.Store, c.store)),
        Layer.provideMerge(Layer.succeed(SqlStore.Shards, c.shards)),
        Layer.provideMerge(Layer.succeed(ClusterHooks, { current: undefined, route: undefined } as Holder)),
        Layer.provideMerge(Journal.layer)
      ),
      scope
    )
    return { runtime: Layer.succeedContext(context), die: Scope.close(scope, Exit.void) }
  })

const epochOf = (prefix: string, shard: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ epoch: number; owner: string }>`SELECT epoch, owner FROM ${sql(`${prefix}_shards`)} WHERE shard = ${shard}`, (rows) => ({
      epoch: Number(rows[0]!.epoch),
      owner: rows[0]!.owner
    })))

/** Its step never ends on runner C (which dies in it), and records on runner B. */
let stallOnC = false
const Stalls = Procedure.make("stalls", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Go }, {
  initial: "gate",
  states: {
    gate: Procedure.wait({ on: { Go: "s" } }),
    s: Procedure.step({ run: () => Effect.suspend(() => stallOnC ? Effect.never : record("s")), next: "done" }),
    done: Procedure.final()
  }
})

const suite = (name: string, run: OnDb) =>
  describe(`the cluster's ownership loop: ${name}`, () => {
    it.effect("a shard lost and given back between two looks, claimed by another runner meanwhile: claimed again, its waiting event consumed", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const { b, c, held, loop, runtime } = yield* runners(prefix)
          yield* loop.tick
          assert.deepStrictEqual([...held].sort(), [1, 2, 3, 4])
          yield* Effect.gen(function*() {
            const id = yield* Runtime.start(Gate, {})
            yield* TestClock.adjust("1 millis")
            const shard = b.shards.shardOf(id)
            // runner C took the shard while B did not look (B paused past its lease); B got the lease back
            const taken = yield* c.shards.claim(shard, "runner-c")
            // an event for the execution reaches B, which the cluster says owns it: its commit is refused
            yield* Runtime.send(id, { _tag: "Go" })
            yield* TestClock.adjust("1 millis")
            assert.strictEqual(Option.getOrThrow(yield* b.store.get(id)).state, "gate")
            // the next looks, a scan among them: B claims the shard again and the event is consumed
            for (let i = 0; i < 3; i++) {
              yield* loop.tick
              yield* TestClock.adjust("11 seconds")
            }
            assert.isTrue(held.has(shard))
            assert.deepStrictEqual(yield* epochOf(prefix, shard), { epoch: taken + 1, owner: "runner-b" })
            const done = yield* Runtime.await(id)
            assert.strictEqual(done.status, "succeeded")
            assert.deepStrictEqual(yield* b.store.inbox(id, 10), [])
            assert.deepStrictEqual(yield* journal, ["s"])
          }).pipe(Effect.provide(runtime))
        })
      ))

    it.effect("an execution waiting in memory that another runner moved on meanwhile (with no commit here to tell): read again from the store and run on", () =>
      run((prefix) =>
        Effect.gen(function*() {
          // B keeps waiting executions in memory (no passivation), so its copy of one can go stale
          const { b, c, held, holder, loop, runtime } = yield* runners(prefix, { passivation: { enabled: false } })
          yield* loop.tick
          const id = yield* Effect.gen(function*() {
            const id = yield* Runtime.start(Stalls, {})
            yield* TestClock.adjust("1 millis")
            return id
          }).pipe(Effect.provide(runtime))
          assert.isTrue(holder.current!.inMemory(id))
          const shard = b.shards.shardOf(id)
          // while B did not look, C claimed the shard, consumed the event, began the step and died in it
          yield* c.shards.claim(shard, "runner-c")
          stallOnC = true
          const onC = yield* runnerC(c)
          yield* Effect.gen(function*() {
            yield* Runtime.send(id, { _tag: "Go" })
            yield* TestClock.adjust("1 millis")
          }).pipe(Effect.provide(onC.runtime))
          yield* onC.die
          stallOnC = false
          assert.strictEqual(Option.getOrThrow(yield* b.store.get(id)).state, "s")
          // B's cluster gave it the shard all along: its scan finds the newer claim, claims again, and reads the execution again
          for (let i = 0; i < 3; i++) {
            yield* loop.tick
            yield* TestClock.adjust("11 seconds")
          }
          assert.isTrue(held.has(shard))
          const done = Option.getOrThrow(yield* b.store.get(id))
          assert.deepStrictEqual([done.state, done.status], ["done", "succeeded"])
          assert.deepStrictEqual(yield* Effect.provide(journal, runtime), ["s"])
        })
      ))

    it.effect("a runner that lost the shard for real does not take it back: a claim needs the shard's lease", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const { b, c, held, loop, runtime } = yield* runners(prefix)
          yield* loop.tick
          yield* Effect.gen(function*() {
            const id = yield* Runtime.start(Gate, {})
            yield* TestClock.adjust("1 millis")
            const shard = b.shards.shardOf(id)
            // C holds the shard's lease and claimed it; B's cluster has not noticed yet
            yield* lease(prefix, [{ shard, address: "runner-c" }])
            const taken = yield* c.shards.claim(shard, "runner-c")
            yield* Runtime.send(id, { _tag: "Go" })
            yield* TestClock.adjust("1 millis")
            for (let i = 0; i < 3; i++) {
              yield* loop.tick
              yield* TestClock.adjust("11 seconds")
            }
            // B does not hold it, and C's claim stands: the event waits for C
            assert.isFalse(held.has(shard))
            assert.deepStrictEqual(yield* epochOf(prefix, shard), { epoch: taken, owner: "runner-c" })
            assert.strictEqual(Option.getOrThrow(yield* c.store.get(id)).state, "gate")
            assert.strictEqual((yield* c.store.inbox(id, 10)).length, 1)
            assert.deepStrictEqual(yield* journal, [])
          }).pipe(Effect.provide(runtime))
        })
      ))
  })

suite("SQLite", onSqlite)
const pgUrl = process.env.PROCTOR_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") suite("Postgres", onPg(pgUrl))
