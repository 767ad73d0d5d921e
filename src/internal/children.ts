/**
 * The runtime's side of child procedures (`child.ts` has the state): starting a child and
 * waiting for its end, ending a child whose parent left the state that started it, and
 * checking, when a child is loaded, that its parent still waits for it.
 */
import { Cause, Effect, Either, Option } from "effect"
import type { Fiber } from "effect"
import { ChildFailed, DefinitionError } from "../Errors.js"
import type { StoreError } from "../Errors.js"
import type { ExecutionId, Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type * as Procedure from "../Procedure.js"
import type { StoreService } from "../Store.js"
import { childId, childKey, childOf, orphaned, originOf } from "./child.js"
import type { CommandError, CommandInput } from "./handle.js"
import { parallelOf } from "./regions.js"
import * as Regions from "./regions.js"
import type { ChildSpec, StepArgs } from "./states.js"
import { stateOf } from "./states.js"
import type { StartOptions } from "./runtime.js"
import type { Compiled } from "./transition.js"
import { walk } from "./compound.js"
import { procedureKey } from "./transition.js"

export interface Deps {
  readonly store: StoreService
  readonly registry: ReadonlyMap<string, Compiled>
  /** the definition of an execution whose run is in memory (a parent in its attempt) */
  readonly running: (id: string) => Compiled | undefined
  readonly lookup: (snapshot: Snapshot) => Compiled | undefined
  readonly start: (procedure: Procedure.Any, input: unknown, opts?: StartOptions) => Effect.Effect<ExecutionId, unknown>
  readonly await: (id: string) => Effect.Effect<Snapshot, unknown>
  /** calls `f` with the execution's end when it commits in this runtime, returning what stops the wait; undefined when its end may come elsewhere (several runners) */
  readonly onEnd: (id: string, f: (end: Snapshot) => void) => (() => void) | undefined
  readonly command: (id: string, input: CommandInput) => Effect.Effect<Snapshot, CommandError>
  readonly fork: (effect: Effect.Effect<void, StoreError>) => Fiber.RuntimeFiber<void, StoreError>
}

/** Refuses a registry where a child state's procedure is not registered. */
export const checkRegistered = (registry: ReadonlyMap<string, Compiled>) => {
  for (const compiled of registry.values()) {
    for (const [name, state] of walk(compiled.def.states)) {
      if (state._tag !== "Step" || state.child === undefined || state.child.parallel !== undefined) continue
      const { name: child, version } = state.child
      if (!registry.has(procedureKey(child, version))) {
        return Either.left(
          new DefinitionError({
            procedure: compiled.def.name,
            reason: `state "${name}" runs procedure "${child}" version ${version} as a child, which is not registered ` +
              `with this runtime; add it to Runtime.layer({ procedures })`
          })
        )
      }
    }
  }
  return Either.right(undefined)
}

export const make = (deps: Deps) => {
  /** Runs the child of a child state's attempt to its end (see `child.ts`), or a parallel state's regions (`regions.ts`). */
  const run = (child: ChildSpec, args: StepArgs<unknown>): Effect.Effect<unknown, unknown> =>
    child.parallel !== undefined ? regions.run(child.parallel, args) : Effect.gen(function*() {
      const procedure = child.procedure as Procedure.Any
      const input = child.input(args.context)
      const key = childKey(args.idempotencyKey)
      const id = yield* deps.start(procedure, input, {
        id: childId(key),
        idempotencyKey: key,
        parentId: args.executionId
      })
      const done = yield* deps.await(id)
      if (done.status !== "succeeded") {
        return yield* new ChildFailed({
          executionId: args.executionId,
          state: args.state,
          childId: id,
          procedure: procedure.name,
          status: done.status,
          error: done.error === undefined ? undefined : `${done.error.tag} in state "${done.state}"`
        })
      }
      const compiled = deps.registry.get(procedureKey(procedure.name, procedure.version))!
      const context = compiled.decodeContext(done.context)
      if (Either.isLeft(context)) return yield* Effect.die(context.left)
      return { id, outcome: done.outcome ?? "succeeded", context: context.right }
    })

  /**
   * Ends (or pauses) the child `id` as `how` says, if it still runs; a rollback also undoes
   * a child that succeeded. What refuses (it ended otherwise, it never started) is fine.
   */
  const end = (id: string, how: "Pause" | "Cancel" | "Rollback", reason: string) =>
    Effect.flatMap(deps.store.get(id), (found) => {
      // one that ended (the usual case: the parent moves on after its child or regions ended)
      // or never started needs no command, whose refusal would cost an error
      if (Option.isNone(found) || (isTerminal(found.value.status) && !(how === "Rollback" && found.value.status === "succeeded"))) return Effect.void
      return deps.command(id, how === "Cancel" ? { _tag: "Cancel", reason } : how === "Pause" ? { _tag: "Pause" } : { _tag: "Rollback", compensable: true, undo: reason })
    }).pipe(
      Effect.asVoid,
      Effect.catchAllCause((cause) => {
        const failure = Cause.failureOption(cause)
        const tag = Option.isSome(failure) ? failure.value._tag : undefined
        return tag === "InvalidTransition" || tag === "ExecutionNotFound"
          ? Effect.void
          : Effect.logWarning(`Could not end child execution ${id} (${how}); it is ended when it is next loaded`, cause)
      })
    )

  /**
   * After a commit of `parent` that left the visit `left` of a child state: the child, if
   * it still runs, is rolled back when the parent compensates, cancelled otherwise.
   */
  const left = (parent: Snapshot, left: { readonly state: string; readonly visit: number }) => {
    const how = orphaned(left, parent)
    if (how === undefined) return
    const spec = parallelOf(stateOf(deps.registry.get(procedureKey(parent.procedure, parent.version))?.def ?? { states: {} }, left.state))
    if (spec !== undefined) return regions.left(parent, spec, left, how)
    deps.fork(end(childOf(parent.id, left.state, left.visit), how, `parent ${parent.id} left state "${left.state}" (${parent.status})`))
  }

  /**
   * When a child is loaded: if its parent no longer waits for it (a crash came between the
   * parent's commit and `left`), the command that ends it, to run before anything else.
   */
  const orphanCommand = (snapshot: Snapshot) => {
    const origin = originOf(snapshot)
    if (origin === undefined || isTerminal(snapshot.status)) return Effect.succeed(undefined)
    return Effect.map(deps.store.get(origin.parentId), (parent): CommandInput | undefined => {
      const how = orphaned(origin, Option.getOrUndefined(parent))
      if (how === undefined) return undefined
      // a region: its parent's order across the regions holds for their compensations too, so
      // all of them are rolled back together (as `left` would have)
      const found = Option.getOrUndefined(parent)
      const spec = how === "Rollback" && origin.region !== undefined && found !== undefined
        ? parallelOf(stateOf(deps.lookup(found)?.def ?? { states: {} }, origin.state))
        : undefined
      if (spec !== undefined && found !== undefined) {
        regions.left(found, spec, origin, "Rollback")
        return undefined
      }
      return how === "Cancel"
        ? { _tag: "Cancel", reason: `parent ${origin.parentId} no longer waits in state "${origin.state}"` }
        : { _tag: "Rollback", compensable: true }
    })
  }

  /**
   * A child or parallel state's compensation, when the parent compensates the state after
   * its visit completed (at `stepSeq`): the child, or each region (in `rollBack`'s order), is
   * rolled back — undone if it succeeded — and awaited. Idempotent by the children's
   * status, so a compensation run again after a crash compensates nothing twice.
   */
  const undo = (child: ChildSpec, parentId: string, state: string, stepSeq: number) =>
    Effect.gen(function*() {
      // the children the visit started: those of the state's latest visit before the step completed
      const found: Array<{ readonly id: string; readonly visit: number; readonly region: string }> = []
      for (const s of yield* deps.store.list({ parentId, limit: 100_000 })) {
        const origin = originOf(s)
        if (origin !== undefined && origin.state === state && origin.visit < stepSeq) found.push({ id: s.id, visit: origin.visit, region: origin.region ?? "" })
      }
      const visit = Math.max(...found.map((c) => c.visit))
      const mine = found.filter((c) => c.visit === visit)
      const reason = `parent ${parentId} compensates state "${state}"`
      if (child.parallel !== undefined) {
        yield* regions.rollBack(mine.map((c) => ({ name: c.region, id: c.id, compiled: undefined })), reason)
        return
      }
      for (const c of mine) {
        yield* end(c.id, "Rollback", reason)
        yield* deps.await(c.id)
      }
    })

  const regions = Regions.make({ ...deps, end })

  return { run, left, orphanCommand, undo, receivers: regions.receivers, collect: regions.collect, refuseWait: regions.refuseWait }
}

