/**
 * Spans and fiber-local settings of the actor's hot path, made synchronously.
 *
 * `Effect.makeSpan` and `FiberRef.set` are built for occasional use: each reads several
 * FiberRefs, copies the fiber's FiberRefs and compares the old and new values
 * structurally (a Context, a HashMap). A run makes a span and sets two FiberRefs for each
 * step attempt, so it reads what spans need once per run and writes both FiberRefs in
 * one copy.
 */
import type { Exit, Fiber, FiberId, HashMap } from "effect"
import { Chunk, Clock, Context, DefaultServices, Effect, Equal, FiberRef, FiberRefs, Option, Tracer } from "effect"

export interface Spans {
  /** starts a span, as `Effect.makeSpan` would in the fiber that made this maker */
  readonly make: (name: string, parent: Tracer.AnySpan | undefined, attributes: Record<string, unknown>) => Tracer.Span
  /** the current time for `span.end` */
  readonly now: () => bigint
}

const bigint0 = BigInt(0)

/**
 * `effect` in a span named `name`, a child of the current span, like `Effect.withSpan`
 * without a stack trace; the span is not made the parent of what `effect` runs.
 */
export const around = <A, E, R>(name: string, attributes: Record<string, unknown>, effect: Effect.Effect<A, E, R>) =>
  Effect.withFiberRuntime<A, E, R>((fiber) => {
    const spans = make(fiber)
    const span = spans.make(name, fiber.currentSpan, attributes)
    return Effect.onExit(effect, (exit) => Effect.sync(() => span.end(spans.now(), exit)))
  })

/** Effect's default tracer, which records spans in memory and exports nothing. */
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** A span maker with the tracer, clock, annotations and links `fiber` has now. */
export const make = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Spans => {
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  const now = () => clock.unsafeCurrentTimeNanos()
  if (!fiber.getFiberRef(FiberRef.currentTracerEnabled)) return { make: noop, now }
  const tracer = fiber.currentTracer
  const timing = fiber.getFiberRef(FiberRef.currentTracerTimingEnabled)
  const annotations = [...fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)]
  const links = Chunk.toReadonlyArray(fiber.getFiberRef(FiberRef.currentTracerSpanLinks))
  const make = (name: string, parent: Tracer.AnySpan | undefined, attributes: Record<string, unknown>) => {
    const startTime = timing ? now() : bigint0
    const span = tracer === nativeTracer
      ? new LocalSpan(name, parent, links, startTime)
      : tracer.span(name, Option.fromNullable(parent), Context.empty(), links, startTime, "internal")
    for (let i = 0; i < annotations.length; i++) span.attribute(annotations[i]![0], annotations[i]![1])
    for (const k in attributes) span.attribute(k, attributes[k])
    return span
  }
  return { make, now }
}

let lastSpanId = 0

/**
 * What Effect's native tracer would make (its `NativeSpan`), for less: with no tracer
 * installed a span is only ever read in this process (`Effect.currentSpan`, a parent), so
 * its ids come from a counter instead of 48 calls to `Math.random`, and its attribute map
 * and event list are made when first written. Made twice per transition, `NativeSpan` was
 * about 5% of the in-memory W1 profile (bench/profile.ts).
 */
class LocalSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId: string
  readonly traceId: string
  readonly sampled = true
  readonly kind = "internal"
  readonly context = Context.empty()
  readonly parent: Option.Option<Tracer.AnySpan>
  status: Tracer.SpanStatus
  private attrs: Map<string, unknown> | undefined = undefined
  events: Array<[name: string, startTime: bigint, attributes: Record<string, unknown>]> | undefined = undefined
  links: Array<Tracer.SpanLink>
  constructor(readonly name: string, parent: Tracer.AnySpan | undefined, links: ReadonlyArray<Tracer.SpanLink>, startTime: bigint) {
    this.parent = Option.fromNullable(parent)
    this.status = { _tag: "Started", startTime }
    this.spanId = (++lastSpanId).toString(16).padStart(16, "0")
    this.traceId = parent !== undefined ? parent.traceId : this.spanId.padStart(32, "0")
    this.links = links.length === 0 ? [] : [...links]
  }
  get attributes(): ReadonlyMap<string, unknown> {
    return this.attrs ??= new Map()
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", endTime, exit, startTime: this.status.startTime }
  }
  attribute(key: string, value: unknown): void {
    ;(this.attrs ??= new Map()).set(key, value)
  }
  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    ;(this.events ??= []).push([name, startTime, attributes ?? {}])
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

/** tracing is off (`Effect.withTracerEnabled(false)`): spans that record nothing */
const noop = (name: string, parent: Tracer.AnySpan | undefined): Tracer.Span => ({
  _tag: "Span",
  name,
  spanId: "noop",
  traceId: "noop",
  parent: Option.fromNullable(parent),
  context: Context.empty(),
  status: { _tag: "Started", startTime: bigint0 },
  attributes: new Map(),
  links: [],
  sampled: false,
  kind: "internal",
  end: () => {},
  attribute: () => {},
  event: () => {},
  addLinks: () => {}
})

type Stack = ReadonlyArray<readonly [FiberId.Single, unknown]>

const push = (stack: Stack | undefined, id: FiberId.Single, value: unknown): [readonly [FiberId.Single, unknown], ...Stack] =>
  stack === undefined || stack.length === 0
    ? [[id, value]]
    : Equal.equals(stack[0]![0], id)
    ? [[id, value], ...stack.slice(1)]
    : [[id, value], ...stack]

/**
 * Sets the parent span and the log annotations of the fiber's code from now on, in one
 * copy of its FiberRefs. Call it from the fiber itself (in `Effect.withFiberRuntime`).
 *
 * It calls the fiber's own `setFiberRefs` (on every `FiberRuntime` of Effect 3, though not
 * on the `RuntimeFiber` type): `Effect.setFiberRefs` sets each FiberRef one by one, which
 * cost a third of the throughput here.
 */
export const setParentAndAnnotations = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  span: Tracer.Span,
  annotations: HashMap.HashMap<string, unknown>
) => {
  const id = fiber.id()
  const locals = new Map(currentRefs(fiber).locals)
  const context = Context.add(fiber.currentContext, Tracer.ParentSpan, span)
  locals.set(FiberRef.currentContext, push(locals.get(FiberRef.currentContext), id, context))
  locals.set(FiberRef.currentLogAnnotations, push(locals.get(FiberRef.currentLogAnnotations), id, annotations))
  ;(fiber as unknown as { setFiberRefs(refs: FiberRefs.FiberRefs): void }).setFiberRefs(FiberRefs.unsafeMake(locals))
}

/**
 * The fiber's FiberRefs as they are: `getFiberRefs()` first stores the fiber's runtime
 * flags into them, a second copy of the whole map whenever the flags changed since (a
 * resumed fiber: 5% of the time of a durable run). The flags stored there are refreshed
 * on every `getFiberRefs()`, so a copy that keeps the old ones loses nothing.
 */
const currentRefs = (fiber: Fiber.RuntimeFiber<unknown, unknown>): FiberRefs.FiberRefs =>
  (fiber as unknown as { readonly _fiberRefs?: FiberRefs.FiberRefs })._fiberRefs ?? fiber.getFiberRefs()
