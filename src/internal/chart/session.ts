/**
 * An in-memory SCXML session: one parsed document run by the pure algorithm, with the
 * ECMAScript data model, the internal and external event queues and a VIRTUAL clock for
 * delayed `<send>`s (time moves only when the caller calls `advance`, so tests are
 * deterministic and never sleep). This is the conformance harness's interpreter and the
 * reference for how the durable runtime will drive the same plans.
 */
import { Data } from "effect"
import type { MacrostepHost, PlanStep, Snapshot } from "./algorithm.js"
import { atomicStates, emptySnapshot, macrostep, planStart, runPlan, selectTransitions } from "./algorithm.js"
import { EcmaDataModel, type Host, makeEvent, type ScxmlEvent } from "./ecmascript.js"
import { type Chart, makeChart } from "./model.js"
import type { Block, DataDeclaration, Expr, ScxmlDocument } from "./scxml.js"

export interface SessionOptions {
  readonly sessionId?: string
  /** Microsteps plus internal events in one macrostep before `MacrostepLimitError`. @default 10_000 */
  readonly maxMicrosteps?: number
  /** External events handled in one `send`/`advance` call before `EventLimitError`. @default 10_000 */
  readonly maxEvents?: number
  readonly log?: (label: string | undefined, value: unknown) => void
}

/** Delayed or self-sent events kept coming back past `maxEvents` in one call: a `<send>` loop. */
export class EventLimitError extends Data.TaggedError("EventLimitError")<{ readonly maxEvents: number }> {
  override get message(): string {
    return `The statechart handled more than ${this.maxEvents} external events in one call: a <send> keeps sending itself events. ` +
      `Add a guard that ends the loop, or raise maxEvents.`
  }
}

interface Pending {
  readonly event: ScxmlEvent
  readonly due: number
  readonly seq: number
  readonly id: string
}

export class ScxmlSession {
  readonly chart: Chart<Block, Expr>
  snapshot: Snapshot = emptySnapshot
  halted = false
  /** Virtual time in milliseconds since `start`. */
  now = 0
  private readonly dm: EcmaDataModel
  private readonly internal: Array<ScxmlEvent> = []
  private pending: Array<Pending> = []
  private seq = 0
  private readonly live = new Set<string>()
  private readonly initialised = new Set<string>()
  private readonly host: MacrostepHost<Block, Expr>
  private readonly maxMicrosteps: number
  private readonly maxEvents: number

  constructor(readonly document: ScxmlDocument, options: SessionOptions = {}) {
    this.chart = makeChart(document.chart)
    this.maxMicrosteps = options.maxMicrosteps ?? 10_000
    this.maxEvents = options.maxEvents ?? 10_000
    const log = options.log ?? (() => {})
    const contentHost: Host = {
      sessionId: options.sessionId ?? "session",
      raise: (event) => this.internal.push(event),
      send: (event, delay, id) => this.pending.push({ event, due: this.now + delay, seq: this.seq++, id }),
      cancel: (id) => {
        this.pending = this.pending.filter((p) => p.id !== id)
      },
      isActive: (state) => this.live.has(state),
      log
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

  /** The data model's variables (read them in tests; the session owns them). */
  get data(): Readonly<Record<string, unknown>> {
    return this.dm.data
  }

  /** The active atomic states, in document order. */
  get atomic(): ReadonlyArray<string> {
    return atomicStates(this.chart, this.snapshot)
  }

  /** Initialises the data model, runs top-level scripts, enters the initial configuration and completes that macrostep. */
  start(): void {
    const late = this.document.binding === "late"
    for (const data of this.document.data) {
      if (!late || data.state === undefined) this.initialise(data)
      else this.dm.declare(data.id, undefined)
    }
    for (const script of this.document.scripts) this.dm.run(script)
    const plan = planStart(this.chart)
    this.snapshot = runPlan(plan, this.host)
    this.halted = plan.halted
    this.complete()
  }

  /**
   * Handles an external event at once. Events the chart sent itself stay queued until the
   * clock moves, even those with no delay: like a 0 ms timer, they arrive after this call.
   */
  send(name: string, data?: unknown): void {
    if (!this.halted) this.external(makeEvent(name, "external", { data }))
  }

  /** Moves the virtual clock forward, delivering the events the chart sent itself at their due time, in order. */
  advance(ms: number): void {
    this.drain(this.now + ms)
  }

  private drain(until: number) {
    let handled = 0
    while (!this.halted) {
      let next: Pending | undefined
      for (const p of this.pending) {
        if (p.due <= until && (next === undefined || p.due < next.due || (p.due === next.due && p.seq < next.seq))) next = p
      }
      if (next === undefined) break
      if (++handled > this.maxEvents) throw new EventLimitError({ maxEvents: this.maxEvents })
      this.pending = this.pending.filter((p) => p !== next)
      this.now = Math.max(this.now, next.due)
      this.external(next.event)
    }
    this.now = Math.max(this.now, until)
  }

  private external(event: ScxmlEvent) {
    this.dm.event = event
    // a macrostep starts with the event's microstep, then runs eventless transitions and internal events
    const enabled = selectTransitions(this.chart, this.snapshot, event.name, this.host.cond)
    const result = macrostep(this.chart, { snapshot: this.snapshot, halted: this.halted }, this.host, this.maxMicrosteps, enabled)
    this.snapshot = result.snapshot
    this.halted = result.halted
  }

  private complete() {
    const result = macrostep(this.chart, { snapshot: this.snapshot, halted: this.halted }, this.host, this.maxMicrosteps)
    this.snapshot = result.snapshot
    this.halted = result.halted
  }

  private execute(step: PlanStep<Block>) {
    switch (step.kind) {
      case "exited":
        this.live.delete(step.state)
        return
      case "entered":
        this.live.add(step.state)
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
