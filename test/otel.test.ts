/**
 * examples/otel.ts: Proctor's spans exported through @effect/opentelemetry, read back from
 * OpenTelemetry's in-memory exporter — the tree under the caller's span, and the links.
 */
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"
import { layer, program, tree } from "../examples/otel.js"

const parentOf = (spans: ReadonlyArray<ReadableSpan>, span: ReadableSpan) =>
  spans.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)

describe("examples/otel", () => {
  const exporter = new InMemorySpanExporter()
  it.effect("an execution's spans join the trace of the request that started it, with proctor.* attributes", () =>
    Effect.gen(function*() {
      const done = yield* program
      assert.strictEqual(done.status, "succeeded")
      const spans = exporter.getFinishedSpans()
      const [start, send] = ["proctor.start", "proctor.send"].map((name) => spans.find((s) => s.name === name)!)
      assert.isDefined(start)
      assert.isDefined(send)
      // proctor.start is a child of the caller's span, and the first run a child of proctor.start
      assert.strictEqual(parentOf(spans, start!)?.name, "http.request")
      assert.strictEqual(parentOf(spans, start!)?.attributes["http.route"], "/expenses")
      const runs = spans.filter((s) => s.name === "proctor.execution")
      const first = runs.find((s) => s.parentSpanContext?.spanId === start!.spanContext().spanId)
      assert.isDefined(first, tree(spans))
      assert.strictEqual(first!.spanContext().traceId, start!.spanContext().traceId)
      assert.strictEqual(first!.attributes["proctor.execution.id"], done.id)
      assert.strictEqual(first!.attributes["proctor.procedure.name"], "expense")
      // states and steps hang under their run, in the caller's trace
      const check = spans.find((s) => s.name === "proctor.state" && s.attributes["proctor.state.name"] === "check")!
      assert.strictEqual(parentOf(spans, check)?.name, "proctor.execution")
      assert.strictEqual(check.spanContext().traceId, start!.spanContext().traceId)
      assert.strictEqual(spans.find((s) => s.name === "proctor.step" && s.attributes["proctor.state.name"] === "check")?.parentSpanContext?.spanId, check.spanContext().spanId)
      // the approval joins the run that takes it: as that run's parent, or as a link on it
      const sendId = send!.spanContext().spanId
      assert.strictEqual(send!.attributes["proctor.event.type"], "Approve")
      assert.isTrue(
        runs.some((r) => r.parentSpanContext?.spanId === sendId || r.links.some((l) => l.context.spanId === sendId)),
        `no proctor.execution span follows the proctor.send span:\n${tree(spans)}`
      )
    }).pipe(Effect.provide(layer(exporter))))
})
