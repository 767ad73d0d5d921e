/**
 * The CLI's text rules, without any output: `@effect/cli`'s help tidied, ANSI codes removed,
 * and the core's error messages put in the CLI's words. Pure functions, re-exported by
 * `output.ts`, which is what commands use.
 *
 * @since 0.1.0
 */

/** a usage line, `$ list ...` (after any colour codes), that does not name the program yet */
const usageLine = new RegExp(`^((?:${String.fromCharCode(27)}\\[[0-9;]*m)*)\\$ (?!proctor\\b)`)

/** what `@effect/cli` writes under every option of a kind, saying nothing about this one */
const filler = new Set([
  "A user-defined piece of text.",
  "A true or false value.",
  "An integer.",
  "A floating point number.",
  "This setting is optional.",
  "This option may be repeated zero or more times.",
  "This argument may be repeated zero or more times.",
  "This option can be set from environment variables.",
  "This argument can be set from environment variables."
])

/**
 * `@effect/cli`'s help without the filler it adds under each option ("A user-defined piece
 * of text.", "This setting is optional."), and with usage lines that read as typed
 * (`$ proctor list ...`, not `$ list ...`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const tidyHelp = (text: string): string =>
  text
    .split("\n")
    .filter((l) => !filler.has(stripAnsi(l).trim()) && !/^One of the following:/.test(stripAnsi(l).trim()))
    .map((l) => l.replace(usageLine, "$1$ proctor "))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")

const ansiPattern = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g")

/**
 * Removes ANSI colour codes (for output that is not a terminal).
 *
 * @since 0.1.0
 * @category formatting
 */
export const stripAnsi = (s: string): string => s.replace(ansiPattern, "")

/** the core's errors name the library's functions; the CLI says which command to type */
const libraryWords: ReadonlyArray<readonly [RegExp, string]> = [
  [/Check the id \(Runtime\.list shows the known ones\) and that the runtime uses the same store it was started on\./, "Check the id (`proctor list` shows the known ones) and --db or --server."],
  [/Call Runtime\.retry to run the step again, Runtime\.skip to move to another state, Runtime\.rollback to undo completed steps, or Runtime\.cancel\./, "Run `proctor retry <id>` to run the step again, `proctor skip <id> <state>` to move to another state, `proctor rollback <id>` to undo completed steps, or `proctor cancel <id>`."],
  [/register it in Runtime\.layer to resume its executions|add it to Runtime\.layer\(\{ procedures \}\)/g, "pass the module that exports it with --module PATH (or PROCTOR_MODULES)"],
  [/Retry after (.+?), or pass `waitForQuota` to Runtime\.start to wait for room\./, "Run the command again after $1."],
  [/Runtime\.start\b/g, "`proctor run`"],
  [/Runtime\.(list|send|pause|resume|cancel|rollback|retry|skip|show)\b/g, "`proctor $1`"],
  [/Runtime\.get\b/g, "`proctor show`"]
]

/**
 * An error's message in the CLI's words: where the library says `Runtime.list`, the CLI
 * says `proctor list`; a database locked by another process says how to reach it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const cliWords = (message: string, tag: string): string => {
  const locked = tag !== "StoreError" ? null : /\(Locked\): the SQLite database (\S+) is in use: (?:host \S+ \()?(?:process|pid) (\d+)/.exec(message)
  if (locked !== null) {
    const [, file, pid] = locked
    return `The database ${file} is owned by another process (pid ${pid}). \`proctor list\` and \`proctor show\` read it ` +
      `anyway; to change its executions, go through that process: if it serves Proctor's HTTP API (\`proctor serve\`, or ` +
      `Server.layerNode in the application), pass --server URL or set PROCTOR_SERVER; otherwise stop it first. ` +
      `(If no such process runs, delete ${file}.lock.)`
  }
  let out = message
  for (const [pattern, words] of libraryWords) out = out.replace(pattern, words)
  if (tag === "InvalidTransition" && out.includes("is not registered")) {
    out += " Register its procedure with --module PATH (or PROCTOR_MODULES), or run the command against the server that runs it."
  }
  return out
}
