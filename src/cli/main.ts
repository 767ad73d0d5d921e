/**
 * The `proctor` command's entry point: runs the CLI on the process's arguments and
 * exits with its code (0 ok, 1 the operation failed, 2 bad usage).
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { runCli } from "./commands.js"
import * as Out from "./output.js"

NodeRuntime.runMain(
  runCli(process.argv.slice(2)).pipe(Effect.provide(Layer.merge(NodeContext.layer, Out.layerProcess))),
  {
    disableErrorReporting: true,
    // Ctrl-C interrupts `serve` (or a long `run`): a clean stop, exit code 0
    teardown: (exit, onExit) =>
      onExit(
        Exit.isSuccess(exit)
          ? (typeof exit.value === "number" ? exit.value : 0)
          : Cause.isInterruptedOnly(exit.cause) ? 0 : 1
      )
  }
)
