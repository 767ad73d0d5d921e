/**
 * MCP server benchmark, on the shipped command (`npm run build`, then
 * `node dist/bin/proctor.js mcp`, which is what `npx proctor mcp` runs): start-up to the
 * first answer, resident memory idle and with 50 active sessions against Node's own
 * baseline, and per-action latency (p50/p99) of the `workflow` tool over stdio with 100
 * sessions, one call at a time and all at once.
 *
 *   npx tsx bench/mcp.ts [--json FILE] [--sessions 100] [--no-build]
 *
 * Each server runs on a temp SQLite db. Node's baseline is `node -e "process.stdin.resume()"`
 * (a process that does nothing but wait on stdin). Prints figures; asserts nothing.
 */
import { execFileSync, spawn as spawnChild } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { testGenerationEvidence as evidence } from "../test/fixtures/mcpEvidence.js"

const argv = process.argv.slice(2)
const flag = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const jsonOut = flag("--json")
const build = !argv.includes("--no-build")
const SESSIONS = Number(flag("--sessions") ?? 100)
const RSS_SESSIONS = 50
const repoRoot = path.resolve(import.meta.dirname, "..")
const shipped = ["dist/bin/proctor.js", "mcp"]

interface Server {
  readonly client: Client
  readonly pid: number
  readonly close: () => Promise<void>
  /** from spawn to the answer of initialize */
  readonly initializeMs: number
}

const spawn = async (dir: string, command: ReadonlyArray<string>): Promise<Server> => {
  const root = path.join(dir, "workspace")
  fs.mkdirSync(path.join(root, "src"), { recursive: true })
  fs.writeFileSync(path.join(root, "src", "math.ts"), "export const add = (a: number, b: number) => a + b\n")
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...command, "--db", path.join(dir, "bench.db"), "--workflows", path.join(repoRoot, "workflows"), "--root", root],
    cwd: repoRoot,
    stderr: "pipe",
    env: { ...process.env, NODE_NO_WARNINGS: "1" } as Record<string, string>
  })
  const client = new Client({ name: "proctor-bench", version: "0.0.0" })
  const t0 = performance.now()
  await client.connect(transport)
  return { client, pid: transport.pid!, close: () => client.close(), initializeMs: performance.now() - t0 }
}

const rssMb = (pid: number) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)![1])
  return Math.round(kb / 102.4) / 10
}

/** CPU time (user + system) the process has used, in ms */
const cpuMs = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 1000 / 100
}

/** RSS of a Node process that only waits on stdin: what any Node server costs */
const nodeBaselineMb = async () => {
  const child = spawnChild(process.execPath, ["-e", "process.stdin.resume()"], { stdio: ["pipe", "ignore", "ignore"] })
  await new Promise((r) => setTimeout(r, 500))
  const mb = rssMb(child.pid!)
  child.stdin!.end()
  await new Promise((r) => child.once("exit", r))
  return mb
}

/** Start-up of a fresh server: to the answer of initialize, and to the first tool answer (list_workflows) */
const startup = async (dir: string) => {
  const t0 = performance.now()
  const server = await spawn(dir, shipped)
  await call(server, undefined, "list_workflows")
  const firstToolMs = performance.now() - t0
  const cpu = cpuMs(server.pid)
  await server.close()
  return { initialize_ms: round(server.initializeMs), first_tool_answer_ms: round(firstToolMs), cpu_ms_to_first_tool_answer: cpu }
}

type Mode = "sequential" | "concurrent"
const samples = new Map<string, Array<number>>()
const errors = new Map<string, number>()

const call = async (server: Server, mode: Mode | undefined, action: string, args: Record<string, unknown> = {}) => {
  const t0 = performance.now()
  const result = await server.client.callTool({ name: "workflow", arguments: { action, ...args } })
  const ms = performance.now() - t0
  const body = JSON.parse((result.content as Array<{ text: string }>)[0]!.text)
  if (mode !== undefined) {
    const key = `${mode}:${action}`
    const list = samples.get(key) ?? []
    list.push(ms)
    samples.set(key, list)
    if (result.isError === true) errors.set(key, (errors.get(key) ?? 0) + 1)
  }
  return body
}

const quantile = (sorted: ReadonlyArray<number>, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
const round = (n: number) => Math.round(n * 100) / 100

/** Runs `f` for 0..n-1: one call at a time, or all at once. */
const each = async (mode: Mode, n: number, f: (i: number) => Promise<unknown>) => {
  if (mode === "concurrent") await Promise.all(Array.from({ length: n }, (_, i) => f(i)))
  else for (let i = 0; i < n; i++) await f(i)
}

/** Every action over `n` fresh sessions, one call at a time or all at once. */
const scenario = async (server: Server, mode: Mode, n: number) => {
  const c = (action: string, args?: Record<string, unknown>) => call(server, mode, action, args)
  const ids: Array<string> = new Array(n)
  await each(mode, n, async (i) => {
    ids[i] = (await c("start", { workflow_type: "test_generation", target_file: "src/math.ts" })).session_id
  })
  await each(mode, n, () => c("list_workflows"))
  await each(mode, n, (i) => c("get_phase", { session_id: ids[i] }))
  await each(mode, n, (i) => c("get_task", { session_id: ids[i], task_number: 1 }))
  await each(mode, n, (i) => c("get_state", { session_id: ids[i] }))
  // a failing checkpoint, a retry, then the passing evidence (merged with the draft)
  await each(mode, n, (i) => c("complete_phase", { session_id: ids[i], phase: 1, evidence: { public_api: ["add"] } }))
  await each(mode, n, (i) => c("retry_phase", { session_id: ids[i], phase: 1 }))
  await each(mode, n, (i) => c("complete_phase", { session_id: ids[i], phase: 1, evidence: evidence[0] }))
  await each(mode, n, (i) => c("complete_phase", { session_id: ids[i], phase: 2, evidence: evidence[1] }))
  await each(mode, n, (i) => c("rollback", { session_id: ids[i], to_phase: 2 }))
  await each(mode, n, (i) => c("pause", { session_id: ids[i], checkpoint_note: "bench" }))
  await each(mode, n, (i) => c("resume", { session_id: ids[i] }))
  await each(mode, n, (i) => c("get_errors", { session_id: ids[i] }))
  await each(mode, n, (i) => c("get_session", { session_id: ids[i] }))
  await each(mode, Math.min(n, 20), () => c("list_sessions", { limit: 100 }))
  await each(mode, n, (i) => c("delete_session", { session_id: ids[i], reason: "bench" }))
}

/** RSS of a fresh server: idle, then with `RSS_SESSIONS` active sessions (each past phase 1). */
const memory = async (dir: string, command: ReadonlyArray<string>) => {
  const server = await spawn(dir, command)
  // warm up every code path the sessions will use, so that lazily compiled code is not counted as session memory
  for (let i = 0; i < 5; i++) {
    const warm = (await call(server, undefined, "start", { workflow_type: "test_generation", target_file: "src/math.ts" })).session_id
    await call(server, undefined, "complete_phase", { session_id: warm, phase: 1, evidence: evidence[0] })
    await call(server, undefined, "delete_session", { session_id: warm })
  }
  await call(server, undefined, "list_workflows")
  const idle = rssMb(server.pid)
  const ids: Array<string> = []
  for (let i = 0; i < RSS_SESSIONS; i++) {
    ids.push((await call(server, undefined, "start", { workflow_type: "test_generation", target_file: "src/math.ts" })).session_id)
  }
  for (const id of ids) await call(server, undefined, "complete_phase", { session_id: id, phase: 1, evidence: evidence[0] })
  const active = rssMb(server.pid)
  await server.close()
  return { idle_rss_mb: idle, rss_with_50_active_sessions_mb: active, growth_for_50_sessions_mb: round(active - idle) }
}

const main = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-mcp-"))
  try {
    if (build) execFileSync("npm", ["run", "build"], { cwd: repoRoot, stdio: "ignore" })
    // ---- start-up and memory of the shipped command, against Node's own baseline
    const baseline = await nodeBaselineMb()
    const starts: Array<Awaited<ReturnType<typeof startup>>> = []
    for (let i = 0; i < 5; i++) starts.push(await startup(path.join(dir, `start-${i}`)))
    const median = (k: keyof (typeof starts)[number]) => starts.map((x) => x[k]).sort((a, b) => a - b)[2]!
    const start = { initialize_ms: median("initialize_ms"), first_tool_answer_ms: median("first_tool_answer_ms"), cpu_ms_to_first_tool_answer: median("cpu_ms_to_first_tool_answer") }
    const shippedMemory = await memory(path.join(dir, "mem"), shipped)

    // ---- latency: SESSIONS sessions, one call at a time, then all at once
    const server = await spawn(path.join(dir, "lat"), shipped)
    await scenario(server, "sequential", SESSIONS)
    await scenario(server, "concurrent", SESSIONS)
    await server.close()

    const rows = [...samples].map(([key, list]) => {
      const [mode, action] = key.split(":") as [Mode, string]
      const sorted = [...list].sort((a, b) => a - b)
      return {
        mode,
        action,
        calls: list.length,
        errors: errors.get(key) ?? 0,
        p50_ms: round(quantile(sorted, 0.5)),
        p99_ms: round(quantile(sorted, 0.99)),
        max_ms: round(sorted[sorted.length - 1]!)
      }
    })
    const report = {
      node: process.version,
      cpus: os.cpus().length,
      sessions: SESSIONS,
      command: `node ${shipped.join(" ")}`,
      load_average: os.loadavg().map(round),
      startup_median_of_5: start,
      memory: { node_baseline_rss_mb: baseline, ...shippedMemory, above_node_baseline_with_50_sessions_mb: round(shippedMemory.rss_with_50_active_sessions_mb - baseline) },
      latency: rows
    }
    console.log(`MCP server over stdio (node ${process.version}, ${os.cpus().length} cpus), ${SESSIONS} sessions`)
    console.log("action            calls errors | one at a time: p50 ms  p99 ms | all at once: p50 ms  p99 ms   max ms")
    const byAction = new Map<string, Partial<Record<Mode, (typeof rows)[number]>>>()
    for (const r of rows) byAction.set(r.action, { ...byAction.get(r.action), [r.mode]: r })
    for (const [action, m] of byAction) {
      const s = m.sequential!
      const c = m.concurrent!
      console.log(
        `${action.padEnd(16)} ${String(s.calls + c.calls).padStart(6)} ${String(s.errors + c.errors).padStart(6)} |` +
          `${String(s.p50_ms).padStart(22)} ${String(s.p99_ms).padStart(7)} |${String(c.p50_ms).padStart(20)} ${
            String(c.p99_ms).padStart(7)
          } ${String(c.max_ms).padStart(8)}`
      )
    }
    const m = report.memory
    console.log(`command: node ${shipped.join(" ")} (load average ${report.load_average.join(", ")})`)
    console.log(
      `start-up (median of 5): initialize answered in ${start.initialize_ms} ms, first tool answer in ${start.first_tool_answer_ms} ms (${start.cpu_ms_to_first_tool_answer} ms of CPU)`
    )
    console.log(
      `RSS: Node's baseline ${m.node_baseline_rss_mb} MB; server idle ${m.idle_rss_mb} MB; with ${RSS_SESSIONS} active sessions ${m.rss_with_50_active_sessions_mb} MB (${m.above_node_baseline_with_50_sessions_mb} MB above the baseline)`
    )
    if (jsonOut !== undefined) fs.writeFileSync(jsonOut, JSON.stringify(report, null, 2))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

await main()
