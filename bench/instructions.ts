/**
 * W1 in memory for counting instructions (`valgrind --tool=callgrind`): N executions of
 * ten no-op steps started at once and awaited, `reps` times in one process. Instruction
 * counts do not depend on the machine's load, so two commits can be compared on a busy
 * machine (docs/benchmarks.md, "Flat procedures after the statecharts"):
 *
 *   npx esbuild bench/instructions.ts --bundle --platform=node --format=esm --packages=external \
 *     --tsconfig=tsconfig.json --outfile=node_modules/.cache/proctor-bench/instructions.mjs
 *   valgrind --tool=callgrind node node_modules/.cache/proctor-bench/instructions.mjs 1000 6
 */
import { Effect, ManagedRuntime } from "effect"
import { Runtime } from "proctor"
import { Linear10, probe, runtimeLayer } from "./lib/proctor.js"

const n = Number(process.argv[2] ?? 1000)
const reps = Number(process.argv[3] ?? 1)
// the memory store: the file is never opened
const rt = ManagedRuntime.make(runtimeLayer("memory", "unused.db", {}, undefined, true))
const runtime = await rt.runPromise(Runtime.Runtime)
for (let rep = 0; rep < reps; rep++) {
  probe.reset(n)
  const ids = await rt.runPromise(Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => runtime.start(Linear10, { i }), { concurrency: "unbounded" }))
  await rt.runPromise(Effect.forEach(ids, (id) => runtime.await(id), { concurrency: "unbounded", discard: true }))
}
await rt.dispose()
