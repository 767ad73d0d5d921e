/**
 * The file `proctor serve` leaves next to its database (`<db>.server.json`, its URL and pid)
 * for as long as it runs, and how other processes find the server through it: the CLI's
 * commands, to go through its HTTP API, and `proctor mcp`, to name its `/mcp` endpoint when
 * the database is taken. Kept apart from operator.ts so that the MCP server's bundle reads it
 * without the operator.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Option } from "effect"

/**
 * The file `proctor serve` writes next to its database so that CLI commands find it.
 *
 * @since 0.1.0
 * @category constants
 */
export const serverFile = (dbPath: string): string => `${path.resolve(dbPath)}.server.json`

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * The URL of the server that owns the database, if one is running.
 *
 * @since 0.1.0
 * @category getters
 */
export const discoverServer = (dbPath: string): Option.Option<string> => {
  if (dbPath === ":memory:") return Option.none()
  try {
    const info = JSON.parse(fs.readFileSync(serverFile(dbPath), "utf8")) as { url?: unknown; pid?: unknown }
    return typeof info.url === "string" && typeof info.pid === "number" && info.pid !== process.pid && alive(info.pid)
      ? Option.some(info.url)
      : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * Records (for the life of the scope) that a server at `url` owns the database.
 *
 * @since 0.1.0
 * @category constructors
 */
export const advertise = (dbPath: string, url: string) =>
  dbPath === ":memory:"
    ? Effect.void
    : Effect.acquireRelease(
      Effect.sync(() => {
        try {
          fs.writeFileSync(serverFile(dbPath), JSON.stringify({ url, pid: process.pid, since: new Date().toISOString() }))
        } catch {
          // not fatal: CLI commands then need --server
        }
      }),
      () =>
        Effect.sync(() => {
          try {
            const info = JSON.parse(fs.readFileSync(serverFile(dbPath), "utf8")) as { pid?: unknown }
            if (info.pid === process.pid) fs.rmSync(serverFile(dbPath), { force: true })
          } catch {
            // already gone
          }
        })
    )
