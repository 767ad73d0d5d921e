/**
 * Fencing, for several runtimes sharing one SQL store (docs/scale-out.md). Executions are
 * spread over N shards by a hash of their id (the hash @effect/cluster uses for an entity's
 * shard). A runtime takes a shard by bumping the shard's epoch in `<prefix>_shards` (a
 * fencing token, as Temporal's shard `range_id`), and commits an execution only with the
 * epoch it holds for the execution's shard, checked in the same UPDATE as the row version:
 * once another runtime has taken the shard, the commits of the one that lost it (paused
 * past its lease, partitioned) are refused with a `Fenced` `StoreError`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Hash } from "effect"
import { StoreError } from "../Errors.js"
import type { Row, Tables } from "./sqlSchema.js"
import { fencedCommits } from "./metrics.js"
import { storeError, toStoreError } from "./sqlErrors.js"

/** The shard of an execution, 1..shards: the same as @effect/cluster's `getShardId` for an entity of that id. */
export const shardOf = (executionId: string, shards: number): number => Math.abs(Hash.string(executionId) % shards) + 1

/** The shards this process holds, and the epoch it took each at. */
export interface Fence {
  readonly shards: number
  readonly epochs: Map<number, number>
  /** Postgres ends a batch's transaction that waits this long on the process (one paused mid-batch) */
  readonly idleInTransactionMillis?: number | undefined
}

/** A commit of an execution whose shard this process does not hold (never took it, or gave it up); counted in `proctor_fenced_commits`. */
export const notHeld = (executionId: string, shard: number) => {
  fencedCommits.unsafeUpdate(1, [])
  return new StoreError({
    kind: "Fenced",
    operation: "commit",
    detail: `execution ${executionId} is in shard ${shard}, which this runtime does not own: ` +
      `the runtime that owns the shard runs it. Send commands to that one, or through the cluster.`
  })
}

/** A commit refused because another runtime took the shard after this one did; counted in `proctor_fenced_commits`. */
export const fenced = (executionId: string, shard: number, held: number, current: Row | undefined) => {
  fencedCommits.unsafeUpdate(1, [])
  return new StoreError({
    kind: "Fenced",
    operation: "commit",
    detail: `execution ${executionId} is in shard ${shard}, which ${
      current?.owner == null ? "another runtime" : `runtime ${String(current.owner)}`
    } took over (epoch ${current === undefined ? "?" : String(current.epoch)}, this runtime held epoch ${held}): ` +
      `this runtime lost the shard (paused or cut off past its lease) and must not write it. ` +
      `Nothing was written; the execution carries on in the runtime that owns the shard.`
  })
}

/** A claim of a shard whose lease (`Leases`) is not the claimer's. */
export const notLeased = (shard: number, owner: string, table: string | undefined) =>
  new StoreError({
    kind: "Fenced",
    operation: "claim",
    detail: `shard ${shard} is not leased to ${owner} in ${table ?? "the leases table"} (another runner took its lease, or none holds it): ` +
      `nothing was claimed. Claim a shard only while the cluster gives it to this runtime.`
  })

/** `row` in the `Fenced` error: the shard's current epoch and owner */
export const currentEpoch = (sql: SqlClient.SqlClient, t: Tables, shard: number) =>
  Effect.map(sql<Row>`SELECT epoch, owner FROM ${sql(t.shards)} WHERE shard = ${shard}`, (rows) => rows[0])

/** The shard row that holds the shard count the store's executions are spread over. */
const countRow = 0

/**
 * Checks (and on a new database records) how many shards the executions are spread over:
 * a stored execution's shard is computed with that count, so every runtime must use it.
 */
export const checkShardCount = (sql: SqlClient.SqlClient, t: Tables, shards: number, what: string) =>
  Effect.gen(function*() {
    yield* sql`INSERT INTO ${sql(t.shards)} (shard, epoch, owner) VALUES (${countRow}, ${shards}, 'shard count')
      ON CONFLICT (shard) DO NOTHING`
    const rows = yield* sql<Row>`SELECT epoch FROM ${sql(t.shards)} WHERE shard = ${countRow}`
    const stored = Number(rows[0]?.epoch)
    if (stored !== shards) {
      return yield* new StoreError({
        kind: "Incompatible",
        operation: "open",
        detail: `${what} spreads its executions over ${stored} shards; this store was opened with shards: ${shards}. ` +
          `Every runtime on one database must use the same count: open it with shards: ${stored}.`
      })
    }
  }).pipe(Effect.mapError((error) => error instanceof StoreError ? error : storeError("open", error, what)))

/** Gives each execution no fenced store wrote (an older or unfenced store's rows) its shard. */
export const assignShards = (sql: SqlClient.SqlClient, t: Tables, shards: number, what: string) =>
  Effect.gen(function*() {
    while (true) {
      const rows = yield* sql<Row>`SELECT execution_id FROM ${sql(t.executions)} WHERE shard IS NULL LIMIT 1000`
      if (rows.length === 0) return
      yield* sql.withTransaction(Effect.forEach(rows, (row) => {
        const id = String(row.execution_id)
        return sql`UPDATE ${sql(t.executions)} SET shard = ${shardOf(id, shards)} WHERE execution_id = ${id}`
      }, { discard: true }))
    }
  }).pipe(Effect.mapError(toStoreError("open", what)))

/**
 * Where the leases on shards are kept, for a claim that must hold one (`Cluster.layer`: the
 * locks table of @effect/cluster's `SqlRunnerStorage`, one row per shard, `shard_id`
 * `default:<n>`, `address` the runner holding it).
 */
export interface Leases {
  readonly table: string
}

/**
 * Takes shards for `owner`, in one statement: bumps each one's epoch, which refuses from now
 * on the commits of whoever held it before, and returns the new epochs. The rows are taken
 * in shard order, so two runtimes claiming overlapping shards at once do not deadlock.
 * With `leases`, only the shards whose lease row names `owner` are taken (the others are
 * left out of the result), checked in the same statement with the row share-locked: a
 * runner whose cluster still says it holds a shard it lost (paused past its lease) cannot
 * take it back from the runner that took the lease, and one that takes the lease after the
 * check waits for the claim and claims after it. An expired lease no other runner took is
 * still its holder's (as for the cluster, whose refresh renews it).
 */
export const claimAll = (
  sql: SqlClient.SqlClient,
  t: Tables,
  shards: ReadonlyArray<number>,
  owner: string,
  now: number,
  leases?: Leases
) => {
  if (shards.length === 0) return Effect.succeed(new Map<number, number>())
  const sorted = [...shards].sort((a, b) => a - b)
  const claimed = leases === undefined
    ? sql<Row>`INSERT INTO ${sql(t.shards)} ${sql.insert(sorted.map((shard) => ({ shard, epoch: 1, owner, claimed_at: now })))}
      ON CONFLICT (shard) DO UPDATE SET epoch = ${sql(t.shards)}.epoch + 1, owner = excluded.owner, claimed_at = excluded.claimed_at
      RETURNING shard, epoch`
    : leased(sql, t, sorted, owner, now, leases)
  return Effect.map(claimed, (rows) => new Map(rows.map((row) => [Number(row.shard), Number(row.epoch)])))
}

/** `claimAll`'s statement with the lease check */
const leased = (sql: SqlClient.SqlClient, t: Tables, sorted: ReadonlyArray<number>, owner: string, now: number, leases: Leases) => {
  const share = sql.literal(sql.onDialectOrElse({ pg: () => "FOR SHARE", orElse: () => "" }))
  const values = sql.literal(sorted.map((shard) => `(${Math.floor(shard)})`).join(", "))
  return sql<Row>`WITH v (shard) AS (VALUES ${values})
    INSERT INTO ${sql(t.shards)} (shard, epoch, owner, claimed_at)
    SELECT v.shard, 1, CAST(${owner} AS TEXT), CAST(${now} AS BIGINT) FROM v
    WHERE EXISTS (SELECT 1 FROM ${sql(leases.table)} l WHERE l.shard_id = 'default:' || v.shard AND l.address = ${owner} ${share})
    ORDER BY v.shard
    ON CONFLICT (shard) DO UPDATE SET epoch = ${sql(t.shards)}.epoch + 1, owner = excluded.owner, claimed_at = excluded.claimed_at
    RETURNING shard, epoch`
}
