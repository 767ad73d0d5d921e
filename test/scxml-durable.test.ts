// Procedure.fromSCXML: an SCXML chart run by the durable runtime (in memory, virtual time):
// events through Runtime.send, delayed sends as the state's durable timer, cancel, the
// top-level final as the execution's end, and the documents fromSCXML refuses.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import { DefinitionError, Procedure, Runtime, Store } from "proctor"

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
    }).pipe(Effect.provide(layer)))

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
