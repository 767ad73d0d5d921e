/**
 * Spans and fiber-local settings of the actor's hot path, made synchronously.
 *
 * `Effect.makeSpan` and `FiberRef.set` are built for occasional use: each reads several
 * FiberRefs, copies the fiber's FiberRefs and compares the old and new values
 * structurally (a Context, a HashMap). A run makes a span and sets two FiberRefs for each
 * step attempt, so it reads what spans need once per run and, when Effect's fiber
 * internals are as `checkInternals` expects (checked once per runtime), writes both
 * FiberRefs in one copy; otherwise it uses the public API, slower but as correct. With
 * the runtime's `tracing: false` no span is made at all.
 */
import type { FiberId } from "effect"
import { Cause, Chunk, Clock, Context, DefaultServices, Effect, Exit, Fiber, FiberRef, FiberRefs, HashMap, Option, Tracer } from "effect"

/**
 * Makes spans as `Effect.makeSpan` would in the fiber that made it. One object with shared
 * methods (no closures): a run keeps its maker for as long as it runs.
 */
export class Spans {
  constructor(
    readonly clock: Clock.Clock,
    /** false when tracing is off: `make` makes spans that record nothing */
    readonly enabled: boolean,
    /** set the parent span and log annotations through the fiber's internals (`checkInternals`) */
    readonly fast: boolean,
    private readonly tracer: Tracer.Tracer | undefined = undefined,
    private readonly timing = false,
    private readonly annotations: ReadonlyArray<readonly [string, unknown]> = noAnnotations,
    private readonly links: ReadonlyArray<Tracer.SpanLink> = noLinks
  ) {}

  /** the current time for `span.end` */
  now(): bigint {
    return this.clock.unsafeCurrentTimeNanos()
  }

  /**
   * Under Effect's own tracer (no tracer installed) spans are exported nowhere: Proctor's are
   * read only through a step's span, its parent chain (`Effect.currentSpan`). A run then
   * makes its execution's and its state visit's spans when that chain is first read (the
   * step's span asks its run: `makeStep`), not for every run and visit: ~0.4 KB of an
   * execution in a step (W1's heap pass, docs/benchmarks.md).
   */
  get lazy(): boolean {
    return this.tracer === nativeTracer
  }

  /**
   * starts a span, as `Effect.makeSpan` would in the fiber that made this maker; `startedAt`
   * (epoch millis) for a span made after the fact (`lazy`)
   */
  make(name: string, parent: Tracer.AnySpan | undefined, attributes: Record<string, unknown>, startedAt?: number): Tracer.Span {
    const tracer = this.tracer
    if (tracer === undefined) return noopSpan
    const startTime = !this.timing ? bigint0 : startedAt === undefined ? this.now() : BigInt(startedAt) * millionth
    if (tracer === nativeTracer) return this.annotated(new LocalSpan(name, parent, this.links, startTime, attributes), attributes)
    const { annotations, links } = this
    const span = tracer.span(name, Option.fromNullable(parent), Context.empty(), links, startTime, "internal")
    for (let i = 0; i < annotations.length; i++) span.attribute(annotations[i]![0], annotations[i]![1])
    for (const k in attributes) span.attribute(k, attributes[k])
    return span
  }

  /**
   * With `lazy` only: the span of attempt `attempt` of a step in `state`, whose parent (the
   * state visit's span) `source` makes when it is first read, and whose attributes are made
   * when first read too.
   */
  makeStep(source: ParentSource, visit: number, state: string, attempt: number): Tracer.Span {
    const startTime = this.timing ? this.now() : bigint0
    const span = new StepSpan(source, visit, state, attempt, this.links, startTime)
    return this.annotations.length === 0 ? span : this.annotated(span, span.initialAttributes())
  }

  /** the span annotations of the fiber that made this maker, then `attributes` (which they must not override) */
  private annotated(span: SpanBase, attributes: Record<string, unknown>): SpanBase {
    const annotations = this.annotations
    if (annotations.length === 0) return span
    span.reset()
    for (let i = 0; i < annotations.length; i++) span.attribute(annotations[i]![0], annotations[i]![1])
    for (const k in attributes) span.attribute(k, attributes[k])
    return span
  }
}

/** What a step's span made by `makeStep` asks for its parent: its run, for the span of that visit of its state. */
export interface ParentSource {
  /** the execution's id */
  readonly id: string
  readonly parentOf: (visit: number, state: string) => Tracer.AnySpan | undefined
}

const bigint0 = BigInt(0)
const millionth = BigInt(1_000_000)

/**
 * `effect(span)` in a span named `name`, a child of the current span, like
 * `Effect.withSpan` without a stack trace; the span is not made the parent of what
 * `effect` runs, but is given to it (to add attributes, or to link work it causes), or
 * undefined when tracing is off.
 */
export const around = <A, E, R>(
  enabled: boolean,
  name: string,
  attributes: Record<string, unknown>,
  effect: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
) =>
  Effect.withFiberRuntime<A, E, R>((fiber) => {
    const spans = make(fiber, enabled)
    if (!spans.enabled) return effect(undefined)
    const span = spans.make(name, fiber.currentSpan, attributes)
    return Effect.onExit(effect(span), (exit) => Effect.sync(() => span.end(spans.now(), exit)))
  })

/**
 * `effect` in a span of `spans` named `name`, a child of `parent`, that is the parent of
 * what `effect` runs (`Effect.withSpan` with a parent, without a stack trace).
 */
export const within = <A, E, R>(
  spans: Spans,
  name: string,
  parent: Tracer.AnySpan | undefined,
  attributes: Record<string, unknown>,
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  if (!spans.enabled) return effect
  return Effect.suspend(() => {
    const span = spans.make(name, parent, attributes)
    return Effect.onExit(Effect.withParentSpan(effect, span), (exit) => Effect.sync(() => span.end(spans.now(), exit)))
  })
}

/** Effect's default tracer, which records spans in memory and exports nothing. */
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * A span maker with the tracer, clock, annotations and links `fiber` has now; with
 * `enabled` false (the runtime's `tracing: false`) its spans record nothing.
 */
export const make = (fiber: Fiber.RuntimeFiber<unknown, unknown>, enabled = true, fast = false): Spans => {
  const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
  if (!enabled || !fiber.getFiberRef(FiberRef.currentTracerEnabled)) return new Spans(clock, false, fast)
  return new Spans(
    clock,
    true,
    fast,
    fiber.currentTracer,
    fiber.getFiberRef(FiberRef.currentTracerTimingEnabled),
    spanAnnotations(fiber),
    Chunk.toReadonlyArray(fiber.getFiberRef(FiberRef.currentTracerSpanLinks))
  )
}

const noAnnotations: ReadonlyArray<readonly [string, unknown]> = []

const spanAnnotations = (fiber: Fiber.RuntimeFiber<unknown, unknown>) => {
  const annotations = fiber.getFiberRef(FiberRef.currentTracerSpanAnnotations)
  return HashMap.size(annotations) === 0 ? noAnnotations : [...annotations]
}

let lastSpanId = 0

const noLinks: ReadonlyArray<Tracer.SpanLink> = Object.freeze([])

/**
 * What Effect's native tracer would make (its `NativeSpan`), for less: with no tracer
 * installed a span is only ever read in this process (`Effect.currentSpan`, a parent), so
 * its ids come from a counter instead of 48 calls to `Math.random`, and what is rarely
 * read (its ids as strings, its status, its attributes as a Map, its parent as an Option)
 * is made when read. Made twice per transition, `NativeSpan` was about 5% of the
 * in-memory W1 profile (bench/profile.ts); an execution half-way through a step keeps
 * two (the start's and the step's; the execution's and the state's are made when read).
 * The parts its two kinds share: `LocalSpan` (any span) and `StepSpan` (a step's attempt).
 */
abstract class SpanBase implements Tracer.Span {
  private readonly id: number
  private readonly startTime: bigint
  /** set when it ends (two fields, not a record: an ended span is kept as its children's parent) */
  private endTime: bigint | undefined = undefined
  private exit: Exit.Exit<unknown, unknown> | undefined = undefined
  /** undefined until first read or written when the span's kind can make them (`initialAttributes`) */
  protected attrs: Record<string, unknown> | undefined
  private eventList: Array<[name: string, startTime: bigint, attributes: Record<string, unknown>]> | undefined = undefined
  links: ReadonlyArray<Tracer.SpanLink>
  /** `attributes` is kept as it is given (a fresh object), not copied */
  constructor(links: ReadonlyArray<Tracer.SpanLink>, startTime: bigint, attributes: Record<string, unknown> | undefined) {
    this.id = ++lastSpanId
    this.startTime = startTime
    this.links = links.length === 0 ? noLinks : [...links]
    this.attrs = attributes
  }
  abstract readonly name: string
  protected abstract parentNow(): Tracer.AnySpan | undefined
  /** the attributes of a span made without them (`attrs` undefined) */
  initialAttributes(): Record<string, unknown> {
    return {}
  }
  get _tag(): "Span" {
    return "Span"
  }
  get sampled() {
    return true
  }
  get kind(): Tracer.SpanKind {
    return "internal"
  }
  get context() {
    return Context.empty()
  }
  get spanId() {
    return this.id.toString(16).padStart(16, "0")
  }
  get traceId(): string {
    const parent = this.parentNow()
    return parent !== undefined ? parent.traceId : this.spanId.padStart(32, "0")
  }
  get parent() {
    return Option.fromNullable(this.parentNow())
  }
  get status(): Tracer.SpanStatus {
    return this.endTime === undefined
      ? { _tag: "Started", startTime: this.startTime }
      : { _tag: "Ended", startTime: this.startTime, endTime: this.endTime, exit: this.exit! }
  }
  get attributes(): ReadonlyMap<string, unknown> {
    return new Map(Object.entries(this.attrs ??= this.initialAttributes()))
  }
  get events(): ReadonlyArray<[name: string, startTime: bigint, attributes: Record<string, unknown>]> {
    return this.eventList ?? []
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.endTime = endTime
    // a success is kept without its value: an ended span can be kept long (the start's is
    // its execution's parent for as long as the execution runs), and the value with it
    this.exit = Exit.isSuccess(exit) ? Exit.void : exit
  }
  /** its attributes start empty (`Spans.annotated` sets them in order) */
  reset() {
    this.attrs = {}
  }
  attribute(key: string, value: unknown): void {
    const attrs = this.attrs ??= this.initialAttributes()
    // a plain object: `__proto__` must not set its prototype (defining each key costs ~10×
    // an assignment, and a span of a run gets attributes after it is made)
    if (key === "__proto__") Object.defineProperty(attrs, key, { value, writable: true, enumerable: true, configurable: true })
    else attrs[key] = value
  }
  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    ;(this.eventList ??= []).push([name, startTime, attributes ?? {}])
  }
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links = [...this.links, ...links]
  }
}

/** A span of Proctor's under Effect's own tracer, with its parent and attributes as they are given. */
class LocalSpan extends SpanBase {
  constructor(readonly name: string, private readonly parentSpan: Tracer.AnySpan | undefined, links: ReadonlyArray<Tracer.SpanLink>, startTime: bigint, attributes: Record<string, unknown> = {}) {
    super(links, startTime, attributes)
  }
  protected parentNow(): Tracer.AnySpan | undefined {
    return this.parentSpan
  }
}

/**
 * A step attempt's span under Effect's own tracer (`Spans.lazy`): its run makes its parent
 * when it is first read, and its attributes (the execution, the state, the attempt) are
 * made when first read, from its fields.
 */
class StepSpan extends SpanBase {
  constructor(
    private readonly source: ParentSource,
    private readonly visit: number,
    private readonly state: string,
    private readonly attempt: number,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint
  ) {
    super(links, startTime, undefined)
  }
  get name() {
    return "proctor.step"
  }
  override initialAttributes(): Record<string, unknown> {
    return { "proctor.execution.id": this.source.id, "proctor.state.name": this.state, "proctor.step.attempt": this.attempt }
  }
  protected parentNow(): Tracer.AnySpan | undefined {
    return this.source.parentOf(this.visit, this.state)
  }
}

/**
 * Tracing is off (`tracing: false`, or `Effect.withTracerEnabled(false)`): one span that
 * records nothing, shared, so that a run makes no object (and no closures) per span.
 * It is never made a parent (`setParentAndAnnotations` skips it).
 */
const nothing = () => {}
const noopSpan: Tracer.Span = {
  _tag: "Span",
  name: "noop",
  spanId: "noop",
  traceId: "noop",
  parent: Option.none(),
  context: Context.empty(),
  status: { _tag: "Started", startTime: bigint0 },
  attributes: new Map(),
  links: [],
  sampled: false,
  kind: "internal",
  end: nothing,
  attribute: nothing,
  event: nothing,
  addLinks: nothing
}

/**
 * Sets the parent span (unless tracing is off) and the log annotations of the fiber's
 * code from now on, then runs `next`. A run sets them on its own fiber (dedicated to the
 * execution) for each step attempt instead of scoping them around the attempt
 * (`Effect.withParentSpan`, `Effect.annotateLogs`): nothing has to be restored after it,
 * and the next attempt sets them again. Call it from the fiber itself (in
 * `Effect.withFiberRuntime`).
 *
 * With `spans.fast` (the fiber internals passed `checkInternals`) both are set in one copy
 * of the fiber's FiberRefs, synchronously; otherwise with two `FiberRef.set`, each of
 * which copies them and compares the old and new values structurally: about 8 µs more
 * per transition of a 10-step execution (bench/costs.ts, docs/benchmarks.md).
 */
export const setParentAndAnnotations = <A, E, R>(
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  spans: Spans,
  /** undefined: the log annotations only */
  span: Tracer.Span | undefined,
  annotations: HashMap.HashMap<string, unknown>,
  next: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  if (spans.fast) {
    setFast(fiber, spans.enabled ? span : undefined, annotations)
    return next
  }
  const annotate = FiberRef.set(FiberRef.currentLogAnnotations, annotations)
  return Effect.zipRight(
    spans.enabled && span !== undefined
      ? Effect.zipRight(FiberRef.update(FiberRef.currentContext, (context) => Context.add(context, Tracer.ParentSpan, span)), annotate)
      : annotate,
    next
  )
}

/**
 * The fiber's FiberRefs as they are now, to be put back with `restoreRefs` (with
 * `spans.fast` only; otherwise undefined). After each step attempt a run puts back those
 * a run fiber starts with (taken once per runtime, shared by all runs), so that the
 * attempt's span, log annotations and the copies `setFast` made for them are garbage
 * before the run waits for its commit, instead of living (and being promoted by the GC)
 * until the next attempt replaces them; and no run keeps a copy of its own.
 */
export const currentRefs = (fiber: Fiber.RuntimeFiber<unknown, unknown>, spans: Spans): FiberRefs.FiberRefs | undefined =>
  spans.fast ? (fiber as unknown as FiberInternals)._fiberRefs : undefined

/** Puts back FiberRefs taken by `currentRefs`. */
export const restoreRefs = (fiber: Fiber.RuntimeFiber<unknown, unknown>, refs: FiberRefs.FiberRefs | undefined) => {
  if (refs !== undefined) (fiber as unknown as FiberInternals).setFiberRefs!(refs)
}

/**
 * What `checkInternals` found: the fiber internals `setFast` uses behave as it expects
 * (`Fast`), or not, and then spans and log annotations are set with the public API.
 */
export type Internals = { readonly _tag: "Fast" } | { readonly _tag: "Public"; readonly reason: string }

/** The members of Effect 3's `FiberRuntime` that `setFast` uses, which its public types do not show. */
interface FiberInternals {
  readonly _fiberRefs?: FiberRefs.FiberRefs
  readonly setFiberRefs?: (refs: FiberRefs.FiberRefs) => void
}

/**
 * Checks once, when a runtime is built, that Effect's fibers still have the internals
 * `setFast` uses and that setting them has the effect the public API would have: the
 * fiber's current span and log annotations change, for its own code and for the fibers it
 * forks. It runs in a fiber of its own, awaited and then dropped. An upgrade of Effect
 * that changes them makes runs slower, not broken (test/Tracing.test.ts says which
 * check failed).
 */
export const checkInternals: Effect.Effect<Internals> = Effect.flatMap(
  Effect.fork(Effect.withFiberRuntime<Internals>((fiber) => {
    const internals = fiber as unknown as FiberInternals
    const publicApi = (reason: string): Effect.Effect<Internals> => Effect.succeed({ _tag: "Public", reason })
    if (typeof internals.setFiberRefs !== "function") return publicApi("a fiber has no setFiberRefs method")
    if (!(internals._fiberRefs?.locals instanceof Map)) return publicApi("a fiber has no _fiberRefs with a locals Map")
    const span = new LocalSpan("proctor.check", undefined, [], bigint0)
    const annotations = HashMap.make(["proctor.check", true])
    try {
      setFast(fiber, span, annotations)
    } catch (error) {
      return publicApi(`setting a fiber's FiberRefs threw: ${String(error)}`)
    }
    if (fiber.currentSpan !== span) return publicApi("the span set is not the fiber's currentSpan")
    const seen = Effect.all([Effect.currentSpan, FiberRef.get(FiberRef.currentLogAnnotations)])
    return Effect.map(
      Effect.all([seen, Effect.flatMap(Effect.fork(seen), Fiber.join)]),
      ([own, forked]): Internals =>
        own[0] !== span || own[1] !== annotations
          ? { _tag: "Public", reason: "Effect.currentSpan or the log annotations do not see what was set" }
          : forked[0] !== span || forked[1] !== annotations
          ? { _tag: "Public", reason: "a forked fiber does not inherit what was set" }
          : { _tag: "Fast" }
    ).pipe(Effect.catchAllCause((cause) => publicApi(`reading them back failed: ${Cause.pretty(cause)}`)))
  })),
  Fiber.await
).pipe(Effect.map((exit) => Exit.isSuccess(exit) ? exit.value : { _tag: "Public", reason: `the check died: ${Cause.pretty(exit.cause)}` }))

type Stack = ReadonlyArray<readonly [FiberId.Single, unknown]>

/**
 * The stack with `value` on top for `id`, in an array of its exact length: a spread
 * (`[x, ...stack]`) leaves room for 16 more elements (136 B), kept for as long as the
 * FiberRefs are, in each of the two stacks a run sets per attempt.
 */
const push = (stack: Stack | undefined, id: FiberId.Single, value: unknown): [readonly [FiberId.Single, unknown], ...Stack] => {
  const top: readonly [FiberId.Single, unknown] = [id, value]
  if (stack === undefined || stack.length === 0) return [top]
  // by reference: a fiber's id is one object, and `Equal.equals` would hash both ids (and
  // keep a hash closure on each fiber's) when the top is another fiber's (the shared
  // FiberRefs runs start from)
  const from = stack[0]![0] === id ? 1 : 0
  const out = new Array<readonly [FiberId.Single, unknown]>(stack.length + 1 - from)
  out[0] = top
  for (let i = from; i < stack.length; i++) out[i + 1 - from] = stack[i]!
  return out as [readonly [FiberId.Single, unknown], ...Stack]
}

/**
 * Sets the parent span (when given) and the log annotations in one copy of the fiber's
 * FiberRefs, through its own `setFiberRefs` (on every `FiberRuntime` of Effect 3, though
 * not on the `RuntimeFiber` type): `Effect.setFiberRefs` sets each FiberRef one by one,
 * which cost a third of the throughput here. It reads `_fiberRefs` as they are:
 * `getFiberRefs()` first stores the fiber's runtime flags into them, a second copy of the
 * whole map whenever the flags changed since (a resumed fiber: 5% of the time of a
 * durable run); the flags stored there are refreshed on every `getFiberRefs()`, so a
 * copy that keeps the old ones loses nothing.
 */
const setFast = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  span: Tracer.Span | undefined,
  annotations: HashMap.HashMap<string, unknown>
) => {
  const internals = fiber as unknown as FiberInternals
  const id = fiber.id()
  // copied entry by entry: `new Map(map)` goes through the iterator and allocates an
  // [key, value] array per FiberRef: with `setFiberRefs` below, a tenth of what a resumed
  // run allocated (W4: 100k recovered allocated 1.98 GB before, 1.86 GB after)
  const from = (internals._fiberRefs ?? fiber.getFiberRefs()).locals
  const locals: typeof from = new Map()
  from.forEach((stack, ref) => locals.set(ref, stack))
  if (span !== undefined) {
    // copied entry by entry too: `Context.add` copies through the iterator (`new Map(map)`), an
    // [key, value] array per service, about 0.5 KB of garbage per step attempt in the bench's W1
    const services = new Map<string, unknown>()
    fiber.currentContext.unsafeMap.forEach((service, key) => services.set(key, service))
    services.set(Tracer.ParentSpan.key, span)
    locals.set(FiberRef.currentContext, push(locals.get(FiberRef.currentContext), id, Context.unsafeMake(services)))
  }
  locals.set(FiberRef.currentLogAnnotations, push(locals.get(FiberRef.currentLogAnnotations), id, annotations))
  internals.setFiberRefs!(FiberRefs.unsafeMake(locals))
}
