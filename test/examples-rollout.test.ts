/**
 * examples/phased-rollout.ts on virtual time: version 2 of deploy-service, which fails one
 * release in four, is reverted by itself in the first phase, and new deploys go back to
 * version 1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { layer, scenario } from "../examples/phased-rollout.js"

describe("examples/phased-rollout", () => {
  it.effect("the rollout reverts in phase 1 with the failure rate in its reason; later deploys all go to version 1", () =>
    Effect.gen(function*() {
      const run = yield* Effect.fork(scenario)
      yield* TestClock.adjust("10 seconds")
      const { after, during, end } = yield* Fiber.join(run)
      assert.deepStrictEqual([end.state, end.phase, end.share], ["reverted", 1, 0])
      assert.match(end.reason!, /^version 2 failed \d+ of \d+ executions \(\d+\.\d%\) in phase 1 \(20%\), above 5\.0% and version 1's 0\.0%$/)
      assert.strictEqual(during.v1 + during.v2, 100)
      assert.isTrue(during.v2 > 5 && during.v2 < 40, `${during.v2} of 100 on version 2`)
      assert.deepStrictEqual(after, { v1: 20, v2: 0 })
    }).pipe(Effect.provide(layer)))
})
