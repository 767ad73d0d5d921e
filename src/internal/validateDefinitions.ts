/**
 * The definition checks of a readiness report: for each registered procedure, the checks
 * the runtime makes when it registers it (`Procedure.validate`: unreachable states, states
 * with no way to a final state, bad durations; `Procedure.checkRetries`), its shape as
 * front ends describe it (`describe`), and which steps can be undone; then the procedures
 * registered together, as `Runtime.layer` registers them (regions, child procedures,
 * migrations), on a memory store. No rule is written here: the runtime's are asked.
 */
import { Effect, Either, Exit, Option } from "effect"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as Store from "../Store.js"
import { walk } from "./compound.js"
import { describe, type ProcedureInfo } from "./describe.js"
import * as Regions from "./regions.js"
import { reasonOf } from "./validateModel.js"
import type { Check, ProcedureReport } from "./validateModel.js"

/** A procedure to check, and where it came from. */
export interface Registered {
  readonly procedure: Procedure.Any
  readonly source?: string | undefined
}

/**
 * The procedures with those the runtime derives from them and registers too: one per region
 * of a parallel state (its executions run the region's steps). A procedure whose regions
 * cannot be derived stays alone (`checkRegistration` reports why).
 */
export const withRegions = (registered: ReadonlyArray<Registered>): ReadonlyArray<Registered> =>
  registered.flatMap((r) => {
    const derived = Regions.derive([r.procedure])
    return Either.isLeft(derived)
      ? [r]
      : [r, ...derived.right.slice(1).map((procedure) => ({ procedure, source: `a region of ${r.procedure.name}@${r.procedure.version}` }))]
  })

/**
 * Whether a state named in `targets` can follow `from`, along the transitions `describe`
 * gives (a step whose `next` is a function without `targets` may go anywhere; a state's
 * ancestors' transitions apply while it is active; entering a compound enters its initial).
 */
const leadsTo = (shape: ProcedureInfo, from: string, targets: ReadonlySet<string>): boolean => {
  const byName = new Map(shape.states.map((s) => [s.name, s]))
  const after = (name: string): ReadonlyArray<string> => {
    const s = byName.get(name)
    if (s === undefined) return []
    const out = s.anyTarget ? [...byName.keys()] : s.edges.map((e) => e.to)
    for (let p = s.parent; p !== undefined; p = byName.get(p)?.parent) out.push(...(byName.get(p)?.edges.map((e) => e.to) ?? []))
    if (s.initial !== undefined) out.push(s.initial)
    return out
  }
  const seen = new Set<string>()
  const queue = [...after(from)]
  while (queue.length > 0) {
    const name = queue.pop()!
    if (targets.has(name)) return true
    if (seen.has(name)) continue
    seen.add(name)
    queue.push(...after(name))
  }
  return false
}

/**
 * Which of the procedure's steps declare a compensation, and a warning naming the steps
 * without one that can run before a step with one: a rollback from there undoes the later
 * step but not them. (Steps after the last compensated one are a saga's pivot and retriable
 * steps: not undone on purpose.) The runtime cannot know whether they have effects to
 * undo, so it is a warning.
 */
const compensations = (procedure: Procedure.Any, shape: ProcedureInfo | undefined) => {
  const steps = walk(procedure.states).filter(([, s]) => s._tag === "Step" && s.child === undefined)
  const compensated = steps.filter(([, s]) => s._tag === "Step" && s.compensate !== undefined).map(([name]) => name)
  const undone = new Set(compensated)
  const bare = shape === undefined ? [] : steps.map(([name]) => name).filter((name) => !undone.has(name) && leadsTo(shape, name, undone))
  const warnings = bare.length === 0 ? [] : [
    `${bare.join(", ")} can run before a step a rollback undoes (${compensated.join(", ")}) but ${bare.length === 1 ? "has" : "have"} no \`compensate\`: ` +
    `a rollback from there leaves ${bare.length === 1 ? "its" : "their"} effects; give ${bare.length === 1 ? "it" : "them"} one if there are effects to undo`
  ]
  return { compensated, warnings }
}

/** The definition checks of one procedure. */
export const checkProcedure = (registered: Registered): Effect.Effect<ProcedureReport> =>
  Effect.gen(function*() {
    const { procedure, source } = registered
    const valid = Procedure.validate(procedure)
    const retries = Either.isRight(valid) ? yield* Effect.exit(Procedure.checkRetries(procedure)) : Exit.void
    const refused = Either.isLeft(valid) ? valid.left.message : Exit.isFailure(retries) ? reasonOf(retries.cause) : undefined
    const shape = Option.getOrUndefined(yield* Effect.try(() => describe(procedure)).pipe(Effect.option))
    const kinds = shape?.states.map((s) => s.kind) ?? []
    const count = (kind: string) => kinds.filter((k) => k === kind).length
    const { compensated, warnings } = compensations(procedure, shape)
    return {
      name: procedure.name,
      version: procedure.version,
      ...(source === undefined ? {} : { source }),
      ok: refused === undefined,
      ...(refused === undefined ? {} : { reason: refused }),
      states: kinds.length,
      steps: count("step"),
      waits: count("wait"),
      finals: count("final"),
      compensated,
      warnings
    }
  })

/**
 * The procedures registered together, as the runtime registers them: duplicate versions,
 * the procedures of child states and parallel regions, and the migrations between versions.
 */
export const checkRegistration = (
  procedures: ReadonlyArray<Procedure.Any>,
  migrations: ReadonlyArray<Procedure.Migration>
): Effect.Effect<Check> =>
  Runtime.make({ procedures, migrations, recover: false }).pipe(
    Effect.provide(Store.layerMemory),
    Effect.scoped,
    Effect.exit,
    Effect.map((exit): Check => {
      const title = "Registration"
      if (procedures.length === 0) {
        return { id: "registration", title, ok: false, detail: title, reason: "no procedure is registered: name the modules that export them (--module PATH)" }
      }
      return Exit.isSuccess(exit)
        ? {
          id: "registration",
          title,
          ok: true,
          detail: `${procedures.length} procedure${procedures.length === 1 ? "" : "s"}${migrations.length === 0 ? "" : ` and ${migrations.length} migration${migrations.length === 1 ? "" : "s"}`} register together in a runtime`
        }
        : { id: "registration", title, ok: false, detail: title, reason: reasonOf(exit.cause) }
    })
  )
