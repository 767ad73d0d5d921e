/**
 * What the orchestrator makes of the figures: tables, the ratios Proctor / peer, the
 * goals, the SVG chart and the Markdown for docs/benchmarks.md.
 */
import type { Figure } from "./child.js"
import { round } from "./stats.js"
import { fsyncOffSuffix, w7Systems } from "./w7.js"

export const systems = {
  proctorMemory: "Proctor memory store",
  proctorSqlite: "Proctor SQLite (NORMAL)",
  proctorSqliteFull: "Proctor SQLite (synchronous=FULL)",
  xstate: "XState v5 (memory)",
  fiber: "Effect fiber parked on a Deferred (the floor)",
  workflowMemory: "@effect/workflow (memory engine)",
  workflowSqlite: "@effect/workflow (cluster engine, SQLite)",
  rawNormal: "raw better-sqlite3 (NORMAL)",
  rawFull: "raw better-sqlite3 (synchronous=FULL)"
} as const

export const find = (figures: ReadonlyArray<Figure>, workload: string, system: string, metric: string, n?: number) =>
  figures.find((f) => f.workload === workload && f.system === system && f.metric === metric && (n === undefined || f.n === n))

const fmt = (v: number | undefined, unit?: string) => {
  if (v === undefined || !Number.isFinite(v)) return "–"
  const s = Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(round(v))
  return unit === undefined || unit === "1/s" ? s : `${s} ${unit}`
}
const fmtN = (n: number) => (n >= 1_000_000 && n % 1_000_000 === 0 ? `${n / 1_000_000}M` : n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n))

/** rows = systems, columns = N, for one workload and metric */
export const table = (figures: ReadonlyArray<Figure>, workload: string, metric: string, title?: string): Array<string> => {
  const rows = figures.filter((f) => f.workload === workload && f.metric === metric)
  if (rows.length === 0) return []
  const ns = [...new Set(rows.map((f) => f.n))].sort((a, b) => a - b)
  const names = [...new Set(rows.map((f) => f.system))]
  const unit = rows[0]!.unit
  const out = [
    `**${title ?? `${workload} ${metric}`}** (${unit === "1/s" ? "per second" : unit})`,
    "",
    `| system | ${ns.map((n) => (n === 0 ? "–" : `N=${fmtN(n)}`)).join(" | ")} |`,
    `|---|${ns.map(() => "---:").join("|")}|`
  ]
  for (const name of names) {
    out.push(`| ${name} | ${ns.map((n) => fmt(rows.find((f) => f.system === name && f.n === n)?.value)).join(" | ")} |`)
  }
  out.push("")
  return out
}

/** rows = (system, metric) for workloads with many metrics at one N or a few */
export const metricTable = (figures: ReadonlyArray<Figure>, workload: string): Array<string> => {
  const rows = figures.filter((f) => f.workload === workload)
  if (rows.length === 0) return []
  const out = ["| system | N | metric | value | note |", "|---|---:|---|---:|---|"]
  for (const f of rows) {
    out.push(`| ${f.system} | ${f.n === 0 ? "–" : fmtN(f.n)} | ${f.metric} | ${fmt(f.value, f.unit)} | ${f.note ?? ""} |`)
  }
  out.push("")
  return out
}

export interface Ratio {
  readonly workload: string
  readonly n: number
  readonly metric: string
  readonly proctor: string
  readonly peer: string
  readonly ratio: number
}

export const ratios = (figures: ReadonlyArray<Figure>): Array<Ratio> => {
  const pairs: ReadonlyArray<readonly [string, string]> = [
    [systems.proctorMemory, systems.xstate],
    [systems.proctorMemory, systems.fiber],
    [systems.proctorMemory, systems.workflowMemory],
    [systems.proctorSqlite, systems.rawNormal],
    [systems.proctorSqliteFull, systems.rawFull],
    [systems.proctorSqlite, systems.workflowSqlite]
  ]
  const out: Array<Ratio> = []
  for (const metric of ["transitions/s", "heap per in-flight execution"]) {
    for (const [proctor, peer] of pairs) {
      for (const p of figures.filter((f) => f.workload === "W1" && f.system === proctor && f.metric === metric)) {
        const q = find(figures, "W1", peer, metric, p.n)
        if (q !== undefined && q.value > 0) out.push({ workload: "W1", n: p.n, metric, proctor, peer, ratio: p.value / q.value })
      }
    }
  }
  for (const metric of ["heap per waiting execution", "wake rate"]) {
    for (const p of figures.filter((f) => f.workload === "W2" && f.system.startsWith("Proctor") && f.metric === metric)) {
      const q = find(figures, "W2", systems.xstate, metric, p.n)
      if (q !== undefined && q.value > 0) out.push({ workload: "W2", n: p.n, metric, proctor: p.system, peer: systems.xstate, ratio: p.value / q.value })
    }
  }
  // W7: Proctor with n runners against DBOS with as many processes, and against DBOS's one process
  for (const suffix of ["", fsyncOffSuffix]) for (let n = 1; n <= 3; n++) {
    const p = find(figures, "W7", w7Systems.proctor(n, suffix), "steps/s")
    for (const peer of new Set([w7Systems.dbos(n, suffix), w7Systems.dbos(1, suffix)])) {
      const q = find(figures, "W7", peer, "steps/s")
      if (p !== undefined && q !== undefined && q.value > 0) out.push({ workload: "W7", n: p.n, metric: "steps/s", proctor: p.system, peer, ratio: p.value / q.value })
    }
  }
  return out
}

export const ratioLines = (rs: ReadonlyArray<Ratio>): Array<string> => {
  if (rs.length === 0) return []
  const out = ["| workload | N | metric | Proctor | peer | Proctor / peer |", "|---|---:|---|---|---|---:|"]
  for (const r of rs) {
    out.push(`| ${r.workload} | ${fmtN(r.n)} | ${r.metric} | ${r.proctor} | ${r.peer} | ${round(r.ratio)}× |`)
  }
  out.push("")
  return out
}

export interface Goal {
  readonly goal: string
  readonly measured: string
  readonly status: "met" | "missed" | "not measured"
  /** measured / target, for goals with a floor; target / measured for ceilings */
  readonly margin?: number | undefined
}

export const goals = (figures: ReadonlyArray<Figure>): Array<Goal> => {
  const out: Array<Goal> = []
  const floor = (goal: string, value: number | undefined, target: number, measured: (v: number) => string) => {
    if (value === undefined) out.push({ goal, measured: "–", status: "not measured" })
    else out.push({ goal, measured: measured(value), status: value >= target ? "met" : "missed", margin: value / target })
  }
  const ceiling = (goal: string, value: number | undefined, target: number, measured: (v: number) => string) => {
    if (value === undefined) out.push({ goal, measured: "–", status: "not measured" })
    else out.push({ goal, measured: measured(value), status: value <= target ? "met" : "missed", margin: target / value })
  }
  // the goals of issue 13 (the core reshaped), then the earlier ones still standing
  const heap = find(figures, "W1", systems.proctorMemory, "heap per in-flight execution", 10_000)?.value
  ceiling("W1: heap per in-flight execution (memory store, N=10k) ≤ 6 KB", heap, 6144, (v) => `${fmt(v)} B`)
  const mem = find(figures, "W1", systems.proctorMemory, "transitions/s", 10_000)?.value
  const xs = find(figures, "W1", systems.xstate, "transitions/s", 10_000)?.value
  floor("in-memory W1 at N=10k: ≥ 1.0× XState", mem !== undefined && xs !== undefined ? mem / xs : undefined, 1, (v) => `${round(v)}×`)
  const sql = find(figures, "W1", systems.proctorSqlite, "transitions/s", 10_000)?.value
  const raw = find(figures, "W1", systems.rawNormal, "transitions/s", 10_000)?.value
  floor("durable W1 (SQLite, N=10k): ≥ 40% of raw better-sqlite3", sql !== undefined && raw !== undefined ? sql / raw : undefined, 0.4, (v) => `${round(v * 100)}%`)
  const wakes = figures.filter((f) => f.workload === "W2" && f.system === `${systems.proctorSqlite}, passivation on` && f.metric === "wake rate")
  const wake = wakes.length === 0 ? undefined : wakes.reduce((a, b) => (b.n > a.n ? b : a))
  floor(`W2: waking passivated executions on SQLite${wake === undefined ? "" : ` (N=${fmtN(wake.n)})`} ≥ 20,000/s`, wake?.value, 20_000, (v) => `${fmt(v)}/s`)
  const w4 = find(figures, "W4", systems.proctorSqlite, "all running again", 100_000)?.value
  ceiling("W4: 100k in-flight executions running again in < 5 s", w4, 5, (v) => `${round(v)} s`)
  // against @effect/workflow's SQLite engine: at the largest N both ran
  const wf = figures.filter((f) => f.workload === "W1" && f.system === systems.workflowSqlite && f.metric === "transitions/s")
  const both = wf.map((w) => [w, find(figures, "W1", systems.proctorSqlite, "transitions/s", w.n)] as const).filter(([, p]) => p !== undefined)
  const last = both[both.length - 1]
  floor(
    `durable W1 (SQLite${last === undefined ? "" : `, N=${fmtN(last[0].n)}`}): ≥ 100× @effect/workflow's SQLite engine`,
    last === undefined ? undefined : last[1]!.value / last[0].value,
    100,
    (v) => `${round(v)}×`
  )
  const active = find(figures, "W2", `${systems.proctorSqlite}, passivation off`, "heap per waiting execution")?.value
  ceiling("W2: ≤ 5 KB heap per active (in-memory) waiting execution", active, 5120, (v) => `${fmt(v)} B`)
  const million = find(figures, "W2", `${systems.proctorSqlite}, passivation on`, "RSS", 1_000_000)?.value
  ceiling("W2: 1M stored waiting executions, passivated, < 1 GB RSS", million, 1024, (v) => `${fmt(v)} MB`)
  // the developers' guide's aim (not one of the issue's goals): one execution alone, start to its last commit
  const alone = find(figures, "W3", systems.proctorSqlite, "start -> all 10 steps committed p50", 0)?.value
  ceiling("W3: a 10-step execution on SQLite at low load, p50 < 2 ms (the team's aim)", alone, 2, (v) => `${round(v)} ms`)
  // issue 15: Proctor on Postgres against DBOS Transact on the same server, in the same run
  const pg = find(figures, "W7", w7Systems.proctor(1), "steps/s")?.value
  const dbos = find(figures, "W7", w7Systems.dbos(1), "steps/s")?.value
  floor("W7: Proctor on Postgres (1 runner) ≥ 5× DBOS Transact's steps/s (1 process, same server)", pg !== undefined && dbos !== undefined ? pg / dbos : undefined, 5, (v) => `${round(v)}×`)
  const p50 = find(figures, "W7", w7Systems.proctor(1), "10-step latency alone p50")?.value
  ceiling("W7: a 10-step execution on Postgres, p50 < 10 ms (one at a time)", p50, 10, (v) => `${round(v)} ms`)
  return out
}

export const goalLines = (gs: ReadonlyArray<Goal>): Array<string> => {
  const out = ["| goal | measured | status |", "|---|---:|---|"]
  for (const g of gs) {
    const by = g.margin === undefined ? "" : g.status === "met" ? ` (${round(g.margin)}× the bar)` : ` (${round(g.margin * 100)}% of the bar)`
    out.push(`| ${g.goal} | ${g.measured} | ${g.status}${by} |`)
  }
  out.push("")
  return out
}

// ---------------------------------------------------------------------------------------
// the chart: W1 transitions/s against N, log-log, one line per system

const palette = ["#2563eb", "#0891b2", "#7c3aed", "#dc2626", "#ea580c", "#ca8a04", "#16a34a", "#4b5563"]
const dash: Record<string, string> = { [systems.rawNormal]: "6 4", [systems.rawFull]: "6 4" }

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

export const chart = (figures: ReadonlyArray<Figure>, caption: string): string => {
  const rows = figures.filter((f) => f.workload === "W1" && f.metric === "transitions/s" && f.value > 0)
  const names = Object.values(systems).filter((s) => rows.some((f) => f.system === s))
  const W = 820, H = 470, left = 80, right = 300, top = 40, bottom = 70
  const pw = W - left - right, ph = H - top - bottom
  const ns = rows.map((f) => f.n), vs = rows.map((f) => f.value)
  const x0 = Math.floor(Math.log10(Math.min(...ns, 1000))), x1 = Math.ceil(Math.log10(Math.max(...ns, 10_000)))
  const y0 = Math.floor(Math.log10(Math.min(...vs, 1000))), y1 = Math.ceil(Math.log10(Math.max(...vs, 100_000)))
  const X = (n: number) => left + ((Math.log10(n) - x0) / Math.max(1, x1 - x0)) * pw
  const Y = (v: number) => top + ph - ((Math.log10(v) - y0) / Math.max(1, y1 - y0)) * ph
  const parts: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="600">W1: transitions/s against N concurrent executions (10 no-op steps each)</text>`
  ]
  for (let e = x0; e <= x1; e++) {
    const x = X(10 ** e)
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + ph}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${x}" y="${top + ph + 18}" text-anchor="middle">${fmtN(10 ** e)}</text>`)
  }
  for (let e = y0; e <= y1; e++) {
    const y = Y(10 ** e)
    parts.push(`<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end">${fmtN(10 ** e)}</text>`)
  }
  parts.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`)
  parts.push(`<text x="${left + pw / 2}" y="${top + ph + 40}" text-anchor="middle">N (log scale)</text>`)
  parts.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">transitions/s (log scale)</text>`)
  names.forEach((name, i) => {
    const color = palette[i % palette.length]!
    const pts = rows.filter((f) => f.system === name).sort((a, b) => a.n - b.n)
    const d = pts.map((f) => `${X(f.n).toFixed(1)},${Y(f.value).toFixed(1)}`).join(" ")
    parts.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"${dash[name] === undefined ? "" : ` stroke-dasharray="${dash[name]}"`}/>`)
    for (const f of pts) {
      parts.push(`<circle cx="${X(f.n).toFixed(1)}" cy="${Y(f.value).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(name)} N=${f.n}: ${Math.round(f.value)}/s</title></circle>`)
    }
    const ly = top + 10 + i * 22
    parts.push(`<line x1="${left + pw + 16}" y1="${ly}" x2="${left + pw + 40}" y2="${ly}" stroke="${color}" stroke-width="2"${dash[name] === undefined ? "" : ` stroke-dasharray="${dash[name]}"`}/>`)
    parts.push(`<text x="${left + pw + 46}" y="${ly + 4}">${esc(name)}</text>`)
  })
  parts.push(`<text x="${left}" y="${H - 12}" fill="#6b7280" font-size="11">${esc(caption)}</text>`)
  parts.push("</svg>")
  return parts.join("\n") + "\n"
}
