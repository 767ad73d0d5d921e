/**
 * The floor of W1's heap pass as heap snapshots (bench/cases/fiber.ts): N fibers forked
 * into a FiberSet, each parked on a Deferred, with a snapshot before and after, to compare
 * with bench/heapsnapshot.ts's by kind of object (bench/heapdiff.ts).
 *
 *   node --expose-gc --import tsx bench/heapfloor.ts 1000 /tmp/floor
 *   node --import tsx bench/heapdiff.ts /tmp/floor/before.heapsnapshot /tmp/floor/after.heapsnapshot 1000
 */
import { Deferred, Effect, Exit, FiberId, FiberSet } from "effect"
import * as path from "node:path"
import * as v8 from "node:v8"
import { gc, heapAfterGc } from "./lib/child.js"

const n = Number(process.argv[2] ?? 1000)
const dir = process.argv[3] ?? "."
const gate = Deferred.unsafeMake<void>(FiberId.none)
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const set = yield* FiberSet.make()
  const fork = yield* FiberSet.runtime(set)<never>()
  const base = heapAfterGc()
  v8.writeHeapSnapshot(path.join(dir, "before.heapsnapshot"))
  for (let i = 0; i < n; i++) fork(Deferred.await(gate))
  yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
  const per = (heapAfterGc() - base) / n
  gc()
  v8.writeHeapSnapshot(path.join(dir, "after.heapsnapshot"))
  process.stdout.write(`N=${n}: ${Math.round(per)} B per fiber\n`)
  Deferred.unsafeDone(gate, Exit.void)
})))
