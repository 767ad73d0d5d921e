/**
 * An execution in memory: its handle (what the supervisor and the current run know of it)
 * and its mailbox (commands, inbox nudges and timer firings, read by the run loop).
 */
import type { Deferred, Fiber, Tracer } from "effect"
import { Effect } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { Deadline } from "./deadlines.js"
import type { Hold } from "./resume.js"
import type { Registered } from "./versions.js"
import type { Compiled, Input, Machine } from "./transition.js"

export type CommandInput = Extract<Input, { readonly _tag: "Pause" | "Resume" | "Cancel" | "Rollback" | "Retry" | "Skip" | "Compensate" }>
export type CommandError = InvalidTransition | ExecutionNotFound | StoreError

/**
 * `cause`: the span of the `start` or `send` that sent the message (tracing links the run to it);
 * `by`: who asked for a command or a migration (`Plugin.requestedBy` in the caller's fiber), shown
 * to the plugins with the transition it commits
 */
export type Msg =
  | { readonly _tag: "Command"; readonly input: CommandInput; readonly reply: Deferred.Deferred<Snapshot, CommandError>; readonly by?: string | undefined }
  | { readonly _tag: "Inbox"; readonly cause?: Tracer.Span | undefined }
  | { readonly _tag: "Timer"; readonly visit: number }
  /** `Runtime.migrate`: served between steps (it never stops a step, unlike a command) */
  | { readonly _tag: "Migrate"; readonly migration: Registered; readonly reply: Deferred.Deferred<Snapshot, CommandError>; readonly by?: string | undefined }

/** A message whose sender waits for its reply: a command or a migration. */
export type Asked = Extract<Msg, { readonly _tag: "Command" | "Migrate" }>

/** The reply a message waits for: a command's or a migration's. */
export const replyOf = (msg: Msg): Deferred.Deferred<Snapshot, CommandError> | undefined =>
  msg._tag === "Command" || msg._tag === "Migrate" ? msg.reply : undefined

/**
 * An actor's mailbox. Offering is synchronous, so that finding an actor and delivering
 * to it happen in one step with no yield between (an actor parks or leaves memory in one
 * synchronous step too, only when its mailbox is empty).
 */
export class Mailbox {
  /** undefined while empty: an actor in memory mostly has an empty mailbox */
  private items: Array<Msg> | undefined = undefined
  private head = 0
  get size() {
    return this.items === undefined ? 0 : this.items.length - this.head
  }
  offer(msg: Msg) {
    if (this.items === undefined) this.items = [msg]
    else this.items.push(msg)
  }
  /** puts a message back at the head (one taken out whose commit must be made again) */
  offerFirst(msg: Msg) {
    if (this.items === undefined) this.items = [msg]
    else if (this.head > 0) this.items[--this.head] = msg
    else this.items.unshift(msg)
  }
  peek(): Msg | undefined {
    return this.items?.[this.head]
  }
  poll(): Msg | undefined {
    const items = this.items
    if (items === undefined) return undefined
    const msg = items[this.head++]!
    if (this.head >= items.length) {
      this.items = undefined
      this.head = 0
    } else {
      items[this.head - 1] = undefined as never
      if (this.head > 1024 && this.head * 2 > items.length) {
        this.items = items.slice(this.head)
        this.head = 0
      }
    }
    return msg
  }
  hasCommand(): boolean {
    const items = this.items
    if (items !== undefined) for (let i = this.head; i < items.length; i++) if (replyOf(items[i]!) !== undefined) return true
    return false
  }
  drain(): Array<Msg> {
    const out = this.items === undefined ? [] : this.items.slice(this.head)
    this.items = undefined
    this.head = 0
    return out
  }
}

export interface Completed {
  readonly stepSeq: number
  readonly state: string
}

/**
 * The `completed` of an execution none of whose steps awaits its compensation: one empty
 * array shared (frozen: a push throws) instead of one per execution in memory (32 B).
 * `recordCompleted` replaces it with an array of its own.
 */
export const noCompleted: Array<Completed> = Object.freeze([]) as unknown as Array<Completed>

/** Records a completed step that awaits its compensation. */
export const recordCompleted = (cached: Cached, completed: Completed) => {
  if (cached.completed.length === 0) cached.completed = [completed]
  else cached.completed.push(completed)
}

export interface Cached {
  readonly compiled: Compiled
  machine: Machine
  /** completed steps whose compensation has not run, oldest first (`noCompleted` until the first) */
  completed: Array<Completed>
  /**
   * it ended once and was taken out of its end again (a parent undoes a region or child
   * that succeeded): its end was counted then, so the end of the undo is not counted again
   */
  reopened?: boolean
  /** a region its parent rolls back: the parent runs its compensations (`Compensate`), in its order across its regions */
  undoneByParent?: boolean
}

/**
 * The `Cached` of an execution: the machine's snapshot and context in fields of its own,
 * and `machine` the object itself (a machine set is copied in): no object per machine
 * (40 B of each execution in memory, W1's heap pass).
 */
export class Loaded implements Cached, Machine {
  snapshot: Machine["snapshot"]
  context: unknown
  declare reopened?: boolean
  declare undoneByParent?: boolean
  constructor(readonly compiled: Compiled, machine: Machine, public completed: Array<Completed>) {
    this.snapshot = machine.snapshot
    this.context = machine.context
  }
  get machine(): Machine {
    return this
  }
  set machine(machine: Machine) {
    this.snapshot = machine.snapshot
    this.context = machine.context
  }
}

export type RunFiber = Fiber.RuntimeFiber<void, StoreError>

export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/**
 * A run fiber is forked uninterruptible (`Shared.forkRun`): it is interruptible only
 * inside this, around a step's attempt or a backoff.
 */
export const restore: Restore = Effect.interruptible

/**
 * Where an execution in memory is, with what each phase needs; one field instead of flags
 * whose combinations could contradict each other. Every phase of a run holds its fiber:
 * a run the supervisor replaced (`restartNow`) is stale as soon as it is no longer the
 * handle's, and checks that where it comes back from a step.
 */
export type Phase =
  /** between runs (the supervisor decides what follows one), or the activation ended */
  | { readonly _tag: "Idle" }
  /** waiting in memory with no run fiber, its state cached and its timer set: the next message starts a run */
  | { readonly _tag: "Parked" }
  /** a run that commits or decides: messages wait in the mailbox for the loop */
  | { readonly _tag: "Busy"; readonly fiber: RunFiber }
  /** a run in a step's attempt, which must end by `deadline`: a command or the deadline replaces the run */
  | { readonly _tag: "Stepping"; readonly fiber: RunFiber; readonly deadline: Deadline }
  /** a run in a backoff (a retry's, or waiting for the store): a command replaces the run */
  | { readonly _tag: "Sleeping"; readonly fiber: RunFiber }
  /** a run in a compensation: a command the status refuses is answered at once; `cancel` replaces the run */
  | { readonly _tag: "Compensating"; readonly fiber: RunFiber }
  /** a run that ends so that the execution parks */
  | { readonly _tag: "Parking"; readonly fiber: RunFiber }

export const idle: Phase = { _tag: "Idle" }
export const parked: Phase = { _tag: "Parked" }

/** The handle's current run fiber, if it is in a run. */
export const runFiber = (handle: Handle): RunFiber | undefined =>
  handle.phase._tag === "Idle" || handle.phase._tag === "Parked" ? undefined : handle.phase.fiber

/** Whether a command must stop the run to be served now (a step, a backoff, a compensation). */
export const stoppable = (phase: Phase): boolean =>
  phase._tag === "Stepping" || phase._tag === "Sleeping" || phase._tag === "Compensating"

/**
 * What a handle holds only for a while (after a timeout, while a retry Schedule runs,
 * after restarts, while a command is applied, during a burst of resumes): one object made
 * when the first is set and dropped when the last is cleared, instead of five fields of
 * every handle (an execution in memory keeps its handle: W1's heap pass).
 */
class Occasional {
  timedOut: { readonly visit: number; readonly attempt: number } | undefined = undefined
  retry: { readonly visit: number; readonly state: unknown } | undefined = undefined
  restarts: Array<number> | undefined = undefined
  reloads: Array<number> | undefined = undefined
  current: Asked | undefined = undefined
  hold: Hold | undefined = undefined
  get empty() {
    return this.timedOut === undefined && this.retry === undefined && this.restarts === undefined && this.reloads === undefined &&
      this.current === undefined && this.hold === undefined
  }
}

/** What the supervisor and the current run know of an execution in memory; it is its own mailbox (one object less per execution). */
export class Handle extends Mailbox {
  get mailbox(): Mailbox {
    return this
  }
  /** where it is: between runs, parked, or in a run (and what the run does) */
  phase: Phase = idle
  /** the timer of the current wait state */
  timer: { readonly visit: number; readonly deadline: Deadline } | undefined = undefined
  /** transitions in a row without waiting for an event, a timer or a person (the runaway-loop guard) */
  spins = 0
  private occasional: Occasional | undefined = undefined
  constructor(
    readonly id: string,
    /** the committed state, kept between runs of one activation */
    public cached: Cached | undefined
  ) {
    super()
  }

  private set<K extends Exclude<keyof Occasional, "empty">>(key: K, value: Occasional[K]) {
    if (value !== undefined) (this.occasional ??= new Occasional())[key] = value
    else if (this.occasional !== undefined) {
      this.occasional[key] = value
      if (this.occasional.empty) this.occasional = undefined
    }
  }

  /** set when an attempt ran past its timeout */
  get timedOut() {
    return this.occasional?.timedOut
  }
  set timedOut(value: Occasional["timedOut"]) {
    this.set("timedOut", value)
  }
  /** the retry Schedule's state for the current visit */
  get retry() {
    return this.occasional?.retry
  }
  set retry(value: Occasional["retry"]) {
    this.set("retry", value)
  }
  /** when the recent restarts after failures happened (for the intensity limit); made at the first */
  get restarts() {
    return this.occasional?.restarts
  }
  set restarts(value: Occasional["restarts"]) {
    this.set("restarts", value)
  }
  /**
   * when the recent reloads after a commit refused because another runtime moved the
   * execution on happened (a fenced store, `supervisor.ts`); made at the first
   */
  get reloads() {
    return this.occasional?.reloads
  }
  set reloads(value: Occasional["reloads"]) {
    this.set("reloads", value)
  }
  /** the command or migration being applied (its commit is under way) */
  get current() {
    return this.occasional?.current
  }
  set current(value: Occasional["current"]) {
    this.set("current", value)
  }
  /** started by a burst of resumes (`resume.ts`): the run waits for the burst before it commits its first outcome */
  get hold() {
    return this.occasional?.hold
  }
  set hold(value: Occasional["hold"]) {
    this.set("hold", value)
  }
}
