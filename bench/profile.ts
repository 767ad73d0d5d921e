/**
 * Profiles one bench case and summarizes where the CPU time goes: the functions with the
 * most samples (self time), by file, and the time under each function of proctor's own
 * code (total time, callees included), mapped back to src/ lines through the source map.
 *
 *   npx tsx bench/profile.ts run proctor '{"workload":"w1","store":"memory","sizes":[10000]}' [top=40]
 *   npx tsx bench/profile.ts FILE.cpuprofile [top=40]
 *
 * `run` bundles the worker (bench/lib/bundle.ts) and runs it under `node --cpu-prof`. Frames
 * of a bundled file are mapped back through the `<file>.map` next to it.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { SourceMap } from "node:module"
import * as path from "node:path"
import { buildDir, bundleWorker, repoRoot } from "./lib/bundle.js"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const args = process.argv.slice(2)
let file: string
let top: number
if (args[0] === "run") {
  const worker = await bundleWorker()
  const dir = path.join(buildDir, `prof-${Date.now()}`)
  execFileSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--expose-gc", worker, args[1] ?? "proctor", args[2] ?? "{}"], {
    stdio: ["ignore", "ignore", "inherit"]
  })
  // the main thread's profile is the largest
  file = fs.readdirSync(dir).map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!
  console.log(`profile: ${file}`)
  top = Number(args[3] ?? 40)
} else if (args[0] !== undefined) {
  file = args[0]
  top = Number(args[1] ?? 40)
} else {
  console.error("usage: npx tsx bench/profile.ts run CASE JSON [top] | FILE.cpuprofile [top]")
  process.exit(2)
}
const profile = JSON.parse(fs.readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const shortUrl = (url: string) => {
  if (url === "") return "(native)"
  const i = url.indexOf("node_modules/")
  if (i >= 0) return url.slice(i + "node_modules/".length).replace(/\/dist\/(esm|cjs)\//, "/")
  const root = path.resolve(import.meta.dirname, "..")
  return url.replace(`file://${root}/`, "")
}
const realBuildDir = fs.existsSync(buildDir) ? fs.realpathSync(buildDir) : buildDir
/** the source map next to a bundled file (`<file>.map`), if any */
const maps = new Map<string, SourceMap | undefined>()
const mapOf = (url: string) => {
  if (!maps.has(url)) {
    const file = url.replace(/^file:\/\//, "")
    maps.set(url, url.startsWith("file://") && fs.existsSync(`${file}.map`) ? new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, "utf8"))) : undefined)
  }
  return maps.get(url)
}
/** where a frame of a bundle comes from: its original file and line */
const origin = (n: Node): { file: string; line: number } | undefined => {
  const map = mapOf(n.callFrame.url)
  if (map === undefined) return undefined
  const entry = map.findEntry(n.callFrame.lineNumber, n.callFrame.columnNumber) as { originalSource?: string; originalLine?: number }
  if (entry.originalSource === undefined) return undefined
  // the profile names the bundle by its real path; node_modules may be a symlink into another
  // checkout, so the map's relative sources are resolved from the build folder of this one
  const dir = path.dirname(n.callFrame.url.replace(/^file:\/\//, "").replace(realBuildDir, buildDir))
  const abs = path.resolve(dir, entry.originalSource.replace(/^file:\/\//, ""))
  return { file: path.relative(repoRoot, abs), line: (entry.originalLine ?? 0) + 1 }
}
const label = (n: Node) => {
  const o = origin(n)
  const where = o === undefined ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : `${o.file}:${o.line}`
  return `${n.callFrame.functionName || "(anonymous)"} ${where}`
}
const fileOf = (n: Node) => origin(n)?.file ?? shortUrl(n.callFrame.url)
const isOurs = (n: Node) => fileOf(n).startsWith("src/")

const self = new Map<string, number>()
const byFile = new Map<string, number>()
const total = new Map<string, number>()
let all = 0
for (const id of profile.samples) {
  const node = byId.get(id)!
  all++
  const name = label(node)
  self.set(name, (self.get(name) ?? 0) + 1)
  const f = fileOf(node)
  byFile.set(f, (byFile.get(f) ?? 0) + 1)
  // total time for our functions: count each function once per sample
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!
    if (!isOurs(n)) continue
    const l = label(n)
    if (seen.has(l)) continue
    seen.add(l)
    total.set(l, (total.get(l) ?? 0) + 1)
  }
}

const pct = (k: number) => `${((100 * k) / all).toFixed(1).padStart(5)}%`
const print = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`)
  for (const [k, v] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${pct(v)}  ${k}`)
}
console.log(`${all} samples`)
print("self time by function", self, top)
print("self time by file", byFile, top)
print("total time under proctor's own functions (src/)", total, top)
