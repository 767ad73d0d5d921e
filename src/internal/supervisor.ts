/**
 * The supervisor of the actors: it finds or creates an execution's handle and delivers
 * messages to it, starts runs of the actor's loop (`actor.ts`) and decides what follows
 * one (park, leave memory, restart after a failure within the intensity limit, wait for
 * the store during an outage, give up); `resume.ts` resumes many executions at once
 * (recovery, a cluster runner's gained shards).
 */
import type { Tracer } from "effect"
import { Cause, Clock, Deferred, Duration, Effect, Exit, FiberId, Option } from "effect"
import { ExecutionNotFound, StoreError } from "../Errors.js"
import { isTerminal } from "../Execution.js"
import type { Run } from "./run.js"
import * as Deadlines from "./deadlines.js"
import * as Resume from "./resume.js"
import type { Cached, CommandError, Msg } from "./handle.js"
import { Handle, idle, parked, replyOf, restore, runFiber, stoppable } from "./handle.js"
import { activeActors, finishedBy, restartsTotal } from "./metrics.js"
import type { Shared } from "./shared.js"
import { shuttingDown, waitForStoreSchedule } from "./shared.js"
import * as StoreHealth from "./storeHealth.js"
import type { Input } from "./transition.js"
import { errorInfo, transition } from "./transition.js"

export const make = (shared: Shared, makeRun: (handle: Handle, before?: Effect.Effect<void, StoreError>) => Run) => {
  const { store, outage, fork, forkRun, handles, deadlines, publish, lookup, counts } = shared
  const { maxRestarts, within, backoff } = shared.settings
  /** reloads after a commit refused by an ownership move, within `within`, before it counts as a failure (`movedOn`) */
  const maxReloads = 3
  const getSnapshot = (id: string) =>
    Effect.flatMap(store.get(id), Option.match({ onNone: () => Effect.fail(new ExecutionNotFound({ executionId: id })), onSome: Effect.succeed }))

  const drainMailbox = (handle: Handle, error: CommandError) =>
    Effect.gen(function*() {
      const msgs = yield* Effect.sync(() => {
        if (handles.get(handle.id) === handle) handles.delete(handle.id)
        return handle.mailbox.drain()
      })
      for (const msg of msgs) if (replyOf(msg) !== undefined) yield* Deferred.fail(replyOf(msg)!, error)
    })

  /**
   * Starts a run of an actor: one fiber in the FiberSet. A run we interrupted (a command
   * or a timeout) is followed at once by a new one; a run that failed (a defect in the
   * runtime's machinery, a store error) by a new one that reloads from the store after a
   * backoff, within the intensity limit. A run that ends by itself ends the activation.
   * What follows a run is decided in its fiber, uninterruptibly (`afterRun`); a stale run
   * decides nothing.
   */
  const startRun = (handle: Handle, delay: number, waitsForStore = false) => {
    const before = delay <= 0 ? undefined : waitsForStore ? waitForStoreBackoff(handle, delay) : restore(Deadlines.sleepMillis(delay))
    const run = makeRun(handle, before)
    // not on the caller's stack: a restart is started from the end of the run before it
    run.forked(forkRun(run, { immediate: false }))
    handle.phase = run.busy
  }

  /**
   * The backoff of an actor that waits for the store; it ends early when the store is
   * back, and a command cuts it short (the command is tried on the store at once).
   */
  const waitForStoreBackoff = (handle: Handle, delay: number) =>
    Effect.withFiberRuntime<void, StoreError>((fiber) => {
      if (handle.mailbox.hasCommand()) return Effect.void
      handle.phase = { _tag: "Sleeping", fiber }
      return Effect.ensuring(
        restore(Effect.race(Deadlines.sleepMillis(delay), outage.back())),
        Effect.sync(() => {
          if (runFiber(handle) === fiber) handle.phase = { _tag: "Busy", fiber }
        })
      )
    })

  const afterRun = (handle: Handle, exit: Exit.Exit<void, StoreError>): Effect.Effect<void> => {
    if (Exit.isFailure(exit)) return afterFailure(handle, exit)
    // a run that ended by itself (the common case, without a generator): park or end the activation
    const parking = handle.phase._tag === "Parking"
    handle.phase = idle
    if (!parking) return endActivation(handle)
    // park, unless a message came while the run was ending
    if (handle.mailbox.size === 0) {
      handle.phase = parked
      counts.parked++
      resumeMore()
      return Effect.void
    }
    if (!counts.closed) {
      startRun(handle, 0)
      return Effect.void
    }
    return Effect.zipRight(drainMailbox(handle, shuttingDown), endActivation(handle))
  }

  const afterFailure = (handle: Handle, exit: Exit.Failure<void, StoreError>) =>
    Effect.gen(function*() {
      handle.phase = idle
      const error = Cause.squash(exit.cause)
      if (error instanceof StoreError && movedOn(handle, error, yield* Clock.currentTimeMillis)) return yield* reload(handle, error)
      if (handle.current !== undefined) {
        // the command whose commit the store refused gets the store's error; any other failure is a defect
        yield* Deferred.failCause(handle.current.reply, error instanceof StoreError ? Cause.fail(error) : Cause.die(error))
        handle.current = undefined
      }
      if (error instanceof StoreError && error.kind === "Fenced") {
        // another runtime owns the execution now (docs/scale-out.md): drop it here, never retry
        yield* Effect.logWarning(`Execution ${handle.id}: stopped here, another runtime owns it: ${error.detail}`)
        return yield* Effect.zipRight(drainMailbox(handle, error), endActivation(handle))
      }
      if (StoreHealth.isOutage(error)) {
        return yield* counts.closed ? Effect.zipRight(drainMailbox(handle, shuttingDown), endActivation(handle)) : waitForStore(handle, error)
      }
      // the current run is interrupted only when the runtime closes (a command or a timeout
      // replaces the run instead: `restartNow`)
      if (Cause.isInterruptedOnly(exit.cause)) return yield* endActivation(handle)
      const def = handle.cached?.compiled.def
      handle.cached = undefined
      outage.done(handle.id)
      const now = yield* Clock.currentTimeMillis
      const restarts = handle.restarts ??= []
      while (restarts.length > 0 && restarts[0]! <= now - within) restarts.shift()
      if (restarts.length >= maxRestarts || counts.closed) {
        yield* Effect.logError(`Execution ${handle.id}: giving up after ${restarts.length} restarts`, exit.cause)
        return startGiveUp(handle, error, restarts.length)
      }
      restarts.push(now)
      restartsTotal.unsafeUpdate(1, [])
      if (def !== undefined) shared.restarted?.(def.name, def.version, now)
      yield* Effect.logWarning(`Execution ${handle.id}: actor failed, restarting (${restarts.length}/${maxRestarts})`, exit.cause)
      startRun(handle, backoff * 2 ** (restarts.length - 1))
    })

  /**
   * Whether a commit the store refused is an ownership move to follow by reading the
   * execution again, not a failure: on a store several runtimes share (`holds`, a fenced
   * store), a refused row version (`Conflict`) means another runtime moved the execution on
   * while its shard was away from this one, which has it back (the epoch checked in the
   * same statement was this runtime's); a `Fenced` commit whose shard this runtime holds
   * again by then (claimed back meanwhile: the ownership loop may have looked at it while
   * it was being dropped) is run from the store rather than left for the next scan. At
   * most `maxReloads` within `within`: a commit refused again and again then goes the usual
   * way (a restart that counts, or the drop). A single-process store (memory, a SQLite file
   * only one store opens) has no `holds`: a conflict there means something else wrote the
   * row, a defect the restart reports and its intensity limit bounds.
   */
  const movedOn = (handle: Handle, error: StoreError, now: number): boolean => {
    const holds = store.holds
    if (holds === undefined || !(error.kind === "Conflict" || (error.kind === "Fenced" && holds(handle.id)))) return false
    const reloads = handle.reloads ??= []
    while (reloads.length > 0 && reloads[0]! <= now - within) reloads.shift()
    if (reloads.length >= maxReloads) return false
    reloads.push(now)
    return true
  }

  /**
   * Reads the execution again from the store and runs it on from there, at once: its
   * cached state is dropped, and the command or migration whose commit was refused goes
   * back to the head of the mailbox, to be applied to the stored state (or refused from it).
   * An event it was consuming is still in the inbox (the refused commit deleted nothing);
   * a `sendAndWait` waiting for it was put back (`reconcile.ts`) and is answered when the
   * next run consumes or discards it.
   */
  const reload = (handle: Handle, error: StoreError) =>
    Effect.suspend(() => {
      handle.cached = undefined
      outage.done(handle.id)
      if (handle.current !== undefined) handle.mailbox.offerFirst(handle.current)
      handle.current = undefined
      if (counts.closed) return Effect.zipRight(drainMailbox(handle, shuttingDown), endActivation(handle))
      startRun(handle, 0)
      return Effect.logDebug(`Execution ${handle.id}: another runtime moved it on while its shard was away from this one; reading it again from the store (${error.kind})`)
    })

  /**
   * A store outage is not a defect and does not count against the intensity limit: the
   * actor runs again from the last committed state after a backoff (100 ms doubling to
   * 30 s), or as soon as the store is back, however long that takes.
   */
  const waitForStore = (handle: Handle, error: StoreError) =>
    Effect.gen(function*() {
      handle.cached = undefined
      // commands queued meanwhile are answered now, with the store's error, not when the store is back;
      // the other messages are nudges that the next run finds again in the store
      for (const msg of handle.mailbox.drain()) if (replyOf(msg) !== undefined) yield* Deferred.fail(replyOf(msg)!, error)
      const attempt = outage.wait(handle.id)
      yield* Effect.logDebug(`Execution ${handle.id}: waiting for the store (attempt ${attempt})`)
      startRun(handle, StoreHealth.backoffMillis(attempt), true)
    })

  /**
   * Records that the supervisor gave up, in a run of the actor (closing the runtime
   * interrupts it: the next runtime resumes the execution). A store outage is waited out:
   * the record is tried again, with the backoff of `waitForStore`, until it commits.
   */
  const startGiveUp = (handle: Handle, error: unknown, restarts: number) => {
    const fiber = fork(
      giveUp(handle, error, restarts).pipe(
        Effect.tapError((e) => Effect.sync(() => StoreHealth.isOutage(e) && outage.wait(handle.id))),
        Effect.retry({ schedule: waitForStoreSchedule, while: StoreHealth.isOutage }),
        Effect.catchAllCause((cause) => Effect.logError(`Execution ${handle.id}: could not record the failure`, cause)),
        Effect.onExit(() =>
          Effect.zipRight(
            drainMailbox(handle, new StoreError({ kind: "Unknown", operation: "run", detail: errorInfo(error).message })),
            endActivation(handle)
          )
        )
      ),
      { immediate: false }
    )
    handle.phase = { _tag: "Busy", fiber }
  }

  const endActivation = (handle: Handle) =>
    Effect.suspend(() => {
      outage.done(handle.id)
      if (handles.get(handle.id) === handle) handles.delete(handle.id)
      if (handle.timer !== undefined) deadlines.remove(handle.timer.deadline)
      if (handle.phase._tag === "Stepping") deadlines.remove(handle.phase.deadline)
      handle.phase = idle
      counts.active--
      activeActors.unsafeUpdate(counts.active, [])
      resumeMore()
      return Effect.void
    })

  const giveUp = (handle: Handle, error: unknown, restarts: number) =>
    Effect.gen(function*() {
      const loaded = yield* getSnapshot(handle.id)
      const compiled = lookup(loaded)
      if (compiled === undefined || isTerminal(loaded.status)) return
      const now = yield* Clock.currentTimeMillis
      const info = errorInfo(error)
      const output = transition(compiled, { snapshot: loaded, context: undefined }, {
        _tag: "GiveUp",
        error: { tag: "RuntimeDefect", message: `the runtime failed ${restarts} times within ${Duration.format(Duration.millis(within))} and gave up: ${info.message}` }
      }, now)
      if (output._tag !== "Next") return
      yield* store.commit({ snapshot: output.machine.snapshot, expectedVersion: loaded.rowVersion, transition: output.transition })
      finishedBy("failed").unsafeUpdate(1, [])
      publish(output.machine.snapshot, output.transition)
    })

  /**
   * Delivers a message to an execution's actor, starting the actor when it is not in
   * memory. Finding (or registering) the actor and offering happen in one synchronous step.
   */
  const deliver = (id: string, msg: Msg, cached?: Cached): Effect.Effect<void> => Effect.sync(() => deliverNow(id, msg, cached))

  const deliverNow = (id: string, msg: Msg, cached?: Cached, hold?: Resume.Hold): void => {
    const existing = handles.get(id)
    if (existing !== undefined) return post(existing, msg)
    if (counts.closed) {
      if (replyOf(msg) !== undefined) Deferred.unsafeDone(replyOf(msg)!, Exit.fail(shuttingDown))
      return
    }
    const handle = new Handle(id, cached)
    handle.hold = hold
    handle.mailbox.offer(msg)
    handles.set(id, handle)
    resumer.started(id)
    counts.active++
    activeActors.unsafeUpdate(counts.active, [])
    startRun(handle, 0)
  }

  /** Queues a message for an actor in memory; starts a run of a parked one. */
  const post = (handle: Handle, msg: Msg) => {
    if (msg._tag === "Command" && handle.phase._tag === "Compensating" && refusedNow(handle, msg)) return
    handle.mailbox.offer(msg)
    if (handle.phase._tag === "Parked") {
      if (counts.closed) {
        if (replyOf(msg) !== undefined) Deferred.unsafeDone(replyOf(msg)!, Exit.fail(shuttingDown))
        return
      }
      counts.parked--
      startRun(handle, 0)
    } else if (msg._tag === "Command" && msg.input._tag !== "Compensate" && stoppable(handle.phase)) {
      // a command stops a running step or backoff (not a compensation for the next one): a new run serves it first
      restartNow(handle)
    }
  }

  /**
   * Replaces the current run, which is in a step, a compensation or a backoff, by a new
   * one from the last committed state, at once. The old run is interrupted but not waited
   * for: a step that cannot be interrupted (`Effect.uninterruptible`) keeps it going until
   * the step gives control back. From then on it is stale (no longer `handle.fiber`); where
   * it comes back from the step (or a compensation, a sleep) it sees that and stops without
   * touching the handle, so the step's late result is never committed. It stays in the
   * runtime's FiberSet until it ends. This costs nothing per step: no fiber per attempt.
   */
  const restartNow = (handle: Handle) => {
    const phase = handle.phase
    const stale = runFiber(handle)
    if (phase._tag === "Stepping") deadlines.remove(phase.deadline)
    if (stale === undefined) return
    // a closing runtime ends the activation in the interrupted run's `afterRun`
    if (counts.closed) handle.phase = { _tag: "Busy", fiber: stale }
    else startRun(handle, 0)
    stale.unsafeInterruptAsFork(FiberId.none)
  }

  /** Answers a command the execution's status refuses, from its cached state (a pure check, no commit). */
  const refusedNow = (handle: Handle, msg: Extract<Msg, { readonly _tag: "Command" }>) => {
    const cached = handle.cached
    if (cached === undefined) return false
    const input: Input = msg.input._tag === "Rollback" ? { _tag: "Rollback", compensable: cached.completed.length > 0 } : msg.input
    const output = transition(cached.compiled, cached.machine, input, cached.machine.snapshot.updatedAt)
    if (output._tag !== "Reject") return false
    Deferred.unsafeDone(msg.reply, Exit.fail(output.error))
    return true
  }

  const activate = (id: string, cause?: Tracer.Span) => deliver(id, { _tag: "Inbox", cause })

  /**
   * Takes an execution that is not in memory into memory without a run, for an event's
   * sender to commit the event's transition itself (`wakeDirect.ts`): from here until
   * `release`, no run of it starts, and what is delivered to it waits in its mailbox.
   * Undefined when it is in memory already, or the runtime is closing.
   */
  const claim = (id: string): Handle | undefined => {
    if (handles.has(id) || counts.closed) return undefined
    const handle = new Handle(id, undefined)
    handles.set(id, handle)
    // what recovery read of it meanwhile is stale once the sender commits
    resumer.started(id)
    counts.active++
    activeActors.unsafeUpdate(counts.active, [])
    return handle
  }

  /**
   * Ends a `claim`: a run starts from `handle.cached` (or loads) when `run` says the
   * execution has more to do or a message came meanwhile; otherwise it leaves memory.
   */
  const release = (handle: Handle, run: boolean): Effect.Effect<void> => {
    if (counts.closed) return Effect.zipRight(drainMailbox(handle, shuttingDown), endActivation(handle))
    if (!run && handle.mailbox.size === 0) return endActivation(handle)
    startRun(handle, 0)
    return Effect.void
  }

  // recovery, and a cluster runner's gained shards: many executions resumed at once (`resume.ts`)
  const resumer = Resume.make(shared, (id, msg, cached, hold) => deliverNow(id, msg, cached, hold))
  const resumeMore = resumer.more

  return { deliver, deliverNow, post, restartNow, drainMailbox, afterRun, activate, claim, release, resumeMore, recover: resumer.recover, resume: resumer.resume }
}
