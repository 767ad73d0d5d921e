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
// stays outside (a native module). dist/cli/read.js, which `proctor list` and `proctor show`
// run (src/cli/read.ts), is replaced the same way with a bundle of the CLI, split into
// chunks (dist/cli/read-*.js) so that a read loads only its own (the full CLI's parser
// only for arguments its quick path does not take), and minified. Both come
// with source maps (`node --enable-source-maps` shows the TypeScript sources' lines in stack
// traces).
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
const bundled = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // bundled CommonJS code calls `require`, which an ES module does not have
  banner: { js: "import { createRequire as __proctorRequire } from 'node:module'; const require = __proctorRequire(import.meta.url);" },
  sourcemap: true,
  sourcesContent: false,
  logLevel: "warning"
}
await esbuild.build({
  ...bundled,
  entryPoints: [path.join(root, "src/mcp/serve.ts")],
  outfile: path.join(dist, "mcp/serve.js"),
  allowOverwrite: true,
  external: ["better-sqlite3"]
})

// The CLI's modules import the ones of the commands that change something only when such a
// command runs (`import()`); in the read bundle those imports load the unbundled modules
// instead (dist/Runtime.js...), so that the bundle holds no second runtime. `list` and
// `show` never take them.
const cli = path.join(root, "src/cli")
const unbundled = new Set(["../Runtime.js", "./serve.js", "../internal/diagram.js"])
const writePath = {
  name: "write-path",
  setup(build) {
    build.onResolve({ filter: /\.js$/ }, (args) =>
      args.kind === "dynamic-import" && path.dirname(args.importer) === cli && unbundled.has(args.path)
        ? { path: args.path, external: true }
        : undefined)
  }
}
await esbuild.build({
  ...bundled,
  entryPoints: [path.join(cli, "read.ts")],
  outdir: path.join(dist, "cli"),
  allowOverwrite: true,
  splitting: true,
  // next to the entry: `import.meta.url` finds ../../package.json and ../../examples from dist/cli/
  chunkNames: "read-[hash]",
  // tsx registers its loader with the unbundled files of its own package
  external: ["better-sqlite3", "tsx", "tsx/*"],
  plugins: [writePath],
  // a read spends most of its time compiling the bundle: minified, its 1.6 MB become 0.8 MB
  // and `list` starts about 7% sooner. The source maps give the names back
  // (`node --enable-source-maps`); errors are reported by message, not by stack
  minify: true
})
const missing = [...unbundled].filter((p) => !fs.existsSync(path.join(dist, "cli", p)))
if (missing.length > 0) throw new Error(`the read bundle imports ${missing.join(", ")}, which tsc did not emit`)
