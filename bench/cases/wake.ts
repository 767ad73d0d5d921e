/**
 * W2's wake alone, for A/B comparisons and profiles of one change: N executions wait for
 * an event on SQLite (passivated: no actor in memory), then 256 callers send one `Go` each.
 * Prints the wall time and the CPU per wake of that phase only; with `profile`, writes a CPU
 * profile of that phase only (`npx tsx bench/profile.ts FILE` reads it, mapped to src/
 * lines when the worker ran from its bundle, see bench/lib/bundle.ts).
 *
 *   node --expose-gc --import tsx bench/worker.ts wake '{"n":20000,"profile":"wake.cpuprofile"}'
 *
 * Instructions per wake, which do not depend on the machine's load: the same run under
 * callgrind twice, once waking none (`woken: 0`) and once waking all; the difference over
 * n is what a wake costs (`<worker>` is the bundle of bench/lib/bundle.ts):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --expose-gc <worker> wake '{"n":1000,"warm":200,"woken":0}'
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node --expose-gc <worker> wake '{"n":1000,"warm":200}'
 */
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as inspector from "node:inspector/promises"
import type { Execution } from "proctor"
import { Runtime } from "proctor"
import { progress, until } from "../lib/child.js"
import type { StoreKind } from "../lib/proctor.js"
import { Countdown, runtimeLayer, tempDb, Waiter } from "../lib/proctor.js"

interface Args {
  /** executions woken @default 20000 */
  readonly n?: number
  /** a file to write the wake phase's CPU profile to */
  readonly profile?: string
  /** how many of the n to wake (the first ones) @default n */
  readonly woken?: number
  /** executions started and woken first, unmeasured, to warm the JIT @default 2000 */
  readonly warm?: number
  /** a file to write the wake phase's sampled heap allocations to (a .heapprofile; objects collected since count too) */
  readonly heapProfile?: string
  /** the store @default "sqlite" */
  readonly store?: StoreKind
}

/** 256 callers, as in bench/cases/proctor.ts */
const callAll = (k: number, call: (i: number) => Effect.Effect<unknown, unknown>) =>
  Effect.all(
    Array.from({ length: Math.min(k, 256) }, (_, w) =>
      Effect.gen(function*() {
        for (let i = w; i < k; i += 256) yield* call(i)
      })),
    { concurrency: "unbounded", discard: true }
  )

const wakePhase = (rt: Runtime.RuntimeService, n: number, done: Countdown, profileFile: string | undefined, heapFile: string | undefined) =>
  n === 0 ? Effect.void :
  Effect.promise(async () => {
    const session = new inspector.Session()
    if (profileFile !== undefined || heapFile !== undefined) session.connect()
    if (profileFile !== undefined) {
      await session.post("Profiler.enable")
      await session.post("Profiler.start")
    }
    if (heapFile !== undefined) {
      await session.post("HeapProfiler.enable")
      // what is collected young counts too: the garbage is what a wake costs the GC
      await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    }
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await Effect.runPromise(callAll(n, (i) => rt.send(`w-${i}`, { _tag: "Go" })))
    await done.promise
    const cpu = process.cpuUsage(cpu0)
    if (profileFile !== undefined) {
      const { profile } = await session.post("Profiler.stop")
      fs.writeFileSync(profileFile, JSON.stringify(profile))
    }
    if (heapFile !== undefined) {
      const { profile } = await session.post("HeapProfiler.stopSampling")
      fs.writeFileSync(heapFile, JSON.stringify(profile))
    }
    const seconds = (done.doneAt - t0) / 1000
    progress(`  wake: woke ${n} in ${seconds.toFixed(2)} s (${Math.round(n / seconds)}/s), CPU ${((cpu.user + cpu.system) / n).toFixed(1)} µs per wake`)
  })

export const main = async (args: Args) => {
  const n = args.n ?? 20_000
  const warm = args.warm ?? 2000
  const woken = Math.min(n, args.woken ?? n)
  const db = tempDb("wake")
  const done = new Countdown(woken)
  let warmed = 0
  const onTerminal = (s: Execution.Snapshot) => (s.id.startsWith("warm-") ? warmed++ : done.tick())
  const layer = runtimeLayer(args.store ?? "sqlite", db.file, { onTerminal }, { passivation: { enabled: true } })
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const rt = Context.get(yield* Layer.build(layer), Runtime.Runtime)
    // warm-up: started and woken, so that the measured phase runs on the JIT's code
    yield* callAll(warm, (i) => rt.start(Waiter, { i }, { id: `warm-${i}` }))
    yield* callAll(warm, (i) => rt.send(`warm-${i}`, { _tag: "Go" }))
    yield* Effect.promise(() => until(() => warmed >= warm, 5))
    yield* callAll(n, (i) => rt.start(Waiter, { i }, { id: `w-${i}` }))
    yield* Effect.promise(() => until(() => Effect.runSync(rt.activeCount) === 0, 20))
    yield* wakePhase(rt, woken, done, args.profile, args.heapProfile)
  })))
  db.remove()
}
