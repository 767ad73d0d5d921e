/**
 * What one run of an execution's actor is made of, and its spans: the base class of
 * `run.ts`'s `Run`. A run has its handle, its fiber, the execution once loaded, and the
 * spans of the execution (one per run, a child of the `start` or `send` that started it)
 * and of each visit of a state, made when the run starts and the state is entered, or,
 * under Effect's own tracer (`Spans.lazy`), only when a step's span first reads its
 * parents (`parentOf`). The loop, the steps and the commits are `run.ts`'s.
 */
import type { HashMap, Tracer } from "effect"
import { Effectable, Exit } from "effect"
import type { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import type { Cached, Handle, RunFiber } from "./handle.js"
import { runFiber } from "./handle.js"
import type { Env } from "./run.js"
import type * as Spans from "./spans.js"
import type { Compiled } from "./transition.js"

export abstract class RunSpans extends Effectable.Class<void, StoreError> implements Spans.ParentSource {
  /** the run's fiber, set when it is forked: once it is no longer the handle's, the run is stale (see `restartNow`) */
  self!: RunFiber
  /** the parent of the run's span: the span of the `start` or `send` that started it, or its fiber's */
  cause: Tracer.AnySpan | undefined = undefined
  /** when the run started (epoch millis), for its span when it is made late (`Spans.lazy`) */
  private startedAt = 0
  /** the run's span, once made (at the start, or when first read under `Spans.lazy`) */
  private runSpan: Tracer.Span | undefined = undefined
  /** set when the execution is loaded (`Run.begin`) */
  cached!: Cached
  /** the log annotations the run's fiber started with (the execution's id, procedure, state and attempt are added to them) */
  baseAnnotations!: HashMap.HashMap<string, unknown>
  /** the span of the current visit of a state, once made; ended when the execution leaves it (or this run ends) */
  private visitSpan: Tracer.Span | undefined = undefined

  constructor(readonly env: Env, readonly handle: Handle) {
    super()
  }

  // read from what the run already holds rather than kept in fields of its own: an
  // execution half-way through a step keeps its run (W1's heap pass, docs/benchmarks.md)
  get id(): string {
    return this.handle.id
  }

  /** the span maker of every run of the runtime, made by the first (`Env.spans`) */
  get spans(): Spans.Spans {
    return this.env.spans!
  }

  /** the definition the execution runs on, once loaded (a migration replaces `cached`) */
  get compiled(): Compiled {
    return this.cached.compiled
  }

  get def(): Procedure.Any {
    return this.cached.compiled.def
  }

  /** The supervisor forked this run. */
  forked(fiber: RunFiber) {
    this.self = fiber
  }

  get fiber(): RunFiber {
    return this.self
  }

  now() {
    return this.spans.clock.unsafeCurrentTimeMillis()
  }

  /** The run started in its fiber (`Env.start`): its span is made now, unless it can wait until read (`Spans.lazy`). */
  started(cause: Tracer.AnySpan | undefined, baseAnnotations: HashMap.HashMap<string, unknown>) {
    this.cause = cause
    this.baseAnnotations = baseAnnotations
    if (this.spans.lazy) this.startedAt = this.now()
    else this.runSpan = this.makeRunSpan()
  }

  private makeRunSpan(startedAt?: number) {
    const def = this.handle.cached?.compiled.def
    return this.spans.make(
      "proctor.execution",
      this.cause,
      def === undefined
        ? { "proctor.execution.id": this.id }
        : { "proctor.execution.id": this.id, "proctor.procedure.name": def.name, "proctor.procedure.version": def.version },
      startedAt
    )
  }

  /** The execution's span for this run (made now if it was not yet: `Spans.lazy`). */
  get executionSpan(): Tracer.Span {
    return this.runSpan ??= this.makeRunSpan(this.startedAt)
  }

  /** The span of the execution's current visit of a state (made now if it was not yet), unless it ended. */
  get stateSpan(): Tracer.Span | undefined {
    if (this.visitSpan !== undefined || !this.spans.lazy || this.cached === undefined) return this.visitSpan
    const s = this.cached.machine.snapshot
    return isTerminal(s.status) ? undefined : this.visitSpan = this.makeStateSpan(s.state, s.visit, s.enteredAt)
  }

  /** The parent of a step's span made by `Spans.makeStep`: its visit's span (one of its own if the visit is over). */
  parentOf(visit: number, state: string): Tracer.AnySpan | undefined {
    const s = this.cached.machine.snapshot
    if (s.visit === visit && runFiber(this.handle) === this.self) return this.stateSpan
    return this.makeStateSpan(state, visit, undefined)
  }

  private makeStateSpan(state: string, visit: number, enteredAt: number | undefined) {
    return this.spans.make("proctor.state", this.executionSpan, {
      "proctor.execution.id": this.id,
      "proctor.procedure.name": this.def.name,
      "proctor.state.name": state,
      "proctor.state.visit": visit
    }, enteredAt)
  }

  private endStateSpan(exit: Exit.Exit<unknown, unknown>) {
    this.visitSpan?.end(this.spans.now(), exit)
    this.visitSpan = undefined
  }

  /** A new visit of a state (or the end): the last visit's span ends, the new one's starts (or waits until read: `Spans.lazy`). */
  enterStateSpan(snapshot: Snapshot) {
    this.endStateSpan(Exit.void)
    if (isTerminal(snapshot.status) || this.spans.lazy) return
    this.visitSpan = this.makeStateSpan(snapshot.state, snapshot.visit, undefined)
  }

  /** The run ended: the state's span ends, and the run's, with the execution's status when it is loaded. */
  endSpans(exit: Exit.Exit<void, StoreError>) {
    if (this.cached !== undefined) {
      this.endStateSpan(exit)
      this.runSpan?.attribute("proctor.execution.status", this.cached.machine.snapshot.status)
    }
    if (this.runSpan !== undefined) this.runSpan.end(this.spans.now(), exit)
  }
}
