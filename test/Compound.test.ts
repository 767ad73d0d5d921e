/**
 * Compound (nested) states, entry/exit/transition actions, history states, guards that
 * fall through to enclosing states, eventless (`always`) and done (`onDone`) transitions
 * (issue 14), on the memory store and SQLite, and the history values on Postgres when
 * PROCTOR_TEST_PG_URL is set.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import type { Store, StoreError } from "proctor"
import { DefinitionError, Execution, Procedure, Runtime } from "proctor"
import { Journal, runtimeLayer } from "./fixtures/procedures.js"
import { layerFreshPg } from "./fixtures/sqlPg.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const Ctx = Schema.Struct({ n: Schema.Number, log: Schema.Array(Schema.String) })
type Ctx = typeof Ctx.Type
const Go = Schema.TaggedStruct("Go", {})
const Hold = Schema.TaggedStruct("Hold", { here: Schema.Boolean })
const Resume = Schema.TaggedStruct("Resume", {})
const Events = Schema.Union(Go, Hold, Resume)

/** An action that records `entry` in the context's log, so the order of actions can be read back. */
const log = (entry: string) => ({ context }: { readonly context: Ctx }): Ctx => ({ ...context, log: [...context.log, entry] })

export const Deploy = Procedure.make("nested-deploy", { version: 1, input: Ctx, context: Ctx, events: Events }, {
  initial: "prepare",
  states: {
    prepare: Procedure.step({ run: () => Effect.void, next: "deploy", onExit: [log("exit prepare")] }),
    deploy: Procedure.compound({
      initial: "db",
      onEnter: [log("enter deploy")],
      onExit: [log("exit deploy")],
      // the leaf's own Hold handler refuses unless `here`; then this one takes it
      on: { Hold: { goto: "held", actions: [log("hold")] } },
      states: {
        db: Procedure.step({ run: () => Effect.void, next: "deploy.api", onEnter: [log("enter db")], onExit: [log("exit db")] }),
        api: Procedure.wait({
          on: {
            Go: { goto: "deploy.done", actions: [log("go")] },
            Hold: { goto: "deploy.api", guard: (e) => e.here, actions: [log("hold here")] }
          },
          after: { delay: "1 hour", goto: "timedOut" },
          onEnter: [log("enter api")],
          onExit: [log("exit api")]
        }),
        back: Procedure.history({ type: "deep" }),
        done: Procedure.final()
      },
      onDone: "verify"
    }),
    held: Procedure.wait({ on: { Resume: "deploy.back" } }),
    verify: Procedure.wait({ on: { Go: "finished" }, onEnter: [log("enter verify")] }),
    timedOut: Procedure.final({ outcome: "failed" }),
    finished: Procedure.final()
  }
})

/** Shallow history: resuming `work` enters the child it was in (`work.review`) by that child's initial state. */
export const Shallow = Procedure.make("nested-shallow", { version: 1, input: Ctx, context: Ctx, events: Events }, {
  initial: "work",
  states: {
    work: Procedure.compound({
      initial: "draft",
      on: { Hold: "held" },
      states: {
        draft: Procedure.wait({ on: { Go: "work.review.second" } }),
        review: Procedure.compound({
          initial: "first",
          states: {
            first: Procedure.wait({ on: { Go: "done" }, onEnter: [log("enter first")] }),
            second: Procedure.wait({ on: { Go: "done" }, onEnter: [log("enter second")] })
          }
        }),
        last: Procedure.history()
      }
    }),
    held: Procedure.wait({ on: { Resume: "work.last" } }),
    done: Procedure.final()
  }
})

/** `always` chains: from `spin.a`, count up to `max` through `spin.b`, then leave. */
const spinner = (limit: number) =>
  Procedure.make("nested-spin", { version: 1, input: Ctx, context: Ctx, events: Events }, {
    initial: "idle",
    maxTransitionsWithoutWaiting: limit,
    states: {
      idle: Procedure.wait({ on: { Go: "spin" } }),
      spin: Procedure.compound({
        initial: "a",
        states: {
          a: Procedure.wait({
            on: {},
            always: [{ guard: (c) => c.log.length < c.n, goto: "spin.b", actions: [log("a->b")] }, { goto: "done" }]
          }),
          b: Procedure.wait({ on: {}, always: [{ goto: "spin.a" }] })
        }
      }),
      done: Procedure.final()
    }
  })
const Spin = spinner(50)

const stores: ReadonlyArray<{ readonly name: string; readonly store: () => Layer.Layer<Store.Store, StoreError | unknown> }> = [
  { name: "memory", store: () => Layer.empty as unknown as Layer.Layer<Store.Store> },
  { name: "SQLite", store: () => layerTempSqlite() }
]
const layerOn = (store: (typeof stores)[number], procedures: ReadonlyArray<Procedure.Any>) =>
  store.name === "memory"
    ? runtimeLayer(procedures)
    : Runtime.layer({ procedures }).pipe(Layer.provideMerge(store.store() as Layer.Layer<Store.Store>), Layer.provideMerge(Journal.layer))

/** The deploy scenario: nested targets, ancestor handlers, guards, timers, actions' order, deep history, onDone. */
const deployScenario = Effect.gen(function*() {
  const id = yield* Runtime.start(Deploy, { n: 0, log: [] })
  let s = yield* settled(id, "deploy.api")
  // entering a compound goes to its initial leaf; the snapshot's state is the leaf's full path
  assert.strictEqual(s.state, "deploy.api")
  assert.strictEqual(s.status, "waiting")
  assert.deepStrictEqual((s.context as Ctx).log, ["exit prepare", "enter deploy", "enter db", "exit db", "enter api"])
  assert.deepStrictEqual(Execution.configuration(s), ["deploy", "deploy.api"])
  assert.deepStrictEqual(Execution.allowedOperations(s, Deploy).events, ["Go", "Hold"])
  // the leaf's guard refuses, the enclosing compound's handler takes the event
  yield* Runtime.send(id, { _tag: "Hold", here: false })
  s = yield* settled(id, "held")
  assert.deepStrictEqual((s.context as Ctx).log.slice(5), ["exit api", "exit deploy", "hold"])
  assert.deepStrictEqual(s.history, { deploy: "deploy.api" })
  // the timer of the wait inside the compound was cancelled when it was left
  yield* TestClock.adjust("2 hours")
  assert.strictEqual((yield* Runtime.get(id)).state, "held")
  // deep history: back to the leaf it left
  yield* Runtime.send(id, { _tag: "Resume" })
  s = yield* settled(id, "deploy.api")
  assert.deepStrictEqual((s.context as Ctx).log.slice(8), ["enter deploy", "enter api"])
  // the leaf's own handler, when its guard holds: a self-transition of the leaf
  yield* Runtime.send(id, { _tag: "Hold", here: true })
  s = yield* settled(id, "deploy.api", s.seq)
  assert.deepStrictEqual((s.context as Ctx).log.slice(10), ["exit api", "hold here", "enter api"])
  // a final child: the compound's onDone, in the same commit
  yield* Runtime.send(id, { _tag: "Go" })
  s = yield* settled(id, "verify")
  assert.deepStrictEqual((s.context as Ctx).log.slice(13), ["exit api", "go", "exit deploy", "enter verify"])
  const history = yield* Runtime.history(id)
  assert.deepStrictEqual(history.slice(-1).map((t) => [t.from, t.to, t.cause]), [["deploy.api", "verify", "event:Go"]])
  yield* Runtime.send(id, { _tag: "Go" })
  s = yield* Runtime.await(id)
  assert.strictEqual(s.status, "succeeded")
  assert.isTrue((yield* Runtime.verify(id)).ok, JSON.stringify(yield* Runtime.verify(id)))
  return s
})

/** The snapshot once the execution is in `state`, after a transition past seq `after`. */
const settled = (id: string, state: string, after = 0) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const s = yield* Runtime.get(id)
      if (s.state === state && s.status !== "running" && s.seq > after) return s
      yield* TestClock.adjust("1 millis")
    }
    return assert.fail(`execution ${id} never reached ${state}`)
  })

describe("Compound states", () => {
  for (const store of stores) {
    it.effect(`${store.name}: nested targets, ancestor handlers, fall-through guards, actions in SCXML order, deep history, onDone`, () =>
      deployScenario.pipe(Effect.provide(layerOn(store, [Deploy]))))

    it.effect(`${store.name}: shallow history resumes the child by its initial state; skip to a nested path runs entry actions`, () =>
      Effect.gen(function*() {
        const id = yield* Runtime.start(Shallow, { n: 0, log: [] })
        yield* Runtime.send(id, { _tag: "Go" })
        let s = yield* settled(id, "work.review.second")
        yield* Runtime.send(id, { _tag: "Hold", here: false })
        s = yield* settled(id, "held")
        yield* Runtime.send(id, { _tag: "Resume" })
        s = yield* settled(id, "work.review.first")
        assert.deepStrictEqual((s.context as Ctx).log, ["enter second", "enter first"])
        yield* Runtime.skip(id, "work.review.second")
        s = yield* Runtime.get(id)
        assert.strictEqual(s.state, "work.review.second")
        assert.deepStrictEqual((s.context as Ctx).log, ["enter second", "enter first", "enter second"])
        yield* Runtime.send(id, { _tag: "Go" })
        assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
        assert.isTrue((yield* Runtime.verify(id)).ok)
      }).pipe(Effect.provide(layerOn(store, [Shallow]))))

    it.effect(`${store.name}: always transitions chain in one commit; past the loop limit the execution fails with LoopLimitExceeded`, () =>
      Effect.gen(function*() {
        const ok = yield* Runtime.start(Spin, { n: 3, log: [] })
        const before = (yield* Runtime.get(ok)).seq
        yield* Runtime.send(ok, { _tag: "Go" })
        const done = yield* Runtime.await(ok)
        assert.strictEqual(done.status, "succeeded")
        assert.strictEqual(done.state, "done")
        assert.deepStrictEqual((done.context as Ctx).log, ["a->b", "a->b", "a->b"])
        // the whole chain is one transition
        assert.strictEqual(done.seq, before + 1)
        assert.isTrue((yield* Runtime.verify(ok)).ok)
        const runaway = yield* Runtime.start(Spin, { n: 1000, log: [] })
        yield* Runtime.send(runaway, { _tag: "Go" })
        const failed = yield* Runtime.await(runaway)
        assert.strictEqual(failed.status, "failed")
        assert.strictEqual(failed.error?.tag, "LoopLimitExceeded")
        assert.include(failed.error?.message ?? "", "spin.a")
      }).pipe(Effect.provide(layerOn(store, [Spin]))))
  }
})

describe("Compound states: eventless transitions, innermost first", () => {
  // entering c.x1: its own always goes first (to c.x2), then the compound's applies from c.x2
  const Order = Procedure.make("nested-always-order", { version: 1, input: Ctx, context: Ctx, events: Events }, {
    initial: "c",
    states: {
      c: Procedure.compound({
        initial: "x1",
        always: [{ guard: (context) => context.n === 0, goto: "outer", actions: [log("compound always")] }],
        states: {
          x1: Procedure.wait({ on: {}, always: [{ goto: "c.x2", actions: [log("leaf always")] }] }),
          x2: Procedure.wait({ on: { Go: "outer" }, after: { delay: "1 minute", goto: "outer" } })
        }
      }),
      outer: Procedure.final()
    }
  })
  it.effect("the leaf's always is taken before its compound's, each with its actions, in the start's commit", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Order, { n: 0, log: [] })
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "outer")
      assert.strictEqual(end.seq, 1)
      assert.deepStrictEqual((end.context as Ctx).log, ["leaf always", "compound always"])
      // the compound's guard does not hold: the execution waits in c.x2, and its timer leaves the compound
      const other = yield* Runtime.start(Order, { n: 1, log: [] })
      assert.strictEqual((yield* Runtime.get(other)).state, "c.x2")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Runtime.await(other)).state, "outer")
      assert.isTrue((yield* Runtime.verify(other)).ok)
    }).pipe(Effect.provide(runtimeLayer([Order]))))
})

describe("Compound states: actions that throw", () => {
  const Boom = Procedure.make("nested-boom", { version: 1, input: Ctx, context: Ctx, events: Events }, {
    initial: "w",
    states: {
      w: Procedure.wait({
        on: {
          Go: {
            goto: "s",
            actions: [() => {
              throw new Error("no go")
            }]
          },
          Resume: "s"
        }
      }),
      s: Procedure.step({
        run: () => Effect.void,
        next: "done",
        onFailure: "intervene",
        onExit: [({ context }) => {
          if (context.n === 0) throw new Error("cannot leave")
        }]
      }),
      done: Procedure.final()
    }
  })
  it.effect("an event's action that throws discards the event; a step's exit action that throws fails the step", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Boom, { n: 0, log: [] })
      yield* Runtime.send(id, { _tag: "Go" })
      yield* TestClock.adjust("1 millis")
      const errors = yield* Runtime.errors(id)
      assert.include(errors[0]!.message, "an action of the transition from \"w\" threw: no go")
      assert.strictEqual((yield* Runtime.get(id)).state, "w")
      yield* Runtime.send(id, { _tag: "Resume" })
      const s = yield* settledStatus(id, "needs_intervention")
      assert.include(s.error?.message ?? "", "the onExit action of state \"s\" threw: cannot leave")
    }).pipe(Effect.provide(runtimeLayer([Boom]))))
})

const settledStatus = (id: string, status: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const s = yield* Runtime.get(id)
      if (s.status === status) return s
      yield* TestClock.adjust("1 millis")
    }
    return assert.fail(`execution ${id} never became ${status}`)
  })

describe("Compound states: registration", () => {
  const base = { version: 1, input: Ctx, context: Ctx, events: Events }
  const refused = (states: Record<string, Procedure.StateDescription>, initial = "c") => {
    try {
      Procedure.makeUnsafe({ name: "bad", ...base, initial, states })
    } catch (error) {
      assert.instanceOf(error, DefinitionError)
      return error.message
    }
    return assert.fail("the definition was accepted")
  }
  const end = { type: "final" } as const
  it("refuses a target that is not a path, a missing initial child, a name with a dot, a final child without onDone", () => {
    assert.include(
      refused({ c: { type: "compound", initial: "a", states: { a: { type: "wait", on: { Go: "b" } }, b: end }, onDone: "end" }, end }),
      `it goes to "b", which is not one of the states`
    )
    assert.include(
      refused({ c: { type: "compound", initial: "a", states: { a: { type: "wait", on: { Go: "b" } }, b: end }, onDone: "end" }, end }),
      `did you mean "c.b"?`
    )
    assert.include(
      refused({ c: { type: "compound", initial: "x", states: { a: { type: "wait", on: { Go: "end" } } } }, end }),
      `its initial state "x" is not one of its child states (a)`
    )
    assert.include(
      refused({ c: { type: "compound", initial: "a.b", states: { "a.b": { type: "wait", on: { Go: "end" } } } }, end }),
      `the name "a.b" contains "."`
    )
    assert.include(
      refused({ c: { type: "compound", initial: "a", states: { a: { type: "wait", on: { Go: "c.b" } }, b: end } }, end }),
      "it has a final child state but no `onDone`"
    )
    assert.include(
      refused({ c: { type: "compound", initial: "a", states: { a: { type: "wait", on: { Go: "end" } }, h: { type: "history", default: "end" } } }, end }),
      `its default "end" is not inside its compound "c"`
    )
  })
  const Described = Procedure.makeUnsafe({
        name: "described",
        ...base,
        initial: "c",
        states: {
          c: {
            type: "compound",
            initial: "a",
            on: { Hold: "held" },
            onEnter: [log("enter c")],
            states: {
              a: { type: "wait", on: { Go: { goto: "c.b", actions: [log("go")] } } },
              b: { type: "wait", on: { Go: "c.done" }, always: [{ goto: "c.done", guard: (c: Ctx) => c.n > 0 }] },
              h: { type: "history", deep: true },
              done: { type: "final" }
            },
            onDone: "end"
          },
          held: { type: "wait", on: { Resume: "c.h" } },
          end: { type: "final" }
        }
      })
  it.effect("Procedure.makeUnsafe builds compound and history states from descriptions, with actions and always", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Described, { n: 0, log: [] })
      yield* Runtime.send(id, { _tag: "Go" })
      let s = yield* settled(id, "c.b")
      yield* Runtime.send(id, { _tag: "Hold", here: false })
      s = yield* settled(id, "held")
      yield* Runtime.send(id, { _tag: "Resume" })
      s = yield* settled(id, "c.b", s.seq)
      assert.deepStrictEqual((s.context as Ctx).log, ["enter c", "go", "enter c"])
      yield* Runtime.send(id, { _tag: "Go" })
      assert.strictEqual((yield* Runtime.await(id)).state, "end")
    }).pipe(Effect.provide(runtimeLayer([Described]))))
  it("accepts the example procedures", () => {
    for (const p of [Deploy, Shallow, Spin]) assert.isTrue(Procedure.validate(p)._tag === "Right", p.name)
  })
})

const pgUrl = process.env.PROCTOR_TEST_PG_URL
describe.skipIf(pgUrl === undefined)("Compound states on Postgres", () => {
  it.effect("history values round-trip", () =>
    deployScenario.pipe(
      Effect.provide(Runtime.layer({ procedures: [Deploy] }).pipe(Layer.provideMerge(layerFreshPg(pgUrl!)), Layer.provideMerge(Journal.layer)))
    ), { timeout: 30_000 })
})
