/**
 * What a run needs before it loops, and the one attempt that runs in a fiber of its own:
 * loading an execution from the store (its committed snapshot, decoded context, and the
 * completed steps whose compensation has not run), and `detach` for compensations.
 */
import { Deferred, Effect, Either, Exit, FiberId, Option } from "effect"
import type { Fiber } from "effect"
import type { Restore } from "./actor.js"
import { isTerminal } from "../Execution.js"
import * as Deadlines from "./deadlines.js"
import { undoneByParent as undoneByParentOf } from "./regions.js"
import type { Cached, Handle } from "./handle.js"
import { Loaded } from "./handle.js"
import type { Shared } from "./shared.js"

export const make = (shared: Shared) => {
  const { store, loads, lookup, forkAttempt } = shared

  const loadMachine = (handle: Handle) =>
    Effect.suspend(() => handle.cached !== undefined ? Effect.succeed(handle.cached) : loads.withPermits(1)(load(handle)))

  const load = (handle: Handle) =>
    Effect.gen(function*() {
      const loaded = yield* store.get(handle.id)
      if (Option.isNone(loaded)) return undefined
      const compiled = lookup(loaded.value)
      if (compiled === undefined) return { missing: loaded.value } as const
      const decoded = compiled.decodeContext(loaded.value.context)
      if (Either.isLeft(decoded)) return yield* Effect.die(decoded.left)
      const completed: Array<{ readonly stepSeq: number; readonly state: string }> = []
      let reopened = false
      let undoneByParent = false
      if (compiled.compensable.size > 0) {
        const [history, done] = yield* Effect.all([store.history(handle.id), store.compensations(handle.id)])
        const finished = new Set(done.map((c) => c.stepSeq))
        if (loaded.value.status === "compensating") {
          reopened = history.some((t) => isTerminal(t.status))
          // a region its parent rolls back waits for the parent to run its compensations (its rollback row holds the parent's reason)
          const last = history.at(-1)
          undoneByParent = last?.cause === "rollback" && undoneByParentOf(loaded.value, last.reason)
        }
        for (const t of history) {
          if (t.cause === "step" && compiled.compensable.has(t.from) && !finished.has(t.seq)) {
            completed.push({ stepSeq: t.seq, state: t.from })
          }
        }
      }
      const cached: Cached = new Loaded(compiled, { snapshot: loaded.value, context: decoded.right }, completed)
      // undone after it ended (its end was counted then): see `Cached.reopened`
      if (reopened) cached.reopened = true
      if (undoneByParent) cached.undoneByParent = true
      // a child whose parent no longer waits for it (a crash came in between) ends first
      const end = yield* shared.children.orphanCommand(loaded.value)
      if (end !== undefined) handle.mailbox.offer({ _tag: "Command", input: end, reply: Deferred.unsafeMake(FiberId.none) })
      handle.cached = cached
      return cached
    })


  /**
   * Runs an attempt (a compensation) in a fiber of its own in the runtime's `attempts` set,
   * and waits for its exit interruptibly (within `limit`, if given): at the limit, or when
   * the run is interrupted, it stops waiting at once even when the attempt cannot be
   * interrupted (`Effect.uninterruptible`). The attempt is interrupted without waiting for
   * it, stays supervised in the set until it ends, and its late result goes nowhere. (A
   * step's attempt runs inline, which costs no fiber; `restartNow` stops waiting for it.) `setup` runs first in the attempt's fiber (its
   * span and log annotations). Call it from the uninterruptible run fiber: the fork and
   * the handler that interrupts the attempt are installed with no interruption between.
   */
  const detach = <A, E, T>(
    restore: Restore,
    setup: (fiber: Fiber.RuntimeFiber<unknown, unknown>, next: Effect.Effect<Exit.Exit<A, E>>) => Effect.Effect<Exit.Exit<A, E>>,
    attempt: Effect.Effect<A, E>,
    limit?: { readonly millis: number; readonly error: T }
  ): Effect.Effect<Exit.Exit<A, E | T>> => {
    const child = forkAttempt(Effect.withFiberRuntime<Exit.Exit<A, E>>((fiber) => setup(fiber, Effect.exit(attempt))))
    // an attempt that finished synchronously (a fast step) costs no wait
    const done = child.unsafePoll()
    if (done !== null) return Effect.succeed(Exit.flatten(done) as Exit.Exit<A, E>)
    const exited = Effect.map(child.await, (exit) => Exit.flatten(exit) as Exit.Exit<A, E>)
    const wait: Effect.Effect<Exit.Exit<A, E | T>> = limit === undefined
      ? exited
      : Effect.raceFirst(exited, Effect.as(Deadlines.sleepMillis(limit.millis), Exit.fail(limit.error)))
    return Effect.onExit(restore(wait), () => {
      if (child.unsafePoll() === null) child.unsafeInterruptAsFork(FiberId.none)
      return Effect.void
    })
  }

  return { loadMachine, detach }
}
