/**
 * Where the examples keep their executions: the one place to choose the store.
 *
 * @since 0.1.0
 */
import { SqlStore } from "proctor"

/**
 * The file the examples use: the embedded SQLite default, in a data folder created on
 * first use. Override it with `PROCTOR_DB`.
 *
 * @since 0.1.0
 */
export const filename = process.env.PROCTOR_DB ?? ".data/examples.db"

/**
 * The store every example runs on.
 *
 * @since 0.1.0
 */
export const StoreLive = SqlStore.layerSqlite({ filename })

/**
 * Where `StoreLive` keeps the data, for people reading the examples' output.
 *
 * @since 0.1.0
 */
export const description = `in SQLite at ${filename} (SqlStore.layerSqlite): executions survive the process`
