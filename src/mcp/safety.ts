/**
 * Input checks of the MCP front end: session id format, target paths that must stay
 * inside the workspace root, and size and depth limits of JSON values.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"

/**
 * The largest evidence accepted, in bytes of JSON (10 MiB). A request whose raw line is
 * larger is refused by the transport before it is parsed.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_EVIDENCE_BYTES = 10 * 1024 * 1024

/**
 * The most evidence one phase may hold, in bytes of JSON: its draft (the fields kept from
 * failed submissions) with a new submission merged over it, or its artifact (10 MiB).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_PHASE_EVIDENCE_BYTES = 10 * 1024 * 1024

/**
 * The most evidence one session may record over its life, in bytes of JSON (16 MiB): every
 * submission, passed or failed, is kept in the session's history, so this bounds the
 * session's rows in the store and what reading it costs.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_SESSION_EVIDENCE_BYTES = 16 * 1024 * 1024

/**
 * The size of a JSON value, in bytes of its UTF-8 JSON text.
 *
 * @since 0.1.0
 * @category json
 */
export const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? "")

/**
 * How deep evidence and options may nest (objects and arrays).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_DEPTH = 32

/**
 * How deep a whole request may nest; the transport refuses deeper lines before parsing
 * (the request envelope takes 4 levels above the evidence).
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_MESSAGE_DEPTH = MAX_DEPTH + 8

/**
 * The largest `options` object accepted at start, in bytes of JSON.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_OPTIONS_BYTES = 64 * 1024

const SESSION_ID = /^ses_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/**
 * The session id format: `ses_` followed by a lowercase UUID v4.
 *
 * @since 0.1.0
 * @category session ids
 */
export const SESSION_ID_FORMAT = "ses_ followed by a lowercase UUID v4, e.g. ses_3f2b8c1e-9d4a-4e5f-8a7b-1c2d3e4f5a6b"

/**
 * @since 0.1.0
 * @category session ids
 */
export const isSessionId = (u: unknown): u is string => typeof u === "string" && SESSION_ID.test(u)

/**
 * A new session id.
 *
 * @since 0.1.0
 * @category session ids
 */
export const newSessionId = (): string => `ses_${crypto.randomUUID()}`

/**
 * Why a target path was refused, with what to do instead.
 *
 * @since 0.1.0
 * @category models
 */
export interface PathProblem {
  readonly reason: string
}

/**
 * C0 controls, DEL and C1 controls: a newline or an escape in a stored file name would
 * forge lines in logs and terminals, and no editor names a file that way.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** `C:`, `C:/x` or `C:\x`: a drive on Windows. `a:b.ts` is an ordinary relative name on POSIX. */
const WINDOWS_DRIVE = /^[A-Za-z]:(?:[\\/]|$)/

/**
 * Checks that `target` names a file inside `root` and returns it relative to the root
 * (with `/` separators). Refused: empty paths, NUL bytes and other control characters
 * (C0, DEL, C1), URL-encoded characters (such as `%2e%2e`), backslashes, absolute paths
 * (`/x`, `C:/x`, `C:\x`, `~/x`; `a:b.ts` is relative), any `..` segment
 * (also after Unicode normalization), and paths whose existing part resolves (through
 * symlinks, with realpath) outside the root. The file itself need not exist.
 *
 * @since 0.1.0
 * @category paths
 */
export const checkTarget = (root: string, target: string): { readonly ok: string } | PathProblem => {
  if (target.length === 0) return { reason: "target_file is empty; pass a path relative to the workspace root" }
  if (target.length > 4096) return { reason: "target_file is longer than 4096 characters" }
  if (target.includes("\0")) return { reason: "target_file contains a NUL byte" }
  const control = CONTROL.exec(target)
  if (control !== null) {
    const code = `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`
    return { reason: `target_file contains a control character (${code}) at index ${control.index}; pass a plain file name` }
  }
  if (/%[0-9a-fA-F]{2}/.test(target)) {
    return { reason: "target_file contains URL-encoded characters (such as %2e); pass the plain path, not an encoded one" }
  }
  if (target.includes("\\")) return { reason: "target_file contains a backslash; use / as the separator" }
  if (path.isAbsolute(target) || target.startsWith("~") || WINDOWS_DRIVE.test(target)) {
    return { reason: "target_file is absolute; pass a path relative to the workspace root" }
  }
  const normalizedUnicode = target.normalize("NFKC")
  for (const candidate of [target, normalizedUnicode]) {
    if (candidate.split("/").some((s) => s === "..")) {
      return { reason: "target_file contains a \"..\" segment; paths must stay inside the workspace root" }
    }
  }
  let realRoot: string
  try {
    realRoot = fs.realpathSync(root)
  } catch {
    return { reason: `the workspace root ${root} does not exist; start the server with --root DIR` }
  }
  const resolved = path.resolve(realRoot, target)
  if (resolved !== realRoot && !resolved.startsWith(realRoot + path.sep)) {
    return { reason: "target_file resolves outside the workspace root" }
  }
  // find the longest existing prefix and resolve its symlinks
  let existing = resolved
  while (true) {
    let stat: fs.Stats | undefined
    try {
      stat = fs.lstatSync(existing)
    } catch {
      stat = undefined
    }
    if (stat !== undefined) {
      let real: string
      try {
        real = fs.realpathSync(existing)
      } catch {
        return { reason: "target_file goes through a dangling symlink; pass a path to a real file inside the workspace root" }
      }
      if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
        return { reason: "target_file goes through a symlink that points outside the workspace root" }
      }
      break
    }
    const parent = path.dirname(existing)
    if (parent === existing) break
    existing = parent
  }
  const relative = path.relative(realRoot, resolved).split(path.sep).join("/")
  if (relative === "") return { reason: "target_file names the workspace root itself; pass a file inside it" }
  return { ok: relative }
}

/**
 * How deep a JSON value nests (a scalar is 0, `[]` is 1), stopping as soon as `limit` is
 * passed. Iterative, so a hostile value cannot overflow the stack.
 *
 * @since 0.1.0
 * @category json
 */
export const depthExceeds = (value: unknown, limit: number): boolean => {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [v, d] = stack.pop()!
    if (typeof v !== "object" || v === null) continue
    if (d + 1 > limit) return true
    const children = Array.isArray(v) ? v : Object.values(v)
    for (const c of children) if (typeof c === "object" && c !== null) stack.push([c, d + 1])
  }
  return false
}

/**
 * The maximum nesting depth of a raw JSON text (bytes), without parsing it: brackets
 * inside strings are skipped. Stops early when `limit` is passed.
 *
 * @since 0.1.0
 * @category json
 */
export const rawDepthExceeds = (bytes: Uint8Array, limit: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (inString) {
      if (b === 0x5c) i++ // backslash: skip the escaped byte
      else if (b === 0x22) inString = false
      continue
    }
    if (b === 0x22) inString = true
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true
    } else if (b === 0x7d || b === 0x5d) depth--
  }
  return false
}
