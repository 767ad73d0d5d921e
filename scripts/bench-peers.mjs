// Installs the benchmark's peers that are not Proctor's dependencies, on demand, into
// .cache/peers/<name>/ (git-ignored): today DBOS Transact for W7 (docs/benchmarks.md). The
// versions and their integrity are pinned by bench/peers/<name>/package.json and
// package-lock.json, installed with `npm ci` (nothing of it goes into Proctor's own
// package.json or `npm ci`). Idempotent: once installed from the same lock file, it does
// nothing. Prints the folder; exits 1 with the reason when it cannot install (offline).
//
//   node scripts/bench-peers.mjs dbos
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Returns the folder the peer is installed in (its node_modules resolves it). */
export const ensurePeer = (name) => {
  const spec = path.join(root, "bench", "peers", name)
  if (!fs.existsSync(path.join(spec, "package-lock.json"))) throw new Error(`no bench/peers/${name}/package-lock.json`)
  const dir = path.join(root, ".cache", "peers", name)
  const lock = fs.readFileSync(path.join(spec, "package-lock.json"))
  const stamp = createHash("sha256").update(lock).digest("hex")
  const done = path.join(dir, ".installed")
  if (fs.existsSync(done) && fs.readFileSync(done, "utf8").trim() === stamp) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(dir, { recursive: true })
  fs.copyFileSync(path.join(spec, "package.json"), path.join(dir, "package.json"))
  fs.writeFileSync(path.join(dir, "package-lock.json"), lock)
  // no install scripts: the peers here need none
  execFileSync("npm", ["ci", "--prefix", dir, "--no-audit", "--no-fund", "--ignore-scripts", "--silent"], {
    stdio: ["ignore", "ignore", "inherit"],
    shell: process.platform === "win32"
  })
  fs.writeFileSync(done, `${stamp}\n`)
  return dir
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    console.log(ensurePeer(process.argv[2] ?? "dbos"))
  } catch (error) {
    console.error(`could not install the bench peer ${process.argv[2] ?? "dbos"}: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  }
}
