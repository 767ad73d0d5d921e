/**
 * Dependencies: a named service that steps call (a payment API, a database), with the
 * protections the runtime puts in front of it: a circuit breaker, a bulkhead and a rate
 * limit. Steps name it (`Procedure.step({ dependency })`); every step naming it shares
 * one state per runtime (per process). See docs/production.md.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Schema } from "effect"

/**
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("proctor/Dependency")

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A circuit breaker: closed (calls go through and their outcomes are counted), open
 * (calls fail fast with `CircuitOpen` for `coolDown`), half-open (`probes` calls go
 * through; if they all succeed it closes, if one fails it opens again). It opens when
 * `consecutiveFailures` calls in a row failed, or when at least `failureRate` of the last
 * `window` calls failed (judged once `minimumCalls` calls are counted). A failure is an
 * attempt that failed with an error the step counts as transient, a defect, or a timeout;
 * a business error (not transient) is an answer, so it counts as a success. With neither
 * threshold given, it opens after 5 consecutive failures.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerOptions {
  /** open when this share (0 to 1) of the last `window` calls failed */
  readonly failureRate?: number | undefined
  /** how many recent calls `failureRate` is judged on. @default 20 */
  readonly window?: number | undefined
  /** calls counted before `failureRate` is judged. @default `window` */
  readonly minimumCalls?: number | undefined
  /** open after this many failures in a row. @default 5 when `failureRate` is not given */
  readonly consecutiveFailures?: number | undefined
  /** how long it stays open before probe calls go through */
  readonly coolDown: Duration.DurationInput
  /** how many calls go through while half-open; all must succeed to close it. @default 1 */
  readonly probes?: number | undefined
}

/**
 * A bulkhead: at most `concurrency` attempts of steps naming the dependency run at once;
 * up to `queue` more wait for their turn in order (the attempt's timeout runs meanwhile),
 * and one more fails at once with `BulkheadFull`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BulkheadOptions {
  readonly concurrency: number
  /** how many attempts may wait for a free slot. @default 0 */
  readonly queue?: number | undefined
}

/**
 * A rate limit on calls (a dependency's) or starts (a quota's):
 * - `tokenBucket`: bursts of up to `capacity` calls, refilled continuously at `refill.tokens`
 *   per `refill.every`;
 * - `slidingWindow`: at most `limit` calls in any span of `window`.
 *
 * @since 0.1.0
 * @category models
 */
export type RateLimit =
  | { readonly tokenBucket: { readonly capacity: number; readonly refill: { readonly tokens: number; readonly every: Duration.DurationInput } } }
  | { readonly slidingWindow: { readonly limit: number; readonly window: Duration.DurationInput } }

/**
 * What `make` takes: any of the three protections.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly breaker?: BreakerOptions | undefined
  readonly bulkhead?: BulkheadOptions | undefined
  /** a call waits for its turn (within the attempt's timeout), or fails with `RateLimited` if its turn comes later */
  readonly rateLimit?: RateLimit | undefined
}

/**
 * A named dependency. Make it once (`Dependency.make`) and give the same value to every
 * step that calls the service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Dependency {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly options: Options
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isDependency = (u: unknown): u is Dependency => typeof u === "object" && u !== null && TypeId in u

/**
 * Makes a dependency. Its options are checked when a runtime registers a procedure whose
 * steps name it (`DefinitionError`), and so is its name: two different dependencies of one
 * name are refused.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Dependency, Procedure } from "proctor"
 *
 * const Payments = Dependency.make("payments", {
 *   breaker: { consecutiveFailures: 5, coolDown: "30 seconds" },
 *   bulkhead: { concurrency: 10, queue: 100 },
 *   rateLimit: { tokenBucket: { capacity: 20, refill: { tokens: 10, every: "1 second" } } }
 * })
 *
 * const charge = Procedure.step({ dependency: Payments, run: () => Effect.void, next: "done" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: string, options: Options): Dependency => ({ [TypeId]: TypeId, name, options })

/**
 * The state of a circuit breaker.
 *
 * @since 0.1.0
 * @category models
 */
export const BreakerState = Schema.Literal("closed", "open", "half-open")

/**
 * @since 0.1.0
 * @category models
 */
export type BreakerState = typeof BreakerState.Type

/**
 * What `Runtime.dependencies` reports of one dependency, in this process: its breaker
 * (state, recent calls and failures, when it opened and when it lets probes through, in
 * epoch ms), its bulkhead (running and queued attempts), its rate limit (calls it would let
 * through now), and counts since the runtime started.
 *
 * @since 0.1.0
 * @category models
 */
export const Status = Schema.Struct({
  name: Schema.String,
  breaker: Schema.optional(Schema.Struct({
    state: BreakerState,
    /** calls counted in the failure-rate window, and how many of them failed */
    calls: Schema.Number,
    failures: Schema.Number,
    consecutiveFailures: Schema.Number,
    openedAt: Schema.optional(Schema.Number),
    /** when an open breaker lets probe calls through */
    probeAt: Schema.optional(Schema.Number),
    /** state changes since the runtime started */
    changes: Schema.Number
  })),
  bulkhead: Schema.optional(Schema.Struct({
    running: Schema.Number,
    queued: Schema.Number,
    concurrency: Schema.Number,
    queue: Schema.Number
  })),
  rateLimit: Schema.optional(Schema.Struct({
    kind: Schema.Literal("tokenBucket", "slidingWindow"),
    /** calls it would let through now without waiting */
    available: Schema.Number,
    /** the bucket's capacity, or the window's limit */
    limit: Schema.Number
  })),
  /** attempts that went through, that failed (as the breaker counts), and that were refused, by error */
  calls: Schema.Number,
  failures: Schema.Number,
  refused: Schema.Struct({ CircuitOpen: Schema.Number, BulkheadFull: Schema.Number, RateLimited: Schema.Number })
})

/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof Status.Type
