/**
 * The SQL schema of the store: table names, migrations (one record per dialect), and the
 * mapping between rows and the Store's models.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { ErrorEntry, Snapshot, Transition } from "../Execution.js"
import { terminalStatuses } from "../Execution.js"
import type { CompensationRecord, InboxEntry } from "../Store.js"

/** The tables of one store, named `<prefix>_<table>`. */
export interface Tables {
  readonly prefix: string
  readonly executions: string
  readonly transitions: string
  readonly errors: string
  readonly inbox: string
  readonly compensations: string
  /** the fencing epochs of the shards, when several runtimes share the store (migration 4) */
  readonly shards: string
  readonly migrations: string
}

export const tables = (prefix: string): Tables => ({
  prefix,
  executions: `${prefix}_executions`,
  transitions: `${prefix}_transitions`,
  errors: `${prefix}_errors`,
  inbox: `${prefix}_inbox`,
  compensations: `${prefix}_compensations`,
  shards: `${prefix}_shards`,
  migrations: `${prefix}_migrations`
})

/** The terminal statuses as an SQL list, for `status NOT IN (...)` (constants, safe to splice). */
export const terminalList = [...terminalStatuses].map((status) => `'${status}'`).join(", ")

/** A table prefix must be a plain SQL identifier: it is spliced into statements. */
export const validPrefix = (prefix: string): boolean => /^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(prefix)

/**
 * The columns of the executions table, in the order `snapshotParams` writes them.
 * `retry_count` holds `snapshot.attempt`.
 */
export const executionColumns = [
  "execution_id",
  "procedure_name",
  "procedure_version",
  "current_state",
  "status",
  "context",
  "visit",
  "retry_count",
  "seq",
  "row_version",
  "tenant",
  "parent_id",
  "idempotency_key",
  "outcome",
  "error",
  "timer_due_at",
  "compensate_to",
  "started_at",
  "entered_at",
  "updated_at",
  "fingerprint",
  "history"
] as const

export const transitionColumns = ["execution_id", "seq", "from_state", "to_state", "status", "cause", "event", "at", "duration", "reason"] as const
export const errorColumns = ["execution_id", "state", "attempt", "tag", "message", "transient", "at"] as const

/** The highest migration id this version knows; a database with a higher one was written by a newer version. */
export const latestMigration = 5

/**
 * The migrations, keyed `<id>_<name>` for `Migrator.fromRecord`. SQLite and Postgres get
 * their own DDL; JSON is kept as TEXT in both so it round-trips byte for byte (Postgres'
 * JSONB would reorder keys). Epoch millis are BIGINT in Postgres.
 */
export const migrations = (t: Tables): Migrator.Loader =>
  Migrator.fromRecord({
    "0001_create_tables": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const statements = sql.onDialectOrElse({
        pg: () => ddl(t, { int: "INTEGER", millis: "BIGINT", serial: "BIGSERIAL PRIMARY KEY", withoutRowid: "" }),
        orElse: () =>
          ddl(t, {
            int: "INTEGER",
            millis: "INTEGER",
            serial: "INTEGER PRIMARY KEY AUTOINCREMENT",
            withoutRowid: " WITHOUT ROWID"
          })
      })
      for (const statement of statements) yield* sql.unsafe(statement)
    }),
    // the shape of the definition an execution started on (issue 11 item 9); NULL in older rows
    "0002_fingerprint": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* sql.unsafe(`ALTER TABLE ${t.executions} ADD COLUMN fingerprint TEXT`)
    }),
    // why an execution was cancelled (`Runtime.cancel(id, { reason })`), on its cancel row; NULL elsewhere
    "0003_transition_reason": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* sql.unsafe(`ALTER TABLE ${t.transitions} ADD COLUMN reason TEXT`)
    }),
    // several runtimes on one store (docs/scale-out.md): each execution's shard (a hash of its
    // id; NULL where no fenced store wrote the row) and each shard's fencing epoch, which a
    // runtime bumps when it takes the shard. The index is partial so that a store that does not
    // fence (the embedded SQLite default) never writes to it.
    "0004_shards": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const millis = sql.onDialectOrElse({ pg: () => "BIGINT", orElse: () => "INTEGER" })
      yield* sql.unsafe(`ALTER TABLE ${t.executions} ADD COLUMN shard INTEGER`)
      yield* sql.unsafe(
        `CREATE INDEX ${t.executions}_shard ON ${t.executions} (shard, status) WHERE shard IS NOT NULL`
      )
      yield* sql.unsafe(`CREATE TABLE ${t.shards} (
        shard INTEGER PRIMARY KEY NOT NULL,
        epoch ${millis} NOT NULL,
        owner TEXT,
        claimed_at ${millis}
      )`)
    }),
    // the history values of a procedure with history states (`Procedure.history`): each
    // compound state's last active leaf, as JSON; NULL for every other execution
    "0005_history": Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      yield* sql.unsafe(`ALTER TABLE ${t.executions} ADD COLUMN history TEXT`)
    })
  })

interface Types {
  readonly int: string
  readonly millis: string
  /** an auto-increment primary key whose values are never reused */
  readonly serial: string
  /** SQLite: store the rows in their primary-key B-tree, no separate rowid index */
  readonly withoutRowid: string
}

const ddl = (t: Tables, ty: Types): ReadonlyArray<string> => [
  `CREATE TABLE ${t.executions} (
    execution_id TEXT PRIMARY KEY NOT NULL,
    procedure_name TEXT NOT NULL,
    procedure_version ${ty.int} NOT NULL,
    current_state TEXT NOT NULL,
    status TEXT NOT NULL,
    context TEXT,
    visit ${ty.int} NOT NULL,
    retry_count ${ty.int} NOT NULL,
    seq ${ty.int} NOT NULL,
    row_version ${ty.int} NOT NULL,
    tenant TEXT,
    parent_id TEXT,
    idempotency_key TEXT,
    outcome TEXT,
    error TEXT,
    timer_due_at ${ty.millis},
    compensate_to TEXT,
    started_at ${ty.millis} NOT NULL,
    entered_at ${ty.millis} NOT NULL,
    updated_at ${ty.millis} NOT NULL,
    lease_owner TEXT,
    lease_expires_at ${ty.millis}
  )`,
  `CREATE UNIQUE INDEX ${t.executions}_idempotency_key ON ${t.executions} (idempotency_key) WHERE idempotency_key IS NOT NULL`,
  `CREATE INDEX ${t.executions}_procedure_state ON ${t.executions} (procedure_name, current_state)`,
  // serves the (status) lookups of `active`/`list` and, whole, `dueTimers` in its (dueAt, id) order
  `CREATE INDEX ${t.executions}_status_timer ON ${t.executions} (status, timer_due_at, execution_id)`,
  `CREATE TABLE ${t.transitions} (
    execution_id TEXT NOT NULL,
    seq ${ty.int} NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    status TEXT NOT NULL,
    cause TEXT NOT NULL,
    event TEXT,
    at ${ty.millis} NOT NULL,
    duration ${ty.millis} NOT NULL,
    PRIMARY KEY (execution_id, seq)
  )${ty.withoutRowid}`,
  `CREATE TABLE ${t.errors} (
    id ${ty.serial},
    execution_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt ${ty.int} NOT NULL,
    tag TEXT NOT NULL,
    message TEXT NOT NULL,
    transient ${ty.int} NOT NULL,
    at ${ty.millis} NOT NULL
  )`,
  `CREATE INDEX ${t.errors}_execution ON ${t.errors} (execution_id, id)`,
  `CREATE TABLE ${t.inbox} (
    seq ${ty.serial},
    execution_id TEXT NOT NULL,
    event TEXT,
    at ${ty.millis} NOT NULL
  )`,
  `CREATE INDEX ${t.inbox}_execution ON ${t.inbox} (execution_id, seq)`,
  `CREATE TABLE ${t.compensations} (
    execution_id TEXT NOT NULL,
    step_seq ${ty.int} NOT NULL,
    state TEXT NOT NULL,
    ok ${ty.int} NOT NULL,
    at ${ty.millis} NOT NULL,
    PRIMARY KEY (execution_id, step_seq)
  )${ty.withoutRowid}`
]

// -----------------------------------------------------------------------------
// rows <-> models

type Param = string | number | null

const json = (u: unknown): string | null => (u === undefined ? null : JSON.stringify(u))
const unjson = (s: unknown): unknown => (s === null || s === undefined ? undefined : JSON.parse(String(s)))
const opt = <A>(a: A | undefined): A | null => (a === undefined ? null : a)

/** The values of `executionColumns` for a snapshot. */
export const snapshotParams = (s: Snapshot): Array<Param> => {
  const out: Array<Param> = [s.id]
  pushSnapshotFields(out, s)
  return out
}

/** The values of an `UPDATE ... SET <executionColumns but execution_id> WHERE execution_id = ? AND row_version = ?`. */
export const snapshotUpdateParams = (s: Snapshot, expectedVersion: number): Array<Param> => {
  const out: Array<Param> = []
  pushSnapshotFields(out, s)
  out.push(s.id, expectedVersion)
  return out
}

const pushSnapshotFields = (out: Array<Param>, s: Snapshot): void => {
  out.push(
    s.procedure,
    s.version,
    s.state,
    s.status,
    json(s.context),
    s.visit,
    s.attempt,
    s.seq,
    s.rowVersion,
    opt(s.tenant),
    opt(s.parentId),
    opt(s.idempotencyKey),
    opt(s.outcome),
    json(s.error),
    opt(s.timerDueAt),
    opt(s.compensateTo),
    s.startedAt,
    s.enteredAt,
    s.updatedAt,
    opt(s.fingerprint),
    json(s.history)
  )
}

export const transitionParams = (t: Transition): Array<Param> => [
  t.executionId,
  t.seq,
  t.from,
  t.to,
  t.status,
  t.cause,
  json(t.event),
  t.at,
  t.duration,
  opt(t.reason)
]

export const errorParams = (e: ErrorEntry): Array<Param> => [
  e.executionId,
  e.state,
  e.attempt,
  e.tag,
  e.message,
  e.transient ? 1 : 0,
  e.at
]

export const compensationParams = (c: CompensationRecord): Array<Param> => [
  c.executionId,
  c.stepSeq,
  c.state,
  c.ok ? 1 : 0,
  c.at
]

/** A row as the drivers return it: Postgres hands BIGINT back as a string, hence `Number(...)`. */
export type Row = Record<string, unknown>

const num = (u: unknown): number => Number(u)
const str = (u: unknown): string => String(u)

/**
 * A snapshot from the values of `executionColumns`, in their order (what the SQLite store
 * reads: the row as a JSON array, `sqlSqlite.ts`): better-sqlite3 makes a row object of
 * 20-odd columns at twice the cost of the values (recovery reads 100k rows: 0.8 against
 * 0.37 s of CPU), and a snapshot made from them needs no row object between.
 */
export const valuesToSnapshot = (v: ReadonlyArray<unknown>): Snapshot => {
  const s: {
    -readonly [K in keyof Snapshot]: Snapshot[K]
  } = {
    id: str(v[0]),
    procedure: str(v[1]),
    version: num(v[2]),
    state: str(v[3]),
    status: str(v[4]) as Snapshot["status"],
    context: unjson(v[5]),
    visit: num(v[6]),
    attempt: num(v[7]),
    seq: num(v[8]),
    rowVersion: num(v[9]),
    startedAt: num(v[17]),
    enteredAt: num(v[18]),
    updatedAt: num(v[19])
  }
  if (v[10] != null) s.tenant = str(v[10])
  if (v[11] != null) s.parentId = str(v[11])
  if (v[12] != null) s.idempotencyKey = str(v[12])
  if (v[13] != null) s.outcome = str(v[13])
  if (v[14] != null) s.error = unjson(v[14]) as NonNullable<Snapshot["error"]>
  if (v[15] != null) s.timerDueAt = num(v[15])
  if (v[16] != null) s.compensateTo = str(v[16]) as NonNullable<Snapshot["compensateTo"]>
  if (v[20] != null) s.fingerprint = str(v[20])
  if (v[21] != null) s.history = unjson(v[21]) as NonNullable<Snapshot["history"]>
  return s
}

/** A snapshot from a row of the executions table (its columns by name, as the drivers return them). */
export const rowToSnapshot = (r: Row): Snapshot => valuesToSnapshot(executionColumns.map((c) => r[c]))

export const rowToTransition = (r: Row): Transition => {
  const t: { -readonly [K in keyof Transition]: Transition[K] } = {
    executionId: str(r.execution_id),
    seq: num(r.seq),
    from: str(r.from_state),
    to: str(r.to_state),
    status: str(r.status) as Transition["status"],
    cause: str(r.cause) as Transition["cause"],
    at: num(r.at),
    duration: num(r.duration)
  }
  if (r.event != null) t.event = unjson(r.event)
  if (r.reason != null) t.reason = str(r.reason)
  return t
}

export const rowToError = (r: Row): ErrorEntry => ({
  executionId: str(r.execution_id),
  state: str(r.state),
  attempt: num(r.attempt),
  tag: str(r.tag),
  message: str(r.message),
  transient: num(r.transient) !== 0,
  at: num(r.at)
})

export const rowToInbox = (r: Row): InboxEntry => ({
  executionId: str(r.execution_id),
  seq: num(r.seq),
  event: unjson(r.event),
  at: num(r.at)
})

export const rowToCompensation = (r: Row): CompensationRecord => ({
  executionId: str(r.execution_id),
  stepSeq: num(r.step_seq),
  state: str(r.state),
  ok: num(r.ok) !== 0,
  at: num(r.at)
})
