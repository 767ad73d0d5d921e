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
import { Clock, Deferred, Effect, Either, Exit, Fiber, Layer, Logger, Option, Schema, Scope, TestClock } from "effect"
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

/** Two waits, each followed by a step: an execution another runner moves on from the first wait to the second. */
const TwoGates = Procedure.make("two-gates", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}), events: Go }, {
  initial: "gate1",
  states: {
    gate1: Procedure.wait({ on: { Go: "s1" } }),
    s1: Procedure.step({ run: () => record("s1"), next: "gate2" }),
    gate2: Procedure.wait({ on: { Go: "s2" } }),
    s2: Procedure.step({ run: () => record("s2"), next: "done" }),
    done: Procedure.final()
  }
})

/**
 * Runner B: a runtime on a fenced store whose claims need a lease, and its ownership loop, to
 * which the cluster gives every shard all along (it never sees the shard leave and come back).
 * Runner C: a fenced store only, which claims a shard as the runner that took it meanwhile.
 * `wrap`: what B's runtime sees of its store (by default the store itself).
 */
const runners = (
  prefix: string,
  options: Omit<Runtime.Options, "procedures"> = {},
  wrap: (store: Store.StoreService) => Store.StoreService = (store) => store
) =>
  Effect.gen(function*() {
    yield* lease(prefix, Array.from({ length: shards }, (_, i) => ({ shard: i + 1, address: "runner-b" })))
    const b = yield* SqlStore.makeFenced({ prefix, shards, leases: { table: leasesTable(prefix) } })
    const c = yield* SqlStore.makeFenced({ prefix, shards })
    const holder: Holder = { current: undefined, route: undefined }
    const sql = yield* SqlClient.SqlClient
    const context = yield* Layer.build(
      Runtime.layer({ ...options, procedures: [Gate, Stalls, TwoGates] }).pipe(
        Layer.provideMerge(Layer.succeed(Store.Store, wrap(b.store))),
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
      Runtime.layer({ procedures: [Gate, Stalls, TwoGates] }).pipe(
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

/** The messages the runtimes log, to a list the test reads. */
const capture = () => {
  const logs: Array<string> = []
  const logger = Logger.make(({ message }) => void logs.push(String(Array.isArray(message) ? message[0] : message)))
  return { logs, layer: Logger.replace(Logger.defaultLogger, logger) }
}

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

    it.effect("a copy in memory gone stale while the shard was away: its conflicting commits read the execution again, with no restart, and their event and command apply to what is stored", () => {
      const { layer, logs } = capture()
      return run((prefix) =>
        Effect.gen(function*() {
          // B keeps waiting executions in memory (no passivation), so its copy of one can go stale
          const { b, c, loop, runtime } = yield* runners(prefix, { passivation: { enabled: false } })
          yield* loop.tick
          const [sent, paused] = yield* Effect.gen(function*() {
            const ids = [yield* Runtime.start(TwoGates, {}), yield* Runtime.start(TwoGates, {})] as const
            yield* TestClock.adjust("1 millis")
            return ids
          }).pipe(Effect.provide(runtime))
          // while B did not look, C took every shard and moved both on to their second wait (their inbox empty)
          for (let shard = 1; shard <= shards; shard++) yield* c.shards.claim(shard, "runner-c")
          const onC = yield* runnerC(c)
          yield* Effect.gen(function*() {
            yield* Runtime.send(sent, { _tag: "Go" })
            yield* Runtime.send(paused, { _tag: "Go" })
            yield* TestClock.adjust("1 millis")
            assert.deepStrictEqual(yield* journal, ["s1", "s1"])
          }).pipe(Effect.provide(onC.runtime))
          yield* onC.die
          for (const id of [sent, paused]) {
            const stored = Option.getOrThrow(yield* b.store.get(id))
            assert.deepStrictEqual([stored.state, stored.status], ["gate2", "waiting"])
          }
          // the shards are B's again, and the event and the command reach B's stale copies (at gate1) before anything refreshed them
          for (let shard = 1; shard <= shards; shard++) yield* b.shards.claim(shard, "runner-b")
          yield* Effect.gen(function*() {
            const waiting = yield* Effect.fork(Runtime.sendAndWait(sent, { _tag: "Go" }))
            const pausing = yield* Effect.fork(Effect.either(Runtime.pause(paused)))
            yield* TestClock.adjust("1 minute")
            // the event is applied to the stored state: gate2 takes it, and the caller hears so
            const result = yield* Fiber.join(waiting)
            assert.deepStrictEqual([result._tag, result.snapshot.state], ["Consumed", "s2"])
            // the command too: paused at gate2, not refused with the store's Conflict
            const pausedAt = Either.getOrThrowWith(yield* Fiber.join(pausing), (e) => e)
            assert.deepStrictEqual([pausedAt.state, pausedAt.status], ["gate2", "paused"])
            const done = Option.getOrThrow(yield* b.store.get(sent))
            assert.deepStrictEqual([done.state, done.status], ["done", "succeeded"])
            assert.deepStrictEqual(yield* b.store.inbox(sent, 10), [])
            // each transition once: started, Go at gate1 (on C), s1, Go at gate2, s2
            assert.deepStrictEqual((yield* b.store.history(sent)).map((t) => t.to), ["gate1", "s1", "gate2", "s2", "done"])
            assert.deepStrictEqual(yield* journal, ["s2"])
          }).pipe(Effect.provide(runtime))
          assert.deepStrictEqual(logs.filter((m) => /restarting|giving up|stopped here/.test(m)), [])
        }).pipe(Effect.provide(layer))
      )
    })

    it.effect("an execution dropped for a refused commit while the loop claims its shard back: it runs again at once, not at the next scan", () => {
      // B's commits of the execution come back once the test lets them: the loop looks meanwhile
      const refused = Deferred.unsafeMake<void>(undefined as never)
      const gate = Deferred.unsafeMake<void>(undefined as never)
      let held: string | undefined
      const wrap = (store: Store.StoreService): Store.StoreService => ({
        ...store,
        commit: (commit) =>
          commit.snapshot.id !== held ? store.commit(commit) : Effect.onExit(store.commit(commit), (exit) =>
            Exit.isFailure(exit) ? Effect.zipRight(Deferred.succeed(refused, undefined), Deferred.await(gate)) : Effect.void)
      })
      return run((prefix) =>
        Effect.gen(function*() {
          // in memory: the event's commit is its actor's (a passivated one's would be the sender's)
          const { b, c, held: claimed, holder, loop, runtime } = yield* runners(prefix, { passivation: { enabled: false } }, wrap)
          yield* loop.tick
          yield* Effect.gen(function*() {
            const id = yield* Runtime.start(Gate, {})
            yield* TestClock.adjust("1 millis")
            held = id
            const shard = b.shards.shardOf(id)
            // runner C took the shard while B did not look; an event reaches B, whose commit is refused
            yield* c.shards.claim(shard, "runner-c")
            yield* Runtime.send(id, { _tag: "Go" })
            yield* Deferred.await(refused)
            // before B's actor hears of it, the loop looks: it claims the shard back and finds the execution still in memory
            yield* loop.tick
            assert.isTrue(claimed.has(shard))
            yield* Deferred.succeed(gate, undefined)
            yield* TestClock.adjust("1 millis")
            // the refused commit reaches the actor: it is not dropped (only the next scan, 10 s on, would find it), it runs
            // again from the store, with no further look of the loop and no time passing: the event is consumed
            const inMemory = holder.current!.inMemory(id)
            assert.isTrue(inMemory || Option.getOrThrow(yield* b.store.get(id)).status === "succeeded", "dropped, left for the next scan")
            const done = yield* Runtime.await(id)
            assert.isBelow(yield* Clock.currentTimeMillis, 1_000)
            assert.deepStrictEqual([done.state, done.status], ["done", "succeeded"])
            assert.deepStrictEqual(yield* b.store.inbox(id, 10), [])
            assert.deepStrictEqual(yield* journal, ["s"])
          }).pipe(Effect.provide(runtime))
        })
      )
    })
  })

suite("SQLite", onSqlite)
const pgUrl = process.env.PROCTOR_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") suite("Postgres", onPg(pgUrl))
