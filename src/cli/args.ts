/**
 * What the commands receive, shared by their parser (`commands.ts`, on `@effect/cli`) and
 * the quick path of `list` and `show` (`quick.ts`), which reads its few options itself so
 * that it does not load `@effect/cli`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Status } from "../Execution.js"
import { statuses } from "../internal/statuses.js"

/**
 * A command was used wrongly; `message` says what to type instead. Exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const usage = (message: string): UsageError => new UsageError({ message })

/**
 * The options most commands share, as a command receives them.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommonArgs {
  readonly db: Option.Option<string>
  readonly module: ReadonlyArray<string>
  readonly noExamples: boolean
  readonly server: Option.Option<string>
  readonly token: Option.Option<string>
}

/** the statuses `--status` takes (`Execution.Status`, without loading it for `--help`) */
export const statusNames: ReadonlyArray<Status> = statuses

/**
 * `list`'s `--status` (comma-separated) as statuses, once it and `--limit` are checked.
 *
 * @since 0.1.0
 * @category constructors
 */
export const listStatuses = (status: Option.Option<string>, limit: number): Effect.Effect<Array<Status>, UsageError> => {
  const names = Option.isSome(status) ? status.value.split(",").map((s) => s.trim()).filter((s) => s !== "") : []
  const bad = names.filter((s) => !(statusNames as ReadonlyArray<string>).includes(s))
  if (bad.length > 0) {
    return Effect.fail(usage(`unknown status ${bad.join(", ")}; use one of ${statusNames.join(", ")}, e.g. --status waiting,paused`))
  }
  if (limit < 1 || limit > 1000) return Effect.fail(usage("--limit must be between 1 and 1000, e.g. --limit 20"))
  return Effect.succeed(names as Array<Status>)
}
