/**
 * A readiness report as Markdown, in the style of the docs: the verdict first, then why
 * (the failures), the checks, the figures and the procedures.
 */
import type { Figures, Report } from "./validateModel.js"

/** `|` would end a table cell. */
const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ")

const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)].join("\n")

const number = (x: number | undefined, unit: string) => x === undefined ? "not measured" : `${x.toLocaleString("en-US")} ${unit}`

const figureRows = (f: Figures): ReadonlyArray<ReadonlyArray<string>> => [
  ["Transition overhead", number(f.transitionMicros, "µs per transition"), f.transitionsMeasured === undefined ? "" : `wall clock, ${f.transitionsMeasured.toLocaleString("en-US")} transitions, executions one at a time`],
  ["Memory per execution", number(f.heapPerExecutionBytes, "B of heap"), f.executionsMeasured === undefined ? "" : `${f.executionsMeasured.toLocaleString("en-US")} executions in flight, after a full GC`],
  ["Concurrent executions", f.concurrentExecutions === undefined ? "not measured" : `${f.concurrentExecutions.toLocaleString("en-US")} in ${number(f.concurrentMillis, "ms")}`, "from the first start to the last end"],
  ["Crash recovery", number(f.recoveryMillis, "ms"), "for the new process to finish what the killed one left"]
]

/**
 * The report as Markdown.
 *
 * @since 0.1.0
 * @category printing
 */
export const toMarkdown = (report: Report): string => {
  const out: Array<string> = [
    "# Readiness report",
    "",
    `**${report.verdict}**: ${
      report.ready
        ? `every check passed (${report.checks.length} checks; ${report.procedures.length} procedure definition${report.procedures.length === 1 ? "" : "s"} valid).`
        : `${report.failures.length} check${report.failures.length === 1 ? "" : "s"} failed.`
    }`,
    "",
    `Checked on ${new Date(report.at).toISOString()} in ${(report.millis / 1000).toFixed(1)} s, ${report.node}; ${report.where}.`
  ]
  if (!report.ready) out.push("", "## Why not ready", "", ...report.failures.map((f) => `- ${f}`))
  out.push(
    "",
    "## Checks",
    "",
    table(["Check", "Result", "What was checked"], report.checks.map((c) => [c.title, c.ok ? "passed" : "**FAILED**", c.ok ? c.detail : c.reason ?? ""])),
    "",
    "## Figures",
    "",
    "Wall-clock figures depend on the machine's load while they were measured; the heap does not.",
    "",
    table(["Figure", "Value", "How"], figureRows(report.figures)),
    "",
    "## Procedures",
    ""
  )
  if (report.procedures.length === 0) out.push("No procedure is registered.")
  else {
    out.push(table(
      ["Procedure", "From", "Definition", "States", "Steps", "Waits", "Finals", "Compensated steps"],
      report.procedures.map((p) => [
        `${p.name}@${p.version}`,
        p.source ?? "",
        p.ok ? "valid" : `**refused**: ${p.reason ?? ""}`,
        String(p.states),
        String(p.steps),
        String(p.waits),
        String(p.finals),
        p.compensated.length === 0 ? "none" : p.compensated.join(", ")
      ])
    ))
    const warnings = report.procedures.flatMap((p) => p.warnings.map((w) => `- ${p.name}@${p.version}: ${w}`))
    if (warnings.length > 0) out.push("", "Warnings (they do not change the verdict):", "", ...warnings)
  }
  return out.join("\n") + "\n"
}
