/**
 * Child procedures: a state that starts another procedure as a child execution and takes
 * its outcome as the state's result (`Procedure.child`). The state is a step whose attempt
 * starts the child (or finds it again: its id follows from the parent's id, state and
 * visit) and waits for it to end, so a retry, a `pause`/`resume` or a crash of the parent
 * joins the same child instead of starting another. The run loop calls the runtime's
 * `children.ts` for such a state instead of the step's `run`; leaving the state otherwise than through the child's end (a cancel, a
 * rollback, a `skip`, a timeout that gives up) cancels or rolls back the child, and a
 * child found running without its parent in that state (a crash in between) is cancelled
 * when it is loaded.
 */
import { createHash } from "node:crypto"
import type { Duration, Schedule, Schema } from "effect"
import { Effect } from "effect"
import type { ChildFailed } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { OnFailure, Step, StepArgs } from "./states.js"
import { step } from "./step.js"

/**
 * What a child state's `next` and `update` receive: the child's id, its outcome and its
 * final context.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildResult<C> {
  readonly id: string
  /** the outcome of the child's final state (`succeeded` or a custom one) */
  readonly outcome: string
  readonly context: C
}

/** The procedure a child state runs, as the runtime needs it (a `Procedure.Any`). */
export interface ChildProcedure<I, C> {
  readonly name: string
  readonly version: number
  readonly input: Schema.Schema<I, any, never>
  readonly context: Schema.Schema<C, any, never>
}

/**
 * Options of a child state.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildOptions<T extends string, F extends string, C, I, C2, R = never> {
  /** the child's input, from the parent's context */
  readonly input: (context: C) => I
  /** the next state, or a function of the child's result and the context */
  readonly next: T | ((result: ChildResult<C2>, context: C) => T)
  /** when `next` is a function: the states it may return */
  readonly targets?: ReadonlyArray<T> | undefined
  /** the new context from the child's result. @default the context is unchanged */
  readonly update?: ((result: ChildResult<C2>, context: C) => C) | undefined
  /**
   * how long one attempt waits for the child; a retry (`TimeoutError` is transient) waits
   * for the same child again, and when the retries give up the child is cancelled.
   * @default "1 day"
   */
  readonly timeout?: Duration.DurationInput | undefined
  /** when to retry a transient failure (a timeout, the store). @default as for a step */
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  /** what to do when the child does not succeed (`ChildFailed`) or the retries give up. @default "fail" */
  readonly onFailure?: OnFailure<F> | undefined
  /**
   * when the parent is compensated after the state succeeded, the child is undone (its
   * completed steps compensated, then `rolled_back`); this runs after, for anything more
   */
  readonly compensate?: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  /** how long undoing the child and `compensate` may take. @default "1 day" */
  readonly compensateTimeout?: Duration.DurationInput | undefined
}

/**
 * The step of a state the runtime runs (a child or a parallel state, given its `child`
 * spec next): the options of a step, waiting 1 day by default; its `run` dies, since the
 * run loop calls the runtime (`children.ts`) instead.
 */
export const runtimeStep = <C, A, E, R, T extends string, F extends string>(options: {
  readonly next: T | ((result: A, context: C) => T)
  readonly targets?: ReadonlyArray<T> | undefined
  readonly update?: ((result: A, context: C) => C) | undefined
  readonly timeout?: Duration.DurationInput | undefined
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  readonly onFailure?: OnFailure<F> | undefined
  readonly compensate?: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  readonly compensateTimeout?: Duration.DurationInput | undefined
}, kind: string) =>
  step<C, A, E, R, T, F>({
    run: () => Effect.dieMessage(`A ${kind} state runs only inside a Proctor runtime (Runtime.layer): register its procedure there.`),
    next: options.next,
    targets: options.targets,
    update: options.update,
    timeout: options.timeout ?? "1 day",
    retry: options.retry,
    onFailure: options.onFailure,
    compensate: options.compensate,
    // the compensation undoes the child or regions too, which may take as long
    compensateTimeout: options.compensateTimeout ?? "1 day"
  })

/**
 * A state that runs `procedure` as a child execution: it starts the child with
 * `input(context)`, waits for it to end, then goes to `next` with the child's result. A
 * child that fails, is cancelled or is rolled back fails the state with `ChildFailed`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const child = <I, C2, C, const T extends string, const F extends string = never, R = never>(
  procedure: ChildProcedure<I, C2>,
  options: ChildOptions<T, F, C, NoInfer<I>, NoInfer<C2>, R>
): Step<NoInfer<T | F>, C, ChildResult<C2>, ChildFailed, R> => {
  const childStep = runtimeStep<C, ChildResult<C2>, ChildFailed, R, T, F>(options, "Procedure.child")
  return { ...childStep, child: { name: procedure.name, version: procedure.version, procedure, input: options.input } }
}

const keyPrefix = "proctor.child:"

/** The idempotency key of the child started by a visit of a state (its `StepArgs.idempotencyKey`). */
export const childKey = (idempotencyKey: string) => keyPrefix + idempotencyKey

/**
 * The id of the child started by a visit of a state: the same for every attempt, retry
 * and recovery of that visit, a UUID (version 8, RFC 9562) made from its key.
 */
export const childId = (key: string) => {
  const hex = createHash("sha256").update(key).digest("hex")
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** The id of the child a parent's visit of `state` started (whether or not it did). */
export const childOf = (parentId: string, state: string, visit: number) => childId(childKey(`${parentId}/${state}/${visit}`))

const regionPrefix = "proctor.region:"

/** The idempotency key of the region `region` of a parallel state's visit (`idempotencyKey` is the visit's). */
export const regionKey = (idempotencyKey: string, region: string) => `${regionPrefix}${idempotencyKey}/${region}`

/** The id of a region's execution, started by a parent's visit of a parallel state (whether or not it was). */
export const regionOf = (parentId: string, state: string, visit: number, region: string) =>
  childId(regionKey(`${parentId}/${state}/${visit}`, region))

/**
 * Where a child execution came from: its parent, and the state and visit that started it
 * (and, for a parallel state's, its region); undefined for an execution that is not a
 * child state's or a region.
 */
export const originOf = (
  snapshot: Snapshot
): { readonly parentId: string; readonly state: string; readonly visit: number; readonly region?: string | undefined } | undefined => {
  const key = snapshot.idempotencyKey
  const parentId = snapshot.parentId
  if (parentId === undefined || key === undefined) return undefined
  const prefix = key.startsWith(`${keyPrefix}${parentId}/`) ? keyPrefix : key.startsWith(`${regionPrefix}${parentId}/`) ? regionPrefix : undefined
  if (prefix === undefined) return undefined
  let rest = key.slice(prefix.length + parentId.length + 1)
  // a region's name (no "/" in it) ends a region's key
  const region = prefix === regionPrefix ? rest.slice(rest.lastIndexOf("/") + 1) : undefined
  if (region !== undefined) rest = rest.slice(0, Math.max(0, rest.length - region.length - 1))
  const slash = rest.lastIndexOf("/")
  const visit = Number(rest.slice(slash + 1))
  return slash <= 0 || !Number.isInteger(visit) ? undefined : { parentId, state: rest.slice(0, slash), visit, region }
}

/**
 * Whether the parent still waits for this child: it exists, has not ended, and is in the
 * visit of the state that started the child (and not compensating). A child is ended when
 * its parent no longer waits for it: rolled back when the parent compensates or was
 * rolled back, cancelled otherwise.
 */
export const orphaned = (
  origin: { readonly state: string; readonly visit: number },
  parent: Snapshot | undefined
): "Cancel" | "Rollback" | undefined => {
  if (parent === undefined) return "Cancel"
  if (parent.status === "compensating" || parent.status === "rolled_back") return "Rollback"
  const waits = parent.state === origin.state && parent.visit === origin.visit &&
    (parent.status === "running" || parent.status === "paused" || parent.status === "needs_intervention")
  return waits ? undefined : "Cancel"
}
