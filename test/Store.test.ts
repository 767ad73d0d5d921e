import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Layer } from "effect"
import { SqlStore, Store } from "proctor"
import { layerFreshPg } from "./fixtures/sqlPg.js"
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

// Postgres, through the portable path, when a server is given (CI or by hand):
//   PROCTOR_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/postgres npx vitest run test/Store.test.ts
const pgUrl = process.env.PROCTOR_TEST_PG_URL
if (pgUrl !== undefined && pgUrl !== "") conformance("Postgres", layerFreshPg(pgUrl))
