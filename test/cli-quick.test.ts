/**
 * The quick path of `proctor list` and `proctor show` (src/cli/quick.ts), which reads their
 * options without `@effect/cli`: which arguments it takes (the others go to the full CLI),
 * and that for those it prints exactly what the full CLI prints, with the same exit code.
 */
import * as path from "node:path"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { Runtime, SqlStore } from "proctor"
import { runCli } from "../src/cli/commands.js"
import * as Out from "../src/cli/output.js"
import * as Quick from "../src/cli/quick.js"
import { cliSandbox } from "./fixtures/cliSandbox.js"
import { Approval } from "./fixtures/ops.js"

let dir = ""
let db = ""
cliSandbox("proctor-cli-quick-", (d) => {
  dir = d
  db = path.join(d, "proctor.db")
})

describe("the quick path's arguments", () => {
  it("takes a plain list or show, with the options they share", () => {
    assert.deepStrictEqual(Quick.readArgs(["list"]), {
      command: "list",
      status: Option.none(),
      procedure: Option.none(),
      state: Option.none(),
      tenant: Option.none(),
      limit: 50,
      json: false,
      db: Option.none(),
      module: [],
      noExamples: false,
      server: Option.none(),
      token: Option.none()
    })
    const list = Quick.readArgs(["list", "--status", "waiting,paused", "--limit", "7", "--json", "--db", "a.db", "-m", "x.ts", "--module", "y.ts", "--no-examples"])
    assert.deepInclude(list, { status: Option.some("waiting,paused"), limit: 7, json: true, db: Option.some("a.db"), module: ["x.ts", "y.ts"], noExamples: true })
    assert.deepInclude(Quick.readArgs(["list", "--tenant", "acme"]), { tenant: Option.some("acme") })
    assert.deepInclude(Quick.readArgs(["show", "abc", "--server", "http://h", "--token", "t"]), {
      command: "show",
      id: "abc",
      server: Option.some("http://h"),
      token: Option.some("t")
    })
  })

  it("sends anything else to the full CLI", () => {
    for (
      const argv of [
        [],
        ["run", "x.ts"],
        ["list", "--help"],
        ["list", "-h"],
        ["list", "extra"],
        ["list", "--db=a.db"],
        ["list", "--db"],
        ["list", "--db", ""],
        ["list", "--db", "--json"],
        ["list", "--json", "true"],
        ["list", "--json", "--json"],
        ["list", "--limit", "1", "--limit", "2"],
        ["list", "--limit", "-3"],
        ["list", "--limit", "1e3"],
        ["list", "--log-level", "debug"],
        ["list", "--wizard"],
        ["show"],
        ["show", "--json", "abc"],
        ["show", "abc", "extra"],
        ["show", "abc", "--status", "waiting"]
      ]
    ) assert.isUndefined(Quick.readArgs(argv), argv.join(" "))
  })
})

describe("the quick path's output", () => {
  const capture = (program: Effect.Effect<number, never, Out.Output>) =>
    Effect.gen(function*() {
      const c = Out.makeCapture()
      const code = yield* Effect.provideService(program, Out.Output, c.service)
      return { code, out: c.stdout(), err: c.stderr() }
    })

  it.live("is the full CLI's, exit code included, for list and show, their filters, --json and their errors", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "quick" }).pipe(
        Effect.provide(Runtime.layer({ procedures: [Approval] }).pipe(Layer.provide(SqlStore.layerSqlite({ filename: db }))))
      )
      const cases = [
        ["list", "--db", db],
        ["list", "--db", db, "--json", "--limit", "1", "--status", "waiting", "--procedure", "ops-approval", "--state", "review"],
        ["list", "--db", db, "--status", "waiting,bogus"],
        ["list", "--db", db, "--limit", "0", "--json"],
        ["list", "--db", path.join(dir, "missing.db")],
        ["list", "--db", path.join(dir, "missing.db"), "--json"],
        ["show", id, "--db", db],
        ["show", id, "--db", db, "--json"],
        ["show", "nope", "--db", db],
        ["show", "nope", "--db", db, "--json"]
      ]
      const codes: Array<number> = []
      for (const argv of cases) {
        const args = Quick.readArgs(argv)
        assert.isDefined(args, argv.join(" "))
        // the elapsed times of one run and the other may differ by a few milliseconds, and so
        // may their width ("999ms", "1.0s"), which pads the table's columns differently
        const tidy = (r: { code: number; out: string; err: string }) => ({ ...r, out: r.out.replace(/\b\d+(\.\d)?m?s\b/g, "T").replace(/ {2,}/g, "  ") })
        const quick = tidy(yield* capture(Quick.run(args!)))
        const full = tidy(yield* capture(runCli(argv).pipe(Effect.provide(NodeContext.layer))))
        assert.deepStrictEqual(quick, full, argv.join(" "))
        codes.push(quick.code)
      }
      assert.deepStrictEqual(codes, [0, 0, 2, 2, 1, 1, 0, 0, 1, 1])
    }))
})
