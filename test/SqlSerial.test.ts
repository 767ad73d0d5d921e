/**
 * The reserved connections `Cluster.layer` gives @effect/cluster's `SqlRunnerStorage`
 * (src/internal/sqlSerial.ts) run one statement at a time: statements sent on one together
 * (as the storage sends the `DELETE`s of several shards it gives up) reach the `pg` client
 * one after another, so `pg` has none to queue and prints no "client is already executing a
 * query" deprecation warning; a statement whose caller stopped waiting (a timeout) keeps the
 * connection until it ends. Runs with PROCTOR_TEST_PG_URL.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import type { Connection } from "@effect/sql/SqlConnection"
import { serialReserve } from "../src/internal/sqlSerial.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

type Query = (...args: Array<unknown>) => unknown

/**
 * Sends statements on one reserved connection of `wrap(sql)` (`send`: five at once, or what
 * `send` does with the connection); returns the most that were in the `pg` client at once
 * (called and not yet answered).
 */
const mostAtOnce = (
  wrap: (sql: SqlClient.SqlClient) => SqlClient.SqlClient,
  send: (conn: Connection) => Effect.Effect<void, unknown> = (conn) =>
    Effect.all(
      Array.from({ length: 5 }, (_, i) => conn.executeRaw(`SELECT pg_sleep(0.01), ${i} AS i`, [])),
      { concurrency: "unbounded", discard: true }
    )
) =>
  Effect.gen(function*() {
    const sql = wrap(yield* SqlClient.SqlClient).withoutTransforms()
    const conn = yield* sql.reserve
    const pg = (conn as unknown as { readonly pg: { query: Query } }).pg
    const query = pg.query
    let inFlight = 0
    let most = 0
    // the client's own `query`, counting what is in it: a statement leaves when its callback runs
    pg.query = function(this: unknown, ...args: Array<unknown>) {
      const k = args.findIndex((a) => typeof a === "function")
      if (k >= 0) {
        const callback = args[k] as Query
        inFlight++
        most = Math.max(most, inFlight)
        args[k] = (...results: Array<unknown>) => {
          inFlight--
          return callback(...results)
        }
      }
      return query.apply(this, args)
    }
    yield* send(conn).pipe(Effect.ensuring(Effect.sync(() => (pg.query = query))))
    return most
  }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") })))

describe.skipIf(pgUrl === undefined || pgUrl === "")("the cluster storage's reserved connection on Postgres", () => {
  it.live("runs the statements sent on it together one after another", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* mostAtOnce(serialReserve), 1)
      // what the warning came from: the same statements on a plain reserved connection (its warning not printed)
      const before = process.noDeprecation === true
      process.noDeprecation = true
      const plain = yield* Effect.ensuring(mostAtOnce((sql) => sql), Effect.sync(() => (process.noDeprecation = before)))
      assert.isAbove(plain, 1)
    }))

  it.live("keeps a statement whose caller stopped waiting on the connection until it ends", () =>
    Effect.gen(function*() {
      // the storage's calls time out (2 s by default); `pg` runs the statement to its end all the same
      const gaveUp = (conn: Connection) =>
        Effect.zipRight(
          Effect.ignore(Effect.timeout(conn.executeRaw("SELECT pg_sleep(1)", []), "20 millis")),
          conn.executeRaw("SELECT 1 AS one", [])
        )
      assert.strictEqual(yield* mostAtOnce(serialReserve, gaveUp), 1)
      const before = process.noDeprecation === true
      process.noDeprecation = true
      const plain = yield* Effect.ensuring(mostAtOnce((sql) => sql, gaveUp), Effect.sync(() => (process.noDeprecation = before)))
      assert.strictEqual(plain, 2)
    }))
})
