/**
 * examples/phased-rollout.ts on virtual time: version 3 of deploy (examples/deploy.ts),
 * whose tests fail one release in four, is reverted by itself in the first phase, and new
 * deploys go back to version 2.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { Runtime } from "proctor"
import { layer, scenario } from "../examples/phased-rollout.js"

describe("examples/phased-rollout", () => {
  it.effect("the rollout of deploy@3 reverts in phase 1 with the failure rate in its reason; later deploys all go to version 2", () =>
    Effect.gen(function*() {
      const run = yield* Effect.fork(scenario)
      yield* TestClock.adjust("10 seconds")
      const { after, during, end } = yield* Fiber.join(run)
      assert.deepStrictEqual([end.procedure, end.from, end.to], ["deploy", 2, 3])
      assert.deepStrictEqual([end.state, end.phase, end.share], ["reverted", 1, 0])
      assert.match(end.reason!, /^version 3 failed \d+ of \d+ executions \(\d+\.\d%\) in phase 1 \(20%\), above 5\.0% and version 2's 0\.0%$/)
      assert.strictEqual(during.v2 + during.v3, 100)
      assert.isTrue(during.v3 > 5 && during.v3 < 40, `${during.v3} of 100 on version 3`)
      assert.deepStrictEqual(after, { v2: 20, v3: 0 })
      // version 3's failures are its tests' (one release in four); version 2's deploys all went live
      const deploys = yield* Runtime.list({ procedure: "deploy", limit: 1000 })
      const failed = deploys.filter((s) => s.status === "failed")
      assert.isTrue(failed.length > 0 && failed.every((s) => s.version === 3 && s.state === "test"))
      assert.isTrue(failed.every((s) => Number((s.context as { version: string }).version.split(".")[2]) % 4 === 0))
      assert.isTrue(deploys.filter((s) => s.version === 2).every((s) => s.status === "succeeded"))
    }).pipe(Effect.provide(layer)))
})
