#!/usr/bin/env node
// The `proctor` command (package.json "bin" points at its compiled form, dist/bin/proctor.js).
// Plain JavaScript all the way: a TypeScript loader is loaded only to import a user's `.ts`
// module (src/cli/modules.ts), never to run the CLI itself. `-v` answers before anything
// is loaded.
import * as fs from "node:fs"

const argv = process.argv.slice(2)
if (argv.length === 1 && (argv[0] === "-v" || argv[0] === "--version")) {
  const pkg = JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
  process.stdout.write(`${pkg.version}\n`)
} else {
  await import("../cli/main.js")
}
