/**
 * State names are checked at compile time in a consumer's project too (default strict
 * flags, no `exactOptionalPropertyTypes`): test/consumer/run.sh type-checks this file
 * against the packed tarball, and an unused `@ts-expect-error` fails the check.
 */
import { Effect, Schema } from "effect"
import { Procedure } from "proctor"

const Ctx = Schema.Struct({ amount: Schema.Number })

export const Misspelt = Procedure.make("misspelt", { version: 1, input: Ctx, context: Ctx }, {
  initial: "pay",
  // @ts-expect-error "payd" is not a state
  states: {
    pay: Procedure.step({ run: () => Effect.void, next: "payd" }),
    paid: Procedure.final()
  }
})

export const MisspeltBranch = Procedure.make("misspelt-branch", { version: 1, input: Ctx, context: Ctx }, {
  initial: "check",
  // @ts-expect-error "aproval" is not a state
  states: {
    check: Procedure.step({ run: ({ context }) => Effect.succeed(context.amount < 100), next: (small) => small ? "paid" : "aproval" }),
    approval: Procedure.wait({ on: {}, after: { delay: "1 day", goto: "paid" } }),
    paid: Procedure.final()
  }
})
