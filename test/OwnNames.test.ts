/**
 * Issue 11, item 5: a state, event or handler name is looked up among the definition's own
 * names only. Names that `Object.prototype` has (`constructor`, `__proto__`,
 * `hasOwnProperty`, `toString`) are not states or handlers unless the definition declares
 * them, and then they work like any other name.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import * as Metadata from "../src/internal/describe.js"
import { compile, transition } from "../src/internal/transition.js"
import { runtimeLayer } from "./fixtures/procedures.js"

const Counter = Schema.Struct({ n: Schema.Number })
const prototypeNames = ["constructor", "__proto__", "hasOwnProperty", "toString"] as const

const Go = Schema.TaggedStruct("Go", {})
const Ctor = Schema.TaggedStruct("constructor", {})
const HasOwn = Schema.TaggedStruct("hasOwnProperty", {})

/** a wait that accepts `Go` only; its event Schema also decodes the prototype-named tags */
const Gate = Procedure.make("own-gate", { version: 1, input: Counter, context: Counter, events: Schema.Union(Go, Ctor, HasOwn) }, {
  initial: "gate",
  states: {
    gate: Procedure.wait({ on: { Go: "done" } }),
    done: Procedure.final()
  }
})

/** a step whose `next` (without `targets`) returns whatever the context names */
const Wild = Procedure.make("own-wild", { version: 1, input: Schema.Struct({ to: Schema.String }), context: Schema.Struct({ to: Schema.String }) }, {
  initial: "a",
  states: {
    a: Procedure.step({ run: () => Effect.void, next: (_: void, c) => c.to as "done" }),
    done: Procedure.final()
  }
})

type Counter = typeof Counter.Type
type Ev = typeof Ctor.Type | typeof Go.Type

/** a definition that does name its states and events after Object.prototype's properties */
const Declared = Procedure.make("own-declared", { version: 1, input: Counter, context: Counter, events: Schema.Union(Ctor, Go) }, {
  initial: "toString",
  states: {
    toString: Procedure.step<Counter, void, never, never, "constructor">({ run: () => Effect.void, next: "constructor" }),
    constructor: Procedure.wait<Counter, Ev, "hasOwnProperty", Ev["_tag"]>({ on: { constructor: "hasOwnProperty", Go: "hasOwnProperty" } }),
    hasOwnProperty: Procedure.final()
  }
})

const layer = runtimeLayer([Gate, Wild, Declared])

describe("state, event and handler names are own names", () => {
  it.effect("skip to a name from Object.prototype is refused, naming the real states", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Gate, { n: 0 })
      for (const name of prototypeNames) {
        const e = yield* Effect.flip(Runtime.skip(id, name))
        assert.strictEqual(e._tag, "InvalidTransition", name)
        assert.include(e.message, `skip to "${name}"`)
        assert.include(e.message, "There is no such state; the states are gate, done.")
      }
      const s = yield* Runtime.get(id)
      assert.strictEqual(s.status, "waiting")
      assert.strictEqual(s.state, "gate")
      assert.strictEqual(s.seq, 1)
    }).pipe(Effect.provide(layer)))

  it.effect("a step whose next returns a name from Object.prototype fails with a clear error", () =>
    Effect.gen(function*() {
      for (const to of prototypeNames) {
        const id = yield* Runtime.start(Wild, { to })
        const s = yield* Runtime.await(id)
        assert.strictEqual(s.status, "failed", to)
        assert.strictEqual(s.state, "a")
        assert.strictEqual(s.error?.tag, "ExecutionError")
        assert.include(s.error!.message, `\`next\` returned "${to}", which is not one of the states (a, done)`)
        assert.isTrue((yield* Runtime.verify(id)).ok)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("an event tagged with a name from Object.prototype is refused by a wait that does not handle it", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Gate, { n: 0 })
      for (const tag of ["constructor", "hasOwnProperty"]) {
        const e = yield* Effect.flip(Runtime.send(id, { _tag: tag }))
        assert.strictEqual(e._tag, "InvalidTransition", tag)
        assert.include(e.message, `State "gate" accepts Go.`)
      }
      // a tag the event Schema does not decode is refused before that
      assert.strictEqual((yield* Effect.flip(Runtime.send(id, { _tag: "__proto__" })))._tag, "ValidationError")
      // the transition function discards one that reached the inbox (it runs nothing else)
      const compiled = compile(Gate)
      const snapshot = yield* Runtime.get(id)
      const output = transition(compiled, { snapshot, context: { n: 0 } }, { _tag: "Event", event: { _tag: "toString" }, encoded: { _tag: "toString" } }, 1)
      assert.strictEqual(output._tag, "Discard")
      yield* Runtime.send(id, { _tag: "Go" })
      const s = yield* Runtime.await(id)
      assert.strictEqual(s.state, "done")
      assert.deepStrictEqual((yield* Runtime.history(id)).map((t) => t.cause), ["start", "event:Go"])
    }).pipe(Effect.provide(layer)))

  it.effect("states and events a definition does name after Object.prototype work like any other", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Declared, { n: 0 })
      yield* Effect.repeat(Runtime.get(id), { until: (s) => s.status === "waiting" })
      assert.strictEqual((yield* Runtime.get(id)).state, "constructor")
      yield* Runtime.send(id, { _tag: "constructor" })
      const s = yield* Runtime.await(id)
      assert.strictEqual(s.status, "succeeded")
      assert.strictEqual(s.state, "hasOwnProperty")
      assert.isTrue((yield* Runtime.verify(id)).ok)
    }).pipe(Effect.provide(layer)))

  it.effect("verify does not pass a history through a name from Object.prototype, and refuses a malformed export", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Gate, { n: 0 })
      yield* Runtime.send(id, { _tag: "Go" })
      yield* Runtime.await(id)
      const lines = (yield* Runtime.exportHistory(id)).trim().split("\n")
      for (const name of prototypeNames) {
        // the execution "ends" in a state the procedure does not have
        const forged = lines.map((l) => l.replaceAll(`"done"`, JSON.stringify(name))).join("\n")
        const report = yield* Runtime.verifyExport(forged)
        assert.isFalse(report.ok, name)
        assert.isTrue(report.problems.some((p) => p.includes("goes to a state the procedure does not have")), report.problems.join("; "))
        // a status-only transition whose cause is a name from Object.prototype
        const cause = lines.map((l) => l.replace(`"cause":"event:Go"`, `"cause":${JSON.stringify(name)}`).replace(`"to":"done"`, `"to":"gate"`))
          .join("\n")
        const byCause = yield* Runtime.verifyExport(cause)
        assert.isFalse(byCause.ok, name)
        assert.isTrue(byCause.problems.some((p) => p.includes("is not a transition the definition of own-gate v1 allows")), byCause.problems.join("; "))
      }
      for (const hostile of ["null", `{"type":"transition","cause":5}`, `[1,2]`]) {
        const e = yield* Effect.flip(Runtime.verifyExport(`${lines[0]}\n${hostile}`))
        assert.strictEqual(e._tag, "ValidationError", hostile)
        assert.include(e.message, "line 2 is not an execution, transition or error line of an export")
      }
    }).pipe(Effect.provide(layer)))

  it("registration checks only own names: an initial state or target from Object.prototype is not a state", () => {
    const p = Procedure.make("own-bad", { version: 1, input: Counter, context: Counter }, {
      initial: "constructor",
      states: { a: Procedure.step({ run: () => Effect.void, next: "toString" }), done: Procedure.final() }
    } as never)
    const initial = Procedure.validate(p)
    assert.isTrue(initial._tag === "Left" && /initial state "constructor" is not one of the states/.test(initial.left.message))
    const q = Procedure.make("own-bad", { version: 1, input: Counter, context: Counter }, {
      initial: "a",
      states: { a: Procedure.step({ run: () => Effect.void, next: "toString" }), done: Procedure.final() }
    } as never)
    const target = Procedure.validate(q)
    assert.isTrue(target._tag === "Left" && /goes to "toString", which is not one of the states/.test(target.left.message))
  })

  it("front ends look names up the same way: the HTTP metadata of a state from Object.prototype", () => {
    assert.deepStrictEqual(Metadata.accepts(Gate, "constructor"), [])
    assert.deepStrictEqual(Metadata.accepts(Gate, "gate"), ["Go"])
    assert.deepStrictEqual(Metadata.accepts(Declared, "constructor"), ["constructor", "Go"])
    assert.strictEqual(Procedure.stateOf(Gate, "toString"), undefined)
    assert.strictEqual(Procedure.stateOf(Declared, "toString")?._tag, "Step")
  })
})
