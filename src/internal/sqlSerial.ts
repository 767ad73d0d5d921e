/**
 * A `SqlClient` whose reserved connections run one statement at a time, for
 * @effect/cluster's `SqlRunnerStorage` (`Cluster.layer`). It keeps its shard-lock statements
 * on one reserved connection and, when the cluster gives up several shards at once (a
 * rebalance, a shutdown), sends their `DELETE`s together, next to its heartbeat's `UPDATE`:
 * `pg` queues them on the client and warns "Calling client.query() when the client is
 * already executing a query is deprecated and will be removed in pg@9.0". Here each
 * statement on such a connection waits for the one before it to end; the statements and
 * their order are the storage's own. A statement whose caller stops waiting (the storage
 * times its calls out, 2 s by default) holds the connection until `pg` answers it all the
 * same: `pg` cannot cancel it, and the next statement sent meanwhile would be queued, with
 * the warning (seen after a runner was stopped and continued).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { Scope } from "effect"
import { Effect, Fiber, Stream } from "effect"

/**
 * `conn` with its statements run one after another (its other fields, such as `pg`, as they
 * are); a statement runs in a fiber of `scope` (the reservation's), so that its caller may stop
 * waiting while it keeps the connection until it ends.
 */
const serialConnection = (conn: Connection, scope: Scope.Scope): Connection => {
  const lock = Effect.unsafeMakeSemaphore(1)
  const one = <A, E>(statement: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(
        restore(lock.take(1)),
        Effect.flatMap(
          Effect.forkIn(Effect.interruptible(Effect.ensuring(statement, lock.release(1))), scope),
          (fiber) => restore(Fiber.join(fiber))
        )
      )
    )
  const serial: Connection = Object.assign(Object.create(conn) as Connection, {
    execute: (sql: string, params: ReadonlyArray<unknown>, transformRows: Parameters<Connection["execute"]>[2]) =>
      one(conn.execute(sql, params, transformRows)),
    executeRaw: (sql: string, params: ReadonlyArray<unknown>) => one(conn.executeRaw(sql, params)),
    executeValues: (sql: string, params: ReadonlyArray<unknown>) => one(conn.executeValues(sql, params)),
    executeUnprepared: (sql: string, params: ReadonlyArray<unknown>, transformRows: Parameters<Connection["execute"]>[2]) =>
      one(conn.executeUnprepared(sql, params, transformRows)),
    // a cursor holds the connection until the stream ends
    executeStream: (sql: string, params: ReadonlyArray<unknown>, transformRows: Parameters<Connection["execute"]>[2]) =>
      Stream.unwrapScoped(Effect.as(Effect.acquireRelease(lock.take(1), () => lock.release(1)), conn.executeStream(sql, params, transformRows)))
  })
  return serial
}

/** `sql`, whose `reserve` gives connections that run one statement at a time (also after `withoutTransforms`). */
export const serialReserve = (sql: SqlClient.SqlClient): SqlClient.SqlClient => {
  const reserve = Effect.flatMap(Effect.scope, (scope) => Effect.map(sql.reserve, (conn) => serialConnection(conn, scope)))
  let plain: SqlClient.SqlClient | undefined
  const client: SqlClient.SqlClient = new Proxy(sql, {
    get: (target, key, receiver) => {
      if (key === "reserve") return reserve
      if (key === "withoutTransforms") {
        return () => {
          const inner = target.withoutTransforms()
          return inner === target ? client : (plain ??= serialReserve(inner))
        }
      }
      return Reflect.get(target, key, receiver)
    }
  })
  return client
}
