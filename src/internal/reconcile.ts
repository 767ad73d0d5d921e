/**
 * What a run does when the committed snapshot calls for no step attempt (`run.ts`'s loop
 * does those): a wait state takes the oldest event of its inbox or its timer, a paused
 * execution waits for a command, a rollback runs its next compensation; and how the run
 * ends when nothing is left to do (`settle`: the execution ended, parks, or leaves memory).
 * Each is a function of the run it belongs to, called from the run fiber.
 */
import { Deferred, Effect, Either, Exit } from "effect"
import type { StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { VersionConflict } from "../Errors.js"
import type { Deadline } from "./deadlines.js"
import { settle as settleWaiter } from "./eventWaiters.js"
import * as Failures from "./failures.js"
import type { Run, Signal } from "./run.js"
import type { Input, Output } from "./transition.js"
import { errorInfo, transition } from "./transition.js"
import * as Versions from "./versions.js"

const toWait = Effect.succeed<Signal>("wait")
const toIdle = Effect.succeed<Signal>("idle")
const toDone = Effect.succeed<Signal>("done")

export const versionConflict = (snapshot: Snapshot, expected: number) =>
  new VersionConflict({ executionId: snapshot.id, expected, actual: snapshot.seq, state: snapshot.state, status: snapshot.status })

/** The timer of a wait state held in memory: firing it posts a `Timer` message. */
class WaitTimer implements Deadline {
  constructor(readonly at: number, readonly run: Run, readonly visit: number) {}
  fire() {
    this.run.env.supervisor.post(this.run.handle, { _tag: "Timer", visit: this.visit })
  }
}

/** Does what the committed snapshot calls for, when it is not an attempt of a running step. */
export const reconcile = (run: Run): Effect.Effect<Signal, StoreError> => {
  const s = run.cached.machine.snapshot
  const { passivate } = run.env.shared.settings
  switch (s.status) {
    case "running":
      // a step's attempt is the loop's (`Run.loop`)
      return toIdle
    case "waiting":
      return Effect.flatMap(run.env.shared.store.inbox(run.id, 1), (pending) => waiting(run, pending))
    case "paused":
    case "needs_intervention":
      return passivate ? toIdle : toWait
    case "compensating": {
      const { cached } = run
      // a region its parent rolls back: the parent runs its compensations, one `Compensate` at a time
      if (cached.completed.length > 0 && cached.undoneByParent === true) return passivate ? toIdle : toWait
      if (cached.completed.length > 0) return Effect.as(Failures.compensateLast(run), "continue")
      return Effect.as(run.apply(transition(run.compiled, cached.machine, { _tag: "Compensated" }, run.now())), "done")
    }
    default:
      return toDone
  }
}

/** A wait state: consume the oldest event of the inbox, fire a timer that is due, or set it. */
const waiting = (run: Run, pending: ReadonlyArray<{ readonly seq: number; readonly event: unknown }>): Effect.Effect<Signal, StoreError> => {
  const { eventWaiters, deadlines, settings } = run.env.shared
  const { cached, compiled, handle, id } = run
  const s = cached.machine.snapshot
  // a sendAndWait whose event may be this one has not registered its waiter yet: it
  // wakes the actor when it has
  if (pending.length > 0 && !eventWaiters.isEnqueuing(id)) {
    const entry = pending[0]!
    const decodedEvent = compiled.decodeEvent(entry.event)
    const waiter = eventWaiters.take(id, entry.seq)
    const expected = waiter?.expectVersion
    const conflict = expected !== undefined && expected !== s.seq ? versionConflict(s, expected) : undefined
    const output: Output = conflict !== undefined
      ? { _tag: "Discard", reason: { tag: conflict._tag, message: conflict.message } }
      : Either.isLeft(decodedEvent)
      ? { _tag: "Discard", reason: errorInfo(decodedEvent.left) }
      : transition(compiled, cached.machine, { _tag: "Event", event: decodedEvent.right, encoded: entry.event, compensable: cached.completed.length > 0 }, run.now())
    if (waiter === undefined) return Effect.as(run.apply(output, entry.seq), "continue")
    return Effect.onError(run.apply(output, entry.seq), () => Effect.sync(() => eventWaiters.put(id, entry.seq, waiter))).pipe(
      Effect.map(() => {
        settleWaiter(waiter, conflict ?? (output._tag === "Discard"
          ? { _tag: "Discarded", snapshot: run.cached.machine.snapshot, reason: output.reason }
          : { _tag: "Consumed", snapshot: run.cached.machine.snapshot }))
        return "continue"
      })
    )
  }
  if (s.timerDueAt !== undefined) {
    const now = run.now()
    if (s.timerDueAt <= now) return Effect.as(run.apply(transition(compiled, cached.machine, timerFired(run), now)), "continue")
    if (!settings.passivate || s.timerDueAt - now <= settings.horizon) {
      const timer = handle.timer
      // a chart state's timer moves within one visit (its next delayed send)
      if (timer === undefined || timer.visit !== s.visit || timer.deadline.at !== s.timerDueAt) {
        if (timer !== undefined) deadlines.remove(timer.deadline)
        const deadline = new WaitTimer(s.timerDueAt, run, s.visit)
        handle.timer = { visit: s.visit, deadline }
        deadlines.add(deadline)
      }
      return toWait
    }
  }
  return settings.passivate ? toIdle : toWait
}

/** the input of a wait state's timer that fired */
export const timerFired = (run: Run): Input => ({ _tag: "TimerFired", compensable: run.cached.completed.length > 0 })

/** The run ends: the execution ended, parks, or leaves memory. */
export const settle = (run: Run, signal: Exclude<Signal, "continue">): Effect.Effect<void, StoreError> => {
  const { handle, cached, id } = run
  const { deadlines, handles, timerPoll, settings } = run.env.shared
  const s = cached.machine.snapshot
  if (handle.timer !== undefined && (s.status !== "waiting" || handle.timer.visit !== s.visit)) {
    deadlines.remove(handle.timer.deadline)
    handle.timer = undefined
  }
  if (signal === "done") {
    // ended: leave memory, then refuse what is still queued from the terminal snapshot
    handles.delete(id)
    const now = run.now()
    const replies: Array<Effect.Effect<boolean>> = []
    for (const msg of handle.mailbox.drain()) {
      if (msg._tag === "Migrate") replies.push(Deferred.fail(msg.reply, Versions.refuseNow(s, msg.migration.to.def.version)!))
      if (msg._tag !== "Command") continue
      const output = transition(run.compiled, cached.machine, msg.input, now)
      replies.push(output._tag === "Reject" ? Deferred.fail(msg.reply, output.error) : Deferred.succeed(msg.reply, s))
    }
    return replies.length === 0 ? Effect.void : Effect.asVoid(Effect.all(replies))
  }
  // nothing to do until a message comes: leave memory (passivate) or park; either only when
  // no message is waiting (checked and done in one synchronous step)
  if (handle.mailbox.size > 0) return run.loop()
  if (signal === "wait") {
    handle.phase = { _tag: "Parking", fiber: run.self }
    return Effect.void
  }
  handles.delete(id)
  const due = s.status === "waiting" ? s.timerDueAt : undefined
  if (due !== undefined && due - settings.horizon < timerPoll.planned) {
    timerPoll.planned = due - settings.horizon
    Deferred.unsafeDone(timerPoll.wake, Exit.void)
  }
  return Effect.void
}
