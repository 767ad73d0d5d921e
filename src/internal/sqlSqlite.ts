/**
 * The SQLite fast path: writes a batch straight through better-sqlite3 prepared
 * statements on the store's own connection to the file, in one synchronous
 * `BEGIN IMMEDIATE ... COMMIT`; and the two reads an actor makes (its row, its inbox).
 *
 * Why not through `@effect/sql`: every statement there is an Effect with its own
 * compile, prepare-cache lookup and span, about 10-20 µs each; a transition is 2-4
 * statements, so it caps the store far below the group-commit goal. Here a batch of 512
 * transitions is one JS call with no await inside, so no other fiber of this process can
 * interleave with the transaction either. Reads and migrations still go through
 * `@effect/sql`, on the client's connection (WAL lets them read while this one writes).
 */
import type Database from "better-sqlite3"
import { Effect } from "effect"
import { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import { conflict, discardedEvents, ended } from "../Store.js"
import { isEnvironmental, storeError } from "./sqlErrors.js"
import type { Files } from "./sqlFiles.js"
import type { Row, Tables } from "./sqlSchema.js"
import { compensationParams, errorColumns, errorParams, executionColumns, rowToInbox, rowToSnapshot, snapshotParams, snapshotUpdateParams, terminalList, transitionColumns, transitionParams } from "./sqlSchema.js"
import type { Backend, Op, OpResult } from "./sqlWriter.js"
import { done, fail, succeed } from "./sqlWriter.js"

/**
 * `files`: the identity of the database's files, checked before a batch is acknowledged
 * (a file removed under the process takes every later commit with it).
 */
export const make = (db: Database.Database, t: Tables, what: string, files?: Files): Backend => {
  const setColumns = executionColumns.slice(1).map((c) => `${c} = ?`).join(", ")
  const updateExecution = db.prepare(
    `UPDATE ${t.executions} SET ${setColumns} WHERE execution_id = ? AND row_version = ?`
  )
  const insertExecution = db.prepare(
    `INSERT INTO ${t.executions} (${executionColumns.join(", ")}) VALUES (${executionColumns.map(() => "?").join(", ")})
     ON CONFLICT DO NOTHING`
  )
  const byId = db.prepare(`SELECT * FROM ${t.executions} WHERE execution_id = ?`)
  const byKey = db.prepare(`SELECT * FROM ${t.executions} WHERE idempotency_key = ?`)
  const versionOf = db.prepare(`SELECT row_version FROM ${t.executions} WHERE execution_id = ?`).pluck()
  // the status check and the insert in one statement: an ended execution takes no event
  const enqueue = db.prepare(
    `INSERT INTO ${t.inbox} (execution_id, event, at)
     SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM ${t.executions} WHERE execution_id = ? AND status NOT IN (${terminalList}))`
  )
  const statusOf = db.prepare(`SELECT status FROM ${t.executions} WHERE execution_id = ?`).pluck()
  const consume = db.prepare(`DELETE FROM ${t.inbox} WHERE execution_id = ? AND seq = ?`)
  const leftOver = db.prepare(`SELECT * FROM ${t.inbox} WHERE execution_id = ? ORDER BY seq`)
  const discardAll = db.prepare(`DELETE FROM ${t.inbox} WHERE execution_id = ?`)
  const insertCompensation = db.prepare(
    `INSERT INTO ${t.compensations} (execution_id, step_seq, state, ok, at) VALUES (?, ?, ?, ?, ?)`
  )
  // one prepared single-row INSERT per row: measured faster on better-sqlite3 than
  // multi-row INSERTs (which spend more on building and binding one large parameter list)
  const insertTransition = db.prepare(
    `INSERT INTO ${t.transitions} (${transitionColumns.join(", ")}) VALUES (${transitionColumns.map(() => "?").join(", ")})`
  )
  const insertError = db.prepare(
    `INSERT INTO ${t.errors} (${errorColumns.join(", ")}) VALUES (${errorColumns.map(() => "?").join(", ")})`
  )
  const begin = db.prepare("BEGIN IMMEDIATE")
  const commit = db.prepare("COMMIT")
  const rollback = db.prepare("ROLLBACK")
  const savepoint = db.prepare("SAVEPOINT proctor_op")
  const release = db.prepare("RELEASE proctor_op")
  const rollbackTo = db.prepare("ROLLBACK TO proctor_op")

  // The execution rows read lately, until a write of that execution: an event's `send` reads
  // the row, enqueues (which leaves the row as it is), and wakes the actor, whose first run
  // reads the row again. Every write of an execution row goes through `apply` on this
  // connection (the file has one owner), and drops the row from here first.
  const recent = new Map<string, ReadonlyArray<unknown>>()
  const maxRecent = 4096

  // How many events each execution has in its inbox, for those that have any: an inbox read
  // (an event's `send` to a passivated execution checks that none is older; an actor entering
  // a wait state looks for one; a commit that ends an execution looks for events to discard)
  // is answered without a statement when the execution has none. Exact because every write of
  // the inbox goes through `apply` on this connection (the file has one owner): counted as a
  // batch writes them, and counted back when the batch (or the op, in a batch written op by
  // op) is rolled back. Off (every read asks the database) when the file holds events of too
  // many executions to keep the count of each in memory.
  const maxCounted = 100_000
  let inboxCounts: Map<string, number> | undefined = new Map()
  for (
    const r of db.prepare(
      `SELECT execution_id, COUNT(*) AS n FROM ${t.inbox} GROUP BY execution_id LIMIT ${maxCounted + 1}`
    ).all() as ReadonlyArray<Row>
  ) {
    if (inboxCounts.size >= maxCounted) {
      inboxCounts = undefined
      break
    }
    inboxCounts.set(String(r.execution_id), Number(r.n))
  }
  /** the counts changed by the batch being written, to undo if it is rolled back: execution id, rows added */
  const counted: Array<string | number> = []
  const count = (id: string, added: number) => {
    const counts = inboxCounts
    if (counts === undefined || added === 0) return
    const n = (counts.get(id) ?? 0) + added
    if (n > 0) counts.set(id, n)
    else counts.delete(id)
    if (counts.size > maxCounted) inboxCounts = undefined
  }
  const countInbox = (id: string, added: number) => {
    count(id, added)
    counted.push(id, added)
  }
  /** undoes the counts of the batch back to `mark` (its length before the op rolled back) */
  const uncount = (mark: number) => {
    for (let i = counted.length - 2; i >= mark; i -= 2) count(counted[i] as string, -(counted[i + 1] as number))
    counted.length = mark
  }
  /** false when the execution's inbox is known to be empty */
  const mayHoldEvents = (id: string) => inboxCounts === undefined || inboxCounts.has(id)

  const apply = (op: Op): OpResult => {
    switch (op._tag) {
      case "Commit": {
        const c = op.commit
        recent.delete(c.snapshot.id)
        if (updateExecution.run(snapshotUpdateParams(c.snapshot, c.expectedVersion)).changes === 0) {
          const actual = versionOf.get(c.snapshot.id) as number | undefined
          return fail(conflict("commit", c.snapshot.id, c.expectedVersion, actual))
        }
        if (c.transition !== undefined) insertTransition.run(transitionParams(c.transition))
        if (c.errors !== undefined) for (const e of c.errors) insertError.run(errorParams(e))
        if (c.consumed !== undefined) {
          const removed = consume.run(c.snapshot.id, c.consumed).changes
          if (removed > 0) countInbox(c.snapshot.id, -removed)
        }
        if (c.compensation !== undefined) insertCompensation.run(compensationParams(c.compensation))
        if (isTerminal(c.snapshot.status) && mayHoldEvents(c.snapshot.id)) {
          const rows = leftOver.all(c.snapshot.id) as ReadonlyArray<Row>
          if (rows.length > 0) {
            for (const e of discardedEvents(c.snapshot, rows.map(rowToInbox))) insertError.run(errorParams(e))
            countInbox(c.snapshot.id, -discardAll.run(c.snapshot.id).changes)
          }
        }
        return done
      }
      case "Create": {
        const s = op.snapshot
        recent.delete(s.id)
        if (insertExecution.run(snapshotParams(s)).changes === 1) {
          insertTransition.run(transitionParams(op.transition))
          return succeed({ created: true, snapshot: s })
        }
        const existing = (s.idempotencyKey === undefined ? undefined : byKey.get(s.idempotencyKey)) ?? byId.get(s.id)
        if (existing === undefined) {
          throw new StoreError({ kind: "Unknown", operation: "create", detail: `${what}: the insert of ${s.id} was refused but no row conflicts with it` })
        }
        return succeed({ created: false, snapshot: rowToSnapshot(existing as Row) })
      }
      case "Enqueue": {
        const event = op.event === undefined ? null : JSON.stringify(op.event)
        const info = enqueue.run(op.executionId, event, op.at, op.executionId)
        if (info.changes === 0) {
          const status = statusOf.get(op.executionId) as string | undefined
          return fail(
            status === undefined
              ? new StoreError({ kind: "Conflict", operation: "enqueue", detail: `execution ${op.executionId} does not exist` })
              : ended(op.executionId, status)
          )
        }
        countInbox(op.executionId, 1)
        return succeed({ executionId: op.executionId, seq: Number(info.lastInsertRowid), event: op.event, at: op.at })
      }
      case "EnqueueAll": {
        // in the batch's one transaction, which holds the write lock: every execution checked, then every event stored
        for (const { executionId } of op.entries) {
          const status = statusOf.get(executionId) as string | undefined
          if (status === undefined) return fail(new StoreError({ kind: "Conflict", operation: "enqueue", detail: `execution ${executionId} does not exist` }))
          if (isTerminal(status as Snapshot["status"])) return fail(ended(executionId, status))
        }
        return succeed(op.entries.map(({ at, event, executionId }) => {
          const info = enqueue.run(executionId, event === undefined ? null : JSON.stringify(event), at, executionId)
          countInbox(executionId, 1)
          return { executionId, seq: Number(info.lastInsertRowid), event, at }
        }))
      }
      case "AppendErrors":
        for (const e of op.entries) insertError.run(errorParams(e))
        return done
    }
  }

  const isolatedOp = (op: Op): OpResult => {
    savepoint.run()
    const mark = counted.length
    try {
      const result = apply(op)
      release.run()
      return result
    } catch (error) {
      rollbackTo.run()
      release.run()
      uncount(mark)
      const e = error instanceof StoreError ? error : storeError(operation(op), error, what)
      if (isEnvironmental(e.kind)) throw e
      return fail(e)
    }
  }

  const writeBatch = (ops: ReadonlyArray<Op>, isolated: boolean): Effect.Effect<ReadonlyArray<OpResult>, StoreError> =>
    Effect.suspend(() => {
      endRead()
      const gone = files?.lost()
      if (gone !== undefined) return Effect.fail(gone)
      try {
        begin.run()
      } catch (error) {
        return Effect.fail(storeError("commit", error, what))
      }
      try {
        const results: Array<OpResult> = new Array(ops.length)
        if (isolated) {
          for (let i = 0; i < ops.length; i++) results[i] = isolatedOp(ops[i]!)
        } else {
          for (let i = 0; i < ops.length; i++) results[i] = apply(ops[i]!)
        }
        commit.run()
        counted.length = 0
        // committed, but to a file nobody will read again? then it is not acknowledged
        const lost = files?.check()
        return lost === undefined ? Effect.succeed(results) : Effect.fail(lost)
      } catch (error) {
        uncount(0)
        if (db.inTransaction) {
          try {
            rollback.run()
          } catch {
            // SQLite already rolled the transaction back
          }
        }
        return Effect.fail(error instanceof StoreError ? error : storeError("commit", error, what))
      }
    })

  // The hot reads (an actor's row, its inbox) on this connection too: synchronous, prepared
  // once, no Effect per row. They share a read transaction that ends on the next microtask or
  // at the next batch, whichever is first: a statement outside a transaction opens and closes
  // one of its own, and on a WAL database that takes and drops a lock on the shared-memory
  // index (system calls): 11 µs of CPU per read on the development machine, 3 µs inside a
  // transaction. Recovery and a wave of wakes make two reads per execution, one after another
  // in the same turn of the event loop. Every write of this process goes through this
  // connection and ends the read transaction first, so a read never misses a commit.
  const inboxOf = db.prepare(`SELECT * FROM ${t.inbox} WHERE execution_id = ? ORDER BY seq LIMIT ?`)
  const beginRead = db.prepare("BEGIN")
  let reading = false
  const endRead = () => {
    if (!reading) return
    reading = false
    try {
      if (db.open && db.inTransaction) commit.run()
    } catch {
      // a read transaction has nothing to lose; a broken connection fails the next batch
    }
  }
  const startRead = () => {
    if (reading || db.inTransaction) return
    beginRead.run()
    reading = true
    queueMicrotask(endRead)
  }
  // An execution's row as one JSON array that SQLite makes (`json_array`), parsed here into
  // the values of `executionColumns` in their order (see `valuesToSnapshot`): better-sqlite3
  // makes each value of a raw row with a call into V8 (22 a row), and one `JSON.parse` of the
  // row costs less. 2.9-3.5 against 5.5-5.8 µs of CPU per read (W4's file of 100k rows, read
  // one at a time in a read transaction, at a load of 9), where the row object of
  // `SELECT *` cost 12-14. The values are those of a raw row: numbers, strings, nulls.
  const rowJson = `json_array(${executionColumns.join(", ")})`
  // recovery reads the executions it resumes a chunk per statement
  const chunk = 500
  const inList = (n: number) =>
    db.prepare(`SELECT ${rowJson} FROM ${t.executions} WHERE execution_id IN (${new Array(n).fill("?").join(", ")})`).pluck(true)
  const byIds = inList(chunk)
  const rowById = db.prepare(`SELECT ${rowJson} FROM ${t.executions} WHERE execution_id = ?`).pluck(true)
  const allOf = (statement: Database.Statement, ids: ReadonlyArray<string>, into: Array<ReadonlyArray<unknown>>) => {
    for (const json of statement.all(ids) as ReadonlyArray<string>) into.push(JSON.parse(json))
    return into
  }
  const reads = {
    get: (id: string) => {
      const known = recent.get(id)
      if (known !== undefined) return known
      startRead()
      const json = rowById.get(id) as string | undefined
      if (json === undefined) return undefined
      const values = JSON.parse(json) as ReadonlyArray<unknown>
      if (recent.size >= maxRecent) recent.clear()
      recent.set(id, values)
      return values
    },
    many: (ids: ReadonlyArray<string>) => {
      startRead()
      if (ids.length <= chunk) return allOf(ids.length === chunk ? byIds : inList(ids.length), ids, [])
      const rows: Array<ReadonlyArray<unknown>> = []
      for (let i = 0; i < ids.length; i += chunk) {
        const part = ids.slice(i, i + chunk)
        allOf(part.length === chunk ? byIds : inList(part.length), part, rows)
      }
      return rows
    },
    inbox: (id: string, limit: number) => {
      if (!mayHoldEvents(id)) return []
      startRead()
      return inboxOf.all(id, limit) as ReadonlyArray<Row>
    }
  }

  return { writeBatch, reads }
}

/**
 * Copies everything the write-ahead log holds into the database file (a checkpoint through
 * the log's open descriptor): for a `-wal` removed under the process. Returns why it could
 * not, if it could not.
 */
export const checkpoint = (db: Database.Database): unknown => {
  try {
    const [result] = db.pragma("wal_checkpoint(FULL)") as Array<{ busy: number; log: number; checkpointed: number }>
    return result === undefined || (result.busy === 0 && result.checkpointed === result.log)
      ? undefined
      : new Error(`another connection kept ${result.log - result.checkpointed} pages of it from being copied`)
  } catch (error) {
    return error
  }
}

const operation = (op: Op): string =>
  op._tag === "Commit" ? "commit" : op._tag === "Create" ? "create" : op._tag === "Enqueue" || op._tag === "EnqueueAll" ? "enqueue" : "appendErrors"
