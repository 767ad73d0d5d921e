/**
 * `Cluster.layer`'s ownership loop: claims in the fenced store the shards the cluster gives
 * this runner (bumping each one's epoch) and resumes their executions, gives up those it
 * takes away (their commits are refused from then on, which stops their actors), claims
 * again a shard the store found another runner claimed since (see below), and now and then
 * resumes the executions of its shards that no actor here runs (started or sent an event
 * on another runner whose wake was lost).
 *
 * The loop looks at the cluster every `pollMillis`; a shard can leave this runner and come
 * back between two looks (the runner paused past its lease, or a slow look under load),
 * while another runner claimed it meanwhile. The cluster then still says the shard is this
 * runner's, but the epoch held is stale: every commit of the shard would be refused, for
 * ever. The store drops such a shard from its `held` at the first commit it refuses, and the
 * loop claims it again: a claim takes only a shard whose lease (the cluster's lock row) is
 * this runner's, in the same statement, so a runner that lost the shard for real cannot
 * take it back from the one holding it. A runner that commits nothing of such a shard (its
 * executions wait in memory) learns it at the next scan, which reads the epochs held from
 * the database. Whenever a shard is gained, its executions still in memory here from an
 * earlier hold are read again from the store: the runner that held the shard between may
 * have moved them on (consumed their event, begun a step) and then lost it in turn. A run
 * under way then, or one that commits before it is read again, is refused as a `Conflict`
 * and reads the execution again (`supervisor.ts`, `movedOn`); one whose commit was refused
 * as `Fenced` while the shard was being claimed back runs again from the store too, rather
 * than being dropped and left to the next scan.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Clock, Effect } from "effect"
import * as SqlStore from "../SqlStore.js"
import { Store } from "../Store.js"
import * as Active from "./clusterActive.js"
import type { RuntimeHooks } from "./clusterHooks.js"

/** How often the ownership loop compares the shards the cluster gave this runner with those it holds. */
export const pollMillis = 200

export interface OwnershipOptions {
  /** the shards, 1..count */
  readonly count: number
  /** this runner's name in the shards table and in the leases (its address, `host:port`) */
  readonly owner: string
  /** the store's table prefix */
  readonly prefix: string
  /** how often all held shards are scanned for executions that need a fiber */
  readonly scanMillis: number
  /** whether the cluster gives this runner the shard now (@effect/cluster's `Sharding.hasShardId`) */
  readonly given: (shard: number) => boolean
}

/**
 * The loop's one look (`tick`) and the loop itself (`run`, forever); `held`: the shards
 * claimed, shared with the router (an execution of a shard not in it is asked of its owner).
 */
export const make = (options: OwnershipOptions, hooks: RuntimeHooks, held: Set<number>) =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const shards = yield* SqlStore.Shards
    const store = yield* Store
    const { count, owner, prefix, scanMillis } = options
    let lastScan = 0

    const tick = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const scanDue = now - lastScan >= scanMillis
      // what the store holds: a shard it refused a commit of because another runner claimed it since is no longer in it,
      // nor, once a scan is due, one the database says another runner claimed since (no commit of it here found that out)
      if (scanDue) yield* shards.verify
      const claimed = yield* shards.held
      const given: Array<number> = []
      for (let shard = 1; shard <= count; shard++) {
        const has = options.given(shard)
        if (held.has(shard) && !claimed.has(shard)) {
          held.delete(shard)
          if (has) yield* Effect.logWarning(`Cluster: shard ${shard} was claimed by another runner since this one took it (it left this runner and came back between two looks); claiming it again`)
        }
        if (has && !held.has(shard)) given.push(shard)
        else if (!has && held.has(shard)) {
          yield* shards.release(shard)
          held.delete(shard)
        }
      }
      // in one statement: one after another, a dead runner's 150 shards took seconds of round trips under load.
      // A shard not taken (its lease is not this runner's, or the claim failed) is tried on the next tick.
      const gained = given.length === 0 ? [] : yield* shards.claimAll(given, owner).pipe(
        Effect.map((epochs) => {
          for (const shard of epochs.keys()) held.add(shard)
          return [...epochs.keys()].sort((a, b) => a - b)
        }),
        Effect.catchAll((error) => Effect.as(Effect.logWarning("Cluster: could not claim the shards it was given; trying again", error), []))
      )
      if (gained.length === 0 && !scanDue) return
      const resume = (ids: ReadonlyArray<string>) => hooks.resume(ids.filter((id) => !hooks.inMemory(id)))
      if (gained.length > 0) {
        // timers due soon in the shards gained: the timer fiber looked before they were ours
        yield* resume((yield* store.dueTimers({ until: now + hooks.horizon, limit: 100_000 })).map((t) => t.id))
        hooks.wakeTimers()
        // a page at a time, as recovery does (docs/scale-out.md). An execution of a gained shard still in
        // memory here from an earlier hold may have been moved on by the runner that held the shard between:
        // it is read again from the store (waiting in memory, it would never find that out)
        yield* Active.forEachPage(sql, prefix, gained, (ids) =>
          Effect.flatMap(
            Effect.filter(ids, (id) => Effect.map(hooks.refresh(id), (refreshed) => !refreshed)),
            hooks.resume
          ))
      }
      // on a scan, the executions of all the shards held that no actor here runs
      if (scanDue) {
        lastScan = now
        yield* Active.forEachPage(sql, prefix, [...held].sort((a, b) => a - b), resume)
      }
    })

    const run = Effect.forever(Effect.zipRight(
      tick.pipe(Effect.catchAllCause((cause) => Effect.logWarning("Cluster: could not claim or scan shards; trying again", cause))),
      Effect.sleep(pollMillis)
    ))
    return { tick, run }
  })
