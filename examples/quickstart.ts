/**
 * The README's quick start, kept here so that it is type-checked and tested.
 *
 * Run it: `npx tsx examples/quickstart.ts`
 *
 * @since 0.1.0
 */
import { Console, Effect, Layer, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { isMain } from "./report.js"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })

/**
 * An expense: small ones are paid at once, others wait for an approval (for two days at most).
 *
 * @since 0.1.0
 */
export const Expense = Procedure.make("expense", {
  version: 1,
  input: Schema.Struct({ amount: Schema.Number }),
  context: Schema.Struct({ amount: Schema.Number, approvedBy: Schema.optional(Schema.String) }),
  events: Approve
}, {
  initial: "check",
  states: {
    check: Procedure.step({
      run: ({ context }) => Effect.succeed(context.amount <= 100),
      next: (small) => small ? "pay" : "approval",
      targets: ["pay", "approval"]
    }),
    approval: Procedure.wait({
      on: { Approve: { goto: "pay", update: (event, context) => ({ ...context, approvedBy: event.by }) } },
      after: { delay: "2 days", goto: "expired" }
    }),
    pay: Procedure.step({
      run: ({ context, idempotencyKey }) => Console.log(`paying ${context.amount} (key ${idempotencyKey})`),
      timeout: "30 seconds",
      next: "paid"
    }),
    paid: Procedure.final(),
    expired: Procedure.final({ outcome: "failed" })
  }
})

/**
 * Starts an expense of 250, approves it and waits for the end.
 *
 * @since 0.1.0
 */
export const program = Effect.gen(function*() {
  const id = yield* Runtime.start(Expense, { amount: 250 })
  yield* Runtime.send(id, Approve.make({ by: "ann" }))
  const done = yield* Runtime.await(id)
  yield* Console.log(done.status, done.context) // succeeded { amount: 250, approvedBy: 'ann' }
  return done
})

/**
 * The runtime with its procedures, on the in-memory store.
 *
 * @since 0.1.0
 */
export const QuickstartLive = Runtime.layer({ procedures: [Expense] }).pipe(Layer.provide(Store.layerMemory))

if (isMain(import.meta.url)) Effect.runPromise(program.pipe(Effect.provide(QuickstartLive)))
