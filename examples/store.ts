/**
 * Where the examples keep their executions: the one place to choose the store.
 *
 * @since 0.1.0
 */
import { Store } from "proctor"

/**
 * The store every example runs on.
 *
 * @since 0.1.0
 */
export const StoreLive = Store.layerMemory

/**
 * Where `StoreLive` keeps the data, for people reading the examples' output.
 *
 * @since 0.1.0
 */
export const description = "in memory (Store.layerMemory): nothing is kept after the process exits"
