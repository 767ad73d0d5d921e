/**
 * The messages a run serves between steps (`run.ts`'s loop takes them before anything
 * else): a command (pause, cancel, retry, ...), a wait state's timer, a migration to
 * another version of the procedure. Each is committed as one transition before the loop
 * goes on; the command's caller gets the snapshot it led to, or why it was refused.
 */
import { Deferred, Effect, Either, Option } from "effect"
import type { StoreError } from "../Errors.js"
import { requestedBy } from "../Plugin.js"
import * as Failures from "./failures.js"
import type { Cached, Msg } from "./handle.js"
import { Loaded } from "./handle.js"
import * as Regions from "./regions.js"
import { timerFired } from "./reconcile.js"
import type { Run } from "./run.js"
import type { Input } from "./transition.js"
import { transition } from "./transition.js"
import * as Versions from "./versions.js"

/** a commit on behalf of who asked for it (a command's, a migration's): the plugins are shown `by` with its transition */
const asked = <A, E>(commit: Effect.Effect<A, E>, by: string | undefined) => by === undefined ? commit : Effect.locally(commit, requestedBy, by)

/** A command (pause, cancel, ...), a wait state's timer, or a migration. */
export const serve = (run: Run, msg: Exclude<Msg, { readonly _tag: "Inbox" }>): Effect.Effect<void, StoreError> => {
  const now = run.now()
  const { cached, handle } = run
  if (msg._tag === "Migrate") return migrate(run, msg)
  if (msg._tag === "Timer") {
    const s = cached.machine.snapshot
    if (msg.visit !== s.visit || s.status !== "waiting") return Effect.void
    handle.timer = undefined
    return Effect.asVoid(run.apply(transition(run.compiled, cached.machine, timerFired(run), now)))
  }
  const compensable = cached.completed.length > 0
  const input: Input = msg.input._tag === "Rollback"
    ? { ...msg.input, compensable }
    : msg.input._tag === "Skip"
    ? { ...msg.input, compensable }
    : msg.input
  if (input._tag === "Retry" || input._tag === "Resume") handle.retry = undefined
  // a person acted: what follows is not a runaway loop
  handle.spins = 0
  const output = transition(run.compiled, cached.machine, input, now)
  if (output._tag === "Serve" && input._tag === "Compensate") return Failures.compensateStep(run, input.stepSeq, msg.reply)
  handle.current = msg
  return Effect.flatMap(asked(run.apply(output), msg.by), (rejected) => {
    handle.current = undefined
    if (input._tag === "Rollback" && Option.isNone(rejected)) cached.undoneByParent = Regions.undoneByParent(cached.machine.snapshot, input.undo)
    return Option.isSome(rejected) ? Deferred.fail(msg.reply, rejected.value) : Deferred.succeed(msg.reply, cached.machine.snapshot)
  })
}

/**
 * Moves the execution to another version of its procedure, between steps (this message
 * is served by the loop, never by stopping a step), committed as one transition; the run
 * goes on with the new version's definition.
 */
const migrate = (run: Run, msg: Extract<Msg, { readonly _tag: "Migrate" }>): Effect.Effect<void, StoreError> => {
  const { handle } = run
  const migrated = Versions.migrate(msg.migration, run.cached.machine, run.now())
  if (Either.isLeft(migrated)) return Deferred.fail(msg.reply, migrated.left)
  const s = run.cached.machine.snapshot
  const { machine, transition: t } = migrated.right
  handle.current = msg
  return Effect.flatMap(asked(run.env.shared.store.commit({ snapshot: machine.snapshot, expectedVersion: s.rowVersion, transition: t }), msg.by), () => {
    handle.current = undefined
    const to = msg.migration.to
    // the compensations still owed are those of the new version's states of the same name (as a reload finds them)
    const cached: Cached = new Loaded(to, machine, run.cached.completed.filter((c) => to.compensable.has(c.state)))
    handle.cached = cached
    handle.retry = undefined
    handle.spins = 0
    // the old state's timer is not the new one's (`reconcile.ts` sets the new one)
    if (handle.timer !== undefined) {
      run.env.shared.deadlines.remove(handle.timer.deadline)
      handle.timer = undefined
    }
    run.cached = cached
    run.enterStateSpan(machine.snapshot)
    run.env.shared.publish(machine.snapshot, t)
    return Deferred.succeed(msg.reply, machine.snapshot)
  })
}
