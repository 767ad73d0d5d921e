/**
 * The identity of the database's files: device and inode of the file and of its `-wal`,
 * taken when the store opens them.
 *
 * SQLite writes through the descriptors it opened, not through the names: once the file
 * (or its `-wal`) is removed or replaced by another one, every commit goes to a file that
 * nobody can open again, and is lost when the process exits. So before the writer
 * acknowledges a group commit it checks that the names still point at the files it
 * writes. A `stat` per name per batch: a few microseconds, shared by every write of the batch.
 */
import * as fs from "node:fs"
import { StoreError } from "../Errors.js"
import { errorMessage } from "./sqlErrors.js"

interface Identity {
  readonly dev: bigint
  readonly ino: bigint
}

/** What the name points at now: `undefined` when nothing is there (or it cannot be reached). */
const identify = (path: string): Identity | undefined => {
  try {
    const stats = fs.statSync(path, { bigint: true, throwIfNoEntry: false })
    return stats === undefined ? undefined : { dev: stats.dev, ino: stats.ino }
  } catch {
    // a folder on the way was replaced by a file, or its permissions changed
    return undefined
  }
}

const same = (a: Identity, b: Identity | undefined): boolean => b !== undefined && a.dev === b.dev && a.ino === b.ino

export interface Files {
  /** why the store takes no more writes, once a check found its files gone */
  readonly lost: () => StoreError | undefined
  /** checks that the names still point at the files the store writes (then the result is kept) */
  readonly check: () => StoreError | undefined
}

/**
 * Watches `file` and `file-wal`. When the `-wal` alone is gone, `rescue` is called once:
 * it copies what the log holds into the database file (a checkpoint), while the store still
 * has the log open; it returns why that failed, if it did.
 */
export const watch = (file: string, rescue: () => unknown): Files => {
  const wal = `${file}-wal`
  const database = identify(file)
  // SQLite creates the -wal with the first read in WAL mode: a store that finds none yet adopts the first one
  let log = identify(wal)
  let lost: StoreError | undefined

  const check = (): StoreError | undefined => {
    if (lost !== undefined || database === undefined) return lost
    if (!same(database, identify(file))) {
      lost = new StoreError({
        kind: "Corrupt",
        operation: "commit",
        detail: `the database file ${file} was removed or replaced while this process used it. SQLite goes on ` +
          `writing to the removed file, which nobody can open again and which is gone when the process exits, so the ` +
          `store acknowledges no more writes: this one and every later one fail. Restore ${file} from a backup, or ` +
          `restart the process to go on with the file that is at ${file} now (an empty store if there is none).`
      })
      return lost
    }
    const now = identify(wal)
    if (log === undefined) log = now
    else if (!same(log, now)) {
      const failed = rescue()
      lost = new StoreError({
        kind: "Corrupt",
        operation: "commit",
        detail: `the write-ahead log ${wal} was removed or replaced while this process used it. ` +
          (failed === undefined
            ? `What was committed until now was copied into ${file}; `
            : `Copying what it held into ${file} failed (${errorMessage(failed)}): stop the process with SIGTERM, ` +
              `not SIGKILL (closing the store copies it), or what was committed since the last checkpoint is lost; `) +
          `the store acknowledges no more writes: this one (which may be stored all the same) and every later one ` +
          `fail. Restart the process to go on from ${file}.`
      })
    }
    return lost
  }

  return { lost: () => lost, check }
}
