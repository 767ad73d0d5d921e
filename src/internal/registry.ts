/**
 * The registry of a runtime's procedures: each definition checked and compiled once, by
 * name and version (with the procedures derived from parallel states' regions), and the
 * lookups every operation makes in it: the definition an execution runs on, why there is
 * none, the registered version of a procedure a caller passes.
 */
import { Effect, Either } from "effect"
import { DefinitionError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import { checkRetries, validate } from "../Procedure.js"
import * as Children from "./children.js"
import * as Regions from "./regions.js"
import type { Compiled } from "./transition.js"
import { compile, procedureKey } from "./transition.js"

export type Registry = ReadonlyMap<string, Compiled>

/** Checks and compiles `procedures` (and their regions' procedures); refuses a version registered twice or a child not registered. */
export const register = (procedures: ReadonlyArray<Procedure.Any>) =>
  Effect.gen(function*() {
    const registry = new Map<string, Compiled>()
    const all = Regions.derive(procedures)
    if (Either.isLeft(all)) return yield* all.left
    for (const def of all.right) {
      const checked = validate(def)
      if (Either.isLeft(checked)) return yield* checked.left
      yield* checkRetries(def)
      const compiled = compile(def)
      if (registry.has(compiled.key)) {
        return yield* new DefinitionError({
          procedure: def.name,
          reason: `version ${def.version} is registered twice; give each definition its own version`
        })
      }
      registry.set(compiled.key, compiled)
    }
    const unregistered = Children.checkRegistered(registry)
    if (Either.isLeft(unregistered)) return yield* unregistered.left
    return registry
  })

/**
 * The compiled definition an execution runs on: registered under its name and version,
 * with the shape it started on (an execution stored before fingerprints were kept has none
 * and is taken as it is). Otherwise `unavailable` says why there is none.
 */
export const lookup = (registry: Registry, snapshot: Snapshot) => {
  const compiled = registry.get(procedureKey(snapshot.procedure, snapshot.version))
  return compiled !== undefined && (snapshot.fingerprint === undefined || snapshot.fingerprint === compiled.fingerprint)
    ? compiled
    : undefined
}

/** Why `lookup` finds no definition for this execution, and what to do. */
export const unavailable = (registry: Registry, s: Snapshot) =>
  registry.has(procedureKey(s.procedure, s.version))
    ? `Procedure ${s.procedure} version ${s.version} changed since this execution started (its states or transitions ` +
      `differ). Give the changed definition a new version and keep the old one registered, so that executions ` +
      `started on it finish on it; this execution was left as it is.`
    : `Procedure ${s.procedure} version ${s.version} is not registered with this runtime; register it in ` +
      `Runtime.layer to resume its executions.`

/** The registered compiled definition of `procedure` (the same object the caller passes). */
export const resolve = (registry: Registry, procedure: Procedure.Any) => {
  const compiled = registry.get(procedureKey(procedure.name, procedure.version))
  return compiled !== undefined && compiled.def === procedure
    ? Effect.succeed(compiled)
    : Effect.fail(
      new DefinitionError({
        procedure: procedure.name,
        reason: `version ${procedure.version} is not registered with this runtime; add it to Runtime.layer({ procedures })`
      })
    )
}
