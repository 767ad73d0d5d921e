/**
 * The runner processes of the cluster tests (test/fixtures/clusterProcesses.ts) on Postgres
 * (needs PROCTOR_TEST_PG_URL): a runner that cannot start ends the test's wait at once with
 * what happened, rather than a time-out that says nothing (CI once waited 60 s for a runner
 * whose port an outgoing connection had taken); the ports given to runners lie below the range
 * of outgoing connections' local ports.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import { freePorts, setUp, startRunner, until } from "./fixtures/clusterProcesses.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

describe.skipIf(pgUrl === undefined || pgUrl === "")("the cluster tests' runner processes", () => {
  it.live("a runner whose port is taken: the wait for its shards fails at once, saying it exited", () =>
    Effect.gen(function*() {
      const { prefix, runners } = yield* setUp
      const taken = net.createServer()
      const port = yield* freePorts(1)
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void taken.listen(port, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => void taken.close())
      )
      const a = startRunner(pgUrl!, prefix, port)
      runners.push(a)
      const error = yield* Effect.flip(until([a], () => a.held === 16, 100_000, "runner A holds all 16 shards"))
      assert.match(error.message, /^runner \d+ exited with code 1 while waiting until runner A holds all 16 shards/)
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") }))), 120_000)

  it.live("runners' ports are free and below the local ports of outgoing connections", () =>
    Effect.gen(function*() {
      const range = fs.existsSync("/proc/sys/net/ipv4/ip_local_port_range")
        ? Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0])
        : 32768
      for (let i = 0; i < 20; i++) {
        const first = yield* freePorts(3)
        assert.isAtLeast(first, 1024)
        assert.isBelow(first + 2, range)
      }
    }))
})
