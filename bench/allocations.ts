/**
 * Where W1's garbage comes from: N executions of ten no-op steps in memory (as
 * `bench/instructions.ts`), `reps` times, under V8's sampling heap profiler with the
 * objects the GC has since collected kept in the profile, so that short-lived garbage
 * counts as much as what stays. Prints the bytes allocated per transition by function
 * (self), by file, and the total, mapped back to src/ through the bundle's source map.
 *
 *   npx esbuild bench/allocations.ts --bundle --platform=node --format=esm --packages=external \
 *     --sourcemap=external --tsconfig=tsconfig.json --outfile=node_modules/.cache/proctor-alloc/allocations.mjs
 *   node node_modules/.cache/proctor-alloc/allocations.mjs 2000 3 [top=40]
 *
 * The first pass warms up and is not counted.
 */
import { Effect, ManagedRuntime } from "effect"
import * as fs from "node:fs"
import * as inspector from "node:inspector/promises"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"
import { Runtime } from "proctor"
import { Countdown, Linear10, probe, runtimeLayer, STEPS } from "./lib/proctor.js"

interface Node {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<Node>
}

const n = Number(process.argv[2] ?? 2000)
const reps = Number(process.argv[3] ?? 3)
const top = Number(process.argv[4] ?? 40)

// the end of each execution is seen in the store's commit, as the bench sees it (no `await` per execution)
const pass = async () => {
  const done = new Countdown(n)
  const rt = ManagedRuntime.make(runtimeLayer("memory", "unused.db", { onTerminal: done.tick }, undefined, true))
  const runtime = await rt.runPromise(Runtime.Runtime)
  probe.reset(n)
  await rt.runPromise(Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => runtime.start(Linear10, { i }), { concurrency: 256, discard: true }))
  await done.promise
  await rt.dispose()
}

await pass()
const session = new inspector.Session()
session.connect()
await session.post("HeapProfiler.startSampling", {
  samplingInterval: 512,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true
})
for (let rep = 0; rep < reps; rep++) await pass()
const { profile } = await session.post("HeapProfiler.stopSampling") as { profile: { head: Node } }
session.disconnect()

const maps = new Map<string, SourceMap | undefined>()
const where = (frame: Node["callFrame"]) => {
  if (!maps.has(frame.url)) {
    const file = frame.url.startsWith("file://") ? fileURLToPath(frame.url) : frame.url
    maps.set(frame.url, fs.existsSync(`${file}.map`) ? new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, "utf8"))) : undefined)
  }
  const entry = maps.get(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string; originalLine?: number } | undefined
  const file = entry?.originalSource ?? frame.url
  const short = file.includes("node_modules/") ? file.slice(file.lastIndexOf("node_modules/") + 13) : file.replace(/^.*?\/(src|bench)\//, "$1/")
  return { file: short, line: (entry?.originalLine ?? frame.lineNumber) + 1 }
}

const byFunction = new Map<string, number>()
const byFile = new Map<string, number>()
let total = 0
const name = (node: Node) => {
  const { file, line } = where(node.callFrame)
  return `${node.callFrame.functionName || "(anonymous)"} ${file}:${line}`
}
/** a native function (`Map`, `set`, a generator's `next`) is named with its caller */
const visit = (node: Node, parent?: Node) => {
  if (node.selfSize > 0) {
    const { file } = where(node.callFrame)
    const key = node.callFrame.url === "" && parent !== undefined ? `${name(node)} <- ${name(parent)}` : name(node)
    byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize)
    byFile.set(file, (byFile.get(file) ?? 0) + node.selfSize)
    total += node.selfSize
  }
  for (const child of node.children) visit(child, node)
}
visit(profile.head)

const transitions = n * reps * (STEPS + 1)
const perTransition = (bytes: number) => `${(bytes / transitions).toFixed(0).padStart(6)} B`
console.log(`allocated: ${perTransition(total)} per transition (${n} executions x ${reps} passes, ${STEPS + 1} transitions each with the start)`)
console.log("\nby function (self)")
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${perTransition(v)}  ${k}`)
console.log("\nby file")
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${perTransition(v)}  ${k}`)
