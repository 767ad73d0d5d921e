/**
 * What `Cluster.layer` and the runtime it runs need from each other. The runtime gives the
 * cluster its own operations (`RuntimeHooks`): waking an execution, whether one is in
 * memory, waking the timer fiber after the runner gained shards, and the operations the
 * messages routed to this runner call (commands, `migrate`, `await`, `sendAndWait`). The cluster gives the runtime a `Router`: an operation
 * on an execution whose shard another runner owns goes there instead of running here. The
 * runtime attaches them when it finds this service in its context; the single-process
 * `Runtime.layer` never does.
 */
import type { Duration, Effect } from "effect"
import { Context } from "effect"
import type { ExecutionNotFound, InvalidTransition, SendTimeout, StoreError, ValidationError, VersionConflict } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { SendResult } from "./eventWaiters.js"
import type { CommandError, CommandInput } from "./handle.js"

export type SendAndWaitError = ExecutionNotFound | ValidationError | InvalidTransition | VersionConflict | SendTimeout | StoreError

export interface SendAndWaitOptions {
  readonly expectVersion?: number | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

export interface RuntimeHooks {
  /** delivers a nudge to the execution's actor, starting it if it is not in memory */
  readonly activate: (id: string) => Effect.Effect<void>
  /** resumes these executions as recovery does: their snapshots read in bulk, a window at a time */
  readonly resume: (ids: ReadonlyArray<string>) => Effect.Effect<void, StoreError>
  readonly inMemory: (id: string) => boolean
  /**
   * For an execution in memory: forgets its cached state, which another runner may have moved
   * on (a shard gained back), and nudges its actor, which reads it again from the store before
   * it runs; false when it is not in memory.
   */
  readonly refresh: (id: string) => Effect.Effect<boolean>
  /** the timer fiber looks at the store again (timers of shards just gained) */
  readonly wakeTimers: () => void
  /** how far ahead (ms) the runtime wakes executions whose timer comes */
  readonly horizon: number
  /** this runtime's own operations, for the messages routed to it */
  readonly command: (id: string, input: CommandInput) => Effect.Effect<Snapshot, CommandError>
  /** `migrate` to version `to` */
  readonly migrate: (id: string, to: number) => Effect.Effect<Snapshot, CommandError>
  readonly await: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly sendAndWait: (id: string, event: unknown, options: SendAndWaitOptions | undefined) => Effect.Effect<SendResult, SendAndWaitError>
}

/** Each operation runs `here` when this runner owns the execution's shard, and goes to its owner otherwise. */
export interface Router {
  readonly wake: (id: string, here: Effect.Effect<void>) => Effect.Effect<void>
  readonly command: (id: string, input: CommandInput, here: Effect.Effect<Snapshot, CommandError>) => Effect.Effect<Snapshot, CommandError>
  readonly migrate: (id: string, to: number, here: Effect.Effect<Snapshot, CommandError>) => Effect.Effect<Snapshot, CommandError>
  readonly await: (
    id: string,
    here: Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  ) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly sendAndWait: (
    id: string,
    event: unknown,
    options: SendAndWaitOptions | undefined,
    here: Effect.Effect<SendResult, SendAndWaitError>
  ) => Effect.Effect<SendResult, SendAndWaitError>
}

export interface Holder {
  current: RuntimeHooks | undefined
  route: Router | undefined
}

export class ClusterHooks extends Context.Tag("proctor/internal/ClusterHooks")<ClusterHooks, Holder>() {}
