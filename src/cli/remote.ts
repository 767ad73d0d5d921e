/**
 * The CLI's operator over a running server's HTTP API (`proctor serve`, or an application
 * that serves Proctor's API). Imported only when a command talks to a server.
 *
 * @since 0.1.0
 */
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import * as os from "node:os"
import { ProctorApi } from "../http/Api.js"
import { storedConfiguration } from "../internal/chartView.js"
import type { OperatorError, OperatorService } from "./operator.js"
import { Operator, ServerError } from "./operator.js"

/**
 * The operator over a server's HTTP API.
 *
 * @since 0.1.0
 * @category constructors
 */
/** the operating system's user name, or `unknown` where the process has none */
const osUser = () => {
  try {
    return os.userInfo().username
  } catch {
    return process.env["USER"] ?? "unknown"
  }
}

export const makeRemote = (options: {
  readonly url: string
  readonly token?: string | undefined
  /** the server file the URL was found in, for messages */
  readonly via?: string | undefined
}) =>
  Effect.gen(function*() {
    const url = options.url.replace(/\/+$/, "")
    // the server's audit log records requests under its token's name, and the user the CLI says it runs as
    const user = HttpClientRequest.setHeader("x-proctor-user", osUser())
    const client = yield* HttpApiClient.make(ProctorApi, {
      baseUrl: url,
      transformClient: options.token === undefined || options.token === ""
        ? HttpClient.mapRequest(user)
        : HttpClient.mapRequest((request) => user(HttpClientRequest.bearerToken(request, options.token!)))
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
          case "QuotaExceeded":
          case "SendTimeout":
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
      start: (procedure, input, options) =>
        call(client.executions.start({
          payload: {
            procedure: procedure.name,
            version: procedure.version,
            input,
            ...(options?.tenant === undefined ? {} : { options: { tenant: options.tenant } })
          }
        })),
      send: (id, event) => call(Effect.asVoid(client.executions.send({ path: { id }, payload: event }))),
      command: (operation, id) => call(client.executions[operation]({ path: { id } })),
      cancel: (id, options) =>
        call(client.executions.cancel({ path: { id }, payload: options?.reason === undefined ? {} : { reason: options.reason } })),
      skip: (id, state) => call(client.executions.skip({ path: { id }, payload: { state } })),
      get: (id) => call(client.executions.get({ path: { id } })),
      dependencies: call(client.procedures.dependencies()),
      view: (s) =>
        call(Effect.map(client.executions.get({ path: { id: s.id } }), (view) => ({
          allowed: view.allowed,
          // a server from before Runtime.configuration: what the snapshot tells
          configuration: view.configuration ?? storedConfiguration(s)
        }))),
      list: (filter) =>
        call(client.executions.list({
          urlParams: {
            ...(filter.status === undefined
              ? {}
              : { status: typeof filter.status === "string" ? [filter.status] : filter.status }),
            ...(filter.procedure === undefined ? {} : { procedure: filter.procedure }),
            ...(filter.state === undefined ? {} : { state: filter.state }),
            ...(filter.tenant === undefined ? {} : { tenant: filter.tenant }),
            ...(filter.parentId === undefined ? {} : { parentId: filter.parentId }),
            ...(filter.limit === undefined ? {} : { limit: filter.limit }),
            ...(filter.offset === undefined ? {} : { offset: filter.offset })
          }
        })),
      history: (id) => call(client.executions.history({ path: { id }, urlParams: {} })),
      errors: (id) => call(client.executions.errors({ path: { id } })),
      inFlight: call(Effect.map(client.procedures.list(), (ps) => new Map(ps.map((p) => [`${p.name}@${p.version}`, p.inFlight ?? 0])))),
      migrate: (id, to) => call(client.executions.migrate({ path: { id }, payload: { to } })),
      migrateAll: (procedure, from, to) => call(client.procedures.migrate({ path: { name: procedure }, payload: { from, to } })),
      rollout: (from, options) => call(client.rollouts.start({ payload: { ...options, procedure: from.name, from: from.version } })),
      rollouts: (procedure) => call(client.rollouts.list({ urlParams: procedure === undefined ? {} : { procedure } })),
      controlRollout: (procedure, control, reason) =>
        call(client.rollouts.control({ path: { name: procedure, control }, payload: reason === undefined ? {} : { reason } }))
    }
    return service
  })

/**
 * The `Operator` for a server.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (target: Parameters<typeof makeRemote>[0]): Layer.Layer<Operator, OperatorError> =>
  Layer.effect(Operator, makeRemote(target)).pipe(Layer.provide(FetchHttpClient.layer))
