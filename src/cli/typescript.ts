/**
 * Imports the modules a user names on the command line. The CLI is compiled JavaScript;
 * tsx (a TypeScript loader) is loaded only here, the first time a TypeScript module is
 * given, so `proctor --help` or a `.js` module never pays for it.
 *
 * @since 0.1.0
 */
import Module from "node:module"
import { pathToFileURL } from "node:url"

const typeScript = /\.(c|m)?tsx?$/i

/**
 * Whether tsx has to load the file (`.ts`, `.mts`, `.cts`, `.tsx`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTypeScript = (file: string): boolean => typeScript.test(file)

let registered: Promise<void> | undefined

/**
 * Registers tsx for both module systems: its ESM hooks load `.ts` files of `"type":
 * "module"` packages, its CommonJS hooks those of `"type": "commonjs"` ones (Node's own
 * CommonJS loader would read them untransformed). tsx's CommonJS hooks also rewrite every
 * ES module that is `require`d into CommonJS, which would load a second copy of Proctor
 * (and of Effect) beside the one the CLI runs, so `.js` files are handed back to Node:
 * its `require(esm)` returns the very modules the CLI already imported.
 */
const register = async (): Promise<void> => {
  const esm = await import("tsx/esm/api")
  const cjs = await import("tsx/cjs/api")
  esm.register()
  const extensions = (Module as unknown as { _extensions: Record<string, unknown> })._extensions
  const nodeJs = extensions[".js"]
  cjs.register()
  extensions[".js"] = nodeJs
}

/**
 * Imports a module by absolute path: a TypeScript module through tsx (registered once,
 * on first use), anything else with Node's own `import()`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const importFile = async (absolute: string): Promise<Record<string, unknown>> => {
  if (isTypeScript(absolute)) await (registered ??= register())
  return import(pathToFileURL(absolute).href) as Promise<Record<string, unknown>>
}
