/**
 * Postgres statements that write many commits of a group commit at once (`sqlGeneric.ts`):
 * one `UPDATE ... FROM unnest(...)` for the execution rows, with each row's version check
 * (and shard epoch check, when fenced), and one `DELETE` each for the consumed inbox events
 * and the inboxes of executions that ended. Sent one statement after another, a batch's
 * commits cost Postgres a round trip and a statement each (docs/benchmarks.md, W7).
 * `sqlPgScript.ts` writes the common batches in one round trip with the same `UPDATE`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { Commit } from "../Store.js"
import type { Row, Tables } from "./sqlSchema.js"
import { executionColumns, snapshotParams } from "./sqlSchema.js"

/** A commit to write, with the epoch this process holds for its shard when the store is fenced. */
export interface BatchCommit {
  readonly commit: Commit
  readonly shard: number
  readonly epoch: number | undefined
}

/**
 * Rows per statement: an `UPDATE` binds one array a column, whatever its rows; the `DELETE`s
 * bind a parameter a value (Postgres binds at most 65,535).
 */
export const chunkRows = 500

const chunks = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / chunkRows) }, (_, i) => items.slice(i * chunkRows, (i + 1) * chunkRows))

const intColumns: ReadonlySet<string> = new Set(["procedure_version", "visit", "retry_count", "seq", "row_version", "attempt", "transient", "step_seq", "ok"])
const millisColumns: ReadonlySet<string> = new Set(["timer_due_at", "started_at", "entered_at", "updated_at", "at", "duration"])

/** Parameters in `VALUES` or `unnest` have no type of their own (a NULL, a number sent as text): each gets its column's. */
export const cast = (column: string): string =>
  intColumns.has(column) ? "integer" : millisColumns.has(column) ? "bigint" : "text"

export type Value = string | number | null

/**
 * How values enter a statement: a column's values for every row as one array parameter
 * (`$n`, appended to `params`), cast to the column's type, for `unnest`: the statement's
 * text is then the same whatever the number of rows, so the server keeps its plan. A part
 * of one row binds its values one by one (`value`): a second text, also prepared once.
 */
export interface Binder {
  readonly params: Array<Value | ReadonlyArray<Value>>
  readonly array: (values: ReadonlyArray<Value>, type: string) => string
  readonly value: (value: Value, type: string) => string
}

export const parameters = (): Binder => {
  const params: Array<Value | ReadonlyArray<Value>> = []
  return { params, array: (values, type) => `$${params.push(values)}::${type}[]`, value: (value, type) => `$${params.push(value)}::${type}` }
}

/**
 * A value as an SQL literal: a string quoted as `pg`'s `escapeLiteral` quotes it (quotes
 * doubled; with a backslash, an `E'...'` string with backslashes doubled), so it reads the
 * same whatever `standard_conforming_strings` is; a number as its decimal text, quoted.
 */
export const literal = (value: Value): string => {
  if (value === null) return "NULL"
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${value} cannot be written to Postgres`)
    return `'${String(value)}'`
  }
  const quoted = `'${value.replace(/'/g, "''")}'`
  return value.includes("\\") ? ` E${quoted.replace(/\\/g, "\\\\")}` : quoted
}

/** Values as the text of a Postgres array (`{"a",NULL,"b\\"c"}`), each element quoted, as `pg` sends an array parameter. */
export const arrayText = (values: ReadonlyArray<Value>): string => {
  let out = "{"
  for (let k = 0; k < values.length; k++) {
    const value = values[k]!
    if (k > 0) out += ","
    if (value === null) out += "NULL"
    else if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError(`${value} cannot be written to Postgres`)
    else out += `"${String(value).replace(/[\\"]/g, "\\$&")}"`
  }
  return `${out}}`
}

/**
 * `unnest(...) AS alias(columns)`: rows of values cast to `types`, one array per column,
 * bound by `b`. One row is `(SELECT $1::type AS column, ...) AS alias` instead: the writes of
 * an execution alone are batches of one, and for them arrays cost on both sides (a commit's
 * round trip at `pg`, p50 1.05 → 0.75 ms with fsync on; docs/scale-out.md, "One execution alone").
 */
export const unnestOf = (b: Binder, alias: string, columns: ReadonlyArray<string>, types: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<Value>>) =>
  rows.length === 1
    ? `(SELECT ${columns.map((c, k) => `${b.value(rows[0]![k]!, types[k]!)} AS ${c}`).join(", ")}) AS ${alias}`
    : `unnest(${columns.map((_, k) => b.array(rows.map((row) => row[k]!), types[k]!)).join(", ")}) AS ${alias}(${columns.join(", ")})`

const setColumns = executionColumns.filter((c) => c !== "execution_id")
const setClause = setColumns.map((c) => `${c} = v.${c}`).join(", ")

/** The `UPDATE` of these commits' rows, `RETURNING v.i` (the position of each row updated). */
export const updateStatement = (b: Binder, t: Tables, chunk: ReadonlyArray<readonly [number, BatchCommit]>) => {
  const fenced = chunk.some(([, c]) => c.epoch !== undefined)
  const columns = ["i", ...executionColumns, "expected", ...(fenced ? ["shard", "epoch"] : [])]
  const types = ["integer", ...executionColumns.map(cast), "integer", ...(fenced ? ["integer", "bigint"] : [])]
  // the shard row stays share-locked until the batch commits, as in the one-commit statement
  const check = fenced
    ? ` AND EXISTS (SELECT 1 FROM ${t.shards} AS s WHERE s.shard = v.shard AND s.epoch = v.epoch FOR SHARE)`
    : ""
  const rows = chunk.map(([i, c]) => [i, ...snapshotParams(c.commit.snapshot), c.commit.expectedVersion, ...(fenced ? [c.shard, c.epoch ?? null] : [])])
  return `UPDATE ${t.executions} AS e SET ${setClause}
    FROM ${unnestOf(b, "v", columns, types, rows)}
    WHERE e.execution_id = v.execution_id AND e.row_version = v.expected${check}
    RETURNING v.i`
}

/**
 * Updates the rows of these commits whose stored version is the expected one (and whose shard
 * is still at the epoch held, when fenced); returns the positions, in `commits`, of those
 * updated. The ids must be distinct. Throws if a snapshot cannot be encoded.
 */
export const updateMany = (sql: SqlClient.SqlClient, t: Tables, commits: ReadonlyArray<BatchCommit>) =>
  Effect.suspend(() => {
    let statements: ReadonlyArray<readonly [string, Array<Value | ReadonlyArray<Value>>]>
    try {
      statements = chunks(commits.map((c, i) => [i, c] as const)).map((chunk) => {
        const b = parameters()
        return [updateStatement(b, t, chunk), b.params] as const
      })
    } catch (error) {
      // a snapshot that cannot be encoded (its context to JSON) fails the batch, which is then written op by op
      return Effect.fail(error)
    }
    return Effect.map(
      Effect.forEach(statements, ([text, params]) => sql.unsafe<Row>(text, params)),
      (results) => new Set(results.flat().map((row) => Number(row.i)))
    )
  })

/** Deletes the inbox events these commits consumed. */
export const deleteConsumed = (sql: SqlClient.SqlClient, t: Tables, consumed: ReadonlyArray<readonly [string, number]>) =>
  Effect.forEach(chunks(consumed), (chunk) =>
    sql.unsafe(
      `DELETE FROM ${t.inbox} AS x USING (VALUES ${chunk.map((_, k) => `($${2 * k + 1}::text, $${2 * k + 2}::bigint)`).join(", ")})
        AS v(execution_id, seq) WHERE x.execution_id = v.execution_id AND x.seq = v.seq`,
      chunk.flat()
    ), { discard: true })

/** Deletes the inboxes of these executions; returns the events deleted, by execution. */
export const deleteInboxes = (sql: SqlClient.SqlClient, t: Tables, ids: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(chunks(ids), (chunk) =>
      sql.unsafe<Row>(
        `DELETE FROM ${t.inbox} WHERE execution_id IN (${chunk.map((_, k) => `$${k + 1}`).join(", ")}) RETURNING *`,
        chunk
      )),
    (results) => {
      const byId = new Map<string, Array<Row>>()
      for (const row of results.flat()) {
        const id = String(row.execution_id)
        const rows = byId.get(id)
        if (rows === undefined) byId.set(id, [row])
        else rows.push(row)
      }
      return byId
    }
  )
