/**
 * The `workflow` tool over MCP's Streamable HTTP transport (protocol 2025-03-26 and later),
 * as `proctor serve` serves it at `/mcp`: several agents share one server, one Runtime and one
 * store, where each `proctor mcp` would need its own database.
 *
 * - `POST /mcp` takes one JSON-RPC message and answers a request with `application/json`
 *   (a notification or a response gets 202). The body is read under the stdio transport's
 *   limits, by the same code (framing.ts): a body over the size limit is never parsed, one
 *   nested too deep is refused before `JSON.parse`; a refused `tools/call` is a tool error
 *   result, anything else a JSON-RPC error. Requests are answered by the protocol's `step`
 *   and the tool's one `dispatch` (main.ts), in the request's own fiber.
 * - `initialize` opens a session, named by the `Mcp-Session-Id` answer header; every later
 *   request carries it (400 without it, 404 once it ended: the client initializes again).
 *   Sessions are bounded (`maxSessions`; a new one beyond it gets 503) and end after
 *   `idleTimeout` without a request, or with `DELETE /mcp`. A fiber of the server's scope
 *   sweeps ended ones. An MCP session holds no execution: the tool's sessions live in the store.
 * - `GET /mcp` (a stream of server-initiated messages) is 405: this server sends none.
 * - A present `Origin` must be the server's own (DNS-rebinding guard, on every method); an
 *   `MCP-Protocol-Version` header must name a version this server speaks.
 *
 * The token, `Host` checks and the request log are the HTTP server's guard (src/http/Server.ts),
 * which serves these routes behind it.
 *
 * @since 0.1.0
 */
import type { HttpServerRequest } from "@effect/platform"
import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
import type { Layer } from "effect"
import { Clock, Duration, Effect, Either, Schedule, Stream } from "effect"
import type * as Runtime from "../Runtime.js"
import type * as Actions from "./actions.js"
import * as Framing from "./framing.js"
import { makeToolCall } from "./main.js"
import type { Id, Message } from "./protocol.js"
import { ErrorCode, PROTOCOL_VERSIONS, step } from "./protocol.js"
import { MAX_MESSAGE_DEPTH } from "./safety.js"
import { refusal, SERVER_INFO, tool } from "./toolSpec.js"

/**
 * The path the tool is served at.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH = "/mcp"

/**
 * Options of the Streamable HTTP transport.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  /** the most MCP sessions open at once; `initialize` beyond it gets 503. @default 100 */
  readonly maxSessions?: number | undefined
  /** a session without a request for this long ends. @default "30 minutes" */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** the largest request body parsed, in bytes. @default the stdio transport's (10 MiB + 64 KiB) */
  readonly maxBodyBytes?: number | undefined
}

/** JSON-RPC server errors (the range -32000..-32099 is the server's), as the SDK's server uses them */
const ServerError = { Refused: -32000, SessionNotFound: -32001 } as const

interface Session {
  readonly id: string
  lastSeen: number
  /** requests being answered: a session with one is not idle */
  active: number
}

const rpcError = (status: number, code: number, message: string, id: Id | null = null, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ jsonrpc: "2.0", id, error: { code, message } } satisfies Message, { status, headers })

/** A present `Origin` must name this server (the `Host` it was reached by); `null` is no origin a client of the tool has. */
const originRefused = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const origin = request.headers["origin"]
  if (origin === undefined) return undefined
  let host: string | undefined
  try {
    host = new URL(origin).host.toLowerCase()
  } catch {
    host = undefined
  }
  return host !== undefined && host === (request.headers["host"] ?? "").toLowerCase()
    ? undefined
    : `Forbidden: requests from the origin ${origin.slice(0, 200)} are refused (DNS-rebinding guard); MCP clients send no Origin header, or the server's own.`
}

/**
 * The routes of the MCP endpoint (`POST`, `GET` and `DELETE` on `/mcp`), for a router whose
 * guard checks the token and the `Host` (src/http/Server.ts `extraRoutes`). Needs the Runtime
 * the workflows' procedures run on; the sweeper of idle sessions lives as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (
  environment: Actions.Environment,
  options: HttpOptions = {}
): Layer.Layer<never, never, HttpLayerRouter.HttpRouter | Runtime.Runtime> =>
  HttpLayerRouter.use((router) =>
    Effect.gen(function*() {
      const call = yield* makeToolCall(environment)
      const maxSessions = options.maxSessions ?? 100
      const idle = Duration.toMillis(Duration.decode(options.idleTimeout ?? "30 minutes"))
      const maxBodyBytes = options.maxBodyBytes ?? Framing.MAX_MESSAGE_BYTES
      const guard: Framing.GuardOptions = { maxLineBytes: maxBodyBytes, maxDepth: MAX_MESSAGE_DEPTH, refusal }
      // past this much, a body is not even read through for its id: the connection is refused
      const readCap = maxBodyBytes * 4
      const sessions = new Map<string, Session>()

      const expired = (s: Session, now: number) => s.active === 0 && now - s.lastSeen >= idle
      const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
        for (const s of sessions.values()) if (expired(s, now)) sessions.delete(s.id)
      })
      yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(Duration.millis(Math.min(idle, 60_000)))))

      /** the live session the request names (`undefined` for none), or the answer when it names one that ended */
      const sessionOf = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.map(Clock.currentTimeMillis, (now): Either.Either<Session | undefined, HttpServerResponse.HttpServerResponse> => {
          const id = request.headers["mcp-session-id"]
          if (id === undefined) return Either.right(undefined)
          const s = sessions.get(id)
          if (s !== undefined && !expired(s, now)) return Either.right(s)
          sessions.delete(id)
          return Either.left(rpcError(
            404,
            ServerError.SessionNotFound,
            "Session not found: it ended (DELETE, idle timeout or a server restart); initialize a new session without Mcp-Session-Id."
          ))
        })

      /** runs `effect` as a request of session `s`: the session is not idle meanwhile */
      const within = <A, E, R>(s: Session, effect: Effect.Effect<A, E, R>) =>
        Effect.acquireUseRelease(
          Effect.sync(() => void s.active++),
          () => effect,
          () => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => {
            s.active--
            s.lastSeen = now
          }))
        )

      const open = Effect.gen(function*() {
        if (sessions.size >= maxSessions) yield* sweep
        if (sessions.size >= maxSessions) return undefined
        const s: Session = { id: crypto.randomUUID(), lastSeen: yield* Clock.currentTimeMillis, active: 0 }
        sessions.set(s.id, s)
        return s
      })

      /** the body under the size limit, as framing.ts keeps it; `undefined` past `readCap` */
      const readBody = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          const buffer = new Framing.MessageBuffer(maxBodyBytes)
          yield* request.stream.pipe(
            Stream.takeWhile(() => buffer.size <= readCap),
            Stream.runForEach((chunk) => Effect.sync(() => buffer.append(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))))
          )
          return buffer.size > readCap ? undefined : buffer.take()
        })

      const post = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.gen(function*() {
          const accept = request.headers["accept"]
          if (accept !== undefined && !/application\/json|\*\/\*/i.test(accept)) {
            return rpcError(406, ServerError.Refused, "Not Acceptable: this server answers with application/json; accept application/json and text/event-stream.")
          }
          if (!/^application\/json\b/i.test(request.headers["content-type"] ?? "")) {
            return rpcError(415, ServerError.Refused, "Unsupported Media Type: send one JSON-RPC message with content-type application/json.")
          }
          const found = yield* sessionOf(request)
          if (Either.isLeft(found)) return found.left
          const named = found.right
          const declared = Number(request.headers["content-length"] ?? 0)
          const tooLarge = rpcError(
            413,
            ErrorCode.InvalidRequest,
            `Request body larger than the limit of ${maxBodyBytes} bytes; it was not read. Send evidence as a summary and file paths.`
          )
          if (declared > readCap) return tooLarge
          const body = yield* Effect.orElseSucceed(readBody(request), () => undefined)
          if (body === undefined) return tooLarge
          const received = Framing.receive(body, guard)
          if (received._tag === "Message" && "method" in received.message && received.message.method === "initialize") {
            if (named !== undefined) {
              return rpcError(400, ErrorCode.InvalidRequest, "Bad Request: this session is initialized already; send initialize without Mcp-Session-Id to open another.")
            }
          } else if (named === undefined) {
            return rpcError(400, ServerError.Refused, "Bad Request: Mcp-Session-Id header required; call initialize first and send the id it answers with.")
          }
          switch (received._tag) {
            case "Empty":
              return rpcError(400, ErrorCode.ParseError, "Parse error: the body is empty; send one JSON-RPC message.")
            case "Dropped":
              return rpcError(received.reason === "too_large" ? 413 : 400, ErrorCode.InvalidRequest, `${received.problem}; it was not parsed.`)
            case "Refused":
              // a request over a limit is answered by its id, as on stdio; one that is not a message is a bad request
              return HttpServerResponse.unsafeJson(received.reply, { status: received.reason === "parse" || received.reason === "invalid" ? 400 : 200 })
            case "Message":
              break
          }
          const message = received.message
          // a notification or a response: nothing to answer (the server sends no requests of its own)
          if (!("method" in message) || !("id" in message)) return HttpServerResponse.empty({ status: 202 })
          const next = step({ ...SERVER_INFO, tools: [tool] }, message.id, message.method, message.params)
          if (named === undefined) {
            const s = yield* open
            if (s === undefined) {
              return rpcError(
                503,
                ServerError.Refused,
                `Too many sessions: this server keeps at most ${maxSessions}; end unused ones with DELETE ${PATH}, or wait for idle ones to expire.`,
                message.id
              )
            }
            return next._tag === "Reply"
              ? HttpServerResponse.unsafeJson(next.reply, { headers: { "mcp-session-id": s.id } })
              : yield* Effect.dieMessage("initialize is answered at once")
          }
          return yield* within(
            named,
            next._tag === "Reply"
              ? Effect.succeed(HttpServerResponse.unsafeJson(next.reply))
              : Effect.map(call(next.name, next.args), (result) => HttpServerResponse.unsafeJson(next.reply(result)))
          )
        })

      const remove = (request: HttpServerRequest.HttpServerRequest) =>
        Effect.map(sessionOf(request), (found) => {
          if (Either.isLeft(found)) return found.left
          if (found.right === undefined) return rpcError(400, ServerError.Refused, "Bad Request: Mcp-Session-Id header required: it names the session to end.")
          sessions.delete(found.right.id)
          return HttpServerResponse.empty({ status: 204 })
        })

      yield* router.add("*", PATH, (request) => {
        const forbidden = originRefused(request)
        if (forbidden !== undefined) return Effect.succeed(rpcError(403, ServerError.Refused, forbidden))
        const version = request.headers["mcp-protocol-version"]
        if (version !== undefined && !PROTOCOL_VERSIONS.includes(version)) {
          return Effect.succeed(rpcError(
            400,
            ServerError.Refused,
            `Bad Request: unsupported MCP-Protocol-Version ${version.slice(0, 40)}; this server speaks ${PROTOCOL_VERSIONS.join(", ")}.`
          ))
        }
        switch (request.method) {
          case "POST":
            return post(request)
          case "DELETE":
            return remove(request)
          default:
            return Effect.succeed(rpcError(
              405,
              ServerError.Refused,
              `Method Not Allowed: ${PATH} takes POST (one JSON-RPC message) and DELETE (end the session); this server opens no stream of its own messages.`,
              null,
              { allow: "POST, DELETE" }
            ))
        }
      })
    })
  )
