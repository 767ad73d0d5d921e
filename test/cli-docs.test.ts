/**
 * docs/operations.md documents every command of the CLI and every option each one takes:
 * this test reads each command's `--help` and checks the reference against it.
 */
import * as fs from "node:fs"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { commands, runCli } from "../src/cli/commands.js"
import * as Out from "../src/cli/output.js"

const doc = fs.readFileSync("docs/operations.md", "utf8")

/** the text under `### heading`, up to the next heading of the same or a higher level */
const section = (heading: string) => {
  const start = doc.indexOf(`### ${heading}\n`)
  if (start < 0) return undefined
  const rest = doc.slice(start + heading.length + 5)
  const end = rest.search(/\n#{2,3} /)
  return end < 0 ? rest : rest.slice(0, end)
}

/** `flag` appears in `text` as a whole flag (`--module` does not count for `--mod`) */
const mentions = (text: string, flag: string) => new RegExp(`${flag}(?![a-z-])`).test(text)

const common = doc.slice(doc.indexOf("**Options most commands share**"), doc.indexOf("### `proctor run`"))

describe("docs/operations.md", () => {
  it.effect("documents every command and every option its --help lists", () =>
    Effect.gen(function*() {
      for (const name of Object.keys(commands)) {
        const capture = Out.makeCapture()
        const code = yield* runCli([name, "--help"]).pipe(
          Effect.provideService(Out.Output, capture.service),
          Effect.provide(NodeContext.layer)
        )
        assert.strictEqual(code, 0)
        const usage = capture.stdout().split("\n").find((l) => l.startsWith(`$ proctor ${name}`))
        assert.isDefined(usage, `${name} --help has a usage line`)
        const text = section(`\`proctor ${name}\``)
        assert.isDefined(text, `docs/operations.md has a "### \`proctor ${name}\`" section`)
        for (const flag of usage!.match(/--[a-z][a-z-]*/g) ?? []) {
          const documented = mentions(text!, flag) || (text!.includes("[common options]") && mentions(common, flag))
          assert.isTrue(documented, `proctor ${name}: ${flag} is documented`)
        }
      }
      const documented = [...doc.matchAll(/^### `proctor (\w+)`/gm)].map((m) => m[1])
      assert.deepStrictEqual(documented, Object.keys(commands), "no section for a command that does not exist")
    }))
})
