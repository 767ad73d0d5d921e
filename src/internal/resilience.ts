/**
 * The dependencies of a runtime (`Dependency.make`, named by steps): their registration
 * (options checked, one definition per name), the state each keeps in this process (its
 * breaker, bulkhead and rate limiter), the guard an attempt of a step naming one runs
 * through, and what `Runtime.dependencies` reports.
 *
 * The guard's order: the breaker first (an open one refuses without queueing), then a
 * bulkhead slot (waiting in its queue), then a rate-limit turn (waiting for it), then the
 * call. The attempt's timeout runs from before the guard, so it covers the waits; a turn
 * that would come after it is refused at once (`RateLimited`) instead of waited for.
 */
import { Clock, Duration, Effect, Either, Exit, Cause } from "effect"
import type { Dependency, RateLimit, Status } from "../Dependency.js"
import { BulkheadFull, CircuitOpen, DefinitionError, RateLimited } from "../Errors.js"
import type * as Procedure from "../Procedure.js"
import { walk } from "./compound.js"
import { sleepMillis } from "./deadlines.js"
import { durationIssue } from "./durations.js"
import { breakerChanges, dependencyRefused } from "./metrics.js"
import type { Outcome } from "./resilienceBreaker.js"
import { Breaker } from "./resilienceBreaker.js"
import type { Limiter } from "./resilienceLimits.js"
import { Bulkhead, makeLimiter } from "./resilienceLimits.js"

/** the errors of the guard: the runtime's, not the step's; always transient for it */
export const guardTags: ReadonlySet<string> = new Set(["CircuitOpen", "BulkheadFull", "RateLimited"])

/** One dependency's state in this process. */
class State {
  readonly breaker: Breaker | undefined
  readonly bulkhead: Bulkhead | undefined
  readonly limiter: Limiter | undefined
  calls = 0
  failures = 0
  readonly refused = { CircuitOpen: 0, BulkheadFull: 0, RateLimited: 0 }
  constructor(readonly dependency: Dependency) {
    const { breaker, bulkhead, rateLimit } = dependency.options
    const window = breaker?.window ?? 20
    this.breaker = breaker === undefined ? undefined : new Breaker({
      failureRate: breaker.failureRate,
      window,
      minimumCalls: breaker.minimumCalls ?? window,
      consecutiveFailures: breaker.consecutiveFailures ?? (breaker.failureRate === undefined ? 5 : undefined),
      coolDown: Duration.toMillis(Duration.decode(breaker.coolDown)),
      probes: breaker.probes ?? 1
    })
    this.bulkhead = bulkhead === undefined ? undefined : new Bulkhead(bulkhead.concurrency, bulkhead.queue ?? 0)
    this.limiter = rateLimit === undefined ? undefined : makeLimiter(rateLimit)
  }
}

export interface Registry {
  /** runs one attempt of a step naming `dependency` through its guard */
  readonly guard: <A, E>(
    dependency: Dependency,
    call: Effect.Effect<A, E>,
    /** when the attempt times out (ms, on the runtime's clock) */
    deadline: number,
    isTransient: (error: unknown) => boolean
  ) => Effect.Effect<A, E | CircuitOpen | BulkheadFull | RateLimited>
  readonly status: Effect.Effect<ReadonlyArray<Status>>
}

const count = (field: string, n: unknown, min: number) =>
  typeof n === "number" && Number.isInteger(n) && n >= min ? undefined : `\`${field}\` must be a whole number of at least ${min} (it is ${String(n)})`

const positive = (field: string, input: Duration.DurationInput) => {
  const issue = durationIssue(input)
  if (issue !== undefined) return `\`${field}\` ${issue}`
  return Duration.toMillis(Duration.decode(input)) >= 1 ? undefined : `\`${field}\` must be at least 1 millisecond`
}

/** What is wrong with a rate limit's options (of a dependency, of a quota), if anything. */
export const rateIssue = (field: string, rate: RateLimit): string | undefined => {
  if ("tokenBucket" in rate) {
    return count(`${field}.tokenBucket.capacity`, rate.tokenBucket.capacity, 1) ??
      count(`${field}.tokenBucket.refill.tokens`, rate.tokenBucket.refill?.tokens, 1) ??
      positive(`${field}.tokenBucket.refill.every`, rate.tokenBucket.refill?.every)
  }
  if ("slidingWindow" in rate) {
    return count(`${field}.slidingWindow.limit`, rate.slidingWindow.limit, 1) ?? positive(`${field}.slidingWindow.window`, rate.slidingWindow.window)
  }
  return `\`${field}\` must be { tokenBucket: ... } or { slidingWindow: ... }`
}

/** What is wrong with a dependency's options, if anything (the first issue). */
const issueOf = (d: Dependency): string | undefined => {
  const { breaker, bulkhead, rateLimit } = d.options
  const issues: Array<string | undefined> = []
  if (breaker !== undefined) {
    const rate = breaker.failureRate
    if (rate !== undefined && !(typeof rate === "number" && rate > 0 && rate <= 1)) issues.push(`\`breaker.failureRate\` must be above 0 and at most 1 (it is ${String(rate)})`)
    if (breaker.window !== undefined) issues.push(count("breaker.window", breaker.window, 1))
    if (breaker.minimumCalls !== undefined) {
      issues.push(count("breaker.minimumCalls", breaker.minimumCalls, 1))
      if (breaker.minimumCalls > (breaker.window ?? 20)) issues.push("`breaker.minimumCalls` cannot be more than `breaker.window` (20 by default)")
    }
    if (breaker.consecutiveFailures !== undefined) issues.push(count("breaker.consecutiveFailures", breaker.consecutiveFailures, 1))
    if (breaker.probes !== undefined) issues.push(count("breaker.probes", breaker.probes, 1))
    issues.push(positive("breaker.coolDown", breaker.coolDown))
  }
  if (bulkhead !== undefined) {
    issues.push(count("bulkhead.concurrency", bulkhead.concurrency, 1))
    if (bulkhead.queue !== undefined) issues.push(count("bulkhead.queue", bulkhead.queue, 0))
  }
  if (rateLimit !== undefined) issues.push(rateIssue("rateLimit", rateLimit))
  return issues.find((i) => i !== undefined)
}

/**
 * The dependencies the steps of `procedures` name, checked: their options, and one
 * definition per name (the same `Dependency.make` value in every step).
 */
export const make = (procedures: Iterable<Procedure.Any>): Either.Either<Registry, DefinitionError> => {
  const states = new Map<string, State>()
  for (const def of procedures) {
    for (const [path, state] of walk(def.states)) {
      if (state._tag !== "Step" || state.dependency === undefined) continue
      const d = state.dependency
      const known = states.get(d.name)
      if (known !== undefined) {
        if (known.dependency === d) continue
        return Either.left(new DefinitionError({
          procedure: def.name,
          state: path,
          reason: `another dependency named "${d.name}" is registered already, with its own options; make each dependency ` +
            `once with Dependency.make and give that value to every step that calls it`
        }))
      }
      const issue = issueOf(d)
      if (issue !== undefined) return Either.left(new DefinitionError({ procedure: def.name, state: path, reason: `dependency "${d.name}": ${issue}` }))
      states.set(d.name, new State(d))
    }
  }
  return Either.right(registry(states))
}

const registry = (states: Map<string, State>): Registry => {
  const refuse = <E extends CircuitOpen | BulkheadFull | RateLimited>(s: State, error: E) => {
    s.refused[error._tag]++
    dependencyRefused(s.dependency.name, error._tag).unsafeUpdate(1, [])
    return Effect.fail(error)
  }
  const changed = (s: State, change: { readonly from: string; readonly to: string; readonly reason: string } | undefined) => {
    if (change === undefined) return Effect.void
    breakerChanges(s.dependency.name, change.to).unsafeUpdate(1, [])
    const text = `Circuit breaker of dependency "${s.dependency.name}": ${change.from} -> ${change.to} (${change.reason})`
    return Effect.annotateLogs(change.to === "open" ? Effect.logWarning(text) : Effect.logInfo(text), "dependency", s.dependency.name)
  }

  const guard = <A, E>(dependency: Dependency, call: Effect.Effect<A, E>, deadline: number, isTransient: (error: unknown) => boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<A, E | CircuitOpen | BulkheadFull | RateLimited> => {
      const s = states.get(dependency.name)!
      const name = dependency.name
      let probe = false
      let logged: Effect.Effect<void> = Effect.void
      if (s.breaker !== undefined) {
        const admission = s.breaker.admit(now)
        if (admission._tag === "Refused") return refuse(s, new CircuitOpen({ dependency: name, retryAfter: Duration.millis(admission.retryAfter) }))
        probe = admission.probe
        logged = changed(s, admission.change)
      }
      // whether the call reached the dependency: only then does its outcome count
      let started = false
      const called = Effect.suspend(() => {
        started = true
        s.calls++
        return call
      })
      type Guarded = Effect.Effect<A, E | CircuitOpen | BulkheadFull | RateLimited>
      const limited: Guarded = s.limiter === undefined ? called : Effect.flatMap(Clock.currentTimeMillis, (at): Guarded => {
        const turn = s.limiter!.reserve(at)
        if (turn === at) return called
        if (turn > deadline) {
          s.limiter!.cancel(turn)
          return refuse(s, new RateLimited({ dependency: name, retryAfter: Duration.millis(turn - at) }))
        }
        return Effect.zipRight(Effect.onInterrupt(sleepMillis(turn - at), () => Effect.sync(() => s.limiter!.cancel(turn))), called)
      })
      const bulkhead = s.bulkhead
      const guarded: Guarded = bulkhead === undefined ? limited : Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(bulkhead.acquire(() => new BulkheadFull({ dependency: name, concurrency: bulkhead.concurrency, queue: bulkhead.queue }))).pipe(
            Effect.catchAll((full): Effect.Effect<never, BulkheadFull> => refuse(s, full))
          ),
          Effect.ensuring(restore(limited), Effect.sync(() => bulkhead.release()))
        ))
      const breaker = s.breaker
      const counted = Effect.onExit(guarded, (exit) =>
        Effect.flatMap(Clock.currentTimeMillis, (end) => {
          const outcome = outcomeOf(exit, started, end >= deadline, isTransient)
          if (outcome === "failure") s.failures++
          return breaker === undefined ? Effect.void : changed(s, breaker.record(end, probe, outcome))
        }))
      return Effect.zipRight(logged, counted)
    })

  const status = Effect.map(Clock.currentTimeMillis, (now) =>
    [...states.values()].map((s): Status => {
      const b = s.breaker
      // an open breaker whose cool-down has ended lets the next call probe: show it as it will act
      const state = b === undefined ? undefined : b.state === "open" && now >= b.probeAt! ? "half-open" : b.state
      return {
        name: s.dependency.name,
        ...(b === undefined || state === undefined ? {} : {
          breaker: {
            state,
            calls: b.calls,
            failures: b.failures,
            consecutiveFailures: b.consecutive,
            ...(b.openedAt === undefined ? {} : { openedAt: b.openedAt }),
            ...(b.probeAt === undefined ? {} : { probeAt: b.probeAt }),
            changes: b.changes
          }
        }),
        ...(s.bulkhead === undefined ? {} : {
          bulkhead: { running: s.bulkhead.running, queued: s.bulkhead.queued, concurrency: s.bulkhead.concurrency, queue: s.bulkhead.queue }
        }),
        ...(s.limiter === undefined ? {} : { rateLimit: { kind: s.limiter.kind, available: s.limiter.available(now), limit: s.limiter.limit } }),
        calls: s.calls,
        failures: s.failures,
        refused: { ...s.refused }
      }
    }))

  return { guard, status }
}

/**
 * How the breaker counts an attempt: a success or a business error (not transient) is an
 * answer; a transient error, a defect or a timeout is a failure; an attempt interrupted
 * otherwise (pause, cancel, shutdown), or refused before it called, does not count.
 */
const outcomeOf = (exit: Exit.Exit<unknown, unknown>, started: boolean, pastDeadline: boolean, isTransient: (error: unknown) => boolean): Outcome => {
  if (!started) return "none"
  if (Exit.isSuccess(exit)) return "success"
  if (Cause.isInterruptedOnly(exit.cause)) return pastDeadline ? "failure" : "none"
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "None") return "failure"
  return isTransient(failure.value) ? "failure" : "success"
}
