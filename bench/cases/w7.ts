/**
 * W7, one process of a runner count: a Proctor runner (`Cluster.layer` on Postgres) or a
 * DBOS Transact process on the same Postgres, driven by the orchestrator (bench/lib/w7.ts).
 *
 * Both run the same shape: executions of 10 sequential no-op steps, from a closed loop of
 * `concurrency` clients, each starting an execution and waiting for its end before the
 * next, as an application would (Proctor: `Runtime.await`, one read of the row, then the end
 * the runtime's actor commits, in memory; DBOS: the workflow handle's `getResult`, the
 * workflow's promise). A `watch()` subscriber of every change, as W7 had before, cost ~2 ms
 * per execution alone on Postgres (docs/benchmarks.md).
 *
 * Protocol: the process prints `@@ready` when it can take work (Proctor: `@@held <n>` each
 * time the number of shards it holds changes); each stdin line `{"cmd":"run",...}` runs a
 * phase and prints `@@phase {json}`; `{"cmd":"exit"}` ends it.
 *
 *   node <worker> w7 '{"system":"proctor","url":"postgres://…","port":34700,"shards":64,"prefix":"w7"}'
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Logger, LogLevel, Option, Redacted, Schedule, Schema } from "effect"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as readline from "node:readline"
import { Procedure, Runtime, SqlStore } from "proctor"
import * as Cluster from "proctor/Cluster"
import { Histogram } from "../lib/stats.js"

export interface Args {
  readonly system: "proctor" | "dbos"
  readonly url: string
  /** Proctor: the port this runner listens on for the others; DBOS: names the executor */
  readonly port: number
  readonly shards?: number
  readonly prefix?: string
  /** DBOS: the folder holding its install (scripts/bench-peers.mjs) */
  readonly peer?: string
}

/**
 * A phase: a closed loop of `concurrency` clients; the executions ending in a window of at
 * least `seconds` count. The window opens once `ramp` seconds have passed and every client
 * has ended one execution (all clients start at once: the loop needs about one execution's
 * latency to reach its steady state), and the process prints `@@window` then. It closes
 * once `seconds` have passed and at least twice `concurrency` executions have ended in it
 * (at most a minute later): when one execution takes seconds, the clients move in waves and
 * a window shorter than a few waves counts one wave or none. Or `count` executions, all counted.
 */
export interface Phase {
  readonly cmd: "run"
  readonly concurrency: number
  readonly ramp?: number
  readonly seconds?: number
  readonly count?: number
  readonly tag: string
}

export interface PhaseResult {
  /** executions that ended within the window, and the window's length */
  readonly completed: number
  readonly seconds: number
  /** every execution that ended after the ramp (in the window and the drain after it) */
  readonly total: number
  /** executions not ended 60 s after their start (none expected) */
  readonly stuck: number
  /** CPU time of this process from the first execution that counts to the end of the drain, µs (user + system) */
  readonly cpuUs: number
  /** start -> end of the executions that ended in the window, ms */
  readonly latency: { readonly sparse: Array<[number, number]>; readonly max: number; readonly sum: number }
}

const STEPS = 10
const STUCK_MS = 60_000

const emit = (line: string) => void process.stdout.write(`${line}\n`)

const commands = () => {
  const queue: Array<string> = []
  const waiting: Array<(line: string) => void> = []
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const w = waiting.shift()
    if (w !== undefined) w(line)
    else queue.push(line)
  })
  return () => new Promise<string>((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push(resolve)))
}

/** what each phase measures, whatever the system */
class Meter {
  readonly latency = new Histogram()
  completed = 0
  total = 0
  stuck = 0
  started = 0
  /** clients that have ended an execution */
  warm = 0
  readonly t0 = performance.now()
  readonly rampUntil: number
  open = false
  openedAt = 0
  /** from when the window may close, and when it did */
  stopAt = Infinity
  closedAt = Infinity
  cpuAtStart = process.cpuUsage()
  constructor(readonly phase: Phase) {
    this.rampUntil = this.t0 + (phase.ramp ?? 0) * 1000
    this.open = phase.count !== undefined
  }
  /** whether a client may start another execution */
  more() {
    // a client whose first execution never ends must not hold the window shut for ever
    if (!this.open && performance.now() - this.rampUntil > STUCK_MS) this.ended(this.t0, false, true)
    if (this.phase.count !== undefined ? this.started >= this.phase.count : this.closed()) return false
    this.started++
    return true
  }
  private closed() {
    if (this.closedAt !== Infinity) return true
    const now = performance.now()
    if (now < this.stopAt || (this.completed < 2 * this.phase.concurrency && now < this.stopAt + STUCK_MS)) return false
    this.closedAt = now
    return true
  }
  /** an execution started at `t0` ended; `first`: the client's first */
  ended(t0: number, first: boolean, force = false) {
    const t1 = performance.now()
    if (first) this.warm++
    if (!this.open) {
      if (!force && (this.warm < this.phase.concurrency || t1 < this.rampUntil)) return
      this.open = true
      this.openedAt = t1
      this.stopAt = t1 + (this.phase.seconds ?? 0) * 1000
      this.cpuAtStart = process.cpuUsage()
      emit("@@window")
      return
    }
    this.total++
    if (!this.closed() || t1 <= this.closedAt) {
      this.completed++
      this.latency.record(t1 - t0)
    }
  }
  result(): PhaseResult {
    const cpu = process.cpuUsage(this.cpuAtStart)
    const window = this.phase.count !== undefined ? (performance.now() - this.t0) / 1000 : (this.closedAt - this.openedAt) / 1000
    return {
      completed: this.completed,
      seconds: window,
      total: this.total,
      stuck: this.stuck,
      cpuUs: cpu.user + cpu.system,
      latency: { sparse: this.latency.toSparse(), max: this.latency.max, sum: this.latency.sum }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Proctor: a runner of Cluster.layer; it starts executions only in the shards it holds

const states: Record<string, Procedure.AnyState> = { done: Procedure.final() }
for (let k = 1; k <= STEPS; k++) {
  states[`s${k}`] = Procedure.step({ run: () => Effect.void, next: (k < STEPS ? `s${k + 1}` : "done") as "done" })
}
const Empty = Schema.Struct({})
/** ten no-op steps s1..s10, then `done` */
const Ten = Procedure.make("bench-w7", { version: 1, input: Empty, context: Empty }, {
  initial: "s1",
  // built in a loop, so typed loosely here; registration checks the real graph
  states: states as unknown as { readonly s1: Procedure.Final; readonly done: Procedure.Final }
})

const proctor = (args: Args, next: () => Promise<string>) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    const shards = yield* SqlStore.Shards
    let last = -1
    yield* Effect.forkScoped(Effect.repeat(
      Effect.flatMap(shards.held, (held) =>
        Effect.sync(() => {
          if (held.size !== last) emit(`@@held ${(last = held.size)}`)
        })),
      Schedule.spaced("100 millis")
    ).pipe(Effect.catchAllCause(() => Effect.void)))
    emit("@@ready")
    let n = 0
    while (true) {
      const line = yield* Effect.promise(next)
      const cmd = JSON.parse(line) as Phase | { readonly cmd: "exit" }
      if (cmd.cmd === "exit") return
      const held = yield* shards.held
      // the orchestrator sends work once the runners have split the shards
      if (held.size === 0) return yield* Effect.dieMessage("w7: this runner holds no shard")
      const meter = new Meter(cmd)
      const nextId = () => {
        while (true) {
          const id = `${cmd.tag}-${args.port}-${n++}`
          if (held.has(shards.shardOf(id))) return id
        }
      }
      const client = Effect.gen(function*() {
        let first = true
        while (meter.more()) {
          const id = nextId()
          const t0 = performance.now()
          yield* runtime.start(Ten, {}, { id })
          const ended = yield* runtime.await(id).pipe(Effect.timeout(STUCK_MS), Effect.option)
          if (Option.isNone(ended)) meter.stuck++
          else meter.ended(t0, first)
          first = false
        }
      })
      yield* Effect.all(Array.from({ length: cmd.concurrency }, () => client), { concurrency: "unbounded", discard: true })
      emit(`@@phase ${JSON.stringify(meter.result())}`)
    }
  })

const runProctor = (args: Args, next: () => Promise<string>) =>
  Effect.runPromise(
    Effect.scoped(proctor(args, next)).pipe(
      Effect.provide(Cluster.layer({
        procedures: [Ten],
        runner: { host: "127.0.0.1", port: args.port },
        shards: args.shards ?? 300,
        store: { prefix: args.prefix ?? "w7" }
      })),
      Effect.provide(PgClient.layer({ url: Redacted.make(args.url) })),
      Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
  )

// ---------------------------------------------------------------------------------------
// DBOS Transact: a workflow of ten no-op steps, installed on demand (scripts/bench-peers.mjs)

interface Dbos {
  readonly DBOS: {
    setConfig(config: Record<string, unknown>): void
    launch(): Promise<void>
    shutdown(): Promise<void>
    registerWorkflow<R>(f: () => Promise<R>, config: { name: string }): () => Promise<R>
    runStep<R>(f: () => Promise<R>, config: { name: string }): Promise<R>
    startWorkflow<R>(f: () => Promise<R>): () => Promise<{ getResult(): Promise<R> }>
  }
}

const runDbos = async (args: Args, next: () => Promise<string>) => {
  if (args.peer === undefined) throw new Error("w7: DBOS needs `peer`, the folder scripts/bench-peers.mjs installed it in")
  const { DBOS } = createRequire(path.join(args.peer, "package.json"))("@dbos-inc/dbos-sdk") as Dbos
  const noop = async () => {}
  const names = Array.from({ length: STEPS }, (_, k) => ({ name: `s${k + 1}` }))
  const ten = DBOS.registerWorkflow(async () => {
    for (const name of names) await DBOS.runStep(noop, name)
  }, { name: "bench-w7" })
  DBOS.setConfig({ name: "proctor-bench-w7", systemDatabaseUrl: args.url, executorID: `w7-${args.port}`, logLevel: "warn" })
  await DBOS.launch()
  emit("@@ready")
  while (true) {
    const cmd = JSON.parse(await next()) as Phase | { readonly cmd: "exit" }
    if (cmd.cmd === "exit") break
    const meter = new Meter(cmd)
    const client = async () => {
      let first = true
      while (meter.more()) {
        const t0 = performance.now()
        const handle = await DBOS.startWorkflow(ten)()
        await handle.getResult()
        meter.ended(t0, first)
        first = false
      }
    }
    await Promise.all(Array.from({ length: cmd.concurrency }, client))
    emit(`@@phase ${JSON.stringify(meter.result())}`)
  }
  await DBOS.shutdown()
}

export const main = async (args: Args) => {
  const next = commands()
  if (args.system === "dbos") await runDbos(args, next)
  else await runProctor(args, next)
}
