/**
 * Parallel states (`Procedure.parallel`): a state whose regions run at the same time, each
 * as a child execution of a procedure the runtime derives from the region when it
 * registers the parent (`regions.ts`). Like a child state (`child.ts`), it is a step whose
 * attempt starts its regions (or finds them again: their ids follow from the parent's id,
 * state, visit and region) and waits until its mode is met or can no longer be.
 */
import type { Duration, Effect, Schedule } from "effect"
import type { RegionFailed } from "../Errors.js"
import type { Status } from "../Execution.js"
import type { CheckTargets, EventsId, OnFailure, ParallelMode, State, Step, StepArgs } from "./states.js"
import { ownRecord } from "./states.js"
import { runtimeStep } from "./child.js"

/**
 * How a region ended (or stood, for one that was still running when the state finished):
 * its execution's id, status, outcome and context.
 *
 * @since 0.1.0
 * @category models
 */
export interface RegionResult<C> {
  readonly id: string
  readonly status: Status
  /** the outcome of the region's final state, when it reached one */
  readonly outcome?: string | undefined
  readonly context: C
}

/**
 * What a parallel state's `next` and `update` receive: each region's end.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParallelResult<C, K extends string = string> {
  readonly regions: { readonly [P in K]: RegionResult<C> }
}

/**
 * A region of a parallel state: its initial state and its states, typed with the parent's
 * context and events.
 *
 * @since 0.1.0
 * @category models
 */
export interface Region<C, Ev> {
  readonly initial: string
  readonly states: { readonly [name: string]: State<C, Ev> }
}

/**
 * Passes when each region's initial state is one of its states and every target inside a
 * region is one of that region's states.
 *
 * @since 0.1.0
 * @category type-level
 */
export type CheckRegions<R> = {
  readonly [K in keyof R]: R[K] extends { readonly states: infer S } ? { readonly initial: keyof S & string; readonly states: CheckTargets<S> }
    : never
}

// the services the steps of the regions need (`Exclude<_, undefined>`: see Procedure's `RequirementsOf`)
type StatesServices<S> = { [K in keyof S]: S[K] extends Step<any, any, any, any, infer R> ? Exclude<R, undefined> : never }[keyof S]
type RegionServices<R> = { [K in keyof R]: R[K] extends { readonly states: infer S } ? StatesServices<S> : never }[keyof R]

/**
 * A parallel state: a step whose attempt runs its regions (see `Procedure.parallel`).
 *
 * @since 0.1.0
 * @category models
 */
export type Parallel<T extends string, C, Ev, K extends string, R> = Step<T, C, ParallelResult<C, K>, RegionFailed, R> & {
  readonly [EventsId]?: Ev
}

/**
 * Options of a parallel state.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParallelOptions<Rs, T extends string, F extends string, C, K extends string, R> {
  /**
   * the regions, by name (letters, digits, `_` and `-`): each an `initial` state and its
   * `states`, which may be any states (steps, waits, finals, child and parallel states)
   */
  readonly regions: Rs
  /**
   * when the state is done: `"all"` when every region succeeded, `"race"` when the first
   * one did, `{ atLeast: k }` when k of them did. The regions still running then are
   * rolled back. @default "all"
   */
  readonly mode?: ParallelMode | undefined
  /** the next state, or a function of the regions' ends and the context */
  readonly next: T | ((result: ParallelResult<C, K>, context: C) => T)
  /** when `next` is a function: the states it may return */
  readonly targets?: ReadonlyArray<T> | undefined
  /** the new context from the regions' ends (their contexts, to merge). @default the context is unchanged */
  readonly update?: ((result: ParallelResult<C, K>, context: C) => C) | undefined
  /**
   * how long one attempt waits for the regions; a retry (`TimeoutError` is transient) waits
   * for the same regions again, and when the retries give up they are cancelled.
   * @default "1 day"
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** when to retry a transient failure (a timeout, the store). @default as for a step */
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  /** what to do when the mode can no longer be met (`RegionFailed`) or the retries give up. @default "fail" */
  readonly onFailure?: OnFailure<F> | undefined
  /**
   * when the parent is compensated after the state succeeded, its regions are undone (as
   * when the state fails, in the same order); this runs after, for anything more
   */
  readonly compensate?: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  /** how long undoing the regions and `compensate` may take. @default "1 day" */
  readonly compensateTimeout?: Duration.DurationInput | undefined
}

/**
 * A state whose regions run at the same time, each as a child execution (see
 * `Procedure.parallel`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parallel = <
  C,
  Ev extends { readonly _tag: string },
  const Rs extends { readonly [name: string]: { readonly initial: string; readonly states: { readonly [name: string]: State<C, Ev> } } },
  const T extends string,
  const F extends string = never
>(
  options: ParallelOptions<Rs & CheckRegions<Rs>, T, F, C, keyof Rs & string, NoInfer<RegionServices<Rs>>>
): Parallel<NoInfer<T | F>, C, Ev, keyof Rs & string, RegionServices<Rs>> => {
  const regions: Record<string, { readonly initial: string; readonly states: Record<string, State<C, Ev>> }> = ownRecord({})
  for (const [name, region] of Object.entries(options.regions as Rs)) regions[name] = { initial: region.initial, states: ownRecord(region.states) }
  const parallelStep = runtimeStep<C, ParallelResult<C, keyof Rs & string>, RegionFailed, RegionServices<Rs>, T, F>(options, "Procedure.parallel")
  return { ...parallelStep, child: { parallel: { mode: options.mode ?? "all", regions } } }
}
