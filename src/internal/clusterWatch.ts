/**
 * `watch(id)` on a `Cluster.layer` runtime: the execution's actor may run on another runner
 * (and move when runners come and go), whose in-memory events this one never sees. So the
 * watch follows the execution's committed history in the shared store: it reads the
 * transitions after the last one it emitted, at once when this runner's own actor commits
 * one (its local event is only the wake), else every `interval`. Every transition is
 * emitted once, in `seq` order, whichever runner committed it.
 */
import { Chunk, Effect, Option, Queue, Stream } from "effect"
import type { ExecutionEvent, Snapshot, Transition } from "../Execution.js"
import type { StoreService } from "../Store.js"

/** the transitions read at first; doubled while the oldest read is not the next one to emit */
const firstTail = 16

const eventOf = (procedure: string, t: Transition): ExecutionEvent => ({
  executionId: t.executionId,
  procedure,
  seq: t.seq,
  from: t.from,
  state: t.to,
  status: t.status,
  cause: t.cause,
  at: t.at
})

/** the transitions of `id` after `seq`, oldest first */
const after = (store: StoreService, id: string, seq: number): Effect.Effect<ReadonlyArray<Transition>> =>
  Effect.gen(function*() {
    for (let tail = firstTail;; tail *= 2) {
      const read = yield* store.history(id, { tail })
      if (read.length < tail || read[0]!.seq <= seq + 1) return read.filter((t) => t.seq > seq)
    }
  }).pipe(Effect.orElseSucceed((): ReadonlyArray<Transition> => []))

/**
 * The committed transitions of execution `id` from now on. `local` is this runner's own
 * stream of events (all executions); `interval` bounds how late a transition committed on
 * another runner is seen.
 */
export const follow = (
  store: StoreService,
  local: Stream.Stream<ExecutionEvent>,
  id: string,
  interval: number
): Stream.Stream<ExecutionEvent> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const wake = yield* Queue.sliding<void>(1)
    // subscribed before the first read, so that no local commit falls between them
    yield* Effect.forkScoped(Stream.runForEach(Stream.filter(local, (e) => e.executionId === id), () => Queue.offer(wake, undefined)))
    const first = yield* Effect.orElseSucceed(store.get(id), () => Option.none<Snapshot>())
    let last = Option.match(first, { onNone: () => 0, onSome: (s) => s.seq })
    let procedure = Option.match(first, { onNone: () => "", onSome: (s) => s.procedure })
    const next = Effect.gen(function*() {
      yield* Effect.race(Queue.take(wake), Effect.sleep(interval))
      const read = yield* after(store, id, last)
      if (read.length > 0 && procedure === "") {
        procedure = Option.match(yield* Effect.orElseSucceed(store.get(id), () => Option.none<Snapshot>()), { onNone: () => "", onSome: (s) => s.procedure })
      }
      if (read.length > 0) last = read[read.length - 1]!.seq
      return Chunk.fromIterable(read.map((t) => eventOf(procedure, t)))
    })
    return Stream.flattenChunks(Stream.repeatEffect(next))
  }))
