/**
 * The definition checks of a readiness report: for each registered procedure, the checks
 * the runtime makes when it registers it (`Procedure.validate`: unreachable states, states
 * with no way to a final state, bad durations; `Procedure.checkRetries`), its shape as
 * front ends describe it (`describe`), and which steps can be undone; then the procedures
 * registered together, as `Runtime.layer` registers them (regions, child procedures,
 * migrations), on a memory store. No rule is written here: the runtime's are asked.
 */
import { Effect, Either, Exit } from "effect"
import * as Procedure from "../Procedure.js"
import * as Runtime from "../Runtime.js"
import * as Store from "../Store.js"
import { walk } from "./compound.js"
import { describe } from "./describe.js"
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

/** Which of the procedure's steps declare a compensation, and the warning about those that do not. */
const compensations = (procedure: Procedure.Any) => {
  const steps = walk(procedure.states).filter(([, s]) => s._tag === "Step" && s.child === undefined)
  const compensated = steps.filter(([, s]) => s._tag === "Step" && s.compensate !== undefined).map(([name]) => name)
  const bare = steps.map(([name]) => name).filter((name) => !compensated.includes(name))
  // a procedure that undoes some steps expects a rollback to undo its work; the runtime
  // cannot know whether the others have effects to undo, so this is a warning
  const warnings = compensated.length > 0 && bare.length > 0
    ? [
      `a rollback undoes ${compensated.join(", ")} but not ${bare.join(", ")}: give ${bare.length === 1 ? "it" : "them"} a \`compensate\` if ${bare.length === 1 ? "it has" : "they have"} effects to undo`
    ]
    : []
  return { compensated, warnings }
}

/** The definition checks of one procedure. */
export const checkProcedure = (registered: Registered): Effect.Effect<ProcedureReport> =>
  Effect.gen(function*() {
    const { procedure, source } = registered
    const valid = Procedure.validate(procedure)
    const retries = Either.isRight(valid) ? yield* Effect.exit(Procedure.checkRetries(procedure)) : Exit.void
    const refused = Either.isLeft(valid) ? valid.left.message : Exit.isFailure(retries) ? reasonOf(retries.cause) : undefined
    const shape = yield* Effect.try(() => describe(procedure)).pipe(Effect.option)
    const kinds = shape._tag === "Some" ? shape.value.states.map((s) => s.kind) : []
    const count = (kind: string) => kinds.filter((k) => k === kind).length
    const { compensated, warnings } = compensations(procedure)
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
