/**
 * `proctor rollout start|status|advance|pause|resume|revert`: the command and its options
 * (what each does is in `rolloutActions.ts`, imported only when one runs). Each translates
 * one Runtime operation: `Runtime.rollout`, `rollouts`, `controlRollout`.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import type { CommonArgs } from "./args.js"

const actions = Effect.promise(() => import("./rolloutActions.js"))

/** what `commands.ts` shares with this command (declared there, so that every command takes the same) */
export interface Shared {
  readonly common: { readonly [K in keyof CommonArgs]: Options.Options<CommonArgs[K]> }
  readonly json: Options.Options<boolean>
  readonly reasonLength: number
}

const nameArg = Args.text({ name: "procedure" }).pipe(Args.withDescription("the procedure's name, e.g. deploy"))

/**
 * The `rollout` command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const make = ({ common, json, reasonLength }: Shared) => {
  const start = Command.make(
    "start",
    {
      from: Args.text({ name: "name@version" }).pipe(Args.withDescription("the procedure and the version new starts go to now, e.g. deploy@1")),
      to: Options.integer("to").pipe(Options.withDescription("the new version (registered beside the old one)")),
      phases: Options.text("phases").pipe(
        Options.withDescription("percent of new starts on the new version in each phase, comma-separated (default 1,5,25,50,100)"),
        Options.optional
      ),
      hold: Options.text("hold").pipe(Options.withDescription("how long each phase holds, e.g. \"10 minutes\" (the default)"), Options.optional),
      failureRate: Options.float("failure-rate").pipe(
        Options.withDescription("revert when the new version's failure rate in a phase passes this share, and the old one's (default 0.05)"),
        Options.optional
      ),
      p99: Options.text("p99").pipe(
        Options.withDescription("revert when the p99 latency of a step state of the new version, or of its whole executions, passes this, e.g. \"2 seconds\""),
        Options.optional
      ),
      p99Execution: Options.text("p99-execution").pipe(
        Options.withDescription("a bar of its own for whole executions' p99 (then --p99 bars the states only)"),
        Options.optional
      ),
      restarts: Options.integer("restarts").pipe(
        Options.withDescription("revert when the supervisor restarted the new version's executions more than this many times in a phase"),
        Options.optional
      ),
      minExecutions: Options.integer("min-executions").pipe(
        Options.withDescription("judge rates and latencies over at least this many executions of the new version (default 10)"),
        Options.optional
      ),
      json,
      ...common
    },
    (a) => Effect.flatMap(actions, (m) => m.start(a))
  ).pipe(Command.withDescription(
    "Start a phased rollout of a new version: new starts go to it in each phase's share, and it reverts by itself when its health passes a threshold. " +
      "Example: proctor rollout start deploy@2 --to 3 --hold \"10 minutes\" --p99 \"2 seconds\""
  ))

  const status = Command.make(
    "status",
    { procedure: nameArg.pipe(Args.optional), json, ...common },
    (a) => Effect.flatMap(actions, (m) => m.status(a))
  ).pipe(Command.withDescription(
    "Show the rollouts (of one procedure, or all): phase, share, state, both versions' health, and why one reverted. Example: proctor rollout status deploy"
  ))

  const control = <N extends "advance" | "pause" | "resume">(name: N, description: string) =>
    Command.make(name, { procedure: nameArg, json, ...common }, (a) => Effect.flatMap(actions, (m) => m.control(name, a))).pipe(
      Command.withDescription(`${description} Example: proctor rollout ${name} deploy`)
    )

  const revert = Command.make(
    "revert",
    {
      procedure: nameArg,
      reason: Options.text("reason").pipe(Options.withDescription(`why, kept in the rollout's status (1 to ${reasonLength} characters)`), Options.optional),
      json,
      ...common
    },
    (a) => Effect.flatMap(actions, (m) => m.control("revert", a))
  ).pipe(Command.withDescription(
    "Revert the rollout under way: new starts go back to the old version. Example: proctor rollout revert deploy --reason \"latency alarms\""
  ))

  return Command.make("rollout").pipe(
    Command.withDescription("Phased rollouts of new versions with automatic revert: start, status, advance, pause, resume, revert."),
    Command.withSubcommands([
      start,
      status,
      control("advance", "Move the rollout under way to its next phase now."),
      control("pause", "Pause the rollout under way: it keeps its share, is not checked, and its hold's clock stops."),
      control("resume", "Resume a paused rollout: the phase holds for what was left."),
      revert
    ])
  )
}
