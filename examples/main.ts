/**
 * `npm start`: runs every example on one runtime and prints, for each execution, the
 * states it went through, how it ended and how long it took.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer } from "effect"
import { Runtime } from "proctor"
import * as Approval from "./approval.js"
import * as DataPipeline from "./data-pipeline.js"
import * as Deploy from "./deploy.js"
import * as Order from "./order.js"
import * as Payments from "./payments.js"
import * as Release from "./release.js"
import * as Rollout from "./rollout.js"
import { printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * One runtime for all the examples' procedures, on the examples' store, with the
 * services their steps need.
 *
 * @since 0.1.0
 */
export const ExamplesLive = Runtime.layer({
  procedures: [Deploy.Deploy, DataPipeline.Pipeline, Approval.Approval, Order.Order, Order.Payment, Release.Release, Rollout.Rollout, Payments.Checkout]
}).pipe(Layer.provideMerge(Layer.mergeAll(StoreLive, Deploy.DeployerLive, Payments.GatewayLive)))

/**
 * Runs the examples one after another, then prints the report.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`Proctor examples. Executions are kept ${description}.\n`)
  const runs = [
    ...(yield* Deploy.scenarios),
    ...(yield* DataPipeline.scenarios),
    ...(yield* Approval.scenarios),
    ...(yield* Order.scenarios),
    ...(yield* Release.scenarios),
    ...(yield* Rollout.scenarios),
    ...(yield* Payments.scenarios)
  ]
  yield* printReport(runs)
}).pipe(Effect.provide(ExamplesLive))

NodeRuntime.runMain(main)
