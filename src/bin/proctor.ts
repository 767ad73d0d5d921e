#!/usr/bin/env node
// The `proctor` command (package.json "bin" points at its compiled form, dist/bin/proctor.js).
// Plain JavaScript all the way: a TypeScript loader is loaded only to import a user's `.ts`
// module (src/cli/modules.ts), never to run the CLI itself. `-v` and `--help` (of the
// program or of one command) answer before anything is loaded: the help comes from
// dist/cli/help.json, which `npm run build` renders from the commands (src/cli/commands.ts
// `helpTexts`); where it is missing (the sources, run through tsx) the CLI renders it.
// `proctor mcp` loads the MCP server without the rest of the CLI (src/mcp/command.ts), for
// a smaller process that answers sooner. `list` and `show` load the CLI from its read-path
// bundle (src/cli/read.ts), which starts in less than half the time.
import * as fs from "node:fs"

const argv = process.argv.slice(2)
const isHelp = (a: string | undefined) => a === "--help" || a === "-h"

const cachedHelp = (): string | undefined => {
  const name = argv.length === 1 && isHelp(argv[0]) ? "" : argv.length === 2 && isHelp(argv[1]) ? argv[0]! : undefined
  if (name === undefined) return undefined
  try {
    const texts = JSON.parse(fs.readFileSync(new URL("../cli/help.json", import.meta.url), "utf8")) as Record<string, unknown>
    const text = Object.hasOwn(texts, name) ? texts[name] : undefined
    return typeof text === "string" ? text : undefined
  } catch {
    return undefined
  }
}

const help = cachedHelp()
if (argv.length === 1 && (argv[0] === "-v" || argv[0] === "--version")) {
  const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  process.stdout.write(`${pkg.version}\n`)
} else if (help !== undefined) {
  process.stdout.write(help)
} else if (argv[0] === "mcp") {
  await (await import("../mcp/command.js")).main(argv.slice(1))
} else if (argv[0] === "list" || argv[0] === "show") {
  await import("../cli/read.js")
} else {
  await import("../cli/main.js")
}
