/**
 * A stdio transport for the MCP server that guards what it parses: each line is one
 * message, held and read under the tool's limits by framing.ts (the Streamable HTTP
 * transport, http.ts, reads request bodies the same way): a line longer than the limit is
 * never parsed, a line nested deeper than the limit is refused before `JSON.parse`. Each
 * refusal is answered as a tool error result (`isError`) for `tools/call`, or as a JSON-RPC error.
 *
 * @since 0.1.0
 */
import type { Readable, Writable } from "node:stream"
import * as Framing from "./framing.js"
import type { Message, Transport } from "./protocol.js"
import { MAX_MESSAGE_DEPTH } from "./safety.js"
import { refusal } from "./toolSpec.js"

/**
 * @since 0.1.0
 * @category models
 */
export type GuardOptions = Framing.GuardOptions

const NEWLINE = 0x0a

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

  private readonly buffer: Framing.MessageBuffer
  private closed = false
  private drained: Promise<void> | undefined

  constructor(
    private readonly stdin: Readable,
    private readonly stdout: Writable,
    private readonly options: GuardOptions
  ) {
    this.buffer = new Framing.MessageBuffer(options.maxLineBytes)
  }

  private readonly onData = (chunk: Buffer) => {
    try {
      let rest = chunk
      while (rest.length > 0) {
        const nl = rest.indexOf(NEWLINE)
        this.buffer.append(nl < 0 ? rest : rest.subarray(0, nl))
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

  private endLine() {
    const received = Framing.receive(this.buffer.take(), this.options)
    switch (received._tag) {
      case "Message":
        return this.onmessage?.(received.message)
      case "Refused":
        return void this.send(received.reply)
      case "Dropped":
        return this.onerror?.(new Error(received.problem))
      case "Empty":
        return
    }
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
    this.buffer.take()
    this.onclose?.()
  }
}

/**
 * The server's transport: process.stdin and process.stdout, guarded with the tool's limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stdio = (): GuardedStdioTransport =>
  new GuardedStdioTransport(process.stdin, process.stdout, { maxLineBytes: Framing.MAX_MESSAGE_BYTES, maxDepth: MAX_MESSAGE_DEPTH, refusal })
