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
import * as SqlClient from "@effect/sql/SqlClient"
import type { Scope } from "effect"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StoreError } from "./Errors.js"
import { storeError, toStoreError } from "./internal/sqlErrors.js"
import * as LockWaits from "./internal/sqlBusy.js"
import * as Fence from "./internal/sqlFence.js"
import * as Lock from "./internal/sqlLock.js"
import { tables } from "./internal/sqlSchema.js"
import * as SqliteBackend from "./internal/sqlSqlite.js"
import { canonical, makeFolder, openClient, openWriter } from "./internal/sqliteOpen.js"
import { makeWith } from "./internal/sqlStore.js"
import * as Files from "./internal/sqlFiles.js"
import type { StoreService } from "./Store.js"
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

/**
 * Builds a store on the `SqlClient` in context (SQLite or Postgres): runs the migrations,
 * then starts the group-commit writer in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<StoreService, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  makeWith(options ?? {}, { what: "the SQL database", lockWait: LockWaits.make("the SQL database", defaultBusyTimeout) })

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
  /**
   * Where the leases on shards are kept, when a claim must hold one: a table with a row per
   * shard (`shard_id` `default:<n>`, `address` the holder), as @effect/cluster's
   * `SqlRunnerStorage` keeps its shard locks. A claim then takes only the shards whose lease
   * row names the claimer, checked in the same statement (the row share-locked, on Postgres).
   * `Cluster.layer` sets it to its cluster's locks table. Unset: a claim takes any shard.
   */
  readonly leases?: { readonly table: string } | undefined
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
   * has given it to this runtime. With `leases`, a shard whose lease is not `owner`'s fails
   * with a `Fenced` `StoreError`.
   */
  readonly claim: (shard: number, owner: string) => Effect.Effect<number, StoreError>
  /**
   * `claim` of several shards in one statement (a runtime that takes over a dead one's
   * shards takes them all in one round trip); returns each shard's new epoch. With `leases`,
   * the shards whose lease is not `owner`'s are not taken and not in the result.
   */
  readonly claimAll: (shards: ReadonlyArray<number>, owner: string) => Effect.Effect<ReadonlyMap<number, number>, StoreError>
  /** Gives the shard up: this store refuses its executions' commits from now on (`Fenced`). */
  readonly release: (shard: number) => Effect.Effect<void>
  /**
   * the shards held, and the epoch each was claimed at; a shard another store has claimed
   * since leaves it at the first commit it refuses (claim it again if it is this runtime's again)
   */
  readonly held: Effect.Effect<ReadonlyMap<number, number>>
  /**
   * Reads the epochs of the shards held from the database and gives up each one another
   * store has claimed since; returns those. A runtime that commits nothing of such a shard
   * (its executions wait in memory) learns it here rather than at a refused commit.
   */
  readonly verify: Effect.Effect<ReadonlyArray<number>, StoreError>
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
    const claimAll = (claimed: ReadonlyArray<number>, owner: string) =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((now) => Fence.claimAll(sql, t, claimed, owner, now, options.leases)),
        Effect.tap((epochs) => Effect.sync(() => epochs.forEach((epoch, shard) => fence.epochs.set(shard, epoch)))),
        Effect.mapError(toStoreError("claim", what)),
        Effect.withTracerEnabled(false)
      )
    return {
      store: { ...store, holds: (id) => fence.epochs.has(shardOf(id)) },
      shards: Shards.of({
        count,
        shardOf,
        claim: (shard, owner) =>
          Effect.flatMap(claimAll([shard], owner), (epochs) => {
            const epoch = epochs.get(shard)
            return epoch === undefined ? Effect.fail(Fence.notLeased(shard, owner, options.leases?.table)) : Effect.succeed(epoch)
          }),
        claimAll,
        release: (shard) => Effect.sync(() => void fence.epochs.delete(shard)),
        held: Effect.sync(() => new Map(fence.epochs)),
        verify: Effect.suspend(() => {
          if (fence.epochs.size === 0) return Effect.succeed([])
          return sql<{ shard: number; epoch: number }>`SELECT shard, epoch FROM ${sql(t.shards)} WHERE ${sql.in("shard", [...fence.epochs.keys()])}`.pipe(
            Effect.map((rows) => {
              const lost: Array<number> = []
              for (const row of rows) {
                const shard = Number(row.shard)
                const held = fence.epochs.get(shard)
                // epochs only grow: a claim at an older one can never be current again
                if (held !== undefined && Number(row.epoch) !== held) {
                  fence.epochs.delete(shard)
                  lost.push(shard)
                }
              }
              return lost
            }),
            Effect.mapError(toStoreError("claim", what)),
            Effect.withTracerEnabled(false)
          )
        })
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
 * The embedded default: a store on one SQLite file (WAL journal, `synchronous=NORMAL` unless
 * asked for `FULL`, a busy timeout). Only one store may have the file open at a time: a
 * second one, in this process or another, fails with a `Locked` `StoreError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeSqlite(options)).pipe(Layer.provide(Reactivity.layer))
