/**
 * An order whose payment is a procedure of its own, run as a child execution
 * (`Procedure.child`): the order reserves stock, starts a payment and waits for it, then
 * ships. The payment authorizes the card, waits for the customer's 3-D Secure
 * confirmation (a bounded wait), and captures. A refused card fails the payment, which
 * fails the order's `pay` state: the order releases its stock (its compensation) and ends
 * failed. A customer who cancels the order while the payment waits cancels the payment
 * too. Each payment is an execution like any other: listed, shown, recovered after a
 * crash, with the order as its `parentId`.
 *
 * Run it: `npx tsx examples/order.ts`
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Data, Effect, Layer, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import type { Run } from "./report.js"
import { awaitEnd, awaitState, isMain, printReport } from "./report.js"
import { description, StoreLive } from "./store.js"

/**
 * The card issuer refused the payment (a business error: not retried).
 *
 * @since 0.1.0
 */
export class CardRefused extends Data.TaggedError("CardRefused")<{ readonly card: string }> {}

/**
 * The customer's 3-D Secure answer.
 *
 * @since 0.1.0
 */
export const Confirm = Schema.TaggedStruct("Confirm", { code: Schema.String })

/**
 * How long the customer has to confirm. Short, so the demo ends quickly.
 *
 * @since 0.1.0
 */
export const confirmTimeout = "2 seconds"

const PaymentContext = Schema.Struct({
  card: Schema.String,
  amount: Schema.Number,
  authorization: Schema.optional(Schema.String),
  capture: Schema.optional(Schema.String)
})

/**
 * The payment: authorize (refunded if the payment is rolled back), wait for the
 * confirmation, capture.
 *
 * @since 0.1.0
 */
export const Payment = Procedure.make("payment", {
  version: 1,
  description: "authorize a card, wait for the customer's confirmation, capture",
  input: Schema.Struct({ card: Schema.String, amount: Schema.Number }),
  context: PaymentContext,
  events: Confirm
}, {
  initial: "authorize",
  states: {
    authorize: Procedure.step({
      run: ({ context, idempotencyKey }) =>
        context.card.startsWith("0000") ? Effect.fail(new CardRefused({ card: context.card })) : Effect.succeed(`auth-${idempotencyKey.slice(0, 8)}`),
      update: (authorization, context) => ({ ...context, authorization }),
      compensate: ({ context }) => Console.log(`  payment: void authorization ${context.authorization}`),
      next: "confirm"
    }),
    confirm: Procedure.wait({
      on: { Confirm: "capture" },
      after: { delay: confirmTimeout, goto: "abandoned" }
    }),
    capture: Procedure.step({
      run: ({ context }) => Effect.succeed(`cap-${context.amount}`),
      update: (capture, context) => ({ ...context, capture }),
      next: "paid"
    }),
    paid: Procedure.final(),
    abandoned: Procedure.final({ outcome: "failed" })
  }
})

const OrderContext = Schema.Struct({
  item: Schema.String,
  card: Schema.String,
  amount: Schema.Number,
  payment: Schema.optional(Schema.String)
})

/**
 * The order: reserve, pay (the child), ship.
 *
 * @since 0.1.0
 */
export const Order = Procedure.make("order", {
  version: 1,
  description: "reserve stock, run a payment as a child execution, ship",
  input: OrderContext,
  context: OrderContext
}, {
  initial: "reserve",
  states: {
    reserve: Procedure.step({
      run: ({ context }) => Console.log(`  order: reserve ${context.item}`),
      compensate: ({ context }) => Console.log(`  order: release ${context.item}`),
      next: "pay"
    }),
    pay: Procedure.child(Payment, {
      input: (context) => ({ card: context.card, amount: context.amount }),
      update: (payment, context) => ({ ...context, payment: payment.context.capture }),
      next: "ship",
      timeout: "1 minute"
    }),
    ship: Procedure.step({ run: ({ context }) => Console.log(`  order: ship ${context.item}`), next: "shipped" }),
    shipped: Procedure.final()
  }
})

/** The payment an order started: the child whose `parentId` is the order. */
const paymentOf = (order: string) =>
  Effect.flatMap(Runtime.list({ procedure: "payment" }), (all) => {
    const found = all.find((s) => s.parentId === order)
    return found === undefined ? Effect.dieMessage(`order ${order} has no payment`) : Effect.succeed(found.id)
  })

/**
 * Three orders: one paid and shipped, one whose card is refused (the order releases its
 * stock and fails), one cancelled by its customer while the payment waits (the payment is
 * cancelled with it).
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const paid = yield* Runtime.start(Order, { item: "lamp", card: "4242-1", amount: 40 })
  const refused = yield* Runtime.start(Order, { item: "sofa", card: "0000-9", amount: 900 })
  const cancelled = yield* Runtime.start(Order, { item: "rug", card: "4242-2", amount: 120 })
  yield* awaitState(paid, "pay")
  const payment = yield* paymentOf(paid)
  yield* awaitState(payment, "confirm")
  yield* Runtime.send(payment, Confirm.make({ code: "123456" }))
  yield* awaitState(cancelled, "pay")
  const cancelledPayment = yield* paymentOf(cancelled)
  yield* awaitState(cancelledPayment, "confirm")
  yield* Runtime.cancel(cancelled, { reason: "the customer changed their mind" })
  const [p, r] = yield* Effect.all([paid, refused, cancelled, payment, cancelledPayment].map((id) => awaitEnd(id)), {
    concurrency: "unbounded"
  })
  const runs: ReadonlyArray<Run> = [
    { example: "order", label: "lamp (paid)", id: paid, notes: [`payment ${payment} captured ${Schema.decodeUnknownSync(OrderContext)(p!.context).payment}`] },
    { example: "order", label: "lamp's payment", id: payment, notes: [`a child of order ${paid}`] },
    { example: "order", label: "sofa (card refused)", id: refused, notes: [`${r!.error?.tag}: the payment failed, the stock was released`] },
    { example: "order", label: "rug (cancelled)", id: cancelled, notes: ["cancelled while its payment waited"] },
    { example: "order", label: "rug's payment", id: cancelledPayment, notes: ["cancelled with its order"] }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`order example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Order, Payment] }).pipe(Layer.provide(StoreLive))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
