/**
 * How a command's failure reaches the user, and its exit code: shared by the CLI
 * (`commands.ts` `runCli`) and the quick path of `list` and `show` (`quick.ts`), so that
 * both say the same thing. Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 130
 * interrupted.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Out from "./output.js"

/** Exit code 2: the user typed something wrong. */
const usageTags = new Set(["UsageError", "ValidationError", "ModuleLoadError", "TokenRequired"])

/**
 * `output`, and whether anything went to its stdout yet: under `--json`, stdout holds one
 * JSON document, the error's unless the command already printed its result (`run` prints
 * the executions, then fails when some did not succeed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const track = (output: Out.OutputService): { readonly service: Out.OutputService; readonly printed: () => boolean } => {
  let printed = false
  return {
    service: { ...output, out: (text) => Effect.zipRight(Effect.sync(() => void (printed = true)), output.out(text)) },
    printed: () => printed
  }
}

/**
 * Prints a command's failure (`Error: <message>` on stderr; under `--json` also as JSON on
 * stdout, unless something was printed there already) and returns its exit code.
 *
 * @since 0.1.0
 * @category entry points
 */
export const failure = (e: unknown, json: boolean, printed: boolean): Effect.Effect<number, never, Out.Output> =>
  Effect.gen(function*() {
    const error = e as { readonly message?: unknown; readonly _tag?: unknown }
    const tag = typeof error._tag === "string" ? error._tag : "Error"
    const raw = typeof error.message === "string" && error.message !== "" ? error.message : typeof error._tag === "string" ? error._tag : String(e)
    const message = Out.cliWords(raw, tag)
    const code = usageTags.has(tag) ? 2 : 1
    if (json && !printed) yield* Out.jsonError(tag, message, code)
    yield* Out.errorLine(`Error: ${message}`)
    return code
  })

/**
 * Runs `command` with `Output` tracked (`track`) and its `Console` writing through it; a
 * failure is reported by `onFailure` (`failure`, for most). Returns the exit code.
 *
 * @since 0.1.0
 * @category entry points
 */
export const reporting = <E, R>(
  command: Effect.Effect<unknown, E, R>,
  onFailure: (e: E, printed: boolean) => Effect.Effect<number, never, Out.Output>
): Effect.Effect<number, never, Out.Output | Exclude<R, Out.Output>> =>
  Effect.flatMap(Out.Output, (output) => {
    const tracked = track(output)
    return command.pipe(
      Effect.as(0),
      Effect.catchAll((e) => onFailure(e, tracked.printed())),
      Effect.withConsole(Out.consoleFor(tracked.service)),
      Effect.provideService(Out.Output, tracked.service)
    )
  })

/**
 * `NodeRuntime.runMain`'s teardown for the CLI: the command's exit code, 130 when it was
 * interrupted (Ctrl-C: 128 + SIGINT, as shells expect), 1 for a defect.
 *
 * @since 0.1.0
 * @category entry points
 */
export const teardown = (exit: Exit.Exit<unknown, unknown>, onExit: (code: number) => void): void =>
  onExit(
    Exit.isSuccess(exit)
      ? (typeof exit.value === "number" ? exit.value : 0)
      : Cause.isInterruptedOnly(exit.cause) ? 130 : 1
  )
