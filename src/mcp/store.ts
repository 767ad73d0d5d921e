/**
 * The one place where the MCP server chooses its store: the SQLite store on `--db PATH`,
 * so sessions survive a restart of the server. When `proctor serve` has the database, the
 * refusal says to connect to its `/mcp` endpoint instead.
 *
 * @since 0.1.0
 */
import { Layer, Option } from "effect"
import { discoverServer } from "../cli/serverFile.js"
import { StoreError } from "../Errors.js"
import * as SqlStore from "../SqlStore.js"
import * as Store from "../Store.js"

/**
 * Where sessions are kept unless `--db PATH` says otherwise.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultDbPath = "./.proctor/proctor.db"

/** A database `proctor serve` has is shared through its `/mcp` endpoint, not by a second owner. */
const servedHint = (db: string) => (error: StoreError): StoreError => {
  const url = error.kind === "Locked" ? discoverServer(db) : Option.none()
  if (Option.isNone(url)) return error
  return new StoreError({
    kind: error.kind,
    operation: error.operation,
    detail: `${error.detail} It is served by \`proctor serve\` at ${url.value}: connect the MCP client to ${url.value}/mcp ` +
      `(Streamable HTTP; docs/mcp.md, "Several agents, one server") instead of starting \`proctor mcp\`.`,
    cause: error.cause
  })
}

/**
 * The store of the MCP server: SQLite on `db` (its folder is created when missing);
 * `":memory:"` keeps sessions in memory, for the life of the process only.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (db: string): Layer.Layer<Store.Store, StoreError> =>
  db === ":memory:" ? Store.layerMemory : SqlStore.layerSqlite({ filename: db }).pipe(Layer.mapError(servedHint(db)))
