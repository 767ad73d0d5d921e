/** The runtime's metrics (names and descriptions are part of their keys). */
import { Metric, MetricBoundaries, MetricLabel } from "effect"

export const executionsStarted = Metric.counter("proctor_executions_started", { description: "executions started" })
export const executionsFinished = Metric.counter("proctor_executions_finished", { description: "executions that ended, by outcome" })
export const transitionsTotal = Metric.counter("proctor_transitions", { description: "committed transitions" })
export const retriesTotal = Metric.counter("proctor_retries", { description: "failed step attempts that were retried" })
export const activeActors = Metric.gauge("proctor_active_actors", { description: "executions in memory (running, or waiting parked)" })
export const restartsTotal = Metric.counter("proctor_actor_restarts", { description: "actor restarts after a runtime defect" })
export const storeUnavailable = Metric.gauge("proctor_store_unavailable", { description: "1 while the store is unavailable (an outage the runtime waits out), else 0" })
export const storeErrors = Metric.counter("proctor_store_errors", { description: "store operations that failed because the store was unavailable" })
export const fencedCommits = Metric.counter("proctor_fenced_commits", {
  description: "commits refused because another runtime took the execution's shard (Cluster.layer, SqlStore.layerFenced)"
})
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


export const breakerTransitions = Metric.counter("proctor_breaker_changes", { description: "circuit breaker state changes, by dependency and new state" })
export const dependencyRejections = Metric.counter("proctor_dependency_refused", { description: "step attempts a dependency's guard refused, by dependency and error" })
export const quotaRejections = Metric.counter("proctor_quota_refused", { description: "starts refused by a quota, by limit (rate or concurrent)" })
const tagged = new Map<string, Metric.Metric.Counter<number>>()
const taggedWith = (counter: Metric.Metric.Counter<number>, key: string, tags: Readonly<Record<string, string>>) => {
  let found = tagged.get(key)
  if (found === undefined) {
    found = Metric.taggedWithLabels(counter, Object.entries(tags).map(([k, v]) => MetricLabel.make(k, v)))
    tagged.set(key, found)
  }
  return found
}
export const breakerChanges = (dependency: string, to: string) =>
  taggedWith(breakerTransitions, `b/${dependency}/${to}`, { dependency, state: to })
export const dependencyRefused = (dependency: string, error: string) =>
  taggedWith(dependencyRejections, `d/${dependency}/${error}`, { dependency, error })
export const quotaRefused = (limit: string) => taggedWith(quotaRejections, `q/${limit}`, { limit })
