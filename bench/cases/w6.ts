/**
 * W6: a parallel state with 4 regions of 5 no-op steps each, N executions, 256 at a time
 * (256 callers, each starting an execution and awaiting its end, then the next), in a
 * child process of its own per system:
 *
 * - Proctor (memory store or SQLite): a procedure whose one `Procedure.parallel` state has
 *   regions r1..r4, each five `Procedure.step`s of `Effect.void` and a final; each region
 *   is a child execution (so one execution is 5 executions and 21 step commits).
 * - XState v5 (memory): a machine whose `type: "parallel"` state has the same regions,
 *   each state invoking a no-op promise actor (`fromPromise`) whose `onDone` goes to the
 *   next state: one step is one promise, as asynchronous as Proctor's; the parallel
 *   state's `onDone` (all regions final) ends the machine.
 *
 * Figures: executions/s, region steps/s (20 per execution), the p50 of one execution's
 * start-to-end time and the CPU time per execution (user + system of the whole process,
 * which the load of the machine moves less than the wall clock).
 *
 *   node --expose-gc --import tsx bench/worker.ts w6 '{"system":"proctor","store":"memory","sizes":[1000]}'
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Procedure, Runtime } from "proctor"
import { createActor, fromPromise, setup, toPromise } from "xstate"
import { bestNote, bestOf, peakRssMb, progress, reporter } from "../lib/child.js"
import type { StoreKind } from "../lib/proctor.js"
import { baseStore, storeLabel, tempDb } from "../lib/proctor.js"
import { Histogram, round } from "../lib/stats.js"

const REGIONS = 4
const STEPS = 5
const CALLERS = 256

export interface Args {
  readonly system: "proctor" | "xstate"
  readonly store?: StoreKind
  readonly sizes: ReadonlyArray<number>
  readonly warmup?: number
  readonly reps?: number
  readonly repBudget?: number
}

// ---------------------------------------------------------------------------------------
// Proctor

const Input = Schema.Struct({ i: Schema.Number })

const region = () => {
  const states: Record<string, Procedure.AnyState> = { done: Procedure.final() }
  for (let k = 1; k <= STEPS; k++) states[`s${k}`] = Procedure.step({ run: () => Effect.void, next: k < STEPS ? `s${k + 1}` : "done" })
  return { initial: "s1", states }
}

const regions: Record<string, ReturnType<typeof region>> = {}
for (let r = 1; r <= REGIONS; r++) regions[`r${r}`] = region()

const Fan = Procedure.makeUnsafe({
  name: "bench-w6",
  version: 1,
  input: Input,
  context: Input,
  initial: "fan",
  states: { fan: Procedure.parallel({ regions, next: "done" }) as Procedure.AnyState, done: { type: "final" } }
})

// ---------------------------------------------------------------------------------------
// XState

const xstateRegion = () => {
  const states: Record<string, object> = { end: { type: "final" } }
  for (let k = 1; k <= STEPS; k++) states[`s${k}`] = { invoke: { src: "noop", onDone: k < STEPS ? `s${k + 1}` : "end" } }
  return { initial: "s1", states }
}
const xstateRegions: Record<string, object> = {}
for (let r = 1; r <= REGIONS; r++) xstateRegions[`r${r}`] = xstateRegion()

const FanMachine = setup({ actors: { noop: fromPromise(() => Promise.resolve()) } }).createMachine({
  id: "w6",
  initial: "fan",
  states: { fan: { type: "parallel", states: xstateRegions as any, onDone: "done" }, done: { type: "final" } }
})

// ---------------------------------------------------------------------------------------

/** N executions, `CALLERS` at a time; each caller's `one()` starts one and resolves at its end. */
const drive = async (n: number, one: () => Promise<unknown>) => {
  const latency = new Histogram()
  const t0 = performance.now()
  // CPU time moves less than the wall clock when other work shares the machine
  const cpu0 = process.cpuUsage()
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, CALLERS) }, async () => {
    while (next < n) {
      next++
      const started = performance.now()
      await one()
      latency.record(performance.now() - started)
    }
  }))
  const cpu = process.cpuUsage(cpu0)
  return { seconds: (performance.now() - t0) / 1000, latency, cpuMicros: (cpu.user + cpu.system) / n }
}

const measure = async (
  system: string,
  sizes: ReadonlyArray<number>,
  args: Args,
  one: () => Promise<unknown>,
  note: string
) => {
  const report = reporter("W6", system)
  const warmup = args.warmup ?? 0
  for (const [pass, n] of [...(warmup > 0 ? [warmup] : []), ...sizes].entries()) {
    const warm = pass === 0 && warmup > 0
    const best = await bestOf(warm ? 1 : args.reps ?? 1, args.repBudget ?? 20, () => drive(n, one))
    progress(`  ${system}: N=${n} ${Math.round(n / best.seconds)} executions/s, CPU ${round(best.cpuMicros)} µs per execution (user + system, the whole process)`)
    if (warm) continue
    const extra = [bestNote(best.runs), note].filter((s) => s !== undefined).join("; ")
    report(n, "executions/s", round(n / best.seconds), "1/s", extra)
    report(n, "steps/s", round((n * REGIONS * STEPS) / best.seconds), "1/s", `${REGIONS * STEPS} region steps per execution`)
    report(n, "execution p50", round(best.latency.quantile(0.5)), "ms", `start to end of one execution, ${CALLERS} in flight`)
    report(n, "CPU per execution", round(best.cpuMicros), "µs", "user + system of the whole process, in the fastest run")
    report(n, "peak RSS", round(peakRssMb()), "MB")
  }
}

export const main = async (args: Args) => {
  if (args.system === "xstate") {
    await measure("XState v5 (memory)", args.sizes, args, () => toPromise(createActor(FanMachine).start()), "each step an invoked no-op promise")
    return
  }
  const kind = args.store ?? "memory"
  const db = tempDb("w6")
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const layer = Runtime.layer({ procedures: [Fan], tracing: false }).pipe(Layer.provide(baseStore(kind, db.file)))
      const runtime = Context.get(yield* Layer.build(layer), Runtime.Runtime)
      const one = () => Effect.runPromise(Effect.flatMap(runtime.start(Fan, { i: 0 }), (id) => runtime.await(id)))
      yield* Effect.promise(() => measure(`Proctor, ${storeLabel(kind)}`, args.sizes, args, one, "each region a child execution"))
    })))
  } finally {
    db.remove()
  }
}
