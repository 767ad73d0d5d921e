/**
 * `Procedure.fromSCXML`'s work: parses an SCXML document, refuses what the durable
 * runtime does not support (with a `DefinitionError` naming the element and its line), and
 * builds the parts of a procedure whose one chart state runs the whole chart
 * (`chartState.ts`), plus a final state per top-level `<final>`.
 */
import { Schema } from "effect"
import { DefinitionError } from "../Errors.js"
import type { Block, Executable, ScxmlDocument } from "./chart/scxml.js"
import { parseScxml, ScxmlError } from "./chart/scxml.js"
import type { StateDefinition } from "./chart/model.js"
import { ChartError, makeChart, rootId } from "./chart/model.js"
import { XmlError } from "./chart/xml.js"
import type { Chart } from "./chartState.js"
import { ChartContext, initialContext } from "./chartState.js"
import type { Final } from "./states.js"

/**
 * Options of `Procedure.fromSCXML`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FromSCXMLOptions<I = Readonly<Record<string, unknown>>> {
  /** The procedure's name. @default the document's `name` attribute (one of the two is needed) */
  readonly name?: string | undefined
  /** @default 1 */
  readonly version?: number | undefined
  readonly description?: string | undefined
  /** The Schema of `Runtime.start`'s input. @default a record of JSON values */
  readonly input?: Schema.Schema<I, any, never> | undefined
  /**
   * The data model's initial values from the input: each replaces the `expr` of the
   * top-level `<data>` of the same id, or declares a variable. @default the input itself
   */
  readonly init?: ((input: I) => Readonly<Record<string, unknown>>) | undefined
  /**
   * The outcome of each top-level `<final>`, by its id: `"failed"` ends the execution
   * `failed`, any other outcome ends it `succeeded`. @default "succeeded" for every final
   */
  readonly outcomes?: { readonly [finalId: string]: string } | undefined
  /** Reads the text of a `<script src>` or `<data src>`, once, in `fromSCXML`; without it such a document is refused. */
  readonly load?: ((src: string) => string | undefined) | undefined
  /** Where `<log>` goes (it may run again for an event whose commit a crash prevented). @default nowhere */
  readonly log?: ((label: string | undefined, value: unknown) => void) | undefined
  /** Microsteps plus internal events in one macrostep before the event is discarded with an error. @default 10000 */
  readonly maxMicrosteps?: number | undefined
  /** Delayed sends delivered in one go before the timer gives up on the earliest. @default 10000 */
  readonly maxEvents?: number | undefined
}

/**
 * The events of a procedure made from SCXML: the SCXML event name as `_tag` (any name:
 * dots, several words of a descriptor) and optional JSON `data` (the chart's `_event.data`).
 *
 * @since 0.1.0
 * @category models
 */
export const ChartEvent = Schema.Struct({ _tag: Schema.String, data: Schema.optional(Schema.Unknown) })

/** The parts of the procedure (what `Procedure.fromSCXML` puts a `TypeId` on). */
export interface ScxmlParts {
  readonly name: string
  readonly version: number
  readonly description: string | undefined
  readonly input: Schema.Schema<any, any, never>
  readonly context: typeof ChartContext
  readonly events: typeof ChartEvent
  readonly init: (input: any) => ChartContext
  readonly initial: string
  readonly states: { readonly [name: string]: Chart | Final }
}

const where = (line: number, column?: number) => `line ${line}${column === undefined ? "" : `, column ${column}`}`

/** The first `<send>` in content whose static target leaves the chart, with where it is. */
const externalSend = (content: ReadonlyArray<Executable>): Executable | undefined => {
  for (const e of content) {
    if (e.kind === "send" && e.target !== undefined && e.target !== "#_internal") return e
    const inner = e.kind === "if" ? e.branches.flatMap((b) => b.body) : e.kind === "foreach" ? e.body : []
    const found = externalSend(inner)
    if (found !== undefined) return found
  }
  return undefined
}

const blocksOf = (def: StateDefinition<Block, string>): ReadonlyArray<Block> => [
  ...(def.onEntry ?? []),
  ...(def.onExit ?? []),
  ...(def.initialTransition?.actions ?? []),
  ...(def.transitions ?? []).flatMap((t) => t.actions ?? []),
  ...(def.children ?? []).flatMap(blocksOf)
]

/** What the durable runtime cannot run: an `<invoke>`, a `<send>` to another session or processor. */
const unsupported = (document: ScxmlDocument): string | undefined => {
  for (const invokes of document.invokes.values()) {
    const invoke = invokes[0]
    if (invoke !== undefined) {
      return `<invoke> at ${where(invoke.line, invoke.column)} is not supported by the durable runtime (child sessions); ` +
        `use a child procedure (Procedure.child) instead, or remove it`
    }
  }
  const blocks = [...document.scripts, ...document.chart.children.flatMap(blocksOf)]
  for (const block of blocks) {
    const send = externalSend(block.content)
    if (send !== undefined && send.kind === "send") {
      return `<send target="${send.target}"> at ${where(send.line, send.column)} sends outside the chart, which the durable runtime ` +
        `does not support; send to the chart itself (no target) or to "#_internal"`
    }
  }
  return undefined
}

/** Parses and checks the document; throws a `DefinitionError` naming what is wrong and where. */
export const scxmlParts = (xml: string, options: FromSCXMLOptions<any> = {}): ScxmlParts => {
  const name = options.name ?? /<scxml\b[^>]*\bname\s*=\s*["']([^"']*)["']/.exec(xml)?.[1] ?? ""
  const fail = (reason: string, state?: string): never => {
    throw new DefinitionError({ procedure: name || "(unnamed SCXML document)", reason, ...(state === undefined ? {} : { state }) })
  }
  if (name.trim() === "") fail("the document has no name attribute; give the procedure a name with the `name` option")
  let document: ScxmlDocument
  try {
    document = parseScxml(xml, { load: options.load })
  } catch (error) {
    if (error instanceof XmlError || error instanceof ScxmlError) {
      return fail(`the SCXML document is not valid at ${where(error.line, error.column)}: ${error.reason}`)
    }
    throw error
  }
  const problem = unsupported(document)
  if (problem !== undefined) fail(problem)
  let stateIds: ReadonlyArray<string>
  let finals: ReadonlyArray<string>
  const events: Record<string, ReadonlyArray<string>> = Object.create(null)
  try {
    const chart = makeChart(document.chart)
    stateIds = chart.states.filter((s) => s.id !== rootId).map((s) => s.id)
    for (const s of chart.states) {
      const named = [...new Set(s.transitions.flatMap((t) => t.events))]
      if (named.length > 0) events[s.id] = named
    }
    finals = chart.states.filter((s) => s.kind === "final" && s.parent === 0).map((s) => s.id)
  } catch (error) {
    if (error instanceof ChartError) return fail(`the chart is not valid: ${error.reason}`, error.state)
    throw error
  }
  const outcomes = options.outcomes ?? {}
  for (const id of Object.keys(outcomes)) {
    if (!finals.includes(id)) {
      fail(`outcomes names "${id}", which is not a top-level <final> of the chart (${finals.join(", ") || "it has none"})`)
    }
  }
  let chartName = "chart"
  while (finals.includes(chartName)) chartName = `_${chartName}`
  const chart: Chart = {
    _tag: "Chart",
    document,
    stateIds,
    events,
    finals,
    maxMicrosteps: options.maxMicrosteps ?? 10_000,
    maxEvents: options.maxEvents ?? 10_000,
    log: options.log
  }
  const states: Record<string, Chart | Final> = Object.create(null)
  states[chartName] = chart
  for (const id of finals) states[id] = { _tag: "Final", outcome: Object.hasOwn(outcomes, id) ? outcomes[id]! : "succeeded" }
  const init = options.init ?? ((input: unknown) => (input ?? {}) as Readonly<Record<string, unknown>>)
  return {
    name,
    version: options.version ?? 1,
    description: options.description,
    input: options.input ?? Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    context: ChartContext,
    events: ChartEvent,
    init: (input) => initialContext(init(input)),
    initial: chartName,
    states
  }
}
