/**
 * A bench child process: runs one case module of bench/cases with the JSON arguments it
 * is given, reports figures on stdout (`@@result {json}`) and progress on stderr. The
 * orchestrator (bench/index.ts) starts one per system, so memory figures are that
 * system's own.
 *
 *   node --expose-gc --import tsx bench/worker.ts <case> '<json>'
 */
const name = process.argv[2]
const cases: Record<string, () => Promise<{ readonly main: (args: any) => Promise<unknown> }>> = {
  proctor: () => import("./cases/proctor.js"),
  xstate: () => import("./cases/xstate.js"),
  fiber: () => import("./cases/fiber.js"),
  workflow: () => import("./cases/workflow.js"),
  raw: () => import("./cases/raw.js"),
  recovery: () => import("./cases/recovery.js"),
  w6: () => import("./cases/w6.js"),
  w7: () => import("./cases/w7.js"),
  wake: () => import("./cases/wake.js")
}

const load = name === undefined ? undefined : cases[name]
if (load === undefined) {
  process.stderr.write(`unknown case ${name}; one of ${Object.keys(cases).join(", ")}\n`)
  process.exit(2)
}
/** `{ "tasks": [args, ...] }` runs several tasks of one case in turn, in this one process */
const runAll = async (mod: { readonly main: (args: any) => Promise<unknown> }, args: any) => {
  for (const task of Array.isArray(args.tasks) ? args.tasks : [args]) await mod.main(task)
}
load()
  .then((mod) => runAll(mod, JSON.parse(process.argv[3] ?? "{}")))
  .then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
      process.exit(1)
    }
  )
