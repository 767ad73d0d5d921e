/** The runtime's metrics (names and descriptions are part of their keys). */
import { Metric, MetricBoundaries } from "effect"

export const executionsStarted = Metric.counter("proctor_executions_started", { description: "executions started" })
export const executionsFinished = Metric.counter("proctor_executions_finished", { description: "executions that ended, by outcome" })
export const transitionsTotal = Metric.counter("proctor_transitions", { description: "committed transitions" })
export const retriesTotal = Metric.counter("proctor_retries", { description: "failed step attempts that were retried" })
export const activeActors = Metric.gauge("proctor_active_actors", { description: "executions in memory (running, or waiting parked)" })
export const restartsTotal = Metric.counter("proctor_actor_restarts", { description: "actor restarts after a runtime defect" })
export const storeUnavailable = Metric.gauge("proctor_store_unavailable", { description: "1 while the store is unavailable (an outage the runtime waits out), else 0" })
export const storeErrors = Metric.counter("proctor_store_errors", { description: "store operations that failed because the store was unavailable" })
export const stateDuration = Metric.histogram(
  "proctor_state_duration_ms",
  MetricBoundaries.exponential({ start: 1, factor: 4, count: 12 }),
  "time spent in a state, per transition"
)
const finishedByStatus = new Map<string, Metric.Metric.Counter<number>>()
export const finishedBy = (status: string) => {
  let counter = finishedByStatus.get(status)
  if (counter === undefined) {
    counter = Metric.tagged(executionsFinished, "outcome", status)
    finishedByStatus.set(status, counter)
  }
  return counter
}

