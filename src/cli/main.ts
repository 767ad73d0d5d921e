/**
 * The `proctor` command's entry point: runs the CLI on the process's arguments and
 * exits with its code (0 ok, 1 the operation failed, 2 bad usage).
 *
 * @since 0.1.0
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect, Exit, Layer } from "effect"
import { runCli } from "./commands.js"
import * as Out from "./output.js"

NodeRuntime.runMain(
  runCli(process.argv.slice(2)).pipe(Effect.provide(Layer.merge(NodeContext.layer, Out.layerProcess))),
  {
    disableErrorReporting: true,
    teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) && typeof exit.value === "number" ? exit.value : 1)
  }
)
