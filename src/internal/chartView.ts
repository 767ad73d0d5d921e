/**
 * Reads the active configuration of an SCXML chart (`Procedure.fromSCXML`) from an
 * execution's context without loading the chart engine: the CLI's printing and the HTTP
 * API show it next to the snapshot, and `Execution.allowedOperations` lists the events
 * its active states take.
 */
import type { Snapshot } from "../Execution.js"
import { configuration } from "../Execution.js"
import type { Chart } from "./chartState.js"

/** The chart's active states when `context` is a chart's session (see `chartState.ChartContext`), else undefined. */
export const configurationIn = (context: unknown): ReadonlyArray<string> | undefined => {
  if (typeof context !== "object" || context === null) return undefined
  const c = context as Readonly<Record<string, unknown>>
  const configuration = c["configuration"]
  return Array.isArray(configuration) && configuration.every((s) => typeof s === "string") &&
      Array.isArray(c["pending"]) && typeof c["halted"] === "boolean" && typeof c["history"] === "object"
    ? configuration as ReadonlyArray<string>
    : undefined
}

/**
 * The active configuration a stored snapshot tells without its procedure's definition (a
 * read-only CLI): its state and the compound states holding it, and a chart's states.
 * With the definition, `Runtime.configuration` also finds parallel regions.
 */
export const storedConfiguration = (snapshot: Snapshot): ReadonlyArray<string> => [
  ...configuration(snapshot),
  ...configurationIn(snapshot.context) ?? []
]

/** The event descriptors the transitions of the chart's active states name (`*`: any event), in document order. */
export const chartEvents = (chart: Chart, context: unknown): ReadonlyArray<string> => {
  const active = new Set(configurationIn(context) ?? [])
  return [...new Set(chart.stateIds.filter((id) => active.has(id)).flatMap((id) => chart.events[id] ?? []))]
}

/**
 * Whether an event named `tag` is one of `events` (what `Execution.allowedOperations` lists)
 * or, as SCXML matches descriptors, starts with one followed by a dot, or `*` is listed.
 */
export const takesEvent = (events: ReadonlyArray<string>, tag: string): boolean =>
  events.some((e) => e === "*" || e === tag || tag.startsWith(`${e}.`))
