/**
 * `Store.createWithin` on Postgres, for the concurrent-executions quotas: the executions a
 * quota counts and the new one's rows in one transaction that holds an advisory lock per
 * quota, so that runtimes sharing the database count and create one at a time and cannot
 * together pass a quota. It writes outside the group-commit writer, on a connection of its
 * own: only starts that have such a quota come here. SQLite needs none: one process owns
 * its file (sqlLock.ts), and the runtime's own lock serializes its starts.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { Snapshot, Transition } from "../Execution.js"
import { StoreError } from "../Errors.js"
import { insertOrFind } from "./sqlCreate.js"
import type { CreateLimit, CreateWithinResult } from "../Store.js"
import { errorCode, storeError } from "./sqlErrors.js"
import { inTransaction } from "./sqlGeneric.js"
import type { Fence } from "./sqlFence.js"
import type { Row, Tables } from "./sqlSchema.js"
import { transitionColumns, transitionParams } from "./sqlSchema.js"
import { statuses, terminal } from "./statuses.js"

const underWay = statuses.filter((s) => !terminal.has(s))

/**
 * How long a start waits for another process's count-and-create of the same quota (a few
 * milliseconds when all is well), and how long the server lets this one's transaction sit
 * idle (a process paused while holding the lock) before it ends it and frees the lock.
 */
const lockSeconds = 10

const columns = <K extends string>(names: ReadonlyArray<K>, values: ReadonlyArray<unknown>): Record<K, unknown> =>
  Object.fromEntries(names.map((name, i) => [name, values[i]])) as Record<K, unknown>

export const make = (client: SqlClient.SqlClient, t: Tables, what: string, fence: Fence | undefined) => {
  const sql = client.withoutTransforms()
  const E = sql(t.executions)

  const body = (s: Snapshot, first: Transition, limits: ReadonlyArray<CreateLimit>) =>
    Effect.gen(function*() {
      // the locks in the order given (the runtime's: procedure, then tenant), so two starts never wait on each other crosswise
      for (const limit of limits) yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`proctor quota ${t.executions} ${limit.key}`}))`
      for (let i = 0; i < limits.length; i++) {
        const { max, procedure, tenant } = limits[i]!
        const where = [sql.in("status", underWay)]
        if (tenant !== undefined) where.push(sql`tenant = ${tenant}`)
        if (procedure !== undefined) where.push(sql`procedure_name = ${procedure}`)
        // the lock is taken: a statement from here sees every execution another process created under it
        const rows = yield* sql<Row>`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${E} WHERE ${sql.and(where)} LIMIT ${max}) AS under_way`
        if (Number(rows[0]?.n ?? 0) >= max) return { _tag: "Full", limit: i } as const
      }
      const result = yield* insertOrFind(sql, t, s, fence, what)
      if (result.created) {
        yield* sql`INSERT INTO ${sql(t.transitions)} ${sql.insert(columns(transitionColumns, transitionParams(first)))}`
      }
      return { _tag: "Created", ...result } as const
    })

  // a failed COMMIT is rolled back, as the writer's batches are
  const transaction = inTransaction(
    client,
    `BEGIN; SET LOCAL lock_timeout = '${lockSeconds}s'; SET LOCAL idle_in_transaction_session_timeout = '${lockSeconds}s'`
  )

  return (snapshot: Snapshot, first: Transition, limits: ReadonlyArray<CreateLimit>): Effect.Effect<CreateWithinResult, StoreError> =>
    transaction(body(snapshot, first, limits)).pipe(
      Effect.catchAllDefect(Effect.fail),
      Effect.mapError((error) =>
        error instanceof StoreError
          ? error
          : errorCode(error) === "55P03"
          ? storeError("create", error, `${what}: another process held the lock of quota ${limits.map((l) => l.key).join(", ")} for over ${lockSeconds} seconds`, "Unavailable")
          : storeError("create", error, what)
      ),
      Effect.withTracerEnabled(false)
    )
}
