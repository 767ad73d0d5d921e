/**
 * The MCP server as `proctor mcp` runs it (src/mcp/command.ts): the tool server on the
 * options of the command line, handed to the protocol that already answers, with failures
 * reported as the CLI reports them. `npm run build` replaces the compiled form of this file
 * with one tree-shaken bundle of it and everything it imports (scripts/build.mjs), so that
 * the server loads the parts of Effect it uses rather than all of them.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Option } from "effect"
import { asServer, makeToolServer, optionsFromArgv } from "./main.js"
import type { ToolServer } from "./protocol.js"

/** Reports a failure as the CLI reports a failed command: `Error: message` on stderr. */
const report = (cause: Cause.Cause<{ readonly message: string }>) =>
  Effect.sync(() => {
    if (Cause.isInterruptedOnly(cause)) return
    const message = Option.match(Cause.failureOption(cause), { onNone: () => Cause.pretty(cause), onSome: (e) => e.message })
    process.stderr.write(`Error: ${message}\n`)
  })

/**
 * Builds the tool server with the options of `argv` (see `optionsFromArgv`) and keeps it
 * until `closed` resolves (the client went away) or the process is stopped; the promise
 * gives its `call` once it is ready. When the server cannot start, the process exits with
 * code 1 after saying why.
 *
 * @since 0.1.0
 * @category entry points
 */
export const serve = (argv: ReadonlyArray<string>, closed: Promise<void>): Promise<ToolServer["call"]> =>
  new Promise((ready) =>
    NodeRuntime.runMain(
      asServer(Effect.gen(function*() {
        const server = yield* makeToolServer(optionsFromArgv(argv))
        ready(server.call)
        yield* Effect.promise(() => closed)
      })).pipe(Effect.tapErrorCause(report)),
      {
        disableErrorReporting: true,
        disablePrettyLogger: true,
        teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause) ? 0 : 1)
      }
    )
  )
