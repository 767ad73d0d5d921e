/**
 * `proctor rollout start|status|advance|pause|resume|revert`, run in this process against
 * a temporary SQLite database (a runtime opened by each command, or the database read
 * for `status`): each subcommand is one Runtime operation, printed.
 */
import * as path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { runCli } from "../src/cli/commands.js"
import * as Out from "../src/cli/output.js"
import { cliSandbox } from "./fixtures/cliSandbox.js"

const fixture = "test/fixtures/rolloutApp.ts"
let db = ""
cliSandbox("proctor-cli-rollout-", (d) => {
  db = path.join(d, "proctor.db")
})

const cli = (...argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const capture = Out.makeCapture({ color: false })
    const code = yield* runCli([...argv, "--db", db, "--no-examples", "--module", fixture]).pipe(
      Effect.provideService(Out.Output, capture.service),
      Effect.provide(NodeContext.layer)
    )
    return { code, out: capture.stdout(), err: capture.stderr() }
  })

interface Status {
  readonly phase: number
  readonly share: number
  readonly state: string
  readonly reason?: string
  readonly revertWhen: Record<string, number>
}
const json = (r: { code: number; out: string; err: string }) => {
  assert.strictEqual(r.code, 0, r.err)
  return JSON.parse(r.out) as Status
}

describe("proctor rollout", () => {
  it.live("start, status, pause, resume, advance and revert a rollout; errors say what to type", () =>
    Effect.gen(function*() {
      // run creates the database
      assert.strictEqual((yield* cli("run", fixture, "--procedure", "rollout-app")).code, 0)
      const started = json(
        yield* cli("rollout", "start", "rollout-app@1", "--to", "2", "--phases", "10,50,100", "--hold", "1 hour", "--p99", "2 seconds", "--p99-execution", "1 minute", "--restarts", "3", "--json")
      )
      assert.deepStrictEqual([started.phase, started.share, started.state], [1, 10, "holding"])
      assert.deepStrictEqual(started.revertWhen, { failureRate: 0.05, minExecutions: 10, p99State: 2000, p99Execution: 60000, restarts: 3 })
      const status = yield* cli("rollout", "status", "rollout-app")
      assert.strictEqual(status.code, 0, status.err)
      assert.match(status.out, /Rollout of rollout-app: version 1 -> 2, phase 1 of 3 \(10% of new starts on version 2\), holding, advances in 59m\d\ds/)
      assert.include(status.out, "reverts on failure rate above 5.0%, a state's p99 above 2.0s, executions' p99 above 1m00s, more than 3 restarts")
      assert.strictEqual(json(yield* cli("rollout", "pause", "rollout-app", "--json")).state, "paused")
      assert.strictEqual(json(yield* cli("rollout", "resume", "rollout-app", "--json")).state, "holding")
      assert.deepStrictEqual(
        [json(yield* cli("rollout", "advance", "rollout-app", "--json"))].map((s) => [s.phase, s.share, s.state]),
        [[2, 50, "holding"]]
      )
      const reverted = yield* cli("rollout", "revert", "rollout-app", "--reason", "latency alarms")
      assert.strictEqual(reverted.code, 0, reverted.err)
      assert.match(reverted.out, /phase 2 of 3 \(0% of new starts on version 2\), (reverting|reverted)/)
      assert.include(reverted.out, "reverted: latency alarms")
      const none = yield* cli("rollout", "advance", "rollout-app")
      assert.strictEqual(none.code, 1)
      assert.include(none.err, "no rollout of it is under way")
      const unknown = yield* cli("rollout", "start", "rollout-app@1", "--to", "3")
      assert.strictEqual(unknown.code, 1)
      assert.include(unknown.err, "version 3 is not among the procedures this command loaded; pass the module that exports versions 1 and 3 (--module PATH)")
      const bare = yield* cli("rollout", "start", "rollout-app", "--to", "2")
      assert.strictEqual(bare.code, 2)
      assert.include(bare.err, "proctor rollout start rollout-app@1 --to 2")
      const all = yield* cli("rollout", "status", "--json")
      assert.strictEqual((JSON.parse(all.out) as Array<Status>).length, 1)
    }))
})
