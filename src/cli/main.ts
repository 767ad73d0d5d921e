/**
 * The `proctor` command's entry point: runs the CLI on the process's arguments and
 * exits with its code (0 ok, 1 the operation failed, 2 bad usage, 130 interrupted).
 * Imports `@effect/platform-node` by subpath: its index would load the cluster, RPC,
 * workflow and WebSocket modules on every start.
 *
 * @since 0.1.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { runCli } from "./commands.js"
import * as Out from "./output.js"
import * as Report from "./report.js"

/** what `@effect/cli` needs from the platform (files for its config, the terminal for prompts) */
const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer, Out.layerProcess)

NodeRuntime.runMain(
  runCli(process.argv.slice(2)).pipe(Effect.provide(platform)),
  // Ctrl-C interrupts the command (`serve`, a long `run`): it stops cleanly, and the exit
  // code says it was interrupted
  { disableErrorReporting: true, teardown: Report.teardown }
)
