/**
 * The one place where the CLI (and `proctor serve`) chooses its store, and where it
 * remembers which module each procedure it started came from (`<db>.modules.json`), so
 * that later commands on those executions find their procedure without `--module`.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Data, Effect, type Layer } from "effect"
import type { StoreError } from "../Errors.js"
import * as SqlStore from "../SqlStore.js"
import * as Store from "../Store.js"

/**
 * Where the CLI keeps its executions unless `--db PATH` or `PROCTOR_DB` says otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDbPath = "./.proctor/proctor.db"

/**
 * The database path: the `--db` flag, else `PROCTOR_DB`, else `./.proctor/proctor.db`.
 * `:memory:` keeps everything in memory for the life of the process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveDbPath = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string =>
  flag ?? (env.PROCTOR_DB !== undefined && env.PROCTOR_DB !== "" ? env.PROCTOR_DB : defaultDbPath)

/**
 * The store behind `dbPath`: the embedded SQLite store (its folder is created when
 * missing), or the memory store for `:memory:`.
 *
 * @since 0.1.0
 * @category layers
 */
export const storeLayer = (dbPath: string): Layer.Layer<Store.Store, StoreError> =>
  dbPath === ":memory:" ? Store.layerMemory : SqlStore.layerSqlite({ filename: dbPath })

/**
 * The store behind `dbPath` for reading only: no lock, so it reads beside the process
 * that owns the database; nothing is created.
 *
 * @since 0.1.0
 * @category layers
 */
export const readOnlyStoreLayer = (dbPath: string): Layer.Layer<Store.Store, StoreError> =>
  dbPath === ":memory:" ? Store.layerMemory : SqlStore.layerSqlite({ filename: dbPath, readOnly: true })

/**
 * The command names a database that does not exist. Only `run` and `serve` create one;
 * any other command would find nothing there, so a mistyped `--db` is an error. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoDatabase extends Data.TaggedError("NoDatabase")<{ readonly path: string; readonly command: string }> {
  override get message() {
    return `There is no Proctor database at ${this.path}, so \`proctor ${this.command}\` has nothing to act on. ` +
      `Check --db (or PROCTOR_DB); \`proctor run <module>\` or \`proctor serve\` creates the database.`
  }
}

/**
 * Fails with `NoDatabase` unless the database exists (`:memory:` always does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const requireDatabase = (dbPath: string, command: string): Effect.Effect<void, NoDatabase> =>
  dbPath === ":memory:" || fs.existsSync(dbPath) ? Effect.void : Effect.fail(new NoDatabase({ path: dbPath, command }))

/**
 * The file, next to the database, that maps `name@version` to the module it was loaded from.
 *
 * @since 0.1.0
 * @category constants
 */
export const modulesFile = (dbPath: string): string => `${path.resolve(dbPath)}.modules.json`

const readModules = (dbPath: string): Record<string, string> => {
  try {
    const parsed = JSON.parse(fs.readFileSync(modulesFile(dbPath), "utf8")) as unknown
    return typeof parsed === "object" && parsed !== null ? parsed as Record<string, string> : {}
  } catch {
    return {}
  }
}

/**
 * Records which module each procedure came from (absolute paths). Not fatal when the
 * folder is read-only: later commands then need `--module`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rememberModules = (
  dbPath: string,
  loaded: ReadonlyArray<{ readonly procedure: { readonly name: string; readonly version: number }; readonly file: string }>
): void => {
  if (dbPath === ":memory:" || loaded.length === 0) return
  const known = readModules(dbPath)
  for (const l of loaded) known[`${l.procedure.name}@${l.procedure.version}`] = l.file
  try {
    fs.writeFileSync(modulesFile(dbPath), JSON.stringify(known, null, 2) + "\n")
  } catch {
    // not fatal (see above)
  }
}

/**
 * The module `name@version` was loaded from when it was last started or served on this
 * database, if known and still there.
 *
 * @since 0.1.0
 * @category getters
 */
export const rememberedModule = (dbPath: string, key: string): string | undefined => {
  if (dbPath === ":memory:") return undefined
  const file = readModules(dbPath)[key]
  return typeof file === "string" && fs.existsSync(file) ? file : undefined
}
