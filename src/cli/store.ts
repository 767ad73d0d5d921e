/**
 * The one place where the CLI (and `proctor serve`) chooses its store.
 *
 * @since 0.1.0
 */
import type { Layer } from "effect"
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
