/**
 * SIGKILL during a rollout on SQLite (issue 16, item 2): a real child process dies right
 * after the commit that begins phase 2; the process started again routes new starts by
 * phase 2's share at once (the routing table rebuilt from the store), keeps the phase's
 * hold, and carries on from phase 2: no phase skipped or repeated in the rollout's history.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"

import { runScript } from "./fixtures/runScript.js"

const script = path.join(__dirname, "fixtures", "crash-rollout.ts")

const run = (args: ReadonlyArray<string>) => runScript(script, args)

describe("crash: a rollout killed mid-phase", () => {
  it.scoped("carries on from its committed phase, routing by it at once, no phase skipped or repeated", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-crash-rollout-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const db = path.join(dir, "rollout.db")
      const killed = yield* run([db, "phase"])
      assert.strictEqual(killed.signal, "SIGKILL", killed.out)
      const resumed = yield* run([db, "resume"])
      assert.strictEqual(resumed.code, 0, resumed.out)
      const r = JSON.parse(resumed.out.trim().split("\n").pop()!) as {
        atStart: { phase: number; share: number; state: string; holdUntil: number; phaseStartedAt: number }
        routedToV2: number
        end: { state: string; share: number }
        history: Array<[string, string, number | null]>
      }
      assert.deepStrictEqual([r.atStart.phase, r.atStart.share, r.atStart.state], [2, 50, "holding"])
      // the hold is the committed one: an hour from the start of phase 2
      assert.strictEqual(r.atStart.holdUntil - r.atStart.phaseStartedAt, 3_600_000)
      assert.isTrue(r.routedToV2 > 70 && r.routedToV2 < 130, `${r.routedToV2} of 200 on version 2`)
      assert.deepStrictEqual(r.end, { state: "completed", share: 100 })
      assert.deepStrictEqual(r.history, [
        ["start", "holding", null],
        ["event:Advance", "holding", 1],
        ["event:Advance", "holding", 2],
        ["event:Complete", "completed", 3]
      ])
    }), { timeout: 120_000 })
})
