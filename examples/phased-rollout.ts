/**
 * A phased rollout that reverts by itself: version 3 of examples/deploy.ts's `deploy`,
 * whose tests fail one release in four, is rolled out beside version 2 (`Runtime.rollout`).
 * New deploys go to version 3 in each phase's share; the runtime's health check sees
 * version 3 fail more often than the threshold and than version 2, and reverts the
 * rollout: new deploys go back to version 2. The rollout is itself an execution of the
 * runtime's own procedure `proctor.rollout`, so it survives a restart.
 *
 * Run it: `npx tsx examples/phased-rollout.ts` (about 10 seconds: health is checked every 5).
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { Deploy, deploySchemas, deployStates, layerDeployerMemory } from "./deploy.js"
import { isMain } from "./report.js"

/**
 * A release failed its tests. A business error: not retried, the deploy fails.
 *
 * @since 0.1.0
 */
export class TestsFailed extends Schema.TaggedError<TestsFailed>()("TestsFailed", { version: Schema.String }) {}

/**
 * Version 3 of `deploy`: the same states as version 2 (examples/deploy.ts), but its
 * new test suite fails one release in four (those whose patch number is a multiple of 4).
 * With both loaded (`proctor serve` loads the examples in a clone of the repository),
 * `proctor rollout start deploy@2 --to 3` rolls it out from the CLI.
 *
 * @since 0.1.0
 */
export const DeployV3 = Procedure.make("deploy", {
  version: 3,
  description: "deploy with a new test suite that fails one release in four",
  ...deploySchemas
}, deployStates(({ version }) =>
  Number(version.split(".")[2]) % 4 === 0 ? Effect.fail(new TestsFailed({ version })) : Effect.sleep("40 millis")))

/** deploys of releases 2.0.first, 2.0.(first + 1), ..., started as version 2's (the rollout routes them) */
const startDeploys = (first: number, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => first + i),
    (patch) => Runtime.start(Deploy, { app: "shop", version: `2.0.${patch}` }, { id: `release-2.0.${patch}` })
  )

const onVersion = (ids: ReadonlyArray<string>, version: number) =>
  Effect.map(Effect.forEach(ids, (id) => Runtime.get(id)), (ss) => ss.filter((s) => s.version === version).length)

/**
 * Rolls version 3 out (phases of 20, 50 and 100% of new deploys, each held a minute),
 * sends 100 deploys through it, and waits for the rollout to end; then sends 20 more.
 * Returns the rollout's end and where the deploys went.
 *
 * @since 0.1.0
 */
export const scenario = Effect.gen(function*() {
  const started = yield* Runtime.rollout(Deploy, {
    to: 3,
    phases: [20, 50, 100],
    hold: "1 minute",
    revertWhen: { failureRate: 0.05, p99: "5 seconds", minExecutions: 5 }
  })
  const during = yield* startDeploys(0, 100)
  yield* Effect.forEach(during, (id) => Runtime.await(id), { discard: true })
  // the rollout's own execution ends when it completes or reverts
  yield* Runtime.await(started.id)
  const end = (yield* Runtime.rollouts("deploy"))[0]!
  const after = yield* startDeploys(100, 20)
  return {
    end,
    during: { v2: yield* onVersion(during, 2), v3: yield* onVersion(during, 3) },
    after: { v2: yield* onVersion(after, 2), v3: yield* onVersion(after, 3) }
  }
})

/**
 * The runtime of the example, on the memory store, with both versions of deploy and a
 * deployer whose services are all healthy.
 *
 * @since 0.1.0
 */
export const layer = Runtime.layer({ procedures: [Deploy, DeployV3] }).pipe(
  Layer.provideMerge(Layer.merge(Store.layerMemory, layerDeployerMemory({ broken: [] })))
)

/**
 * Runs the demo and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log("phased rollout example: version 3 of deploy fails the tests of one release in four\n")
  const { after, during, end } = yield* scenario
  yield* Console.log(`rollout ${end.state} in phase ${end.phase} (${end.phases[end.phase - 1]}% of new deploys on version 3)`)
  yield* Console.log(`  why: ${end.reason ?? "-"}`)
  yield* Console.log(`  during the rollout: ${during.v2} deploys on version 2, ${during.v3} on version 3`)
  yield* Console.log(`  after it: ${after.v2} deploys on version 2, ${after.v3} on version 3`)
}).pipe(Effect.provide(layer))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
