/**
 * Plugins: code that sees every change the runtime commits — transitions, error-log entries
 * (failed attempts, failed compensations, discarded events) — and every request a caller made
 * (`start`, `send`, operator commands) with who made it, after it is committed. An audit log,
 * a structured logger, a feed to another system.
 *
 * A plugin never holds an execution back: each has a bounded queue and a fiber of its own;
 * when the queue is full, records are dropped and counted; a plugin that fails or takes longer
 * than its `timeout` is logged and counted, and the next records go on.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect, FiberRef } from "effect"
import { dual } from "effect/Function"
import type { Command, ErrorEntry, Snapshot, Transition } from "./Execution.js"

/**
 * What a plugin is shown, in commit order per execution:
 * - `Transition`: a committed transition and the execution's snapshot after it; `by` is who
 *   asked for it, on the transition of a `start`, of an operator command (`pause`, `cancel`,
 *   …) or of a `migrate`, and on an event's transition committed by the sender's own call;
 * - `Error`: an entry committed to an execution's error log (a failed attempt, a failed
 *   compensation, a discarded event);
 * - `Request`: a caller's request the runtime accepted, with `by`, who asked for it (see
 *   `requestedBy`), once `send`, `sendAndWait` or the command returns: the event is durable
 *   (in the inbox, or consumed by the commit that recorded it; the transition that consumes
 *   it may come before or after this record), the command's transition is committed (`seq`
 *   names it: the command's record follows its transition).
 *
 * @since 0.1.0
 * @category models
 */
export type Record =
  | { readonly _tag: "Transition"; readonly transition: Transition; readonly snapshot: Snapshot; readonly by: string | undefined }
  | { readonly _tag: "Error"; readonly entry: ErrorEntry }
  | {
    readonly _tag: "Request"
    readonly request: "send" | Command
    readonly executionId: string
    /** who asked (`requestedBy`), when the front end or the application said */
    readonly by: string | undefined
    /** the event's tag (`send`), the target state (`skip`), the reason (`cancel`) */
    readonly detail: string | undefined
    /** the execution's `seq` after the request: a command's transition, a `sendAndWait`'s; none for `send` */
    readonly seq: number | undefined
    readonly at: number
  }

/**
 * A plugin: `handle` is given the records in batches, in order, from a fiber of its own.
 *
 * @since 0.1.0
 * @category models
 */
export interface Plugin {
  /** names the plugin in logs and metrics (`proctor_plugin_dropped{plugin}`, `proctor_plugin_failures{plugin}`) */
  readonly name: string
  readonly handle: (records: ReadonlyArray<Record>) => Effect.Effect<void, unknown>
  /** records waiting for the plugin beyond which new ones are dropped (and counted). @default 10000 */
  readonly queue?: number | undefined
  /** the longest one `handle` call may take before it is abandoned (and counted as a failure). @default "5 seconds" */
  readonly timeout?: Duration.DurationInput | undefined
  /** the most records given to one `handle` call. @default 512 */
  readonly batch?: number | undefined
  /** how long closing the runtime waits for the plugin to take what is still queued. @default "2 seconds" */
  readonly drain?: Duration.DurationInput | undefined
}

/**
 * Makes a plugin.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (plugin: Plugin): Plugin => plugin

/**
 * Who is asking, for the `Request` records plugins see: the HTTP API sets `http:<token name>`
 * (or `http:local` without a token), the CLI `cli:<user>`, the MCP tool `mcp:<client>`. An
 * application sets it around its own calls with `withRequester`.
 *
 * @since 0.1.0
 * @category fiber refs
 */
export const requestedBy: FiberRef.FiberRef<string | undefined> = FiberRef.unsafeMake<string | undefined>(undefined)

/**
 * Runs `effect` on behalf of `by` (see `requestedBy`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRequester: {
  (by: string): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(effect: Effect.Effect<A, E, R>, by: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(effect: Effect.Effect<A, E, R>, by: string) => Effect.locally(effect, requestedBy, by))

/**
 * A plugin that logs each record with Effect's logger at `level` (annotated with the
 * execution id, so a JSON logger gives one structured line per record).
 *
 * @since 0.1.0
 * @category plugins
 */
export const logger = (options?: { readonly level?: "Debug" | "Info" | "Warning" | undefined }): Plugin => {
  const log = options?.level === "Debug" ? Effect.logDebug : options?.level === "Warning" ? Effect.logWarning : Effect.logInfo
  return make({
    name: "logger",
    handle: (records) =>
      Effect.forEach(records, (r) => {
        const id = r._tag === "Transition" ? r.transition.executionId : r._tag === "Error" ? r.entry.executionId : r.executionId
        return log(describe(r)).pipe(Effect.annotateLogs({ executionId: id, record: r._tag }))
      }, { discard: true })
  })
}

/**
 * One line of text for a record, as the logger plugin writes it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (r: Record): string => {
  switch (r._tag) {
    case "Transition": {
      const t = r.transition
      const reason = t.reason === undefined ? "" : `: ${t.reason}`
      return `${r.snapshot.procedure}: ${t.from} → ${t.to} (${t.status}, ${t.cause})${reason}${r.by === undefined ? "" : ` by ${r.by}`}`
    }
    case "Error":
      return `error in ${r.entry.state}, attempt ${r.entry.attempt}: ${r.entry.tag}: ${r.entry.message}`
    case "Request":
      return `${r.request}${r.detail === undefined ? "" : ` ${r.detail}`}${r.by === undefined ? "" : ` by ${r.by}`}`
  }
}
