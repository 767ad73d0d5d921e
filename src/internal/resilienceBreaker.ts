/**
 * A circuit breaker's state machine, on a clock read in milliseconds: closed (calls go
 * through, their outcomes are counted), open (calls are refused until the cool-down ends),
 * half-open (a few probe calls go through and decide). It does no I/O: the guard
 * (`resilience.ts`) asks it before a call, tells it the outcome, and logs the changes it
 * returns.
 */
import type { BreakerState } from "../Dependency.js"

export interface BreakerSettings {
  readonly failureRate: number | undefined
  readonly window: number
  readonly minimumCalls: number
  readonly consecutiveFailures: number | undefined
  readonly coolDown: number
  readonly probes: number
}

/** A change of state, for the log and the metrics. */
export interface Change {
  readonly from: BreakerState
  readonly to: BreakerState
  readonly reason: string
}

export type Admission =
  | { readonly _tag: "Call"; readonly probe: boolean; readonly change: Change | undefined }
  | { readonly _tag: "Refused"; readonly retryAfter: number }

/** how a call ended: as the breaker counts it, or not at all (it did not reach the dependency) */
export type Outcome = "success" | "failure" | "none"

export class Breaker {
  state: BreakerState = "closed"
  /** the last `window` outcomes of calls admitted while closed (true: failed), a ring */
  private readonly recent: Array<boolean> = []
  private next = 0
  failures = 0
  consecutive = 0
  openedAt: number | undefined = undefined
  probeAt: number | undefined = undefined
  /** probes admitted and not ended, and probes that succeeded, in this half-open spell */
  private probing = 0
  private probed = 0
  changes = 0

  constructor(readonly settings: BreakerSettings) {}

  get calls() {
    return this.recent.length
  }

  admit(now: number): Admission {
    let change: Change | undefined
    if (this.state === "open") {
      if (now < this.probeAt!) return { _tag: "Refused", retryAfter: this.probeAt! - now }
      change = this.move("half-open", `its cool-down of ${this.settings.coolDown} ms ended`)
      this.probing = 0
      this.probed = 0
    }
    if (this.state === "half-open") {
      // the probes decide; other calls wait for their verdict
      if (this.probing + this.probed >= this.settings.probes) return { _tag: "Refused", retryAfter: this.settings.coolDown }
      this.probing++
      return { _tag: "Call", probe: true, change }
    }
    return { _tag: "Call", probe: false, change }
  }

  record(now: number, probe: boolean, outcome: Outcome): Change | undefined {
    if (probe) {
      if (this.state !== "half-open") return undefined
      this.probing--
      if (outcome === "none") return undefined
      if (outcome === "failure") return this.open(now, "a probe call failed")
      if (++this.probed < this.settings.probes) return undefined
      this.reset()
      return this.move("closed", `${this.settings.probes} probe call${this.settings.probes === 1 ? "" : "s"} succeeded`)
    }
    // a call admitted while closed that ends after the breaker opened: the probes decide now
    if (this.state !== "closed" || outcome === "none") return undefined
    const failed = outcome === "failure"
    const { window, minimumCalls, failureRate, consecutiveFailures } = this.settings
    if (this.recent.length < window) this.recent.push(failed)
    else {
      if (this.recent[this.next]) this.failures--
      this.recent[this.next] = failed
      this.next = (this.next + 1) % window
    }
    if (failed) this.failures++
    this.consecutive = failed ? this.consecutive + 1 : 0
    if (consecutiveFailures !== undefined && this.consecutive >= consecutiveFailures) {
      return this.open(now, `${this.consecutive} calls in a row failed`)
    }
    if (failureRate !== undefined && this.recent.length >= minimumCalls && this.failures / this.recent.length >= failureRate) {
      return this.open(now, `${this.failures} of the last ${this.recent.length} calls failed`)
    }
    return undefined
  }

  private open(now: number, reason: string) {
    this.reset()
    this.openedAt = now
    this.probeAt = now + this.settings.coolDown
    return this.move("open", reason)
  }

  private reset() {
    this.recent.length = 0
    this.next = 0
    this.failures = 0
    this.consecutive = 0
    this.openedAt = undefined
    this.probeAt = undefined
  }

  private move(to: BreakerState, reason: string): Change {
    const from = this.state
    this.state = to
    this.changes++
    return { from, to, reason }
  }
}
