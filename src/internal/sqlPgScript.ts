/**
 * A group commit on Postgres in one round trip (`sqlGeneric.ts`): the batch's commits,
 * creates and enqueued events in one statement (`WITH` data-modifying queries; an event is
 * stored only if its execution's row, share-locked, has not ended), and, when a commit ends its
 * execution, a second statement in the same message that deletes that execution's inbox
 * and logs each event it held as discarded. Postgres runs the statements of one simple-query
 * message as one transaction, and each in READ COMMITTED sees what committed before it
 * began. The inbox is deleted by a statement of its own because of that: an enqueue holds
 * the execution's row (`FOR SHARE`) from its check until it commits, so the `UPDATE` that
 * ends the execution may wait for it, and a `DELETE` in the same statement would not see
 * the event (its snapshot was taken before the enqueue committed): the event would stay,
 * neither consumed nor logged. The second statement starts after the `UPDATE` holds the
 * row, so it sees every event accepted before the end (and later ones are refused).
 * Each statement binds a column's values as one array (`unnest`; a part of one row, its
 * values one by one), so its text depends only on which parts the batch has and whether each
 * has one row or more, and the writer's connection prepares it once
 * (`sqlPgPrepared.ts`): one statement is bound by the driver, two go in one message as
 * `EXECUTE`s of their prepared statements with the values as quoted literals (a
 * simple-query message takes no parameters).
 */
import { Effect } from "effect"
import type { Snapshot, Transition } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import { bodyLimit } from "../Store.js"
import type { Commit } from "../Store.js"
import type { BatchCommit, Binder, Value } from "./sqlPgBatch.js"
import { cast, literal, parameters, unnestOf, updateStatement } from "./sqlPgBatch.js"
import type { Session, Statement } from "./sqlPgPrepared.js"
import type { Tables } from "./sqlSchema.js"
import { compensationParams, errorColumns, errorParams, executionColumns, snapshotParams, terminalList, transitionColumns, transitionParams } from "./sqlSchema.js"

/** An event for an execution's inbox, stored unless the execution ended or does not exist. */
export interface BatchEnqueue {
  readonly executionId: string
  /** the event as JSON, or `null` */
  readonly event: string | null
  readonly at: number
}

/** A new execution to insert, with its shard when the store is fenced. */
export interface BatchCreate {
  readonly snapshot: Snapshot
  readonly transition: Transition
  readonly shard: number | undefined
}

const compensationColumns = ["execution_id", "step_seq", "state", "ok", "at"] as const
const positioned = (columns: ReadonlyArray<string>) => ["i", ...columns]
const withPosition = (columns: ReadonlyArray<string>) => ["integer", ...columns.map(cast)]

/** `INSERT INTO table` of these rows (each led by the position of its commit), for the commits the `UPDATE` wrote. */
const insertWritten = (b: Binder, table: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<Value>>) =>
  `INSERT INTO ${table} (${columns.join(", ")})
    SELECT ${columns.join(", ")} FROM ${unnestOf(b, "w", positioned(columns), withPosition(columns), rows)}
    WHERE w.i IN (SELECT i FROM u)`

/**
 * The first statement: commits, their rows, creates and enqueues; it returns `i` (a commit
 * written), `created` (an id inserted) or `enqueued` and `seq` (an event stored). Each
 * column's values are one array (`unnest`; one row: single values), so the text depends on
 * which parts the batch has, not on its size beyond one: a handful of texts, each prepared
 * once per connection (`sqlPgPrepared.ts`).
 */
const batchStatement = (b: Binder, t: Tables, commits: ReadonlyArray<BatchCommit>, creates: ReadonlyArray<BatchCreate>, enqueues: ReadonlyArray<BatchEnqueue>) => {
  const parts: Array<string> = []
  const results: Array<string> = []
  if (commits.length > 0) {
    const indexed = commits.map((c, i) => [i, c] as const)
    parts.push(`u AS (${updateStatement(b, t, indexed)})`)
    results.push("SELECT i, NULL::text AS created, NULL::text AS enqueued, NULL::bigint AS seq FROM u")
    const transitions = indexed.flatMap(([i, c]) => c.commit.transition === undefined ? [] : [[i, ...transitionParams(c.commit.transition)]])
    if (transitions.length > 0) parts.push(`x AS (${insertWritten(b, t.transitions, transitionColumns, transitions)})`)
    const errors = indexed.flatMap(([i, c]) => (c.commit.errors ?? []).map((e) => [i, ...errorParams(e)]))
    if (errors.length > 0) parts.push(`xe AS (${insertWritten(b, t.errors, errorColumns, errors)})`)
    const compensations = indexed.flatMap(([i, c]) => c.commit.compensation === undefined ? [] : [[i, ...compensationParams(c.commit.compensation)]])
    if (compensations.length > 0) parts.push(`xc AS (${insertWritten(b, t.compensations, compensationColumns, compensations)})`)
    const consumed = indexed.flatMap(([i, c]) => c.commit.consumed === undefined ? [] : [[i, c.commit.snapshot.id, c.commit.consumed]])
    if (consumed.length > 0) {
      parts.push(`d AS (DELETE FROM ${t.inbox} AS n USING ${unnestOf(b, "d", ["i", "execution_id", "seq"], ["integer", "text", "bigint"], consumed)}
        WHERE d.i IN (SELECT i FROM u) AND n.execution_id = d.execution_id AND n.seq = d.seq)`)
    }
  }
  if (creates.length > 0) {
    const fenced = creates.some((c) => c.shard !== undefined)
    const columns = fenced ? [...executionColumns, "shard"] : executionColumns
    const types = columns.map((c) => c === "shard" ? "integer" : cast(c))
    const rows = creates.map((c) => fenced ? [...snapshotParams(c.snapshot), c.shard ?? null] : snapshotParams(c.snapshot))
    // a row whose id or idempotency key is taken is not inserted (and then found: `sqlCreate.ts`)
    parts.push(`c AS (INSERT INTO ${t.executions} (${columns.join(", ")}) SELECT ${columns.join(", ")} FROM ${unnestOf(b, "r", columns, types, rows)}
      ON CONFLICT DO NOTHING RETURNING execution_id)`)
    parts.push(`y AS (INSERT INTO ${t.transitions} (${transitionColumns.join(", ")})
      SELECT ${transitionColumns.join(", ")} FROM ${unnestOf(b, "y", transitionColumns, transitionColumns.map(cast), creates.map((c) => transitionParams(c.transition)))}
      WHERE y.execution_id IN (SELECT execution_id FROM c))`)
    results.push("SELECT NULL::integer AS i, execution_id AS created, NULL::text AS enqueued, NULL::bigint AS seq FROM c")
  }
  if (enqueues.length > 0) {
    // as Store.enqueue checks: the row share-locked until the transaction ends, so a commit that
    // ends the execution waits for this event (and then discards it) or comes first (and it is refused)
    const rows = enqueues.map((q, k) => [k, q.executionId, q.event, q.at])
    parts.push(`q AS (INSERT INTO ${t.inbox} (execution_id, event, at)
      SELECT r.execution_id, r.event, r.at FROM ${unnestOf(b, "r", ["k", "execution_id", "event", "at"], ["integer", "text", "text", "bigint"], rows)}
      JOIN ${t.executions} AS e ON e.execution_id = r.execution_id AND e.status NOT IN (${terminalList})
      ORDER BY r.k FOR SHARE OF e RETURNING execution_id, seq)`)
    results.push("SELECT NULL::integer AS i, NULL::text AS created, execution_id AS enqueued, seq FROM q")
  }
  return `WITH ${parts.join(", ")} ${results.join(" UNION ALL ")}`
}

/**
 * The second statement: the inboxes of these ending executions, where this transaction wrote
 * the row (its `xmin`: a commit refused left it alone), deleted, each event logged as
 * `discardedEvents` (Store.ts) words it, in inbox order. One difference: the body is cut at
 * `bodyLimit` characters here, UTF-16 units there (a body with characters beyond U+FFFF
 * may be cut a little later here).
 */
const endStatement = (b: Binder, t: Tables, ending: ReadonlyArray<Snapshot>) => {
  const columns = ["execution_id", "state", "attempt", "status", "at"]
  const rows = unnestOf(b, "v", columns, ["text", "text", "integer", "text", "bigint"], ending.map((s) => [s.id, s.state, s.attempt, s.status, s.updatedAt]))
  const tag = `CASE WHEN json_typeof(ev::json) = 'object' AND json_typeof(ev::json -> '_tag') = 'string' THEN ev::json ->> '_tag' ELSE '(untagged)' END`
  const body = `CASE WHEN length(ev) > ${bodyLimit} THEN left(ev, ${bodyLimit}) || ${literal("…")} ELSE ev END`
  return `WITH n AS (DELETE FROM ${t.inbox} AS n USING ${rows}, ${t.executions} AS e
      WHERE n.execution_id = v.execution_id AND e.execution_id = v.execution_id AND e.xmin = pg_current_xact_id()::xid
      RETURNING n.seq, coalesce(n.event, 'null') AS ev, v.*)
    INSERT INTO ${t.errors} (${errorColumns.join(", ")})
    SELECT execution_id, state, attempt, 'EventDiscarded',
      'event "' || ${tag} || '" (inbox seq ' || seq || ') was discarded: the execution ended with status ' || status ||
      ' before consuming it. Its body: ' || ${body}, 0, at
    FROM n ORDER BY execution_id, seq`
}

/**
 * Whether `write` takes these: few enough rows to keep one message small (the literals of a
 * script of two statements grow with them; a statement of arrays binds one parameter a column).
 */
export const fits = (commits: ReadonlyArray<Commit>, others: number): boolean =>
  commits.length + others <= 500 && commits.reduce((n, c) => n + (c.errors?.length ?? 0), 0) <= 500

/**
 * Writes these commits, creates and enqueues (each of its own execution) in one round trip
 * and one transaction. Returns the positions, in `commits`, of the commits written, the ids
 * of the executions created, and the inbox seq of each event stored, by execution.
 */
export const write = (
  session: Session,
  t: Tables,
  commits: ReadonlyArray<BatchCommit>,
  creates: ReadonlyArray<BatchCreate>,
  enqueues: ReadonlyArray<BatchEnqueue>
) =>
  Effect.suspend(() => {
    const ending = commits.filter((c) => isTerminal(c.commit.snapshot.status)).map((c) => c.commit.snapshot)
    const statements: Array<Statement> = []
    try {
      const b = parameters()
      statements.push({ text: batchStatement(b, t, commits, creates, enqueues), params: b.params })
      if (ending.length > 0) {
        const e = parameters()
        statements.push({ text: endStatement(e, t, ending), params: e.params })
      }
    } catch (error) {
      // a value that cannot be encoded (a context to JSON) fails the batch, which is then written op by op
      return Effect.fail(error)
    }
    // one statement: bound by the driver; two: one message, values as literals (sqlPgPrepared.ts)
    return Effect.map(statements.length === 1 ? session.run(statements[0]!) : session.script(statements), (results) => {
      const rows = results[0]!
      const written = new Set<number>()
      const created = new Set<string>()
      const enqueued = new Map<string, number>()
      for (const row of rows) {
        if (row.i !== null && row.i !== undefined) written.add(Number(row.i))
        else if (row.created !== null && row.created !== undefined) created.add(String(row.created))
        else enqueued.set(String(row.enqueued), Number(row.seq))
      }
      return { written, created, enqueued }
    })
  })
