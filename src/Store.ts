/**
 * The Store service: everything the runtime persists goes through it, one atomic
 * `commit` per transition. `layerMemory` keeps it all in memory (tests, ephemeral use);
 * `SqlStore` persists it to SQLite or Postgres.
 *
 * @since 0.1.0
 */
import type { Option } from "effect"
import { Context, Effect, Layer } from "effect"
import type { ErrorEntry, ListFilter, Snapshot, Status, Transition } from "./Execution.js"
import { StoreError } from "./Errors.js"
import * as MemoryStore from "./internal/memoryStore.js"

/**
 * An event in an execution's durable inbox.
 *
 * @since 0.1.0
 * @category models
 */
export interface InboxEntry {
  readonly executionId: string
  /** increasing per store; events of one execution are consumed in `seq` order */
  readonly seq: number
  /** the encoded event */
  readonly event: unknown
  readonly at: number
}

/**
 * A finished compensation: `stepSeq` names the transition that completed the step it undoes.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompensationRecord {
  readonly executionId: string
  readonly stepSeq: number
  readonly state: string
  readonly ok: boolean
  readonly at: number
}

/**
 * One atomic write: the new execution row (whose `rowVersion` is `expectedVersion + 1`),
 * and with it, all or nothing, a history row, error entries, a consumed inbox event and
 * a finished compensation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Commit {
  readonly snapshot: Snapshot
  /** the row version the writer read; another version in the store fails the commit with a `Conflict` */
  readonly expectedVersion: number
  readonly transition?: Transition | undefined
  readonly errors?: ReadonlyArray<ErrorEntry> | undefined
  /** the inbox seq this transition consumed */
  readonly consumed?: number | undefined
  readonly compensation?: CompensationRecord | undefined
}

/**
 * A pending timer of a waiting execution.
 *
 * @since 0.1.0
 * @category models
 */
export interface TimerEntry {
  readonly id: string
  readonly dueAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TimerQuery {
  /** exclusive cursor: only timers after this (dueAt, id) */
  readonly after?: TimerEntry | undefined
  /** inclusive upper bound of dueAt */
  readonly until: number
  readonly limit: number
}

/**
 * An execution that needs a fiber (`StoreService.activePage`), with when it started: the
 * list's order and the cursor of the next page.
 *
 * @since 0.1.0
 * @category models
 */
export interface ActiveEntry {
  readonly id: string
  readonly startedAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ActiveQuery {
  /** exclusive cursor: only executions after this (startedAt, id), the last of the previous page */
  readonly after?: ActiveEntry | undefined
  readonly limit: number
}

/** @internal */
export const activeOrder = (a: ActiveEntry, b: ActiveEntry): number =>
  a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** @internal */
export const timerOrder = (a: TimerEntry, b: TimerEntry): number =>
  a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * @since 0.1.0
 * @category models
 */
export interface HistoryOptions {
  /** only the last `tail` transitions */
  readonly tail?: number | undefined
}

/**
 * How many executions of one version of a procedure are in one status (`countByVersion`).
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionCount {
  readonly procedure: string
  readonly version: number
  readonly status: Status
  readonly count: number
}

/**
 * What `countByVersion` counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface VersionCountQuery {
  /** only this procedure's executions */
  readonly procedure?: string | undefined
  /** only the executions started at or after this time (epoch ms) */
  readonly startedSince?: number | undefined
}

/**
 * A bound on the executions under way that a create must stay within (`createWithin`):
 * those matching `tenant` and `procedure` (each when given) that have not ended.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateLimit {
  /** names the lock the processes on the database take for this bound (one per tenant quota, one per procedure quota) */
  readonly key: string
  /** count this tenant's executions only */
  readonly tenant?: string | undefined
  /** count this procedure's executions only (all its versions) */
  readonly procedure?: string | undefined
  /** create only while fewer than this many are under way */
  readonly max: number
}

/**
 * What `createWithin` did: `create`'s result, or which limit (its index) was reached, in
 * which case nothing was written.
 *
 * @since 0.1.0
 * @category models
 */
export type CreateWithinResult =
  | { readonly _tag: "Created"; readonly created: boolean; readonly snapshot: Snapshot }
  | { readonly _tag: "Full"; readonly limit: number }

/**
 * What every store implements. All methods fail with `StoreError` only.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  /**
   * Creates an execution with its first transition. With an `idempotencyKey` already
   * used, creates nothing and returns the existing execution's snapshot.
   */
  readonly create: (
    snapshot: Snapshot,
    transition: Transition
  ) => Effect.Effect<{ readonly created: boolean; readonly snapshot: Snapshot }, StoreError>
  /**
   * `create`, counting first: the executions each limit matches that have not ended are
   * counted and the execution is created only if every count is under its `max`, as one
   * operation for every process on the database (Postgres: one transaction holding an
   * advisory lock per limit, taken in the order given), so that runtimes sharing the
   * database cannot together pass a limit. Optional: a store only one process uses
   * (memory, a SQLite file) leaves it out, and the runtime counts and creates one start
   * at a time per quota itself. The concurrent-executions quotas use it.
   */
  readonly createWithin?: ((
    snapshot: Snapshot,
    transition: Transition,
    limits: ReadonlyArray<CreateLimit>
  ) => Effect.Effect<CreateWithinResult, StoreError>) | undefined
  /**
   * Writes one transition atomically; fails with a `Conflict` when `expectedVersion` is stale.
   * A commit whose snapshot is terminal also empties the execution's inbox, logging each
   * event still in it as an `EventDiscarded` error entry, in the same transaction.
   */
  readonly commit: (commit: Commit) => Effect.Effect<void, StoreError>
  /**
   * Whether this store may commit the execution now: it holds the execution's shard.
   * Only a store several runtimes share, fenced by shard (`SqlStore.makeFenced`), has it;
   * the runtime then takes a commit refused for its row version as another runtime having
   * moved the execution on (its shard moved away and back) and reads the execution again
   * instead of counting a failure, and runs again from the store an execution whose commit
   * was refused as `Fenced` but whose shard this store holds again by then.
   */
  readonly holds?: ((executionId: string) => boolean) | undefined
  readonly get: (id: string) => Effect.Effect<Option.Option<Snapshot>, StoreError>
  /**
   * The snapshots of these executions (those that exist, in any order), in as few reads as
   * the store can. Optional: recovery loads the executions it resumes with it, in bulk,
   * instead of one `get` per execution.
   */
  readonly getMany?: ((ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Snapshot>, StoreError>) | undefined
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<Snapshot>, StoreError>
  /**
   * How many executions there are by procedure, version and status, in one grouped query
   * (versions in flight, a rollout's health), without reading the executions.
   */
  readonly countByVersion: (query?: VersionCountQuery) => Effect.Effect<ReadonlyArray<VersionCount>, StoreError>
  /** the transitions in `seq` order (the last `tail` of them, if given) */
  readonly history: (id: string, options?: HistoryOptions) => Effect.Effect<ReadonlyArray<Transition>, StoreError>
  readonly errors: (id: string) => Effect.Effect<ReadonlyArray<ErrorEntry>, StoreError>
  /** Appends error entries outside a transition (failed attempts). */
  readonly appendErrors: (entries: ReadonlyArray<ErrorEntry>) => Effect.Effect<void, StoreError>
  /**
   * Stores an event; returns once it is durable. Fails with a `Conflict` when the execution
   * does not exist or has ended (checked atomically with the insert).
   */
  readonly enqueue: (executionId: string, event: unknown, at: number) => Effect.Effect<InboxEntry, StoreError>
  /**
   * Stores several events, each for its execution, all or none in one write: fails with a
   * `Conflict`, storing nothing, when one of the executions does not exist or has ended.
   * Optional: an event sent to a parent in a parallel state goes to its regions that take
   * it with this, so that a crash cannot leave one region with it and another without;
   * a store without it gets one `enqueue` per region.
   */
  readonly enqueueAll?: ((entries: ReadonlyArray<{ readonly executionId: string; readonly event: unknown; readonly at: number }>) => Effect.Effect<ReadonlyArray<InboxEntry>, StoreError>) | undefined
  /** the unconsumed events of an execution, oldest first */
  readonly inbox: (executionId: string, limit: number) => Effect.Effect<ReadonlyArray<InboxEntry>, StoreError>
  readonly compensations: (executionId: string) => Effect.Effect<ReadonlyArray<CompensationRecord>, StoreError>
  /**
   * ids of the executions that need a fiber when a runtime starts (recovery): those
   * `running` or `compensating`, and those `waiting` with an unconsumed inbox event.
   */
  readonly active: () => Effect.Effect<ReadonlyArray<string>, StoreError>
  /**
   * What `active` lists, a page at a time: at most `limit` of them after the cursor `after`,
   * oldest first ((startedAt, id) order). Optional: recovery reads the executions to resume
   * with it, a page whenever its window has room, so that it holds at most a page of ids
   * beyond the executions it runs; a store without it is read with `active`.
   */
  readonly activePage?: ((query: ActiveQuery) => Effect.Effect<ReadonlyArray<ActiveEntry>, StoreError>) | undefined
  /**
   * `waiting` executions with a timer due at or before `until` and after the cursor
   * `after`, in (dueAt, id) order, at most `limit` of them.
   */
  readonly dueTimers: (options: TimerQuery) => Effect.Effect<ReadonlyArray<TimerEntry>, StoreError>
  /**
   * History retention, for terminal executions only (a live execution needs its history
   * to rebuild its compensations): keeps the last `keepLast` transitions of each, and
   * drops transitions from before `before`. Returns how many transitions it deleted.
   */
  readonly prune: (options: PruneOptions) => Effect.Effect<number, StoreError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PruneOptions {
  readonly keepLast?: number | undefined
  /** epoch millis */
  readonly before?: number | undefined
}

/**
 * The Store service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("proctor/Store")<Store, StoreService>() {}

/** @internal */
export const conflict = (operation: string, id: string, expected: number, actual: number | undefined) =>
  new StoreError({
    kind: "Conflict",
    operation,
    detail: actual === undefined
      ? `execution ${id} does not exist`
      : `execution ${id} is at row version ${actual}, the writer expected ${expected}: another writer changed it first. ` +
        `Reload the execution and try again.`
  })

/** @internal */
export const ended = (id: string, status: string) =>
  new StoreError({
    kind: "Conflict",
    operation: "enqueue",
    detail: `execution ${id} has ended (${status}) and takes no more events`
  })

/**
 * @internal
 * An event's body in an error message: enough to recognise it, never a whole large payload
 * (Postgres builds the same message in SQL: sqlPgScript.ts).
 */
export const bodyLimit = 500

/**
 * @internal
 * The error-log entries of the events a commit that ends an execution discards (semantics 9:
 * every accepted event ends consumed or logged), one per event, in inbox order.
 */
export const discardedEvents = (snapshot: Snapshot, events: ReadonlyArray<Pick<InboxEntry, "seq" | "event">>): Array<ErrorEntry> =>
  events.map(({ event, seq }) => {
    const tag = typeof event === "object" && event !== null && typeof (event as { _tag?: unknown })._tag === "string"
      ? (event as { _tag: string })._tag
      : "(untagged)"
    const json = JSON.stringify(event) ?? "null"
    const body = json.length > bodyLimit ? `${json.slice(0, bodyLimit)}…` : json
    return {
      executionId: snapshot.id,
      state: snapshot.state,
      attempt: snapshot.attempt,
      tag: "EventDiscarded",
      message: `event "${tag}" (inbox seq ${seq}) was discarded: the execution ended with status ${snapshot.status} ` +
        `before consuming it. Its body: ${body}`,
      transient: false,
      at: snapshot.updatedAt
    }
  })

/** @internal */
export const matches = (snapshot: Snapshot, filter: ListFilter): boolean => {
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === "string" ? [filter.status] : filter.status
    if (!statuses.includes(snapshot.status)) return false
  }
  if (filter.procedure !== undefined && snapshot.procedure !== filter.procedure) return false
  if (filter.state !== undefined && snapshot.state !== filter.state) return false
  if (filter.tenant !== undefined && snapshot.tenant !== filter.tenant) return false
  if (filter.parentId !== undefined && snapshot.parentId !== filter.parentId) return false
  return true
}

/**
 * An in-memory store with the same semantics as the SQL store. Nothing survives the process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<StoreService> = Effect.sync(() => MemoryStore.make())

/**
 * The in-memory store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Store> = Layer.effect(Store, makeMemory)
