// Fetches the SCXML conformance tests (the SCION semantic tests and the W3C IRP tests in
// their ECMAScript form) from the npm package @scion-scxml/test-framework, pinned by
// version and sha512, into .cache/scxml/ (git-ignored). Only `npm pack` touches the network;
// the package is never installed (its dependencies are a test server we do not need).
// Idempotent: once extracted and verified, it does nothing. Run it by hand with
// `node scripts/scxml-tests.mjs`; test/scxml.test.ts calls it before reading the tests.
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const spec = "@scion-scxml/test-framework@2.0.16"
const tarball = "scion-scxml-test-framework-2.0.16.tgz"
// `npm view @scion-scxml/test-framework@2.0.16 dist.integrity`
const integrity = "sha512-5rRd5CdFLUzmPaO43NSamBmhq6uW/0kUmUneEnqRSbAj0FiFVAINd1DfadUkdECT+xHLARCJZU7meQD4nqYyKw=="

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Returns the folder holding the extracted package (its `test/` has one folder per section). */
export const ensureScxmlTests = (cache = path.join(root, ".cache", "scxml")) => {
  const done = path.join(cache, `${tarball}.extracted`)
  const dir = path.join(cache, "package")
  if (fs.existsSync(done) && fs.existsSync(path.join(dir, "test"))) return dir
  fs.mkdirSync(cache, { recursive: true })
  const file = path.join(cache, tarball)
  if (!fs.existsSync(file) || !verified(file)) {
    execFileSync("npm", ["pack", spec, "--pack-destination", cache, "--silent"], { stdio: ["ignore", "ignore", "inherit"], shell: process.platform === "win32" })
  }
  if (!verified(file)) {
    fs.rmSync(file, { force: true })
    throw new Error(`${spec}: the downloaded tarball does not match the pinned integrity ${integrity}; it was deleted`)
  }
  fs.rmSync(dir, { recursive: true, force: true })
  execFileSync("tar", ["-xzf", tarball], { cwd: cache })
  fs.writeFileSync(done, `${integrity}\n`)
  return dir
}

const verified = (file) =>
  `sha512-${createHash("sha512").update(fs.readFileSync(file)).digest("base64")}` === integrity

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(ensureScxmlTests())
