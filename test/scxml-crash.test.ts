/**
 * An SCXML chart (Procedure.fromSCXML) across SIGKILL, on SQLite: a process runs a parallel
 * chart whose every block of executable content counts its runs in the data model, and
 * dies right after the commit of its third event, or inside that event's macrostep; a new
 * process recovers it and finishes. The counts and the configuration must be the in-memory
 * reference interpreter's (chart/session.ts) for the same events: no committed block ran
 * twice, none was skipped. Real processes and kills are this test's nature; it asserts no timing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseScxml } from "../src/internal/chart/scxml.js"
import { ScxmlSession } from "../src/internal/chart/session.js"
import { chartXml, events } from "./fixtures/crash-chart.js"

import { runScript } from "./fixtures/runScript.js"

const script = path.join(__dirname, "fixtures", "crash-chart.ts")

const run = (args: ReadonlyArray<string>) => runScript(script, args)

interface End {
  readonly state: string
  readonly status: string
  readonly outcome: string
  readonly configuration: ReadonlyArray<string>
  readonly n: Readonly<Record<string, number>>
  readonly causes: ReadonlyArray<string>
}

/** What the reference interpreter gives for the same events. */
const oracle = () => {
  const session = new ScxmlSession(parseScxml(chartXml))
  session.start()
  for (const name of events) session.send(name)
  return { configuration: session.snapshot.configuration, n: session.data["n"], halted: session.halted }
}

describe("an SCXML chart across SIGKILL (SQLite)", () => {
  for (const mode of ["commit", "mid"] as const) {
    it.live(`killed ${mode === "commit" ? "right after the commit of" : "inside the macrostep of"} its third event, it ends as the reference interpreter does, each block run once`, () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "proctor-crash-chart-"))),
          (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
        )
        const db = path.join(dir, "chart.db")
        const crashed = yield* run([db, mode])
        assert.strictEqual(crashed.signal, "SIGKILL", crashed.out)
        const resumed = yield* run([db, "resume"])
        assert.strictEqual(resumed.code, 0, resumed.out)
        const end = JSON.parse(resumed.out) as End
        const expected = oracle()
        assert.isTrue(expected.halted)
        assert.deepStrictEqual([end.state, end.status, end.outcome], ["end", "succeeded", "finished"])
        assert.deepStrictEqual(end.configuration, expected.configuration)
        // every onentry, onexit and transition block ran as often as in the reference: none twice, none skipped
        assert.deepStrictEqual(end.n, expected.n)
        // one history row per event, in order, none twice (the pause and resume queued them first)
        assert.deepStrictEqual(end.causes, ["start", "pause", "resume", ...events.map((e) => `event:${e}`)])
      }).pipe(Effect.scoped), 120_000)
  }
})
