/**
 * W1's heap pass with heap snapshots, to see what an in-flight execution keeps: N
 * executions of `Linear10` held in step 5, as in bench/cases/proctor.ts `heapPass`.
 * Writes a snapshot before the executions start and one when all of them hold;
 * bench/heapdiff.ts compares them per constructor (docs/benchmarks.md, "Heap per execution").
 *
 *   node --expose-gc --import tsx bench/heapsnapshot.ts 1000 /tmp/heap
 *   node --import tsx bench/heapdiff.ts /tmp/heap/before.heapsnapshot /tmp/heap/after.heapsnapshot 1000
 */
import { Context, Deferred, Effect, Exit, FiberId, Layer } from "effect"
import * as path from "node:path"
import * as v8 from "node:v8"
import { Runtime } from "proctor"
import { gc, heapAfterGc, until } from "./lib/child.js"
import { Countdown, Linear10, probe, runtimeLayer } from "./lib/proctor.js"

const n = Number(process.argv[2] ?? 1000)
const dir = process.argv[3] ?? "."
const warmup = Number(process.argv[4] ?? 2000)

const pass = (count: number, snapshots: boolean) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    probe.reset(count)
    probe.gateAt = 5
    const gate = probe.gate = Deferred.unsafeMake<void>(FiberId.none)
    const finished = new Countdown(count)
    const runtime = Context.get(yield* Layer.build(runtimeLayer("memory", "unused.db", { onTerminal: finished.tick }, undefined, true)), Runtime.Runtime)
    yield* Effect.promise(async () => {
      const base = heapAfterGc()
      if (snapshots) v8.writeHeapSnapshot(path.join(dir, "before.heapsnapshot"))
      await Effect.runPromise(Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) => runtime.start(Linear10, { i }), { concurrency: 256, discard: true }))
      await until(() => probe.arrivals >= count)
      const per = (heapAfterGc() - base) / count
      if (snapshots) {
        gc()
        v8.writeHeapSnapshot(path.join(dir, "after.heapsnapshot"))
        process.stdout.write(`N=${count}: ${Math.round(per)} B per in-flight execution\n`)
      }
      Deferred.unsafeDone(gate, Exit.void)
      await finished.promise
    })
  })))

if (warmup > 0) await pass(warmup, false)
await pass(n, true)
