/**
 * Issue 15 item 5 (needs PROCTOR_TEST_PG_URL): three runner processes
 * (test/fixtures/clusterLoadRunner.ts) on one Postgres run 10,000 executions of `job` (steps
 * s1, s2, a wait for `Go`, step s3). Mid-run one runner is killed with SIGKILL; later another
 * is stopped with SIGSTOP until the last one holds every shard (its lease expired), then
 * continued. The executions held at the gate until the second fault have a long last step
 * (`heldLastMillis`), so that right after a chunk of their events the runner to stop is in
 * their steps whatever the count (at 10,000 a chunk's events took longer to be acknowledged
 * than 50 ms steps took to end). Meanwhile the test sends `Go` to the executions waiting at the gate, each
 * through a runner chosen at random among those running. Which runner starts what, which
 * is killed and which stopped, when, and each event's token come from one seed
 * (PROCTOR_TEST_SEED; PROCTOR_TEST_CLUSTER_N for another count).
 *
 * Asserted, from the store once the runners are gone (no timing):
 * - every execution succeeded, its history s1 → s2 → gate → s3 → done, each state once;
 * - every acknowledged event was consumed: the gate's exit consumed the token sent, the
 *   inbox is empty, the error log holds nothing;
 * - no committed step ran again: each step run records, in the same statement, the state
 *   the store held and its shard's owner; a run where the store had already left the step is
 *   allowed only on a runner that had lost the shard (its result is refused), never on its owner;
 * - the stopped runner's late commits were refused: its `proctor_fenced_commits` counter is
 *   above 0, and a trigger that records every write to an execution by a runner that does
 *   not own its shard recorded none.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as fs from "node:fs"
import { request, seeded, setUpLoad, sleep, startLoadRunner } from "./fixtures/clusterLoad.js"
import type { LoadRunner } from "./fixtures/clusterLoad.js"
import { until } from "./fixtures/clusterProcesses.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL
// 2,000 by default (81 s at load 10 here); CI runs the issue's figure, 10,000 (.ci/run sets
// PROCTOR_TEST_CLUSTER_N=10000: 126 s at load 3-7, 182-251 s at load 10-17 on this 2-core machine)
const n = Number(process.env.PROCTOR_TEST_CLUSTER_N ?? 2_000)
const seed = Number(process.env.PROCTOR_TEST_SEED ?? 15)
const options = { shards: 24, lease: 6_000, stepMillis: 50 }
/**
 * the last step of the executions held at the gate until the second fault: long enough that the steps started by
 * one chunk of their events still run when the next chunk has been acknowledged (a turn of the test's loop takes
 * 1-3 s at load 20), short next to the run
 */
const heldLastMillis = 5_000
const steps = ["s1", "s2", "s3"]
/** how long the whole run may take before it fails: the runners' start (50 s at load 20) and room for a loaded machine */
const budget = 150_000 + n * 50

describe.skipIf(pgUrl === undefined || pgUrl === "")("Cluster.layer, three runner processes on Postgres (issue 15 item 5)", () => {
  it.live(`${n} executions; one runner killed, one stopped past its lease and continued (seed ${seed})`, () =>
    Effect.gen(function*() {
      const { port, prefix, runners, sql, watchOwners } = yield* setUpLoad
      const random = seeded(seed)
      const t0 = Date.now()
      const phases: Record<string, number> = {}
      const mark = (what: string) => {
        phases[what] = Date.now() - t0
        process.stderr.write(`ClusterFailover: ${what} after ${phases[what]} ms\n`)
      }

      // one after the other: the first creates the tables
      for (let i = 0; i < 3; i++) {
        runners.push(startLoadRunner(pgUrl!, prefix, port + i, options))
        if (i === 0) {
          yield* until(runners, () => runners[0]!.held === options.shards, 90_000, "the first runner holds every shard")
          yield* watchOwners
        }
      }
      yield* until(runners, () => runners.every((r) => r.held > 0) && total(runners) === options.shards, 90_000, "three runners split the shards")
      mark("runnersReady")

      const order = [0, 1, 2].sort(() => random() - 0.5)
      const [killed, stopped, survivor] = order.map((i) => runners[i]!) as [LoadRunner, LoadRunner, LoadRunner]
      const ids = Array.from({ length: n }, (_, i) => `${seed}-${i}`)
      // a seeded share of the executions waits at the gate until the stop, so that the runner stopped is in steps
      const heldBack = new Set(ids.filter(() => random() < 0.3))
      const killAt = Math.floor((0.3 + 0.3 * random()) * n)
      const chunk = Math.max(100, Math.ceil(n / 30))
      const busy = Math.max(10, Math.floor(n / 200))
      const tokens = new Map<string, string>()
      const deadline = t0 + budget
      let phase: "run" | "killed" | "stopped" | "taken" | "continued" = "run"
      let started = 0
      let takenAt = 0
      const runningOn = (r: LoadRunner) =>
        Effect.map(sql<{ n: string }>`SELECT count(*) AS n FROM ${sql(`${prefix}_executions`)} e JOIN ${sql(`${prefix}_shards`)} s
          ON s.shard = e.shard WHERE e.status = 'running' AND s.owner = ${r.name}`, (rows) => Number(rows[0]!.n))
      /**
       * whether at least `busy` executions of a runner's shards are in a step, looked at for up to half a second: right
       * after a chunk of events most are still in the inbox (the held-back ones' long last step keeps them in it after)
       */
      const inSteps = (r: LoadRunner) =>
        Effect.gen(function*() {
          for (let look = 0; look < 10; look++) {
            if ((yield* runningOn(r)) >= busy) return true
            yield* sleep(50)
          }
          return false
        })
      const progress = () =>
        Effect.map(sql<{ runs: string; done: string }>`SELECT (SELECT count(*) FROM ${sql(`${prefix}_effects`)}) AS runs,
          (SELECT count(*) FROM ${sql(`${prefix}_executions`)} WHERE status = 'succeeded') AS done`, (rows) => ({ runs: Number(rows[0]!.runs), done: Number(rows[0]!.done) }))
      /** one request per runner, each item through a runner chosen at random among those running */
      const spread = <A>(items: ReadonlyArray<A>, verb: "start" | "send") => {
        const live = runners.filter((r) => r !== killed || phase === "run").filter((r) => r !== stopped || (phase !== "stopped" && phase !== "taken"))
        const batches = new Map<LoadRunner, Array<A>>()
        for (const item of items) {
          const via = live[Math.floor(random() * live.length)]!
          batches.set(via, [...(batches.get(via) ?? []), item])
        }
        return Effect.forEach(batches, ([r, batch]) => request(r, verb, batch, 120_000), { concurrency: "unbounded" })
      }

      // faults come between requests (no start or send is outstanding on a runner signalled), right after a
      // chunk of starts or of events, while the runner signalled has steps in flight
      while (true) {
        const p = yield* progress()
        if (p.done === n && phase === "continued") break
        if (Date.now() > deadline) {
          // the executions not done, with their inbox and owner, say where it stuck
          // the shard's last claim (owner, epoch) next to the cluster's lock on it (lease): two names, a runner with a stale claim
          const stuck = yield* sql`SELECT e.execution_id, e.current_state, e.status, e.shard, s.owner, s.epoch, l.address AS lease, e.row_version,
              (SELECT count(*) FROM ${sql(`${prefix}_inbox`)} i WHERE i.execution_id = e.execution_id) AS inbox
            FROM ${sql(`${prefix}_executions`)} e JOIN ${sql(`${prefix}_shards`)} s ON s.shard = e.shard
            LEFT JOIN ${sql(`${prefix}_cluster_locks`)} l ON l.shard_id = 'default:' || e.shard
            WHERE e.status <> 'succeeded' LIMIT 20`
          const stuckIds = stuck.map((r) => String(r.execution_id))
          const tokensOf = stuckIds.map((id) => [id, tokens.get(id) ?? null, heldBack.has(id)])
          return assert.fail(
            `stuck: ${JSON.stringify(stuck)} tokens: ${JSON.stringify(tokensOf)} ` +
            `timed out in phase ${phase} (seed ${seed}): ${started} started, ${p.done}/${n} succeeded, ${p.runs} step runs, ` +
              `runners hold ${runners.map((r) => r.held)} shards (${runners.map((r) => r.name)}; killed ${killed.name}, stopped ${stopped.name}), ` +
              `fenced commits ${runners.map((r) => r.fenced)}, phases ${JSON.stringify(phases)}`
          )
        }
        if (phase === "stopped" && survivor.held === options.shards) {
          // the stopped runner's lease expired: the survivor took its shards
          phase = "taken"
          takenAt = p.runs
          mark("taken")
        } else if (phase === "taken" && (p.runs >= takenAt + busy || p.done === n)) {
          stopped.child.kill("SIGCONT")
          phase = "continued"
          mark("continued")
        }

        if (started < n) {
          const replies = yield* spread(ids.slice(started, started + chunk).map((id) => [id, heldBack.has(id) ? heldLastMillis : options.stepMillis]), "start")
          for (const reply of replies) assert.isUndefined(reply.error, `start refused (seed ${seed})`)
          started = Math.min(n, started + chunk)
          if (started === n) mark("started")
          if (phase === "run" && started >= killAt && (yield* runningOn(killed)) >= busy) {
            killed.child.kill("SIGKILL")
            phase = "killed"
            mark("killed")
          }
        }
        // Go to the executions waiting at the gate; the held-back ones a chunk at a time once all started and one runner is killed
        const waiting = yield* sql<{ id: string }>`SELECT execution_id AS id FROM ${sql(`${prefix}_executions`)}
          WHERE current_state = 'gate' AND status = 'waiting'`
        const release = phase === "run" || started < n ? 0 : chunk
        let released = 0
        const fresh = waiting.map((w) => w.id).filter((id) => !tokens.has(id) && (!heldBack.has(id) || released++ < release))
        const sent = new Map(fresh.map((id) => [id, random().toString(36).slice(2, 10)]))
        for (const reply of yield* spread([...sent], "send")) {
          assert.deepStrictEqual(reply.failed, [], `sends refused (seed ${seed})`)
          for (const id of reply.acked as Array<string>) tokens.set(id, sent.get(id)!)
        }
        if (
          phase === "killed" && started === n && stopped.held + survivor.held === options.shards && (yield* inSteps(stopped))
        ) {
          stopped.child.kill("SIGSTOP")
          phase = "stopped"
          mark("stopped")
        }
        yield* sleep(200)
      }
      mark("allSucceeded")
      yield* until([stopped], () => stopped.fenced > 0, 30_000, "the stopped runner reports a refused (fenced) commit")
      const fencedOnStopped = stopped.fenced
      const cpuSeconds = [survivor, stopped].map((r) => cpuOf(r.child.pid))
      // the database sessions of the two runners left (the server runs on this machine in CI and here)
      const sessions = yield* sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE application_name IN (${survivor.name}, ${stopped.name})`
      const pgCpuSeconds = sessions.reduce((sum, s) => sum + (cpuOf(s.pid) ?? 0), 0)
      for (const r of runners) r.child.kill(process.env.PROCTOR_TEST_CPU_PROF === undefined ? "SIGKILL" : "SIGINT")
      yield* until(runners, () => runners.every((r) => r.exited), 30_000, "the runners exited")

      // every execution ended once, each state once in its history, the gate left on the token sent
      const executions = yield* sql<{ id: string; status: string }>`SELECT execution_id AS id, status FROM ${sql(`${prefix}_executions`)}`
      assert.sameMembers(executions.map((e) => e.id), ids)
      assert.deepStrictEqual(executions.filter((e) => e.status !== "succeeded"), [])
      const history = yield* sql<{ id: string; to: string; event: string | null }>`SELECT execution_id AS id, to_state AS to, event
        FROM ${sql(`${prefix}_transitions`)} ORDER BY execution_id, seq`
      const byId = new Map<string, Array<{ to: string; event: string | null }>>()
      for (const t of history) byId.set(t.id, [...(byId.get(t.id) ?? []), t])
      for (const id of ids) {
        const rows = byId.get(id) ?? []
        assert.deepStrictEqual(rows.map((r) => r.to), ["s1", "s2", "gate", "s3", "done"], `history of ${id} (seed ${seed})`)
        assert.deepStrictEqual(JSON.parse(rows[3]!.event ?? "null"), { _tag: "Go", token: tokens.get(id) }, `event consumed by ${id}`)
      }
      assert.deepStrictEqual(yield* sql`SELECT execution_id, seq FROM ${sql(`${prefix}_inbox`)}`, [], "events left in the inbox")
      assert.deepStrictEqual(yield* sql`SELECT execution_id, state, tag FROM ${sql(`${prefix}_errors`)}`, [], "error log entries")

      // no committed step ran again: a run that saw the store past its step was on a runner that had lost the shard
      const runs = yield* sql<{ id: string; state: string; visit: number; runner: string; seen_state: string; seen_owner: string }>`
        SELECT execution_id AS id, state, visit, runner, seen_state, seen_owner FROM ${sql(`${prefix}_effects`)}`
      const late = runs.filter((r) => r.seen_state !== r.state)
      assert.deepStrictEqual(late.filter((r) => r.seen_owner === r.runner), [], `committed steps run again by their shard's owner (seed ${seed})`)
      const perStep = new Map<string, number>()
      for (const r of runs) perStep.set(`${r.id}/${r.state}/${r.visit}`, (perStep.get(`${r.id}/${r.state}/${r.visit}`) ?? 0) + 1)
      assert.strictEqual(perStep.size, n * steps.length, "every step ran")

      // the stopped runner's late commits were refused, and no runner wrote an execution whose shard it did not own
      assert.deepStrictEqual(yield* sql`SELECT * FROM ${sql(`${prefix}_stale`)}`, [], "writes by a runner that did not own the shard")
      yield* sql`UPDATE ${sql(`${prefix}_executions`)} SET updated_at = updated_at WHERE execution_id = ${ids[0]!}`
      assert.strictEqual((yield* sql`SELECT * FROM ${sql(`${prefix}_stale`)}`).length, 1, "the trigger records a write by a non-owner")
      assert.isAbove(fencedOnStopped, 0)

      const again = [...perStep.values()].filter((k) => k > 1).length
      console.log(JSON.stringify({ seed, n, phases, stepRuns: runs.length, stepsRunAgain: again, lateRunsOfLostShards: late.length, fencedOnStopped, cpuSeconds, pgCpuSeconds }))
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl ?? "") }))), budget + 90_000)
})

/** user + system CPU seconds of a live process (Linux), for the figures printed at the end */
const cpuOf = (pid: number | undefined) => {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

const total = (runners: ReadonlyArray<LoadRunner>) => runners.reduce((sum, r) => sum + r.held, 0)
