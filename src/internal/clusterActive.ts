/**
 * The executions of some shards that need a fiber (what `Store.active` lists for recovery:
 * `running`, `compensating`, and `waiting` with an event in the inbox), read a page at a
 * time for `Cluster.layer`'s ownership loop: when a runner gains shards it reads those
 * shards only, and its scan reads all it holds. One query reads at most `pageSize` ids of
 * one shard (the index on `(shard, status)`, then `execution_id` after the last one read), so
 * neither a result nor its handling keeps the event loop long, however many executions a
 * runner holds, and each page is handed on (resumed) while the next ones are read.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { Row } from "./sqlSchema.js"
import { tables } from "./sqlSchema.js"

export interface PageOptions {
  /** at most this many ids per query and per page handed on */
  readonly pageSize: number
  /** how many shards are read at once */
  readonly concurrency: number
}

export const defaults: PageOptions = { pageSize: 1000, concurrency: 4 }

/**
 * Calls `onPage` with the ids of the executions of `shards` that need a fiber, in pages of
 * at most `pageSize` (each id once), and returns when the last page has been handled.
 * Pages of small shards are put together up to `pageSize`.
 */
export const forEachPage = <E, R>(
  sql: SqlClient.SqlClient,
  prefix: string,
  shards: ReadonlyArray<number>,
  onPage: (ids: ReadonlyArray<string>) => Effect.Effect<void, E, R>,
  options: PageOptions = defaults
): Effect.Effect<void, E | SqlError, R> =>
  Effect.suspend(() => {
    const t = tables(prefix)
    const [E, I] = [sql(t.executions), sql(t.inbox)]
    const limit = Math.max(1, Math.floor(options.pageSize))
    const read = (shard: number, after: string | undefined) =>
      sql<Row>`SELECT execution_id FROM ${E} e WHERE shard = ${shard}
        AND (status IN ('running', 'compensating')
          OR (status = 'waiting' AND EXISTS (SELECT 1 FROM ${I} i WHERE i.execution_id = e.execution_id)))
        ${after === undefined ? sql`` : sql`AND execution_id > ${after}`}
        ORDER BY execution_id LIMIT ${limit}`.pipe(Effect.withTracerEnabled(false))
    let pending: Array<string> = []
    /** hands on full pages (and, at the end, what is left) */
    const flush = (last: boolean): Effect.Effect<void, E, R> =>
      Effect.suspend(() => {
        if (pending.length < (last ? 1 : limit)) return Effect.void
        const page = pending.slice(0, limit)
        pending = pending.slice(limit)
        return Effect.zipRight(onPage(page), flush(last))
      })
    const shardPages = (shard: number, after?: string): Effect.Effect<void, E | SqlError, R> =>
      Effect.flatMap(read(shard, after), (rows) => {
        for (const row of rows) pending.push(String(row.execution_id))
        const next = rows.length < limit ? Effect.void : shardPages(shard, String(rows[rows.length - 1]!.execution_id))
        return Effect.zipRight(flush(false), next)
      })
    return Effect.zipRight(
      Effect.forEach(shards, (shard) => shardPages(shard), { concurrency: Math.max(1, options.concurrency), discard: true }),
      flush(true)
    )
  })
