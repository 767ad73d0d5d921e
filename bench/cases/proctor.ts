/**
 * Proctor in a child process: W1 (throughput), W2 (idle), W3 (latency), W5 (supervision).
 *
 *   node --expose-gc --import tsx bench/worker.ts proctor '{"workload":"w1","store":"memory","sizes":[1000]}'
 */
import type { Duration } from "effect"
import { Context, Deferred, Effect, Exit, Fiber, FiberId, Layer } from "effect"
import type { Execution, Store as StoreNs } from "proctor"
import { Runtime } from "proctor"
import { bestNote, bestOf, gc, heapAfterGc, peakRssMb, progress, reporter, rssMb, until } from "../lib/child.js"
import type { Hooks, StoreKind } from "../lib/proctor.js"
import { Countdown, Linear10, probe, runtimeLayer, STEPS, storeLabel, tempDb, Waiter } from "../lib/proctor.js"
import { Histogram, round } from "../lib/stats.js"

export interface Args {
  readonly workload: "w1" | "w2" | "w3" | "w5"
  readonly store: StoreKind
  readonly sizes: ReadonlyArray<number>
  /** W1: also measure heap per in-flight execution (a second pass with a barrier), at these sizes */
  readonly heap?: ReadonlyArray<number>
  /** W2: passivation on or off */
  readonly passivation?: boolean
  /** W3: samples at low load, samples under load, executions in flight as load */
  readonly samples?: number
  readonly loadedSamples?: number
  readonly load?: number
  /** W5: one defect per `every` executions; supervision backoff */
  readonly every?: number
  /** W5: also run with a 1 ms restart backoff. @default true */
  readonly shortBackoff?: boolean
  /** an unreported pass of this many executions first, so that the JIT has warmed up */
  readonly warmup?: number
  /** W1: run each size up to `reps` times (while under `repBudget` seconds) and keep the fastest */
  readonly reps?: number
  readonly repBudget?: number
}

const run = <A>(layer: Layer.Layer<Runtime.Runtime, unknown>, body: (runtime: Runtime.RuntimeService) => Promise<A>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const runtime = Context.get(yield* Layer.build(layer), Runtime.Runtime)
        return yield* Effect.promise(() => body(runtime))
      })
    )
  )

const exec = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/**
 * Calls `call(i)` for i in 0..n-1 from `CALLERS` fibers, each making its share of the
 * calls one after another, as a server's request handlers would. (With a fiber per call,
 * `Effect.all(..., { concurrency: "unbounded" })`, the driver took a large share of the
 * time measured: see docs/benchmarks.md, Method.) 256 callers keep the SQLite store's
 * group commit fed.
 */
const CALLERS = 256
const callAll = (n: number, call: (i: number) => Effect.Effect<unknown, unknown>) =>
  exec(Effect.all(
    Array.from({ length: Math.min(n, CALLERS) }, (_, w) =>
      Effect.gen(function*() {
        for (let i = w; i < n; i += CALLERS) yield* call(i)
      })),
    { concurrency: "unbounded", discard: true }
  ))

/** starts executions 0..n-1 of `Linear10`, all at once */
const startAll = (runtime: Runtime.RuntimeService, n: number, id?: (i: number) => string) =>
  callAll(n, (i) => runtime.start(Linear10, { i }, id === undefined ? undefined : { id: id(i) }))

// ---------------------------------------------------------------------------------------
// W1: N executions of ten no-op steps, all at once

type Options = Omit<Runtime.Options, "procedures">

/** one pass of W1 at size n: returns its seconds (start of the first `start` to the last terminal commit) */
const throughputPass = async (kind: StoreKind, n: number, system: string, hooks: Hooks, options?: Options, quiet?: boolean) => {
  const db = tempDb(`w1-${n}`)
  probe.reset(n)
  const done = new Countdown(n)
  const layer = runtimeLayer(kind, db.file, { ...hooks, onTerminal: done.tick }, options, quiet)
  gc()
  progress(`  ${system}: N=${n} starting`)
  let t0 = 0
  let cpu = process.cpuUsage()
  await run(layer, async (runtime) => {
    t0 = performance.now()
    const cpu0 = process.cpuUsage()
    await startAll(runtime, n)
    progress(`  ${system}: N=${n} all started after ${Math.round(performance.now() - t0)} ms`)
    await done.promise
    // CPU time moves less than the wall clock when other work shares the machine
    cpu = process.cpuUsage(cpu0)
  })
  progress(`  ${system}: N=${n} CPU ${round((cpu.user + cpu.system) / (n * STEPS))} µs per transition (user + system, the whole process)`)
  db.remove()
  return (done.doneAt - t0) / 1000
}

/** W1's heap pass: every execution holds in step 5 until all are there; then the heap is measured */
const heapPass = async (kind: StoreKind, n: number, options?: Options) => {
  const db = tempDb(`w1h-${n}`)
  probe.reset(n)
  probe.gateAt = 5
  const gate = probe.gate = Deferred.unsafeMake<void>(FiberId.none)
  const finished = new Countdown(n)
  let perExecution = 0
  await run(runtimeLayer(kind, db.file, { onTerminal: finished.tick }, options), async (runtime) => {
    const base = heapAfterGc()
    await startAll(runtime, n)
    await until(() => probe.arrivals >= n)
    perExecution = (heapAfterGc() - base) / n
    Deferred.unsafeDone(gate, Exit.void)
    await finished.promise
  })
  db.remove()
  return perExecution
}

const w1 = async (args: Args) => {
  const system = `Proctor ${storeLabel(args.store)}`
  const out = reporter("W1", system)
  if (args.warmup !== undefined && args.warmup > 0) await throughputPass(args.store, args.warmup, `${system} (warm-up)`, {})
  for (const n of args.sizes) {
    const { overhead, runs, seconds } = await bestOf(args.reps ?? 1, args.repBudget ?? 20, async () => {
      const seconds = await throughputPass(args.store, n, system, {})
      progress(`  ${system}: N=${n} done in ${round(seconds)} s: ${Math.round((n * STEPS) / seconds)} transitions/s`)
      return { seconds, overhead: probe.overhead }
    })
    const transitions = n * STEPS
    const note = bestNote(runs)
    out(n, "executions/s", round(n / seconds), "1/s", note)
    out(n, "transitions/s", round(transitions / seconds), "1/s", note)
    out(n, "overhead p50", round(overhead.quantile(0.5)), "ms", note)
    out(n, "overhead p99", round(overhead.quantile(0.99)), "ms", note)
    out(n, "peak RSS", round(peakRssMb()), "MB", "of the child process so far (sizes run in ascending order)")
    if (args.heap?.includes(n) === true) {
      const perExecution = await heapPass(args.store, n)
      out(n, "heap per in-flight execution", round(perExecution), "B", "all N held in step 5 of 10, after a full GC")
      progress(`  ${system}: N=${n} heap ${Math.round(perExecution)} B per in-flight execution`)
    }
    gc()
  }
}

// ---------------------------------------------------------------------------------------
// W2: N executions waiting for an event; memory; then one event each

const w2 = async (args: Args, system: string) => {
  const out = reporter("W2", system)
  for (const n of args.sizes) {
    const db = tempDb(`w2-${n}`)
    const done = new Countdown(n)
    const options = { passivation: { enabled: args.passivation ?? true } }
    let warmed = 0
    const onTerminal = (snapshot: Execution.Snapshot) => (snapshot.id.startsWith("warm-") ? warmed++ : done.tick())
    const layer = runtimeLayer(args.store, db.file, { onTerminal }, options)
    const rss0 = rssMb()
    await run(layer, async (runtime) => {
      // warm-up: 500 executions started and woken, so that the baseline has the JIT's code and the caches
      await callAll(500, (i) => runtime.start(Waiter, { i }, { id: `warm-${i}` }))
      await callAll(500, (i) => runtime.send(`warm-${i}`, { _tag: "Go" }))
      await until(() => warmed >= 500, 5)
      const base = heapAfterGc()
      const rssBase = rssMb()
      progress(`  ${system}: N=${n} starting`)
      const t0 = performance.now()
      const chunk = 100_000
      for (let from = 0; from < n; from += chunk) {
        await callAll(Math.min(chunk, n - from), (i) => runtime.start(Waiter, { i: from + i }, { id: `w-${from + i}` }))
        if (n > chunk) progress(`  ${system}: ${from + chunk} started`)
      }
      const startSeconds = (performance.now() - t0) / 1000
      // let actors reach their wait (and passivate)
      await until(() => Effect.runSync(runtime.activeCount) === (args.passivation === false ? n : 0), 20)
      const heap = heapAfterGc() - base
      const rss = rssMb()
      const active = Effect.runSync(runtime.activeCount)
      progress(`  ${system}: N=${n} waiting: heap +${Math.round(heap / 1048576)} MB, RSS ${Math.round(rss)} MB, ${active} actors in memory`)
      out(n, "start rate", round(n / startSeconds), "1/s")
      out(n, "heap per waiting execution", round(heap / n), "B", `${active} actors in memory; after a full GC`)
      out(n, "RSS per waiting execution", round(((rss - rssBase) * 1048576) / n), "B")
      out(n, "RSS", round(rss), "MB", `whole process, ${n} waiting (before any started: ${Math.round(rss0)} MB)`)
      const t1 = performance.now()
      const cpu0 = process.cpuUsage()
      await callAll(n, (i) => runtime.send(`w-${i}`, { _tag: "Go" }))
      await done.promise
      const cpu = process.cpuUsage(cpu0)
      const wake = (done.doneAt - t1) / 1000
      progress(`  ${system}: N=${n} woke all in ${round(wake)} s, CPU ${round((cpu.user + cpu.system) / n)} µs per wake`)
      out(n, "wake all (one event each)", round(wake), "s")
      out(n, "wake rate", round(n / wake), "1/s")
    })
    out(n, "peak RSS", round(peakRssMb()), "MB")
    db.remove()
    gc()
  }
}

// ---------------------------------------------------------------------------------------
// W3: latency of start -> first step, and send -> the transition it causes

const w3 = async (args: Args, system: string) => {
  const out = reporter("W3", system)
  const loadN = args.load ?? 10_000
  for (const loaded of [false, true]) {
    const samples = loaded ? args.loadedSamples ?? 50 : args.samples ?? 500
    const label = loaded ? `under W1 load (${loadN} executions in flight)` : "low load"
    const db = tempDb("w3")
    const startLat = new Histogram()
    const startCall = new Histogram()
    const doneLat = new Histogram()
    const sendLat = new Histogram()
    let sentAt = 0
    let startedAt = 0
    let finished = Deferred.unsafeMake<void>(FiberId.none)
    let signal = Deferred.unsafeMake<void>(FiberId.none)
    // W1 executions use probe slots 0..loadN-1 (reused), the start probes loadN..loadN+samples-1
    probe.reset(loadN + samples)
    probe.onFirst = (i) => {
      if (i >= loadN) Deferred.unsafeDone(signal, Exit.void)
    }
    let completed = 0
    const firstDone = Deferred.unsafeMake<void>(FiberId.none)
    const hooks: Hooks = {
      onTransition: (t: Execution.Transition) => {
        if (t.cause === "event:Go") {
          sendLat.record(performance.now() - sentAt)
          Deferred.unsafeDone(signal, Exit.void)
        }
      },
      // a probe's ten steps all committed (at low load only: under load it is the queue's length)
      onTerminal: (snapshot: Execution.Snapshot) => {
        if (loaded || snapshot.procedure !== Linear10.name || (snapshot.context as { readonly i: number }).i < loadN) return
        doneLat.record(performance.now() - startedAt)
        Deferred.unsafeDone(finished, Exit.void)
      }
    }
    await run(runtimeLayer(args.store, db.file, hooks), (runtime) =>
      Effect.runPromise(Effect.gen(function*() {
        // the load, a closed loop: loadN fibers each start an execution, await its end, start another
        const load = yield* Effect.fork(Effect.forEach(
          Array.from({ length: loaded ? loadN : 0 }, (_, i) => i),
          (i) => Effect.forever(Effect.flatMap(runtime.start(Linear10, { i }), (id) =>
            Effect.map(runtime.await(id), () => {
              if (completed++ === 0) Deferred.unsafeDone(firstDone, Exit.void)
            }))),
          { concurrency: "unbounded", discard: true }
        ))
        // (no timers while the load runs: a busy Effect scheduler starves setTimeout, see docs/benchmarks.md)
        if (loaded) yield* Deferred.await(firstDone)
        const probesStart = performance.now()
        // the probes, one at a time and in the same scheduler as the load: a start, then an event
        for (let k = 0; k < samples; k++) {
          const i = loadN + k
          signal = Deferred.unsafeMake<void>(FiberId.none)
          finished = Deferred.unsafeMake<void>(FiberId.none)
          const t0 = startedAt = performance.now()
          yield* runtime.start(Linear10, { i })
          startCall.record(performance.now() - t0)
          yield* Deferred.await(signal)
          startLat.record(probe.firstStep[i]! - t0)
          if (!loaded) yield* Deferred.await(finished)
          const id = yield* runtime.start(Waiter, { i: k })
          // at low load, let the execution passivate, as an event usually finds it
          if (!loaded) yield* Effect.sleep("1 millis")
          signal = Deferred.unsafeMake<void>(FiberId.none)
          sentAt = performance.now()
          yield* runtime.send(id, { _tag: "Go" })
          yield* Deferred.await(signal)
        }
        const probesDone = performance.now()
        yield* Fiber.interrupt(load)
        if (loaded) progress(`  ${system}: probes took ${Math.round(probesDone - probesStart)} ms, stopping the load ${Math.round(performance.now() - probesDone)} ms`)
      }))
    )
    if (loaded) progress(`  ${system}: ${completed} W1 executions finished while the probes ran`)
    const n = loaded ? loadN : 0
    for (
      const [metric, h] of [
        ["start -> first step", startLat],
        ["start() returns", startCall],
        ...(loaded ? [] : [["start -> all 10 steps committed", doneLat] as const]),
        ["send -> transition committed", sendLat]
      ] as const
    ) {
      out(n, `${metric} p50`, round(h.quantile(0.5)), "ms", `${label}, ${h.count} samples`)
      out(n, `${metric} p99`, round(h.quantile(0.99)), "ms", `${label}, ${h.count} samples`)
      progress(`  ${system} ${label}: ${metric} p50 ${round(h.quantile(0.5))} ms p99 ${round(h.quantile(0.99))} ms (${h.count})`)
    }
    db.remove()
  }
}

// ---------------------------------------------------------------------------------------
// W5: W1 with one runtime defect per `every` executions, against W1 without, in one process

/** the 5th commit (s4 -> s5) of every `every`-th execution dies, once; the supervisor restarts its actor */
const defects = (every: number, count: { n: number }): Hooks => {
  const failed = new Set<number>()
  return {
    intercept: (commit: StoreNs.Commit) => {
      const t = commit.transition
      if (t === undefined || t.seq !== 5) return undefined
      const i = (commit.snapshot.context as { readonly i: number }).i
      if (i % every !== 0 || failed.has(i)) return undefined
      failed.add(i)
      count.n++
      return Effect.die(new Error("injected store defect"))
    }
  }
}

const w5 = async (args: Args) => {
  const every = args.every ?? 1000
  const base = `Proctor ${storeLabel(args.store)}`
  const all: ReadonlyArray<{ label: string; defects: boolean; backoff?: Duration.DurationInput }> = [
    { label: `${base}, no defects`, defects: false },
    { label: `${base}, 1 defect per ${every} executions (restart backoff 100 ms, the default)`, defects: true },
    { label: `${base}, 1 defect per ${every} executions (restart backoff 1 ms)`, defects: true, backoff: "1 millis" }
  ]
  const variants = args.shortBackoff === false ? all.slice(0, 2) : all
  if (args.warmup !== undefined && args.warmup > 0) await throughputPass(args.store, args.warmup, `${base} (warm-up)`, {})
  for (const n of args.sizes) {
    for (const v of variants) {
      const count = { n: 0 }
      const options: Options | undefined = v.backoff === undefined ? undefined : { supervision: { backoff: v.backoff } }
      // the runtime logs each restart as a warning: quiet here (it would flood the bench's output)
      const seconds = await throughputPass(args.store, n, v.label, v.defects ? defects(every, count) : {}, options, true)
      const out = reporter("W5", v.label)
      out(n, "transitions/s", round((n * STEPS) / seconds), "1/s", `${count.n} defects injected`)
      out(n, "executions/s", round(n / seconds), "1/s")
      out(n, "overhead p99", round(probe.overhead.quantile(0.99)), "ms")
      progress(`  ${v.label}: N=${n} ${Math.round((n * STEPS) / seconds)} transitions/s, ${count.n} restarts`)
    }
  }
}

export const main = async (args: Args) => {
  const system = `Proctor ${storeLabel(args.store)}`
  switch (args.workload) {
    case "w1":
      return w1(args)
    case "w2":
      return w2(args, `${system}, passivation ${args.passivation === false ? "off" : "on"}`)
    case "w3":
      return w3(args, system)
    case "w5":
      return w5(args)
  }
}
