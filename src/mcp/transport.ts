/**
 * A stdio transport for the MCP server that guards what it parses: a line longer than
 * the limit is never parsed (only its request id is picked out of its head or tail, to
 * answer it), a line nested deeper than the limit is refused before `JSON.parse`, and
 * chunks are kept in a list rather than concatenated on every read. Each refusal is
 * answered as a tool error result (`isError`) for `tools/call`, or as a JSON-RPC error.
 *
 * @since 0.1.0
 */
import type { Readable, Writable } from "node:stream"
import type { Id, Message, Transport } from "./protocol.js"
import { ErrorCode, toMessage } from "./protocol.js"
import { MAX_EVIDENCE_BYTES, MAX_MESSAGE_DEPTH, rawDepthExceeds } from "./safety.js"
import { refusal } from "./toolSpec.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface GuardOptions {
  /** the longest line parsed, in bytes */
  readonly maxLineBytes: number
  /** the deepest nesting parsed */
  readonly maxDepth: number
  /** the answer to a refused `tools/call` */
  readonly refusal: (reason: "too_large" | "too_deep", bytes: number) => { readonly content: ReadonlyArray<unknown>; readonly isError: true }
}

const KEEP = 64 * 1024
const NEWLINE = 0x0a

/** Skips one JSON value starting at `i` (after whitespace); returns the index after it, or -1. */
const skipValue = (b: Uint8Array, i: number): number => {
  let depth = 0
  let inString = false
  for (; i < b.length; i++) {
    const c = b[i]!
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) {
        inString = false
        if (depth === 0) return i + 1
      }
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      depth--
      if (depth === 0) return i + 1
      if (depth < 0) return i
    } else if (depth === 0 && (c === 0x2c)) return i
  }
  return -1
}

const skipSpace = (b: Uint8Array, i: number) => {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0d || b[i] === 0x0a)) i++
  return i
}

/** Reads the top-level `id` and `method` of a JSON-RPC message without parsing the rest. */
const scanEnvelope = (b: Uint8Array): { id?: Id; method?: string } => {
  const out: { id?: Id; method?: string } = {}
  const text = (from: number, to: number) => Buffer.from(b.buffer, b.byteOffset + from, to - from).toString("utf8")
  let i = skipSpace(b, 0)
  if (b[i] !== 0x7b) return out
  i++
  while (i < b.length) {
    i = skipSpace(b, i)
    if (b[i] !== 0x22) return out
    const keyEnd = skipValue(b, i)
    if (keyEnd < 0) return out
    let key: unknown
    try {
      key = JSON.parse(text(i, keyEnd))
    } catch {
      return out
    }
    i = skipSpace(b, keyEnd)
    if (b[i] !== 0x3a) return out
    i = skipSpace(b, i + 1)
    const end = skipValue(b, i)
    if (end < 0) return out
    if (key === "id" || key === "method") {
      try {
        const v = JSON.parse(text(i, end))
        if (key === "id" && (typeof v === "string" || typeof v === "number")) out.id = v
        if (key === "method" && typeof v === "string") out.method = v
      } catch {
        // ignore a malformed value
      }
    }
    i = skipSpace(b, end)
    if (b[i] === 0x2c) i++
    else return out
  }
  return out
}

const TAIL_ID = /"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})\s*\}\s*$/
const HEAD_METHOD = /"method"\s*:\s*"([^"\\]{1,100})"/

/**
 * The guarded stdio transport.
 *
 * @since 0.1.0
 * @category constructors
 */
export class GuardedStdioTransport implements Transport {
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: ((message: Message) => void) | undefined

  private chunks: Array<Buffer> = []
  private size = 0
  /** while a line is over the limit: its first and last bytes only */
  private overflow: { head: Buffer; tail: Buffer } | undefined
  private closed = false
  private drained: Promise<void> | undefined

  constructor(
    private readonly stdin: Readable,
    private readonly stdout: Writable,
    private readonly options: GuardOptions
  ) {}

  private readonly onData = (chunk: Buffer) => {
    try {
      let rest = chunk
      while (rest.length > 0) {
        const nl = rest.indexOf(NEWLINE)
        const piece = nl < 0 ? rest : rest.subarray(0, nl)
        this.append(piece)
        if (nl < 0) break
        this.endLine()
        rest = rest.subarray(nl + 1)
      }
    } catch (error) {
      this.onerror?.(error as Error)
    }
  }

  private readonly onEnd = () => {
    void this.close()
  }

  private readonly onStreamError = (error: Error) => {
    this.onerror?.(error)
  }

  private append(piece: Buffer) {
    if (piece.length === 0) return
    this.size += piece.length
    if (this.overflow !== undefined) {
      const tail = Buffer.concat([this.overflow.tail, piece])
      this.overflow.tail = tail.length > KEEP ? Buffer.from(tail.subarray(tail.length - KEEP)) : tail
      return
    }
    this.chunks.push(piece)
    if (this.size > this.options.maxLineBytes) {
      const all = Buffer.concat(this.chunks)
      this.overflow = {
        head: Buffer.from(all.subarray(0, KEEP)),
        tail: Buffer.from(all.subarray(Math.max(0, all.length - KEEP)))
      }
      this.chunks = []
    }
  }

  private endLine() {
    const size = this.size
    const overflow = this.overflow
    const line = overflow === undefined ? Buffer.concat(this.chunks) : undefined
    this.chunks = []
    this.size = 0
    this.overflow = undefined
    if (overflow !== undefined) {
      const head = scanEnvelope(overflow.head)
      let id = head.id
      if (id === undefined) {
        const m = TAIL_ID.exec(overflow.tail.toString("utf8"))
        if (m !== null) id = JSON.parse(m[1]!) as Id
      }
      const method = head.method ?? HEAD_METHOD.exec(overflow.head.toString("utf8"))?.[1]
      return this.refuse(id, method, "too_large", size)
    }
    if (line === undefined || line.length === 0 || (line.length === 1 && line[0] === 0x0d)) return
    if (rawDepthExceeds(line, this.options.maxDepth)) {
      const env = scanEnvelope(line)
      return this.refuse(env.id, env.method, "too_deep", size)
    }
    let json: unknown
    try {
      json = JSON.parse(line.toString("utf8"))
    } catch (error) {
      void this.send({ jsonrpc: "2.0", id: null, error: { code: ErrorCode.ParseError, message: `Parse error: ${(error as Error).message}` } })
      return
    }
    const message = toMessage(json)
    if (message === undefined) {
      const id = typeof json === "object" && json !== null ? (json as { id?: unknown }).id : undefined
      void this.send({
        jsonrpc: "2.0",
        id: typeof id === "string" || typeof id === "number" ? id : null,
        error: { code: ErrorCode.InvalidRequest, message: "Invalid Request: not a JSON-RPC 2.0 message" }
      })
      return
    }
    this.onmessage?.(message)
  }

  private refuse(id: Id | undefined, method: string | undefined, reason: "too_large" | "too_deep", bytes: number) {
    if (id === undefined) {
      this.onerror?.(new Error(`Dropped a ${reason === "too_large" ? "too large" : "too deeply nested"} message of ${bytes} bytes without an id`))
      return
    }
    const message: Message = method === "tools/call"
      ? { jsonrpc: "2.0", id, result: this.options.refusal(reason, bytes) }
      : {
        jsonrpc: "2.0",
        id,
        error: {
          code: ErrorCode.InvalidRequest,
          message: reason === "too_large"
            ? `Request of ${bytes} bytes is larger than the limit of ${this.options.maxLineBytes} bytes`
            : `Request nests deeper than ${this.options.maxDepth} levels`
        }
      }
    void this.send(message)
  }

  async start(): Promise<void> {
    this.stdin.on("data", this.onData)
    this.stdin.on("end", this.onEnd)
    this.stdin.on("close", this.onEnd)
    this.stdin.on("error", this.onStreamError)
  }

  send(message: Message): Promise<void> {
    if (this.closed) return Promise.resolve()
    if (this.stdout.write(JSON.stringify(message) + "\n")) return Promise.resolve()
    // one drain listener however many writes wait for it
    this.drained ??= new Promise<void>((resolve) =>
      this.stdout.once("drain", () => {
        this.drained = undefined
        resolve()
      })
    )
    return this.drained
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.stdin.off("data", this.onData)
    this.stdin.off("end", this.onEnd)
    this.stdin.off("close", this.onEnd)
    this.stdin.off("error", this.onStreamError)
    this.stdin.pause()
    this.chunks = []
    this.overflow = undefined
    this.onclose?.()
  }
}

/** a request line longer than this is refused unparsed: the evidence limit plus room for the envelope */
const MAX_LINE_BYTES = MAX_EVIDENCE_BYTES + 64 * 1024

/**
 * The server's transport: process.stdin and process.stdout, guarded with the tool's limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stdio = (): GuardedStdioTransport =>
  new GuardedStdioTransport(process.stdin, process.stdout, { maxLineBytes: MAX_LINE_BYTES, maxDepth: MAX_MESSAGE_DEPTH, refusal })
