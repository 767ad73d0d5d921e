/**
 * What `Cluster.layer`'s ownership loop needs from the runtime it runs: waking an execution
 * (as `send` does), whether one is in memory, and waking the timer fiber after the runner
 * gained shards. The runtime attaches them when it finds this service in its context; the
 * single-process `Runtime.layer` never does.
 */
import type { Effect } from "effect"
import { Context } from "effect"

export interface RuntimeHooks {
  /** delivers a nudge to the execution's actor, starting it if it is not in memory */
  readonly activate: (id: string) => Effect.Effect<void>
  readonly inMemory: (id: string) => boolean
  /** the timer fiber looks at the store again (timers of shards just gained) */
  readonly wakeTimers: () => void
  /** how far ahead (ms) the runtime wakes executions whose timer comes */
  readonly horizon: number
}

export interface Holder {
  current: RuntimeHooks | undefined
}

export class ClusterHooks extends Context.Tag("proctor/internal/ClusterHooks")<ClusterHooks, Holder>() {}
