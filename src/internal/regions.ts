/**
 * The runtime's side of parallel states (`parallel.ts` has the state): the procedures it
 * derives from their regions when it registers a parent, running a state's regions until
 * its mode is met or can no longer be, rolling back the regions still running and, when
 * the state fails, undoing those that succeeded (the compensations of all of them in one
 * order, the latest completed step first across the regions, run by the parent one at a
 * time), ending the regions of a state the parent left, and forwarding an event sent to
 * the parent to its regions.
 */
import { Deferred, Effect, Either, Exit, FiberId, Option } from "effect"
import { DefinitionError, ExecutionNotFound, InvalidTransition, RegionFailed } from "../Errors.js"
import type { StoreError, ValidationError } from "../Errors.js"
import type { ExecutionId, Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import * as Procedure from "../Procedure.js"
import type { StoreService } from "../Store.js"
import { childId, originOf, regionKey, regionOf } from "./child.js"
import type { CommandError, CommandInput } from "./handle.js"
import { misplacedChart, walk } from "./compound.js"
import type { ParallelResult, RegionResult } from "./parallel.js"
import type { AnyState, ParallelMode, ParallelSpec, StepArgs } from "./states.js"
import { stateOf } from "./states.js"
import type { StartOptions } from "./runtime.js"
import type { Compiled } from "./transition.js"
import { procedureKey } from "./transition.js"

/** The name of the procedure the runtime derives from a region: `<procedure>.<state>.<region>`. */
export const regionName = (procedure: string, state: string, region: string) => `${procedure}.${state}.${region}`

/** The regions of a state, if it is a parallel state. */
export const parallelOf = (state: AnyState | undefined): ParallelSpec | undefined =>
  state?._tag === "Step" ? state.child?.parallel : undefined

// a region's name is part of a procedure's name and of its executions' keys: kept plain
const plainName = /^[A-Za-z0-9_-]+$/

/**
 * The procedures to register: each given one, followed by those derived from the regions
 * of its parallel states (and of theirs). A region's procedure takes the parent's context
 * as its input and context, and its events; it is validated like any procedure, and an
 * error names the parent, the state and the region.
 */
export const derive = (procedures: ReadonlyArray<Procedure.Any>): Either.Either<Array<Procedure.Any>, DefinitionError> => {
  const out: Array<Procedure.Any> = []
  const add = (def: Procedure.Any): DefinitionError | undefined => {
    out.push(def)
    // a parallel state may be inside a compound state: its full path names it
    for (const [state, s] of walk(def.states)) {
      const spec = parallelOf(s)
      if (spec === undefined) continue
      const refuse = (reason: string) => new DefinitionError({ procedure: def.name, state, reason })
      const names = Object.keys(spec.regions)
      if (names.length === 0) return refuse("the parallel state has no regions; give it at least one")
      const mode = spec.mode
      if (typeof mode === "object" && (!Number.isInteger(mode.atLeast) || mode.atLeast < 1 || mode.atLeast > names.length)) {
        return refuse(`its mode { atLeast: ${mode.atLeast} } must be a whole number from 1 to the number of its regions (${names.length})`)
      }
      for (const name of names) {
        if (!plainName.test(name)) {
          return refuse(`region "${name}": a region's name may have only letters, digits, "_" and "-" (it is part of the name of the procedure its executions run)`)
        }
        const region = spec.regions[name]!
        const chart = walk(region.states).find(([, s]) => s._tag === "Chart")
        if (chart !== undefined) return refuse(`region "${name}" (its state "${chart[0]}"): ${misplacedChart("in a parallel state's region")}`)
        const derived: Procedure.Any = {
          [Procedure.TypeId]: Procedure.TypeId,
          name: regionName(def.name, state, name),
          version: def.version,
          description: `region "${name}" of the parallel state "${state}" of ${def.name}`,
          input: def.context,
          context: def.context,
          events: def.events,
          init: (input) => input,
          initial: region.initial,
          states: region.states,
          ...(def.maxTransitionsWithoutWaiting === undefined ? {} : { maxTransitionsWithoutWaiting: def.maxTransitionsWithoutWaiting })
        }
        const checked = Procedure.validate(derived)
        if (Either.isLeft(checked)) {
          const at = checked.left.state === undefined ? "" : ` (its state "${checked.left.state}")`
          return refuse(`region "${name}"${at}: ${checked.left.reason}`)
        }
        const nested = add(derived)
        if (nested !== undefined) return nested
      }
    }
    return undefined
  }
  for (const def of procedures) {
    const error = add(def)
    if (error !== undefined) return Either.left(error)
  }
  return Either.right(out)
}

/** Whether an execution of `states` may take an event tagged `tag` in one of its waits (or its regions'). */
const accepts = (states: { readonly [name: string]: AnyState }, tag: string): boolean =>
  Object.values(states).some((state) => {
    const on = (state as { readonly on?: object }).on
    if (on !== undefined && Object.hasOwn(on, tag)) return true
    const spec = parallelOf(state)
    if (spec !== undefined && Object.values(spec.regions).some((region) => accepts(region.states, tag))) return true
    // a compound state's children
    const inner = (state as { readonly states?: { readonly [name: string]: AnyState } }).states
    return inner !== undefined && accepts(inner, tag)
  })

/** How `settle` stops waiting for the other regions once the mode is met or lost. */
class Verdict {
  constructor(readonly verdict: "met" | "lost") {}
}

const modeName = (mode: ParallelMode) => typeof mode === "object" ? `at least ${mode.atLeast}` : mode

/** Whether the regions' ends meet the mode ("met"), can no longer meet it ("lost"), or neither yet. */
const judge = (mode: ParallelMode, total: number, ends: ReadonlyMap<string, Snapshot>): "met" | "lost" | undefined => {
  const need = mode === "all" ? total : mode === "race" ? 1 : mode.atLeast
  let succeeded = 0
  for (const end of ends.values()) if (end.status === "succeeded") succeeded++
  if (succeeded >= need) return "met"
  return total - (ends.size - succeeded) < need ? "lost" : undefined
}

/**
 * The order in which the compensations `owed` (per region, each region's completed steps
 * not undone yet in its commit order, with when each completed) run: the latest completion
 * first across all regions. Each region's own steps stay in reverse commit order even if a
 * clock went back; of steps that completed in the same millisecond, the one of the region
 * declared last goes first: a fixed rule rather than the true commit order, which no store
 * records across executions (why it is safe: docs/statecharts.md, "Ties").
 */
export const undoOrder = (owed: ReadonlyArray<ReadonlyArray<{ readonly stepSeq: number; readonly at: number }>>) => {
  const left = owed.map((steps) => steps.length)
  const order: Array<{ readonly region: number; readonly stepSeq: number }> = []
  for (;;) {
    let best = -1
    for (let i = owed.length - 1; i >= 0; i--) {
      if (left[i] === 0) continue
      if (best < 0 || owed[i]![left[i]! - 1]!.at > owed[best]![left[best]! - 1]!.at) best = i
    }
    if (best < 0) return order
    order.push({ region: best, stepSeq: owed[best]![--left[best]!]!.stepSeq })
  }
}

/**
 * Whether a rollback whose `undo` is a parent's reason leaves the execution's compensations
 * to its parent: it does for a parallel state's region (the parent runs them in its order
 * across the regions), not for a child procedure's execution.
 */
export const undoneByParent = (snapshot: Snapshot, undo: string | undefined) =>
  undo !== undefined && snapshot.status === "compensating" && originOf(snapshot)?.region !== undefined

export interface Deps {
  readonly store: StoreService
  readonly registry: ReadonlyMap<string, Compiled>
  /** the definition of an execution whose run is in memory (a parent in its attempt) */
  readonly running: (id: string) => Compiled | undefined
  readonly start: (procedure: Procedure.Any, input: unknown, opts?: StartOptions) => Effect.Effect<ExecutionId, unknown>
  readonly await: (id: string) => Effect.Effect<Snapshot, unknown>
  /** calls `f` with the execution's end when it commits in this runtime, returning what stops the wait; undefined when its end may come elsewhere (several runners) */
  readonly onEnd: (id: string, f: (end: Snapshot) => void) => (() => void) | undefined
  readonly lookup: (snapshot: Snapshot) => Compiled | undefined
  /** ends (or pauses) an execution if it still runs: what refuses (it ended, it never started) is fine */
  readonly end: (id: string, how: "Pause" | "Cancel" | "Rollback", reason: string) => Effect.Effect<void>
  readonly command: (id: string, input: CommandInput) => Effect.Effect<Snapshot, CommandError>
  readonly fork: (effect: Effect.Effect<void, StoreError>) => unknown
}

export interface RegionRun {
  readonly name: string
  readonly id: string
  readonly compiled: Compiled | undefined
}

export const make = (deps: Deps) => {
  /** whether any procedure has a parallel state: if not, `send` goes straight to the inbox */
  const any = [...deps.registry.values()].some((c) => walk(c.def.states).some(([, s]) => parallelOf(s) !== undefined))

  const regionsOf = (parent: Procedure.Any, spec: ParallelSpec, state: string, idempotencyKey: string): Array<RegionRun> =>
    Object.keys(spec.regions).map((name) => ({
      name,
      id: childId(regionKey(idempotencyKey, name)),
      compiled: deps.registry.get(procedureKey(regionName(parent.name, state, name), parent.version))
    }))

  const startRegion = (parentId: string, region: RegionRun, key: string, encodedContext: unknown) =>
    deps.start(region.compiled!.def, encodedContext, { id: region.id, idempotencyKey: regionKey(key, region.name), parentId })

  /** The completed steps of a region that rolls back whose compensation has not run, in commit order, from the store. */
  const owedBy = (id: string) =>
    Effect.gen(function*() {
      const found = yield* deps.store.get(id)
      const compiled = Option.isSome(found) && found.value.status === "compensating" ? deps.lookup(found.value) : undefined
      if (compiled === undefined || compiled.compensable.size === 0) return []
      const [history, done] = yield* Effect.all([deps.store.history(id), deps.store.compensations(id)])
      const undone = new Set(done.map((c) => c.stepSeq))
      return history.filter((t) => t.cause === "step" && compiled.compensable.has(t.from) && !undone.has(t.seq)).map((t) => ({ stepSeq: t.seq, at: t.at }))
    })

  /** One compensation, the parent's turn (`Compensate`); a region stopped meanwhile (cancelled) is passed over. */
  const compensate = (id: string, stepSeq: number) =>
    deps.command(id, { _tag: "Compensate", stepSeq }).pipe(
      Effect.asVoid,
      Effect.catchIf((e) => e._tag === "InvalidTransition" || e._tag === "ExecutionNotFound", () => Effect.void)
    )

  /**
   * Rolls back `regions`, running or succeeded, the compensations of all of them in one
   * order: the latest completed step first across the regions (`undoOrder`). All are
   * rolled back at once (the running steps of those still running interrupted, so no
   * more steps complete meanwhile); a region rolled back so by its parent waits for the
   * parent to run its compensations, which runs them one at a time (`Compensate`), each
   * answered once its record has committed. What is owed is read from the store, so
   * after a crash the parent's next attempt (or, for a parent that left the state, the
   * region when it is loaded again) goes on where the store says: a compensation that
   * committed never runs again, the one in flight at the crash runs again. Returns the
   * regions' ends in the order they ended.
   */
  const rollBack = (regions: ReadonlyArray<RegionRun>, reason: string) =>
    Effect.gen(function*() {
      if (regions.length === 0) return []
      yield* Effect.forEach(regions, (r) => deps.end(r.id, "Rollback", reason), { concurrency: "unbounded", discard: true })
      const owed = yield* Effect.forEach(regions, (r) => owedBy(r.id), { concurrency: "unbounded" })
      const ends: Array<readonly [RegionRun, Snapshot]> = []
      const finish = (region: RegionRun) =>
        // a region the parent never started (it left the state first) has nothing to undo
        Effect.map(
          Effect.catchIf(deps.await(region.id), (e) => (e as { readonly _tag?: unknown })._tag === "ExecutionNotFound", () => Effect.void),
          (end) => void (end !== undefined && ends.push([region, end]))
        )
      const left = owed.map((steps) => steps.length)
      for (const [i, region] of regions.entries()) if (left[i] === 0) yield* finish(region)
      for (const { region, stepSeq } of undoOrder(owed)) {
        yield* compensate(regions[region]!.id, stepSeq)
        // its last compensation done, a region ends rolled back
        if (--left[region]! === 0) yield* finish(regions[region]!)
      }
      return ends
    })

  /**
   * Waits until the regions' ends meet the mode or show it can no longer be met: each end,
   * as it comes, is judged with those before it; the first verdict stops the wait. The
   * last end always gives one. One wait in the parent's fiber: a callback per region for
   * its end, and a read of each for one that had ended (a retry, a recovery). A fiber per
   * region, awaiting it, cost more than all the rest of the parent's work for its regions
   * (docs/benchmarks.md, W6); it is kept for a runtime of several runners, where a
   * region's end may commit on another.
   */
  const settle = (mode: ParallelMode, regions: ReadonlyArray<RegionRun>, ends: Map<string, Snapshot>) =>
    Effect.suspend(() => {
      const wake = Deferred.unsafeMake<"met" | "lost">(FiberId.none)
      let verdict: "met" | "lost" | undefined
      const take = (name: string, end: Snapshot) => {
        if (verdict !== undefined || ends.has(name)) return
        ends.set(name, end)
        verdict = judge(mode, regions.length, ends)
        if (verdict !== undefined) Deferred.unsafeDone(wake, Exit.succeed(verdict))
      }
      const stops: Array<() => void> = []
      for (const r of regions) {
        const stop = deps.onEnd(r.id, (end) => take(r.name, end))
        if (stop === undefined) {
          for (const s of stops) s()
          return settleEach(mode, regions, ends)
        }
        stops.push(stop)
      }
      return Effect.gen(function*() {
        for (const r of regions) {
          if (verdict !== undefined) break
          const found = yield* deps.store.get(r.id)
          if (Option.isNone(found)) return yield* new ExecutionNotFound({ executionId: r.id })
          if (isTerminal(found.value.status)) take(r.name, found.value)
        }
        return yield* Deferred.await(wake)
      }).pipe(Effect.ensuring(Effect.sync(() => stops.forEach((stop) => stop()))))
    })

  /** `settle` with a fiber per region, each awaiting it (the first verdict, the `forEach`'s failure, interrupts the others). */
  const settleEach = (mode: ParallelMode, regions: ReadonlyArray<RegionRun>, ends: Map<string, Snapshot>) =>
    Effect.forEach(regions, (r) =>
      Effect.flatMap(deps.await(r.id), (end) => {
        ends.set(r.name, end)
        const verdict = judge(mode, regions.length, ends)
        return verdict === undefined ? Effect.void : Effect.fail(new Verdict(verdict))
      }), { concurrency: "unbounded", discard: true }).pipe(
      Effect.flatMap(() => Effect.dieMessage("every region ended without a verdict")),
      Effect.catchIf((e): e is Verdict => e instanceof Verdict, (v) => Effect.succeed(v.verdict))
    )

  const resultOf = (region: RegionRun, end: Snapshot): RegionResult<unknown> => {
    const context = region.compiled!.decodeContext(end.context)
    if (Either.isLeft(context)) throw context.left
    return { id: region.id, status: end.status, ...(end.outcome === undefined ? {} : { outcome: end.outcome }), context: context.right }
  }

  /** Runs the regions of a parallel state's attempt to the end its mode calls for (see `parallel.ts`). */
  const run = (spec: ParallelSpec, args: StepArgs<unknown>): Effect.Effect<ParallelResult<unknown>, unknown> =>
    Effect.gen(function*() {
      const parent = deps.running(args.executionId)
      if (parent === undefined) return yield* Effect.dieMessage(`the parallel state "${args.state}" of ${args.executionId} runs outside its run`)
      const regions = regionsOf(parent.def, spec, args.state, args.idempotencyKey)
      const input = regions[0]!.compiled!.encodeContext(args.context)
      if (Either.isLeft(input)) return yield* Effect.die(input.left)
      // started (or found again) one after another in this fiber: a fiber per region cost
      // more than the waits for their commits, on SQLite too (docs/benchmarks.md, W6)
      for (const r of regions) yield* startRegion(args.executionId, r, args.idempotencyKey, input.right)
      const ends = new Map<string, Snapshot>()
      const verdict = yield* settle(spec.mode, regions, ends)
      // the region that failed rather than one rolled back (a parent's attempt after a crash may find both)
      const culprit = () => [...ends].find(([, end]) => end.status === "failed") ?? [...ends].find(([, end]) => end.status !== "succeeded")
      const firstFailed = culprit()
      const reason = verdict === "met"
        ? `parallel state "${args.state}" of ${args.executionId} is done (mode ${modeName(spec.mode)})`
        : `region "${firstFailed![0]}" of parallel state "${args.state}" of ${args.executionId} ended ${firstFailed![1].status}`
      // the regions still running; when the state fails, those that succeeded too
      const undo = regions.filter((r) => !ends.has(r.name) || (verdict === "lost" && ends.get(r.name)!.status === "succeeded"))
      const rolledBack = yield* rollBack(undo, reason)
      for (const [region, end] of rolledBack) ends.set(region.name, end)
      if (verdict === "lost") {
        const [name, end] = culprit()!
        return yield* new RegionFailed({
          executionId: args.executionId,
          state: args.state,
          region: name,
          regionId: regions.find((r) => r.name === name)!.id,
          status: end.status,
          error: end.error === undefined ? undefined : `${end.error.tag} in state "${end.state}"`,
          mode: modeName(spec.mode),
          // in the order they ended: those an attempt before a crash rolled back, then this one's
          rolledBack: [
            ...[...ends].filter(([n, e]) => n !== name && e.status === "rolled_back" && !rolledBack.some(([r]) => r.name === n))
              .sort(([, x], [, y]) => x.updatedAt - y.updatedAt).map(([n]) => n),
            ...rolledBack.filter(([r, e]) => r.name !== name && e.status === "rolled_back").map(([r]) => r.name)
          ]
        })
      }
      const result: Record<string, RegionResult<unknown>> = Object.create(null)
      for (const r of regions) result[r.name] = resultOf(r, ends.get(r.name)!)
      return { regions: result }
    })

  /**
   * After a commit of `parent` that left the visit `left` of a parallel state: its regions
   * still running are rolled back (in the order `rollBack` says) when the parent
   * compensates, cancelled otherwise.
   */
  const left = (parent: Snapshot, spec: ParallelSpec, left: { readonly state: string; readonly visit: number }, how: "Cancel" | "Rollback") => {
    const regions = Object.keys(spec.regions).map((name): RegionRun => ({ name, id: regionOf(parent.id, left.state, left.visit, name), compiled: undefined }))
    const reason = `parent ${parent.id} left state "${left.state}" (${parent.status})`
    deps.fork(
      how === "Cancel"
        ? Effect.forEach(regions, (r) => deps.end(r.id, "Cancel", reason), { concurrency: "unbounded", discard: true })
        : rollBack(regions, reason).pipe(
          Effect.asVoid,
          Effect.catchAllCause((cause) => Effect.logWarning(`Could not roll back the regions of ${parent.id}'s state "${left.state}"; each is rolled back when it is next loaded`, cause))
        )
    )
  }

  /**
   * Where an event sent to the execution of `snapshot` goes: `undefined` for its own inbox,
   * or the regions of the parallel state it is in whose procedures take the event's tag in
   * one of their waits.
   */
  const receivers = (snapshot: Snapshot, event: unknown) => {
    if (!any) return undefined
    const compiled = deps.lookup(snapshot)
    if (compiled === undefined || isTerminal(snapshot.status)) return undefined
    const spec = parallelOf(stateOf(compiled.def, snapshot.state))
    const tag = (event as { readonly _tag?: unknown } | null)?._tag
    if (spec === undefined || typeof tag !== "string") return undefined
    const regions = regionsOf(compiled.def, spec, snapshot.state, `${snapshot.id}/${snapshot.state}/${snapshot.visit}`)
      .filter((r) => r.compiled !== undefined && accepts(r.compiled.def.states, tag))
    return regions.length === 0 ? undefined : { snapshot, tag, regions }
  }

  /**
   * The regions `receivers` found that take an event, each with what `prepare` made of it
   * (the event checked for it; for a region in a parallel state of its own, for its
   * regions): a region that refuses it (`InvalidTransition`: it ended, or waits for other
   * events) is passed over, one not started yet is started first (as the parent's attempt
   * would: same id, same input). Refused when none takes it. The caller writes the event
   * to all of them in one write (`runtime.ts`'s `writeAll`), so that a crash cannot leave
   * one region with it and another without.
   */
  const collect = <P, E>(
    to: { readonly snapshot: Snapshot; readonly tag: string; readonly regions: ReadonlyArray<RegionRun> },
    prepare: (id: string) => Effect.Effect<ReadonlyArray<readonly [string, P]>, E | InvalidTransition | ExecutionNotFound | ValidationError | StoreError>
  ) =>
    Effect.gen(function*() {
      const { snapshot, tag, regions } = to
      const taken: Array<readonly [string, P]> = []
      for (const region of regions) {
        const prepared = yield* prepare(region.id).pipe(
          Effect.catchTag("ExecutionNotFound", () =>
            Effect.zipRight(
              Effect.orDie(startRegion(snapshot.id, region, `${snapshot.id}/${snapshot.state}/${snapshot.visit}`, snapshot.context)),
              prepare(region.id)
            )),
          Effect.catchTag("InvalidTransition", () => Effect.succeed([]))
        )
        taken.push(...prepared)
      }
      if (taken.length > 0) return taken
      return yield* new InvalidTransition({
        executionId: snapshot.id,
        operation: `send "${tag}" to`,
        status: snapshot.status,
        state: snapshot.state,
        hint: `It is in the parallel state "${snapshot.state}", whose regions that take "${tag}" (${
          regions.map((r) => r.name).join(", ")
        }) have ended or wait for other events now; Runtime.list({ parentId }) shows them.`
      })
    })

  /** `sendAndWait` waits for one execution's answer: to a parent whose regions take the event, it is refused. */
  const refuseWait = (snapshot: Snapshot, event: unknown): InvalidTransition | undefined => {
    const to = receivers(snapshot, event)
    return to === undefined ? undefined : new InvalidTransition({
      executionId: snapshot.id,
      operation: `send and wait "${to.tag}" to`,
      status: snapshot.status,
      state: snapshot.state,
      hint: `It is in the parallel state "${snapshot.state}", whose regions (${to.regions.map((r) => r.name).join(", ")}) take ` +
        `"${to.tag}": send it with send, which gives it to them, or sendAndWait to one region's execution (${
          to.regions.map((r) => r.id).join(", ")
        }).`
    })
  }

  return { run, left, rollBack, receivers, collect, refuseWait }
}
