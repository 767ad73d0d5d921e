/**
 * Several runtimes on one Postgres (docs/scale-out.md): `Cluster.layer` runs the runtime as a
 * runner of @effect/cluster. The cluster assigns the shards to the runners and keeps a lease
 * on each in the database; the runner claims in Proctor's store the shards it is given
 * (bumping each one's fencing epoch), runs their executions, and stops committing those of
 * a shard it lost. When a runner dies, its shards, and their executions, move to the others
 * once its lease has expired.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import * as Cluster from "proctor/Cluster"
 *
 * const app = Cluster.layer({
 *   procedures: [],
 *   runner: { host: "10.0.0.5", port: 34431 }
 * }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) })))
 * ```
 *
 * @since 0.1.0
 */
import * as MessageStorage from "@effect/cluster/MessageStorage"
import { RunnerAddress } from "@effect/cluster/RunnerAddress"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as ShardId from "@effect/cluster/ShardId"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import { layerClientProtocol, layerSocketServer } from "@effect/platform-node/NodeClusterSocket"
import type { SocketServerError } from "@effect/platform/SocketServer"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Layer, Option } from "effect"
import type { DefinitionError, StoreError } from "./Errors.js"
import { ClusterHooks } from "./internal/clusterHooks.js"
import type { Holder } from "./internal/clusterHooks.js"
import * as Routing from "./internal/clusterRouting.js"
import type { Ownership } from "./internal/clusterRouting.js"
import * as OwnershipLoop from "./internal/clusterOwnership.js"
import { follow } from "./internal/clusterWatch.js"
import { serialReserve } from "./internal/sqlSerial.js"
import type * as Procedure from "./Procedure.js"
import * as Runtime from "./Runtime.js"
import * as SqlStore from "./SqlStore.js"
import { Store } from "./Store.js"

/**
 * Options of `Cluster.layer`: the runtime's options, and how this runner joins the cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<Ps extends ReadonlyArray<Procedure.Any>> extends Runtime.Options {
  readonly procedures: Ps
  /** the address the other runners reach this one at (and it listens on, unless `listenHost` says otherwise) */
  readonly runner: { readonly host: string; readonly port: number; readonly listenHost?: string | undefined }
  /**
   * How many shards executions are spread over; the same on every runner, fixed for the database.
   * @default 300
   */
  readonly shards?: number | undefined
  /**
   * How long a runner's hold on its shards lasts without a refresh: a runner that dies or
   * stops loses its shards this long after its last refresh. Refreshes come every third of it.
   * @default "10 seconds"
   */
  readonly lease?: Duration.DurationInput | undefined
  /**
   * How often the runner looks in the store for executions of its shards that no actor runs.
   * A `start` or `send` on another runner wakes the owner at once (a message routed to it);
   * the scan only catches a wake that was lost (its runner died before sending it).
   * @default "10 seconds"
   */
  readonly scan?: Duration.DurationInput | undefined
  /**
   * How long an operation asked of another runner (a command, a `migrate`, `await`'s next answer,
   * `sendAndWait`) keeps trying while no runner answers for the execution (its owner died
   * and its lease has not expired yet) before it fails with a `StoreError` of kind `Unavailable`.
   * @default "30 seconds"
   */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * `watch(id)` follows the execution's history in the shared store, whichever runner runs
   * it: a transition committed on another runner is seen within this long (one committed
   * here, at once).
   * @default "200 millis"
   */
  readonly watchInterval?: Duration.DurationInput | undefined
  /** the store's options (`prefix`, `maxBatchSize`, `queueCapacity`); the cluster's tables are `<prefix>_cluster_*` */
  readonly store?: SqlStore.Options | undefined
}

/**
 * The runtime as a runner of a cluster on the `SqlClient` the app provides (Postgres). Every
 * runner of one database runs this layer with the same procedures, `shards` and `store.prefix`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Ps extends ReadonlyArray<Procedure.Any>>(
  options: Options<Ps>
): Layer.Layer<
  Runtime.Runtime | Store | SqlStore.Shards,
  DefinitionError | StoreError | SocketServerError,
  SqlClient.SqlClient | Procedure.Services<Ps[number]>
> => {
  const shards = Math.floor(options.shards ?? 300)
  const prefix = options.store?.prefix ?? "proctor"
  const lease = Duration.decode(options.lease ?? "10 seconds")
  const third = Duration.unsafeDivide(lease, 3)
  const config: ShardingConfig.ShardingConfig["Type"] = {
    ...ShardingConfig.defaults,
    runnerAddress: Option.some(RunnerAddress.make({ host: options.runner.host, port: options.runner.port })),
    runnerListenAddress: options.runner.listenHost === undefined
      ? Option.none()
      : Option.some(RunnerAddress.make({ host: options.runner.listenHost, port: options.runner.port })),
    shardsPerGroup: shards,
    // a lease that expires, not a session advisory lock: a paused runner's shards move too (docs/scale-out.md)
    shardLockDisableAdvisory: true,
    shardLockExpiration: lease,
    shardLockRefreshInterval: third,
    // how soon a runner sees that a dead runner's lease expired and takes its shards (one read of the runners table)
    refreshAssignmentsInterval: Duration.min(Duration.unsafeDivide(lease, 10), Duration.seconds(1)),
    runnerHealthCheckInterval: lease
  }
  const sharding = SocketRunner.layer.pipe(
    Layer.provide([layerSocketServer, layerClientProtocol]),
    Layer.provide(RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(layerClientProtocol))),
    Layer.provide(MessageStorage.layerNoop),
    Layer.provide(Layer.orDie(SqlRunnerStorage.layerWith({ prefix: `${prefix}_cluster` })).pipe(
      // its shard-lock statements on one connection, one at a time (internal/sqlSerial.ts)
      Layer.provide(Layer.effect(SqlClient.SqlClient, Effect.map(SqlClient.SqlClient, serialReserve)))
    )),
    Layer.provide(ShardingConfig.layer(config)),
    Layer.provide(RpcSerialization.layerMsgPack)
  )
  // a claim takes only a shard whose lease (the cluster's lock row) is this runner's (internal/clusterOwnership.ts)
  const leases = { table: `${prefix}_cluster_locks` }
  const store = SqlStore.layerFenced({ ...options.store, shards, idleTransactionTimeout: lease, leases })
  const hooks = Layer.sync(ClusterHooks, (): Holder => ({ current: undefined, route: undefined }))
  const owner = `${options.runner.host}:${options.runner.port}`
  const scan = Duration.toMillis(options.scan ?? "10 seconds")
  const requestTimeout = Duration.decode(options.requestTimeout ?? "30 seconds")
  const run = Effect.gen(function*() {
    const sharding = yield* Sharding.Sharding
    const holder = yield* ClusterHooks
    const store = yield* Store
    const held = new Set<number>()
    const owned: Ownership = { held, shardOf: (yield* SqlStore.Shards).shardOf }
    yield* Layer.build(Routing.handlers(holder, sharding, owned, lease))
    holder.route = yield* Routing.makeRouter(sharding, owned, { store, attempt: lease, requestTimeout })
    const hooks = holder.current
    if (hooks === undefined) return yield* Effect.dieMessage("Cluster.layer: the runtime did not attach its hooks")
    const ids = Array.from({ length: shards }, (_, i) => ShardId.make("default", i + 1))
    const given = (shard: number) => sharding.hasShardId(ids[shard - 1]!)
    const loop = yield* OwnershipLoop.make({ count: shards, owner, prefix, scanMillis: scan, given }, hooks, held)
    yield* Effect.forkScoped(loop.run)
  })
  return Layer.scopedDiscard(run).pipe(
    Layer.provideMerge(
      Layer.effect(Runtime.Runtime, clustered(prefix, Duration.toMillis(options.watchInterval ?? "200 millis"))).pipe(
        Layer.provide(Runtime.layer(options))
      )
    ),
    Layer.provideMerge(store),
    Layer.provideMerge(hooks),
    Layer.provide(sharding)
  )
}

/**
 * The runtime, whose `get` also says which runner holds the execution's shard (`runner`:
 * the owner of its last claim, in `<prefix>_shards`), for `proctor show` and the dashboard,
 * and whose `watch(id)` follows the execution in the store, whichever runner runs it.
 */
const clustered = (prefix: string, watchMillis: number) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    const store = yield* Store
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const [executions, shards] = [sql(`${prefix}_executions`), sql(`${prefix}_shards`)]
    const runnerOf = (id: string) =>
      sql<{ owner: string | null }>`SELECT s.owner FROM ${executions} e JOIN ${shards} s ON s.shard = e.shard
        WHERE e.execution_id = ${id}`.pipe(
        Effect.map((rows) => rows[0]?.owner ?? undefined),
        // the name is for people: a failed read leaves it out rather than fail the `get`
        Effect.orElseSucceed(() => undefined),
        Effect.withTracerEnabled(false)
      )
    return Runtime.Runtime.of({
      ...runtime,
      get: (id) =>
        Effect.flatMap(runtime.get(id), (snapshot) =>
          Effect.map(runnerOf(id), (runner) => runner === undefined ? snapshot : { ...snapshot, runner })),
      watch: (id) => id === undefined ? runtime.watch() : follow(store, runtime.watch(), id, watchMillis)
    })
  })
