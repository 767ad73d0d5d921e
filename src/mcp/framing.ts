/**
 * One incoming MCP message, held and read under the tool's limits — the part both
 * transports share (stdio: one line; Streamable HTTP: one request body). `MessageBuffer`
 * keeps the bytes of a message as they arrive: whole while under the size limit, only its
 * first and last 64 KiB once over it. `receive` turns what was kept into a message, or into
 * the answer to a refused one: a message over the size limit is never parsed (its request id
 * and method are picked out of its head or tail, to answer it), one nested deeper than the
 * limit is refused before `JSON.parse`. A refused `tools/call` is answered with a tool error
 * result (`isError`), anything else with a JSON-RPC error.
 *
 * @since 0.1.0
 */
import type { Id, Message } from "./protocol.js"
import { ErrorCode, toMessage } from "./protocol.js"
import { MAX_EVIDENCE_BYTES, rawDepthExceeds } from "./safety.js"

/**
 * The limits a transport reads messages under.
 *
 * @since 0.1.0
 * @category models
 */
export interface GuardOptions {
  /** the largest message parsed, in bytes */
  readonly maxLineBytes: number
  /** the deepest nesting parsed */
  readonly maxDepth: number
  /** the answer to a refused `tools/call` */
  readonly refusal: (reason: "too_large" | "too_deep", bytes: number) => { readonly content: ReadonlyArray<unknown>; readonly isError: true }
}

/**
 * The largest message parsed, in bytes: the evidence limit plus room for the envelope.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_MESSAGE_BYTES = MAX_EVIDENCE_BYTES + 64 * 1024

const KEEP = 64 * 1024

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
 * The bytes of one message as they arrive, in a list of chunks rather than concatenated on
 * every read; past `maxBytes`, only the first and last 64 KiB are kept.
 *
 * @since 0.1.0
 * @category models
 */
export class MessageBuffer {
  private chunks: Array<Buffer> = []
  private overflow: { head: Buffer; tail: Buffer } | undefined
  /** the bytes received so far, kept or not */
  size = 0

  constructor(private readonly maxBytes: number) {}

  append(piece: Buffer): void {
    if (piece.length === 0) return
    this.size += piece.length
    if (this.overflow !== undefined) {
      const tail = Buffer.concat([this.overflow.tail, piece])
      this.overflow.tail = tail.length > KEEP ? Buffer.from(tail.subarray(tail.length - KEEP)) : tail
      return
    }
    this.chunks.push(piece)
    if (this.size > this.maxBytes) {
      const all = Buffer.concat(this.chunks)
      this.overflow = {
        head: Buffer.from(all.subarray(0, KEEP)),
        tail: Buffer.from(all.subarray(Math.max(0, all.length - KEEP)))
      }
      this.chunks = []
    }
  }

  /** What was kept, leaving the buffer empty for the next message. */
  take(): Kept {
    const kept: Kept = this.overflow === undefined
      ? { _tag: "Whole", bytes: Buffer.concat(this.chunks), size: this.size }
      : { _tag: "Overflow", ...this.overflow, size: this.size }
    this.chunks = []
    this.overflow = undefined
    this.size = 0
    return kept
  }
}

/**
 * What a `MessageBuffer` kept of one message.
 *
 * @since 0.1.0
 * @category models
 */
export type Kept =
  | { readonly _tag: "Whole"; readonly bytes: Buffer; readonly size: number }
  | { readonly _tag: "Overflow"; readonly head: Buffer; readonly tail: Buffer; readonly size: number }

/**
 * What became of one incoming message: a message to serve, the answer to a refused one, or
 * nothing to answer (a blank line; a refused message without an id, which cannot be answered).
 *
 * @since 0.1.0
 * @category models
 */
export type Received =
  | { readonly _tag: "Message"; readonly message: Message }
  | { readonly _tag: "Refused"; readonly reply: Message; readonly reason: "too_large" | "too_deep" | "parse" | "invalid" }
  | { readonly _tag: "Dropped"; readonly problem: string; readonly reason: "too_large" | "too_deep" }
  | { readonly _tag: "Empty" }

const refuse = (options: GuardOptions, id: Id | undefined, method: string | undefined, reason: "too_large" | "too_deep", bytes: number): Received => {
  if (id === undefined) {
    return { _tag: "Dropped", reason, problem: `Dropped a ${reason === "too_large" ? "too large" : "too deeply nested"} message of ${bytes} bytes without an id` }
  }
  const reply: Message = method === "tools/call"
    ? { jsonrpc: "2.0", id, result: options.refusal(reason, bytes) }
    : {
      jsonrpc: "2.0",
      id,
      error: {
        code: ErrorCode.InvalidRequest,
        message: reason === "too_large"
          ? `Request of ${bytes} bytes is larger than the limit of ${options.maxLineBytes} bytes`
          : `Request nests deeper than ${options.maxDepth} levels`
      }
    }
  return { _tag: "Refused", reply, reason }
}

/**
 * The message `kept` holds, or the answer to it when it is refused: over the size or depth
 * limit (unparsed), not JSON, or not a JSON-RPC 2.0 message.
 *
 * @since 0.1.0
 * @category parsing
 */
export const receive = (kept: Kept, options: GuardOptions): Received => {
  if (kept._tag === "Overflow") {
    const head = scanEnvelope(kept.head)
    let id = head.id
    if (id === undefined) {
      const m = TAIL_ID.exec(kept.tail.toString("utf8"))
      if (m !== null) id = JSON.parse(m[1]!) as Id
    }
    const method = head.method ?? HEAD_METHOD.exec(kept.head.toString("utf8"))?.[1]
    return refuse(options, id, method, "too_large", kept.size)
  }
  const line = kept.bytes
  if (line.length === 0 || (line.length === 1 && line[0] === 0x0d)) return { _tag: "Empty" }
  if (rawDepthExceeds(line, options.maxDepth)) {
    const env = scanEnvelope(line)
    return refuse(options, env.id, env.method, "too_deep", kept.size)
  }
  let json: unknown
  try {
    json = JSON.parse(line.toString("utf8"))
  } catch (error) {
    return {
      _tag: "Refused",
      reason: "parse",
      reply: { jsonrpc: "2.0", id: null, error: { code: ErrorCode.ParseError, message: `Parse error: ${(error as Error).message}` } }
    }
  }
  const message = toMessage(json)
  if (message === undefined) {
    const id = typeof json === "object" && json !== null ? (json as { id?: unknown }).id : undefined
    return {
      _tag: "Refused",
      reason: "invalid",
      reply: {
        jsonrpc: "2.0",
        id: typeof id === "string" || typeof id === "number" ? id : null,
        error: {
          code: ErrorCode.InvalidRequest,
          message: Array.isArray(json)
            ? "Invalid Request: batches are not supported (MCP 2025-06-18 removed them); send one message at a time"
            : "Invalid Request: not a JSON-RPC 2.0 message"
        }
      }
    }
  }
  return { _tag: "Message", message }
}
