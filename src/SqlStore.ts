/**
 * The SQL store: persists executions, their history, error log, inbox and finished
 * compensations through `@effect/sql`, on SQLite (the embedded default) or Postgres.
 * Every write goes through one writer fiber that group-commits: the writes queued
 * while a transaction runs go together in the next one, and each caller returns once
 * its own write has committed.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Runtime, SqlStore } from "proctor"
 *
 * const layer = Runtime.layer({ procedures: [] }).pipe(
 *   Layer.provide(SqlStore.layerSqlite({ filename: "data/proctor.db" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import Database from "better-sqlite3"
import type { Scope } from "effect"
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StoreError } from "./Errors.js"
import type { Snapshot } from "./Execution.js"
import * as GenericBackend from "./internal/sqlGeneric.js"
import { classify, errorMessage, storeError, toStoreError } from "./internal/sqlErrors.js"
import * as LockWaits from "./internal/sqlBusy.js"
import * as Files from "./internal/sqlFiles.js"
import * as Fence from "./internal/sqlFence.js"
import type { LockWait } from "./internal/sqlBusy.js"
import * as Lock from "./internal/sqlLock.js"
import type { Row, Tables } from "./internal/sqlSchema.js"
import {
  latestMigration,
  migrations,
  rowToCompensation,
  rowToError,
  rowToInbox,
  rowToSnapshot,
  rowToTransition,
  tables,
  validPrefix
} from "./internal/sqlSchema.js"
import * as SqliteBackend from "./internal/sqlSqlite.js"
import type { Backend, CreateResult } from "./internal/sqlWriter.js"
import * as Writer from "./internal/sqlWriter.js"
import type { InboxEntry, StoreService } from "./Store.js"
import { Store } from "./Store.js"

/**
 * Options of every SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Tables are named `<prefix>_executions`, `<prefix>_transitions`... (letters, digits, `_`).
   * @default "proctor"
   */
  readonly prefix?: string | undefined
  /**
   * The most writes (transitions, creates, events) one group-commit transaction takes.
   * @default 512
   */
  readonly maxBatchSize?: number | undefined
  /**
   * How many writes may wait for the writer; past that, callers wait for room (back-pressure).
   * @default 4096
   */
  readonly queueCapacity?: number | undefined
}

/**
 * Options of the SQLite store.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions extends Options {
  /** The database file; its folder is created if missing. `":memory:"` keeps it in memory (tests). */
  readonly filename: string
  /**
   * `"NORMAL"`: a commit survives a crash of the process but the last commits before a power
   * loss or OS crash may be lost (never corrupted). `"FULL"`: a commit also survives power
   * loss, at the cost of one fsync per group commit.
   * @default "NORMAL"
   */
  readonly synchronous?: "NORMAL" | "FULL" | undefined
  /**
   * How long a read or write waits for another connection's lock (an outside tool, a backup)
   * before it fails with `Unavailable`. The wait does not block the event loop: the store
   * tries again on a backoff (at most 1 second between tries) while the rest of the process runs.
   * @default "5 seconds"
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * Opens an existing database for reading only, without taking its one-owner lock: the
   * reads (`get`, `list`, `history`, `errors`...) work while another process owns the file
   * (WAL lets a reader in beside the writer). Nothing is created or migrated; every write
   * fails with a `ReadOnly` `StoreError`. For tools that inspect a running application's
   * database, such as `proctor list`.
   * @default false
   */
  readonly readOnly?: boolean | undefined
}

const defaultBusyTimeout: Duration.DurationInput = "5 seconds"

interface Internal {
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

/**
 * Builds a store on the `SqlClient` in context (SQLite or Postgres): runs the migrations,
 * then starts the group-commit writer in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<StoreService, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  makeWith(options ?? {}, { what: "the SQL database", lockWait: LockWaits.make("the SQL database", defaultBusyTimeout) })

const makeWith = Effect.fnUntraced(function*(options: Options, internal: Internal) {
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
    yield* lockWait(Migrator.make({})({ loader: migrations(t), table: t.migrations }).pipe(
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
  const decodeRows = <A>(operation: string, rows: ReadonlyArray<Row>, decode: (rows: ReadonlyArray<Row>) => A) =>
    Effect.try({ try: () => decode(rows), catch: (error) => corrupt(operation, error) })
  /** a read through the backend's own synchronous statements, when it has them */
  const fastRead = backend?.reads
  /**
   * One Effect for the usual read (the rows, decoded): an actor wakes with two such reads,
   * and an event's `send` makes one. A database locked by another connection is waited for
   * as `lockWait` says.
   */
  const readNow = <A>(operation: string, query: () => ReadonlyArray<Row>, decode: (rows: ReadonlyArray<Row>) => A) =>
    Effect.suspend(() => {
      let rows: ReadonlyArray<Row>
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

  return Store.of({
    create: (snapshot, transition) =>
      writer.submit({ _tag: "Create", snapshot, transition }) as Effect.Effect<CreateResult, StoreError>,
    // a commit's result is `undefined` (the writer's `done`): no `asVoid` step on the hot path
    commit: (commit) => writer.submit({ _tag: "Commit", commit }) as Effect.Effect<void, StoreError>,
    get: (id) =>
      fastRead !== undefined
        ? readNow("get", () => {
          const row = fastRead.get(id)
          return row === undefined ? [] : [row]
        }, getDecode)
        : read("get", sql<Row>`SELECT * FROM ${E} WHERE execution_id = ${id}`, getDecode),
    getMany: (ids) =>
      fastRead !== undefined
        ? readNow("getMany", () => fastRead.many(ids), manyDecode)
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

/**
 * The store as a layer, on the `SqlClient` the app provides (for example
 * `PgClient.layer` from `@effect/sql-pg` for Postgres).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Store, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(Store, make(options))

/**
 * Options of a fenced store: several runtimes share one database (Postgres), each running
 * the executions of the shards it holds (see docs/scale-out.md).
 *
 * @since 0.1.0
 * @category models
 */
export interface FencedOptions extends Options {
  /**
   * How many shards executions are spread over (by a hash of their id). Every runtime on the
   * database must use the same count (the first fenced store records it; another count fails
   * with `Incompatible`), and @effect/cluster's `shardsPerGroup` must equal it.
   */
  readonly shards: number
  /**
   * Postgres: a transaction of this store that waits longer than this on the process (one
   * paused or stuck in the middle of a group commit) is ended by Postgres, which releases its
   * locks; otherwise they stay until the process continues, and the runtime that takes its
   * shards waits for them. `Cluster.layer` sets it to the lease. Unset: Postgres's own setting.
   */
  readonly idleTransactionTimeout?: Duration.DurationInput | undefined
}

/**
 * The shards of a fenced store. A store commits an execution only while it holds the
 * execution's shard, with the shard's epoch checked in the same statement as the row
 * version: once another store has claimed the shard, this one's commits fail with a
 * `Fenced` `StoreError` and write nothing. Recovery (`active`) and timers (`dueTimers`)
 * see only the executions of the shards held.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShardsService {
  readonly count: number
  /** the shard of an execution, 1..count (the shard @effect/cluster gives an entity of that id) */
  readonly shardOf: (executionId: string) => number
  /**
   * Takes the shard for `owner` (a name for operators): bumps its epoch, which fences out
   * whoever held it before, and returns the new epoch. Claim a shard only once the cluster
   * has given it to this runtime.
   */
  readonly claim: (shard: number, owner: string) => Effect.Effect<number, StoreError>
  /** Gives the shard up: this store refuses its executions' commits from now on (`Fenced`). */
  readonly release: (shard: number) => Effect.Effect<void>
  /** the shards held, and the epoch each was claimed at */
  readonly held: Effect.Effect<ReadonlyMap<number, number>>
}

/**
 * The shards of the fenced store in context.
 *
 * @since 0.1.0
 * @category tags
 */
export class Shards extends Context.Tag("proctor/SqlStore/Shards")<Shards, ShardsService>() {}

/**
 * Builds a fenced store on the `SqlClient` in context: the store of `make`, whose commits are
 * fenced by shard (see `ShardsService`). It holds no shard until one is claimed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFenced = (
  options: FencedOptions
): Effect.Effect<{ readonly store: StoreService; readonly shards: ShardsService }, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const what = "the SQL database"
    const count = Math.floor(options.shards)
    if (!(count >= 1)) {
      return yield* new StoreError({ kind: "Unknown", operation: "open", detail: `shards must be a whole number of at least 1, got ${options.shards}` })
    }
    const idle = options.idleTransactionTimeout
    const fence: Fence.Fence = {
      shards: count,
      epochs: new Map(),
      idleInTransactionMillis: idle === undefined ? undefined : Duration.toMillis(idle)
    }
    const store = yield* makeWith(options, { what, lockWait: LockWaits.make(what, defaultBusyTimeout), fence })
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const t = tables(options.prefix ?? "proctor")
    const shardOf = (id: string) => Fence.shardOf(id, count)
    return {
      store,
      shards: Shards.of({
        count,
        shardOf,
        claim: (shard, owner) =>
          Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) => Fence.claim(sql, t, shard, owner, now)),
            Effect.tap((epoch) => Effect.sync(() => fence.epochs.set(shard, epoch))),
            Effect.mapError(toStoreError("claim", what)),
            Effect.withTracerEnabled(false)
          ),
        release: (shard) => Effect.sync(() => void fence.epochs.delete(shard)),
        held: Effect.sync(() => new Map(fence.epochs))
      })
    }
  })

/**
 * A fenced store and its shards as a layer, on the `SqlClient` the app provides. `Cluster.layer`
 * builds one; use it directly only to drive the shards yourself.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFenced = (options: FencedOptions): Layer.Layer<Store | Shards, StoreError, SqlClient.SqlClient> =>
  Layer.scopedContext(Effect.map(makeFenced(options), ({ shards, store }) => Context.make(Store, store).pipe(Context.add(Shards, shards))))

/**
 * Builds the SQLite store on a file (see `layerSqlite`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSqlite = (options: SqliteOptions): Effect.Effect<StoreService, StoreError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const busyTimeout = options.busyTimeout ?? defaultBusyTimeout
    const synchronous = options.synchronous ?? "NORMAL"
    if (options.filename === ":memory:") {
      const what = "the in-memory SQLite database"
      const client = yield* openClient(":memory:", what, synchronous)
      return yield* makeWith(options, { what, lockWait: LockWaits.make(what, busyTimeout) }).pipe(
        Effect.provideService(SqlClient.SqlClient, client)
      )
    }
    const file = path.resolve(options.filename)
    const what = `the SQLite database ${file}`
    if (options.readOnly === true) {
      if (!fs.existsSync(file)) {
        return yield* new StoreError({
          kind: "Unavailable",
          operation: "open",
          detail: `${what} does not exist (a read-only store creates nothing); check the path`
        })
      }
      const client = yield* openClient(file, what, synchronous, true)
      return yield* makeWith(options, { what, lockWait: LockWaits.make(what, busyTimeout), readOnly: true }).pipe(
        Effect.provideService(SqlClient.SqlClient, client)
      )
    }
    yield* Effect.try({
      try: () => makeFolder(path.dirname(file)),
      catch: (error) => storeError("open", error, `${what}: cannot create its folder ${path.dirname(file)}`)
    })
    // one lock per file, however it is named (symlinks, relative paths)
    const real = canonical(file)
    yield* Lock.acquire(real)
    const lockWait = LockWaits.make(what, busyTimeout)
    const db = yield* Effect.acquireRelease(lockWait(openWriter(file, what, synchronous)), (db) => Effect.sync(() => db.close()))
    // taken once the file and its -wal exist (opening the writer wrote to both)
    const files = Files.watch(real, () => SqliteBackend.checkpoint(db))
    const client = yield* openClient(file, what, synchronous)
    return yield* makeWith(options, {
      what,
      lockWait,
      backend: (t) =>
        Effect.try({
          try: () => SqliteBackend.make(db, t, what, files),
          catch: (error) => storeError("open", error, what)
        })
    }).pipe(Effect.provideService(SqlClient.SqlClient, client))
  })

/**
 * `mkdir -p`, one level at a time: Node's own recursive `mkdirSync` never returns for a
 * folder that cannot exist under a virtual file system (`/proc/nope` loops in Node 20 and 22).
 */
const makeFolder = (dir: string): void => {
  if (fs.existsSync(dir)) return
  const parent = path.dirname(dir)
  if (parent !== dir) makeFolder(parent)
  try {
    fs.mkdirSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
  }
}

const canonical = (file: string): string => {
  try {
    return fs.realpathSync(file)
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(file)), path.basename(file))
    } catch {
      return file
    }
  }
}

/**
 * The writes' own connection: WAL, `synchronous` as asked, and a probe that the file is a
 * database this process can read and write (so a damaged or read-only file fails here,
 * with its name, instead of at the first transition).
 */
const openWriter = (file: string, what: string, synchronous: "NORMAL" | "FULL") =>
  Effect.try({
    try: () => {
      const db = new Database(file, { timeout: LockWaits.busyPollMillis })
      try {
        db.pragma("journal_mode = WAL")
        db.pragma(`synchronous = ${synchronous}`)
        // a batch touches one history page per execution it moves: a large page cache and
        // fewer, bigger checkpoints (about 40 MB of WAL) keep that from being written out
        // and synced every few batches
        db.pragma("cache_size = -65536")
        db.pragma("wal_autocheckpoint = 10000")
        db.pragma("journal_size_limit = 67108864")
        db.prepare("SELECT count(*) FROM sqlite_master").get()
        db.exec("BEGIN IMMEDIATE")
        try {
          db.pragma(`user_version = ${Number(db.pragma("user_version", { simple: true }))}`)
          db.exec("COMMIT")
        } finally {
          if (db.inTransaction) db.exec("ROLLBACK")
        }
        return db
      } catch (error) {
        db.close()
        throw error
      }
    },
    catch: (error) => storeError("open", error, what)
  })

/** The `@effect/sql` client on the same file, used for migrations and reads. */
const openClient = (filename: string, what: string, synchronous: "NORMAL" | "FULL", readOnly = false) =>
  Effect.gen(function*() {
    // read-only: no journal-mode change (a write); a WAL file is read as WAL anyway
    const client = yield* SqliteClient.make(readOnly ? { filename, readonly: true, disableWAL: true } : { filename })
    yield* client.unsafe(`PRAGMA busy_timeout = ${LockWaits.busyPollMillis}`)
    if (!readOnly) yield* client.unsafe(`PRAGMA synchronous = ${synchronous}`)
    return client as SqlClient.SqlClient
  }).pipe(
    // the client opens the file outside its error channel: a damaged file is a defect there
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.mapError((error) => storeError("open", error, what))
  )

/**
 * The embedded default: a store on one SQLite file (WAL journal, `synchronous=NORMAL` unless
 * asked for `FULL`, a busy timeout). Only one store may have the file open at a time: a
 * second one, in this process or another, fails with a `Locked` `StoreError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeSqlite(options)).pipe(Layer.provide(Reactivity.layer))
