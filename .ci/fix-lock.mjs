// Drops, from package-lock.json, optional dependencies that have no entry of their own.
//
// The package registry these machines reach serves the Linux builds of packages with
// per-platform binaries (rollup, msgpackr-extract, ...) but not the others, so `npm
// install` writes a lock that names those optional packages without resolving them, and
// `npm ci` then refuses the lock. Optional packages for other platforms are never
// installed here anyway. Idempotent; run it after `npm install` changes the lock.
import * as fs from "node:fs"

const file = new URL("../package-lock.json", import.meta.url)
const lock = JSON.parse(fs.readFileSync(file, "utf8"))
const packages = lock.packages
let removed = 0
for (const [key, entry] of Object.entries(packages)) {
  const optional = entry.optionalDependencies
  if (optional === undefined) continue
  for (const dep of Object.keys(optional)) {
    // npm resolves a dependency from the nearest node_modules up the tree
    let at = key
    let found = false
    while (true) {
      if (`${at === "" ? "" : `${at}/`}node_modules/${dep}` in packages) {
        found = true
        break
      }
      if (at === "") break
      const i = at.lastIndexOf("/node_modules/")
      at = i >= 0 ? at.slice(0, i) : ""
    }
    if (!found) {
      delete optional[dep]
      removed++
    }
  }
}
if (removed > 0) {
  fs.writeFileSync(file, JSON.stringify(lock, null, 2) + "\n")
  console.log(`package-lock.json: dropped ${removed} optional dependencies this registry does not serve`)
}
