/**
 * An in-memory SCXML session: one parsed document run by the pure algorithm, with the
 * ECMAScript data model, the internal and external event queues, `<invoke>`d child
 * sessions, and a VIRTUAL clock for delayed `<send>`s (time moves only when the caller
 * calls `advance`, so tests are deterministic and never sleep). This is the conformance
 * harness's interpreter and the reference for how the durable runtime will drive plans.
 */
import { Data } from "effect"
import type { MacrostepHost, PlanStep, Snapshot } from "./algorithm.js"
import { atomicStates, emptySnapshot, macrostep, planExit, planStart, runPlan, selectTransitions } from "./algorithm.js"
import { EcmaDataModel, type Host, makeEvent, type ScxmlEvent, scxmlProcessor } from "./ecmascript.js"
import { type Chart, makeChart } from "./model.js"
import type { Block, DataDeclaration, Expr, Invoke, ScxmlDocument } from "./scxml.js"
import { parseScxml } from "./scxml.js"

export interface SessionOptions {
  readonly sessionId?: string
  /** Microsteps plus internal events in one macrostep before `MacrostepLimitError`. @default 10_000 */
  readonly maxMicrosteps?: number
  /** External events handled in one `send`/`advance` call before `EventLimitError`. @default 10_000 */
  readonly maxEvents?: number
  /** Invoked sessions nested in each other before an invoke fails with `error.execution`. @default 10 */
  readonly maxInvokeDepth?: number
  readonly log?: (label: string | undefined, value: unknown) => void
  /** Loads the text of an `<invoke src>` (the parser has its own `load` for `<script src>` and `<data src>`). */
  readonly load?: (src: string) => string | undefined
  /** The virtual clock's time at start, in milliseconds (the durable runtime starts it at the wall clock). @default 0 */
  readonly startAt?: number
}

/**
 * What a session without invoked children is between two calls, as plain values: what the
 * durable runtime stores to run the same session again later (see `save` and `restore`).
 */
export interface SessionState {
  readonly snapshot: Snapshot
  readonly halted: boolean
  readonly data: Readonly<Record<string, unknown>>
  /** Send ids generated so far (`send.<sessionid>.<n>`). */
  readonly sends: number
  /** States whose late-bound `<data>` is initialised. */
  readonly bound: ReadonlyArray<string>
  readonly now: number
  readonly seq: number
  /** The events this session sent itself that are still to come, with their due time. */
  readonly queue: ReadonlyArray<{ readonly event: ScxmlEvent; readonly due: number; readonly seq: number; readonly id: string }>
}

/** Delayed or self-sent events kept coming back past `maxEvents` in one call: a `<send>` loop. */
export class EventLimitError extends Data.TaggedError("EventLimitError")<{ readonly maxEvents: number }> {
  override get message(): string {
    return `The statechart handled more than ${this.maxEvents} external events in one call: a <send> keeps sending itself events. ` +
      `Add a guard that ends the loop, or raise maxEvents.`
  }
}

interface Queued {
  readonly to: ScxmlSession
  readonly from: ScxmlSession
  readonly event: ScxmlEvent
  readonly due: number
  readonly seq: number
  readonly id: string
}

/** The clock and the external queues of a session and the sessions it invoked. */
class Scheduler {
  now = 0
  seq = 0
  queue: Array<Queued> = []
  readonly sessions = new Map<string, ScxmlSession>()
}

interface Invocation {
  readonly child: ScxmlSession
  readonly invoke: Invoke
  readonly state: string
}

const scxmlTypes = new Set(["http://www.w3.org/TR/scxml/", "http://www.w3.org/TR/scxml", "scxml", scxmlProcessor])

export class ScxmlSession {
  readonly chart: Chart<Block, Expr>
  snapshot: Snapshot = emptySnapshot
  halted = false
  readonly sessionId: string
  private readonly dm: EcmaDataModel
  private readonly internal: Array<ScxmlEvent> = []
  private readonly live = new Set<string>()
  private readonly initialised = new Set<string>()
  private readonly toInvoke = new Set<string>()
  private readonly invocations = new Map<string, Invocation>()
  private readonly host: MacrostepHost<Block, Expr>
  private readonly scheduler: Scheduler
  private cancelled = false

  constructor(
    readonly document: ScxmlDocument,
    private readonly options: SessionOptions = {},
    private readonly parent?: { readonly session: ScxmlSession; readonly invokeid: string; readonly depth: number; readonly data: Record<string, unknown> }
  ) {
    this.chart = makeChart(document.chart)
    this.scheduler = parent?.session.scheduler ?? new Scheduler()
    if (parent === undefined) this.scheduler.now = options.startAt ?? 0
    this.sessionId = parent === undefined ? options.sessionId ?? "session" : `${parent.session.sessionId}.${parent.invokeid}`
    this.scheduler.sessions.set(this.sessionId, this)
    const contentHost: Host = {
      sessionId: this.sessionId,
      raise: (event) => this.internal.push(event),
      send: (event, delay, id, target) => this.route(event, delay, id, target),
      cancel: (id) => {
        this.scheduler.queue = this.scheduler.queue.filter((q) => q.id !== id || q.from !== this)
      },
      isActive: (state) => this.live.has(state),
      log: options.log ?? (() => {})
    }
    this.dm = new EcmaDataModel(contentHost, document.name)
    this.host = {
      cond: (t) => this.dm.cond(t.cond!),
      execute: (step) => this.execute(step),
      nextInternal: () => {
        const event = this.internal.shift()
        if (event === undefined) return undefined
        this.dm.event = event
        return event.name
      }
    }
  }

  /** Virtual time in milliseconds since `start`. */
  get now(): number {
    return this.scheduler.now
  }

  /** The data model's variables (read them in tests; the session owns them). */
  get data(): Readonly<Record<string, unknown>> {
    return this.dm.data
  }

  /** The active atomic states, in document order. */
  get atomic(): ReadonlyArray<string> {
    return atomicStates(this.chart, this.snapshot)
  }

  /**
   * Initialises the data model, runs top-level scripts, enters the initial configuration and
   * completes that macrostep. `values` replace the expressions of the top-level `<data>` of
   * the same id (as an invoke's params do), and declare the others.
   */
  start(values: Readonly<Record<string, unknown>> = {}): void {
    const late = this.document.binding === "late"
    const given = this.parent?.data ?? values
    for (const [id, value] of Object.entries(values)) {
      if (!this.document.data.some((d) => d.id === id && d.state === undefined)) this.dm.declare(id, value)
    }
    for (const data of this.document.data) {
      if (data.state === undefined && Object.hasOwn(given, data.id)) {
        this.dm.declare(data.id, given[data.id])
      } else if (!late || data.state === undefined) this.initialise(data)
      else this.dm.declare(data.id, undefined)
    }
    for (const script of this.document.scripts) this.dm.run(script)
    const plan = planStart(this.chart)
    this.snapshot = runPlan(plan, this.host)
    this.halted = plan.halted
    this.complete()
  }

  /** Evaluates an expression in the data model (the durable runtime revives stored functions with it). */
  evaluate(expr: Expr): unknown {
    return this.dm.evaluate(expr)
  }

  /** What the session is between two calls; only for a session that invokes nothing. */
  save(): SessionState {
    if (this.invocations.size > 0) throw new Error("a session with invoked children cannot be saved")
    const s = this.scheduler
    return {
      snapshot: this.snapshot,
      halted: this.halted,
      data: { ...this.dm.data },
      sends: this.dm.sends,
      bound: [...this.initialised],
      now: s.now,
      seq: s.seq,
      queue: s.queue.filter((q) => q.to === this).map((q) => ({ event: q.event, due: q.due, seq: q.seq, id: q.id }))
    }
  }

  /** Puts a new session where `save` left another one (instead of `start`). */
  restore(state: SessionState): void {
    this.snapshot = state.snapshot
    this.halted = state.halted
    for (const [id, value] of Object.entries(state.data)) this.dm.declare(id, value)
    this.dm.sends = state.sends
    for (const id of state.bound) this.initialised.add(id)
    for (const id of state.snapshot.configuration) this.live.add(id)
    const s = this.scheduler
    s.now = state.now
    s.seq = state.seq
    s.queue = state.queue.map((q) => ({ ...q, to: this, from: this }))
  }

  /**
   * Handles an external event at once. Events the chart sent itself stay queued until the
   * clock moves, even those with no delay: like a 0 ms timer, they arrive after this call.
   */
  send(name: string, data?: unknown): void {
    if (!this.halted) this.external(makeEvent(name, "external", { data }))
  }

  /** Moves the virtual clock forward, delivering queued events at their due time, in order. */
  advance(ms: number): void {
    const s = this.scheduler
    const until = s.now + ms
    const maxEvents = this.options.maxEvents ?? 10_000
    let handled = 0
    while (true) {
      let next: Queued | undefined
      for (const q of s.queue) {
        if (q.due <= until && (next === undefined || q.due < next.due || (q.due === next.due && q.seq < next.seq))) next = q
      }
      if (next === undefined) break
      if (++handled > maxEvents) throw new EventLimitError({ maxEvents })
      s.queue = s.queue.filter((q) => q !== next)
      s.now = Math.max(s.now, next.due)
      if (!next.to.halted && !next.to.cancelled && !next.from.cancelled) next.to.external(next.event)
    }
    s.now = Math.max(s.now, until)
  }

  private enqueue(to: ScxmlSession, event: ScxmlEvent, delay = 0, id = "") {
    const s = this.scheduler
    s.queue.push({ to, from: this, event, due: s.now + delay, seq: s.seq++, id })
  }

  /** Where a `<send>` goes: this session, its parent, an invoked child, or a session by its id. */
  private route(event: ScxmlEvent, delay: number, id: string, target: string | undefined): boolean {
    const to = target === undefined
      ? this
      : target === "#_parent"
      ? this.parent?.session
      : target.startsWith("#_scxml_")
      ? this.scheduler.sessions.get(target.slice("#_scxml_".length))
      : target.startsWith("#_")
      ? this.invocations.get(target.slice(2))?.child
      : undefined
    if (to === undefined) return false
    this.enqueue(to, to === this.parent?.session ? { ...event, invokeid: this.parent.invokeid } : event, delay, id)
    return true
  }

  private external(event: ScxmlEvent) {
    const from = event.invokeid === undefined ? undefined : this.invocations.get(event.invokeid)
    if (from?.invoke.finalize !== undefined) {
      this.dm.event = event
      this.dm.run(from.invoke.finalize)
    }
    for (const { child, invoke } of this.invocations.values()) {
      if (invoke.autoforward && !child.halted) this.enqueue(child, event)
    }
    this.dm.event = event
    // a macrostep starts with the event's microstep, then runs eventless transitions and internal events
    const enabled = selectTransitions(this.chart, this.snapshot, event.name, this.host.cond)
    this.settle(enabled)
  }

  private complete() {
    this.settle([])
  }

  /** Runs a macrostep, then starts the invokes of the states it entered; again while that raised events. */
  private settle(first: Parameters<typeof macrostep<Block, Expr>>[4]) {
    const max = this.options.maxMicrosteps ?? 10_000
    let result = macrostep(this.chart, { snapshot: this.snapshot, halted: this.halted }, this.host, max, first)
    this.snapshot = result.snapshot
    this.halted = result.halted
    while (!this.halted && this.toInvoke.size > 0) {
      const states = [...this.toInvoke].sort((a, b) => this.chart.byId.get(a)! - this.chart.byId.get(b)!)
      this.toInvoke.clear()
      for (const state of states) for (const invoke of this.document.invokes.get(state) ?? []) this.invoke(state, invoke)
      result = macrostep(this.chart, { snapshot: this.snapshot, halted: this.halted }, this.host, max)
      this.snapshot = result.snapshot
      this.halted = result.halted
    }
    if (this.halted) this.finish()
  }

  /** The session ended: leave every state (their onexit content runs), cancel its children and its delayed sends. */
  private finish() {
    // the snapshot keeps the final configuration: it is what the session ended in
    for (const step of planExit(this.chart, this.snapshot)) this.execute(step)
    this.scheduler.queue = this.scheduler.queue.filter((q) => q.from !== this || q.due <= this.scheduler.now)
    const parent = this.parent
    if (parent === undefined || this.cancelled) return
    // done.invoke carries the <donedata> of the top-level final state the session ended in
    const final = this.snapshot.configuration.find((id) => this.chart.states[this.chart.byId.get(id)!]!.parent === 0)
    const doneData = final === undefined ? undefined : this.document.doneData.get(final)
    let data: unknown
    try {
      data = doneData === undefined ? undefined : this.dm.eventData([], doneData.params, doneData.content)
    } catch {
      data = undefined
    }
    this.enqueue(parent.session, makeEvent(`done.invoke.${parent.invokeid}`, "external", { invokeid: parent.invokeid, data }))
  }

  private invoke(state: string, invoke: Invoke) {
    let invokeid = invoke.id
    try {
      const type = invoke.type ?? (invoke.typeexpr !== undefined ? String(this.dm.evaluate(invoke.typeexpr)) : "scxml")
      if (!scxmlTypes.has(type)) throw new Error(`the invoke type "${type}" is not supported (only SCXML sessions)`)
      if (invokeid === undefined) {
        invokeid = `${state}.${this.scheduler.seq++}`
        if (invoke.idlocation !== undefined) this.dm.assign(invoke.idlocation, invokeid)
      }
      const depth = (this.parent?.depth ?? 0) + 1
      if (depth > (this.options.maxInvokeDepth ?? 10)) throw new Error(`invoked sessions nest more than ${this.options.maxInvokeDepth ?? 10} deep`)
      const document = this.childDocument(invoke)
      const data = this.dm.eventData(invoke.namelist, invoke.params, undefined) as Record<string, unknown> | undefined
      const child = new ScxmlSession(document, this.options, { session: this, invokeid, depth, data: data ?? {} })
      this.invocations.set(invokeid, { child, invoke, state })
      child.start()
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      this.internal.push(makeEvent("error.execution", "platform", { invokeid, data: { tagname: "invoke", line: invoke.line, column: invoke.column, reason } }))
    }
  }

  private childDocument(invoke: Invoke): ScxmlDocument {
    if (invoke.content !== undefined) {
      return "document" in invoke.content ? invoke.content.document : parseScxml(String(this.dm.evaluate(invoke.content.expr)), this.options)
    }
    const src = invoke.src ?? (invoke.srcexpr !== undefined ? String(this.dm.evaluate(invoke.srcexpr)) : undefined)
    if (src === undefined) throw new Error("an <invoke> needs src, srcexpr or <content>")
    const text = this.options.load?.(src)
    if (text === undefined) throw new Error(`cannot load the invoked document "${src}"`)
    return parseScxml(text, this.options)
  }

  private cancelInvocation(invokeid: string) {
    const invocation = this.invocations.get(invokeid)
    if (invocation === undefined) return
    this.invocations.delete(invokeid)
    // a child that already ended is not cancelled: its last events (done.invoke) still arrive
    if (!invocation.child.halted) invocation.child.cancel()
  }

  private cancel() {
    this.cancelled = true
    for (const id of [...this.invocations.keys()]) this.cancelInvocation(id)
    this.scheduler.queue = this.scheduler.queue.filter((q) => q.to !== this && q.from !== this)
    this.scheduler.sessions.delete(this.sessionId)
  }

  private execute(step: PlanStep<Block>) {
    switch (step.kind) {
      case "exited":
        this.live.delete(step.state)
        this.toInvoke.delete(step.state)
        for (const [id, invocation] of [...this.invocations]) if (invocation.state === step.state) this.cancelInvocation(id)
        return
      case "entered":
        this.live.add(step.state)
        this.toInvoke.add(step.state)
        if (this.document.binding === "late" && !this.initialised.has(step.state)) {
          this.initialised.add(step.state)
          for (const data of this.document.data) if (data.state === step.state) this.initialise(data)
        }
        return
      case "done":
        return this.done(step.state, step.final)
      default:
        return this.dm.run(step.action)
    }
  }

  private done(state: string, final: string) {
    const doneData = this.document.doneData.get(final)
    let data: unknown
    if (doneData !== undefined && this.chart.states[this.chart.byId.get(final)!]!.parent === this.chart.byId.get(state)) {
      try {
        data = this.dm.eventData([], doneData.params, doneData.content)
      } catch (error) {
        this.error("donedata", error)
      }
    }
    this.internal.push(makeEvent(`done.state.${state}`, "internal", { data }))
  }

  private initialise(data: DataDeclaration) {
    try {
      const value = data.expr !== undefined
        ? this.dm.evaluate(data.expr)
        : data.text !== undefined
        ? this.dm.content({ text: data.text })
        : undefined
      this.dm.declare(data.id, value)
    } catch (error) {
      this.dm.declare(data.id, undefined)
      this.error("data", error)
    }
  }

  private error(tagname: string, error: unknown) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    this.internal.push(makeEvent("error.execution", "platform", { data: { tagname, line: 0, column: 0, reason } }))
  }
}
