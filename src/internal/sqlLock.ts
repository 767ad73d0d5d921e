/**
 * One store per SQLite file: `<file>.lock` names the owning process (pid, host). A second
 * process, or a second layer in the same process, is refused with a `Locked` error. A
 * lock whose process is gone (crash, kill -9, a container restart that reused the pid)
 * is taken over.
 *
 * The lock is created atomically (written to a private file, then hard-linked to the
 * lock's name, which fails if it exists), so a reader never sees a half-written lock.
 * Two processes that find the same stale lock at the same instant could both take it
 * over; starting two runtimes on one file within the same millisecond is not guarded.
 */
import type { Scope } from "effect"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { StoreError } from "../Errors.js"

interface Owner {
  readonly pid: number
  readonly host: string
  readonly since: string
}

/** Lock files this process holds, shared by every copy of this module. */
const held: Set<string> = ((globalThis as Record<symbol, unknown>)[Symbol.for("proctor/SqlStore/locks")] ??= new Set<string>()) as Set<
  string
>

export const lockPath = (file: string): string => `${file}.lock`

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readOwner = (path: string): Owner | undefined => {
  try {
    const parsed = JSON.parse(fs.readFileSync(path, "utf8")) as Partial<Owner>
    return typeof parsed.pid === "number" && typeof parsed.host === "string"
      ? { pid: parsed.pid, host: parsed.host, since: String(parsed.since) }
      : undefined
  } catch {
    return undefined
  }
}

/** Modified in the last 2 seconds (by the file's own clock, not the Effect Clock: it is the filesystem's time). */
const justWritten = (path: string): boolean => {
  try {
    return Math.abs(Date.now() - fs.statSync(path).mtimeMs) < 2000
  } catch {
    return false
  }
}

const locked = (file: string, detail: string) =>
  new StoreError({
    kind: "Locked",
    operation: "open",
    detail: `the SQLite database ${file} is in use: ${detail}`
  })

const exists = (error: unknown) => (error as NodeJS.ErrnoException).code === "EEXIST"

const tryCreate = (path: string, content: string): boolean => {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`
  fs.writeFileSync(tmp, content, { flag: "wx" })
  try {
    fs.linkSync(tmp, path)
    return true
  } catch (error) {
    if (exists(error)) return false
    // a filesystem without hard links: exclusive create, then write (a reader may see it
    // empty for an instant: an unreadable lock counts as stale only once it is a few seconds old)
    try {
      fs.writeFileSync(path, content, { flag: "wx" })
      return true
    } catch (again) {
      if (exists(again)) return false
      throw again
    }
  } finally {
    fs.rmSync(tmp, { force: true })
  }
}

const acquireSync = (file: string): StoreError | string => {
  const path = lockPath(file)
  const content = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() } satisfies Owner)
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(path, content)) {
      held.add(path)
      return content
    }
    const owner = readOwner(path)
    if (owner !== undefined && owner.host !== os.hostname()) {
      return locked(
        file,
        `host ${owner.host} (pid ${owner.pid}) holds ${path} since ${owner.since}. Stop the runtime there; ` +
          `if it is gone, delete ${path}.`
      )
    }
    if (owner !== undefined && owner.pid === process.pid && held.has(path)) {
      return locked(
        file,
        `this process already has it open through another SqlStore layer. Share one store layer ` +
          `(provide it once) instead of building a second one on the same file.`
      )
    }
    if (owner !== undefined && owner.pid !== process.pid && alive(owner.pid)) {
      return locked(
        file,
        `process ${owner.pid} holds ${path} since ${owner.since}. Stop that process first, or give this one ` +
          `another file; if no such process uses the database, delete ${path}.`
      )
    }
    if (owner === undefined && justWritten(path)) {
      return locked(file, `${path} is being created by another process right now. Try again in a moment.`)
    }
    // a stale lock (its process is gone) or one left unreadable by a crash: take it over
    fs.rmSync(path, { force: true })
  }
  return locked(file, `could not take ${path}: other processes keep taking it. Try again.`)
}

/** Takes the lock for the scope's lifetime. */
export const acquire = (file: string): Effect.Effect<void, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      let result: StoreError | string
      try {
        result = acquireSync(file)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        return Effect.fail(
          new StoreError({
            kind: code === "EACCES" || code === "EPERM" || code === "EROFS" ? "ReadOnly" : "Unavailable",
            operation: "open",
            detail: `cannot create the lock file ${lockPath(file)} next to the SQLite database ${file}: ` +
              `${(error as Error).message}. Check that its folder is writable.`,
            cause: error
          })
        )
      }
      return typeof result === "string" ? Effect.succeed(result) : Effect.fail(result)
    }),
    (content) =>
      Effect.sync(() => {
        const path = lockPath(file)
        held.delete(path)
        try {
          if (fs.readFileSync(path, "utf8") === content) fs.rmSync(path, { force: true })
        } catch {
          // already gone
        }
      })
  ).pipe(Effect.asVoid)
