/**
 * A document approval: submit → review, a wait for an `Approve` or `Reject` event. When
 * nobody answers within the review timeout (an `after` timer), the request escalates to
 * a manager, who gets a second, bounded wait; if the manager stays silent too, the
 * request expires.
 *
 * Run it: `npx tsx examples/approval.ts`
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
 * A reviewer approves.
 *
 * @since 0.1.0
 */
export const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })

/**
 * A reviewer rejects, saying why.
 *
 * @since 0.1.0
 */
export const Reject = Schema.TaggedStruct("Reject", { by: Schema.String, reason: Schema.String })

/**
 * How long reviewers have before the request escalates. Short, so the demo ends quickly;
 * a real procedure would say "2 days".
 *
 * @since 0.1.0
 */
export const reviewTimeout = "300 millis"

/**
 * How long the manager has after an escalation before the request expires.
 *
 * @since 0.1.0
 */
export const managerTimeout = "500 millis"

const ApprovalContext = Schema.Struct({
  doc: Schema.String,
  author: Schema.String,
  reviewers: Schema.Array(Schema.String),
  approvedBy: Schema.optional(Schema.String),
  rejectedBy: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  escalatedTo: Schema.optional(Schema.String)
})

/**
 * The approval procedure.
 *
 * @since 0.1.0
 */
export const Approval = Procedure.make("approval", {
  version: 1,
  description: "a document goes to review; silence escalates it to a manager",
  input: Schema.Struct({ doc: Schema.String, author: Schema.String }),
  context: ApprovalContext,
  events: Schema.Union(Approve, Reject),
  init: (input) => ({ ...input, reviewers: [] })
}, {
  initial: "submit",
  states: {
    submit: Procedure.step({
      // notify the reviewers (here: pick them)
      run: ({ context }) => Effect.succeed(context.author === "ann" ? ["bob", "carol"] : ["ann", "bob"]),
      update: (reviewers, context) => ({ ...context, reviewers }),
      next: "review"
    }),
    review: Procedure.wait({
      on: {
        Approve: { goto: "approved", update: (e, c) => ({ ...c, approvedBy: e.by }) },
        Reject: { goto: "rejected", update: (e, c) => ({ ...c, rejectedBy: e.by, reason: e.reason }) }
      },
      after: { delay: reviewTimeout, goto: "escalate" }
    }),
    escalate: Procedure.step({
      run: () => Effect.succeed("manager"),
      update: (escalatedTo, context) => ({ ...context, escalatedTo }),
      next: "managerReview"
    }),
    managerReview: Procedure.wait({
      on: {
        Approve: { goto: "approved", update: (e, c) => ({ ...c, approvedBy: e.by }) },
        Reject: { goto: "rejected", update: (e, c) => ({ ...c, rejectedBy: e.by, reason: e.reason }) }
      },
      after: { delay: managerTimeout, goto: "expired" }
    }),
    approved: Procedure.final({ outcome: "succeeded" }),
    // a decision, not an error: the execution ends `succeeded` with the outcome "rejected"
    rejected: Procedure.final({ outcome: "rejected" }),
    expired: Procedure.final({ outcome: "failed" })
  }
})

// ---------------------------------------------------------------------------
// the demo

/**
 * Four requests: one approved, one rejected, one nobody reviews (it escalates after
 * `reviewTimeout` and the manager approves it), and one nobody answers at all (it
 * escalates, then expires after `managerTimeout`).
 *
 * @since 0.1.0
 */
export const scenarios = Effect.gen(function*() {
  const approved = yield* Runtime.start(Approval, { doc: "budget-2025.pdf", author: "dan" })
  const rejected = yield* Runtime.start(Approval, { doc: "offsite-plan.pdf", author: "eve" })
  const escalated = yield* Runtime.start(Approval, { doc: "vendor-contract.pdf", author: "ann" })
  const expired = yield* Runtime.start(Approval, { doc: "parking-policy.pdf", author: "bob" })
  // events sent while `submit` runs wait in the durable inbox until `review` takes them
  yield* Runtime.send(approved, Approve.make({ by: "ann" }))
  yield* Runtime.send(rejected, Reject.make({ by: "bob", reason: "no cost estimate" }))
  // nobody answers the third: after reviewTimeout it escalates, then the manager approves
  yield* awaitState(escalated, "managerReview")
  yield* Runtime.send(escalated, Approve.make({ by: "mia (manager)" }))
  const ends = yield* Effect.all([approved, rejected, escalated, expired].map((id) => awaitEnd(id)), {
    concurrency: "unbounded"
  })
  const [a, r, e] = ends.map((s) => Schema.decodeUnknownSync(ApprovalContext)(s.context))
  const runs: ReadonlyArray<Run> = [
    { example: "approval", label: "budget-2025.pdf", id: approved, notes: [`approved by ${a!.approvedBy}`] },
    { example: "approval", label: "offsite-plan.pdf", id: rejected, notes: [`rejected by ${r!.rejectedBy}: ${r!.reason}`] },
    {
      example: "approval",
      label: "vendor-contract.pdf (escalated)",
      id: escalated,
      notes: [`no answer within ${reviewTimeout}: escalated to ${e!.escalatedTo}, approved by ${e!.approvedBy}`]
    },
    {
      example: "approval",
      label: "parking-policy.pdf (nobody answers)",
      id: expired,
      notes: [`escalated after ${reviewTimeout}, expired ${managerTimeout} later`]
    }
  ]
  return runs
})

/**
 * Runs the demo on its own runtime and prints what happened.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  yield* Console.log(`approval example: executions are kept ${description}\n`)
  yield* Effect.flatMap(scenarios, printReport)
}).pipe(Effect.provide(Runtime.layer({ procedures: [Approval] }).pipe(Layer.provide(StoreLive))))

if (isMain(import.meta.url)) NodeRuntime.runMain(main)
