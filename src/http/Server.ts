/**
 * The HTTP server: the JSON API (`/api/...`), its OpenAPI document (`/openapi.json`),
 * an API explorer (`/docs`, Swagger UI bundled in @effect/platform, no CDN), a live
 * stream of execution changes (`/events`, Server-Sent Events), the store's health (`/health`)
 * and the dashboard (`/`), all over one `Runtime`, behind one guard (token, host and
 * origin checks, body limit).
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import {
  HttpApiSwagger,
  HttpLayerRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import type { Duration } from "effect"
import { Cause, Effect, Layer, Option, Schedule, Stream } from "effect"
import type { ExecutionEvent, Snapshot } from "../Execution.js"
import * as Plugin from "../Plugin.js"
import { Runtime } from "../Runtime.js"
import type { RuntimeService } from "../Runtime.js"
import { PayloadTooLarge, ProctorApi, Unauthorized } from "./Api.js"
import * as Auth from "./Auth.js"
import * as Handlers from "./Handlers.js"

/**
 * Options of the server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** when set, every request must carry it (`Authorization: Bearer <token>`) */
  readonly token?: string | undefined
  /**
   * Who the token's requests are recorded as (`by` in plugins' records, e.g. the audit log):
   * `http:<tokenName>`; without a token, `http:local`. @default "token"
   */
  readonly tokenName?: string | undefined
  /** the largest request body accepted, in bytes; larger ones get 413. @default 1048576 (1 MiB) */
  readonly maxBodyBytes?: number | undefined
  /**
   * How often `/events` re-reads the store to catch changes made by other processes
   * (a CLI on the same database). @default "1 second"
   */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** a comment line keeps idle `/events` connections open through proxies. @default "15 seconds" */
  readonly heartbeat?: Duration.DurationInput | undefined
  /**
   * Host names accepted in the `Host` header when no token is set (DNS-rebinding guard).
   * Loopback names are always accepted. @default []
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /**
   * Routes served beside the API's, behind the same guard (token, `Host` and `Origin`
   * checks): `proctor serve` serves the MCP tool at `/mcp` this way.
   */
  readonly extraRoutes?: ExtraRoutes | undefined
}

/**
 * Routes served beside the API's (see `Options.extraRoutes`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ExtraRoutes {
  readonly layer: Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Runtime>
  /** the paths whose request bodies the routes read under a limit of their own: the guard leaves those alone */
  readonly ownBodies: ReadonlyArray<string>
}

/**
 * The folder the dashboard's files are served from.
 *
 * @since 0.1.0
 * @category constants
 */
export const assetsDir: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "assets")

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json"
}

const jsonError = (status: number, body: Record<string, unknown>) => HttpServerResponse.unsafeJson(body, { status })

/**
 * The platform answers a body it cannot read as JSON, and a path or method it has no
 * route for, with an empty 400 or 404 (the first even arrives here as a defect of the
 * API's handler); the API promises a JSON error for every 4xx. An unreadable body gets
 * the shape of the `HttpApiDecodeError` the API sends for a body that does not fit its Schema.
 */
const jsonServerErrors = <E, R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> =>
  Effect.catchSomeCause(effect, (cause) => {
    const error = Cause.squash(cause)
    if (!HttpServerError.isServerError(error) || (error._tag !== "RequestError" && error._tag !== "RouteNotFound")) {
      return Option.none()
    }
    const where = `${error.request.method} ${new URL(error.request.url, "http://localhost").pathname}`
    if (error._tag === "RouteNotFound") {
      return Option.some(Effect.succeed(jsonError(404, {
        _tag: "NotFound",
        message: `There is no ${where}: check the path and the method; /openapi.json and /docs list every route.`
      })))
    }
    const message = error.reason === "Decode"
      ? `The body of ${where} is not valid JSON; send a JSON document with content-type application/json.`
      : `The body of ${where} could not be read (the connection failed); send the request again.`
    return Option.some(Effect.succeed(jsonError(400, { _tag: "HttpApiDecodeError", issues: [{ _tag: "Type", path: [], message }], message })))
  })

const unauthorized = (request: HttpServerRequest.HttpServerRequest) => {
  const error = new Unauthorized()
  const wantsHtml = request.method === "GET" && (request.headers["accept"] ?? "").includes("text/html")
  if (wantsHtml) {
    return HttpServerResponse.text(loginPage, { status: 401, contentType: "text/html; charset=utf-8", headers: { "www-authenticate": "Bearer" } })
  }
  return HttpServerResponse.unsafeJson({ _tag: "Unauthorized", message: error.message }, {
    status: 401,
    headers: { "www-authenticate": "Bearer" }
  })
}

const loginPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Proctor — token required</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;color:#0f172a}
input{font:inherit;padding:.4rem;width:16rem}button{font:inherit;padding:.4rem .8rem}</style></head>
<body><h1>Proctor</h1><p>This server requires a token. Paste the token the server was started with
(<code>--token</code> or <code>PROCTOR_TOKEN</code>).</p>
<form method="get" action="/"><input name="token" type="password" autocomplete="off" aria-label="token" autofocus>
<button type="submit">Open the dashboard</button></form></body></html>`

/**
 * The guard every request passes first:
 * - with a token: a valid `Authorization: Bearer` header; for GET requests also a
 *   `?token=` parameter (which sets a same-site, HTTP-only cookie) or that cookie
 * - without a token: a loopback (or allowed) `Host` header, against DNS rebinding
 * - requests that change something and come from a browser must come from the same origin
 * - request bodies larger than `maxBodyBytes` get 413
 */
const guard = (options: Options) => {
  const limit = options.maxBodyBytes ?? 1024 * 1024
  const token = options.token === "" ? undefined : options.token
  const allowed = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()))
  const ownBodies = new Set(options.extraRoutes?.ownBodies ?? [])
  const by = token === undefined ? "http:local" : `http:${options.tokenName ?? "token"}`
  return HttpLayerRouter.middleware((effect) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      let setCookie = false
      // the user a client says it runs as (the CLI sends it): recorded beside the token's name, not checked
      const user = request.headers["x-proctor-user"]
      const asked = user !== undefined && /^[\w.@-]{1,64}$/.test(user) ? `${by} (user ${user})` : by
      const respond = (handler: typeof effect) => {
        const inner = Plugin.withRequester(handler, asked)
        return setCookie
          ? Effect.map(jsonServerErrors(inner), (response) => HttpServerResponse.unsafeSetCookie(response, Auth.cookieName, token!, cookieOptions))
          : jsonServerErrors(inner)
      }
      const url = new URL(request.url, "http://localhost")
      const host = request.headers["host"] ?? ""
      if (token !== undefined) {
        const fromHeader = Auth.bearer(request.headers["authorization"])
        const isRead = request.method === "GET" || request.method === "HEAD"
        const fromQuery = isRead ? url.searchParams.get("token") ?? undefined : undefined
        const fromCookie = isRead ? Auth.cookie(request.headers["cookie"], Auth.cookieName) : undefined
        const ok = Auth.tokenMatches(token, fromHeader) || Auth.tokenMatches(token, fromQuery) ||
          Auth.tokenMatches(token, fromCookie)
        if (!ok) return unauthorized(request)
        setCookie = fromQuery !== undefined && Auth.tokenMatches(token, fromQuery)
      } else {
        const name = Auth.hostName(host)
        if (!Auth.isLoopback(name) && !allowed.has(name)) {
          return jsonError(403, {
            _tag: "Forbidden",
            message: `Host "${host}" is not allowed: without a token this server only answers requests to 127.0.0.1 or localhost. ` +
              `Start it with --token to serve other hosts.`
          })
        }
      }
      if (request.method !== "GET" && request.method !== "HEAD" && request.method !== "OPTIONS") {
        const origin = request.headers["origin"]
        if (origin !== undefined && origin !== "null") {
          let originHost: string | undefined
          try {
            originHost = new URL(origin).host.toLowerCase()
          } catch {
            originHost = undefined
          }
          if (originHost !== host.toLowerCase()) {
            return jsonError(403, {
              _tag: "Forbidden",
              message: `Cross-origin request from ${origin} refused; call the API from the dashboard's own origin or without an Origin header.`
            })
          }
        }
        if (ownBodies.has(url.pathname)) return yield* respond(effect)
        const tooLarge = jsonError(413, { _tag: "PayloadTooLarge", limit, message: new PayloadTooLarge({ limit }).message })
        const declared = request.headers["content-length"]
        if (declared !== undefined) {
          if (!(Number(declared) <= limit)) return tooLarge
        } else if (request.headers["transfer-encoding"] !== undefined) {
          // a chunked body has no declared size: read it here under the limit, and hand
          // the API a copy of the request that carries the text
          const text = yield* readLimited(NodeHttpServerRequest.toIncomingMessage(request), limit)
          if (Option.isNone(text)) return tooLarge
          const headers: Record<string, string> = {}
          for (const [k, v] of Object.entries(request.headers)) {
            if (!["transfer-encoding", "content-length", "connection", "keep-alive", "expect"].includes(k)) headers[k] = v
          }
          const copy = HttpServerRequest.fromWeb(
            new Request(`http://localhost${request.url}`, { method: request.method, headers, body: text.value })
          )
          return yield* respond(Effect.provideService(effect, HttpServerRequest.HttpServerRequest, copy))
        }
      }
      return yield* respond(effect)
    }), { global: true })
}

/**
 * Reads a request body of at most `limit` bytes. A larger body is drained (up to 16
 * times the limit, then the connection is dropped) so that the 413 answer reaches the client.
 */
const readLimited = (source: NodeJS.ReadableStream, limit: number): Effect.Effect<Option.Option<string>> =>
  Effect.async<Option.Option<string>>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk
      size += bytes.length
      if (size <= limit) chunks.push(bytes)
      else if (size > limit * 16) {
        cleanup()
        ;(source as unknown as { destroy?: () => void }).destroy?.()
        resume(Effect.succeed(Option.none()))
      }
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(size <= limit ? Option.some(Buffer.concat(chunks).toString("utf8")) : Option.none()))
    }
    const onError = () => {
      cleanup()
      resume(Effect.succeed(Option.none()))
    }
    const cleanup = () => {
      source.removeListener("data", onData)
      source.removeListener("end", onEnd)
      source.removeListener("error", onError)
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    return Effect.sync(cleanup)
  })

const cookieOptions = { httpOnly: true, sameSite: "strict", path: "/" } as const

const readAsset = (name: string) =>
  Effect.gen(function*() {
    // only plain file names directly in the assets folder: no traversal
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) return Option.none()
    const file = path.join(assetsDir, name)
    const content = yield* Effect.promise(() => fs.promises.readFile(file).then((b) => Option.some(b), () => Option.none<Buffer>()))
    return Option.map(content, (bytes) =>
      HttpServerResponse.uint8Array(new Uint8Array(bytes), {
        contentType: contentTypes[path.extname(name)] ?? "application/octet-stream",
        headers: { "cache-control": "no-cache", "x-content-type-options": "nosniff" }
      }))
  })

const notFound = (what: string) => jsonError(404, { _tag: "NotFound", message: `${what} not found` })

/**
 * What `/events` sends: `ready` once the stream is subscribed and has read the store,
 * then every commit the runtime publishes, plus changes the store shows that this
 * process did not make (executions driven by another process).
 *
 * @since 0.1.0
 * @category streams
 */
export const eventStream = (
  runtime: RuntimeService,
  options: { readonly id?: string | undefined; readonly pollInterval: Duration.DurationInput }
): Stream.Stream<{ readonly _tag: "ready" } | { readonly _tag: "execution"; readonly event: ExecutionEvent }> => {
  const known = new Map<string, string>()
  const keyOf = (seq: number, status: string) => `${seq}/${status}`
  const live = runtime.watch(options.id).pipe(
    Stream.tap((e) => Effect.sync(() => known.set(e.executionId, keyOf(e.seq, e.status)))),
    Stream.map((event) => ({ _tag: "execution" as const, event }))
  )
  const read: Effect.Effect<ReadonlyArray<Snapshot>> = (options.id === undefined
    ? runtime.list({ limit: 500 })
    : Effect.map(runtime.get(options.id), (s) => [s])).pipe(Effect.orElseSucceed(() => []))
  let primed = false
  // merged after `live`, whose fiber subscribes before this one first reads the store
  const polled = Stream.repeatEffectWithSchedule(read, Schedule.spaced(options.pollInterval)).pipe(
    Stream.mapConcat((snapshots) => {
      const out: Array<{ readonly _tag: "ready" } | { readonly _tag: "execution"; readonly event: ExecutionEvent }> = []
      for (const s of snapshots) {
        const key = keyOf(s.seq, s.status)
        if (known.get(s.id) === key) continue
        known.set(s.id, key)
        if (primed) {
          out.push({
            _tag: "execution",
            event: { executionId: s.id, procedure: s.procedure, seq: s.seq, from: "", state: s.state, status: s.status, cause: "store", at: s.updatedAt }
          })
        }
      }
      if (!primed) out.push({ _tag: "ready" })
      primed = true
      return out
    })
  )
  return Stream.merge(live, polled)
}

/**
 * The routes (API, OpenAPI, docs, events, dashboard, and the extra routes of the options)
 * and the guard, as a router layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (options: Options = {}) => {
  const api = HttpLayerRouter.addHttpApi(ProctorApi, { openapiPath: "/openapi.json" }).pipe(
    Layer.provide(Handlers.layer)
  )
  const docs = HttpApiSwagger.layerHttpLayerRouter({ api: ProctorApi, path: "/docs" })
  const extra = HttpLayerRouter.use((router) =>
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const pollInterval = options.pollInterval ?? "1 second"
      const heartbeat = options.heartbeat ?? "15 seconds"
      yield* router.add("GET", "/events", (request) =>
        Effect.sync(() => {
          const id = new URL(request.url, "http://localhost").searchParams.get("id") ?? undefined
          const events = eventStream(runtime, { id, pollInterval }).pipe(
            Stream.map((item) =>
              item._tag === "ready"
                ? `retry: 2000\nevent: ready\ndata: {}\n\n`
                : `event: execution\ndata: ${JSON.stringify(item.event)}\n\n`
            )
          )
          const pings = Stream.repeatEffectWithSchedule(Effect.succeed(": ping\n\n"), Schedule.spaced(heartbeat))
          const body = Stream.merge(events, Stream.drop(pings, 1))
          return HttpServerResponse.stream(Stream.encodeText(body), {
            contentType: "text/event-stream",
            headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
          })
        }))
      // Runtime.health for probes and monitors: 200 while the store is reachable, 503 during an outage
      yield* router.add("GET", "/health", Effect.map(runtime.health, (health) =>
        HttpServerResponse.unsafeJson({
          storeReachable: health.storeReachable,
          ...(health.unavailableSince === undefined ? {} : { unavailableSince: health.unavailableSince }),
          ...(health.lastStoreError === undefined ? {} : {
            lastStoreError: { _tag: "StoreError", kind: health.lastStoreError.kind, message: health.lastStoreError.message }
          }),
          waitingForStore: health.waitingForStore
        }, { status: health.storeReachable ? 200 : 503 })))
      const index = Effect.map(readAsset("index.html"), Option.getOrElse(() => notFound("index.html")))
      yield* router.add("GET", "/", index)
      yield* router.add("GET", "/executions/*", index)
      yield* router.add("GET", "/assets/:name", (request) => {
        const name = decodeURIComponent(new URL(request.url, "http://localhost").pathname.replace(/^\/assets\//, ""))
        return Effect.map(readAsset(name), Option.getOrElse(() => notFound(`asset ${name}`)))
      })
    })
  )
  const served = options.extraRoutes === undefined ? Layer.mergeAll(api, docs, extra) : Layer.mergeAll(api, docs, extra, options.extraRoutes.layer)
  return served.pipe(Layer.provide(guard(options)))
}

/**
 * The server on an `HttpServer` (a Node server, or `NodeHttpServer.layerTest`). Needs a `Runtime`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options & { readonly logRequests?: boolean | undefined } = {}) =>
  HttpLayerRouter.serve(routes(options), {
    disableLogger: options.logRequests !== true,
    disableListenLog: true
  })

/**
 * The server listening on `host:port` (`port: 0` picks a free port).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNode = (options: Options & { readonly host: string; readonly port: number; readonly logRequests?: boolean | undefined }) =>
  layer(options).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { host: options.host, port: options.port })))
