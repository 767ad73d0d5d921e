/**
 * The audit log plugin: one JSON line per committed change and per accepted request, with
 * who asked for it, appended to a file and rotated by size.
 *
 * ```ts
 * Runtime.layer({ procedures: [Deploy], plugins: [AuditLog.jsonl({ path: "audit/proctor.jsonl" })] })
 * ```
 *
 * Lines are written after the commit, from the plugin's own fiber: a crash between the two
 * loses the lines not yet written (the store's history keeps every transition; `proctor
 * export` writes it out), and a full queue drops lines and counts them
 * (`proctor_plugin_dropped{plugin="audit-log"}`) rather than hold an execution back.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Plugin, Record } from "./Plugin.js"
import { make } from "./Plugin.js"

/**
 * Options of `AuditLog.jsonl`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** the file lines are appended to; its folder is created if missing */
  readonly path: string
  /** the size past which the file is rotated (`path` → `path.1` → … → `path.<keep>`). @default 10 MiB */
  readonly maxBytes?: number | undefined
  /** rotated files kept; older ones are deleted. @default 5 */
  readonly keep?: number | undefined
  /** records waiting to be written beyond which new ones are dropped (and counted). @default 10000 */
  readonly queue?: number | undefined
}

/**
 * One record as the audit log writes it: `kind` (`transition`, `error` or `request`), the
 * time as an ISO string, the execution, and what happened.
 *
 * @since 0.1.0
 * @category formatting
 */
export const line = (r: Record): { readonly [key: string]: unknown } => {
  switch (r._tag) {
    case "Transition": {
      const t = r.transition
      return {
        at: new Date(t.at).toISOString(),
        kind: "transition",
        executionId: t.executionId,
        procedure: r.snapshot.procedure,
        version: r.snapshot.version,
        ...(r.snapshot.tenant === undefined ? {} : { tenant: r.snapshot.tenant }),
        seq: t.seq,
        from: t.from,
        to: t.to,
        status: t.status,
        cause: t.cause,
        ...(t.reason === undefined ? {} : { reason: t.reason }),
        ...(r.by === undefined ? {} : { by: r.by })
      }
    }
    case "Error": {
      const e = r.entry
      return {
        at: new Date(e.at).toISOString(),
        kind: "error",
        executionId: e.executionId,
        state: e.state,
        attempt: e.attempt,
        tag: e.tag,
        message: e.message,
        transient: e.transient
      }
    }
    case "Request":
      return {
        at: new Date(r.at).toISOString(),
        kind: "request",
        request: r.request,
        executionId: r.executionId,
        ...(r.detail === undefined ? {} : { detail: r.detail }),
        ...(r.seq === undefined ? {} : { seq: r.seq }),
        ...(r.by === undefined ? {} : { by: r.by })
      }
  }
}

const missing = (error: unknown) => (error as NodeJS.ErrnoException).code === "ENOENT"

/**
 * The audit log plugin (see the module's comment).
 *
 * @since 0.1.0
 * @category plugins
 */
export const jsonl = (options: Options): Plugin => {
  const file = path.resolve(options.path)
  const maxBytes = options.maxBytes ?? 10 * 1024 * 1024
  const keep = Math.max(1, Math.floor(options.keep ?? 5))
  let size: number | undefined
  const rotate = async () => {
    await fs.promises.rm(`${file}.${keep}`, { force: true })
    for (let i = keep - 1; i >= 1; i--) {
      await fs.promises.rename(`${file}.${i}`, `${file}.${i + 1}`).catch((error) => missing(error) ? undefined : Promise.reject(error))
    }
    await fs.promises.rename(file, `${file}.1`)
  }
  /** appends the records' lines, rotating before a line that would take the file past `maxBytes` */
  const write = async (records: ReadonlyArray<Record>) => {
    let current: number
    if (size === undefined) {
      await fs.promises.mkdir(path.dirname(file), { recursive: true })
      current = await fs.promises.stat(file).then((s): number => s.size, (error): Promise<number> | number => missing(error) ? 0 : Promise.reject(error))
    } else current = size
    let chunk = ""
    let chunkBytes = 0
    for (const record of records) {
      const text = JSON.stringify(line(record)) + "\n"
      const bytes = Buffer.byteLength(text)
      if (current + chunkBytes > 0 && current + chunkBytes + bytes > maxBytes) {
        if (chunk !== "") await fs.promises.appendFile(file, chunk, { mode: 0o600 })
        await rotate()
        current = chunkBytes = 0
        chunk = ""
      }
      chunk += text
      chunkBytes += bytes
    }
    if (chunk !== "") await fs.promises.appendFile(file, chunk, { mode: 0o600 })
    size = current + chunkBytes
  }
  return make({
    name: "audit-log",
    queue: options.queue,
    handle: (records) => Effect.tryPromise(() => write(records))
  })
}
