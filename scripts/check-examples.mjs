// `npm run docs:check`: type-checks every TypeScript example a user can copy — the ```ts
// blocks of README.md and docs/*.md, and the `@example` blocks of the public modules' doc
// comments (the API reference in docs/api/ shows them) — against src/ with the project's
// strict flags. A block right after `<!-- not type-checked: why -->` (a signature sketch) is
// skipped. Errors are reported at the line of the Markdown or source file they come from.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.join(root, ".examples-check")
const publicModules = ["index", "Procedure", "Runtime", "Execution", "Errors", "Store", "SqlStore", "Cluster", "Validate", "Dependency", "Plugin", "AuditLog", "http/Server", "mcp/main"]

/** @type {Array<{ from: string, line: number, code: string }>} */
const blocks = []

const markdown = ["README.md", ...fs.readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
for (const file of markdown) {
  const lines = fs.readFileSync(path.join(root, file), "utf8").split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue
    let before = i - 1
    while (before >= 0 && lines[before].trim() === "") before--
    const skipped = before >= 0 && lines[before].startsWith("<!-- not type-checked")
    const start = i + 1
    while (++i < lines.length && !lines[i].startsWith("```"));
    if (!skipped) blocks.push({ from: file, line: start + 1, code: lines.slice(start, i).join("\n") })
  }
}

for (const name of publicModules) {
  const file = `src/${name}.ts`
  const lines = fs.readFileSync(path.join(root, file), "utf8").split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\*\s*@example/.test(lines[i])) continue
    while (++i < lines.length && !/^\s*\*\s*```/.test(lines[i]));
    const start = i + 1
    while (++i < lines.length && !/^\s*\*\s*```/.test(lines[i]));
    const code = lines.slice(start, i).map((l) => l.replace(/^\s*\*( |$)/, "")).join("\n")
    blocks.push({ from: file, line: start + 1, code })
  }
}

// Examples import the project's own example modules as a user's app would import its own
// files ("./deploy.js", "../examples/approval.js"): point those at examples/.
const rewrite = (code) =>
  code.replace(/from "(?:\.\.?\/)+(?:examples\/)?([\w-]+)\.js"/g, (_, name) => `from "../examples/${name}.js"`)

fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out)
const files = blocks.map((block, n) => {
  const name = `${String(n).padStart(3, "0")}-${block.from.replace(/[/.]/g, "_")}.ts`
  fs.writeFileSync(path.join(out, name), `${rewrite(block.code)}\nexport {}\n`)
  return { ...block, name }
})
fs.writeFileSync(path.join(out, "tsconfig.json"), JSON.stringify({
  extends: "../tsconfig.json",
  compilerOptions: { noUnusedLocals: false, noUnusedParameters: false },
  include: ["*.ts"]
}, null, 2))

const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", out], { encoding: "utf8" })
const byName = new Map(files.map((f) => [f.name, f]))
const errors = tsc.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => {
  // tsc names each file by its path from the working directory: its base name is enough
  const m = /([^/\\(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(l)
  const block = m && byName.get(m[1])
  return block ? `${block.from}:${block.line + Number(m[2]) - 1}:${m[3]} ${m[4]}` : l
})
if (tsc.status !== 0) {
  console.error(errors.join("\n"))
  console.error(`\n${errors.filter((e) => / error TS/.test(e)).length} error(s) in the documentation's examples (${files.length} checked); fix the example or, for a signature sketch, put <!-- not type-checked: why --> on the line before its fence.`)
  process.exit(1)
}
fs.rmSync(out, { recursive: true, force: true })
console.log(`${files.length} examples type-check (${markdown.length} Markdown files, ${publicModules.length} public modules)`)
