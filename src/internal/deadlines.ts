/**
 * Step timeouts for the whole runtime, kept by one fiber: adding and removing a
 * deadline is synchronous and costs no fiber, so a step that finishes in time pays
 * for a map insert and delete, not for a race of two fibers and a sleep.
 */
import { Clock, Deferred, Duration, Effect, Exit, FiberId } from "effect"

export interface Deadline {
  readonly at: number
  readonly fire: () => void
}

export interface Deadlines {
  readonly add: (deadline: Deadline) => void
  readonly remove: (deadline: Deadline) => void
  /** the fiber that fires deadlines; fork it into the runtime's scope */
  readonly run: Effect.Effect<never>
}

export const make = (): Deadlines => {
  const buckets = new Map<number, Set<Deadline>>()
  // a min-heap of the times that have (or had) a bucket
  const heap: Array<number> = []
  let planned = Infinity
  let wake = Deferred.unsafeMake<void>(FiberId.none)

  const push = (t: number) => {
    heap.push(t)
    let i = heap.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (heap[p]! <= t) break
      heap[i] = heap[p]!
      i = p
    }
    heap[i] = t
  }
  const pop = () => {
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      while (true) {
        const l = 2 * i + 1
        if (l >= heap.length) break
        const r = l + 1
        const c = r < heap.length && heap[r]! < heap[l]! ? r : l
        if (heap[c]! >= last) break
        heap[i] = heap[c]!
        i = c
      }
      heap[i] = last
    }
    return top
  }
  /** the earliest time with a live bucket, dropping emptied ones */
  const peek = () => {
    while (heap.length > 0 && !buckets.has(heap[0]!)) pop()
    return heap.length > 0 ? heap[0]! : Infinity
  }

  const add = (deadline: Deadline) => {
    let bucket = buckets.get(deadline.at)
    if (bucket === undefined) {
      bucket = new Set()
      buckets.set(deadline.at, bucket)
      // the heap keeps the times of emptied buckets until they reach its top; rebuild it
      // from the live ones before those outnumber them (a busy runtime empties one a ms)
      if (heap.length > 2 * buckets.size + 1024) {
        heap.length = 0
        for (const t of [...buckets.keys()].sort((a, b) => a - b)) heap.push(t)
      } else {
        push(deadline.at)
      }
      if (deadline.at < planned) {
        planned = deadline.at
        Deferred.unsafeDone(wake, Exit.void)
      }
    }
    bucket.add(deadline)
  }
  const remove = (deadline: Deadline) => {
    const bucket = buckets.get(deadline.at)
    if (bucket === undefined) return
    bucket.delete(deadline)
    if (bucket.size === 0) buckets.delete(deadline.at)
  }

  const run = Effect.gen(function*() {
    while (true) {
      const now = yield* Clock.currentTimeMillis
      for (let next = peek(); next <= now; next = peek()) {
        const bucket = buckets.get(next)!
        buckets.delete(next)
        pop()
        for (const d of bucket) d.fire()
      }
      planned = peek()
      wake = Deferred.unsafeMake<void>(FiberId.none)
      yield* planned === Infinity
        ? Deferred.await(wake) // owned by the runtime's scope; woken by `add`
        : Effect.race(Deferred.await(wake), Effect.sleep(Duration.millis(chunk(planned - now))))
    }
  }) as Effect.Effect<never>

  return { add, remove, run }
}

/**
 * The longest sleep a clock can be asked for: Effect's clock (like Node's `setTimeout`)
 * cannot set a timer longer than 2^31−1 ms (24.8 days) and never wakes from a longer one.
 */
export const maxSleepMillis = 2 ** 31 - 1

/** A delay cut to what one sleep can wait; the sleeper re-checks the clock when it wakes. */
export const chunk = (millis: number): number => Math.min(Math.max(0, millis), maxSleepMillis)

/** Sleeps until the clock reads `at` or later, in sleeps of at most `maxSleepMillis`. */
export const sleepUntil = (at: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    now >= at ? Effect.void : Effect.zipRight(Effect.sleep(Duration.millis(chunk(at - now))), sleepUntil(at)))

/** `Effect.sleep` for a computed delay of any length (a retry's backoff, a restart's). */
export const sleepMillis = (millis: number): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => sleepUntil(now + millis))
