/**
 * Maps driver errors (better-sqlite3's `SqliteError`, node-postgres' `DatabaseError`, both
 * usually wrapped in an `@effect/sql` `SqlError`) to a `StoreError` whose kind says what to do.
 */
import { StoreError } from "../Errors.js"

export type Kind = StoreError["kind"]

/** The driver error's code (`SQLITE_BUSY`, `SQLITE_FULL`, Postgres' SQLSTATE, Node's `EACCES`...). */
export const errorCode = (u: unknown): string | undefined => {
  let cur: unknown = u
  for (let depth = 0; depth < 5 && typeof cur === "object" && cur !== null; depth++) {
    const code = (cur as { code?: unknown }).code
    if (typeof code === "string") return code
    cur = (cur as { cause?: unknown }).cause
  }
  return undefined
}

export const errorMessage = (u: unknown): string => {
  let cur: unknown = u
  let out = ""
  for (let depth = 0; depth < 5 && typeof cur === "object" && cur !== null; depth++) {
    const message = (cur as { message?: unknown }).message
    if (typeof message === "string" && message !== "" && !out.includes(message)) {
      out = out === "" ? message : `${out}: ${message}`
    }
    cur = (cur as { cause?: unknown }).cause
  }
  return out === "" ? String(u) : out
}

/** What a driver error means for the store. */
export const classify = (u: unknown): Kind => {
  const code = errorCode(u)
  if (code === undefined) return "Unknown"
  if (code.startsWith("SQLITE_")) {
    if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") return "Corrupt"
    if (code.startsWith("SQLITE_READONLY")) return "ReadOnly"
    if (code.startsWith("SQLITE_CANTOPEN") || code.startsWith("SQLITE_PERM") || code.startsWith("SQLITE_AUTH")) return "ReadOnly"
    if (
      code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED") || code === "SQLITE_FULL" ||
      code.startsWith("SQLITE_IOERR") || code === "SQLITE_PROTOCOL" || code === "SQLITE_NOMEM" ||
      code === "SQLITE_INTERRUPT"
    ) return "Unavailable"
    return "Unknown"
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") return "ReadOnly"
  if (code === "ENOSPC" || code === "EIO" || code === "EBUSY" || code === "ECONNREFUSED" || code === "ECONNRESET") {
    return "Unavailable"
  }
  // Postgres SQLSTATE classes: 08 connection, 53 insufficient resources, 57 operator intervention,
  // 40 transaction rollback (serialization failure, deadlock), 25006 read-only transaction, XX internal
  if (/^(08|53|57|40)/.test(code)) return "Unavailable"
  if (code === "25006") return "ReadOnly"
  if (code === "XX001" || code === "XX002") return "Corrupt"
  return "Unknown"
}

/** Whether a failure comes from the environment (busy, full, unreachable) rather than from the data written. */
export const isEnvironmental = (kind: Kind): boolean =>
  kind === "Unavailable" || kind === "ReadOnly" || kind === "Corrupt" || kind === "Locked"

const advice: Record<Kind, string> = {
  Conflict: "Reload the execution and try again.",
  Unavailable: "The database is busy, full or unreachable; nothing of this write was stored. " +
    "The runtime retries from the last committed state; free disk space or stop the other writer if it persists.",
  Corrupt: "The database file is damaged. Restore it from a backup, or move it away to start with an empty store.",
  Incompatible: "Upgrade proctor to a version that knows this schema, or point the store at another database.",
  ReadOnly: "The database cannot be written. Check the permissions of the file, its -wal/-shm files and its folder, " +
    "and that the filesystem is not mounted read-only.",
  Locked: "Another process uses this database. Stop it first, or give this process another file.",
  Fenced: "Another runtime owns this execution's shard now; this one must not write it.",
  Unknown: "This is likely a bug in proctor or a damaged row; report it with the detail above."
}

/** A `StoreError` for a driver failure, with `what` naming the database. */
export const storeError = (operation: string, cause: unknown, what: string, kind: Kind = classify(cause)): StoreError =>
  new StoreError({
    kind,
    operation,
    detail: `${what}: ${errorMessage(cause)}${codeSuffix(cause)}. ${advice[kind]}`,
    cause
  })

const codeSuffix = (u: unknown): string => {
  const code = errorCode(u)
  return code === undefined ? "" : ` (${code})`
}

/** Keeps a `StoreError` as it is; wraps anything else. */
export const toStoreError = (operation: string, what: string) => (u: unknown): StoreError =>
  u instanceof StoreError ? u : storeError(operation, u, what)
