/**
 * W4, recovery. Two phases, each its own process, on one SQLite file:
 *
 * - `load`: starts N executions of the ten-step procedure; step 5 holds every execution
 *   (a gate that never opens), so all N are in flight, `running`, with 4 steps committed.
 *   Once all N are held it prints `@@ready`; the orchestrator then SIGKILLs it.
 * - `recover`: opens the same file with a runtime whose step 5 holds nothing. The runtime
 *   resumes every `running` execution when its layer is built. Reports the time until all
 *   N are running again (each has re-entered step 5: the step in flight at the kill runs
 *   again, at least once), and until all N finished; both from the moment the runtime's
 *   layer starts building, and from the process start.
 */
import { Context, Deferred, Effect, FiberId, Layer } from "effect"
import { Runtime } from "proctor"
import { peakRssMb, progress, reporter, sleep, until } from "../lib/child.js"
import { Countdown, Linear10, probe, runtimeLayer } from "../lib/proctor.js"
import { round } from "../lib/stats.js"

interface Args {
  readonly phase: "load" | "recover"
  readonly file: string
  readonly n: number
  /** recover: stop once all are running again (to profile recovery alone) */
  readonly untilRunning?: boolean
}

const system = "Proctor SQLite (NORMAL)"

export const main = async (args: Args) => {
  const { file, n } = args
  probe.reset(n)
  probe.gateAt = 5
  if (args.phase === "load") {
    probe.gate = Deferred.unsafeMake<void>(FiberId.none)
    const layer = runtimeLayer("sqlite", file, {})
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const rt = Context.get(yield* Layer.build(layer), Runtime.Runtime)
          const chunk = 10_000
          for (let from = 0; from < n; from += chunk) {
            const starts = []
            for (let i = from; i < Math.min(n, from + chunk); i++) starts.push(rt.start(Linear10, { i }))
            yield* Effect.all(starts, { concurrency: "unbounded", discard: true })
            progress(`  load: ${Math.min(n, from + chunk)} started`)
          }
          yield* Effect.promise(() => until(() => probe.arrivals >= n, 20))
          process.stdout.write("@@ready\n")
          // hold until killed
          while (true) yield* Effect.promise(() => sleep(1000))
        })
      )
    )
    return
  }
  const out = reporter("W4", system)
  const finished = new Countdown(n)
  const layer = runtimeLayer("sqlite", file, { onTerminal: finished.tick })
  const t0 = performance.now()
  // CPU of the recovery itself (the process's, less what loading the modules took), and how
  // late the event loop ran meanwhile: figures that move less with the machine's load than the wall clock
  const cpu0 = process.cpuUsage()
  // the longest the event loop went without a turn (a 10 ms interval's gaps, and the one still open)
  let lastTick = performance.now()
  let longest = 0
  const ticker = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - lastTick)
    lastTick = now
  }, 10)
  ticker.unref()
  const recoveryCpu = () => {
    const cpu = process.cpuUsage(cpu0)
    return `CPU ${round((cpu.user + cpu.system) / 1e6)} s (user + system, since the layer started building), ` +
      `longest time without a turn of the event loop ${Math.round(Math.max(longest, performance.now() - lastTick))} ms`
  }
  if (args.untilRunning === true) {
    // at once, from the step: a busy runtime starves the timers a poll would need
    probe.onAllArrived = () => {
      progress(`  recover: all ${n} running again ${Math.round(performance.now() - t0)} ms after the layer started building, ${recoveryCpu()}`)
      process.exit(0)
    }
  }
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        yield* Layer.build(layer)
        const built = performance.now()
        progress(`  recover: runtime built in ${Math.round(built - t0)} ms`)
        yield* Effect.promise(() => until(() => probe.arrivals >= n, 2))
        const running = probe.allArrivedAt
        progress(`  recover: all ${n} running again ${Math.round(running - t0)} ms after the layer started building (by now: ${recoveryCpu()})`)
        yield* Effect.promise(() => finished.promise)
        const done = finished.doneAt
        progress(`  recover: all ${n} finished ${Math.round(done - t0)} ms after the layer started building`)
        const note = "from the moment Runtime.layer starts building (store open + recovery)"
        out(n, "runtime layer built", round((built - t0) / 1000), "s", note)
        out(n, "all running again", round((running - t0) / 1000), "s", note)
        out(n, "all finished", round((done - t0) / 1000), "s", note)
        out(n, "all running again, from process start", round(running / 1000), "s", "includes loading node modules")
        out(n, "all finished, from process start", round(done / 1000), "s", "includes loading node modules")
        out(n, "peak RSS", round(peakRssMb()), "MB", "of the recovering process")
      })
    )
  )
}
