/**
 * The executions of a cluster runner's shards that need a fiber, read a page at a time
 * (src/internal/clusterActive.ts): what `Cluster.layer` resumes when it gains shards and
 * finds on its scans. Every such execution of the shards asked comes once, none of another
 * shard or that needs no fiber, and no page holds more than the page size, however many
 * there are. On SQLite (a temporary file) and, with PROCTOR_TEST_PG_URL, on Postgres.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Effect, Redacted } from "effect"
import * as path from "node:path"
import { SqlStore } from "proctor"
import type { Status } from "proctor/Execution"
import * as Active from "../src/internal/clusterActive.js"
import { freshPgPrefix } from "./fixtures/sqlPg.js"
import { tempDir } from "./fixtures/sqlTemp.js"
import { snapshot, transition } from "./Store.conformance.js"

type Body = (prefix: string) => Effect.Effect<void, unknown, SqlClient.SqlClient | Scope.Scope>

const onSqlite = (body: Body) =>
  Effect.scoped(Effect.flatMap(tempDir, (dir) =>
    body("proctor").pipe(
      Effect.provide(SqliteClient.layer({ filename: path.join(dir, "active.db") })),
      Effect.provide(Reactivity.layer)
    )))

const pgUrl = process.env.PROCTOR_TEST_PG_URL
const onPg = (url: string) => (body: Body) => Effect.scoped(Effect.flatMap(freshPgPrefix, body)).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))

const shards = 8
const asked = [1, 3, 5, 6]
/** the statuses the executions cycle through; the last one of each five has an event in its inbox */
const statuses: ReadonlyArray<Status> = ["running", "compensating", "waiting", "succeeded", "waiting"]

const suite = (name: string, run: (body: Body) => Effect.Effect<void, unknown>) =>
  describe(`the active executions of some shards, a page at a time: ${name}`, () => {
    it.effect("each once, only those of the shards asked that need a fiber, in pages of at most the page size", () =>
      run((prefix) =>
        Effect.gen(function*() {
          const { shards: s, store } = yield* SqlStore.makeFenced({ prefix, shards })
          const ids = Array.from({ length: 400 }, (_, i) => `exec-${String(i).padStart(3, "0")}`)
          yield* Effect.forEach(ids, (id, i) =>
            Effect.zipRight(
              store.create(snapshot(id, { status: statuses[i % 5]! }), transition(id, 0)),
              i % 5 === 4 ? store.enqueue(id, { _tag: "Go" }, 0) : Effect.void
            ), { concurrency: 32, discard: true })
          const expected = ids.filter((id, i) => asked.includes(s.shardOf(id)) && i % 5 !== 2 && i % 5 !== 3)
          assert.isAbove(expected.length, 100)

          const pages: Array<ReadonlyArray<string>> = []
          const sql = (yield* SqlClient.SqlClient).withoutTransforms()
          yield* Active.forEachPage(sql, prefix, asked, (page) => Effect.sync(() => void pages.push(page)), { pageSize: 7, concurrency: 3 })
          const read = pages.flat()
          assert.sameMembers(read, expected)
          assert.strictEqual(new Set(read).size, read.length, "no execution twice")
          // full pages but the last: small shards' rows are put together
          assert.strictEqual(pages.length, Math.ceil(expected.length / 7))
          for (const page of pages) assert.isAtMost(page.length, 7)

          // the same as the store's recovery list once it holds those shards
          for (const shard of asked) yield* s.claim(shard, "runner-1")
          assert.sameMembers([...(yield* store.active())], expected)
        })
      ))
  })

suite("SQLite", onSqlite)
if (pgUrl !== undefined && pgUrl !== "") suite("Postgres", onPg(pgUrl))
