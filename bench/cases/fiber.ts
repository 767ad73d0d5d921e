/**
 * The floor of W1's heap per in-flight execution for any runtime that gives each
 * execution an Effect fiber: N fibers forked into a FiberSet, each parked on a Deferred,
 * with nothing else (no store, no spans, no log annotations). Proctor runs each execution
 * in such a fiber; what it keeps above this figure is its own.
 */
import { Deferred, Effect, Exit, FiberId, FiberSet } from "effect"
import { heapAfterGc, progress, reporter } from "../lib/child.js"
import { round } from "../lib/stats.js"

const system = "Effect fiber parked on a Deferred (the floor)"

interface Args {
  readonly heap: ReadonlyArray<number>
}

export const main = async (args: Args) => {
  const report = reporter("W1", system)
  for (const n of args.heap) {
    const gate = Deferred.unsafeMake<void>(FiberId.none)
    const perFiber = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const set = yield* FiberSet.make()
      const fork = yield* FiberSet.runtime(set)<never>()
      const base = heapAfterGc()
      for (let i = 0; i < n; i++) fork(Deferred.await(gate))
      // let every fiber start and park
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      const per = (heapAfterGc() - base) / n
      Deferred.unsafeDone(gate, Exit.void)
      return per
    })))
    report(n, "heap per in-flight execution", round(perFiber), "B", "a fiber in a FiberSet, parked on a Deferred, after a full GC")
    progress(`  ${system}: N=${n} heap ${Math.round(perFiber)} B per fiber`)
  }
}
