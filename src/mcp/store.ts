/**
 * The one place where the MCP server chooses its store: the SQLite store on `--db PATH`,
 * so sessions survive a restart of the server.
 *
 * @since 0.1.0
 */
import type { Layer } from "effect"
import type { StoreError } from "../Errors.js"
import * as SqlStore from "../SqlStore.js"
import * as Store from "../Store.js"

/**
 * Where sessions are kept unless `--db PATH` says otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDbPath = "./.proctor/proctor.db"

/**
 * The store of the MCP server: SQLite on `db` (its folder is created when missing);
 * `":memory:"` keeps sessions in memory, for the life of the process only.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (db: string): Layer.Layer<Store.Store, StoreError> =>
  db === ":memory:" ? Store.layerMemory : SqlStore.layerSqlite({ filename: db })
