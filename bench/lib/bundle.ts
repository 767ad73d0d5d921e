/**
 * Builds bench/worker.ts (with src/ and the case modules) into one ESM file with esbuild,
 * so that children start on plain node in ~0.3 s instead of transpiling through tsx, and
 * CPU profiles carry real function names. Packages stay external; the bundle lives in
 * node_modules/.cache so they resolve from there, in a folder per checkout: git worktrees that
 * share one node_modules must not run each other's bundle.
 */
import { build } from "esbuild"
import { createHash } from "node:crypto"
import * as path from "node:path"

export const repoRoot = path.resolve(import.meta.dirname, "..", "..")
const checkout = createHash("sha1").update(repoRoot).digest("hex").slice(0, 8)
export const buildDir = path.join(repoRoot, "node_modules", ".cache", `proctor-bench-${checkout}`)

export const bundleWorker = async (): Promise<string> => {
  const outfile = path.join(buildDir, "worker.mjs")
  await build({
    entryPoints: [path.join(repoRoot, "bench", "worker.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    sourcemap: "external",
    keepNames: false,
    tsconfig: path.join(repoRoot, "tsconfig.json"),
    logLevel: "warning"
  })
  return outfile
}
