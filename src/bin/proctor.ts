#!/usr/bin/env node
// The `proctor` command (package.json "bin" points at its compiled form, dist/bin/proctor.js).
// Plain JavaScript all the way: a TypeScript loader is loaded only to import a user's `.ts`
// module (src/cli/modules.ts), never to run the CLI itself.
import "../cli/main.js"
