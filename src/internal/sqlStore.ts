/**
 * The SQL store's body, shared by every SQL layer of `SqlStore.ts`: opens the tables
 * (checking the schema version, migrating), starts the group-commit writer, and answers the
 * Store's reads and writes on the `SqlClient` in context (SQLite or Postgres), fenced by
 * shard when `Internal.fence` says so.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Option } from "effect"
import { StoreError } from "../Errors.js"
import type { Snapshot, Status } from "../Execution.js"
import type { InboxEntry, VersionCount } from "../Store.js"
import { Store } from "../Store.js"
import * as GenericBackend from "./sqlGeneric.js"
import { classify, errorMessage, storeError, toStoreError } from "./sqlErrors.js"
import * as LockWaits from "./sqlBusy.js"
import * as Quota from "./sqlQuota.js"
import * as Fence from "./sqlFence.js"
import type { LockWait } from "./sqlBusy.js"
import type { Row, Tables } from "./sqlSchema.js"
import {
  latestMigration,
  migrations,
  rowToCompensation,
  rowToError,
  rowToInbox,
  rowToSnapshot,
  rowToTransition,
  tables,
  validPrefix,
  valuesToSnapshot
} from "./sqlSchema.js"
import type { Backend, CreateResult } from "./sqlWriter.js"
import * as Writer from "./sqlWriter.js"

/** The options of every SQL store (`SqlStore.Options`). */
export interface StoreOptions {
  readonly prefix?: string | undefined
  readonly maxBatchSize?: number | undefined
  readonly queueCapacity?: number | undefined
}

export interface Internal {
  /** how errors name the database, e.g. "the SQLite database /srv/app.db" */
  readonly what: string
  /** the writer backend, once the tables exist; the portable `@effect/sql` one when absent */
  readonly backend?: ((t: Tables) => Effect.Effect<Backend, StoreError>) | undefined
  /** how reads and writes wait while another connection holds a lock */
  readonly lockWait: LockWait
  /** reads only: no migrations, no writer (see `SqliteOptions.readOnly`) */
  readonly readOnly?: boolean | undefined
  /** commits fenced by shard epochs, recovery and timers limited to the shards held (`makeFenced`) */
  readonly fence?: Fence.Fence | undefined
}

export const makeWith = Effect.fnUntraced(function*(options: StoreOptions, internal: Internal) {
  const { lockWait, what } = internal
  const prefix = options.prefix ?? "proctor"
  if (!validPrefix(prefix)) {
    return yield* new StoreError({
      kind: "Unknown",
      operation: "open",
      detail: `the table prefix "${prefix}" is not a plain SQL name. Use letters, digits and "_", starting with a letter.`
    })
  }
  const maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 512))
  const queueCapacity = Math.max(maxBatchSize, Math.floor(options.queueCapacity ?? 4096))
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const t = tables(prefix)

  const supported = sql.onDialectOrElse({ sqlite: () => true, pg: () => true, orElse: () => false })
  if (!supported) {
    return yield* new StoreError({
      kind: "Incompatible",
      operation: "open",
      detail: `${what} is neither SQLite nor Postgres; SqlStore supports those two. Use SqlStore.layerSqlite or a PgClient layer.`
    })
  }

  const found = yield* lockWait(checkSchemaVersion(sql, t, what))
  if (internal.readOnly === true) {
    if (found !== latestMigration) return yield* unreadable(found, t, what)
  } else {
    const migrate = Migrator.make({})({ loader: migrations(t), table: t.migrations })
    // Postgres: runtimes opening an empty database together (replicas started at once) take
    // turns, in one transaction holding an advisory lock: the migrator's own check-then-create
    // of its table races, and a migrator that finds another at work skips instead of waiting
    const inTurn = sql.onDialectOrElse({
      pg: () =>
        sql.withTransaction(Effect.zipRight(
          sql`SELECT pg_advisory_xact_lock(hashtext(${`proctor migrate ${t.migrations}`}))`.pipe(
            // the migrator's own table, as it makes it: its check for it would abort this transaction
            Effect.zipRight(sql`CREATE TABLE IF NOT EXISTS ${sql(t.migrations)} (
              migration_id integer primary key, created_at timestamp with time zone not null default now(), name text not null)`)
          ),
          migrate
        )),
      orElse: () => migrate
    })
    yield* lockWait(inTurn.pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((error) =>
        storeError("migrate", error, `${what}: creating or upgrading the tables (prefix "${prefix}") failed`)
      ),
      Effect.withTracerEnabled(false)
    ))
  }

  const fence = internal.fence
  if (fence !== undefined) {
    yield* lockWait(Fence.checkShardCount(sql, t, fence.shards, what))
    yield* lockWait(Fence.assignShards(sql, t, fence.shards, what))
  }
  const backend = internal.readOnly === true
    ? undefined
    : internal.backend === undefined
    ? GenericBackend.make(sql, t, what, fence)
    : yield* internal.backend(t)
  const writer: Writer.Writer = backend === undefined
    ? { submit: (op) => Effect.fail(readOnlyWrite(op._tag, what)) }
    : yield* Writer.make(backend, { maxBatchSize, queueCapacity, lockWait })

  // Postgres may be shared by several processes: their quotas count and create as one (sqlQuota.ts)
  const createWithin = internal.readOnly === true ? undefined : sql.onDialectOrElse({ pg: () => Quota.make(sql, t, what, fence), orElse: () => undefined })

  const E = sql(t.executions)
  const read = <A>(operation: string, query: Effect.Effect<ReadonlyArray<Row>, unknown>, decode: (rows: ReadonlyArray<Row>) => A) =>
    lockWait(query.pipe(Effect.mapError(toStoreError(operation, what)))).pipe(
      Effect.flatMap((rows) => decodeRows(operation, rows, decode)),
      Effect.withTracerEnabled(false)
    )

  const corrupt = (operation: string, error: unknown) =>
    new StoreError({
      kind: "Corrupt",
      operation,
      detail: `${what}: a stored row cannot be read (${errorMessage(error)}). ` +
        `The row was changed outside proctor or damaged; restore the database from a backup.`,
      cause: error
    })
  const decodeRows = <R, A>(operation: string, rows: R, decode: (rows: R) => A) =>
    Effect.try({ try: () => decode(rows), catch: (error) => corrupt(operation, error) })
  /** a read through the backend's own synchronous statements, when it has them */
  const fastRead = backend?.reads
  /**
   * One Effect for the usual read (the rows, decoded): an actor wakes with two such reads,
   * and an event's `send` makes one. A database locked by another connection is waited for
   * as `lockWait` says.
   */
  const readNow = <R, A>(operation: string, query: () => R, decode: (rows: R) => A) =>
    Effect.suspend(() => {
      let rows: R
      try {
        rows = query()
      } catch (error) {
        const e = storeError(operation, error, what)
        if (!LockWaits.isBusy(e)) return Effect.fail(e)
        const again = Effect.try({ try: query, catch: (error) => storeError(operation, error, what) })
        return Effect.flatMap(lockWait(again), (rows) => decodeRows(operation, rows, decode))
      }
      try {
        return Effect.succeed(decode(rows))
      } catch (error) {
        return Effect.fail(corrupt(operation, error))
      }
    })
  // a fenced store recovers and fires the timers of the executions of its shards only
  const heldShards = (): ReadonlyArray<number> | undefined => fence === undefined ? undefined : [...fence.epochs.keys()]
  const inHeld = (held: ReadonlyArray<number> | undefined) => held === undefined ? sql`` : sql`AND ${sql.in("shard", held)}`
  const getDecode = (rows: ReadonlyArray<Row>) => Option.map(Option.fromNullable(rows[0]), rowToSnapshot)
  const inboxDecode = (rows: ReadonlyArray<Row>) => rows.map(rowToInbox)
  const manyDecode = (rows: ReadonlyArray<Row>): ReadonlyArray<Snapshot> => rows.map(rowToSnapshot)
  const getValuesDecode = (values: ReadonlyArray<unknown> | undefined) => values === undefined ? Option.none() : Option.some(valuesToSnapshot(values))
  const manyValuesDecode = (rows: ReadonlyArray<ReadonlyArray<unknown>>): ReadonlyArray<Snapshot> => rows.map(valuesToSnapshot)

  return Store.of({
    create: (snapshot, transition) =>
      writer.submit({ _tag: "Create", snapshot, transition }) as Effect.Effect<CreateResult, StoreError>,
    ...(createWithin === undefined ? {} : { createWithin }),
    // a commit's result is `undefined` (the writer's `done`): no `asVoid` step on the hot path
    commit: (commit) => writer.submit({ _tag: "Commit", commit }) as Effect.Effect<void, StoreError>,
    get: (id) =>
      fastRead !== undefined
        ? readNow("get", () => fastRead.get(id), getValuesDecode)
        : read("get", sql<Row>`SELECT * FROM ${E} WHERE execution_id = ${id}`, getDecode),
    getMany: (ids) =>
      fastRead !== undefined
        ? readNow("getMany", () => fastRead.many(ids), manyValuesDecode)
        : Effect.map(
          Effect.forEach(chunks(ids, 500), (part) =>
            read("getMany", sql<Row>`SELECT * FROM ${E} WHERE ${sql.in("execution_id", part)}`, manyDecode)),
          (parts) => parts.flat()
        ),
    list: (filter) => {
      const where = []
      if (filter.status !== undefined) {
        where.push(sql.in("status", typeof filter.status === "string" ? [filter.status] : filter.status))
      }
      if (filter.procedure !== undefined) where.push(sql`procedure_name = ${filter.procedure}`)
      if (filter.state !== undefined) where.push(sql`current_state = ${filter.state}`)
      if (filter.tenant !== undefined) where.push(sql`tenant = ${filter.tenant}`)
      if (filter.parentId !== undefined) where.push(sql`parent_id = ${filter.parentId}`)
      const limit = Math.max(0, Math.floor(filter.limit ?? 100))
      const offset = Math.max(0, Math.floor(filter.offset ?? 0))
      return read(
        "list",
        sql<Row>`SELECT * FROM ${E} WHERE ${sql.and(where)}
          ORDER BY started_at, execution_id LIMIT ${limit} OFFSET ${offset}`,
        (rows): ReadonlyArray<Snapshot> => rows.map(rowToSnapshot)
      )
    },
    countByVersion: (query) => {
      const where = []
      if (query?.procedure !== undefined) where.push(sql`procedure_name = ${query.procedure}`)
      if (query?.startedSince !== undefined) where.push(sql`started_at >= ${query.startedSince}`)
      return read(
        "countByVersion",
        sql<Row>`SELECT procedure_name, procedure_version, status, COUNT(*) AS n FROM ${E} WHERE ${sql.and(where)}
          GROUP BY procedure_name, procedure_version, status`,
        (rows): ReadonlyArray<VersionCount> =>
          rows.map((r) => ({
            procedure: String(r.procedure_name),
            version: Number(r.procedure_version),
            status: String(r.status) as Status,
            count: Number(r.n)
          }))
      )
    },
    history: (id, options) =>
      options?.tail === undefined
        ? read("history", sql<Row>`SELECT * FROM ${sql(t.transitions)} WHERE execution_id = ${id} ORDER BY seq`, (rows) =>
          rows.map(rowToTransition))
        : read(
          "history",
          sql<Row>`SELECT * FROM ${sql(t.transitions)} WHERE execution_id = ${id}
            ORDER BY seq DESC LIMIT ${Math.max(0, Math.floor(options.tail))}`,
          (rows) => rows.map(rowToTransition).reverse()
        ),
    errors: (id) =>
      read("errors", sql<Row>`SELECT * FROM ${sql(t.errors)} WHERE execution_id = ${id} ORDER BY id`, (rows) =>
        rows.map(rowToError)),
    appendErrors: (entries) =>
      entries.length === 0 ? Effect.void : Effect.asVoid(writer.submit({ _tag: "AppendErrors", entries })),
    enqueue: (executionId, event, at) =>
      writer.submit({ _tag: "Enqueue", executionId, event, at }) as Effect.Effect<InboxEntry, StoreError>,
    enqueueAll: (entries) => writer.submit({ _tag: "EnqueueAll", entries }) as Effect.Effect<ReadonlyArray<InboxEntry>, StoreError>,
    inbox: (executionId, limit) =>
      fastRead !== undefined
        ? readNow("inbox", () => fastRead.inbox(executionId, Math.max(0, Math.floor(limit))), inboxDecode)
        : read(
          "inbox",
          sql<Row>`SELECT * FROM ${sql(t.inbox)} WHERE execution_id = ${executionId}
            ORDER BY seq LIMIT ${Math.max(0, Math.floor(limit))}`,
          inboxDecode
        ),
    compensations: (executionId) =>
      read(
        "compensations",
        // in the order they finished: compensations run from the last step back
        sql<Row>`SELECT * FROM ${sql(t.compensations)} WHERE execution_id = ${executionId} ORDER BY at, step_seq DESC`,
        (rows) => rows.map(rowToCompensation)
      ),
    active: () => {
      const held = heldShards()
      return held === undefined || held.length > 0
        ? read(
          "active",
          sql<Row>`SELECT execution_id FROM ${E} e WHERE (status IN ('running', 'compensating')
            OR (status = 'waiting' AND EXISTS (SELECT 1 FROM ${sql(t.inbox)} i WHERE i.execution_id = e.execution_id)))
            ${inHeld(held)} ORDER BY started_at, execution_id`,
          (rows) => rows.map((r) => String(r.execution_id))
        )
        : Effect.succeed([])
    },
    activePage: ({ after, limit }) => {
      const held = heldShards()
      return held === undefined || held.length > 0
        ? read(
          "activePage",
          sql<Row>`SELECT execution_id, started_at FROM ${E} e WHERE (status IN ('running', 'compensating')
            OR (status = 'waiting' AND EXISTS (SELECT 1 FROM ${sql(t.inbox)} i WHERE i.execution_id = e.execution_id)))
            ${after === undefined ? sql`` : sql`AND (started_at > ${after.startedAt} OR (started_at = ${after.startedAt} AND execution_id > ${after.id}))`}
            ${inHeld(held)} ORDER BY started_at, execution_id LIMIT ${Math.max(0, Math.floor(limit))}`,
          (rows) => rows.map((r) => ({ id: String(r.execution_id), startedAt: Number(r.started_at) }))
        )
        : Effect.succeed([])
    },
    dueTimers: ({ after, limit, until }) => {
      const held = heldShards()
      return held === undefined || held.length > 0
        ? read(
          "dueTimers",
          after === undefined
            ? sql<Row>`SELECT execution_id, timer_due_at FROM ${E} WHERE status = 'waiting' AND timer_due_at <= ${until}
                ${inHeld(held)} ORDER BY timer_due_at, execution_id LIMIT ${Math.max(0, Math.floor(limit))}`
            : sql<Row>`SELECT execution_id, timer_due_at FROM ${E} WHERE status = 'waiting' AND timer_due_at <= ${until}
                AND (timer_due_at > ${after.dueAt} OR (timer_due_at = ${after.dueAt} AND execution_id > ${after.id}))
                ${inHeld(held)} ORDER BY timer_due_at, execution_id LIMIT ${Math.max(0, Math.floor(limit))}`,
          (rows) => rows.map((r) => ({ id: String(r.execution_id), dueAt: Number(r.timer_due_at) }))
        )
        : Effect.succeed([])
    },
    prune: ({ before, keepLast }) => {
      if (internal.readOnly === true) return Effect.fail(readOnlyWrite("prune", what))
      const T = sql(t.transitions)
      const ended = sql`SELECT execution_id FROM ${E} WHERE status IN ('succeeded', 'failed', 'cancelled', 'rolled_back')`
      const byCount = keepLast === undefined ? Effect.succeed(0) : Effect.map(
        sql`DELETE FROM ${T} WHERE execution_id IN (${ended})
          AND seq <= (SELECT e.seq FROM ${E} e WHERE e.execution_id = ${T}.execution_id) - ${Math.max(0, Math.floor(keepLast))}`.raw,
        changes
      )
      const byAge = before === undefined ? Effect.succeed(0) : Effect.map(
        sql`DELETE FROM ${T} WHERE execution_id IN (${ended}) AND at < ${before}`.raw,
        changes
      )
      return lockWait(Effect.zipWith(byCount, byAge, (a, b) => a + b).pipe(Effect.mapError(toStoreError("prune", what))))
    }
  })
})

const readOnlyWrite = (operation: string, what: string) =>
  new StoreError({
    kind: "ReadOnly",
    operation: operation.charAt(0).toLowerCase() + operation.slice(1),
    detail: `${what} was opened read-only (readOnly: true); open it without readOnly to write`
  })

/** A read-only store cannot create or upgrade tables: it reads only a database at this version. */
const unreadable = (found: number, t: Tables, what: string) =>
  Effect.fail(
    new StoreError({
      kind: "Incompatible",
      operation: "open",
      detail: found === 0
        ? `${what} holds no proctor tables (no ${t.migrations} table): it is not a proctor database, or it was never opened by one`
        : `${what} is at schema migration ${found}, this version reads ${latestMigration}: ` +
          `open it once with a runtime (which upgrades it), then read it`
    })
  )

const chunks = <A>(all: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < all.length; i += size) out.push(all.slice(i, i + size))
  return out
}

/** rows a DELETE removed, from the raw result of either driver */
const changes = (raw: unknown): number => {
  const r = raw as { changes?: unknown; rowCount?: unknown } | null
  return Number(r?.changes ?? r?.rowCount ?? 0)
}

/**
 * A database whose migrations table names a migration this version does not know was
 * written by a newer proctor: refuse it rather than write rows it may misread. Returns the
 * migration the database is at (0 for a new one).
 */
const checkSchemaVersion = (sql: SqlClient.SqlClient, t: Tables, what: string) =>
  sql<Row>`SELECT MAX(migration_id) AS id FROM ${sql(t.migrations)}`.pipe(
    Effect.map((rows) => Number(rows[0]?.id ?? 0)),
    Effect.catchAll((error) => {
      const kind = classify(error)
      // no migrations table yet: a new database
      return kind === "Unknown" ? Effect.succeed(0) : Effect.fail(storeError("open", error, what, kind))
    }),
    Effect.flatMap((found) =>
      found > latestMigration
        ? Effect.fail(
          new StoreError({
            kind: "Incompatible",
            operation: "open",
            detail: `${what} was written by a newer version of proctor: its schema is at migration ${found} ` +
              `(table ${t.migrations}), this version knows migrations up to ${latestMigration}. ` +
              `Upgrade proctor, or point the store at another database.`
          })
        )
        : Effect.succeed(found)
    ),
    Effect.withTracerEnabled(false)
  )
