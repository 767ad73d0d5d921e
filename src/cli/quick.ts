/**
 * The quick path of `proctor list` and `proctor show`: their options read here, without
 * `@effect/cli`, whose parser and what it loads are about a seventh of a read's start-up.
 * Arguments that are anything but plain (`--help`, an option it does not know, `--flag=value`,
 * an option given twice, an empty value or one that starts with `-`, a `--limit` that is not
 * digits) go to the full CLI instead (`readArgs` returns `undefined`), which answers them
 * as it does for every command. The command runs the same actions, and a failure is
 * reported the same way (`report.ts`).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Actions from "./actions.js"
import { type CommonArgs, listStatuses } from "./args.js"
import type * as Out from "./output.js"
import * as Report from "./report.js"

/**
 * `list` or `show`, with its options.
 *
 * @since 0.1.0
 * @category models
 */
export type ReadArgs =
  | CommonArgs & {
    readonly command: "list"
    readonly status: Option.Option<string>
    readonly procedure: Option.Option<string>
    readonly state: Option.Option<string>
    readonly tenant: Option.Option<string>
    readonly limit: number
    readonly json: boolean
  }
  | CommonArgs & { readonly command: "show"; readonly id: string; readonly json: boolean }

const shared = ["--db", "--server", "--token"]
const valueOptions = { list: [...shared, "--status", "--procedure", "--state", "--tenant", "--limit"], show: shared }

/**
 * The arguments after `proctor`, when they are a plain `list` or `show`; `undefined` sends
 * them to the full CLI.
 *
 * @since 0.1.0
 * @category parsing
 */
export const readArgs = (argv: ReadonlyArray<string>): ReadArgs | undefined => {
  const command = argv[0]
  if (command !== "list" && command !== "show") return undefined
  // show's id comes first: the full CLI takes the options around it
  const id = command === "show" ? argv[1] : undefined
  if (command === "show" && (id === undefined || id === "" || id.startsWith("-"))) return undefined
  const rest = argv.slice(command === "show" ? 2 : 1)
  const values = new Map<string, string>()
  const modules: Array<string> = []
  const flags = new Set<string>()
  for (let i = 0; i < rest.length; i++) {
    const name = rest[i]!
    if (name === "--json" || name === "--no-examples") {
      if (flags.has(name)) return undefined
      flags.add(name)
      continue
    }
    const value = rest[++i]
    if (value === undefined || value === "" || value.startsWith("-")) return undefined
    if (name === "--module" || name === "-m") modules.push(value)
    else if (valueOptions[command].includes(name) && !values.has(name)) values.set(name, value)
    else return undefined
  }
  const limit = values.get("--limit") ?? "50"
  if (!/^\d{1,6}$/.test(limit)) return undefined
  const common: CommonArgs = {
    db: Option.fromNullable(values.get("--db")),
    module: modules,
    noExamples: flags.has("--no-examples"),
    server: Option.fromNullable(values.get("--server")),
    token: Option.fromNullable(values.get("--token"))
  }
  const json = flags.has("--json")
  return command === "show"
    ? { command, id: id!, json, ...common }
    : {
      command,
      status: Option.fromNullable(values.get("--status")),
      procedure: Option.fromNullable(values.get("--procedure")),
      state: Option.fromNullable(values.get("--state")),
      tenant: Option.fromNullable(values.get("--tenant")),
      limit: Number(limit),
      json,
      ...common
    }
}

/**
 * Runs `list` or `show`; returns the exit code.
 *
 * @since 0.1.0
 * @category entry points
 */
export const run = (a: ReadArgs): Effect.Effect<number, never, Out.Output> =>
  Report.reporting(
    a.command === "list"
      ? Effect.flatMap(listStatuses(a.status, a.limit), (statuses) => Actions.list({ ...a, statuses }))
      : Actions.show(a),
    (e, printed) => Report.failure(e, a.json, printed)
  )
