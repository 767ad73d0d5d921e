/**
 * The floor of a durable transition's wait: N fibers, each looping K times over a bare
 * `Effect.async` that completes, like a group commit, in one batch on the next turn of the
 * event loop; against the same loop with nothing to wait for. Prints the CPU per iteration.
 * The difference is what Effect charges for suspending and resuming a fiber, before any of
 * the runtime's own work (see docs/benchmarks.md, the durable figures of issue 13).
 *
 *   npx tsx bench/resume.ts [fibers=2000]
 */
import { Effect } from "effect"

const n = Number(process.argv[2] ?? 2000)
const k = 100

const pending: Array<() => void> = []
let flushing = false
const flush = () => {
  flushing = false
  for (const resume of pending.splice(0)) resume()
}
const wait = Effect.async<void>((resume) => {
  pending.push(() => resume(Effect.void))
  if (!flushing) {
    flushing = true
    setImmediate(flush)
  }
})

const measure = async (step: Effect.Effect<void>): Promise<number> => {
  // a little garbage per iteration, as a transition makes
  const body = Effect.gen(function*() {
    for (let i = 0; i < k; i++) {
      yield* step
      yield* Effect.sync(() => ({ i, list: [i] }))
    }
  })
  let perIteration = 0
  // the second of two rounds: the JIT has warmed up
  for (let round = 0; round < 2; round++) {
    const cpu = process.cpuUsage()
    await Effect.runPromise(Effect.all(Array.from({ length: n }, () => body), { concurrency: "unbounded", discard: true }))
    const used = process.cpuUsage(cpu)
    perIteration = (used.user + used.system) / (n * k)
  }
  return perIteration
}

const immediate = await measure(Effect.void)
const deferred = await measure(wait)
console.log(`${n} fibers x ${k} iterations, CPU per iteration:`)
console.log(`  nothing to wait for:        ${immediate.toFixed(2)} µs`)
console.log(`  Effect.async, batch resume: ${deferred.toFixed(2)} µs  (the wait: ${(deferred - immediate).toFixed(2)} µs)`)
