/**
 * Finds the procedures the CLI registers with its runtime: those exported by the modules
 * named with `--module PATH` (repeatable) or `PROCTOR_MODULES`, and, when the CLI runs from
 * a clone of Proctor's repository (not from an installed package), those of its
 * `examples/` folder.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Schema } from "effect"
import * as Procedure from "../Procedure.js"
import { importFile } from "./typescript.js"

/**
 * A module could not be imported, or exports no procedure.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModuleLoadError extends Schema.TaggedError<ModuleLoadError>()("ModuleLoadError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Cannot load procedures from ${this.path}: ${this.reason}`
  }
}

/**
 * A registered procedure and the module it came from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded {
  readonly procedure: Procedure.Any
  /** the module's path and the export's name */
  readonly source: string
  /** the module's absolute path */
  readonly file: string
  /** the migrations (`Procedure.migration`) the same module exports */
  readonly migrations?: ReadonlyArray<Procedure.Migration> | undefined
}

/**
 * The procedures a module exports: every export that is a procedure, or an array of them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const collect = (mod: Record<string, unknown>, file: string, absolute: string = file): ReadonlyArray<Loaded> => {
  const out: Array<Loaded> = []
  const seen = new Set<unknown>()
  const migrations: Array<Procedure.Migration> = []
  const add = (value: unknown, name: string) => {
    if (isMigration(value) && !seen.has(value)) {
      seen.add(value)
      migrations.push(value)
    }
    if (Procedure.isProcedure(value) && !seen.has(value)) {
      seen.add(value)
      out.push({ procedure: value, source: `${file}#${name}`, file: absolute })
    }
  }
  const visit = (exports: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(exports)) {
      if (Array.isArray(value)) value.forEach((v, i) => add(v, `${name}[${i}]`))
      else add(value, name)
    }
  }
  visit(mod)
  // a CommonJS module (a `.ts` file of a `"type": "commonjs"` package) comes to `import()`
  // as `{ default: module.exports }`: its procedures are the properties of `default`
  const cjs = mod.default
  if (typeof cjs === "object" && cjs !== null && !Array.isArray(cjs) && !Procedure.isProcedure(cjs)) {
    visit(cjs as Record<string, unknown>)
  }
  return migrations.length === 0 ? out : out.map((l) => ({ ...l, migrations }))
}

const isMigration = (u: unknown): u is Procedure.Migration =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "Migration" &&
  Procedure.isProcedure((u as { from?: unknown }).from) && Procedure.isProcedure((u as { to?: unknown }).to)

/**
 * Imports a TypeScript or JavaScript module and returns the procedures it exports.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadModule = (file: string): Effect.Effect<ReadonlyArray<Loaded>, ModuleLoadError> =>
  Effect.gen(function*() {
    const absolute = path.resolve(file)
    if (!fs.existsSync(absolute)) {
      return yield* new ModuleLoadError({ path: file, reason: "no such file; check the path (it is resolved from the current folder)" })
    }
    const mod = yield* Effect.tryPromise({
      try: () => importFile(absolute),
      catch: (cause) =>
        new ModuleLoadError({
          path: file,
          reason: `importing it failed: ${cause instanceof Error ? cause.message : String(cause)}`
        })
    })
    const found = collect(mod, path.relative(process.cwd(), absolute) || file, absolute)
    if (found.length === 0) {
      return yield* new ModuleLoadError({
        path: file,
        reason: "it exports no procedure; export the value returned by Procedure.make (e.g. `export const Approval = Procedure.make(...)`)"
      })
    }
    return found
  })

/**
 * The repository's `examples/` folder (next to `src/`).
 *
 * @since 0.1.0
 * @category constants
 */
export const examplesDir: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../examples")

/**
 * Whether the examples are loaded unless `--no-examples`: only when `dir` belongs to a
 * clone of the repository. An installed Proctor (any folder under `node_modules`) never
 * offers its own examples as the application's procedures.
 *
 * @since 0.1.0
 * @category predicates
 */
export const examplesByDefault = (dir: string = examplesDir): boolean =>
  !dir.split(/[\\/]/).includes("node_modules") && fs.existsSync(dir)

/**
 * The example modules loaded by default: every `examples/**.ts` file that defines
 * procedures (`Procedure.make(`). Such a file must not run anything when it is imported;
 * the examples guard their demo with `if (isMain(import.meta.url))`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const exampleFiles = (dir: string = examplesDir): ReadonlyArray<string> => {
  const out: Array<string> = []
  const walk = (d: string, depth: number) => {
    let entries: Array<fs.Dirent>
    try {
      entries = fs.readdirSync(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(d, e.name)
      if (e.isDirectory() && depth < 2 && e.name !== "node_modules") walk(full, depth + 1)
      else if (e.isFile() && /\.(ts|js|mjs)$/.test(e.name) && !/\.(test|spec|d)\.ts$/.test(e.name)) {
        const text = fs.readFileSync(full, "utf8")
        if (/Procedure\.make\(/.test(text)) out.push(full)
      }
    }
  }
  walk(dir, 0)
  return out
}

/**
 * Where the CLI looks for procedures.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sources {
  /** `--module` paths, then `PROCTOR_MODULES` */
  readonly modules: ReadonlyArray<string>
  /** load `examples/` too (see `examplesByDefault`) */
  readonly examples: boolean
}

/**
 * The modules named by `PROCTOR_MODULES` (separated by `,` or the platform's path delimiter).
 *
 * @since 0.1.0
 * @category constructors
 */
export const envModules = (env: NodeJS.ProcessEnv = process.env): ReadonlyArray<string> =>
  (env.PROCTOR_MODULES ?? "").split(new RegExp(`[,${path.delimiter}]`)).map((s) => s.trim()).filter((s) => s !== "")

/**
 * Loads every procedure the sources name. A module named explicitly that fails to
 * load is an error; an example that fails is skipped with a warning. Two procedures
 * with the same name and version: the first one wins (explicit modules come first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadAll = (sources: Sources): Effect.Effect<
  { readonly loaded: ReadonlyArray<Loaded>; readonly warnings: ReadonlyArray<string> },
  ModuleLoadError
> =>
  Effect.gen(function*() {
    const loaded: Array<Loaded> = []
    const warnings: Array<string> = []
    const keys = new Set<string>()
    const add = (items: ReadonlyArray<Loaded>) => {
      for (const item of items) {
        const key = `${item.procedure.name}@${item.procedure.version}`
        if (keys.has(key)) continue
        keys.add(key)
        loaded.push(item)
      }
    }
    for (const file of sources.modules) add(yield* loadModule(file))
    if (sources.examples && examplesByDefault()) {
      for (const file of exampleFiles()) {
        const result = yield* Effect.either(loadModule(file))
        if (result._tag === "Right") add(result.right)
        else warnings.push(`skipped example ${path.relative(process.cwd(), file)}: ${result.left.reason}`)
      }
    }
    return { loaded, warnings }
  })
