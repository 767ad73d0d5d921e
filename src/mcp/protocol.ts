/**
 * The server's side of the MCP protocol, for a server that offers tools and nothing else:
 * the JSON-RPC 2.0 message shapes, `step`, which says how to answer `initialize`, `ping`,
 * `tools/list` and `tools/call` and refuses any other request as "method not found", and
 * `serve`, which answers them on a transport of messages (stdio). The Streamable HTTP
 * transport (http.ts) answers with the same `step`.
 *
 * The SDK's `Server` does the same, but it loads zod and ajv for capabilities this server
 * does not offer (sampling, elicitation, tasks, logging): a third of the server's memory
 * and start-up time. The SDK's client is what the tests talk to, so this side is checked
 * against it.
 *
 * @since 0.1.0
 */

/**
 * A JSON-RPC request id.
 *
 * @since 0.1.0
 * @category models
 */
export type Id = string | number

/**
 * A JSON-RPC 2.0 message: a request (with an id), a notification (without), or a response.
 *
 * @since 0.1.0
 * @category models
 */
export type Message =
  | { readonly jsonrpc: "2.0"; readonly id: Id; readonly method: string; readonly params?: Record<string, unknown> }
  | { readonly jsonrpc: "2.0"; readonly method: string; readonly params?: Record<string, unknown> }
  | { readonly jsonrpc: "2.0"; readonly id: Id; readonly result: unknown }
  | { readonly jsonrpc: "2.0"; readonly id: Id | null; readonly error: { readonly code: number; readonly message: string } }

/**
 * JSON-RPC's error codes.
 *
 * @since 0.1.0
 * @category constants
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603
} as const

const isId = (u: unknown): u is Id => typeof u === "string" || typeof u === "number"
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * The message `json` is, or `undefined` when it is not a JSON-RPC 2.0 message.
 *
 * @since 0.1.0
 * @category parsing
 */
export const toMessage = (json: unknown): Message | undefined => {
  if (!isRecord(json) || json.jsonrpc !== "2.0") return undefined
  if (typeof json.method === "string") {
    if (json.params !== undefined && !isRecord(json.params)) return undefined
    return json.id === undefined || isId(json.id) ? json as Message : undefined
  }
  if (isId(json.id) && "result" in json) return json as Message
  if ((isId(json.id) || json.id === null) && isRecord(json.error)) return json as Message
  return undefined
}

/**
 * The protocol versions this server speaks, newest first (the SDK's list).
 *
 * @since 0.1.0
 * @category constants
 */
export const PROTOCOL_VERSIONS: ReadonlyArray<string> = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", "2024-10-07"]

/**
 * What `serve` needs of a transport (the guarded stdio transport is one).
 *
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  onmessage?: ((message: Message) => void) | undefined
  start(): Promise<void>
  send(message: Message): Promise<void>
}

/**
 * A server of tools.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolServer {
  readonly name: string
  readonly version: string
  /** the tools as `tools/list` shows them */
  readonly tools: ReadonlyArray<object>
  /** runs one call; a failure of the tool is a result with `isError`, so this never rejects for one */
  readonly call: (name: string, args: Record<string, unknown> | undefined) => Promise<object>
}

const failure = (id: Id, code: number, message: string): Message => ({ jsonrpc: "2.0", id, error: { code, message } })

/**
 * What a request asks of the server: an answer it has at once, or a call of one of its tools.
 *
 * @since 0.1.0
 * @category models
 */
export type Step =
  | { readonly _tag: "Reply"; readonly reply: Message }
  | {
    readonly _tag: "Call"
    readonly name: string
    readonly args: Record<string, unknown> | undefined
    /** the answer carrying the tool's result */
    readonly reply: (result: object) => Message
  }

/**
 * The protocol's answer to one request, for every transport: `initialize`, `ping` and
 * `tools/list` are answered at once; `tools/call` is a `Call` for the transport to run
 * its own way (a Promise on stdio, an Effect in the HTTP request's fiber); any other method
 * is "method not found".
 *
 * @since 0.1.0
 * @category dispatch
 */
export const step = (server: Pick<ToolServer, "name" | "version" | "tools">, id: Id, method: string, params: Record<string, unknown> | undefined): Step => {
  const result = (r: object): Message => ({ jsonrpc: "2.0", id, result: r })
  const reply = (message: Message): Step => ({ _tag: "Reply", reply: message })
  switch (method) {
    case "initialize": {
      const asked = params?.protocolVersion
      const protocolVersion = typeof asked === "string" && PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0]
      return reply(result({ protocolVersion, capabilities: { tools: {} }, serverInfo: { name: server.name, version: server.version } }))
    }
    case "ping":
      return reply(result({}))
    case "tools/list":
      return reply(result({ tools: server.tools }))
    case "tools/call": {
      const args = params?.arguments
      if (typeof params?.name !== "string" || (args !== undefined && !isRecord(args))) {
        return reply(failure(id, ErrorCode.InvalidParams, "Invalid params: tools/call takes { name: string, arguments?: object }"))
      }
      return { _tag: "Call", name: params.name, args, reply: result }
    }
    default:
      return reply(failure(id, ErrorCode.MethodNotFound, `Method not found: ${method}`))
  }
}

const answer = (server: ToolServer, id: Id, method: string, params: Record<string, unknown> | undefined): Promise<Message> => {
  const next = step(server, id, method, params)
  if (next._tag === "Reply") return Promise.resolve(next.reply)
  return server.call(next.name, next.args).then(next.reply, (error: unknown) =>
    failure(id, ErrorCode.InternalError, `Internal error: ${error instanceof Error ? error.message : String(error)}`))
}

/**
 * Serves `server` on `transport` until the transport closes: every request is answered
 * (calls run concurrently, each answered when it ends); notifications and responses are
 * ignored, as a server without requests of its own and without cancellable work may.
 *
 * @since 0.1.0
 * @category entry points
 */
export const serve = (transport: Transport, server: ToolServer): Promise<void> => {
  transport.onmessage = (message) => {
    if (!("method" in message) || !("id" in message)) return
    void answer(server, message.id, message.method, message.params).then((reply) => transport.send(reply))
  }
  return transport.start()
}
