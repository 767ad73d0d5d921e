/**
 * The counting parts of the resilience patterns, on a clock read in milliseconds: the two
 * rate limiters (token bucket, sliding window) and the bulkhead's slots and queue. The
 * limiters hand out turns: a caller reserves the next one (now, or a time to wait for) and
 * gives it back if it does not use it, so waiting callers are served in order and the
 * limit holds for them too.
 */
import { Deferred, Duration, Effect, Exit, FiberId } from "effect"
import type { RateLimit } from "../Dependency.js"

export interface Limiter {
  readonly kind: "tokenBucket" | "slidingWindow"
  /** the bucket's capacity, or the window's limit */
  readonly limit: number
  /** the rate in words, for messages ("10 per 1s") */
  readonly describe: string
  /** reserves the next turn: the time it comes, `now` or later */
  readonly reserve: (now: number) => number
  /** gives back a turn reserved for `at` and not used */
  readonly cancel: (at: number) => void
  /** turns free now */
  readonly available: (now: number) => number
}

const millis = (d: Duration.DurationInput) => Math.max(1, Math.round(Duration.toMillis(Duration.decode(d))))

export const makeLimiter = (rate: RateLimit): Limiter =>
  "tokenBucket" in rate
    ? tokenBucket(rate.tokenBucket.capacity, rate.tokenBucket.refill.tokens, millis(rate.tokenBucket.refill.every))
    : slidingWindow(rate.slidingWindow.limit, millis(rate.slidingWindow.window))

/**
 * A bucket of `capacity` tokens refilled continuously at `tokens` per `every` ms. It counts
 * in units of 1/every of a token (a token is `every` units, `tokens` units come back per ms)
 * so that the arithmetic stays in integers: a refill is never a rounding error early or late.
 */
const tokenBucket = (capacity: number, tokens: number, every: number): Limiter => {
  const full = capacity * every
  let units = full
  let last = -Infinity
  const refill = (now: number) => {
    if (now > last) {
      units = last === -Infinity ? full : Math.min(full, units + (now - last) * tokens)
      last = now
    }
  }
  return {
    kind: "tokenBucket",
    limit: capacity,
    describe: `${capacity} at once, refilled at ${tokens} per ${Duration.format(Duration.millis(every))}`,
    reserve: (now) => {
      refill(now)
      units -= every
      return units >= 0 ? now : now + Math.ceil(-units / tokens)
    },
    cancel: () => {
      units = Math.min(full, units + every)
    },
    available: (now) => {
      refill(now)
      return Math.max(0, Math.floor(units / every))
    }
  }
}

/**
 * At most `limit` turns in any span of `window` ms: the times of the turns given (past,
 * and reserved ones to come) in order; a new turn comes `window` after the `limit`-th
 * latest. A turn is never earlier than the ones reserved before it, so the list stays sorted.
 */
const slidingWindow = (limit: number, window: number): Limiter => {
  const times: Array<number> = []
  const prune = (now: number) => {
    let drop = 0
    while (drop < times.length && times[drop]! <= now - window) drop++
    if (drop > 0) times.splice(0, drop)
  }
  return {
    kind: "slidingWindow",
    limit,
    describe: `${limit} per ${Duration.format(Duration.millis(window))}`,
    reserve: (now) => {
      prune(now)
      const at = times.length < limit ? Math.max(now, times[times.length - 1] ?? now) : Math.max(now, times[times.length - limit]! + window)
      times.push(at)
      return at
    },
    cancel: (at) => {
      const i = times.lastIndexOf(at)
      if (i >= 0) times.splice(i, 1)
    },
    available: (now) => {
      prune(now)
      return Math.max(0, limit - times.length)
    }
  }
}

/**
 * `concurrency` slots and a queue of `queue` waiters, served in order. `acquire` takes a
 * slot, waits in the queue, or fails at once with `full()` when the queue is full; an
 * interrupted waiter leaves the queue (or passes on a slot handed to it meanwhile).
 */
export class Bulkhead {
  running = 0
  private readonly waiting: Array<Deferred.Deferred<void>> = []
  constructor(readonly concurrency: number, readonly queue: number) {}

  get queued() {
    return this.waiting.length
  }

  acquire<E>(full: () => E): Effect.Effect<void, E> {
    return Effect.suspend(() => {
      if (this.running < this.concurrency) {
        this.running++
        return Effect.void
      }
      if (this.waiting.length >= this.queue) return Effect.fail(full())
      const turn = Deferred.unsafeMake<void>(FiberId.none)
      this.waiting.push(turn)
      return Effect.onInterrupt(Deferred.await(turn), () =>
        Effect.sync(() => {
          const i = this.waiting.indexOf(turn)
          if (i >= 0) this.waiting.splice(i, 1)
          else this.release()
        }))
    })
  }

  /** frees a slot: the first waiter takes it over */
  release() {
    const next = this.waiting.shift()
    if (next === undefined) this.running--
    else Deferred.unsafeDone(next, Exit.void)
  }
}
