import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import type { Execution } from "proctor"
import * as Describe from "../src/internal/describe.js"
import { journal, Journal, record, Rejected } from "./fixtures/procedures.js"

const Confirm = Schema.TaggedStruct("Confirm", { ok: Schema.Boolean })

/** The child: charges, then waits for a confirmation (a day at most); `amount` 13 is refused. */
const Payment = Procedure.make("payment", {
  version: 1,
  input: Schema.Struct({ amount: Schema.Number }),
  context: Schema.Struct({ amount: Schema.Number, receipt: Schema.optional(Schema.String) }),
  events: Confirm
}, {
  initial: "charge",
  states: {
    charge: Procedure.step({
      run: ({ context }) => context.amount === 13 ? Effect.fail(new Rejected({ reason: "card refused" })) : record(`charge ${context.amount}`),
      update: (_, context) => ({ ...context, receipt: `r-${context.amount}` }),
      compensate: ({ context }) => record(`refund ${context.amount}`),
      next: "confirm"
    }),
    confirm: Procedure.wait({
      on: { Confirm: { goto: "paid", guard: (event) => event.ok } },
      after: { delay: "1 hour", goto: "expired" }
    }),
    paid: Procedure.final({ outcome: "paid" }),
    expired: Procedure.final({ outcome: "failed" })
  }
})

const Order = Procedure.make("order", {
  version: 1,
  input: Schema.Struct({ amount: Schema.Number }),
  context: Schema.Struct({ amount: Schema.Number, receipt: Schema.optional(Schema.String) })
}, {
  initial: "reserve",
  states: {
    reserve: Procedure.step({ run: () => record("reserve"), compensate: () => record("release"), next: "pay" }),
    pay: Procedure.child(Payment, {
      input: (context) => ({ amount: context.amount }),
      update: (result, context) => ({ ...context, receipt: result.context.receipt }),
      next: (result) => result.outcome === "paid" ? "ship" : "refused",
      targets: ["ship", "refused"],
      onFailure: { goto: "refused" }
    }),
    ship: Procedure.step({ run: () => record("ship"), next: "done" }),
    done: Procedure.final(),
    refused: Procedure.final({ outcome: "failed" })
  }
})

/** The same order, whose failed payment fails (and compensates) the order. */
const StrictOrder = Procedure.make("strict-order", { version: 1, input: Order.input, context: Order.context }, {
  initial: "reserve",
  states: {
    reserve: Procedure.step({ run: () => record("reserve"), compensate: () => record("release"), next: "pay" }),
    pay: Procedure.child(Payment, { input: (context) => ({ amount: context.amount }), next: "done" }),
    done: Procedure.final()
  }
})

/** The same order, whose shipping fails after the payment succeeded: the order is compensated, the payment with it. */
const UnshippableOrder = Procedure.make("unshippable-order", { version: 1, input: Order.input, context: Order.context }, {
  initial: "reserve",
  states: {
    reserve: Procedure.step({ run: () => record("reserve"), compensate: () => record("release"), next: "pay" }),
    pay: Procedure.child(Payment, { input: (context) => ({ amount: context.amount }), compensate: () => record("notify refund"), next: "ship" }),
    ship: Procedure.step({ run: () => Effect.fail(new Rejected({ reason: "no courier" })), next: "done" }),
    done: Procedure.final()
  }
})

/** A chart (Procedure.fromSCXML): closed until `open`, then done. */
const Door = Procedure.fromSCXML(
  `<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" name="door" initial="closed">
    <state id="closed"><transition event="open" target="opened"/></state>
    <final id="opened"/>
  </scxml>`
)

/** A chart run as a child state: what a chart inside a compound state or a region should be. */
const Building = Procedure.make("building", { version: 1, input: Schema.Struct({}), context: Schema.Struct({ door: Schema.optional(Schema.String) }) }, {
  initial: "door",
  states: {
    door: Procedure.child(Door, { input: () => ({}), update: (result, context) => ({ ...context, door: result.context.configuration.join(",") }), next: "done" }),
    done: Procedure.final()
  }
})

/** The same order, which stops for a person when its payment fails. */
const HeldOrder = Procedure.make("held-order", { version: 1, input: Order.input, context: Order.context }, {
  initial: "pay",
  states: {
    pay: Procedure.child(Payment, { input: (context) => ({ amount: context.amount }), next: "done", onFailure: "intervene" }),
    done: Procedure.final()
  }
})

const procedures = [Payment, Order, StrictOrder, UnshippableOrder, HeldOrder, Door, Building] as const
const layer = (store: Layer.Layer<Store.Store> = Store.layerMemory) =>
  Runtime.layer({ procedures }).pipe(Layer.provideMerge(store), Layer.provideMerge(Journal.layer))

/** The child of `parent`, once it exists (the runtime's actors need a few turns to start it). */
const childOf = (parent: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const all = yield* Runtime.list({ procedure: "payment" })
      const found = all.find((s) => s.parentId === parent)
      if (found !== undefined) return found.id
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`no child of ${parent}`)
  })

/** Waits (in virtual time) until `id` is `status`. */
const until = (id: Execution.ExecutionId | string, status: Execution.Status) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if ((yield* Runtime.get(id)).status === status) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`${id} never became ${status}: ${(yield* Runtime.get(id)).status}`)
  })

describe("child procedures", () => {
  it.effect("a child runs to its end; its outcome and final context are the state's result; list shows the parent", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { amount: 40 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      assert.strictEqual((yield* Runtime.get(id)).state, "pay")
      yield* Runtime.send(child, Confirm.make({ ok: true }))
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual(done.context, { amount: 40, receipt: "r-40" })
      const c = yield* Runtime.get(child)
      assert.strictEqual(c.parentId, id)
      assert.strictEqual(c.outcome, "paid")
      assert.deepStrictEqual(yield* journal, ["reserve", "charge 40", "ship"])
    }).pipe(Effect.provide(layer())))

  it.effect("a child that fails fails the state with ChildFailed; onFailure decides (here: goto)", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { amount: 13 })
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.state, "refused")
      const errors = yield* Runtime.errors(id)
      assert.strictEqual(errors.at(-1)?.tag, "ChildFailed")
      const child = yield* childOf(id)
      assert.match(errors.at(-1)!.message, new RegExp(`Child execution ${child} \\(procedure "payment"\\).*ended failed \\(ExecutionError in state "charge"\\)`))
    }).pipe(Effect.provide(layer())))

  it.effect("a child that ends with a failed outcome fails the parent, which compensates its own steps", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(StrictOrder, { amount: 5 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      yield* TestClock.adjust("1 hour")
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "failed")
      // the step's failure, as for any step whose error is not transient, names the child
      assert.strictEqual(done.error?.tag, "ExecutionError")
      assert.match(done.error!.message, new RegExp(`Child execution ${child} \\(procedure "payment"\\) .* ended failed`))
      assert.strictEqual((yield* Runtime.get(child)).status, "failed")
      assert.deepStrictEqual(yield* journal, ["reserve", "charge 5", "release"])
    }).pipe(Effect.provide(layer())))

  it.effect("cancelling the parent cancels its running child, with the reason", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { amount: 7 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      yield* Runtime.cancel(id, { reason: "customer left" })
      yield* until(child, "cancelled")
      const last = (yield* Runtime.history(child)).at(-1)!
      assert.strictEqual(last.cause, "cancel")
      assert.match(last.reason ?? "", new RegExp(`parent ${id} left state "pay" \\(cancelled\\)`))
    }).pipe(Effect.provide(layer())))

  it.effect("rolling the parent back rolls its running child back: the child's compensations run too", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { amount: 9 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      yield* Runtime.rollback(id)
      assert.strictEqual((yield* Runtime.await(id)).status, "rolled_back")
      assert.strictEqual((yield* Runtime.await(child)).status, "rolled_back")
      const entries = yield* journal
      assert.deepStrictEqual(entries.slice(0, 2), ["reserve", "charge 9"])
      assert.sameMembers(entries.slice(2), ["refund 9", "release"])
    }).pipe(Effect.provide(layer())))

  it.effect("a parent compensated after its child succeeded undoes the child (its compensations run, it ends rolled_back), then the state's compensate", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(UnshippableOrder, { amount: 30 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      yield* Runtime.send(child, Confirm.make({ ok: true }))
      assert.strictEqual((yield* Runtime.await(id)).status, "failed")
      assert.deepStrictEqual(yield* journal, ["reserve", "charge 30", "refund 30", "notify refund", "release"])
      const c = yield* Runtime.get(child)
      assert.strictEqual(c.status, "rolled_back")
      assert.deepStrictEqual((yield* Runtime.history(child)).slice(-3).map((t) => t.status), ["succeeded", "compensating", "rolled_back"])
    }).pipe(Effect.provide(layer())))

  it.effect("pause and resume of the parent join the same child (one child per visit, a deterministic id)", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { amount: 11 })
      const child = yield* childOf(id)
      yield* until(child, "waiting")
      yield* Runtime.pause(id)
      yield* Runtime.resume(id)
      yield* Runtime.send(child, Confirm.make({ ok: true }))
      assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
      assert.strictEqual((yield* Runtime.list({ procedure: "payment" })).length, 1)
      assert.deepStrictEqual(yield* journal, ["reserve", "charge 11", "ship"])
    }).pipe(Effect.provide(layer())))

  it.effect("a child whose parent left it before a crash (the cancel never sent) is cancelled when it is loaded again", () =>
    Effect.gen(function*() {
      const store = yield* Layer.build(Store.layerMemory)
      const storeLayer = Layer.succeedContext(store)
      const { child, id } = yield* Effect.scoped(
        Effect.gen(function*() {
          const id = yield* Runtime.start(Order, { amount: 21 })
          const child = yield* childOf(id)
          yield* until(child, "waiting")
          return { id, child }
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      // the parent's cancel committed, then the process stopped before its child heard of it
      const s = yield* Store.Store.pipe(Effect.flatMap((st) => st.get(id)), Effect.map(Option.getOrThrow), Effect.provide(storeLayer))
      yield* Store.Store.pipe(
        Effect.flatMap((st) =>
          st.commit({
            snapshot: { ...s, status: "cancelled", seq: s.seq + 1, rowVersion: s.rowVersion + 1 },
            expectedVersion: s.rowVersion,
            transition: { executionId: s.id, seq: s.seq + 1, from: s.state, to: s.state, status: "cancelled", cause: "cancel", at: s.updatedAt, duration: 0 }
          })
        ),
        Effect.provide(storeLayer)
      )
      const status = yield* Effect.scoped(
        Effect.gen(function*() {
          // the waiting child is loaded when something is sent to it
          const sent = yield* Effect.exit(Runtime.send(child, Confirm.make({ ok: true })))
          assert.isTrue(Exit.isSuccess(sent))
          yield* until(child, "cancelled")
          return (yield* Runtime.history(child)).at(-1)!
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      assert.strictEqual(status.cause, "cancel")
      assert.match(status.reason ?? "", /no longer waits in state "pay"/)
    }).pipe(Effect.scoped))

  it.effect("retry of a child state that needs a person joins the same ended child; skip to the state starts a new one", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(HeldOrder, { amount: 13 })
      yield* until(id, "needs_intervention")
      const first = yield* childOf(id)
      const before = yield* Runtime.history(first)
      yield* Runtime.retry(id)
      yield* until(id, "needs_intervention")
      assert.strictEqual((yield* Runtime.list({ parentId: id })).length, 1)
      yield* Runtime.skip(id, "pay")
      yield* until(id, "needs_intervention")
      const children = yield* Runtime.list({ parentId: id })
      assert.strictEqual(children.length, 2)
      assert.isTrue(children.some((c) => c.id === first))
      // the retry did not run the first child again
      assert.deepStrictEqual(yield* Runtime.history(first), before)
      assert.deepStrictEqual(children.map((c) => c.status), ["failed", "failed"])
    }).pipe(Effect.provide(layer())))

  it.effect("a runtime whose procedure runs an unregistered procedure as a child is refused at registration", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(Runtime.layer({ procedures: [Order] }).pipe(Layer.provide(Store.layerMemory), Layer.provide(Journal.layer))).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? String(exit.cause) : ""
      assert.match(error, /state "pay" runs procedure "payment" version 1 as a child, which is not registered/)
    }))

  it.effect("a chart inside a compound state or a parallel state's region is refused (when made, or registered), naming the state; as a child state it runs", () =>
    Effect.gen(function*() {
      // refused when the procedure is made (a compound's children are checked then), or registered (a region's procedure is made then)
      const refused = (states: Procedure.UnsafeDefinition["states"]) =>
        Effect.try({
          try: () => Procedure.makeUnsafe({ name: "bad", version: 1, input: Schema.Struct({}), context: Schema.Struct({}), initial: "phase", states }),
          catch: (error) => error as Error
        }).pipe(
          Effect.flatMap((def) => Layer.build(Runtime.layer({ procedures: [def] }).pipe(Layer.provide(Store.layerMemory), Layer.provide(Journal.layer)))),
          Effect.scoped,
          Effect.flip,
          Effect.map((e) => e.message)
        )
      const chart = Door.states.chart as never
      const inCompound = yield* refused({ phase: Procedure.compound({ initial: "door", states: { door: chart, over: Procedure.final() } as never, onDone: "end" }) as never, end: { type: "final" } })
      assert.include(inCompound, `Procedure "bad" is not valid (state "phase.door")`)
      assert.include(inCompound, "not inside a compound state")
      assert.include(inCompound, "Procedure.child(chartProcedure, { input, next })")
      const inRegion = yield* refused({
        phase: Procedure.parallel({ regions: { a: { initial: "door", states: { door: chart, over: Procedure.final() } as never } }, next: "end" }) as never,
        end: { type: "final" }
      })
      assert.include(inRegion, `region "a" (its state "door"): it is a chart`)
      assert.include(inRegion, "not in a parallel state's region")
      // what the message says to do instead
      const id = yield* Runtime.start(Building, {})
      const child = (yield* Effect.repeat(Runtime.list({ parentId: id }), { until: (all) => all.length > 0, times: 100 }))[0]!
      yield* until(child.id, "waiting")
      yield* Runtime.send(child.id, { _tag: "open" })
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual(done.context, { door: "opened" })
    }).pipe(Effect.provide(layer())))

  it("front ends see a child state: its procedure in the description, the SVG diagram and the Mermaid one", () => {
    const info = Describe.describe(Order)
    assert.strictEqual(info.states.find((s) => s.name === "pay")!.child, "payment@1")
    assert.isUndefined(info.states.find((s) => s.name === "reserve")!.child)
    assert.match(info.svg, /data-state="pay">.*<text class="kind"[^>]*>child payment@1<\/text>/)
    assert.include(info.mermaid, "pay: pay (child payment@1)")
  })
})
