/**
 * The Postgres server W7 runs on: the one `PROCTOR_BENCH_PG_URL` names, or a throwaway
 * server the bench starts itself (initdb and pg_ctl from /usr/lib/postgresql/<version>/bin,
 * as the `postgres` user when the bench runs as root, as .ci/run does), with Postgres's
 * default settings (fsync on). Also: a database per configuration, the server's settings,
 * and the CPU time of the server's processes (when it runs on this machine).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

export interface Server {
  /** the maintenance database's URL */
  readonly url: string
  /** how it was found, for the report */
  readonly origin: string
  /** whether the bench started it (and may change its settings) */
  readonly owned: boolean
  /** stops a server the bench started (nothing for one it was given) */
  readonly stop: () => void
}

/** runs statements on `url`, returning the rows of the last one */
export const query = (url: string, ...statements: ReadonlyArray<string>): Promise<ReadonlyArray<Record<string, unknown>>> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      let rows: ReadonlyArray<Record<string, unknown>> = []
      for (const s of statements) rows = yield* sql.unsafe<Record<string, unknown>>(s)
      return rows
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })))
  )

/** the URL of database `name` on the server of `url` */
export const withDatabase = (url: string, name: string) => {
  const u = new URL(url)
  u.pathname = `/${name}`
  return u.toString()
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/**
 * The server to use, or why there is none. `PROCTOR_BENCH_PG_URL` first; otherwise a
 * throwaway server in a temporary folder, on a free port of 127.0.0.1, stopped by `stop()`
 * (and when the process exits).
 */
export const findServer = async (): Promise<Server | string> => {
  const given = process.env["PROCTOR_BENCH_PG_URL"]
  if (given !== undefined && given !== "") {
    try {
      await query(given, "SELECT 1")
    } catch (error) {
      return `PROCTOR_BENCH_PG_URL (${given}) does not answer: ${error instanceof Error ? error.message : String(error)}`
    }
    return { url: given, origin: "PROCTOR_BENCH_PG_URL", owned: false, stop: () => {} }
  }
  const root = "/usr/lib/postgresql"
  const versions = fs.existsSync(root)
    ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, "bin", "initdb"))).sort((a, b) => Number(a) - Number(b))
    : []
  const version = versions[versions.length - 1]
  if (version === undefined) {
    return "no Postgres server binaries in /usr/lib/postgresql/*/bin (install the postgresql package) and PROCTOR_BENCH_PG_URL is not set"
  }
  const bin = path.join(root, version, "bin")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-pg-"))
  const asRoot = process.getuid?.() === 0
  const run = (file: string, args: ReadonlyArray<string>) =>
    asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", file, ...args], { stdio: "pipe" })
      : execFileSync(file, args, { stdio: "pipe" })
  const port = await freePort()
  const data = path.join(dir, "data")
  let started = false
  const stop = () => {
    if (started) {
      try {
        run(path.join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "stop"])
      } catch {
        // already stopped
      }
      started = false
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  try {
    if (asRoot) execFileSync("chown", ["postgres", dir])
    run(path.join(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres"])
    run(path.join(bin, "pg_ctl"), ["-D", data, "-l", path.join(dir, "log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "start"])
    started = true
  } catch (error) {
    stop()
    const detail = error instanceof Error && "stderr" in error ? String((error as { stderr: unknown }).stderr).trim() : String(error)
    return `could not start a throwaway Postgres ${version} (${detail}); set PROCTOR_BENCH_PG_URL to a server instead`
  }
  process.once("exit", stop)
  // an interrupted bench leaves no server behind
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      stop()
      process.exit(130)
    })
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, origin: `a throwaway Postgres ${version} the bench started (its default settings but fsync, set per pass)`, owned: true, stop }
}

/** the settings that bear on a durable commit's cost, and the version */
export const settings = async (url: string) => {
  const rows = await query(
    url,
    "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'max_connections') ORDER BY name"
  )
  return Object.fromEntries(rows.map((r) => [String(r["name"]), String(r["setting"])]))
}

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/**
 * A function returning the CPU time (µs, user + system) all processes of the server have
 * used so far, when the server runs on this machine and its data directory is readable;
 * undefined otherwise. Backends that exit take their time with them, so it is read around
 * phases in which the clients' connection pools stay open.
 */
export const serverCpu = async (url: string): Promise<(() => number) | undefined> => {
  try {
    const rows = await query(url, "SHOW data_directory")
    const dir = String(rows[0]?.["data_directory"])
    const pid = Number(fs.readFileSync(path.join(dir, "postmaster.pid"), "utf8").split("\n")[0])
    if (!fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("postgres")) return undefined
    const stat = (p: string) => {
      const text = fs.readFileSync(`/proc/${p}/stat`, "utf8")
      // the fields after the command name (which may hold spaces) in parentheses
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
      return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) }
    }
    return () => {
      let ticks = 0
      for (const p of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(p)) continue
        try {
          const s = stat(p)
          if (Number(p) === pid || s.ppid === pid) ticks += s.ticks
        } catch {
          // gone meanwhile
        }
      }
      return (ticks / ticksPerSecond) * 1e6
    }
  } catch {
    return undefined
  }
}
