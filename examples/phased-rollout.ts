/**
 * A phased rollout that reverts by itself: version 2 of a deploy procedure
 * (`deploy-service`, a smaller cousin of examples/deploy.ts's `deploy`), whose test
 * step fails one release in four, is rolled out beside version 1 (`Runtime.rollout`). New
 * deploys go to version 2 in each phase's share; the runtime's health check sees version
 * 2 fail more often than the threshold and than version 1, and reverts the rollout: new
 * deploys go back to version 1. The rollout is itself an execution of the runtime's own
 * procedure `proctor.rollout`, so it survives a restart.
 *
 * Run it: `npx tsx examples/phased-rollout.ts` (about 10 seconds: health is checked every 5).
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schedule, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { isMain } from "./report.js"

class TestsFailed extends Schema.TaggedError<TestsFailed>()("TestsFailed", { release: Schema.Number }) {}

const Release = Schema.Struct({ release: Schema.Number })

/** version `version` of deploy: build, test (failing when `flaky` says so), then release */
const deploy = (version: number, flaky: (release: number) => boolean) =>
  Procedure.make("deploy-service", { version, input: Release, context: Release }, {
    initial: "build",
    states: {
      build: Procedure.step({ run: () => Effect.sleep("20 millis"), next: "test" }),
      test: Procedure.step({
        run: ({ context }) => flaky(context.release) ? Effect.fail(new TestsFailed({ release: context.release })) : Effect.sleep("30 millis"),
        retry: Schedule.stop,
        next: "release"
      }),
      release: Procedure.step({ run: () => Effect.sleep("10 millis"), next: "live" }),
      live: Procedure.final()
    }
  })

/**
 * Version 1: every release passes its tests.
 *
 * @since 0.1.0
 */
export const DeployV1 = deploy(1, () => false)

/**
 * Version 2: one release in four fails its tests. With both loaded (`proctor serve`
 * loads the examples in a clone of the repository), `proctor rollout start
 * deploy-service@1 --to 2` rolls it out from the CLI.
 *
 * @since 0.1.0
 */
export const DeployV2 = deploy(2, (release) => release % 4 === 0)

const startDeploys = (first: number, count: number) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => first + i), (release) => Runtime.start(DeployV1, { release }, { id: `release-${release}` }))

const onVersion = (ids: ReadonlyArray<string>, version: number) =>
  Effect.map(Effect.forEach(ids, (id) => Runtime.get(id)), (ss) => ss.filter((s) => s.version === version).length)

/**
 * Rolls version 2 out (phases of 20, 50 and 100% of new deploys, each held a minute),
 * sends 100 deploys through it, and waits for the rollout to end; then sends 20 more.
 * Returns the rollout's end and where the deploys went.
 *
 * @since 0.1.0
 */
export const scenario = Effect.gen(function*() {
  const started = yield* Runtime.rollout(DeployV1, {
    to: 2,
    phases: [20, 50, 100],
    hold: "1 minute",
    revertWhen: { failureRate: 0.05, p99: "5 seconds", minExecutions: 5 }
  })
  const during = yield* startDeploys(0, 100)
  yield* Effect.forEach(during, (id) => Runtime.await(id), { discard: true })
  // the rollout's own execution ends when it completes or reverts
  yield* Runtime.await(started.id)
  const end = (yield* Runtime.rollouts("deploy-service"))[0]!
  const after = yield* startDeploys(100, 20)
  return {
    end,
    during: { v1: yield* onVersion(during, 1), v2: yield* onVersion(during, 2) },
    after: { v1: yield* onVersion(after, 1), v2: yield* onVersion(after, 2) }
  }
})

/**
 * The runtime of the example, on the memory store.
 *
 * @since 0.1.0
 */
export const layer = Runtime.layer({ procedures: [DeployV1, DeployV2] }).pipe(Layer.provideMerge(Store.layerMemory))

/**
 * Runs the demo and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log("phased rollout example: version 2 of deploy fails one release in four\n")
  const { after, during, end } = yield* scenario
  yield* Console.log(`rollout ${end.state} in phase ${end.phase} (${end.phases[end.phase - 1]}% of new deploys on version 2)`)
  yield* Console.log(`  why: ${end.reason ?? "-"}`)
  yield* Console.log(`  during the rollout: ${during.v1} deploys on version 1, ${during.v2} on version 2`)
  yield* Console.log(`  after it: ${after.v1} deploys on version 1, ${after.v2} on version 2`)
}).pipe(Effect.provide(layer))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
