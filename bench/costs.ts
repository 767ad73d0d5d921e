/**
 * Where a transition's time goes, in one process: N executions of a K-step procedure of
 * no-op steps on the memory store, the CPU time per transition, and how it splits into a
 * fixed cost per execution and a marginal cost per transition (from K = 1 and K = 100).
 *
 *   npx tsx bench/costs.ts                 # immediate commits (the memory store)
 *   npx tsx bench/costs.ts --deferred      # each commit completes on the next turn of the event loop
 *   npx tsx bench/costs.ts --no-tracing    # the runtime's `tracing: false` (no proctor.* spans)
 *
 * `--deferred` is a durable store without the I/O: every commit waits, like a group commit,
 * for a batch that completes on the next turn of the event loop, so each transition suspends
 * its fiber and resumes it. The difference between the two runs is the cost of that wait.
 * Figures are CPU time (user + system) of the whole process, the second of two rounds.
 */
import { Effect, Layer, Schema } from "effect"
import type { Store as StoreNs } from "proctor"
import { Execution, Procedure, Runtime, Store } from "proctor"

const deferred = process.argv.includes("--deferred")
const tracing = !process.argv.includes("--no-tracing")

const procedure = (k: number) => {
  const states: Record<string, Procedure.AnyState> = { done: Procedure.final() }
  for (let i = 0; i < k; i++) states[`s${i}`] = Procedure.step({ run: () => Effect.void, next: (i === k - 1 ? "done" : `s${i + 1}`) as "done" })
  const Ctx = Schema.Struct({ n: Schema.Number })
  // built in a loop, so typed loosely; registration checks the real graph
  return Procedure.make(`costs-${k}`, { version: 1, input: Ctx, context: Ctx }, {
    initial: "s0",
    states: states as unknown as { readonly s0: Procedure.Final; readonly done: Procedure.Final }
  })
}

/** µs of CPU per transition for n executions of k steps (k + 1 transitions each, with the start) */
const measure = async (k: number, n: number): Promise<number> => {
  const P = procedure(k)
  let done = 0
  let allDone: () => void = () => {}
  const pending: Array<() => void> = []
  let flushing = false
  const flush = () => {
    flushing = false
    for (const resume of pending.splice(0)) resume()
  }
  const store = Layer.effect(
    Store.Store,
    Effect.map(Store.Store, (inner): StoreNs.StoreService => ({
      ...inner,
      commit: (commit) => {
        const apply = Effect.tap(inner.commit(commit), () => {
          if (Execution.isTerminal(commit.snapshot.status) && ++done === n) allDone()
        })
        if (!deferred) return apply
        const wait = Effect.async<void>((resume) => {
          pending.push(() => resume(Effect.void))
          if (!flushing) {
            flushing = true
            setImmediate(flush)
          }
        })
        return Effect.zipRight(wait, apply)
      }
    }))
  ).pipe(Layer.provide(Store.layerMemory))
  let perTransition = 0
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    for (let round = 0; round < 2; round++) {
      done = 0
      const finished = new Promise<void>((resolve) => (allDone = resolve))
      const cpu = process.cpuUsage()
      // 256 callers, as in bench/cases/proctor.ts
      yield* Effect.all(
        Array.from({ length: 256 }, (_, w) =>
          Effect.gen(function*() {
            for (let i = w; i < n; i += 256) yield* runtime.start(P, { n: i })
          })),
        { concurrency: "unbounded", discard: true }
      )
      yield* Effect.promise(() => finished)
      const used = process.cpuUsage(cpu)
      perTransition = (used.user + used.system) / (n * (k + 1))
    }
  }).pipe(Effect.provide(Runtime.layer({ procedures: [P], tracing }).pipe(Layer.provide(store))))))
  return perTransition
}

const one = await measure(1, 20_000)
const hundred = await measure(100, 2_000)
const ten = await measure(10, 10_000)
const marginal = (hundred * 101 - one * 2) / 99
const fixed = one * 2 - 2 * marginal
console.log(`${deferred ? "deferred" : "immediate"} commits${tracing ? "" : ", tracing off"}, CPU per transition:`)
console.log(`  K=1   (20k executions): ${one.toFixed(1)} µs`)
console.log(`  K=10  (10k executions): ${ten.toFixed(1)} µs  -> ${Math.round(1e6 / ten).toLocaleString("en-US")} transitions per CPU-second`)
console.log(`  K=100 (2k executions):  ${hundred.toFixed(1)} µs`)
console.log(`  marginal per transition ${marginal.toFixed(1)} µs, fixed per execution ${fixed.toFixed(0)} µs`)
