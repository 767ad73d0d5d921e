/**
 * A staged rollout that can be put on hold and resumed where it was: a compound state
 * (`rollout`: canary, watch, promote) whose `Hold` handler applies in each of its stages,
 * a deep history state that resumes the stage the hold interrupted, entry, exit and
 * transition actions that keep an audit trail in the context, an eventless (`always`)
 * transition that abandons a rollout held too often, and `onDone` when the last stage ends.
 *
 * Run it: `npx tsx examples/rollout.ts`
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, awaitState, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * Someone puts the rollout on hold (in any of its stages).
 *
 * @since 0.1.0
 */
export const Hold = Schema.TaggedStruct("Hold", { by: Schema.String, reason: Schema.String })

/**
 * Someone resumes a held rollout.
 *
 * @since 0.1.0
 */
export const Resume = Schema.TaggedStruct("Resume", { by: Schema.String })

/**
 * The canary looks healthy: promote it.
 *
 * @since 0.1.0
 */
export const Healthy = Schema.TaggedStruct("Healthy", {})

/**
 * How long the canary is watched before it is promoted without a `Healthy` (short for the demo).
 *
 * @since 0.1.0
 */
export const watchTimeout = "2 seconds"

/**
 * How many holds a rollout takes before it is abandoned.
 *
 * @since 0.1.0
 */
export const maxHolds = 2

const RolloutContext = Schema.Struct({
  service: Schema.String,
  holds: Schema.Number,
  trail: Schema.Array(Schema.String)
})
type RolloutContext = typeof RolloutContext.Type

/** An action that adds a line to the audit trail. */
const note = (line: string) => ({ context }: { readonly context: RolloutContext }): RolloutContext => ({
  ...context,
  trail: [...context.trail, line]
})

/**
 * The rollout procedure.
 *
 * @since 0.1.0
 */
export const Rollout = Procedure.make("rollout", {
  version: 1,
  description: "canary, watch, promote; can be held and resumed where it was",
  input: Schema.Struct({ service: Schema.String }),
  context: RolloutContext,
  events: Schema.Union(Hold, Resume, Healthy),
  init: (input) => ({ ...input, holds: 0, trail: [] })
}, {
  initial: "plan",
  states: {
    plan: Procedure.step({ run: () => Effect.void, next: "rollout" }),
    rollout: Procedure.compound({
      initial: "canary",
      onEnter: [note("rollout entered")],
      onExit: [note("rollout left")],
      // applies in every stage: the innermost state that handles an event takes it
      on: {
        Hold: {
          goto: "onHold",
          actions: [({ context, event }) => ({ ...context, holds: context.holds + 1, trail: [...context.trail, `held by ${event.by}: ${event.reason}`] })]
        }
      },
      states: {
        canary: Procedure.step({ run: () => Effect.void, next: "rollout.watch", onEnter: [note("canary: 5% of traffic")] }),
        watch: Procedure.wait({
          on: { Healthy: "rollout.promote" },
          after: { delay: watchTimeout, goto: "rollout.promote" },
          onEnter: [note("watching the canary")]
        }),
        promote: Procedure.step({ run: () => Effect.void, next: "rollout.done", onEnter: [note("promote: 100% of traffic")] }),
        // resumes the stage a hold interrupted (its last active leaf)
        resume: Procedure.history({ type: "deep" }),
        done: Procedure.final()
      },
      onDone: "live"
    }),
    onHold: Procedure.wait({
      on: { Resume: { goto: "rollout.resume", actions: [({ context, event }) => ({ ...context, trail: [...context.trail, `resumed by ${event.by}`] })] } },
      // checked as soon as the hold is entered: one hold too many abandons the rollout
      always: [{ guard: (context) => context.holds > maxHolds, goto: "abandoned", actions: [note("held too often: abandoned")] }]
    }),
    live: Procedure.final(),
    abandoned: Procedure.final({ outcome: "abandoned" })
  }
})

// ---------------------------------------------------------------------------
// the demo

/**
 * Three rollouts: one goes straight through, one is held while its canary is watched and
 * resumed in that very stage (deep history), one is held three times and abandoned.
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const straight = yield* Runtime.start(Rollout, { service: "search" })
  const held = yield* Runtime.start(Rollout, { service: "checkout" })
  const abandoned = yield* Runtime.start(Rollout, { service: "billing" })
  yield* awaitState(straight, "rollout.watch")
  yield* Runtime.send(straight, Healthy.make({}))
  yield* awaitState(held, "rollout.watch")
  yield* Runtime.send(held, Hold.make({ by: "ann", reason: "error rate up" }))
  yield* awaitState(held, "onHold")
  yield* Runtime.send(held, Resume.make({ by: "ann" }))
  yield* awaitState(held, "rollout.watch")
  yield* Runtime.send(held, Healthy.make({}))
  for (let i = 0; i <= maxHolds; i++) {
    yield* awaitState(abandoned, "rollout.watch")
    yield* Runtime.send(abandoned, Hold.make({ by: "bob", reason: `hold ${i + 1}` }))
    if (i < maxHolds) {
      yield* awaitState(abandoned, "onHold")
      yield* Runtime.send(abandoned, Resume.make({ by: "bob" }))
    }
  }
  const ends = yield* Effect.all([straight, held, abandoned].map((id) => awaitEnd(id)), { concurrency: "unbounded" })
  const [s, h, a] = ends.map((end) => Schema.decodeUnknownSync(RolloutContext)(end.context))
  const runs: ReadonlyArray<Run> = [
    { example: "rollout", label: "search", id: straight, notes: [s!.trail.join(" → ")] },
    { example: "rollout", label: "checkout (held, resumed where it was)", id: held, notes: [h!.trail.join(" → ")] },
    { example: "rollout", label: "billing (held too often)", id: abandoned, notes: [a!.trail.slice(-2).join(" → ")] }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`rollout example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Rollout] }).pipe(Layer.provide(StoreLive))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
