/**
 * Opening the SQLite file of `SqlStore.layerSqlite`: its folder, its canonical path (for the
 * one-owner lock), the writer's own connection and the `@effect/sql` client beside it.
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import Database from "better-sqlite3"
import { Effect } from "effect"
import type { StoreError } from "../Errors.js"
import * as fs from "node:fs"
import * as path from "node:path"
import * as LockWaits from "./sqlBusy.js"
import { storeError } from "./sqlErrors.js"

/**
 * `mkdir -p`, one level at a time: Node's own recursive `mkdirSync` never returns for a
 * folder that cannot exist under a virtual file system (`/proc/nope` loops in Node 20 and 22).
 */
export const makeFolder = (dir: string): void => {
  if (fs.existsSync(dir)) return
  const parent = path.dirname(dir)
  if (parent !== dir) makeFolder(parent)
  try {
    fs.mkdirSync(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
  }
}

export const canonical = (file: string): string => {
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
export const openWriter = (file: string, what: string, synchronous: "NORMAL" | "FULL"): Effect.Effect<Database.Database, StoreError> =>
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
export const openClient = (filename: string, what: string, synchronous: "NORMAL" | "FULL", readOnly = false) =>
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
