import * as Reactivity from "@effect/experimental/Reactivity"
import type * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, Layer, Redacted } from "effect"
import { SqlStore, Store } from "proctor"
import type { StoreError } from "proctor"
import { freshPgPrefix, layerFreshPg } from "./fixtures/sqlPg.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"
import { conformance } from "./Store.conformance.js"

conformance("memory", Store.layerMemory)

// the embedded default: a file, written through the better-sqlite3 fast path
conformance("SQLite file", layerTempSqlite())

// SQLite in memory, written through the portable @effect/sql path (the one Postgres uses)
conformance(
  "SQL (portable path, SQLite in memory)",
  SqlStore.layer().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })), Layer.provide(Reactivity.layer))
)

// SqlStore.layerSqlite on ":memory:"
conformance("SQLite :memory:", SqlStore.layerSqlite({ filename: ":memory:" }))

/** A fenced store (several runtimes on one database) that holds every shard keeps the same promises. */
const layerFencedAll = (prefix?: string): Layer.Layer<Store.Store, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(
    Store.Store,
    Effect.gen(function*() {
      const { shards, store } = yield* SqlStore.makeFenced({ prefix, shards: 4 })
      for (let shard = 1; shard <= shards.count; shard++) yield* shards.claim(shard, "conformance")
      return store
    })
  )

conformance(
  "SQL fenced, every shard held (portable path, SQLite in memory)",
  layerFencedAll().pipe(Layer.provide(SqliteClient.layer({ filename: ":memory:" })), Layer.provide(Reactivity.layer))
)

// Postgres, through the portable path, when a server is given (CI or by hand):
//   PROCTOR_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/postgres npx vitest run test/Store.test.ts
const pgUrl = process.env.PROCTOR_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") {
  conformance("Postgres", layerFreshPg(pgUrl))
  conformance(
    "Postgres fenced, every shard held",
    Layer.unwrapScoped(Effect.map(freshPgPrefix, layerFencedAll)).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pgUrl) })))
  )
}
