/**
 * The portable writer backend: writes a batch through any `@effect/sql` client (SQLite,
 * Postgres) in one transaction, with multi-row INSERTs for the rows a batch shares.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Cause, Effect, Exit, Option } from "effect"
import type { ErrorEntry, Status, Transition } from "../Execution.js"
import { isTerminal, terminalStatuses } from "../Execution.js"
import type { StoreError } from "../Errors.js"
import { StoreError as StoreErrorClass } from "../Errors.js"
import { conflict, discardedEvents, ended } from "../Store.js"
import type { Commit, CompensationRecord } from "../Store.js"
import * as PgBatch from "./sqlPgBatch.js"
import * as PgPrepared from "./sqlPgPrepared.js"
import * as PgScript from "./sqlPgScript.js"
import { existing, insertOrFind } from "./sqlCreate.js"
import { classify, isEnvironmental, storeError } from "./sqlErrors.js"
import type { Fence } from "./sqlFence.js"
import { currentEpoch, fenced, notHeld, shardOf } from "./sqlFence.js"
import type { Row, Tables } from "./sqlSchema.js"
import { compensationParams, errorColumns, errorParams, executionColumns, rowToInbox, snapshotParams, transitionColumns, transitionParams } from "./sqlSchema.js"
import type { Backend, Op, OpResult } from "./sqlWriter.js"
import { done, fail, succeed } from "./sqlWriter.js"

/** Rows a batch inserts together at its end. */
interface Pending {
  transitions: Array<Transition>
  errors: Array<ErrorEntry>
  compensations: Array<CompensationRecord>
}

const emptyPending = (): Pending => ({ transitions: [], errors: [], compensations: [] })

/** Rows per multi-row INSERT: well under every driver's bound-parameter limit. */
const chunkRows = 500

const record = <K extends string>(columns: ReadonlyArray<K>, values: ReadonlyArray<unknown>): Record<K, unknown> => {
  const out = {} as Record<K, unknown>
  for (let i = 0; i < columns.length; i++) out[columns[i]!] = values[i]
  return out
}

/**
 * One transaction on one reserved connection of `client`, begun (`begin`) and ended here
 * rather than by `sql.withTransaction`: that one turns a failed COMMIT into a defect and
 * leaves the transaction open (SQLite keeps it open after SQLITE_BUSY on COMMIT), where the
 * next batch would find these rows. Here a failed COMMIT is rolled back.
 */
export const inTransaction = (client: SqlClient.SqlClient, begin: string) => <A>(body: Effect.Effect<A, unknown>): Effect.Effect<A, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const conn = yield* client.reserve
      yield* conn.executeUnprepared(begin, [], undefined)
      const rollback = Effect.ignore(Effect.catchAllDefect(conn.executeUnprepared("ROLLBACK", [], undefined), () => Effect.void))
      const result = yield* Effect.exit(Effect.provideService(body, SqlClient.TransactionConnection, [conn, 0] as const))
      if (Exit.isFailure(result)) {
        yield* rollback
        return yield* Effect.failCause(result.cause)
      }
      const committed = yield* Effect.exit(conn.executeUnprepared("COMMIT", [], undefined))
      if (Exit.isFailure(committed)) {
        yield* rollback
        return yield* Effect.failCause(committed.cause)
      }
      return result.value
    })
  )

/** With a `fence`, each commit is fenced by its shard's epoch (`sqlFence.ts`) and each new row records its shard. */
export const make = (client: SqlClient.SqlClient, t: Tables, what: string, fence?: Fence): Backend => {
  const sql = client.withoutTransforms()
  const E = sql(t.executions)
  // the shard row stays share-locked until the batch commits, so a runtime taking the shard
  // waits for it, and a commit after the take sees the new epoch (SQLite writes one at a time)
  const forShare = sql.literal(sql.onDialectOrElse({ pg: () => "FOR SHARE", orElse: () => "" }))
  // a process paused inside a batch's transaction would keep its locks (the shard rows', which a
  // claim waits for) until it continues: Postgres ends such a transaction after this long
  const idle = fence?.idleInTransactionMillis
  const begin = idle === undefined
    ? "BEGIN"
    : sql.onDialectOrElse({ pg: () => `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.floor(idle))}`, orElse: () => "BEGIN" })

  // SQLite has its own fast path (sqlSqlite.ts); its portable path writes commits one by one
  const grouped = sql.onDialectOrElse({ pg: () => true, orElse: () => false })

  const insertChunked = (table: string, rows: ReadonlyArray<Record<string, unknown>>) =>
    Effect.forEach(
      Array.from({ length: Math.ceil(rows.length / chunkRows) }, (_, i) => rows.slice(i * chunkRows, (i + 1) * chunkRows)),
      (chunk) => sql`INSERT INTO ${sql(table)} ${sql.insert(chunk)}`,
      { discard: true }
    )

  const flush = (p: Pending) =>
    Effect.suspend(() => {
      const { compensations, errors, transitions } = p
      p.transitions = []
      p.errors = []
      p.compensations = []
      return Effect.all([
        transitions.length === 0 ? Effect.void : insertChunked(
          t.transitions,
          transitions.map((x) => record(transitionColumns, transitionParams(x)))
        ),
        errors.length === 0 ? Effect.void : insertChunked(t.errors, errors.map((x) => record(errorColumns, errorParams(x)))),
        compensations.length === 0 ? Effect.void : insertChunked(
          t.compensations,
          compensations.map((x) => record(["execution_id", "step_seq", "state", "ok", "at"], compensationParams(x)))
        )
      ], { discard: true })
    })

  const fenceOf = (c: Commit): { readonly shard: number; readonly epoch: number | undefined } => {
    const shard = fence === undefined ? 0 : shardOf(c.snapshot.id, fence.shards)
    return { shard, epoch: fence?.epochs.get(shard) }
  }

  /** Why a commit's UPDATE matched no row: its shard was taken (fenced), or its row moved on (a conflict). */
  const refused = (c: Commit, shard: number, epoch: number | undefined) =>
    Effect.gen(function*() {
      if (epoch !== undefined) {
        const current = yield* currentEpoch(sql, t, shard)
        if (current === undefined || Number(current.epoch) !== epoch) {
          // epochs only grow: another store claimed the shard since, and this one no longer holds it
          // (its owner sees that in `held` and claims it again if the shard is its own again)
          if (fence?.epochs.get(shard) === epoch) fence.epochs.delete(shard)
          return fail(fenced(c.snapshot.id, shard, epoch, current))
        }
      }
      const current = yield* sql<Row>`SELECT row_version FROM ${E} WHERE execution_id = ${c.snapshot.id}`
      const actual = current[0] === undefined ? undefined : Number(current[0].row_version)
      return fail(conflict("commit", c.snapshot.id, c.expectedVersion, actual))
    })

  /** The rows a written commit adds at the batch's end; `left`: the inbox events its end discarded. */
  const accepted = (c: Commit, p: Pending, left: ReadonlyArray<Row>) => {
    if (c.transition !== undefined) p.transitions.push(c.transition)
    if (c.errors !== undefined) p.errors.push(...c.errors)
    if (c.compensation !== undefined) p.compensations.push(c.compensation)
    if (left.length > 0) p.errors.push(...discardedEvents(c.snapshot, left.map(rowToInbox).sort((a, b) => a.seq - b.seq)))
  }

  /** An op whose values cannot be bound (a context JSON cannot encode) fails, it does not die. */
  const apply = (op: Op, p: Pending): Effect.Effect<OpResult, unknown> =>
    Effect.suspend(() => {
      try {
        return applyOp(op, p)
      } catch (error) {
        return Effect.fail(error)
      }
    })

  const applyOp = (op: Op, p: Pending): Effect.Effect<OpResult, unknown> => {
    switch (op._tag) {
      case "Commit": {
        const c = op.commit
        const values = record(executionColumns, snapshotParams(c.snapshot))
        const { epoch, shard } = fenceOf(c)
        if (fence !== undefined && epoch === undefined) return Effect.succeed(fail(notHeld(c.snapshot.id, shard)))
        return Effect.gen(function*() {
          const updated = yield* (epoch === undefined
            ? sql`UPDATE ${E} SET ${sql.update(values, ["execution_id"])}
                WHERE execution_id = ${c.snapshot.id} AND row_version = ${c.expectedVersion} RETURNING execution_id`
            : sql`UPDATE ${E} SET ${sql.update(values, ["execution_id"])}
                WHERE execution_id = ${c.snapshot.id} AND row_version = ${c.expectedVersion}
                AND EXISTS (SELECT 1 FROM ${sql(t.shards)} WHERE shard = ${shard} AND epoch = ${epoch} ${forShare})
                RETURNING execution_id`)
          if (updated.length === 0) return yield* refused(c, shard, epoch)
          if (c.consumed !== undefined) {
            yield* sql`DELETE FROM ${sql(t.inbox)} WHERE execution_id = ${c.snapshot.id} AND seq = ${c.consumed}`
          }
          // the row lock the UPDATE took makes a concurrent enqueue wait, then see the end
          const left = isTerminal(c.snapshot.status)
            ? yield* sql<Row>`DELETE FROM ${sql(t.inbox)} WHERE execution_id = ${c.snapshot.id} RETURNING *`
            : []
          accepted(c, p, left)
          return done
        })
      }
      case "Create":
        return Effect.map(insertOrFind(sql, t, op.snapshot, fence, what), (result) => {
          if (result.created) p.transitions.push(op.transition)
          return succeed(result)
        })
      case "Enqueue": {
        const event = op.event === undefined ? null : JSON.stringify(op.event)
        return Effect.gen(function*() {
          // on Postgres the row is locked until this transaction ends, so a commit that ends the
          // execution cannot come between this check and the insert (and then miss the event)
          const found = yield* sql.onDialectOrElse({
            pg: () => sql<Row>`SELECT status FROM ${E} WHERE execution_id = ${op.executionId} FOR SHARE`,
            orElse: () => sql<Row>`SELECT status FROM ${E} WHERE execution_id = ${op.executionId}`
          })
          if (found.length === 0) {
            return fail(absent(op.executionId))
          }
          const status = String(found[0]!.status)
          if (terminalStatuses.has(status as Status)) return fail(ended(op.executionId, status))
          const rows = yield* sql<Row>`INSERT INTO ${sql(t.inbox)} (execution_id, event, at)
            VALUES (${op.executionId}, ${event}, ${op.at}) RETURNING seq`
          return succeed({ executionId: op.executionId, seq: Number(rows[0]!.seq), event: op.event, at: op.at })
        })
      }
      case "EnqueueAll":
        return Effect.gen(function*() {
          // every execution checked (its row locked on Postgres until the transaction ends), then every event stored
          for (const { executionId } of op.entries) {
            const found = yield* sql.onDialectOrElse({
              pg: () => sql<Row>`SELECT status FROM ${E} WHERE execution_id = ${executionId} FOR SHARE`,
              orElse: () => sql<Row>`SELECT status FROM ${E} WHERE execution_id = ${executionId}`
            })
            if (found.length === 0) return fail(absent(executionId))
            const status = String(found[0]!.status)
            if (terminalStatuses.has(status as Status)) return fail(ended(executionId, status))
          }
          const out: Array<unknown> = []
          for (const { at, event, executionId } of op.entries) {
            const rows = yield* sql<Row>`INSERT INTO ${sql(t.inbox)} (execution_id, event, at)
              VALUES (${executionId}, ${event === undefined ? null : JSON.stringify(event)}, ${at}) RETURNING seq`
            out.push({ executionId, seq: Number(rows[0]!.seq), event, at })
          }
          return succeed(out)
        })
      case "AppendErrors":
        return Effect.sync(() => {
          p.errors.push(...op.entries)
          return done
        })
    }
  }

  const isolatedOp = (op: Op): Effect.Effect<OpResult, unknown> => {
    const p = emptyPending()
    // a nested transaction is a SAVEPOINT: an op the database refuses is rolled back alone
    return sql.withTransaction(Effect.zipLeft(apply(op, p), flush(p))).pipe(
      // a row that throws while being decoded or encoded is this op's failure alone
      Effect.catchAllDefect(Effect.fail),
      Effect.catchAll((error) => {
        const e = error instanceof StoreErrorClass ? error : storeError(operation(op), error, what)
        return isEnvironmental(e.kind) ? Effect.fail(e) : Effect.succeed(fail(e))
      })
    )
  }

  /** The commits whose shard this process holds (all, unfenced); each other one's result is `NotHeld`. */
  const holding = (commits: ReadonlyArray<Commit>, results: Array<OpResult>) => {
    const held: Array<PgBatch.BatchCommit & { readonly index: number }> = []
    commits.forEach((commit, index) => {
      const { epoch, shard } = fenceOf(commit)
      if (fence !== undefined && epoch === undefined) results[index] = fail(notHeld(commit.snapshot.id, shard))
      else held.push({ commit, shard, epoch, index })
    })
    return held
  }

  /**
   * These commits (of distinct executions) in one statement per table on Postgres, each with
   * its own result: a commit whose row was not updated fails alone, as it would by itself.
   */
  const commitMany = (commits: ReadonlyArray<Commit>, p: Pending): Effect.Effect<Array<OpResult>, unknown> =>
    Effect.gen(function*() {
      const results: Array<OpResult> = commits.map(() => done)
      const held = holding(commits, results)
      const updated = yield* PgBatch.updateMany(sql, t, held)
      const written: Array<Commit> = []
      for (let k = 0; k < held.length; k++) {
        const { commit, epoch, index, shard } = held[k]!
        if (updated.has(k)) written.push(commit)
        else results[index] = yield* refused(commit, shard, epoch)
      }
      const consumed = written.flatMap((c) => c.consumed === undefined ? [] : [[c.snapshot.id, c.consumed] as const])
      if (consumed.length > 0) yield* PgBatch.deleteConsumed(sql, t, consumed)
      // the row locks the UPDATE took make a concurrent enqueue wait, then see the end
      const ending = written.filter((c) => isTerminal(c.snapshot.status)).map((c) => c.snapshot.id)
      const left = ending.length === 0 ? new Map<string, Array<Row>>() : yield* PgBatch.deleteInboxes(sql, t, ending)
      for (const c of written) accepted(c, p, left.get(c.snapshot.id) ?? [])
      return results
    })

  /**
   * A batch on Postgres: its commits go together through `commitMany`. A create or an enqueue
   * of another execution may be written before the commits queued ahead of it (their callers
   * are concurrent, either order is one they could have had); any op touching an execution
   * with a commit queued, and anything else, writes those commits first.
   */
  const applyGrouped = (ops: ReadonlyArray<Op>, p: Pending): Effect.Effect<Array<OpResult>, unknown> =>
    Effect.gen(function*() {
      const results: Array<OpResult> = new Array(ops.length)
      let queued: Array<number> = []
      const ids = new Set<string>()
      const writeQueued = Effect.suspend(() => {
        const indexes = queued
        queued = []
        ids.clear()
        if (indexes.length === 0) return Effect.void
        const commits = indexes.map((i) => (ops[i] as Extract<Op, { _tag: "Commit" }>).commit)
        return Effect.map(commitMany(commits, p), (rs) => rs.forEach((r, k) => results[indexes[k]!] = r))
      })
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        const id = op._tag === "Commit" ? op.commit.snapshot.id : op._tag === "Create" ? op.snapshot.id : op._tag === "Enqueue" ? op.executionId : undefined
        if (id === undefined || ids.has(id)) yield* writeQueued
        if (op._tag === "Commit") {
          queued.push(i)
          ids.add(id!)
        } else {
          results[i] = yield* apply(op, p)
        }
      }
      yield* writeQueued
      return results
    })

  const transaction = inTransaction(client, begin)
  // the connection the one-round-trip batches are prepared on (sqlPgPrepared.ts)
  const session = PgPrepared.session(sql)

  /**
   * A batch of commits, creates and enqueues, each of its own execution, in one round trip on
   * Postgres (`sqlPgScript.ts`): `undefined` for any other batch. A commit it did not write is
   * then told apart as in `commitMany`, a create it did not insert answered as `create`
   * answers, an event it did not store refused as `Enqueue` refuses it.
   */
  const scripted = (ops: ReadonlyArray<Op>): Effect.Effect<Array<OpResult>, unknown> | undefined => {
    const commits: Array<Commit> = []
    const creates: Array<PgScript.BatchCreate> = []
    const enqueues: Array<PgScript.BatchEnqueue> = []
    const ids = new Set<string>()
    for (const op of ops) {
      const id = op._tag === "Commit" ? op.commit.snapshot.id : op._tag === "Create" ? op.snapshot.id : op._tag === "Enqueue" ? op.executionId : undefined
      if (id === undefined || ids.has(id)) return undefined
      ids.add(id)
      if (op._tag === "Commit") commits.push(op.commit)
      else if (op._tag === "Create") creates.push({ snapshot: op.snapshot, transition: op.transition, shard: fence === undefined ? undefined : shardOf(op.snapshot.id, fence.shards) })
      else if (op._tag === "Enqueue") enqueues.push({ executionId: id, event: op.event === undefined ? null : JSON.stringify(op.event), at: op.at })
    }
    if (!PgScript.fits(commits, creates.length + enqueues.length)) return undefined
    const commitResults: Array<OpResult> = commits.map(() => done)
    const held = holding(commits, commitResults)
    const wrote = held.length + creates.length + enqueues.length === 0
      ? Effect.succeed({ created: new Set<string>(), enqueued: new Map<string, number>(), written: new Set<number>() })
      : PgScript.write(session, t, held, creates, enqueues)
    return Effect.flatMap(wrote, ({ created, enqueued, written }) => {
      // the usual batch: everything written, each result known without another statement
      if (written.size === held.length && created.size === creates.length && enqueued.size === enqueues.length) {
        let nextCommit = 0
        let nextCreate = 0
        return Effect.succeed(ops.map((op): OpResult =>
          op._tag === "Commit"
            ? commitResults[nextCommit++]!
            : op._tag === "Enqueue"
            ? succeed({ executionId: op.executionId, seq: enqueued.get(op.executionId)!, event: op.event, at: op.at })
            : succeed({ created: true, snapshot: creates[nextCreate++]!.snapshot })
        ))
      }
      return Effect.gen(function*() {
        for (let k = 0; k < held.length; k++) {
          const { commit, epoch, index, shard } = held[k]!
          if (!written.has(k)) commitResults[index] = yield* refused(commit, shard, epoch)
        }
        let nextCommit = 0
        let nextCreate = 0
        return yield* Effect.forEach(ops, (op) => {
          if (op._tag === "Commit") return Effect.succeed(commitResults[nextCommit++]!)
          if (op._tag === "Enqueue") {
            const seq = enqueued.get(op.executionId)
            return seq === undefined
              ? notEnqueued(op.executionId)
              : Effect.succeed(succeed({ executionId: op.executionId, seq, event: op.event, at: op.at }))
          }
          const { snapshot } = creates[nextCreate++]!
          return created.has(snapshot.id)
            ? Effect.succeed(succeed({ created: true, snapshot }))
            : Effect.map(existing(sql, t, snapshot, what), succeed)
        })
      })
    })
  }

  /** Why an event was not stored: its execution had ended, or did not exist. */
  const notEnqueued = (executionId: string) =>
    Effect.map(sql<Row>`SELECT status FROM ${E} WHERE execution_id = ${executionId}`, (found) => {
      const status = found[0] === undefined ? undefined : String(found[0].status)
      return status !== undefined && terminalStatuses.has(status as Status)
        ? fail(ended(executionId, status))
        : fail(absent(executionId))
    })

  const writeBatch = (ops: ReadonlyArray<Op>, isolated: boolean): Effect.Effect<ReadonlyArray<OpResult>, StoreError> => {
    const script = grouped && !isolated ? scripted(ops) : undefined
    const body = script !== undefined
      ? script
      : transaction(isolated
        ? Effect.forEach(ops, isolatedOp)
        : Effect.suspend(() => {
          const p = emptyPending()
          return Effect.zipLeft(grouped ? applyGrouped(ops, p) : Effect.forEach(ops, (op) => apply(op, p)), flush(p))
        }))
    // one handler for failures and defects (a success passes it by); no spans: the writer's fiber runs with the tracer off (sqlWriter.ts)
    return Effect.catchAllCause(body, (cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        return Effect.fail(error instanceof StoreErrorClass ? error : storeError("commit", error, what))
      }
      const defect = Cause.dieOption(cause)
      return Option.isSome(defect)
        ? Effect.fail(storeError("commit", defect.value, what, classifyDefect(defect.value)))
        : Effect.failCause(cause as Cause.Cause<never>)
    })
  }

  return { writeBatch, close: session.close }
}

/** A failed ROLLBACK TO SAVEPOINT arrives as a defect wrapping the `SqlError`: the database refused the batch. */
const classifyDefect = (defect: unknown) => {
  const kind = classify(defect)
  const isSqlError = typeof defect === "object" && defect !== null && (defect as { _tag?: unknown })._tag === "SqlError"
  return kind === "Unknown" && isSqlError ? "Unavailable" : kind
}

/** An event for an execution that does not exist. */
const absent = (executionId: string) =>
  new StoreErrorClass({ kind: "Conflict", operation: "enqueue", detail: `execution ${executionId} does not exist` })

const operation = (op: Op): string =>
  op._tag === "Commit" ? "commit" : op._tag === "Create" ? "create" : op._tag === "Enqueue" || op._tag === "EnqueueAll" ? "enqueue" : "appendErrors"
