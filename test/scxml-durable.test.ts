// Procedure.fromSCXML: an SCXML chart run by the durable runtime (in memory, virtual time):
// events through Runtime.send, delayed sends as the state's durable timer, cancel, the
// top-level final as the execution's end, and the documents fromSCXML refuses.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Scope, TestClock } from "effect"
import { HttpClient } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { DefinitionError, Execution, Procedure, Runtime, Store } from "proctor"
import * as Out from "../src/cli/output.js"
import * as Server from "../src/http/Server.js"
import { documented, listTests, prepareDurable, recordingStore, runDurable, suiteFolder, tally, w3cOracleIsLegacy } from "./fixtures/scxmlSuite.js"

/** Every test known to fail through the runtime, with why. A test that starts passing must leave this list. */
const refusedInvoke = "it uses <invoke>, which fromSCXML refuses: child sessions are not run durably (use Procedure.child)"
const refusedSend = "it sends to a target outside the chart (another session, a made-up target), which fromSCXML refuses"
const expectedFailures: Readonly<Record<string, string>> = {
  ...Object.fromEntries([
    187, 191, 192, 207, 215, 216, 220, 223, 224, 225, 226, 228, 229, 230, 232, 233, 234, 235, 236, 237,
    239, 240, 241, 242, 243, 244, 245, 247, 250, 252, 253, 276, 338, 347, 422, 530, 554
  ].map((n) => [`w3c-ecma/test${n}.txml`, refusedInvoke])),
  ...Object.fromEntries([159, 194, 332, 376, 378, 496, 521].map((n) => [`w3c-ecma/test${n}.txml`, refusedSend])),
  // as in the engine's suite (test/scxml.test.ts)
  "internal-transitions/test0": "a <transition> directly inside <scxml> is not SCXML 1.0 (a SCION extension); the document is refused",
  "w3c-ecma/test201.txml": "the optional Basic HTTP Event I/O Processor is not supported",
  "w3c-ecma/test307.txml": "a manual test (the tester reads the log); its script expects a state \"pass\" the document does not have",
  "w3c-ecma/test557.txml": "its <data src> file test557.txt has text after the root element: not well-formed XML, so the value stays text",
  "w3c-ecma/test452.txml": "its data model holds an object made by a constructor (new testobject()), which the durable context cannot store " +
    "(plain objects, arrays, functions and XML only): the start is refused with a ValidationError"
}

const scxml = (body: string, attrs = `name="test"`) =>
  `<scxml xmlns="http://www.w3.org/2005/07/scxml" version="1.0" datamodel="ecmascript" ${attrs}>${body}</scxml>`

const Counters = Procedure.fromSCXML(
  scxml(`
  <datamodel><data id="entered" expr="0"/><data id="exited" expr="0"/><data id="step" expr="1"/></datamodel>
  <parallel id="p">
    <onentry><assign location="entered" expr="entered + 1"/></onentry>
    <onexit><assign location="exited" expr="exited + 1"/></onexit>
    <state id="a">
      <state id="a1"><transition event="go" target="a2"/></state>
      <state id="a2"><onentry><send event="tick" delay="5s" id="t"/></onentry><transition event="tick" target="a3"/></state>
      <state id="a3"><transition event="stop" cond="_event.data.ok === true" target="done"/></state>
    </state>
    <state id="b">
      <state id="b1"><transition event="go.*" target="b2"><assign location="step" expr="step * 10"/></transition></state>
      <state id="b2"><onentry><send event="never" delay="1s" id="n"/><cancel sendid="n"/></onentry><transition event="never" target="b1"/></state>
    </state>
  </parallel>
  <final id="done"/>`, `name="counters"`),
  { outcomes: { done: "finished" } }
)

/** The chart's context of a snapshot (the execution's context is the chart's session). */
const chartOf = (snapshot: { readonly context: unknown }) => snapshot.context as Procedure.ChartContext

const layer = Runtime.layer({ procedures: [Counters] }).pipe(Layer.provideMerge(Store.layerMemory))

describe("Procedure.fromSCXML", () => {
  it.effect("runs a parallel chart durably: events, a delayed send on the timer, cancel, the final's outcome", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Counters, {})
      const started = yield* Runtime.get(id)
      assert.strictEqual(started.status, "waiting")
      assert.deepStrictEqual(Procedure.chartConfiguration(Counters, started), ["p", "a", "a1", "b", "b1"])
      yield* Runtime.sendAndWait(id, { _tag: "go" })
      const afterGo = yield* Runtime.get(id)
      assert.deepStrictEqual(Procedure.chartConfiguration(Counters, afterGo), ["p", "a", "a2", "b", "b2"])
      // what front ends offer: the events the active states' transitions name
      assert.deepStrictEqual(Execution.allowedOperations(afterGo, Counters).events, ["tick", "never"])
      // the tick is pending (the cancelled "never" is not): the state's timer is its due time
      assert.strictEqual(afterGo.timerDueAt, 5000)
      assert.deepStrictEqual(chartOf(afterGo).pending.map((p) => p.name), ["tick"])
      assert.strictEqual(chartOf(afterGo).data["step"], 10)
      // an event no transition takes is consumed and changes nothing
      yield* Runtime.sendAndWait(id, { _tag: "nobody.listens" })
      assert.deepStrictEqual(Procedure.chartConfiguration(Counters, yield* Runtime.get(id)), ["p", "a", "a2", "b", "b2"])
      yield* TestClock.adjust("4999 millis")
      assert.deepStrictEqual(Procedure.chartConfiguration(Counters, yield* Runtime.get(id)), ["p", "a", "a2", "b", "b2"])
      yield* TestClock.adjust("1 millis")
      const ticked = yield* Runtime.get(id)
      assert.deepStrictEqual(Procedure.chartConfiguration(Counters, ticked), ["p", "a", "a3", "b", "b2"])
      assert.strictEqual(ticked.timerDueAt, undefined)
      yield* Runtime.sendAndWait(id, { _tag: "stop", data: { ok: false } })
      assert.strictEqual((yield* Runtime.get(id)).status, "waiting")
      yield* Runtime.sendAndWait(id, { _tag: "stop", data: { ok: true } })
      const done = yield* Runtime.get(id)
      assert.strictEqual(done.state, "done")
      assert.strictEqual(done.status, "succeeded")
      assert.strictEqual(done.outcome, "finished")
      // leaving the chart ran p's onexit once
      assert.deepStrictEqual([chartOf(done).data["entered"], chartOf(done).data["exited"]], [1, 1])
      const history = yield* Runtime.history(id)
      assert.deepStrictEqual(history.map((t) => `${t.cause} ${t.to}`), [
        "start chart",
        "event:go chart",
        "event:nobody.listens chart",
        "timer chart",
        "event:stop chart",
        "event:stop done"
      ])
      // the history replays (the chart's rows as the chart state's own transitions)
      const report = yield* Runtime.verify(id)
      assert.isTrue(report.ok, report.problems.join("; "))
    }).pipe(Effect.provide(layer)))

  it.effect("the input gives the data model its initial values (init), and _sessionid is the execution's id", () =>
    Effect.gen(function*() {
      const Greeter = Procedure.fromSCXML(scxml(`
        <datamodel><data id="who" expr="'nobody'"/><data id="times" expr="1"/></datamodel>
        <state id="a"><transition event="greet" cond="who === 'ann' &amp;&amp; times === 1 &amp;&amp; extra === 2" target="b">
          <assign location="who" expr="_sessionid"/></transition></state>
        <final id="b"/>`, `name="greeter"`), {
        input: Schema.Struct({ name: Schema.String }),
        init: (input) => ({ who: input.name, extra: 2 })
      })
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Greeter, { name: "ann" }, { id: "greeter-1" })
        yield* Runtime.sendAndWait(id, { _tag: "greet" })
        const end = yield* Runtime.get(id)
        assert.deepStrictEqual([end.state, chartOf(end).data["who"]], ["b", "greeter-1"])
      }).pipe(Effect.provide(Runtime.layer({ procedures: [Greeter] }).pipe(Layer.provideMerge(Store.layerMemory))))
    }))

  it.effect("the data model keeps what it holds from one event to the next: undefined, NaN, functions, a __proto__ key", () =>
    Effect.gen(function*() {
      const Keeper = Procedure.fromSCXML(scxml(`
        <datamodel><data id="u"/><data id="o" expr="JSON.parse('{&quot;__proto__&quot;: {&quot;x&quot;: 1}}')"/></datamodel>
        <script>var nan = NaN; function twice(x) { return 2 * x + (o.__proto__ ? 0 : 100) }</script>
        <state id="a">
          <transition event="check" cond="u === undefined &amp;&amp; Number.isNaN(nan) &amp;&amp; twice(2) === 4 &amp;&amp; Object.keys(o).includes('__proto__')" target="kept"/>
          <transition event="check" target="lost"/>
        </state>
        <state id="kept"/><state id="lost"/>`, `name="keeper"`))
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Keeper, {})
        yield* Runtime.sendAndWait(id, { _tag: "check" })
        assert.deepStrictEqual(Procedure.chartConfiguration(Keeper, yield* Runtime.get(id)), ["kept"])
      }).pipe(Effect.provide(Runtime.layer({ procedures: [Keeper] }).pipe(Layer.provideMerge(Store.layerMemory))))
    }))

  it.effect("the state's timer follows the earliest delayed send, also when a later event queues an earlier one", () =>
    Effect.gen(function*() {
      const Timers = Procedure.fromSCXML(scxml(`
        <state id="a">
          <onentry><send event="slow" delay="10s"/></onentry>
          <transition event="hurry"><send event="fast" delay="1s"/></transition>
          <transition event="fast" target="b"/><transition event="slow" target="c"/>
        </state>
        <state id="b"/><state id="c"/>`, `name="timers"`))
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Timers, {})
        yield* TestClock.adjust("2 seconds")
        yield* Runtime.sendAndWait(id, { _tag: "hurry" })
        assert.strictEqual((yield* Runtime.get(id)).timerDueAt, 3000)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(Procedure.chartConfiguration(Timers, yield* Runtime.get(id)), ["b"])
      }).pipe(Effect.provide(Runtime.layer({ procedures: [Timers], passivation: { enabled: false } }).pipe(Layer.provideMerge(Store.layerMemory))))
    }))

  it.scoped("a delayed send survives a restart (its timer is in the store) and a cancelled one never comes", () =>
    Effect.gen(function*() {
      const Reminder = Procedure.fromSCXML(scxml(`
        <state id="waiting">
          <onentry><send event="remind" delay="1h" id="r"/><send event="expire" delayexpr="'2h'" id="x"/></onentry>
          <transition event="paid"><cancel sendid="x"/></transition>
          <transition event="expire" target="expired"/>
          <transition event="remind" target="reminded"/>
        </state>
        <state id="reminded"><transition event="expire" target="expired"/><transition event="close" target="closed"/></state>
        <final id="expired"/><final id="closed"/>`, `name="reminder"`), { outcomes: { expired: "failed" } })
      const store = yield* Store.makeMemory
      const layer = Runtime.layer({ procedures: [Reminder] }).pipe(Layer.provide(Layer.succeed(Store.Store, store)))
      /** One life of the runtime: runs `f`, then the runtime is closed (its actors and timers in memory are gone). */
      const life = <A, E>(f: Effect.Effect<A, E, Runtime.Runtime>) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(layer, scope)
          const out = yield* Effect.provide(f, context)
          yield* Scope.close(scope, Exit.void)
          return out
        })
      const id = yield* life(Effect.gen(function*() {
        const id = yield* Runtime.start(Reminder, {})
        yield* Runtime.sendAndWait(id, { _tag: "paid" })
        return id
      }))
      const stored = (yield* store.get(id)).pipe((o) => (o._tag === "Some" ? o.value : undefined))!
      assert.strictEqual(stored.timerDueAt, 3_600_000)
      assert.deepStrictEqual(chartOf(stored).pending.map((p) => p.id), ["r"])
      // the reminder falls due while no runtime runs; the next one delivers it at recovery
      yield* TestClock.adjust("90 minutes")
      const after = yield* life(Effect.gen(function*() {
        yield* TestClock.adjust("1 millis")
        return yield* Runtime.get(id)
      }))
      assert.deepStrictEqual(Procedure.chartConfiguration(Reminder, after), ["reminded"])
      assert.strictEqual(after.timerDueAt, undefined)
      // the cancelled expiry never comes, however long we wait
      const later = yield* life(Effect.gen(function*() {
        yield* TestClock.adjust("10 hours")
        return yield* Runtime.get(id)
      }))
      assert.deepStrictEqual([later.status, Procedure.chartConfiguration(Reminder, later)], ["waiting", ["reminded"]])
      const history = yield* life(Runtime.history(id))
      assert.deepStrictEqual(history.map((t) => t.cause), ["start", "event:paid", "timer"])
    }))

  it.effect("the CLI's show and GET /api/executions/:id show the chart's configuration", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Counters, {})
      yield* Runtime.sendAndWait(id, { _tag: "go" })
      const snapshot = yield* Runtime.get(id)
      const capture = Out.makeCapture()
      // the chart state, then the chart's states (Runtime.configuration)
      const configuration = [snapshot.state, "p", "a", "a2", "b", "b2"]
      assert.deepStrictEqual(yield* Runtime.configuration(id), configuration)
      yield* Out.execution(snapshot, [], [], 0, { allowed: { commands: [], events: [] }, configuration }).pipe(
        Effect.provideService(Out.Output, capture.service)
      )
      assert.match(capture.stdout(), new RegExp(`configuration\\s+${configuration.join(", ")}\\n`))
      const response = yield* Effect.flatMap(HttpClient.HttpClient, (http) => http.get(`/api/executions/${id}`))
      const body = (yield* response.json) as { readonly configuration?: ReadonlyArray<string> }
      assert.deepStrictEqual(body.configuration, configuration)
    }).pipe(Effect.provide(Server.layer({}).pipe(Layer.provideMerge(layer), Layer.provideMerge(NodeHttpServer.layerTest)))))

  it("refuses what the durable runtime does not run, naming the element and its line", () => {
    const refused = (xml: string, options?: Procedure.FromSCXMLOptions) => {
      try {
        Procedure.fromSCXML(xml, options)
      } catch (error) {
        assert.instanceOf(error, DefinitionError)
        return (error as DefinitionError).message
      }
      assert.fail("the document was accepted")
    }
    assert.match(refused(scxml(`<state id="a">\n<invoke type="scxml" src="child.scxml"/></state>`)), /<invoke> at line 2, column 1/)
    assert.match(refused(scxml(`<state id="a"><onentry>\n<if cond="true"><send event="e" target="#_parent"/></if></onentry></state>`)), /<send target="#_parent"> at line 2/)
    assert.match(refused(scxml(`<state id="a"><onentry><script src="x.js"/></onentry></state>`)), /cannot load src="x\.js"/)
    assert.match(refused(scxml(`<state id="a"><transition target="nowhere"/></state>`)), /"nowhere" is not the id of any state/)
    assert.match(refused(scxml(`<state id="a">`)), /not valid at line 1/)
    assert.match(refused(scxml(`<state id="a"/>`, "")), /no name attribute/)
    assert.match(refused(scxml(`<state id="a"/><final id="end"/>`), { outcomes: { ending: "failed" } }), /"ending", which is not a top-level <final>/)
  })
})

describe("SCXML conformance through the durable runtime", () => {
  it.effect("runs the SCION and W3C tests with fromSCXML, Runtime.send and the test clock, comparing whole configurations", () =>
    Effect.gen(function*() {
      const prepared = listTests(suiteFolder()).map((test) => prepareDurable(test, w3cOracleIsLegacy.includes(test.name)))
      const procedures = prepared.flatMap((p) => (p.procedure === undefined ? [] : [p.procedure]))
      const suiteLayer = Runtime.layer({ procedures }).pipe(Layer.provideMerge(recordingStore))
      const results = yield* Effect.forEach(prepared, (p) => Effect.map(runDurable(p), (failure) => ({ test: p.test, failure }))).pipe(
        Effect.provide(suiteLayer)
      )
      const { bySection, passed, unexpected } = tally(results, expectedFailures)
      assert.deepStrictEqual(unexpected, [])
      // docs/statecharts.md's per-section table says what this run measured, in its "durable" column
      assert.deepStrictEqual(
        documented("durable", Object.keys(bySection)),
        bySection,
        "the durable column of the table in docs/statecharts.md is out of date"
      )
      assert.strictEqual(passed + Object.keys(expectedFailures).length, results.length)
    }), { timeout: 300_000 })
})
