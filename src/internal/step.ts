/**
 * The step state's constructor (`Procedure.step`), its options and defaults: the timeout,
 * the retry Schedule and which failures are transient. The step's model is in `states.ts`.
 */
import { Duration, Schedule } from "effect"
import type { Effect } from "effect"
import type { TimeoutError } from "../Errors.js"
import type { Dependency } from "../Dependency.js"
import { decodeDuration } from "./durations.js"
import { guardTags } from "./resilience.js"
import type { Action, OnFailure, Step, StepArgs } from "./states.js"
import { actionsOf } from "./states.js"

/**
 * The default retry Schedule: 3 retries with exponential backoff from 100 ms, with jitter.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

/**
 * The default step timeout.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.minutes(1)

/**
 * Options of a step.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepOptions<T extends string, F extends string, C, A, E, R> {
  /** the action. It may need services: they become requirements of the runtime layer. */
  readonly run: (args: StepArgs<C>) => Effect.Effect<A, E, R>
  /** the next state, or a function of the step's result and the context (branching, loops) */
  readonly next: T | ((result: A, context: C) => T)
  /**
   * When `next` is a function: the states it may return. Registration checks and
   * diagrams use them; without them the step is taken to reach any state.
   */
  readonly targets?: ReadonlyArray<T> | undefined
  /** the new context from the step's result. @default the context is unchanged */
  readonly update?: ((result: A, context: C) => C) | undefined
  /** how long one attempt may run. @default "1 minute" */
  readonly timeout?: Duration.DurationInput | undefined
  /** when to retry a transient failure. @default 3 retries, exponential backoff from 100 ms with jitter */
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  /**
   * Which failures are transient (only those are retried): error tags, or a predicate.
   * @default ["TimeoutError"]
   */
  readonly transient?: ReadonlyArray<string> | ((error: E | TimeoutError) => boolean) | undefined
  /**
   * the dependency the step calls (`Dependency.make`): each attempt goes through its
   * circuit breaker, bulkhead and rate limit, whose errors (`CircuitOpen`, `BulkheadFull`,
   * `RateLimited`) are always transient. The attempt's `timeout` covers its waits there.
   */
  readonly dependency?: Dependency | undefined
  /** what to do when the step fails for good. @default "fail" */
  readonly onFailure?: OnFailure<F> | undefined
  /** undoes the step's effect; runs in reverse order when the execution fails for good or is rolled back */
  readonly compensate?: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  /**
   * how long the compensation may run; past it, it is interrupted and counts as a failed
   * compensation (logged in the error log), and the rollback goes on. @default "1 minute"
   */
  readonly compensateTimeout?: Duration.DurationInput | undefined
  /** actions run when the step is entered (before it runs) and left; see `Action` */
  readonly onEnter?: ReadonlyArray<Action<C, unknown>> | undefined
  readonly onExit?: ReadonlyArray<Action<C, unknown>> | undefined
}

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : undefined

/**
 * A state that runs `run` with a timeout and a retry Schedule, then goes to `next`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const step = <C, A, E, R, const T extends string, const F extends string = never>(
  options: StepOptions<T, F, C, A, E, R>
): Step<NoInfer<T | F>, C, A, E, R> => {
  const transient = options.transient ?? ["TimeoutError"]
  const isTransient = typeof transient === "function"
    ? (transient as (error: unknown) => boolean)
    : (error: unknown) => {
      const tag = tagOf(error)
      return tag !== undefined && transient.includes(tag)
    }
  const invalid: Array<string> = []
  const dependency = options.dependency
  return {
    _tag: "Step",
    run: options.run,
    next: options.next,
    targets: options.targets,
    update: options.update,
    timeout: options.timeout === undefined ? defaultTimeout : decodeDuration("timeout", options.timeout, invalid),
    retry: options.retry ?? defaultRetry,
    // the guard's refusals are the runtime's, not the step's: always worth another attempt
    isTransient: dependency === undefined ? isTransient : (error: unknown) => guardTags.has(tagOf(error) ?? "") || isTransient(error),
    ...(dependency === undefined ? {} : { dependency }),
    onFailure: options.onFailure ?? "fail",
    compensate: options.compensate,
    compensateTimeout: options.compensateTimeout === undefined
      ? defaultTimeout
      : decodeDuration("compensateTimeout", options.compensateTimeout, invalid),
    ...(invalid.length === 0 ? {} : { "~invalid": invalid }),
    ...actionsOf(options)
  }
}

