/**
 * Cluster.layer across processes (needs PROCTOR_TEST_PG_URL): two runner processes
 * (test/fixtures/clusterRunner.ts) share one Postgres and split its 16 shards; each starts 10
 * executions of six 300 ms steps in its own shards; one is killed with SIGKILL mid-run. The
 * survivor takes the dead runner's shards once their 3 s lease has expired and finishes its
 * executions: every execution succeeds once, with each state once in its history, and the
 * only step that runs twice in an execution is the one the dead runner was in.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"

const pgUrl = process.env.PROCTOR_TEST_PG_URL
const runnerFile = path.join(__dirname, "fixtures", "clusterRunner.ts")

interface Runner {
  readonly child: ChildProcess
  held: number
  started: Array<string>
  readonly fenced: Array<string>
  readonly changed: Set<() => void>
}

const startRunner = (url: string, prefix: string, port: number): Runner => {
  const child = spawn(process.execPath, ["--import", "tsx", runnerFile, url, prefix, String(port)], { stdio: ["pipe", "pipe", "inherit"] })
  const runner: Runner = { child, held: 0, started: [], fenced: [], changed: new Set() }
  readline.createInterface({ input: child.stdout! }).on("line", (line) => {
    if (!line.startsWith("{")) return
    const message = JSON.parse(line) as { held?: number; started?: Array<string>; fenced?: string }
    if (message.held !== undefined) runner.held = message.held
    if (message.started !== undefined) runner.started = message.started
    if (message.fenced !== undefined) runner.fenced.push(message.fenced)
    for (const f of runner.changed) f()
  })
  return runner
}

/** waits until `test` holds, failing after `ms` with `what` */
const until = (runners: ReadonlyArray<Runner>, test: () => boolean, ms: number, what: string) =>
  Effect.async<void, Error>((resume) => {
    const check = () => {
      if (!test()) return
      done()
      resume(Effect.void)
    }
    const timer = setTimeout(() => {
      done()
      resume(Effect.fail(new Error(`timed out after ${ms} ms waiting until ${what}`)))
    }, ms)
    const done = () => {
      clearTimeout(timer)
      for (const r of runners) r.changed.delete(check)
    }
    for (const r of runners) r.changed.add(check)
    check()
    return Effect.sync(done)
  })

const poll = <A>(query: Effect.Effect<A, unknown>, ok: (a: A) => boolean, ms: number, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (true) {
      const a = yield* query
      if (ok(a)) return a
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out after ${ms} ms waiting until ${what}`))
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 250)))
    }
  })

describe.skipIf(pgUrl === undefined || pgUrl === "")("Cluster.layer, two runner processes on Postgres", () => {
  const scenario = (signal: "SIGKILL" | "SIGSTOP") =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const prefix = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
      const tables = ["executions", "transitions", "errors", "inbox", "compensations", "shards", "migrations", "effects", "cluster_runners", "cluster_locks"]
      yield* sql.unsafe(`CREATE TABLE ${prefix}_effects (execution_id TEXT NOT NULL, state TEXT NOT NULL, visit INTEGER NOT NULL, pid INTEGER NOT NULL, at TIMESTAMP NOT NULL DEFAULT clock_timestamp())`)
      const port = 36000 + Math.floor(Math.random() * 2000)
      const runners: Array<Runner> = []
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(
          Effect.sync(() => runners.forEach((r) => r.child.kill("SIGKILL"))),
          Effect.forEach(tables, (t) => sql.unsafe(`DROP TABLE IF EXISTS ${prefix}_${t}`), { discard: true }).pipe(Effect.ignore)
        )
      )
      const a = startRunner(pgUrl!, prefix, port)
      runners.push(a)
      yield* until([a], () => a.held === 16, 60_000, "runner A holds all 16 shards")
      const b = startRunner(pgUrl!, prefix, port + 1)
      runners.push(b)
      yield* until([a, b], () => b.held > 0 && a.held + b.held === 16, 60_000, "runners A and B split the shards")

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
