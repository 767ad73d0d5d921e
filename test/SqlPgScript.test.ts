/**
 * A group commit on Postgres in one round trip (src/internal/sqlPgScript.ts): the commit
 * that ends an execution deletes its inbox in a statement of its own, after its `UPDATE`
 * holds the row, so an event another process enqueued while that `UPDATE` waited for the
 * row is logged as discarded, not left behind; values go in as literals there, and come
 * back as they were. Runs with PROCTOR_TEST_PG_URL.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Duration, Effect, Option, Redacted, Schedule } from "effect"
import type { Execution } from "proctor"
import { SqlStore } from "proctor"
import { discardedEvents } from "../src/Store.js"
import { freshPgPrefix } from "./fixtures/sqlPg.js"
import { snapshot, transition } from "./Store.conformance.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

const onPg = <A>(body: (prefix: string) => Effect.Effect<A, unknown, SqlClient.SqlClient | Scope.Scope>) =>
  Effect.scoped(Effect.flatMap(freshPgPrefix, body)).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") })))

const ended = (s: Execution.Snapshot, over: Partial<Execution.Snapshot> = {}): Execution.Snapshot => ({
  ...s,
  seq: s.seq + 1,
  state: "done",
  status: "succeeded",
  rowVersion: s.rowVersion + 1,
  updatedAt: s.updatedAt + 5,
  ...over
})

describe.skipIf(pgUrl === undefined || pgUrl === "")("a group commit in one round trip on Postgres", () => {
  it.live("an event another process enqueued while the end waited for the row is discarded with the end, not left in the inbox", () =>
    onPg((prefix) =>
      Effect.gen(function*() {
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const store = yield* SqlStore.make({ prefix })
        const s = snapshot("e1", { status: "waiting" })
        yield* store.create(s, transition("e1", 0))
        // another process's enqueue, as Store.enqueue writes it: the row share-locked by the
        // check, the event inserted, and the commit held back until the end waits for the row
        const other = yield* sql.reserve
        yield* other.executeUnprepared("BEGIN", [], undefined)
        const found = yield* other.executeUnprepared(`SELECT status FROM ${prefix}_executions WHERE execution_id = 'e1' FOR SHARE`, [], undefined)
        assert.strictEqual(found[0]!.status, "waiting")
        const inserted = yield* other.executeUnprepared(
          `INSERT INTO ${prefix}_inbox (execution_id, event, at) VALUES ('e1', '{"_tag":"Late"}', 1) RETURNING seq`,
          [],
          undefined
        )
        const seq = Number(inserted[0]!.seq)
        const end = ended(s)
        const commit = yield* Effect.fork(store.commit({ snapshot: end, expectedVersion: 0, transition: transition("e1", 1, { status: "succeeded" }) }))
        // the end's UPDATE waits for the row (bounded: a store that did not wait fails the test below)
        yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ${`%UPDATE ${prefix}_executions%`}`.pipe(
            Effect.map((rows) => rows[0]!.n),
            Effect.repeat({ schedule: Schedule.spaced(Duration.millis(5)), until: (n) => n > 0 }),
            Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => "the end never waited for the enqueue's row lock" })
          )
        yield* other.executeUnprepared("COMMIT", [], undefined)
        yield* commit.await.pipe(Effect.flatten)
        assert.deepStrictEqual(yield* store.inbox("e1", 10), [])
        const errors = yield* store.errors("e1")
        assert.deepStrictEqual(errors, discardedEvents(end, [{ seq, event: { _tag: "Late" } }]))
      })
    ), 30_000)

  it.live("a batch of creates and commits, one of them ending, keeps quotes, backslashes and characters beyond U+FFFF as they were", () =>
    onPg((prefix) =>
      Effect.gen(function*() {
        const store = yield* SqlStore.make({ prefix })
        const odd = { text: "it's a \\ back\\slash, a \\' quote, E'x', $1, \u{1F600}, \n new line", nested: ["'", "\\\\", "\u00e9"] }
        const a = snapshot("a", { status: "waiting", context: odd })
        const b = snapshot("b", { context: odd, idempotencyKey: "k'\\1" })
        yield* store.create(a, transition("a", 0))
        const long = "x".repeat(600)
        const events = [{ _tag: "It's" }, "plain \\ string", null, { _tag: 3, body: long }, [1, "\u{1F600}"]]
        const entries = yield* Effect.forEach(events, (event, i) => store.enqueue("a", event, i))
        const end = ended(a, { context: { ...odd, done: true } })
        // all in one batch: the writer takes what is queued together
        const [endCommit, created, again] = yield* Effect.all([
          store.commit({ snapshot: end, expectedVersion: 0, transition: transition("a", 1, { status: "succeeded" }), consumed: entries[0]!.seq }),
          store.create(b, transition("b", 0)),
          store.create(snapshot("c", { idempotencyKey: "k'\\1" }), transition("c", 0))
        ], { concurrency: "unbounded" })
        assert.isUndefined(endCommit)
        assert.strictEqual(created.created, true)
        assert.strictEqual(again.created, false)
        assert.strictEqual(again.snapshot.id, "b")
        assert.deepStrictEqual(yield* store.get("a"), Option.some(end))
        assert.deepStrictEqual(yield* store.get("b"), Option.some(b))
        assert.deepStrictEqual(yield* store.inbox("a", 10), [])
        assert.deepStrictEqual((yield* store.history("a")).map((x) => x.status), ["running", "succeeded"])
        // the events left were logged as the other stores word it (the long body cut the same: no character beyond U+FFFF in it)
        assert.deepStrictEqual(yield* store.errors("a"), discardedEvents(end, entries.slice(1)))
      })
    ), 30_000)
})
