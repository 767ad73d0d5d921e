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
import { Duration, Effect, Fiber, Option, Redacted, Schedule } from "effect"
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
        const otherPid = Number((yield* other.executeUnprepared("SELECT pg_backend_pid() AS pid", [], undefined))[0]!.pid)
        const end = ended(s)
        const commit = yield* Effect.fork(store.commit({ snapshot: end, expectedVersion: 0, transition: transition("e1", 1, { status: "succeeded" }) }))
        // the end's UPDATE waits for the row (bounded: a store that did not wait fails the test below)
        yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${otherPid} = ANY(pg_blocking_pids(pid))`.pipe(
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

  it.live("a batch of commits and creates that ends nothing goes as one statement of arrays, prepared, and keeps odd values as they were", () =>
    onPg((prefix) =>
      Effect.gen(function*() {
        const store = yield* SqlStore.make({ prefix })
        // what an array's text must escape: quotes, backslashes, braces, commas, the word NULL, an empty string
        const odd = { text: "it's a \\ \"quoted\" {brace}, comma, NULL, \u{1F600}", empty: "", nested: ["\\\"", "{}", "NULL"] }
        const a = snapshot("a", { status: "waiting" })
        const b = snapshot("b")
        yield* store.create(a, transition("a", 0))
        yield* store.create(b, transition("b", 0))
        const [event] = yield* Effect.forEach([{ _tag: "Go", odd }], (e, i) => store.enqueue("a", e, i))
        const error: Execution.ErrorEntry = { executionId: "b", state: "a", attempt: 1, tag: "Boom", message: "NULL, {\"x\"}, \\ it's", transient: false, at: 7 }
        const a1 = { ...a, seq: 1, state: "NULL", status: "running" as const, context: odd, rowVersion: 1, tenant: "", updatedAt: a.updatedAt + 1 }
        const b1 = { ...b, seq: 1, state: "{b}", context: odd, rowVersion: 1, updatedAt: b.updatedAt + 1 }
        const c = snapshot("c", { context: odd, idempotencyKey: "k,\"{NULL}\\" })
        // all in one batch: the writer takes what is queued together
        yield* Effect.all([
          store.commit({ snapshot: a1, expectedVersion: 0, transition: transition("a", 1, { to: "NULL", event: odd }), consumed: event!.seq }),
          store.commit({ snapshot: b1, expectedVersion: 0, transition: transition("b", 1, { to: "{b}", reason: "" }), errors: [error] }),
          store.create(c, transition("c", 0, { reason: "\\" }))
        ], { concurrency: "unbounded", discard: true })
        assert.deepStrictEqual(yield* store.get("a"), Option.some(a1))
        assert.deepStrictEqual(yield* store.get("b"), Option.some(b1))
        assert.deepStrictEqual(yield* store.get("c"), Option.some(c))
        assert.deepStrictEqual(yield* store.inbox("a", 10), [])
        assert.deepStrictEqual(yield* store.history("a"), [transition("a", 0), transition("a", 1, { to: "NULL", event: odd })])
        assert.deepStrictEqual(yield* store.history("b"), [transition("b", 0), transition("b", 1, { to: "{b}", reason: "" })])
        assert.deepStrictEqual(yield* store.history("c"), [transition("c", 0, { reason: "\\" })])
        assert.deepStrictEqual(yield* store.errors("b"), [error])
        // a commit from a stale version is refused alone, by the same statement
        const stale = yield* Effect.either(store.commit({ snapshot: { ...a1, rowVersion: 2 }, expectedVersion: 0, transition: transition("a", 2) }))
        assert.isTrue(stale._tag === "Left" && stale.left.kind === "Conflict")
      })
    ), 30_000)

  it.live("a write alone binds single values, not arrays, and keeps odd values as they were in each part", () =>
    onPg((prefix) =>
      Effect.gen(function*() {
        const store = yield* SqlStore.make({ prefix })
        const odd = { text: "it's a \\ \"quoted\" {brace}, comma, NULL, \u{1F600}", empty: "", nested: ["\\\"", "{}", "NULL"] }
        // each write below is alone in its batch: the writer is idle between them
        const a = snapshot("a", { status: "waiting", context: odd, idempotencyKey: "k,\"{NULL}\\" })
        yield* store.create(a, transition("a", 0, { reason: "\\" }))
        const [first, second] = yield* Effect.forEach([{ _tag: "Go", odd }, "NULL"], (e, i) => store.enqueue("a", e, i))
        const error: Execution.ErrorEntry = { executionId: "a", state: "a", attempt: 1, tag: "Boom", message: "NULL, {\"x\"}, \\ it's", transient: false, at: 7 }
        const a1 = { ...a, seq: 1, state: "NULL", status: "running" as const, rowVersion: 1, tenant: "", updatedAt: a.updatedAt + 1 }
        yield* store.commit({ snapshot: a1, expectedVersion: 0, transition: transition("a", 1, { to: "NULL", event: odd }), consumed: first!.seq, errors: [error] })
        // the writer's connection shows the statement it ran last: single values, not arrays
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        const last = yield* sql<{ query: string }>`SELECT query FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND query LIKE ${`%UPDATE ${prefix}_executions AS e SET%`}`
        assert.strictEqual(last.length, 1)
        assert.notInclude(last[0]!.query, "unnest", "a write alone was bound as arrays")
        assert.deepStrictEqual(yield* store.get("a"), Option.some(a1))
        assert.deepStrictEqual(yield* store.inbox("a", 10), [second!])
        assert.deepStrictEqual(yield* store.history("a"), [transition("a", 0, { reason: "\\" }), transition("a", 1, { to: "NULL", event: odd })])
        const stale = yield* Effect.either(store.commit({ snapshot: { ...a1, rowVersion: 2 }, expectedVersion: 0, transition: transition("a", 2) }))
        assert.isTrue(stale._tag === "Left" && stale.left.kind === "Conflict")
        // the end alone: its inbox deleted and logged by the second statement
        const end = ended(a1)
        yield* store.commit({ snapshot: end, expectedVersion: 1, transition: transition("a", 2, { status: "succeeded" }) })
        assert.deepStrictEqual(yield* store.inbox("a", 10), [])
        assert.deepStrictEqual(yield* store.errors("a"), [error, ...discardedEvents(end, [second!])])
      })
    ), 30_000)

  it.live("an event sent while another process ends the execution waits for the end and is refused, in the batch's one statement", () =>
    onPg((prefix) =>
      Effect.gen(function*() {
        const store = yield* SqlStore.make({ prefix })
        yield* store.create(snapshot("e1", { status: "waiting" }), transition("e1", 0))
        yield* store.create(snapshot("e2", { status: "waiting" }), transition("e2", 0))
        // another process ends e1: its row locked by the UPDATE until it commits
        const other = yield* (yield* SqlClient.SqlClient).reserve
        yield* other.executeUnprepared("BEGIN", [], undefined)
        yield* other.executeUnprepared(`UPDATE ${prefix}_executions SET status = 'succeeded', row_version = 1 WHERE execution_id = 'e1'`, [], undefined)
        const otherPid = Number((yield* other.executeUnprepared("SELECT pg_backend_pid() AS pid", [], undefined))[0]!.pid)
        const sent = yield* Effect.fork(store.enqueue("e1", { _tag: "Late" }, 1))
        const sql = (yield* SqlClient.SqlClient).withoutTransforms()
        yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${otherPid} = ANY(pg_blocking_pids(pid))`.pipe(
          Effect.map((rows) => rows[0]!.n),
          Effect.repeat({ schedule: Schedule.spaced(Duration.millis(5)), until: (n) => n > 0 }),
          Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => "the event never waited for the end's row lock" })
        )
        yield* other.executeUnprepared("COMMIT", [], undefined)
        const refused = yield* Effect.either(Fiber.join(sent))
        assert.isTrue(refused._tag === "Left" && refused.left.kind === "Conflict" && refused.left.detail.includes("has ended (succeeded)"))
        assert.deepStrictEqual(yield* store.inbox("e1", 10), [])
        // an event for an execution that is not ended is stored, with its seq
        const stored = yield* store.enqueue("e2", { _tag: "Go" }, 2)
        assert.deepStrictEqual(yield* store.inbox("e2", 10), [stored])
        const missing = yield* Effect.either(store.enqueue("nobody", { _tag: "Lost" }, 3))
        assert.isTrue(missing._tag === "Left" && missing.left.detail.includes("does not exist"))
      })
    ), 30_000)
})
