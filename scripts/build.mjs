// `npm run build` (also run by `prepare`, so `npm ci` and `npm pack` build too): compiles
// src/ to dist/ with tsconfig.build.json, then copies what the compiled code reads at run
// time next to it (the dashboard's files, which src/http/Server.ts serves from its own
// folder) and makes the `proctor` command executable. dist/ is rebuilt from scratch so a
// source file that was removed leaves nothing behind.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const dist = path.join(root, "dist")

fs.rmSync(dist, { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
execFileSync(process.execPath, [tsc, "-p", path.join(root, "tsconfig.build.json")], { stdio: "inherit" })
fs.cpSync(path.join(root, "src/http/assets"), path.join(dist, "http/assets"), { recursive: true })
fs.chmodSync(path.join(dist, "bin/proctor.js"), 0o755)
