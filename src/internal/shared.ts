/**
 * What the runtime's parts (the supervisor, the actor's run loop, the public operations)
 * share: the watched store, the registry, the handles of the executions in memory, the
 * deadline and timer machinery, and the counts the supervisor keeps.
 */
import type { Deferred, Effect, Exit, Fiber } from "effect"
import { Schedule } from "effect"
import { StoreError } from "../Errors.js"
import type { Snapshot, Transition } from "../Execution.js"
import type { StoreService } from "../Store.js"
import type { Deadlines } from "./deadlines.js"
import type * as Resilience from "./resilience.js"
import type { EventWaiters } from "./eventWaiters.js"
import type { CommandInput, Handle } from "./handle.js"
import type { ChildSpec, StepArgs } from "./states.js"
import type { StoreHealth } from "./storeHealth.js"
import type { Compiled } from "./transition.js"

export interface Settings {
  readonly maxRestarts: number
  readonly within: number
  readonly backoff: number
  readonly passivate: boolean
  readonly horizon: number
  readonly recoverWindow: number
}

export interface Shared {
  /** the store, watched for outages */
  readonly store: StoreService
  readonly outage: StoreHealth
  readonly settings: Settings
  /** forks work of the runtime (a child's end, a supervisor's record) into the runtime's FiberSet */
  readonly fork: (effect: Effect.Effect<void, StoreError>, options?: { readonly immediate?: boolean }) => Fiber.RuntimeFiber<void, StoreError>
  /** forks a run of an actor into the same FiberSet, uninterruptible (a run is interruptible only inside `restore`: `run.ts`) */
  readonly forkRun: (effect: Effect.Effect<void, StoreError>, options?: { readonly immediate?: boolean }) => Fiber.RuntimeFiber<void, StoreError>
  /** forks an attempt of a compensation into the runtime's other FiberSet (see `detach`) */
  readonly forkAttempt: (effect: Effect.Effect<Exit.Exit<unknown, unknown>>) => Fiber.RuntimeFiber<Exit.Exit<unknown, unknown>>
  /** child procedures: ending a child its parent left, checking a loaded child's parent */
  readonly children: {
    readonly run: (child: ChildSpec, args: StepArgs<unknown>) => Effect.Effect<unknown, unknown>
    readonly left: (parent: Snapshot, left: { readonly state: string; readonly visit: number }) => void
    readonly orphanCommand: (snapshot: Snapshot) => Effect.Effect<CommandInput | undefined, StoreError>
    /** a child or parallel state's compensation: rolls back (undoes) what the visit completed at `stepSeq` started */
    readonly undo: (child: ChildSpec, parentId: string, state: string, stepSeq: number) => Effect.Effect<void, unknown>
  }
  /** the executions in memory */
  readonly handles: Map<string, Handle>
  readonly deadlines: Deadlines
  /** the passivated timers' fiber: when it plans to wake next, and how to wake it sooner */
  readonly timerPoll: { planned: number; wake: Deferred.Deferred<void> }
  readonly eventWaiters: EventWaiters
  /** bounds how many actors read their execution from the store at once (recovery wakes many) */
  readonly loads: Effect.Semaphore
  /** publishes a committed transition to `watch` and to the callers of `await` */
  readonly publish: (snapshot: Snapshot, t: Transition) => void
  /** the supervisor restarted an execution of this procedure version after a defect (a rollout's health) */
  readonly restarted?: ((procedure: string, version: number, at: number) => void) | undefined
  /** the definition an execution runs on, if this runtime has it */
  readonly lookup: (snapshot: Snapshot) => Compiled | undefined
  /** why `lookup` found none */
  readonly unavailable: (snapshot: Snapshot) => string
  /** procedure versions whose executions this runtime cannot run, reported once each */
  readonly reported: Set<string>
  /** the dependencies steps name: the guard their attempts run through */
  readonly dependencies: Resilience.Registry
  /** whether Proctor makes its own spans (`tracing` option) */
  readonly tracing: boolean
  /** whether spans and annotations may be set through Effect's fiber internals (`Spans.checkInternals`) */
  readonly fast: boolean
  readonly counts: {
    /** set when the runtime's scope closes */
    closed: boolean
    /** handles in memory */
    active: number
    /** handles in memory without a fiber (parked) */
    parked: number
  }
}

export const shuttingDownWait = new StoreError({
  kind: "Unavailable",
  operation: "sendAndWait",
  detail: "the runtime shut down before the event was consumed; the event is in the durable inbox and still stands"
})

export const shuttingDown = new StoreError({ kind: "Unavailable", operation: "run", detail: "the runtime is shutting down; retry on a running runtime" })

/** The backoff of work that waits for the store: 100 ms doubling to 30 s, for as long as it takes. */
export const waitForStoreSchedule = Schedule.union(Schedule.exponential("100 millis"), Schedule.spaced("30 seconds"))


