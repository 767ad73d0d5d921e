/**
 * An SCXML statechart run durably (`Procedure.fromSCXML`): `release.scxml` checks a release
 * in a parallel state (the tests and a person's review at the same time, with a reminder
 * on a durable timer) and ships it when both are done. Each event is a macrostep committed
 * with its consumption; the chart's active configuration is in the execution's context.
 *
 * Run it alone with `npx tsx examples/release.ts`; `npm start` runs it with the others.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer } from "effect"
import * as fs from "node:fs"
import { Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * The release chart as a procedure: ending in `rejected` fails the execution.
 *
 * @since 0.1.0
 */
export const Release = Procedure.fromSCXML(fs.readFileSync(new URL("./release.scxml", import.meta.url), "utf8"), {
  version: 1,
  outcomes: { rejected: "failed" }
})

/** The chart's active states now, as `proctor show` prints them. */
const configuration = (id: string) => Effect.map(Runtime.get(id), (s) => (Procedure.chartConfiguration(Release, s) ?? []).join(", "))

/**
 * Two releases: one whose tests fail, then pass, and that a person approves (it ships);
 * one that is rejected while its tests run.
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const shipped = yield* Runtime.start(Release, {})
  const rejected = yield* Runtime.start(Release, {})
  const started = yield* configuration(shipped)
  yield* Runtime.sendAndWait(shipped, { _tag: "tests.failed" })
  yield* Runtime.sendAndWait(shipped, { _tag: "tests.passed" })
  const passed = yield* configuration(shipped)
  // the reviewer takes a while: the reminder comes every 200 ms meanwhile
  yield* Effect.sleep("500 millis")
  yield* Runtime.sendAndWait(shipped, { _tag: "approve", data: { by: "ann" } })
  yield* Runtime.sendAndWait(rejected, { _tag: "reject" })
  const [s, r] = yield* Effect.all([awaitEnd(shipped), awaitEnd(rejected)])
  const data = (s!.context as Procedure.ChartContext).data
  const runs: ReadonlyArray<Run> = [
    {
      example: "release",
      label: "release (tests, then review)",
      id: shipped,
      notes: [
        `started in ${started}`,
        `after tests.failed and tests.passed: ${passed}`,
        `approved by ${String(data["approvedBy"])} after ${String(data["reminders"])} reminder(s); ended in ${s!.state}`
      ]
    },
    { example: "release", label: "release (rejected)", id: rejected, notes: [`ended ${r!.status} in ${r!.state}`] }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`release example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Release] }).pipe(Layer.provide(StoreLive))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
