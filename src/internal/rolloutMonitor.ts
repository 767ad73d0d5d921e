/**
 * The health checks of the rollouts under way: one fiber of the runtime that, every
 * `checkEvery` while a rollout is under way (and not at all otherwise), judges each holding
 * phase from the store's counts and the runtime's samples (rolloutHealth.ts), and tells
 * the rollout's execution what it decided by an event: `Revert` with the reason when a
 * threshold is crossed, `Advance` when the phase has held for its time. A check that
 * decides nothing commits nothing; its health is kept in memory for `Runtime.rollouts`.
 */
import { Clock, Deferred, Duration, Effect, Exit, FiberId } from "effect"
import type { StoreService } from "../Store.js"
import { statuses, terminal } from "./statuses.js"
import * as Deadlines from "./deadlines.js"
import type { Active, Routes } from "./rollout.js"
import { advance, rolloutName } from "./rollout.js"
import type { Health, Recorder } from "./rolloutHealth.js"
import { judge } from "./rolloutHealth.js"

const open = statuses.filter((s) => !terminal.has(s))

/** how often a phase's health is checked */
export const checkEvery = Duration.seconds(5)

export interface Deps {
  readonly store: StoreService
  readonly routes: Routes
  readonly recorder: Recorder
  readonly send: (id: string, event: unknown) => Effect.Effect<unknown, unknown>
  /** several runtimes share the store (a cluster): read the rollouts from it at each check, and check even when none is known here */
  readonly shared: boolean
}

export const make = (deps: Deps) => {
  const { store, routes, recorder } = deps
  /** the latest health of each rollout under way, by its execution's id */
  const latest = new Map<string, Health>()
  let wake = Deferred.unsafeMake<void>(FiberId.none)
  routes.onActive = () => Deferred.unsafeDone(wake, Exit.void)

  const judgeNow = ({ context: c, status }: Active) =>
    Effect.gen(function*() {
      const counts = yield* store.countByVersion({ procedure: c.procedure, startedSince: c.phaseStartedAt })
      // the last phases send the old version few starts: compare with it over the rollout so far
      const endedOld = counts.reduce((n, x) => x.version === c.from && !open.includes(x.status) ? n + x.count : n, 0)
      const earlier = endedOld >= c.minExecutions || c.phaseStartedAt === c.startedAt
        ? undefined
        : (yield* store.countByVersion({ procedure: c.procedure, startedSince: c.startedAt })).filter((x) => x.version === c.from)
      const now = yield* Clock.currentTimeMillis
      const judged = judge(c, {
        from: c.from,
        to: c.to,
        phase: status.phase,
        share: status.share,
        counts,
        earlier,
        latency: {
          from: recorder.latency(c.procedure, c.from, c.phaseStartedAt, { since: c.startedAt, min: c.minExecutions }),
          to: recorder.latency(c.procedure, c.to, c.phaseStartedAt)
        },
        now
      })
      latest.set(status.id, judged.health)
      return { ...judged, now }
    })

  const check = (active: Active) =>
    Effect.gen(function*() {
      const { health, reason, now } = yield* judgeNow(active)
      const { status, context } = active
      if (status.state !== "holding") return
      if (reason !== undefined) {
        yield* Effect.logWarning(`Rollout of ${status.procedure} (version ${status.from} to ${status.to}): reverting, ${reason}`)
        yield* deps.send(status.id, { _tag: "Revert", reason, health })
      } else if (now >= context.holdUntil) {
        yield* deps.send(status.id, advance(status.phases.length, status.phase, now, health))
      }
    }).pipe(
      // the next check tries again; an event another runtime sent first is refused by the rollout
      Effect.catchAllCause((cause) => Effect.logDebug(`The health check of rollout ${active.status.id} did not conclude`, cause))
    )

  /** rollouts started, or moved on, by other runtimes on the store */
  const refresh = Effect.gen(function*() {
    const found = yield* store.list({ procedure: rolloutName, status: open, limit: 1000 })
    for (const s of found) routes.apply(s)
    const seen = new Set(found.map((s) => s.id))
    for (const a of routes.underWay()) {
      if (seen.has(a.status.id)) continue
      const s = yield* store.get(a.status.id)
      if (s._tag === "Some") routes.apply(s.value)
    }
  }).pipe(Effect.catchAllCause((cause) => Effect.logDebug("Reading the rollouts from the store failed; the next check tries again", cause)))

  const run = Effect.gen(function*() {
    let sampled = new Set<string>()
    while (true) {
      if (deps.shared) yield* refresh
      const active = routes.underWay()
      for (const a of active) yield* check(a)
      const now = new Set(active.map((a) => a.status.procedure))
      for (const procedure of sampled) if (!now.has(procedure)) recorder.forget(procedure)
      sampled = now
      const ids = new Set(active.map((a) => a.status.id))
      for (const id of latest.keys()) if (!ids.has(id)) latest.delete(id)
      if (active.length === 0 && !deps.shared) {
        wake = Deferred.unsafeMake<void>(FiberId.none)
        // owned by the runtime's scope; woken when a rollout is started or resumed from the store
        if (routes.underWay().length === 0) yield* Deferred.await(wake)
      } else {
        yield* Deadlines.sleepMillis(Duration.toMillis(checkEvery))
      }
    }
  })

  return {
    run,
    /** the latest health of a rollout under way */
    health: (id: string): Health | undefined => latest.get(id)
  }
}
