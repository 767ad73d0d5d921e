/**
 * Proctor's spans exported through OpenTelemetry: `@effect/opentelemetry`'s `NodeSdk`
 * gives the runtime a tracer, and an execution started inside a request's span joins that
 * request's trace (`proctor.start` → `proctor.execution` → `proctor.state` → `proctor.step`).
 *
 * Run it: `npx tsx examples/otel.ts` (prints the spans as a tree; in an application, use
 * an OTLP exporter instead of the in-memory one).
 *
 * @since 0.1.0
 */
import { NodeSdk } from "@effect/opentelemetry"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Console, Effect, Layer, Schema } from "effect"
import { Runtime, Store } from "proctor"
import { Expense } from "./quickstart.js"
import { isMain } from "./report.js"

const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })

/**
 * The tracer: every finished span goes to `exporter`. The runtime must be built with it
 * (its actors keep the services they were built with), so it is provided below the runtime.
 *
 * @since 0.1.0
 */
export const tracing = (exporter: InMemorySpanExporter) =>
  NodeSdk.layer(() => ({ resource: { serviceName: "expenses" }, spanProcessor: new SimpleSpanProcessor(exporter) }))

/**
 * The runtime on the in-memory store, traced into `exporter`.
 *
 * @since 0.1.0
 */
export const layer = (exporter: InMemorySpanExporter) =>
  Runtime.layer({ procedures: [Expense] }).pipe(Layer.provide(Store.layerMemory), Layer.provideMerge(tracing(exporter)))

/**
 * What a request handler would do: start an expense, approve it, wait for the end — each
 * call inside the request's own span (`http.request` here).
 *
 * @since 0.1.0
 */
export const program = Effect.gen(function*() {
  const id = yield* Runtime.start(Expense, { amount: 250 }).pipe(Effect.withSpan("http.request", { attributes: { "http.route": "/expenses" } }))
  yield* Runtime.send(id, Approve.make({ by: "ann" })).pipe(Effect.withSpan("http.request", { attributes: { "http.route": "/expenses/approve" } }))
  return yield* Runtime.await(id)
})

/**
 * The spans as an indented tree, children under their parent, one trace after another.
 *
 * @since 0.1.0
 */
export const tree = (spans: ReadonlyArray<ReadableSpan>): string => {
  const byParent = new Map<string | undefined, Array<ReadableSpan>>()
  const ids = new Set(spans.map((s) => s.spanContext().spanId))
  for (const span of spans) {
    const parent = span.parentSpanContext?.spanId
    const key = parent !== undefined && ids.has(parent) ? parent : undefined
    byParent.set(key, [...(byParent.get(key) ?? []), span])
  }
  const lines: Array<string> = []
  const walk = (parent: string | undefined, depth: number) => {
    for (const span of byParent.get(parent) ?? []) {
      const state = span.attributes["proctor.state.name"]
      const links = span.links.length > 0 ? ` (${span.links.length} link${span.links.length > 1 ? "s" : ""})` : ""
      lines.push(`${"  ".repeat(depth)}${span.name}${state === undefined ? "" : ` ${String(state)}`}${links}`)
      walk(span.spanContext().spanId, depth + 1)
    }
  }
  walk(undefined, 0)
  return lines.join("\n")
}

if (isMain(import.meta.url)) {
  const exporter = new InMemorySpanExporter()
  // read the spans before the layer closes: shutting the SDK down empties the in-memory exporter
  Effect.runPromise(Effect.gen(function*() {
    const done = yield* program
    yield* Console.log(`${done.status}\n${tree(exporter.getFinishedSpans())}`)
  }).pipe(Effect.provide(layer(exporter))))
}
