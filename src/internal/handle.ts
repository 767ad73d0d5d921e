/**
 * An execution in memory: its handle (what the supervisor and the current run know of it)
 * and its mailbox (commands, inbox nudges and timer firings, read by the run loop).
 */
import type { Deferred, Fiber, Tracer } from "effect"
import type { ExecutionNotFound, InvalidTransition, StoreError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { Deadline } from "./deadlines.js"
import type { Compiled, Input, Machine } from "./transition.js"

export type CommandInput = Extract<Input, { readonly _tag: "Pause" | "Resume" | "Cancel" | "Rollback" | "Retry" | "Skip" }>
export type CommandError = InvalidTransition | ExecutionNotFound | StoreError

/** `cause`: the span of the `start` or `send` that sent the message (tracing links the run to it) */
export type Msg =
  | { readonly _tag: "Command"; readonly input: CommandInput; readonly reply: Deferred.Deferred<Snapshot, CommandError> }
  | { readonly _tag: "Inbox"; readonly cause?: Tracer.Span | undefined }
  | { readonly _tag: "Timer"; readonly visit: number }

/**
 * An actor's mailbox. Offering is synchronous, so that finding an actor and delivering
 * to it happen in one step with no yield between (an actor parks or leaves memory in one
 * synchronous step too, only when its mailbox is empty).
 */
export class Mailbox {
  private items: Array<Msg> = []
  private head = 0
  get size() {
    return this.items.length - this.head
  }
  offer(msg: Msg) {
    this.items.push(msg)
  }
  peek(): Msg | undefined {
    return this.items[this.head]
  }
  poll(): Msg | undefined {
    if (this.head >= this.items.length) return undefined
    const msg = this.items[this.head]!
    this.items[this.head++] = undefined as never
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return msg
  }
  hasCommand(): boolean {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!._tag === "Command") return true
    return false
  }
  drain(): Array<Msg> {
    const out: Array<Msg> = []
    for (let m = this.poll(); m !== undefined; m = this.poll()) out.push(m)
    return out
  }
}

export interface Cached {
  readonly compiled: Compiled
  machine: Machine
  /** completed steps whose compensation has not run, oldest first */
  readonly completed: Array<{ readonly stepSeq: number; readonly state: string }>
}

export interface Handle {
  readonly id: string
  readonly mailbox: Mailbox
  /** the current run fiber */
  fiber?: Fiber.RuntimeFiber<void, StoreError> | undefined
  /**
   * set while the execution waits in memory with no run fiber (its state stays cached
   * here, its timer stays set): the next message starts a run
   */
  parked: boolean
  /** set by a run that ends to park; the run's end (`afterRun`) parks it */
  parking: boolean
  /** the committed state, kept between runs of one activation */
  cached?: Cached | undefined
  /** true while the run fiber may be interrupted to serve a command (a step or a backoff) */
  interruptible: boolean
  /** the deadline of the attempt that is running */
  stepping?: Deadline | undefined
  /** set when an attempt ran past its timeout */
  timedOut?: { readonly visit: number; readonly attempt: number } | undefined
  /** the retry Schedule's state for the current visit */
  retry?: { readonly visit: number; readonly state: unknown } | undefined
  /** the timer of the current wait state */
  timer?: { readonly visit: number; readonly deadline: Deadline } | undefined
  /** when the recent restarts after failures happened (for the intensity limit) */
  readonly restarts: Array<number>
  /** set while a compensation runs: a command it refuses is answered at once, without stopping it */
  compensating?: boolean | undefined
  /** transitions in a row without waiting for an event, a timer or a person (the runaway-loop guard) */
  spins: number
  /** the reply of the command being applied */
  current?: Deferred.Deferred<Snapshot, CommandError> | undefined
}
