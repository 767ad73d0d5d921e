/**
 * What the CLI's commands act on: either a runtime opened on the database in this
 * process (local), or a running `proctor serve` reached over its HTTP API (remote). A
 * SQLite database has one owner at a time, so while a server runs, the CLI talks to it:
 * `serve` leaves `<db>.server.json` next to the database, and the CLI follows it.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Context, Effect, Layer, Option, Schema } from "effect"
import type {
  DefinitionError,
  ExecutionNotFound,
  InvalidTransition,
  StoreError,
  ValidationError
} from "../Errors.js"
import type { ErrorEntry, ListFilter, Snapshot, Transition } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import type { ProcedureNotFound } from "../http/Api.js"
import { ProctorApi } from "../http/Api.js"
import { findProcedure } from "../http/Handlers.js"
import * as Metadata from "../http/Metadata.js"
import type { Loaded } from "./modules.js"
import { storeLayer } from "./store.js"

/**
 * The server could not be reached, refused the request, or answered something unexpected.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The Proctor server at ${this.url} ${this.reason}`
  }
}

/**
 * Every way an operation can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type OperatorError =
  | ValidationError
  | ExecutionNotFound
  | InvalidTransition
  | StoreError
  | DefinitionError
  | ProcedureNotFound
  | ServerError

/**
 * A procedure as the CLI shows it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcedureView extends Metadata.ProcedureInfo {
  /** where it was loaded from (`file#export`), or `server` */
  readonly source: string
}

/**
 * The operations the CLI offers, whatever runs the executions.
 *
 * @since 0.1.0
 * @category models
 */
export interface OperatorService {
  /** `database <path>` or `server <url>`, for messages */
  readonly where: string
  readonly remote: boolean
  readonly procedures: Effect.Effect<ReadonlyArray<ProcedureView>, OperatorError>
  readonly start: (name: string, version: number | undefined, input: unknown) => Effect.Effect<Snapshot, OperatorError>
  readonly send: (id: string, event: { readonly _tag: string }) => Effect.Effect<void, OperatorError>
  readonly command: (
    operation: "pause" | "resume" | "cancel" | "rollback" | "retry",
    id: string
  ) => Effect.Effect<Snapshot, OperatorError>
  readonly skip: (id: string, state: string) => Effect.Effect<Snapshot, OperatorError>
  readonly get: (id: string) => Effect.Effect<Snapshot, OperatorError>
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<Snapshot>, OperatorError>
  readonly history: (id: string) => Effect.Effect<ReadonlyArray<Transition>, OperatorError>
  readonly errors: (id: string) => Effect.Effect<ReadonlyArray<ErrorEntry>, OperatorError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Operator extends Context.Tag("proctor/cli/Operator")<Operator, OperatorService>() {}

/**
 * The operator over a runtime in this process.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLocal = (
  runtime: Runtime.RuntimeService,
  loaded: ReadonlyArray<Loaded>,
  where: string
): OperatorService => {
  const sources = new Map<Procedure.Any, string>(loaded.map((l) => [l.procedure, l.source]))
  const views = runtime.procedures.map((p) => ({ ...Metadata.describe(p), source: sources.get(p) ?? "runtime" }))
  return {
    where,
    remote: false,
    procedures: Effect.succeed(views),
    start: (name, version, input) =>
      Effect.gen(function*() {
        const procedure = yield* findProcedure(runtime.procedures, name, version)
        const id = yield* runtime.start(procedure, input)
        return yield* runtime.get(id)
      }),
    send: runtime.send,
    command: (operation, id) => runtime[operation](id),
    skip: runtime.skip,
    get: runtime.get,
    list: runtime.list,
    history: (id) => runtime.history(id),
    errors: runtime.errors
  }
}

/**
 * The operator over a server's HTTP API.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRemote = (options: {
  readonly url: string
  readonly token?: string | undefined
  /** the server file the URL was found in, for messages */
  readonly via?: string | undefined
}) =>
  Effect.gen(function*() {
    const url = options.url.replace(/\/+$/, "")
    const client = yield* HttpApiClient.make(ProctorApi, {
      baseUrl: url,
      transformClient: options.token === undefined || options.token === ""
        ? undefined
        : HttpClient.mapRequest(HttpClientRequest.bearerToken(options.token))
    })
    const call = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, OperatorError> =>
      Effect.mapError(effect, (e: any): OperatorError => {
        switch (e?._tag) {
          case "ValidationError":
          case "ExecutionNotFound":
          case "InvalidTransition":
          case "StoreError":
          case "DefinitionError":
          case "ProcedureNotFound":
            return e
          case "Unauthorized":
            return new ServerError({
              url,
              reason: "requires a token: pass --token <token> or set PROCTOR_TOKEN to the token the server was started with."
            })
          case "RequestError":
            return new ServerError({
              url,
              reason: options.via === undefined
                ? `cannot be reached (${e.message}). Start it with \`proctor serve\`, or check --server / PROCTOR_SERVER.`
                : `cannot be reached (${e.message}); its address was found in ${options.via}. If no server runs, delete that file.`
            })
          case "HttpApiDecodeError":
            return new ServerError({ url, reason: `refused the request: ${e.message}` })
          default:
            return new ServerError({ url, reason: `answered unexpectedly: ${e?.message ?? String(e)}` })
        }
      })
    const service: OperatorService = {
      where: `server ${url}`,
      remote: true,
      procedures: call(Effect.map(client.procedures.list(), (ps) => ps.map((p) => ({ ...p, source: "server" })))),
      start: (name, version, input) =>
        call(client.executions.start({
          payload: { procedure: name, ...(version === undefined ? {} : { version }), input }
        })),
      send: (id, event) => call(Effect.asVoid(client.executions.send({ path: { id }, payload: event }))),
      command: (operation, id) => call(client.executions[operation]({ path: { id } })),
      skip: (id, state) => call(client.executions.skip({ path: { id }, payload: { state } })),
      get: (id) => call(client.executions.get({ path: { id } })),
      list: (filter) =>
        call(client.executions.list({
          urlParams: {
            ...(filter.status === undefined
              ? {}
              : { status: typeof filter.status === "string" ? [filter.status] : filter.status }),
            ...(filter.procedure === undefined ? {} : { procedure: filter.procedure }),
            ...(filter.state === undefined ? {} : { state: filter.state }),
            ...(filter.limit === undefined ? {} : { limit: filter.limit }),
            ...(filter.offset === undefined ? {} : { offset: filter.offset })
          }
        })),
      history: (id) => call(client.executions.history({ path: { id }, urlParams: {} })),
      errors: (id) => call(client.executions.errors({ path: { id } }))
    }
    return service
  })

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

/**
 * How the CLI reaches its executions.
 *
 * @since 0.1.0
 * @category models
 */
export type Target =
  | { readonly _tag: "Local"; readonly dbPath: string; readonly loaded: ReadonlyArray<Loaded>; readonly recover: boolean }
  | { readonly _tag: "Remote"; readonly url: string; readonly token?: string | undefined; readonly via?: string | undefined }

/**
 * The `Operator` for a target. A local target opens the store and a runtime with the
 * loaded procedures (without resuming other executions unless `recover` is set).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (target: Target): Layer.Layer<Operator, OperatorError> => {
  if (target._tag === "Remote") {
    return Layer.effect(Operator, makeRemote(target)).pipe(Layer.provide(FetchHttpClient.layer))
  }
  const runtime = Runtime.layer({
    procedures: target.loaded.map((l) => l.procedure),
    recover: target.recover
  }).pipe(Layer.provide(storeLayer(target.dbPath)))
  return Layer.effect(
    Operator,
    Effect.map(Runtime.Runtime, (r) => makeLocal(r, target.loaded, `database ${target.dbPath}`))
  ).pipe(Layer.provide(runtime))
}
