import { assert, describe, it } from "@effect/vitest"
import type { Tracer } from "effect"
import { Effect, HashMap, Layer, Logger, Metric, Option, Schema, TestClock } from "effect"
import { Procedure, Runtime } from "proctor"
import { Linear, makeFlaky, runtimeLayer } from "./fixtures/procedures.js"
import type { Ended } from "./fixtures/tracing.js"
import { recording } from "./fixtures/tracing.js"

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (s) => s.count)
const snapshot = Effect.all([
  count(Runtime.metrics.executionsStarted),
  count(Metric.tagged(Runtime.metrics.executionsFinished, "outcome", "succeeded")),
  count(Runtime.metrics.transitions),
  count(Runtime.metrics.retries)
])

describe("observability", () => {
  it.effect("spans for the execution, each state visit, each step attempt and each retry", () => {
    const spans: Array<Ended> = []
    const Flaky = makeFlaky(1)
    return Effect.gen(function*() {
      const tracer = yield* recording(spans)
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Flaky, { n: 0 })
        yield* TestClock.adjust("2 seconds")
        yield* Runtime.await(id)
        yield* TestClock.adjust("1 millis")
        const byName = (n: string) => spans.filter((s) => s.name === n)
        assert.deepStrictEqual(byName("proctor.state").map((s) => s.attributes.get("proctor.state.name")), ["a", "b"])
        assert.deepStrictEqual(byName("proctor.step").map((s) => [s.attributes.get("proctor.state.name"), s.attributes.get("proctor.step.attempt")]), [
          ["a", 1],
          ["b", 1],
          ["b", 2]
        ])
        assert.deepStrictEqual(byName("proctor.retry").map((s) => s.attributes.get("proctor.step.attempt")), [1])
        assert.strictEqual(byName("proctor.execution").length, 1)
        assert.deepStrictEqual(Object.fromEntries(byName("proctor.execution")[0]!.attributes), {
          "proctor.execution.id": id,
          "proctor.procedure.name": "flaky",
          "proctor.procedure.version": 1,
          "proctor.execution.status": "succeeded"
        })
        for (const s of [...byName("proctor.state"), ...byName("proctor.step"), ...byName("proctor.retry")]) {
          assert.strictEqual(s.attributes.get("proctor.execution.id"), id)
        }
        assert.deepStrictEqual(Object.fromEntries(byName("proctor.start")[0]!.attributes), {
          "proctor.procedure.name": "flaky",
          "proctor.procedure.version": 1,
          "proctor.execution.id": id
        })
      }).pipe(Effect.provide(runtimeLayer([Flaky])), Effect.withTracer(tracer))
    })
  })

  it.effect("under Effect's default tracer, a step sees its span, a child of the state's, the execution's and the start's", () => {
    const seen: Array<{ name: string; state: unknown; attempt: unknown; chain: Array<string>; traceIds: number }> = []
    const names = (span: Tracer.AnySpan): Array<string> =>
      span._tag === "Span" ? [span.name, ...Option.match(span.parent, { onNone: () => [], onSome: names })] : []
    const Traced = Procedure.make("traced", { version: 1, input: Schema.Undefined, context: Schema.Undefined }, {
      initial: "a",
      states: {
        a: Procedure.step({
          run: () =>
            Effect.map(Effect.currentSpan, (span) => {
              const chain = names(span)
              const traceIds = new Set<string>()
              for (let s: Tracer.AnySpan | undefined = span; s !== undefined; s = s._tag === "Span" ? Option.getOrUndefined(s.parent) : undefined) traceIds.add(s.traceId)
              seen.push({
                name: span.name,
                state: span.attributes.get("proctor.state.name"),
                attempt: span.attributes.get("proctor.step.attempt"),
                chain,
                traceIds: traceIds.size
              })
            }),
          next: "done"
        }),
        done: Procedure.final()
      }
    })
    return Effect.gen(function*() {
      yield* Runtime.await(yield* Runtime.start(Traced, undefined))
      assert.deepStrictEqual(seen, [{
        name: "proctor.step",
        state: "a",
        attempt: 1,
        chain: ["proctor.step", "proctor.state", "proctor.execution", "proctor.start"],
        traceIds: 1
      }])
    }).pipe(Effect.provide(runtimeLayer([Traced])))
  })

  it.effect("tracing: false makes no proctor span; a step's own spans and its log annotations stay", () => {
    const spans: Array<Ended> = []
    const lines: Array<Record<string, unknown>> = []
    const logger = Logger.make(({ annotations, message }) => {
      lines.push({ message: String(message), ...Object.fromEntries(HashMap.toEntries(annotations)) })
    })
    const Own = Procedure.make("own-span", { version: 1, input: Schema.Undefined, context: Schema.Undefined }, {
      initial: "a",
      states: {
        a: Procedure.step({ run: () => Effect.logInfo("in a").pipe(Effect.withSpan("mine")), next: "done" }),
        done: Procedure.final()
      }
    })
    const Flaky = makeFlaky(1)
    return Effect.gen(function*() {
      const tracer = yield* recording(spans)
      yield* Effect.gen(function*() {
        const own = yield* Runtime.start(Own, undefined)
        const flaky = yield* Runtime.start(Flaky, { n: 0 })
        yield* TestClock.adjust("2 seconds")
        yield* Runtime.await(own)
        assert.strictEqual((yield* Runtime.await(flaky)).status, "succeeded")
        assert.deepStrictEqual(spans.map((s) => [s.name, s.parent]), [["mine", undefined]])
        const line = lines.find((l) => l.message === "in a")
        assert.deepStrictEqual(line && [line.executionId, line.state, line.attempt], [own, "a", 1])
      }).pipe(
        Effect.provide(runtimeLayer([Own, Flaky], { tracing: false }).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger)))),
        Effect.withTracer(tracer)
      )
    })
  })

  it.effect("metrics: executions started and finished by outcome, transitions, retries", () => {
    const Flaky = makeFlaky(1)
    return Effect.gen(function*() {
      const before = yield* snapshot
      const a = yield* Runtime.start(Linear, { n: 0 })
      const b = yield* Runtime.start(Flaky, { n: 0 })
      yield* TestClock.adjust("2 seconds")
      yield* Runtime.await(a)
      yield* Runtime.await(b)
      const after = yield* snapshot
      assert.deepStrictEqual(after.map((v, i) => v - before[i]!), [2, 2, 3 + 2, 1])
    }).pipe(Effect.provide(runtimeLayer([Linear, Flaky])))
  })
})

describe("log annotations", () => {
  it.effect("logs from a step carry the execution id, procedure, state and attempt", () => {
    const lines: Array<Record<string, unknown>> = []
    const logger = Logger.make(({ annotations, message }) => {
      lines.push({ message: Array.isArray(message) ? message.join(" ") : String(message), ...Object.fromEntries(HashMap.toEntries(annotations)) })
    })
    const Logs = Procedure.make("logs", { version: 1, input: Schema.Struct({ n: Schema.Number }), context: Schema.Struct({ n: Schema.Number }) }, {
      initial: "hello",
      states: {
        hello: Procedure.step({ run: () => Effect.logInfo("hi from a step"), next: "done" }),
        done: Procedure.final()
      }
    })
    return Effect.gen(function*() {
      const id = yield* Runtime.start(Logs, { n: 0 })
      yield* Runtime.await(id)
      const line = lines.find((l) => l.message === "hi from a step")
      assert.deepStrictEqual(
        line && { executionId: line.executionId, procedure: line.procedure, state: line.state, attempt: line.attempt },
        { executionId: id, procedure: "logs", state: "hello", attempt: 1 }
      )
    }).pipe(Effect.provide(runtimeLayer([Logs]).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger)))))
  })
})
