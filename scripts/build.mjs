// `npm run build` (also run by `prepare`, so `npm ci` and `npm pack` build too): compiles
// src/ to dist/ with tsconfig.build.json, then copies what the compiled code reads at run
// time next to it (the dashboard's files, which src/http/Server.ts serves from its own
// folder) and makes the `proctor` command executable. It also renders the CLI's help into
// dist/cli/help.json, so that the compiled `proctor --help` prints it without loading the
// libraries the commands use (src/bin/proctor.ts). dist/ is rebuilt from scratch so a
// source file that was removed leaves nothing behind.
//
// dist/mcp/serve.js, the server that `proctor mcp` runs, is then replaced with one bundle
// of src/mcp/serve.ts and all it imports, tree-shaken by esbuild: the server loads the parts
// of Effect it uses rather than all of them (less memory, faster start-up). better-sqlite3
// stays outside (a native module).
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

// in a child process: the compiled modules resolve their dependencies from the package's own
// node_modules, and this script's process stays free of them
execFileSync(process.execPath, ["--input-type=module", "-e", `
  import * as fs from "node:fs"
  import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
  import * as NodePath from "@effect/platform-node/NodePath"
  import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
  import * as Effect from "effect/Effect"
  import * as Layer from "effect/Layer"
  import { helpTexts } from "./dist/cli/commands.js"
  const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)
  const texts = await Effect.runPromise(Effect.provide(helpTexts, platform))
  fs.writeFileSync("dist/cli/help.json", JSON.stringify(texts))
`], { cwd: root, stdio: "inherit" })

const esbuild = await import("esbuild")
await esbuild.build({
  entryPoints: [path.join(root, "src/mcp/serve.ts")],
  outfile: path.join(dist, "mcp/serve.js"),
  allowOverwrite: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["better-sqlite3"],
  // bundled CommonJS code calls `require`, which an ES module does not have
  banner: { js: "import { createRequire as __proctorRequire } from 'node:module'; const require = __proctorRequire(import.meta.url);" },
  sourcemap: true,
  sourcesContent: false,
  logLevel: "warning"
})
