import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { Approval, Approve, managerTimeout, Reject, reviewTimeout } from "../examples/approval.js"
import { Pipeline } from "../examples/data-pipeline.js"
import { actionsOf, Deploy, layerDeployerMemory } from "../examples/deploy.js"
import { Expense, program as quickstart, QuickstartLive } from "../examples/quickstart.js"
import { Confirm, confirmTimeout, Order, Payment } from "../examples/order.js"
import { Checkout, Gateway, GatewayLive } from "../examples/payments.js"
import { Release } from "../examples/release.js"
import { formatPath } from "../examples/report.js"
import { Healthy, Hold as RolloutHold, maxHolds, Resume, Rollout, watchTimeout } from "../examples/rollout.js"

const layer = Runtime.layer({ procedures: [Deploy, Pipeline, Approval] }).pipe(
  Layer.provideMerge(Layer.merge(Store.layerMemory, layerDeployerMemory({ broken: ["web@1.5.0"] })))
)

const states = (id: string) => Effect.map(Runtime.history(id), (h) => h.map((t) => t.to))
describe("examples/deploy", () => {
  it.effect("a healthy release rolls out db, api and web in parallel regions and ends succeeded", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Deploy, { app: "shop", version: "1.4.0" })
      yield* TestClock.adjust("1 second")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "succeeded")
      assert.strictEqual(end.state, "live")
      assert.deepStrictEqual(end.context, { app: "shop", version: "1.4.0", artifact: "shop-1.4.0.tgz", deployed: ["db", "api", "web"] })
      assert.deepStrictEqual(yield* states(id), ["validate", "build", "test", "rollout", "live"])
      assert.deepStrictEqual(yield* actionsOf(id), ["deploy db", "deploy api", "deploy web"])
      const regions = yield* Runtime.list({ parentId: id })
      assert.sameMembers(regions.map((r) => `${r.procedure} ${r.status}`), [
        "deploy.rollout.db succeeded",
        "deploy.rollout.api succeeded",
        "deploy.rollout.web succeeded"
      ])
    }).pipe(Effect.provide(layer)))

  it.effect("a region that fails its health check fails the rollout as one: web undoes its deploy, then api and db are rolled back", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Deploy, { app: "shop", version: "1.5.0" })
      yield* TestClock.adjust("1 second")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.strictEqual(end.state, "rollout")
      assert.strictEqual(end.error?.tag, "ExecutionError")
      assert.match(end.error!.message, /Region "web" .* ended failed/)
      // api's deploy completed after db's: it is undone first
      assert.deepStrictEqual(yield* actionsOf(id), ["deploy db", "deploy api", "deploy web", "undeploy web", "undeploy api", "undeploy db"])
      assert.strictEqual(formatPath(yield* Runtime.history(id)), "validate → build → test → rollout ⇒ failed")
      const regions = yield* Runtime.list({ parentId: id })
      assert.sameMembers(regions.map((r) => `${r.procedure} ${r.status}`), [
        "deploy.rollout.db rolled_back",
        "deploy.rollout.api rolled_back",
        "deploy.rollout.web failed"
      ])
      // a business error is not retried: one attempt, in the region, and the rollout's failure in the release
      const web = regions.find((r) => r.procedure === "deploy.rollout.web")!
      assert.deepStrictEqual((yield* Runtime.errors(web.id)).map((e) => [e.state, e.tag, e.transient]), [["ready", "DeployFailed", false]])
      assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => [e.state, e.tag, e.transient]), [["rollout", "RegionFailed", false]])
    }).pipe(Effect.provide(layer)))

  it.effect("an invalid version fails at validate with nothing to undo", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Deploy, { app: "shop", version: "next" })
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.strictEqual(end.state, "validate")
      assert.deepStrictEqual(yield* actionsOf(id), [])
      assert.deepStrictEqual((yield* Runtime.errors(id)).map((e) => e.tag), ["InvalidRelease"])
    }).pipe(Effect.provide(layer)))
})

const PipelineOut = Schema.Struct({ stored: Schema.Number, quarantined: Schema.Array(Schema.Number), batch: Schema.Number })

describe("examples/data-pipeline", () => {
  it.effect("retries the flaky fetch, quarantines the bad batch and ends with the outcome partial", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Pipeline, { source: "orders", batches: 3, corrupt: [1], flakyFetches: 2 })
      // before the backoff has passed, the fetch has failed once and waits to retry
      yield* TestClock.adjust("50 millis")
      const early = yield* Runtime.get(id)
      assert.strictEqual(early.state, "fetch")
      assert.strictEqual(early.status, "running")
      yield* TestClock.adjust("10 seconds")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "succeeded")
      assert.strictEqual(end.outcome, "partial")
      const context = Schema.decodeUnknownSync(PipelineOut)(end.context)
      assert.deepStrictEqual({ stored: context.stored, quarantined: context.quarantined, batch: context.batch }, {
        stored: 8,
        quarantined: [1],
        batch: 3
      })
      const errors = yield* Runtime.errors(id)
      assert.deepStrictEqual(errors.map((e) => [e.state, e.attempt, e.tag, e.transient]), [
        ["fetch", 1, "SourceUnavailable", true],
        ["fetch", 2, "SourceUnavailable", true]
      ])
      assert.deepStrictEqual(yield* states(id), [
        "fetch", "transform", "validate", "store",
        "fetch", "transform", "validate", "quarantine",
        "fetch", "transform", "validate", "store",
        "partial"
      ])
    }).pipe(Effect.provide(layer)))

  it.effect("clean batches are all stored and the pipeline ends done", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Pipeline, { source: "refunds", batches: 2, corrupt: [], flakyFetches: 0 })
      yield* TestClock.adjust("1 second")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "succeeded")
      assert.strictEqual(end.state, "done")
      assert.strictEqual(Schema.decodeUnknownSync(PipelineOut)(end.context).stored, 8)
      assert.deepStrictEqual(yield* Runtime.errors(id), [])
    }).pipe(Effect.provide(layer)))

  it.effect("a source that stays down past the retry Schedule fails the run with MaxRetriesExceeded", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Pipeline, { source: "orders", batches: 1, corrupt: [], flakyFetches: 99 })
      yield* TestClock.adjust("1 minute")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.strictEqual(end.state, "fetch")
      assert.strictEqual(end.error?.tag, "MaxRetriesExceeded")
      // 1 attempt + 4 retries (Schedule.recurs(4))
      assert.strictEqual((yield* Runtime.errors(id)).length, 5)
    }).pipe(Effect.provide(layer)))
})

const ApprovalOut = Schema.Struct({
  approvedBy: Schema.optional(Schema.String),
  rejectedBy: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  escalatedTo: Schema.optional(Schema.String)
})

describe("examples/approval", () => {
  it.effect("an Approve in review ends approved", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "a.pdf", author: "dan" })
      yield* Runtime.send(id, Approve.make({ by: "ann" }))
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "succeeded")
      assert.strictEqual(end.state, "approved")
      assert.strictEqual(Schema.decodeUnknownSync(ApprovalOut)(end.context).approvedBy, "ann")
      assert.deepStrictEqual(yield* states(id), ["submit", "review", "approved"])
    }).pipe(Effect.provide(layer)))

  it.effect("a Reject in review ends with the outcome rejected and keeps the reason", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "b.pdf", author: "eve" })
      yield* Runtime.send(id, Reject.make({ by: "bob", reason: "no cost estimate" }))
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "rejected")
      assert.strictEqual(end.outcome, "rejected")
      const context = Schema.decodeUnknownSync(ApprovalOut)(end.context)
      assert.deepStrictEqual([context.rejectedBy, context.reason], ["bob", "no cost estimate"])
    }).pipe(Effect.provide(layer)))

  it.effect("silence escalates to the manager exactly when the review timer fires", () =>
    Effect.gen(function*() {
      assert.strictEqual(reviewTimeout, "300 millis")
      const id = yield* Runtime.start(Approval, { doc: "c.pdf", author: "ann" })
      yield* TestClock.adjust("299 millis")
      assert.strictEqual((yield* Runtime.get(id)).state, "review")
      yield* TestClock.adjust("1 millis")
      const escalated = yield* Runtime.get(id)
      assert.strictEqual(escalated.state, "managerReview")
      assert.strictEqual(Schema.decodeUnknownSync(ApprovalOut)(escalated.context).escalatedTo, "manager")
      yield* Runtime.send(id, Approve.make({ by: "mia" }))
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "approved")
      assert.deepStrictEqual(yield* states(id), ["submit", "review", "escalate", "managerReview", "approved"])
      assert.strictEqual((yield* Runtime.history(id))[2]!.cause, "timer")
    }).pipe(Effect.provide(layer)))

  it.effect("when the manager is silent too, the request expires and ends failed", () =>
    Effect.gen(function*() {
      assert.strictEqual(managerTimeout, "500 millis")
      const id = yield* Runtime.start(Approval, { doc: "d.pdf", author: "bob" })
      yield* TestClock.adjust("300 millis")
      yield* TestClock.adjust("500 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.strictEqual(end.state, "expired")
      assert.deepStrictEqual(yield* states(id), ["submit", "review", "escalate", "managerReview", "expired"])
    }).pipe(Effect.provide(layer)))

  it.effect("an event that is not in the Schema is refused with a ValidationError and changes nothing", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "e.pdf", author: "dan" })
      const error = yield* Effect.flip(Runtime.send(id, { _tag: "Approve" }))
      assert.strictEqual(error._tag, "ValidationError")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Runtime.get(id)).state, "review")
    }).pipe(Effect.provide(layer)))
})

describe("examples/quickstart (the README's)", () => {
  it.effect("an approved expense is paid and ends succeeded", () =>
    Effect.gen(function*() {
      const done = yield* quickstart
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual(done.context, { amount: 250, approvedBy: "ann" })
      assert.deepStrictEqual(yield* states(done.id), ["check", "approval", "pay", "paid"])
    }).pipe(Effect.provide(QuickstartLive)))

  it.effect("an expense nobody approves expires after two days", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Expense, { amount: 500 })
      yield* TestClock.adjust("47 hours")
      assert.strictEqual((yield* Runtime.get(id)).state, "approval")
      yield* TestClock.adjust("1 hour")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.strictEqual(end.state, "expired")
    }).pipe(Effect.provide(QuickstartLive)))
})

describe("examples/order", () => {
  const orderLayer = Runtime.layer({ procedures: [Order, Payment] }).pipe(Layer.provideMerge(Store.layerMemory))
  const paymentOf = (order: string) =>
    Effect.map(Runtime.list({ procedure: "payment" }), (all) => all.find((s) => s.parentId === order)!.id)

  it.effect("a confirmed payment (the child) lets the order ship, with the capture in the order's context", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { item: "lamp", card: "4242-1", amount: 40 })
      yield* TestClock.adjust("10 millis")
      const payment = yield* paymentOf(id)
      assert.strictEqual((yield* Runtime.get(payment)).state, "confirm")
      yield* Runtime.send(payment, Confirm.make({ code: "1" }))
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "shipped")
      assert.deepStrictEqual(end.context, { item: "lamp", card: "4242-1", amount: 40, payment: "cap-40" })
      assert.deepStrictEqual(yield* states(payment), ["authorize", "confirm", "capture", "paid"])
    }).pipe(Effect.provide(orderLayer)))

  it.effect("a refused card fails the payment, then the order (ChildFailed), which releases its stock", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { item: "sofa", card: "0000-9", amount: 900 })
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.match(end.error!.message, /ChildFailed|Child execution .* ended failed/)
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.cause), ["start", "step", "failure", "compensated"])
    }).pipe(Effect.provide(orderLayer)))

  it.effect("cancelling the order cancels its waiting payment; an unconfirmed payment is abandoned", () =>
    Effect.gen(function*() {
      const cancelled = yield* Runtime.start(Order, { item: "rug", card: "4242-2", amount: 120 })
      const abandoned = yield* Runtime.start(Order, { item: "vase", card: "4242-3", amount: 15 })
      yield* TestClock.adjust("10 millis")
      const payment = yield* paymentOf(cancelled)
      yield* Runtime.cancel(cancelled, { reason: "changed my mind" })
      assert.strictEqual((yield* Runtime.await(payment)).status, "cancelled")
      yield* TestClock.adjust(confirmTimeout)
      assert.strictEqual((yield* Runtime.await(abandoned)).status, "failed")
      assert.strictEqual((yield* Runtime.await(yield* paymentOf(abandoned))).state, "abandoned")
    }).pipe(Effect.provide(orderLayer)))
})

describe("examples/release (an SCXML chart, Procedure.fromSCXML)", () => {
  const releaseLayer = Runtime.layer({ procedures: [Release] }).pipe(Layer.provideMerge(Store.layerMemory))
  const configuration = (id: string) => Effect.map(Runtime.get(id), (s) => Procedure.chartConfiguration(Release, s))

  it.effect("tests and review run in parallel, reminders come on the durable timer, and the release ships when both are done", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Release, {})
      assert.deepStrictEqual(yield* configuration(id), ["checks", "tests", "running", "review", "waiting"])
      yield* Runtime.sendAndWait(id, { _tag: "tests.failed" })
      yield* Runtime.sendAndWait(id, { _tag: "tests.passed" })
      assert.deepStrictEqual(yield* configuration(id), ["checks", "tests", "green", "review", "waiting"])
      yield* TestClock.adjust("500 millis")
      // an approval without a name is refused by the transition's guard: the chart keeps waiting
      yield* Runtime.sendAndWait(id, { _tag: "approve" })
      assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
      yield* Runtime.sendAndWait(id, { _tag: "approve", data: { by: "ann" } })
      const end = yield* Runtime.await(id)
      assert.deepStrictEqual([end.state, end.status], ["shipped", "succeeded"])
      const data = (end.context as Procedure.ChartContext).data
      assert.deepStrictEqual([data["approvedBy"], data["reminders"]], ["ann", 2])
    }).pipe(Effect.provide(releaseLayer)))

  it.effect("a rejection ends the release failed", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Release, {})
      yield* Runtime.sendAndWait(id, { _tag: "reject" })
      const end = yield* Runtime.await(id)
      assert.deepStrictEqual([end.state, end.status, end.outcome], ["rejected", "failed", "failed"])
      // leaving the review cancelled its reminder: no timer is left
      assert.deepStrictEqual((end.context as Procedure.ChartContext).pending, [])
    }).pipe(Effect.provide(releaseLayer)))
})

describe("examples/rollout", () => {
  const rolloutLayer = Runtime.layer({ procedures: [Rollout] }).pipe(Layer.provideMerge(Store.layerMemory))
  /** The execution once it waits in `state` after seq `after` (the actor runs between the clock's ticks). */
  const reach = (id: string, state: string, after = 0) =>
    Effect.gen(function*() {
      for (let i = 0; i < 100; i++) {
        const s = yield* Runtime.get(id)
        if (s.state === state && s.status === "waiting" && s.seq > after) return s
        yield* TestClock.adjust("1 millis")
      }
      return assert.fail(`${id} never reached ${state}`)
    })
  const trail = (context: unknown) => (context as { readonly trail: ReadonlyArray<string> }).trail

  it.effect("a rollout held while its canary is watched resumes in that stage (deep history); actions keep the trail in order", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Rollout, { service: "checkout" })
      yield* reach(id, "rollout.watch")
      yield* Runtime.send(id, RolloutHold.make({ by: "ann", reason: "error rate up" }))
      const held = yield* reach(id, "onHold")
      yield* Runtime.send(id, Resume.make({ by: "ann" }))
      yield* reach(id, "rollout.watch", held.seq)
      yield* Runtime.send(id, Healthy.make({}))
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "live")
      assert.deepStrictEqual(trail(end.context), [
        "rollout entered",
        "canary: 5% of traffic",
        "watching the canary",
        "rollout left",
        "held by ann: error rate up",
        "resumed by ann",
        "rollout entered",
        "watching the canary",
        "promote: 100% of traffic",
        "rollout left"
      ])
      assert.deepStrictEqual(yield* states(id), ["plan", "rollout.canary", "rollout.watch", "onHold", "rollout.watch", "rollout.promote", "live"])
      assert.isTrue((yield* Runtime.verify(id)).ok)
    }).pipe(Effect.provide(rolloutLayer)))

  it.effect("the watch timer promotes a canary nobody reports on; a rollout held once too often is abandoned by an always transition", () =>
    Effect.gen(function*() {
      const quiet = yield* Runtime.start(Rollout, { service: "search" })
      yield* reach(quiet, "rollout.watch")
      yield* TestClock.adjust(watchTimeout)
      assert.strictEqual((yield* Runtime.await(quiet)).state, "live")
      const id = yield* Runtime.start(Rollout, { service: "billing" })
      let seq = 0
      for (let i = 0; i <= maxHolds; i++) {
        seq = (yield* reach(id, "rollout.watch", seq)).seq
        yield* Runtime.send(id, RolloutHold.make({ by: "bob", reason: `hold ${i + 1}` }))
        if (i === maxHolds) break
        seq = (yield* reach(id, "onHold", seq)).seq
        yield* Runtime.send(id, Resume.make({ by: "bob" }))
      }
      const end = yield* Runtime.await(id)
      assert.deepStrictEqual([end.state, end.outcome], ["abandoned", "abandoned"])
      assert.deepStrictEqual(trail(end.context).slice(-2), ["held by bob: hold 3", "held too often: abandoned"])
    }).pipe(Effect.provide(rolloutLayer)))
})

describe("examples/payments", () => {
  it.effect("the breaker opens while the gateway is down, the checkouts back off, a probe closes it, and all are paid", () =>
    Effect.gen(function*() {
      const gateway = yield* Gateway
      yield* gateway.outage(1000)
      const ids: Array<string> = []
      for (const order of ["A-1", "A-2", "A-3", "A-4"]) ids.push(yield* Runtime.start(Checkout, { order }))
      yield* TestClock.adjust("5 seconds")
      for (const id of ids) assert.strictEqual((yield* Runtime.get(id)).status, "succeeded")
      const [payments] = yield* Runtime.dependencies
      // closed -> open, and open -> half-open -> open until the gateway is back, then half-open -> closed
      assert.strictEqual(payments!.breaker!.state, "closed")
      assert.isAbove(payments!.refused.CircuitOpen, 0)
      const attempts = (yield* Effect.forEach(ids, Runtime.errors)).reduce((n, errors) => n + errors.length, ids.length)
      // the open breaker kept most attempts off the gateway
      assert.isBelow(gateway.calls(), attempts / 2)
      assert.match((yield* Runtime.errors(ids[3]!))[0]!.message, /circuit breaker of dependency "payments" is open/)
    }).pipe(Effect.provide(Runtime.layer({ procedures: [Checkout] }).pipe(Layer.provideMerge(Layer.merge(Store.layerMemory, GatewayLive))))))
})
