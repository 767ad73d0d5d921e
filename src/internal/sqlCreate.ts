/**
 * The row of a new execution, inserted unless its id or idempotency key is taken, and
 * otherwise the execution it collides with: `Store.create`'s answer, for the writer's
 * batches (`sqlGeneric.ts`, `sqlPgScript.ts`) and the quota's creates (`sqlQuota.ts`).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { Snapshot } from "../Execution.js"
import { StoreError } from "../Errors.js"
import type { Fence } from "./sqlFence.js"
import { shardOf } from "./sqlFence.js"
import type { Row, Tables } from "./sqlSchema.js"
import { executionColumns, rowToSnapshot, snapshotParams } from "./sqlSchema.js"

export interface Created {
  readonly created: boolean
  readonly snapshot: Snapshot
}

/** The columns of a new execution's row; with a fence, its shard too. */
export const executionRow = (s: Snapshot, fence: Fence | undefined): Record<string, unknown> => {
  const values = snapshotParams(s)
  const row: Record<string, unknown> = {}
  executionColumns.forEach((column, i) => row[column] = values[i])
  if (fence !== undefined) row.shard = shardOf(s.id, fence.shards)
  return row
}

/**
 * The execution an insert of `s` collided with: the one holding its idempotency key, else
 * the one with its id. Fails when there is none (the insert was refused for another reason).
 */
export const existing = (sql: SqlClient.SqlClient, t: Tables, s: Snapshot, what: string): Effect.Effect<Created, unknown> =>
  Effect.gen(function*() {
    const rows = yield* sql<Row>`SELECT * FROM ${sql(t.executions)} WHERE execution_id = ${s.id}
      ${s.idempotencyKey === undefined ? sql`` : sql`OR idempotency_key = ${s.idempotencyKey}`}`
    const found = rows.find((r) => s.idempotencyKey !== undefined && r.idempotency_key === s.idempotencyKey) ?? rows[0]
    if (found === undefined) {
      return yield* new StoreError({ kind: "Unknown", operation: "create", detail: `${what}: the insert of ${s.id} was refused but no row conflicts with it` })
    }
    return { created: false, snapshot: rowToSnapshot(found) }
  })

/** Inserts the row of `s`, or answers the execution it collides with (`existing`). */
export const insertOrFind = (sql: SqlClient.SqlClient, t: Tables, s: Snapshot, fence: Fence | undefined, what: string): Effect.Effect<Created, unknown> =>
  Effect.flatMap(
    sql`INSERT INTO ${sql(t.executions)} ${sql.insert(executionRow(s, fence))} ON CONFLICT DO NOTHING RETURNING execution_id`,
    (inserted) => inserted.length > 0 ? Effect.succeed({ created: true, snapshot: s }) : existing(sql, t, s, what)
  )
