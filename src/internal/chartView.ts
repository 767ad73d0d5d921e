/**
 * Reads the active configuration of an SCXML chart (`Procedure.fromSCXML`) from an
 * execution's context without loading the chart engine: the CLI's printing and the HTTP
 * API show it next to the snapshot.
 */

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
