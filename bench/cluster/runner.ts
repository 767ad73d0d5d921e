/**
 * One @effect/cluster runner for the failover spike (bench/cluster/failover.ts): joins the
 * cluster on Postgres (SqlRunnerStorage, sockets between runners, no message storage) and
 * prints, one JSON line each time it changes, how many shards it holds and when (epoch ms).
 *
 * argv: <port> <json options: { url, prefix, advisory, expiration, refresh, assignments, health, shards }>
 */
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardId from "@effect/cluster/ShardId"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Logger, LogLevel, Option, Redacted, Schedule } from "effect"
import { RunnerAddress } from "@effect/cluster/RunnerAddress"

export interface Options {
  readonly url: string
  readonly prefix: string
  readonly advisory: boolean
  readonly expiration: number
  readonly refresh: number
  readonly assignments: number
  readonly health: number
  readonly shards: number
}

const port = Number(process.argv[2])
const options = JSON.parse(process.argv[3] ?? "{}") as Options

const config: ShardingConfig.ShardingConfig["Type"] = {
  ...ShardingConfig.defaults,
  runnerAddress: Option.some(RunnerAddress.make({ host: "127.0.0.1", port })),
  shardsPerGroup: options.shards,
  shardLockDisableAdvisory: !options.advisory,
  shardLockExpiration: Duration.millis(options.expiration),
  shardLockRefreshInterval: Duration.millis(options.refresh),
  refreshAssignmentsInterval: Duration.millis(options.assignments),
  runnerHealthCheckInterval: Duration.millis(options.health),
  entityMessagePollInterval: Duration.seconds(1)
}

const watch = Effect.gen(function*() {
  const sharding = yield* Sharding.Sharding
  const ids = Array.from({ length: options.shards }, (_, i) => ShardId.make("default", i + 1))
  let last = -1
  yield* Effect.sync(() => {
    let held = 0
    for (const id of ids) if (sharding.hasShardId(id)) held++
    if (held !== last) {
      last = held
      process.stdout.write(`${JSON.stringify({ port, held, at: Date.now() })}\n`)
    }
  }).pipe(Effect.repeat(Schedule.spaced("20 millis")))
})

const layer = NodeClusterSocket.layer({ storage: "byo", shardingConfig: config }).pipe(
  Layer.provide(MessageStorage.layerNoop),
  Layer.provide(Layer.orDie(SqlRunnerStorage.layerWith({ prefix: options.prefix }))),
  Layer.provide(ShardingConfig.layer(config)),
  Layer.provide(PgClient.layer({ url: Redacted.make(options.url) }))
)

watch.pipe(
  Effect.provide(layer),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)
