/**
 * Quotas on `Runtime.start`, per tenant and per procedure (`Runtime.layer({ quotas })`): a
 * start rate (token bucket or sliding window, kept in this process) and a number of
 * executions that have not ended (counted in the store, so it holds across restarts and,
 * on a shared store, across runners: a store that several processes share counts and
 * creates as one operation, `Store.createWithin`). A start over a quota is refused with
 * `QuotaExceeded` and when to retry, or waits for room up to the caller's `waitForQuota`.
 * Child executions (started by their parent's state) are not counted against the quotas.
 */
import { Clock, Data, Deferred, Duration, Effect, Either, Exit, FiberId } from "effect"
import type { RateLimit } from "../Dependency.js"
import { DefinitionError, QuotaExceeded } from "../Errors.js"
import type { StoreError } from "../Errors.js"
import type { ListFilter, Snapshot, Transition } from "../Execution.js"
import type { CreateLimit, StoreService } from "../Store.js"
import { sleepMillis } from "./deadlines.js"
import { quotaRefused } from "./metrics.js"
import { rateIssue } from "./resilience.js"
import type { Limiter } from "./resilienceLimits.js"
import { makeLimiter } from "./resilienceLimits.js"
import { statuses, terminal } from "./statuses.js"

/**
 * A quota: how fast executions may be started (`rate`), and how many may be under way at
 * once (`concurrent`: started and not ended, whatever their status, paused included).
 *
 * @inline
 */
export interface Quota {
  readonly rate?: RateLimit | undefined
  readonly concurrent?: number | undefined
}

/**
 * Quotas on starts: per tenant (`byTenant`, else `default` for any other tenant; a start
 * without a tenant has no tenant quota) and per procedure name (all its versions).
 *
 * @inline
 */
export interface QuotaOptions {
  readonly tenants?: {
    readonly default?: Quota | undefined
    readonly byTenant?: { readonly [tenant: string]: Quota } | undefined
  } | undefined
  readonly procedures?: { readonly [procedure: string]: Quota } | undefined
}

/** when a start refused for `concurrent` should look again (nothing says when an execution ends) */
const concurrentRetryMillis = 1000

const active = statuses.filter((s) => !terminal.has(s as never))

/** One quota's state: its rate limiter and the lock that makes count-then-create one step here. */
interface Slot {
  /** names the quota's lock in the store (`CreateLimit.key`) */
  readonly key: string
  readonly limiter: Limiter | undefined
  readonly concurrent: number | undefined
  readonly lock: Effect.Semaphore
  /** whose quota it is, for the error */
  readonly tenant: string | undefined
  /** the executions it counts */
  readonly filter: ListFilter
}

/** A count-and-create found a quota full: nothing was written (caught by `admit`). */
export class QuotaFull extends Data.TaggedError("QuotaFull")<{ readonly refusal: QuotaExceeded }> {}

/** How a start creates its execution when a quota counts it in the store (`undefined`: the store's `create`). */
export type Create = (snapshot: Snapshot, transition: Transition) => Effect.Effect<{ readonly created: boolean; readonly snapshot: Snapshot }, StoreError | QuotaFull>

export interface Quotas {
  /** runs `start` if the quotas that apply to it allow it; `start` creates its execution with the `Create` it is given */
  readonly admit: <A, E>(
    procedure: string,
    options: { readonly tenant?: string | undefined; readonly parentId?: string | undefined; readonly waitForQuota?: Duration.DurationInput | undefined } | undefined,
    start: (create: Create | undefined) => Effect.Effect<A, E | QuotaFull>
  ) => Effect.Effect<A, E | QuotaExceeded | StoreError>
  /** an execution ended: starts waiting for room look again */
  readonly ended: () => void
}

const quotaIssue = (where: string, quota: Quota): string | undefined => {
  if (quota.concurrent !== undefined && !(Number.isInteger(quota.concurrent) && quota.concurrent >= 1)) {
    return `\`${where}.concurrent\` must be a whole number of at least 1 (it is ${String(quota.concurrent)})`
  }
  return quota.rate === undefined ? undefined : rateIssue(`${where}.rate`, quota.rate)
}

export const make = (store: StoreService, options: QuotaOptions | undefined): Either.Either<Quotas, DefinitionError> => {
  const tenants = options?.tenants
  const procedures = options?.procedures ?? {}
  // a quota that cannot work is refused with the runtime, naming the option
  const quotas: Array<readonly [string, Quota, string]> = [
    ...(tenants?.default === undefined ? [] : [["quotas.tenants.default", tenants.default, "(every tenant)"] as const]),
    ...Object.entries(tenants?.byTenant ?? {}).map(([t, q]) => [`quotas.tenants.byTenant["${t}"]`, q, `(tenant ${t})`] as const),
    ...Object.entries(procedures).map(([p, q]) => [`quotas.procedures["${p}"]`, q, p] as const)
  ]
  for (const [where, quota, procedure] of quotas) {
    const issue = quotaIssue(where, quota)
    if (issue !== undefined) return Either.left(new DefinitionError({ procedure, reason: `Runtime.layer's ${issue}` }))
  }

  const slots = new Map<string, Slot>()
  const slotOf = (key: string, quota: Quota, tenant: string | undefined, filter: ListFilter) => {
    let slot = slots.get(key)
    if (slot === undefined) {
      slot = {
        key,
        limiter: quota.rate === undefined ? undefined : makeLimiter(quota.rate),
        concurrent: quota.concurrent,
        lock: Effect.unsafeMakeSemaphore(1),
        tenant,
        filter
      }
      slots.set(key, slot)
    }
    return slot
  }
  /** the quotas a start is subject to: its procedure's, then its tenant's (locks are taken in this order) */
  const slotsFor = (procedure: string, tenant: string | undefined): Array<Slot> => {
    const out: Array<Slot> = []
    if (Object.hasOwn(procedures, procedure)) out.push(slotOf(`p/${procedure}`, procedures[procedure]!, undefined, { procedure }))
    if (tenant !== undefined) {
      const byTenant = tenants?.byTenant
      const quota = byTenant !== undefined && Object.hasOwn(byTenant, tenant) ? byTenant[tenant] : tenants?.default
      if (quota !== undefined) out.push(slotOf(`t/${tenant}`, quota, tenant, { tenant }))
    }
    return out
  }

  let endedSignal = Deferred.unsafeMake<void>(FiberId.none)
  let waiting = 0
  const ended = () => {
    if (waiting === 0) return
    const signal = endedSignal
    endedSignal = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(signal, Exit.void)
  }

  const refusal = (procedure: string, slot: Slot, limit: "rate" | "concurrent", retryAfter: number) =>
    new QuotaExceeded({
      procedure,
      ...(slot.tenant === undefined ? {} : { tenant: slot.tenant }),
      limit,
      quota: limit === "rate" ? slot.limiter!.describe : `${slot.concurrent} execution${slot.concurrent === 1 ? "" : "s"} under way`,
      retryAfter: Duration.millis(retryAfter)
    })

  const full = (procedure: string, slot: Slot) => refusal(procedure, slot, "concurrent", concurrentRetryMillis)

  /**
   * The count and the create as one operation of the store, for a store that several
   * processes may share; `undefined` for one that a single process owns (the locks here
   * make the count and the create one step).
   */
  const createWithin = (procedure: string, counted: ReadonlyArray<Slot>): Create | undefined => {
    const inStore = store.createWithin
    if (inStore === undefined || counted.length === 0) return undefined
    const limits: ReadonlyArray<CreateLimit> = counted.map((slot) => ({ key: slot.key, ...slot.filter, max: slot.concurrent! }))
    return (snapshot, transition) =>
      Effect.flatMap(inStore(snapshot, transition, limits), (r) =>
        r._tag === "Created" ? Effect.succeed(r) : Effect.fail(new QuotaFull({ refusal: full(procedure, counted[r.limit]!) })))
  }

  /** one try: a start-rate turn from each quota now, then the counts and the start under the locks */
  const tryOnce = <A, E>(procedure: string, applied: ReadonlyArray<Slot>, start: (create: Create | undefined) => Effect.Effect<A, E | QuotaFull>, now: number) => {
    const taken: Array<Limiter> = []
    const giveBack = Effect.sync(() => {
      for (const limiter of taken) limiter.cancel(now)
    })
    for (const slot of applied) {
      if (slot.limiter === undefined) continue
      const turn = slot.limiter.reserve(now)
      if (turn > now) {
        slot.limiter.cancel(turn)
        return Effect.as(giveBack, Either.left(refusal(procedure, slot, "rate", turn - now)))
      }
      taken.push(slot.limiter)
    }
    const counted = applied.filter((slot) => slot.concurrent !== undefined)
    const create = createWithin(procedure, counted)
    const counts = create !== undefined
      ? Effect.map(start(create), Either.right)
      : Effect.gen(function*() {
        for (const slot of counted) {
          const under = yield* store.list({ ...slot.filter, status: active, limit: slot.concurrent! })
          if (under.length >= slot.concurrent!) return Either.left(full(procedure, slot))
        }
        return Either.right(yield* start(undefined))
      })
    const body = Effect.catchIf(counts, (e): e is QuotaFull => e instanceof QuotaFull, (e) => Effect.succeed(Either.left(e.refusal)))
    const locked = counted.reduce((inner, slot) => slot.lock.withPermits(1)(inner), body)
    // a start that did not happen gives its rate turns back
    return Effect.tap(Effect.onError(locked, () => giveBack), (result) => Either.isLeft(result) ? giveBack : Effect.void)
  }

  const admit = <A, E>(
    procedure: string,
    opts: Parameters<Quotas["admit"]>[1],
    start: (create: Create | undefined) => Effect.Effect<A, E | QuotaFull>
  ): Effect.Effect<A, E | QuotaExceeded | StoreError> => {
    // without a quota that counts it, a start cannot find one full
    if (opts?.parentId !== undefined) return start(undefined) as Effect.Effect<A, E>
    const applied = slotsFor(procedure, opts?.tenant)
    if (applied.length === 0) return start(undefined) as Effect.Effect<A, E>
    const wait = opts?.waitForQuota === undefined ? 0 : Duration.toMillis(Duration.decode(opts.waitForQuota))
    return Effect.gen(function*() {
      const until = (yield* Clock.currentTimeMillis) + wait
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const result = yield* tryOnce(procedure, applied, start, now)
        if (Either.isRight(result)) return result.right
        const refused = result.left
        const retryAfter = Duration.toMillis(refused.retryAfter)
        const room = until - now
        // a rate turn is known: wait only if it comes in time; room under `concurrent` may come any time
        if (refused.limit === "rate" ? retryAfter > room : room <= 0) {
          quotaRefused(refused.limit).unsafeUpdate(1, [])
          return yield* refused
        }
        if (refused.limit === "rate") {
          yield* sleepMillis(retryAfter)
          continue
        }
        waiting++
        yield* Effect.race(Deferred.await(endedSignal), sleepMillis(Math.min(room, retryAfter))).pipe(
          Effect.ensuring(Effect.sync(() => void waiting--))
        )
      }
    })
  }

  return Either.right({ admit, ended })
}
