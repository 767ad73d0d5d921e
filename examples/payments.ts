/**
 * Checkouts that charge a card through a flaky payment gateway, named as a dependency:
 * its circuit breaker opens after three failures in a row, so while the gateway is down
 * the charges fail fast (`CircuitOpen`, retried by the step's Schedule) instead of piling
 * calls on it; after the cool-down one probe call tests it, and when the probe succeeds
 * the breaker closes and the checkouts go through. A bulkhead keeps at most two charges
 * in flight, and a token bucket spaces them.
 *
 * Run it: `npx tsx examples/payments.ts`
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Clock, Console, Context, Effect, Layer, Schedule, Schema } from "effect"
import { Dependency, Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * The gateway did not answer. Declared `transient` on the charge step.
 *
 * @since 0.1.0
 */
export class GatewayDown extends Schema.TaggedError<GatewayDown>()("GatewayDown", {}) {
  override get message(): string {
    return "the payment gateway did not answer"
  }
}

/**
 * The payment gateway: `charge` fails while an outage lasts; `calls` counts the calls
 * that reached it.
 *
 * @since 0.1.0
 */
export class Gateway extends Context.Tag("examples/Gateway")<Gateway, {
  readonly charge: (order: string, idempotencyKey: string) => Effect.Effect<string, GatewayDown>
  /** the gateway is down from now for `millis` */
  readonly outage: (millis: number) => Effect.Effect<void>
  readonly calls: () => number
}>() {}

/**
 * A gateway in memory, up until told otherwise.
 *
 * @since 0.1.0
 */
export const GatewayLive = Layer.sync(Gateway, () => {
  let downUntil = 0
  let calls = 0
  return {
    charge: (order, key) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        calls++
        return now < downUntil ? Effect.fail(new GatewayDown()) : Effect.succeed(`receipt for ${order} (${key})`)
      }),
    outage: (millis) => Effect.map(Clock.currentTimeMillis, (now) => void (downUntil = now + millis)),
    calls: () => calls
  }
})

/**
 * The gateway as a dependency: every step that names it shares its breaker, bulkhead and
 * rate limit (in this process).
 *
 * @since 0.1.0
 */
export const Payments = Dependency.make("payments", {
  breaker: { consecutiveFailures: 3, coolDown: "400 millis" },
  bulkhead: { concurrency: 2, queue: 20 },
  rateLimit: { tokenBucket: { capacity: 5, refill: { tokens: 20, every: "1 second" } } }
})

/**
 * A checkout: charge the card through the gateway, then done.
 *
 * @since 0.1.0
 */
export const Checkout = Procedure.make("checkout", {
  version: 1,
  description: "charge a card through a flaky gateway guarded by a circuit breaker",
  input: Schema.Struct({ order: Schema.String }),
  context: Schema.Struct({ order: Schema.String, receipt: Schema.optional(Schema.String) })
}, {
  initial: "charge",
  states: {
    charge: Procedure.step({
      dependency: Payments,
      run: ({ context, idempotencyKey }) => Effect.flatMap(Gateway, (g) => g.charge(context.order, idempotencyKey)),
      transient: ["GatewayDown"],
      // every 150 ms, for long enough to outlast the breaker's cool-down a few times
      retry: Schedule.spaced("150 millis").pipe(Schedule.intersect(Schedule.recurs(30))),
      timeout: "2 seconds",
      update: (receipt, context) => ({ ...context, receipt }),
      next: "paid"
    }),
    paid: Procedure.final()
  }
})

// ---------------------------------------------------------------------------
// the demo

/**
 * The gateway goes down for a second, and four checkouts start: the breaker opens, they
 * back off, a probe after the cool-down finds the gateway back, and all four are paid.
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const gateway = yield* Gateway
  yield* gateway.outage(1000)
  const ids = yield* Effect.forEach(["A-1", "A-2", "A-3", "A-4"], (order) => Runtime.start(Checkout, { order }))
  yield* Effect.forEach(ids, (id) => awaitEnd(id), { concurrency: "unbounded" })
  const [payments] = yield* Runtime.dependencies
  const attempts = (yield* Effect.forEach(ids, Runtime.errors)).reduce((n, errors) => n + errors.length, ids.length)
  const notes = [
    `${attempts} attempts, ${gateway.calls()} reached the gateway; refused: ${payments!.refused.CircuitOpen} by the open breaker`,
    `breaker changed state ${payments!.breaker!.changes} times, now ${payments!.breaker!.state}`
  ]
  const runs: ReadonlyArray<Run> = ids.map((id, i) => ({ example: "payments", label: `checkout A-${i + 1}`, id, notes: i === 0 ? notes : [] }))
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`payments example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Checkout] }).pipe(Layer.provideMerge(Layer.merge(StoreLive, GatewayLive)))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
