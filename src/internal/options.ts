/**
 * The options of the runtime's operations (`Runtime.layer`, `start`, `sendAndWait`,
 * `cancel`, `migrate`), as `Runtime.ts` documents and re-exports them.
 */
import type { Duration } from "effect"
import type { Plugin } from "../Plugin.js"
import type * as Procedure from "../Procedure.js"
import type * as Quotas from "./resilienceQuotas.js"

/**
 * Options of `Runtime.layer`.
 *
 * @inline
 */
export interface RuntimeOptions {
  readonly procedures: ReadonlyArray<Procedure.Any>
  /**
   * Declared moves of running executions between versions (`Procedure.migration`), checked
   * when the runtime is built and applied by `Runtime.migrate`. @default none
   */
  readonly migrations?: ReadonlyArray<Procedure.Migration> | undefined
  readonly supervision?: {
    /** restarts allowed within `within` before the execution is failed. @default 5 */
    readonly maxRestarts?: number | undefined
    /** @default "1 minute" */
    readonly within?: Duration.DurationInput | undefined
    /** first restart delay, doubled on each restart. @default "100 millis" */
    readonly backoff?: Duration.DurationInput | undefined
  } | undefined
  readonly passivation?: {
    /** let an execution that waits with no timer due within `horizon` leave memory. @default true */
    readonly enabled?: boolean | undefined
    /** @default "30 seconds" */
    readonly horizon?: Duration.DurationInput | undefined
  } | undefined
  /** resume non-terminal executions when the runtime starts. @default true */
  readonly recover?: boolean | undefined
  /** how many actors may load their execution from the store at once (recovery wakes many). @default 64 */
  readonly loadConcurrency?: number | undefined
  /**
   * Recovery resumes at most this many executions at once (running ones: a parked or
   * passivated execution leaves room); the rest start as those finish or wait, oldest first.
   * It bounds the memory a restart needs after a crash with a large backlog in flight
   * (15–20 KB of heap per running execution): the ids of the rest are read from the store
   * a page at a time, as the window has room. @default 100000
   */
  readonly recoverWindow?: number | undefined
  /**
   * Proctor's own spans (`proctor.start`, `proctor.execution`, `proctor.step`, ...). `false`
   * makes none, for speed; logs, metrics and the spans a step makes itself are unchanged.
   * @default true
   */
  readonly tracing?: boolean | undefined
  /**
   * Quotas on `start`, per tenant and per procedure: a start rate and a number of executions
   * under way; a start over one is refused with `QuotaExceeded` (see docs/production.md).
   * @default none
   */
  readonly quotas?: Quotas.QuotaOptions | undefined
  /** shown every committed change and accepted request, after the commit (see `Plugin`). @default none */
  readonly plugins?: ReadonlyArray<Plugin> | undefined
  /** events a `watch` subscriber may fall behind by before the oldest are dropped. @default 16384 */
  readonly watchBuffer?: number | undefined
  /**
   * History retention, applied in the background to executions that have ended (a live
   * execution keeps its whole history). @default keep everything
   */
  readonly retention?: {
    /** keep the last `keepLast` transitions of each ended execution */
    readonly keepLast?: number | undefined
    /** drop transitions older than this */
    readonly maxAge?: Duration.DurationInput | undefined
    /** how often to apply it. @default "1 hour" */
    readonly every?: Duration.DurationInput | undefined
  } | undefined
}

/**
 * Options of `Runtime.sendAndWait`.
 *
 * @inline
 */
export interface SendAndWaitOptions {
  /**
   * the snapshot `seq` the caller last saw: the event is refused (`VersionConflict`) if the
   * execution is at another seq when it is sent or when it is to be applied
   */
  readonly expectVersion?: number | undefined
  /** how long to wait for the event to be consumed or discarded (`SendTimeout`); the event still stands after it */
  readonly timeout?: Duration.DurationInput | undefined
}

/** @inline */
export interface CancelOptions {
  /** why: recorded on the history's `cancel` row (`Transition.reason`) */
  readonly reason?: string | undefined
}

/** @inline */
export interface MigrateOptions {
  /** the version to move the execution to: a migration from its version to this one must be declared */
  readonly to: number
}

/** @inline */
export interface MigrateAllOptions {
  /** the executions of this version (those not ended) */
  readonly from: number
  /** go to this version */
  readonly to: number
}

/** @inline */
export interface StartOptions {
  readonly id?: string | undefined
  readonly tenant?: string | undefined
  readonly parentId?: string | undefined
  /** starting twice with the same key returns the first execution's id */
  readonly idempotencyKey?: string | undefined
  /**
   * over a quota (`Runtime.layer({ quotas })`), wait up to this long for room instead of
   * failing at once with `QuotaExceeded`. @default no wait
   */
  readonly waitForQuota?: Duration.DurationInput | undefined
}
