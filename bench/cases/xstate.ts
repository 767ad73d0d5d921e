/**
 * XState v5, in memory (it has no durable store), in a child process of its own.
 *
 * Mapping to Proctor's procedures:
 * - W1: one actor per execution, of a machine with ten states s1..s10 and a final `done`.
 *   Each state's `entry` action is the no-op step (it marks the time); the event `NEXT`
 *   moves to the next state, synchronously. The driver sends `NEXT` to every actor in
 *   turn, ten rounds, so all N actors are alive at once as Proctor's executions are.
 *   Transition overhead is the time from just before `send(NEXT)` (the step's result is
 *   handed over) to the next state's `entry` action: XState's own work, with no
 *   scheduling in between (XState has none: `send` runs the transition in the caller).
 * - W2: N actors in a state that waits for `Go`; the heap they hold; one `Go` each.
 * - W3: `createActor(...).start()` to the first `entry` action, and `send` to the
 *   transition (the next state's `entry`).
 */
import { createActor, setup } from "xstate"
import { bestNote, bestOf, heapAfterGc, peakRssMb, progress, reporter } from "../lib/child.js"
import { Histogram, round } from "../lib/stats.js"

const STEPS = 10
const system = "XState v5 (memory)"

let pre = new Float64Array(0)
let firstStep = new Float64Array(0)
let overhead = new Histogram()
let measure = true

const states: Record<string, object> = { done: { type: "final" } }
for (let k = 1; k <= STEPS; k++) {
  states[`s${k}`] = { entry: k === 1 ? "first" : "step", on: { NEXT: k < STEPS ? `s${k + 1}` : "done" } }
}

const Linear10 = setup({
  types: { context: {} as { i: number }, input: {} as { i: number }, events: {} as { type: "NEXT" } },
  actions: {
    first: ({ context }) => {
      if (measure) firstStep[context.i] = performance.now()
    },
    step: ({ context }) => {
      if (measure) overhead.record(performance.now() - pre[context.i]!)
    }
  }
}).createMachine({
  id: "linear10",
  initial: "s1",
  context: ({ input }) => ({ i: input.i }),
  states: states as any
})

const Waiter = setup({
  types: { context: {} as { i: number }, input: {} as { i: number }, events: {} as { type: "Go" } }
}).createMachine({
  id: "waiter",
  initial: "waiting",
  context: ({ input }) => ({ i: input.i }),
  states: { waiting: { on: { Go: "done" } }, done: { type: "final" } }
})

interface Args {
  readonly workload: "w1" | "w2" | "w3"
  readonly sizes: ReadonlyArray<number>
  readonly samples?: number
  readonly warmup?: number
  readonly heap?: ReadonlyArray<number>
  readonly reps?: number
  readonly repBudget?: number
}

const w1 = async (sizes: ReadonlyArray<number>, warmup: number, heapAt: ReadonlyArray<number>, reps: number, repBudget: number) => {
  const report = reporter("W1", system)
  for (const [pass, n] of [...(warmup > 0 ? [warmup] : []), ...sizes].entries()) {
    const out: typeof report = (...a) => (pass === 0 && warmup > 0 ? undefined : report(...a))
    const once = () => {
      pre = new Float64Array(n)
      firstStep = new Float64Array(n)
      overhead = new Histogram()
      measure = true
      const t0 = performance.now()
      let actors = new Array(n)
      for (let i = 0; i < n; i++) actors[i] = createActor(Linear10, { input: { i } }).start()
      for (let round = 0; round < STEPS; round++) {
        for (let i = 0; i < n; i++) {
          pre[i] = performance.now()
          actors[i].send({ type: "NEXT" })
        }
      }
      const seconds = (performance.now() - t0) / 1000
      for (const a of actors) if (a.getSnapshot().status !== "done") throw new Error("an actor did not finish")
      actors = []
      progress(`  ${system}: N=${n} ${Math.round((n * STEPS) / seconds)} transitions/s`)
      return Promise.resolve({ seconds, overhead })
    }
    const best = await bestOf(pass === 0 && warmup > 0 ? 1 : reps, repBudget, once)
    const note = bestNote(best.runs)
    out(n, "executions/s", round(n / best.seconds), "1/s", note)
    out(n, "transitions/s", round((n * STEPS) / best.seconds), "1/s", note)
    out(n, "overhead p50", round(best.overhead.quantile(0.5)), "ms", note)
    out(n, "overhead p99", round(best.overhead.quantile(0.99)), "ms", note)
    out(n, "peak RSS", round(peakRssMb()), "MB", "of the child process so far (sizes run in ascending order)")
    if (!heapAt.includes(n) || (pass === 0 && warmup > 0)) continue
    // heap: all N actors in s5
    measure = false
    const base = heapAfterGc()
    const held = new Array(n)
    for (let i = 0; i < n; i++) {
      held[i] = createActor(Linear10, { input: { i } }).start()
      for (let k = 1; k < 5; k++) held[i].send({ type: "NEXT" })
    }
    const perExecution = (heapAfterGc() - base) / n
    out(n, "heap per in-flight execution", round(perExecution), "B", "all N actors in state s5 of 10, after a full GC")
    held.length = 0
  }
}

const w2 = (sizes: ReadonlyArray<number>) => {
  const out = reporter("W2", system)
  for (const n of sizes) {
    const base = heapAfterGc()
    const t0 = performance.now()
    const actors = new Array(n)
    for (let i = 0; i < n; i++) actors[i] = createActor(Waiter, { input: { i } }).start()
    const startSeconds = (performance.now() - t0) / 1000
    const heap = heapAfterGc() - base
    out(n, "start rate", round(n / startSeconds), "1/s")
    out(n, "heap per waiting execution", round(heap / n), "B", "after a full GC")
    const t1 = performance.now()
    for (let i = 0; i < n; i++) actors[i].send({ type: "Go" })
    const wake = (performance.now() - t1) / 1000
    for (const a of actors) if (a.getSnapshot().status !== "done") throw new Error("an actor did not finish")
    out(n, "wake all (one event each)", round(wake), "s")
    out(n, "wake rate", round(n / wake), "1/s")
    out(n, "peak RSS", round(peakRssMb()), "MB")
    progress(`  ${system}: N=${n} waiting heap ${Math.round(heap / n)} B each, woke all in ${round(wake)} s`)
  }
}

const w3 = (samples: number) => {
  const out = reporter("W3", system)
  const start = new Histogram()
  const send = new Histogram()
  firstStep = new Float64Array(samples)
  pre = new Float64Array(samples)
  overhead = new Histogram()
  measure = true
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now()
    const actor = createActor(Linear10, { input: { i } }).start()
    start.record(firstStep[i]! - t0)
    pre[i] = performance.now()
    actor.send({ type: "NEXT" })
  }
  for (let i = 0; i < samples; i++) {
    const actor = createActor(Waiter, { input: { i } }).start()
    const t0 = performance.now()
    actor.send({ type: "Go" })
    send.record(performance.now() - t0)
  }
  for (const [metric, h] of [["start -> first step", start], ["send -> transition committed", send]] as const) {
    out(0, `${metric} p50`, round(h.quantile(0.5)), "ms", `low load, ${h.count} samples (in memory: nothing is committed)`)
    out(0, `${metric} p99`, round(h.quantile(0.99)), "ms", `low load, ${h.count} samples (in memory: nothing is committed)`)
  }
  void overhead
}

export const main = async (args: Args) => {
  if (args.workload === "w1") await w1(args.sizes, args.warmup ?? 0, args.heap ?? [], args.reps ?? 1, args.repBudget ?? 20)
  else if (args.workload === "w2") w2(args.sizes)
  else w3(args.samples ?? 500)
}
