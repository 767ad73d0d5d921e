/**
 * Cluster.layer across processes (needs PROCTOR_TEST_PG_URL): two runner processes
 * (test/fixtures/clusterRunner.ts) share one Postgres and split its 16 shards; each starts 10
 * executions of six 300 ms steps in its own shards; one is killed with SIGKILL mid-run. The
 * survivor takes the dead runner's shards once their 3 s lease has expired and finishes its
 * executions: every execution succeeds once, with each state once in its history, and the
 * only step that runs twice in an execution is the one the dead runner was in.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { poll, setUp, startRunner, until } from "./fixtures/clusterProcesses.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL

describe.skipIf(pgUrl === undefined || pgUrl === "")("Cluster.layer, two runner processes on Postgres", () => {
  const scenario = (signal: "SIGKILL" | "SIGSTOP") =>
    Effect.gen(function*() {
      const { port, prefix, runners, sql } = yield* setUp
      const a = startRunner(pgUrl!, prefix, port)
      runners.push(a)
      yield* until([a], () => a.held === 16, 60_000, () => `runner A holds all 16 shards (it holds ${a.held})`)
      const b = startRunner(pgUrl!, prefix, port + 1)
      runners.push(b)
      yield* until([a, b], () => b.held > 0 && a.held + b.held === 16, 60_000, () => `runners A and B split the shards (they hold ${a.held} and ${b.held})`)

      a.child.stdin!.write("start 10\n")
      b.child.stdin!.write("start 10\n")
      yield* until([a, b], () => a.started.length === 10 && b.started.length === 10, 30_000, "both started 10 executions")
      const all = [...a.started, ...b.started]

      // B is killed once its executions are under way (each has run at least two steps)
      const effectsOf = (pid: number) => sql<{ n: string }>`SELECT count(*) AS n FROM ${sql(`${prefix}_effects`)} WHERE pid = ${pid}`
      yield* poll(effectsOf(b.child.pid!), (rows) => Number(rows[0]!.n) >= 20, 30_000, "runner B ran 20 steps")
      b.child.kill(signal)

      const statuses = sql<{ execution_id: string; status: string }>`SELECT execution_id, status FROM ${sql(`${prefix}_executions`)}`
      const final = yield* poll(statuses, (rows) => rows.length === 20 && rows.every((r) => r.status === "succeeded"), 90_000, "all 20 executions succeeded")
      assert.sameMembers(final.map((r) => r.execution_id), all)

      // each state once in each history, in order
      const history = yield* sql<{ execution_id: string; to_state: string }>`SELECT execution_id, to_state FROM ${sql(`${prefix}_transitions`)} ORDER BY execution_id, seq`
      for (const id of all) {
        assert.deepStrictEqual(history.filter((t) => t.execution_id === id).map((t) => t.to_state), ["s1", "s2", "s3", "s4", "s5", "s6", "done"], id)
      }
      // a step runs again only where the dead runner was in it: at most one per execution, first on B, then on A
      const effects = yield* sql<{ execution_id: string; state: string; visit: number; pid: number }>`SELECT execution_id, state, visit, pid FROM ${sql(`${prefix}_effects`)} ORDER BY at`
      const byStep = new Map<string, Array<number>>()
      for (const e of effects) {
        const key = `${e.execution_id}/${e.state}/${e.visit}`
        byStep.set(key, [...(byStep.get(key) ?? []), Number(e.pid)])
      }
      assert.strictEqual(byStep.size, 20 * 6)
      const twice = [...byStep.entries()].filter(([, pids]) => pids.length > 1)
      for (const [key, pids] of twice) assert.sameMembers(pids, [b.child.pid, a.child.pid], key)
      const perExecution = new Map<string, number>()
      for (const [key] of twice) perExecution.set(key.split("/")[0]!, (perExecution.get(key.split("/")[0]!) ?? 0) + 1)
      for (const [id, n] of perExecution) assert.strictEqual(n, 1, id)
      // B's executions finished on A
      for (const id of b.started) assert.isTrue(effects.some((e) => e.execution_id === id && Number(e.pid) === a.child.pid), id)

      if (signal === "SIGSTOP") {
        // B comes back: the steps it was in finish, their commits are refused, and it drops those executions
        const before = yield* sql<{ n: string }>`SELECT count(*) AS n FROM ${sql(`${prefix}_transitions`)}`
        b.child.kill("SIGCONT")
        yield* until([b], () => b.fenced.length > 0 && b.held === 0, 30_000, "runner B let go of its shards and dropped an execution")
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1_000)))
        assert.deepStrictEqual(yield* sql<{ n: string }>`SELECT count(*) AS n FROM ${sql(`${prefix}_transitions`)}`, before)
        for (const id of b.fenced) assert.include(b.started, id)
      }
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") })))

  it.live("a runner killed with SIGKILL: the other resumes its executions, no committed step runs again", () => scenario("SIGKILL"), 240_000)

  it.live("a runner stopped past its lease (SIGSTOP): the other resumes its executions; when it continues, its late commits are refused", () =>
    scenario("SIGSTOP"), 240_000)
})
