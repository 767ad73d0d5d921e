/**
 * Any runner can be asked (needs PROCTOR_TEST_PG_URL): two runner processes
 * (test/fixtures/clusterRunner.ts) split 16 shards; runner A starts executions whose shards B
 * owns, sends them events, commands, migrations to another version, awaits and watches them. Every operation reaches B, which runs
 * every step (none runs on A, none twice). The runners scan their shards once an hour only,
 * so nothing but the routed messages wakes B.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { op, poll, setUp, startRunner, until } from "./fixtures/clusterProcesses.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

describe.skipIf(pgUrl === undefined || pgUrl === "")("Cluster.layer routing, two runner processes on Postgres", () => {
  it.live("start, send, sendAndWait, commands, migrate, await and watch on a runner that does not own the execution reach its owner", () =>
    Effect.gen(function*() {
      const { port, prefix, runners, sql } = yield* setUp
      const a = startRunner(pgUrl!, prefix, port, "1 hour")
      runners.push(a)
      yield* until([a], () => a.held === 16, 60_000, "runner A holds all 16 shards")
      const b = startRunner(pgUrl!, prefix, port + 1, "1 hour")
      runners.push(b)
      yield* until([a, b], () => b.held > 0 && a.held + b.held === 16, 60_000, "runners A and B split the shards")

      a.child.stdin!.write("elsewhere 6\n")
      yield* until([a], () => a.elsewhere.length === 6, 30_000, "A started 6 executions in B's shards")
      const [g0, g1, g2, g3, g4, g5] = a.elsewhere as [string, string, string, string, string, string]
      const state = (id: string) =>
        Effect.map(sql<{ state: string; status: string }>`SELECT current_state AS state, status FROM ${sql(`${prefix}_executions`)} WHERE execution_id = ${id}`, (rows) => rows[0])
      for (const id of a.elsewhere) yield* poll(state(id), (s) => s?.state === "gate", 30_000, `${id} waits at the gate`)

      // await and watch on A, then the event that ends it, both from A
      const awaited = yield* Effect.fork(op(a, { op: "await", id: g0 }, 60_000))
      const watched = yield* Effect.fork(op(a, { op: "watch", id: g0 }, 60_000))
      assert.isUndefined((yield* op(a, { op: "send", id: g0, event: { _tag: "Go" } })).error)
      const ended = yield* awaited
      assert.deepStrictEqual(ended.ok, { state: "done", status: "succeeded" })
      // A's watch saw B's commits, from the store: each once, in order, up to the end
      const events = (yield* watched).ok as Array<{ seq: number; from: string; state: string; status: string }>
      assert.deepStrictEqual(events.at(-1), { seq: events.at(-1)!.seq, from: "s2", state: "done", status: "succeeded" })
      events.forEach((e, i) => i > 0 && assert.strictEqual(e.seq, events[i - 1]!.seq + 1))

      const consumed = yield* op(a, { op: "sendAndWait", id: g1, event: { _tag: "Go" } })
      assert.deepStrictEqual(consumed.ok, { _tag: "Consumed", state: "s2", status: "running" })

      assert.deepStrictEqual((yield* op(a, { op: "pause", id: g2 })).ok, { state: "gate", status: "paused" })
      // any runner reads the shared store, and names the runner that runs the execution
      assert.deepStrictEqual((yield* op(a, { op: "get", id: g2 })).ok, { state: "gate", status: "paused", runner: `127.0.0.1:${port + 1}` })
      assert.deepStrictEqual((yield* op(a, { op: "resume", id: g2 })).ok, { state: "gate", status: "waiting" })
      assert.deepStrictEqual((yield* op(a, { op: "cancel", id: g3 })).ok, { state: "gate", status: "cancelled" })
      const refused = yield* op(a, { op: "resume", id: g3 })
      assert.strictEqual(refused.error?._tag, "InvalidTransition")

      assert.isUndefined((yield* op(a, { op: "send", id: g2, event: { _tag: "Go" } })).error)
      assert.deepStrictEqual((yield* op(a, { op: "await", id: g2 }, 60_000)).ok, { state: "done", status: "succeeded" })
      assert.deepStrictEqual((yield* op(a, { op: "await", id: g1 }, 60_000)).ok, { state: "done", status: "succeeded" })

      // version migrations asked of A run on B: one execution, then all those of version 1 still in flight
      assert.deepStrictEqual((yield* op(a, { op: "migrate", id: g4 })).ok, { state: "gate", status: "waiting", version: 2 })
      assert.deepStrictEqual((yield* op(a, { op: "migrateAll", id: "gate" })).ok, { migrated: [g5], refused: [] })
      for (const id of [g4, g5]) {
        assert.isUndefined((yield* op(a, { op: "send", id, event: { _tag: "Go" } })).error)
        assert.deepStrictEqual((yield* op(a, { op: "await", id }, 60_000)).ok, { state: "done", status: "succeeded" })
      }
      const versions = yield* sql<{ version: number }>`SELECT procedure_version AS version FROM ${sql(`${prefix}_executions`)} WHERE execution_id IN (${g4}, ${g5})`
      assert.deepStrictEqual(versions.map((r) => Number(r.version)), [2, 2])

      // every step ran once, on B
      const effects = yield* sql<{ execution_id: string; state: string; pid: number }>`SELECT execution_id, state, pid FROM ${sql(`${prefix}_effects`)} ORDER BY at`
      const ran = effects.map((e) => `${e.execution_id}/${e.state}`)
      assert.sameMembers(ran, [
        `${g0}/s1`, `${g0}/s2`, `${g1}/s1`, `${g1}/s2`, `${g2}/s1`, `${g2}/s2`, `${g3}/s1`, `${g4}/s1`, `${g4}/s2`, `${g5}/s1`, `${g5}/s2`
      ])
      for (const e of effects) assert.strictEqual(Number(e.pid), b.child.pid, `${e.execution_id}/${e.state} ran on B`)
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") }))), 240_000)
})
