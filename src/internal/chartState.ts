/**
 * The state kind that runs a whole SCXML statechart inside one procedure state
 * (`Procedure.fromSCXML`). The chart's session (`chart/session.ts`: the active
 * configuration, history, the ECMAScript data model and the delayed sends still to come)
 * is the execution's context, as plain JSON (`ChartContext`). Each event is one macrostep,
 * computed here as a pure function of the stored context, the event and the time: the
 * runtime commits the new context with the event's consumption, so a crash never runs
 * committed executable content twice nor skips any. The earliest delayed send is the
 * state's durable timer (`timerDueAt`).
 */
import { Either, Schema } from "effect"
import type { Snapshot as ChartSnapshot } from "./chart/algorithm.js"
import type { ScxmlEvent } from "./chart/ecmascript.js"
import type { Block, Expr, ScxmlDocument } from "./chart/scxml.js"
import { type SessionState, ScxmlSession } from "./chart/session.js"
import { parseXml, XmlDom } from "./chart/xml.js"

/**
 * A state that runs an SCXML statechart: built by `Procedure.fromSCXML`, never by hand.
 *
 * @since 0.1.0
 * @category models
 */
export interface Chart {
  readonly _tag: "Chart"
  /** @internal the parsed document */
  readonly document: ScxmlDocument
  /** The state ids of the chart, in document order. */
  readonly stateIds: ReadonlyArray<string>
  /** The event descriptors of each state's transitions, by state id. */
  readonly events: { readonly [stateId: string]: ReadonlyArray<string> }
  /** The procedure's final states, one per top-level `<final>` of the chart, by the final's id. */
  readonly finals: ReadonlyArray<string>
  /** @internal session options */
  readonly maxMicrosteps: number
  readonly maxEvents: number
  readonly log: ((label: string | undefined, value: unknown) => void) | undefined
  readonly "~invalid"?: undefined
}

const PendingSend = Schema.Struct({
  /** the send id, explicit or generated (what `<cancel>` names) */
  id: Schema.String,
  name: Schema.String,
  sendid: Schema.optional(Schema.String),
  origin: Schema.optional(Schema.String),
  origintype: Schema.optional(Schema.String),
  data: Schema.optional(Schema.Unknown),
  due: Schema.Number,
  seq: Schema.Number
})

/**
 * The context of a procedure made by `Procedure.fromSCXML`: the chart's session as JSON.
 * `data` holds the data model's variables; a value JSON has no form for (`undefined`, a
 * function, NaN, an XML node) is an object with the key `"$proctor.chart"`.
 *
 * @since 0.1.0
 * @category models
 */
export const ChartContext = Schema.Struct({
  /** the active states, in document order (empty before the chart starts) */
  configuration: Schema.Array(Schema.String),
  /** the recorded history of each history state */
  history: Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) }),
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  /** the delayed `<send>`s still to come, with their due time (epoch milliseconds) */
  pending: Schema.Array(PendingSend),
  /** the chart entered a top-level final state */
  halted: Schema.Boolean,
  /** the chart's clock: the time of the last event it handled */
  now: Schema.Number,
  sends: Schema.Number,
  seq: Schema.Number,
  /** states whose late-bound data is initialised */
  bound: Schema.Array(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ChartContext extends Schema.Schema.Type<typeof ChartContext> {}

/** The context before the chart starts: the initial values of its data model, encoded. */
export const initialContext = (values: Readonly<Record<string, unknown>>): ChartContext => ({
  configuration: [],
  history: {},
  data: encodeData(values),
  pending: [],
  halted: false,
  now: 0,
  sends: 0,
  seq: 0,
  bound: []
})

/** What a macrostep leads to: the chart waits on, it ended in a top-level final, or it could not go on. */
export type ChartOutcome =
  | { readonly _tag: "Stay"; readonly context: ChartContext; readonly timerDueAt: number | undefined; readonly error?: unknown }
  | { readonly _tag: "Final"; readonly context: ChartContext; readonly final: string }
  | { readonly _tag: "Failed"; readonly error: unknown }

/** A value of the data model that cannot be stored as it is (a Map, a Date, a cycle, a built-in function). */
export class UnstorableValue extends Error {
  override readonly name = "UnstorableValue"
}

const mark = "$proctor.chart"

/** Sets an own property, even one named `__proto__` (an assignment would set the prototype). */
const put = (out: Record<string, unknown>, key: string, value: unknown) => {
  Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true })
}

const encodeValue = (v: unknown, at: string, ancestors: Set<object>): unknown => {
  switch (typeof v) {
    case "undefined":
      return { [mark]: "undefined" }
    case "number":
      return Number.isFinite(v) ? v : { [mark]: "number", value: String(v) }
    case "function": {
      const source = Function.prototype.toString.call(v)
      if (source.includes("[native code]")) throw new UnstorableValue(`${at} is a built-in function, which cannot be stored`)
      return { [mark]: "function", source }
    }
    case "bigint":
    case "symbol":
      throw new UnstorableValue(`${at} is a ${typeof v}, which cannot be stored`)
    case "object": {
      if (v === null) return null
      if (v instanceof XmlDom) return { [mark]: "xml", text: v.toString() }
      if (ancestors.has(v)) throw new UnstorableValue(`${at} holds a cycle, which cannot be stored`)
      ancestors.add(v)
      try {
        if (Array.isArray(v)) return v.map((item, i) => encodeValue(item, `${at}[${i}]`, ancestors))
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null) {
          throw new UnstorableValue(`${at} is a ${proto?.constructor?.name ?? "non-plain object"}, which cannot be stored (only plain objects and arrays)`)
        }
        const out: Record<string, unknown> = {}
        for (const [key, field] of Object.entries(v)) put(out, key, encodeValue(field, `${at}.${key}`, ancestors))
        return out
      } finally {
        ancestors.delete(v)
      }
    }
    default:
      return v
  }
}

const encodeData = (data: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data)) put(out, key, encodeValue(value, key, new Set()))
  return out
}

const decodeValue = (v: unknown, revive: (source: string) => unknown): unknown => {
  if (typeof v !== "object" || v === null) return v
  if (Array.isArray(v)) return v.map((item) => decodeValue(item, revive))
  const o = v as Record<string, unknown>
  switch (o[mark]) {
    case "undefined":
      return undefined
    case "number":
      return Number(o["value"])
    case "function":
      return revive(String(o["source"]))
    case "xml":
      return new XmlDom(parseXml(String(o["text"])))
  }
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(o)) put(out, key, decodeValue(field, revive))
  return out
}

/** A stored function's source, made a function again in the session's data model (so its names resolve there). */
const reviver = (session: ScxmlSession) => (source: string): unknown => {
  try {
    return session.evaluate(source)
  } catch {
    // a method written in shorthand (`f() {}`) is not an expression on its own
    return session.evaluate(`({ ${source} })[Object.keys({ ${source} })[0]]`)
  }
}

const newSession = (chart: Chart, executionId: string, startAt: number) =>
  new ScxmlSession(chart.document, {
    sessionId: executionId,
    maxMicrosteps: chart.maxMicrosteps,
    maxEvents: chart.maxEvents,
    startAt,
    ...(chart.log === undefined ? {} : { log: chart.log })
  })

const restored = (chart: Chart, executionId: string, context: ChartContext): ScxmlSession => {
  const session = newSession(chart, executionId, context.now)
  const revive = reviver(session)
  const data: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(context.data)) put(data, key, decodeValue(value, revive))
  const state: SessionState = {
    snapshot: { configuration: context.configuration, history: context.history },
    halted: context.halted,
    data,
    sends: context.sends,
    bound: context.bound,
    now: context.now,
    seq: context.seq,
    queue: context.pending.map((p) => ({
      id: p.id,
      due: p.due,
      seq: p.seq,
      event: {
        name: p.name,
        type: "external",
        sendid: p.sendid,
        origin: p.origin,
        origintype: p.origintype,
        invokeid: undefined,
        data: decodeValue(p.data, revive)
      } satisfies ScxmlEvent
    }))
  }
  session.restore(state)
  return session
}

const outcomeOf = (chart: Chart, session: ScxmlSession): ChartOutcome => {
  const s = session.save()
  const context: ChartContext = {
    configuration: s.snapshot.configuration,
    history: s.snapshot.history,
    data: encodeData(s.data),
    pending: [...s.queue].sort((a, b) => a.due - b.due || a.seq - b.seq).map((q) => ({
      id: q.id,
      name: q.event.name,
      ...(q.event.sendid === undefined ? {} : { sendid: q.event.sendid }),
      ...(q.event.origin === undefined ? {} : { origin: q.event.origin }),
      ...(q.event.origintype === undefined ? {} : { origintype: q.event.origintype }),
      ...(q.event.data === undefined ? {} : { data: encodeValue(q.event.data, `the data of event "${q.event.name}"`, new Set()) }),
      due: q.due,
      seq: q.seq
    })),
    halted: s.halted,
    now: s.now,
    sends: s.sends,
    seq: s.seq,
    bound: s.bound
  }
  if (s.halted) {
    const final = s.snapshot.configuration.find((id) => chart.finals.includes(id))
    if (final !== undefined) return { _tag: "Final", context, final }
  }
  return { _tag: "Stay", context, timerDueAt: context.pending[0]?.due }
}

const attempt = (f: () => ChartOutcome): ChartOutcome => {
  try {
    return f()
  } catch (error) {
    return { _tag: "Failed", error }
  }
}

/**
 * Entering the chart state: a context with no configuration starts the chart (its data
 * model from the context's values, then the initial macrostep); otherwise the chart goes
 * on where it is (an operator's skip back to it).
 */
export const enterChart = (chart: Chart, executionId: string, context: ChartContext, now: number): ChartOutcome =>
  attempt(() => {
    if (context.configuration.length > 0) return outcomeOf(chart, restored(chart, executionId, context))
    const session = newSession(chart, executionId, now)
    const revive = reviver(session)
    const values: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(context.data)) put(values, key, decodeValue(value, revive))
    session.start(values)
    return outcomeOf(chart, session)
  })

/**
 * An event from the inbox: the delayed sends due by `now` come first (they were queued
 * before it), then the event's macrostep. An event no transition takes changes nothing.
 */
export const chartEvent = (
  chart: Chart,
  executionId: string,
  context: ChartContext,
  event: { readonly _tag: string; readonly data?: unknown },
  now: number
): ChartOutcome =>
  attempt(() => {
    const session = restored(chart, executionId, context)
    session.advance(Math.max(0, now - session.now))
    if (!session.halted) session.send(event._tag, event.data)
    return outcomeOf(chart, session)
  })

/**
 * The timer: the delayed sends due by `now`, in order, each a macrostep. When that fails
 * (a loop), the earliest send is dropped with the error, or its timer would fire forever.
 */
export const chartTimer = (chart: Chart, executionId: string, context: ChartContext, now: number): ChartOutcome => {
  const outcome = attempt(() => {
    const session = restored(chart, executionId, context)
    session.advance(Math.max(0, now - session.now))
    return outcomeOf(chart, session)
  })
  if (outcome._tag !== "Failed" || context.pending.length === 0) return outcome
  const pending = context.pending.slice(1)
  return { _tag: "Stay", context: { ...context, pending }, timerDueAt: pending[0]?.due, error: outcome.error }
}

/** Decodes a stored context with its Schema (undefined when it is not a chart's context). */
export const chartContextOf = (context: unknown): ChartContext | undefined => {
  const decoded = Schema.decodeUnknownEither(ChartContext)(context)
  return Either.isRight(decoded) ? decoded.right : undefined
}

/** The active configuration of a chart's context: every active state, in document order. */
export const configurationOf = (context: ChartContext): ChartSnapshot["configuration"] => context.configuration

export type { Block, Expr }
