/**
 * The server's side of the MCP protocol, for a server that offers tools and nothing else:
 * the JSON-RPC 2.0 message shapes, and `serve`, which answers `initialize`, `ping`,
 * `tools/list` and `tools/call` and refuses any other request as "method not found".
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

const answer = (server: ToolServer, id: Id, method: string, params: Record<string, unknown> | undefined): Promise<Message> => {
  const result = (r: object): Message => ({ jsonrpc: "2.0", id, result: r })
  switch (method) {
    case "initialize": {
      const asked = params?.protocolVersion
      const protocolVersion = typeof asked === "string" && PROTOCOL_VERSIONS.includes(asked) ? asked : PROTOCOL_VERSIONS[0]
      return Promise.resolve(result({ protocolVersion, capabilities: { tools: {} }, serverInfo: { name: server.name, version: server.version } }))
    }
    case "ping":
      return Promise.resolve(result({}))
    case "tools/list":
      return Promise.resolve(result({ tools: server.tools }))
    case "tools/call": {
      const args = params?.arguments
      if (typeof params?.name !== "string" || (args !== undefined && !isRecord(args))) {
        return Promise.resolve(failure(id, ErrorCode.InvalidParams, "Invalid params: tools/call takes { name: string, arguments?: object }"))
      }
      return server.call(params.name, args).then(result, (error: unknown) =>
        failure(id, ErrorCode.InternalError, `Internal error: ${error instanceof Error ? error.message : String(error)}`))
    }
    default:
      return Promise.resolve(failure(id, ErrorCode.MethodNotFound, `Method not found: ${method}`))
  }
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
