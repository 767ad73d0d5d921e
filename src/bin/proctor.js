#!/usr/bin/env node
// The `proctor` command (package.json "bin"): registers tsx so that Node 20 can load the
// TypeScript sources, then runs the CLI. `npx proctor ...` after `npm ci` lands here.
import { register } from "tsx/esm/api"

register()
await import("../cli/main.ts")
