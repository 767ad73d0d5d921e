/**
 * Postgres statements that write many commits of a group commit at once (`sqlGeneric.ts`):
 * one `UPDATE ... FROM (VALUES ...)` for the execution rows, with each row's version check
 * (and shard epoch check, when fenced), and one `DELETE` each for the consumed inbox events
 * and the inboxes of executions that ended. Sent one statement after another, a batch's
 * commits cost Postgres a round trip and a statement each (docs/benchmarks.md, W7).
 *
 * `writeInOne` writes the most common batch (commits that neither end their execution nor
 * record errors or compensations) as one statement: the `UPDATE`, the transitions' `INSERT`
 * and the consumed events' `DELETE` as data-modifying `WITH` queries, in the statement's own
 * transaction: one round trip instead of `BEGIN`, three statements and `COMMIT`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import { isTerminal } from "../Execution.js"
import type { Commit } from "../Store.js"
import type { Row, Tables } from "./sqlSchema.js"
import { executionColumns, snapshotParams, transitionColumns, transitionParams } from "./sqlSchema.js"

/** A commit to write, with the epoch this process holds for its shard when the store is fenced. */
export interface BatchCommit {
  readonly commit: Commit
  readonly shard: number
  readonly epoch: number | undefined
}

/**
 * Rows per statement: Postgres binds at most 65,535 parameters, and an `UPDATE` row takes
 * 26 (the row's 22 columns, its position, version, shard and epoch).
 */
const chunkRows = 500

const chunks = <A>(items: ReadonlyArray<A>): ReadonlyArray<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(items.length / chunkRows) }, (_, i) => items.slice(i * chunkRows, (i + 1) * chunkRows))

const intColumns: ReadonlySet<string> = new Set(["procedure_version", "visit", "retry_count", "seq", "row_version"])
const millisColumns: ReadonlySet<string> = new Set(["timer_due_at", "started_at", "entered_at", "updated_at", "at", "duration"])

/** Parameters in `VALUES` have no type of their own (a NULL, a number sent as text): each gets its column's. */
const cast = (column: string): string =>
  intColumns.has(column) ? "integer" : millisColumns.has(column) ? "bigint" : "text"

const setColumns = executionColumns.filter((c) => c !== "execution_id")
const setClause = setColumns.map((c) => `${c} = v.${c}`).join(", ")

/**
 * Updates the rows of these commits whose stored version is the expected one (and whose shard
 * is still at the epoch held, when fenced); returns the positions, in `commits`, of those
 * updated. The ids must be distinct. Throws if a snapshot cannot be encoded.
 */
/** `(VALUES ...)` rows of typed parameters, numbered from `params.length + 1`, appended to `params`. */
const valuesOf = (types: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number | null>>, params: Array<string | number | null>) =>
  rows.map((values) => {
    const start = params.length
    params.push(...values)
    return `(${values.map((_, k) => `$${start + k + 1}::${types[k]}`).join(", ")})`
  }).join(", ")

/** The `UPDATE` of these commits' rows, `RETURNING v.i` (the position of each row updated), and its parameters. */
const updateStatement = (t: Tables, chunk: ReadonlyArray<readonly [number, BatchCommit]>, params: Array<string | number | null>) => {
  const fenced = chunk.some(([, c]) => c.epoch !== undefined)
  const columns = ["i", ...executionColumns, "expected", ...(fenced ? ["shard", "epoch"] : [])]
  const types = ["integer", ...executionColumns.map(cast), "integer", ...(fenced ? ["integer", "bigint"] : [])]
  // the shard row stays share-locked until the batch commits, as in the one-commit statement
  const check = fenced
    ? ` AND EXISTS (SELECT 1 FROM ${t.shards} AS s WHERE s.shard = v.shard AND s.epoch = v.epoch FOR SHARE)`
    : ""
  const rows = valuesOf(types, chunk.map(([i, c]) => [i, ...snapshotParams(c.commit.snapshot), c.commit.expectedVersion, ...(fenced ? [c.shard, c.epoch ?? null] : [])]), params)
  return `UPDATE ${t.executions} AS e SET ${setClause}
    FROM (VALUES ${rows}) AS v(${columns.join(", ")})
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
    let statements: ReadonlyArray<readonly [string, Array<string | number | null>]>
    try {
      statements = chunks(commits.map((c, i) => [i, c] as const)).map((chunk) => {
        const params: Array<string | number | null> = []
        return [updateStatement(t, chunk, params), params] as const
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

/**
 * Whether `writeInOne` can write these commits: few enough for one statement, none ending its
 * execution (its inbox is then deleted and the events left in it recorded as errors) and none
 * with errors or a compensation record to insert.
 */
export const fitsInOne = (commits: ReadonlyArray<Commit>): boolean =>
  commits.length <= chunkRows &&
  commits.every((c) => !isTerminal(c.snapshot.status) && (c.errors === undefined || c.errors.length === 0) && c.compensation === undefined)

const transitionTypes = ["integer", ...transitionColumns.map(cast)]

/**
 * These commits (distinct executions, `fitsInOne`) in one statement and its own transaction:
 * the rows updated, and only for those the transitions inserted and the consumed inbox events
 * deleted. Returns the positions, in `commits`, of the commits written. Throws if a snapshot
 * cannot be encoded.
 */
export const writeInOne = (sql: SqlClient.SqlClient, t: Tables, commits: ReadonlyArray<BatchCommit>) =>
  Effect.suspend(() => {
    const params: Array<string | number | null> = []
    let text: string
    try {
      const indexed = commits.map((c, i) => [i, c] as const)
      const parts = [`u AS (${updateStatement(t, indexed, params)})`]
      const transitions = indexed.flatMap(([i, c]) => c.commit.transition === undefined ? [] : [[i, ...transitionParams(c.commit.transition)]])
      if (transitions.length > 0) {
        parts.push(`x AS (INSERT INTO ${t.transitions} (${transitionColumns.join(", ")})
          SELECT ${transitionColumns.join(", ")} FROM (VALUES ${valuesOf(transitionTypes, transitions, params)}) AS x(i, ${transitionColumns.join(", ")})
          WHERE x.i IN (SELECT i FROM u))`)
      }
      const consumed = indexed.flatMap(([i, c]) => c.commit.consumed === undefined ? [] : [[i, c.commit.snapshot.id, c.commit.consumed]])
      if (consumed.length > 0) {
        parts.push(`d AS (DELETE FROM ${t.inbox} AS n USING (VALUES ${valuesOf(["integer", "text", "bigint"], consumed, params)}) AS d(i, execution_id, seq)
          WHERE d.i IN (SELECT i FROM u) AND n.execution_id = d.execution_id AND n.seq = d.seq)`)
      }
      text = `WITH ${parts.join(", ")} SELECT i FROM u`
    } catch (error) {
      return Effect.fail(error)
    }
    return Effect.map(sql.unsafe<Row>(text, params), (rows) => new Set(rows.map((row) => Number(row.i))))
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
