import { assert, describe, it } from "@effect/vitest"
import type { Cause, Tracer } from "effect"
import { Effect, FiberRef, HashMap, Schema, TestClock } from "effect"
import { Procedure, Runtime } from "proctor"
import * as Spans from "../src/internal/spans.js"
import { runtimeLayer } from "./fixtures/procedures.js"
import type { Ended } from "./fixtures/tracing.js"
import { recording } from "./fixtures/tracing.js"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })

const Review = Procedure.make("review", { version: 2, input: Schema.Undefined, context: Schema.Undefined, events: Approve }, {
  initial: "prepare",
  states: {
    prepare: Procedure.step({ run: () => Effect.sleep("1 second"), next: "review" }),
    review: Procedure.wait({ on: { Approve: "approved" } }),
    approved: Procedure.final()
  }
})

describe("tracing joins the caller's trace", () => {
  it.effect("a run is a child of the start or send that started it, and links to the sends it serves after that", () => {
    const spans: Array<Ended> = []
    return Effect.gen(function*() {
      const tracer = yield* recording(spans)
      yield* Effect.gen(function*() {
        // A: approved early, while `prepare` runs: its one run serves the send by a link
        const a = yield* Runtime.start(Review, undefined).pipe(Effect.withSpan("caller.startA"))
        yield* Runtime.send(a, { _tag: "Approve", by: "early" }).pipe(Effect.withSpan("caller.early"))
        // B: approved once it waits (and has left memory): the send starts its second run
        const b = yield* Runtime.start(Review, undefined).pipe(Effect.withSpan("caller.startB"))
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Runtime.await(a)).status, "succeeded")
        assert.strictEqual((yield* Runtime.get(b)).status, "waiting")
        yield* Runtime.send(b, { _tag: "Approve", by: "late" }).pipe(Effect.withSpan("caller.late"))
        assert.strictEqual((yield* Runtime.await(b)).status, "succeeded")
        yield* TestClock.adjust("1 millis")

        const one = (name: string, attr?: [string, unknown]) => {
          const found = spans.filter((s) => s.name === name && (attr === undefined || s.attributes.get(attr[0]) === attr[1]))
          assert.strictEqual(found.length, 1, `one ${name} ${attr ?? ""}, found ${found.length}`)
          return found[0]!
        }
        const runs = (id: string) => spans.filter((s) => s.name === "proctor.execution" && s.attributes.get("proctor.execution.id") === id)

        // A: caller.startA > proctor.start > proctor.execution > proctor.state > proctor.step, one trace
        const startA = one("caller.startA")
        const proctorStartA = one("proctor.start", ["proctor.execution.id", a])
        assert.strictEqual(proctorStartA.parentId, startA.spanId)
        const [runA, ...moreA] = runs(a)
        assert.strictEqual(moreA.length, 0)
        assert.strictEqual(runA!.parentId, proctorStartA.spanId)
        assert.strictEqual(runA!.traceId, startA.traceId)
        const sendEarly = one("proctor.send", ["proctor.execution.id", a])
        assert.strictEqual(sendEarly.parentId, one("caller.early").spanId)
        assert.deepStrictEqual(Object.fromEntries(sendEarly.attributes), { "proctor.execution.id": a, "proctor.event.type": "Approve" })
        assert.deepStrictEqual(runA!.links, [sendEarly.spanId])
        const stepA = one("proctor.step", ["proctor.execution.id", a])
        const prepareA = spans.find((s) => s.spanId === stepA.parentId)!
        assert.deepStrictEqual([prepareA.name, prepareA.attributes.get("proctor.state.name"), prepareA.parentId], ["proctor.state", "prepare", runA!.spanId])
        assert.strictEqual(stepA.traceId, startA.traceId)

        // B: two runs, each in the trace of the request that started it
        const [firstB, secondB, ...moreB] = runs(b)
        assert.strictEqual(moreB.length, 0)
        assert.strictEqual(firstB!.parentId, one("proctor.start", ["proctor.execution.id", b]).spanId)
        assert.strictEqual(firstB!.traceId, one("caller.startB").traceId)
        assert.strictEqual(firstB!.attributes.get("proctor.execution.status"), "waiting")
        const sendLate = one("proctor.send", ["proctor.execution.id", b])
        assert.strictEqual(secondB!.parentId, sendLate.spanId)
        assert.strictEqual(secondB!.traceId, one("caller.late").traceId)
        assert.notStrictEqual(secondB!.traceId, firstB!.traceId)
        assert.deepStrictEqual(secondB!.links, [])
        assert.strictEqual(secondB!.attributes.get("proctor.execution.status"), "succeeded")
      }).pipe(Effect.provide(runtimeLayer([Review])), Effect.withTracer(tracer))
    })
  })
})

describe("Effect's fiber internals (src/internal/spans.ts)", () => {
  it.effect("are as the fast path expects: otherwise every run sets spans through the slower public API", () =>
    Effect.gen(function*() {
      const found = yield* Spans.checkInternals
      assert.deepStrictEqual(
        found,
        { _tag: "Fast" },
        `EffectInternalsChanged: ${found._tag === "Public" ? found.reason : ""}. Proctor still works (the public API ` +
          `is used), but slower: adapt setFast in src/internal/spans.ts to this Effect version, or drop it.`
      )
    }))

  it.effect("the fast path and the public API set the same parent span and log annotations", () =>
    Effect.gen(function*() {
      for (const fast of [true, false]) {
        for (const enabled of [true, false]) {
          const annotations = HashMap.make(["k", `${fast}/${enabled}`])
          const [set, current, logged] = yield* Effect.withFiberRuntime<readonly [Tracer.Span, Tracer.Span, HashMap.HashMap<string, unknown>], Cause.NoSuchElementException>((fiber) => {
            const spans = Spans.make(fiber, enabled, fast)
            const span = spans.make("probe", undefined, {})
            const seen = Effect.all([Effect.currentSpan, FiberRef.get(FiberRef.currentLogAnnotations)])
            return Effect.map(Spans.setParentAndAnnotations(fiber, spans, span, annotations, seen), ([current, logged]) => [span, current, logged] as const)
          }).pipe(Effect.withSpan("outer"))
          assert.deepStrictEqual([current.name, current === set, logged === annotations], [enabled ? "probe" : "outer", enabled, true], `fast: ${fast}, enabled: ${enabled}`)
        }
      }
    }))
})
