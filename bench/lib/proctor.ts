/**
 * The Proctor side of the bench: the procedures every workload runs, the probe their
 * steps write timestamps to, and the store wrappers that see each commit.
 */
import { Deferred, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Store as StoreNs } from "proctor"
import { Execution, Procedure, Runtime, SqlStore, Store } from "proctor"
import { Histogram } from "./stats.js"

export const STEPS = 10

/**
 * What the steps write to. A step marks `performance.now()` when it starts; the time from
 * the previous step's mark (its result: the steps are no-ops, so a step's result exists
 * the moment it starts) to this one is the transition overhead: commit, bookkeeping,
 * scheduling.
 */
export const probe = {
  last: new Float64Array(0),
  overhead: new Histogram(),
  /** the step that holds its execution on `gate` (0: none) */
  gateAt: 0,
  gate: undefined as Deferred.Deferred<void> | undefined,
  /** executions that reached the `gateAt` step, and when the `target`-th did */
  arrivals: 0,
  target: 0,
  allArrivedAt: 0,
  /** called when the `target`-th execution reaches the `gateAt` step (W4: stop there, to profile recovery alone) */
  onAllArrived: undefined as (() => void) | undefined,
  /** time of the first step's start, per execution (W3) */
  firstStep: new Float64Array(0),
  /** called when the first step of execution `i` starts (W3) */
  onFirst: undefined as ((i: number) => void) | undefined,
  reset(n: number) {
    this.last = new Float64Array(n)
    this.firstStep = new Float64Array(n)
    this.onFirst = undefined
    this.overhead = new Histogram()
    this.gateAt = 0
    this.gate = undefined
    this.arrivals = 0
    this.target = n
    this.allArrivedAt = 0
    this.onAllArrived = undefined
  }
}

const Input = Schema.Struct({ i: Schema.Number })

const benchStep = (k: number) =>
  Procedure.step({
    run: ({ context }: { readonly context: { readonly i: number } }) =>
      Effect.suspend(() => {
        const t = performance.now()
        const i = context.i
        if (k === 1) {
          probe.firstStep[i] = t
          probe.onFirst?.(i)
        }
        else probe.overhead.record(t - probe.last[i]!)
        if (k === probe.gateAt) {
          if (++probe.arrivals === probe.target) {
            probe.allArrivedAt = t
            probe.onAllArrived?.()
          }
          if (probe.gate !== undefined) {
            const gate = probe.gate
            return Effect.map(Deferred.await(gate), () => void (probe.last[i] = performance.now()))
          }
        }
        probe.last[i] = t
        return Effect.void
      }),
    next: (k < STEPS ? `s${k + 1}` : "done") as "done",
    // the gated steps hold for as long as the bench needs (W1 heap pass, W4 kill)
    timeout: "1 hour"
  })

const linearStates: Record<string, Procedure.AnyState> = { done: Procedure.final() }
for (let k = 1; k <= STEPS; k++) linearStates[`s${k}`] = benchStep(k)

/** W1, W3, W4, W5: ten no-op steps s1..s10, then `done`. */
export const Linear10 = Procedure.make("bench-linear10", { version: 1, input: Input, context: Input }, {
  initial: "s1",
  // built in a loop, so typed loosely here; registration (Procedure.validate) checks the real graph
  states: linearStates as unknown as { readonly s1: Procedure.Final; readonly done: Procedure.Final }
})

/** the event that wakes a waiting execution (W2, W3) */
export const Go = Schema.TaggedStruct("Go", {})

/** W2, W3: waits for `Go`, then ends. */
export const Waiter = Procedure.make("bench-waiter", { version: 1, input: Input, context: Input, events: Go }, {
  initial: "waiting",
  states: {
    waiting: Procedure.wait({ on: { Go: "done" } }),
    done: Procedure.final()
  }
})

export type StoreKind = "memory" | "sqlite" | "sqlite-full"

export const storeLabel = (kind: StoreKind) =>
  kind === "memory" ? "memory store" : kind === "sqlite" ? "SQLite (NORMAL)" : "SQLite (synchronous=FULL)"

export const tempDb = (name: string) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-bench-"))
  return { dir, file: path.join(dir, `${name}.db`), remove: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export const baseStore = (kind: StoreKind, file: string): Layer.Layer<Store.Store, unknown> =>
  kind === "memory"
    ? Store.layerMemory
    : SqlStore.layerSqlite({ filename: file, synchronous: kind === "sqlite-full" ? "FULL" : "NORMAL", ...(process.env.QCAP ? { queueCapacity: Number(process.env.QCAP) } : {}) })

export interface Hooks {
  /** after each commit or create that left an execution in a terminal status */
  readonly onTerminal?: (snapshot: Execution.Snapshot) => void
  /** after each commit that committed a transition (its time, its cause) */
  readonly onTransition?: (t: Execution.Transition) => void
  /** may replace a commit, e.g. with a defect (W5) */
  readonly intercept?: (commit: StoreNs.Commit) => Effect.Effect<void, never> | undefined
}

/**
 * Wraps a store so the bench sees commits. A commit that ends nothing costs one branch;
 * the bench uses this instead of `Runtime.await` so that finding out when N executions
 * are done costs no store read per execution.
 */
export const instrument = (hooks: Hooks) =>
  Layer.effect(
    Store.Store,
    Effect.map(Store.Store, (inner): StoreNs.StoreService => ({
      ...inner,
      commit: (commit) => {
        const injected = hooks.intercept?.(commit)
        if (injected !== undefined) return injected
        const terminal = hooks.onTerminal !== undefined && Execution.isTerminal(commit.snapshot.status)
        if (!terminal && (hooks.onTransition === undefined || commit.transition === undefined)) return inner.commit(commit)
        return Effect.map(inner.commit(commit), () => {
          if (commit.transition !== undefined) hooks.onTransition?.(commit.transition)
          if (terminal) hooks.onTerminal!(commit.snapshot)
        })
      }
    }))
  )

export const runtimeLayer = (
  kind: StoreKind,
  file: string,
  hooks: Hooks,
  options?: Omit<Runtime.Options, "procedures">,
  /** log errors only (W5 injects defects, each of which the runtime logs as a warning) */
  quiet?: boolean
) =>
  Runtime.layer({ ...options, procedures: [Linear10, Waiter] }).pipe(
    Layer.provide(instrument(hooks).pipe(Layer.provide(baseStore(kind, file)))),
    Layer.provide(quiet === true ? Logger.minimumLogLevel(LogLevel.Error) : Layer.empty)
  )

/** A counter that resolves a promise when it reaches `target`, and keeps when that was. */
export class Countdown {
  count = 0
  doneAt = 0
  private resolve!: () => void
  readonly promise: Promise<void>
  constructor(readonly target: number) {
    this.promise = new Promise((r) => (this.resolve = r))
    if (target <= 0) this.finish()
  }
  tick = () => {
    if (++this.count === this.target) this.finish()
  }
  private finish() {
    this.doneAt = performance.now()
    this.resolve()
  }
}
