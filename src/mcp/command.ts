/**
 * `proctor mcp` without the rest of the CLI. The `proctor` command loads this module instead
 * of the CLI for `proctor mcp ...`, so that the server's process holds the MCP server and
 * nothing else (the CLI's parser, HTTP server and dashboard would double its memory).
 * Arguments this module does not take as they are (`--help`, an unknown or malformed option)
 * go to the full CLI, which answers them as it does for any command.
 *
 * It answers the protocol at once (initialize, tools/list) with modules that do not need
 * Effect, and loads the server (src/mcp/serve.ts) meanwhile: tool calls that come before the
 * server is ready wait for it.
 *
 * @since 0.1.0
 */
import * as v8 from "node:v8"
import * as Protocol from "./protocol.js"
import { SERVER_INFO, tool } from "./toolSpec.js"
import { stdio } from "./transport.js"

const VALUE_FLAGS = ["--db", "--workflows", "--root", "--max-phase-bytes", "--max-session-bytes"]
const BYTE_FLAGS = ["--max-phase-bytes", "--max-session-bytes"]

/**
 * The server's arguments for the options after `mcp`, when this module can serve them as
 * they are: each a known flag given once with a value (`--flag value`), byte limits positive
 * whole numbers; `PROCTOR_DB` is the database when `--db` is not given, as for the other
 * commands. `undefined` sends the options to the full CLI.
 *
 * @since 0.1.0
 * @category parsing
 */
export const serverArgv = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): ReadonlyArray<string> | undefined => {
  const seen = new Set<string>()
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!
    const value = args[i + 1]
    if (!VALUE_FLAGS.includes(name) || seen.has(name) || value === undefined || value.startsWith("--")) return undefined
    if (BYTE_FLAGS.includes(name) && !(/^[1-9]\d*$/.test(value) && Number.isSafeInteger(Number(value)))) return undefined
    seen.add(name)
  }
  const db = env.PROCTOR_DB
  return !seen.has("--db") && db !== undefined && db !== "" ? [...args, "--db", db] : args
}

/**
 * Keeps V8's young generation at its first size instead of letting it grow to 16 MiB a
 * half: the server's allocations are small and short-lived, and a grown young generation
 * stays resident. Set before the server's modules load, whose loading would grow it.
 * Applied only on the V8 versions known to have the flag (Node 20 to 24), because V8 prints
 * an unknown flag's error on stdout, which carries the protocol.
 */
const smallYoungGeneration = () => {
  const major = Number(process.versions.v8.split(".")[0])
  if (major >= 11 && major <= 13) v8.setFlagsFromString("--semi-space-growth-factor=1")
}

/**
 * Runs `proctor mcp` with the options after `mcp`: the server itself when `serverArgv`
 * takes them, else the full CLI.
 *
 * @since 0.1.0
 * @category entry points
 */
export const main = async (args: ReadonlyArray<string>): Promise<void> => {
  const argv = serverArgv(args)
  if (argv === undefined) {
    await import("../cli/main.js")
    return
  }
  smallYoungGeneration()
  const transport = stdio()
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve
  })
  const server = import("./serve.js").then((m) => m.serve(argv, closed), (error: unknown) => {
    process.stderr.write(`Error: The MCP server could not be loaded: ${error instanceof Error ? error.message : String(error)}. Reinstall Proctor (npm ci).\n`)
    return process.exit(1)
  })
  await Protocol.serve(transport, {
    ...SERVER_INFO,
    tools: [tool],
    call: (name, args) => server.then((call) => call(name, args))
  })
}
