import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Layer } from "effect"
import { SqlStore, Store } from "proctor"
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
