/**
 * An event sent to a parent in a parallel state, given to the regions that take it
 * (`regions.ts` finds them): each checked as a send to it would be, then the event written
 * to all their inboxes in one write (`Store.enqueueAll`), so that a crash cannot leave one
 * region with it and another without; then each is woken.
 */
import { Effect, Option } from "effect"
import type { Tracer } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError, ValidationError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { isTerminal } from "../Execution.js"
import type { StoreService } from "../Store.js"
import type { RegionRun } from "./regions.js"

/** An event checked for an execution (`runtime.ts`'s `accept`): encoded, when, and how to refuse it if it ended meanwhile. */
export interface Accepted {
  readonly encoded: unknown
  readonly now: number
  readonly refuse: (snapshot: Snapshot) => InvalidTransition
}

type SendError = ExecutionNotFound | ValidationError | InvalidTransition | StoreError

interface Receivers {
  readonly snapshot: Snapshot
  readonly tag: string
  readonly regions: ReadonlyArray<RegionRun>
}

export interface Deps {
  readonly store: StoreService
  readonly children: {
    readonly receivers: (snapshot: Snapshot, event: unknown) => Receivers | undefined
    readonly collect: <P, E>(
      to: Receivers,
      prepare: (id: string) => Effect.Effect<ReadonlyArray<readonly [string, P]>, E | SendError>
    ) => Effect.Effect<Array<readonly [string, P]>, E | SendError>
  }
  readonly getSnapshot: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly accept: (id: string, event: unknown, refuseFirst: undefined, span: Tracer.Span | undefined, read: Snapshot) => Effect.Effect<Accepted, SendError>
  readonly write: (id: string, accepted: Accepted) => Effect.Effect<unknown, InvalidTransition | StoreError>
  readonly wake: (id: string, span?: Tracer.Span) => Effect.Effect<void>
}

export const make = (deps: Deps) => {
  const { children, store } = deps

  /** The executions that take an event sent to `id`: it, or the regions of the parallel state it is in that take it. */
  const takers = (id: string, event: unknown, span: Tracer.Span | undefined): Effect.Effect<ReadonlyArray<readonly [string, Accepted]>, SendError> =>
    Effect.flatMap(deps.getSnapshot(id), (snapshot) => {
      const to = children.receivers(snapshot, event)
      return to !== undefined
        ? children.collect(to, (region) => takers(region, event, span))
        : Effect.map(deps.accept(id, event, undefined, span, snapshot), (accepted) => [[id, accepted] as const])
    })

  /**
   * Puts accepted events in their executions' inboxes in one write (a store without
   * `enqueueAll` writes them one by one), then wakes them. When one of them has ended since
   * it was read, nothing is written: refused as a send to it would be.
   */
  const writeAll = (taken: ReadonlyArray<readonly [string, Accepted]>, span: Tracer.Span | undefined) =>
    Effect.zipRight(
      store.enqueueAll === undefined || taken.length === 1
        ? Effect.forEach(taken, ([id, accepted]) => deps.write(id, accepted), { discard: true })
        : store.enqueueAll(taken.map(([executionId, accepted]) => ({ executionId, event: accepted.encoded, at: accepted.now }))).pipe(
          Effect.catchIf((error) => error.kind === "Conflict", (error) =>
            Effect.flatMap(Effect.forEach(taken, ([id]) => store.get(id)), (found): Effect.Effect<never, InvalidTransition | StoreError> => {
              const i = found.findIndex((s) => Option.isSome(s) && isTerminal(s.value.status))
              return i < 0 ? Effect.fail(error) : Effect.fail(taken[i]![1].refuse(Option.getOrThrow(found[i]!)))
            }))
        ),
      Effect.forEach(taken, ([id]) => deps.wake(id, span), { discard: true })
    )

  /** Gives an event sent to a parent to the regions `to` found (and theirs), in one write. */
  const toRegions = (to: Receivers, event: unknown, span: Tracer.Span | undefined) =>
    Effect.flatMap(children.collect(to, (region) => takers(region, event, span)), (taken) => writeAll(taken, span))

  return { toRegions }
}
