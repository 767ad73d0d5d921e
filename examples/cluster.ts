/**
 * Scale-out: three processes of one app on one Postgres (`Cluster.layer`). Each shipment runs
 * on the runner that holds its shard; one runner is killed with SIGKILL while its shipments
 * are in their steps, and the two others finish them once its lease has run out.
 *
 *   DATABASE_URL=postgres://user:password@localhost:5432/db npx tsx examples/cluster.ts
 *
 * It starts three processes of this file (`runner <port> <prefix>`), starts 12 shipments
 * through the first, kills the second once its shipments are under way, and waits (at most
 * 90 s) until all 12 have succeeded. It then prints which runner ran each step: a step the
 * killed runner was in ran again on another (steps run at least once); every state is once
 * in each history (no committed step ran again). It exits with 1 if any of that fails. Its
 * tables (`example_<random>_*`) are dropped at the end. `PORT` (default 34431) is the first
 * of the runners' three ports. Without DATABASE_URL it says how to run it.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as SqlClient from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Console, Effect, Layer, Queue, Redacted, Schedule, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { Procedure, Runtime, SqlStore } from "proctor"
import * as Cluster from "proctor/Cluster"

const print = (line: unknown) => Effect.sync(() => void process.stdout.write(`${JSON.stringify(line)}\n`))

/** each step says where it runs (the parent collects that), then takes a second */
const work = (step: string) => ({ executionId }: { readonly executionId: string }) =>
  Effect.zipRight(print({ step, id: executionId, pid: process.pid }), Effect.sleep("1 second"))

/**
 * A shipment: three steps, each a second long.
 *
 * @since 0.1.0
 */
export const Shipment = Procedure.make("shipment", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "pack",
  states: {
    pack: Procedure.step({ run: work("pack"), next: "label" }),
    label: Procedure.step({ run: work("label"), next: "handOver" }),
    handOver: Procedure.step({ run: work("handOver"), next: "shipped" }),
    shipped: Procedure.final()
  }
})

const shards = 12
const count = 12

/** One runner: the app as each replica runs it, plus a line `start <n>` on stdin to start shipments. */
const runner = (url: string, port: number, prefix: string) =>
  Effect.gen(function*() {
    const held = yield* SqlStore.Shards
    let last = -1
    yield* Effect.forkScoped(Effect.repeat(
      Effect.flatMap(held.held, (h) => h.size === last ? Effect.void : Effect.zipRight(Effect.sync(() => void (last = h.size)), print({ held: h.size }))),
      Schedule.spaced("100 millis")
    ))
    const lines = yield* Queue.unbounded<string>()
    readline.createInterface({ input: process.stdin }).on("line", (line) => Queue.unsafeOffer(lines, line))
    while (true) {
      const n = Number(/^start (\d+)$/.exec(yield* Queue.take(lines))?.[1] ?? 0)
      // started here, each runs on the runner that holds its shard
      const ids = yield* Effect.forEach(Array.from({ length: n }, (_, i) => `ship-${i + 1}`), (id) => Runtime.start(Shipment, {}, { id }))
      yield* print({ started: ids })
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(Cluster.layer({
      procedures: [Shipment],
      runner: { host: "127.0.0.1", port },
      shards,
      lease: "3 seconds",
      store: { prefix }
    })),
    Effect.provide(PgClient.layer({ url: Redacted.make(url) }))
  )

interface Child {
  readonly name: string
  readonly process: ChildProcess
  held: number
  started: ReadonlyArray<string>
}

/** waits until `test` holds, looking every 100 ms; fails after `seconds` with `what` */
const waitFor = (test: () => boolean, seconds: number, what: string) =>
  Effect.suspend(() => test() ? Effect.void : Effect.fail("not yet" as const)).pipe(
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`gave up after ${seconds} s waiting until ${what}`) })
  )

/** The parent: three runners, 12 shipments, one runner killed, and what happened. */
const parent = (url: string, firstPort: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const prefix = `example_${Math.random().toString(36).slice(2, 8)}`
    const file = fileURLToPath(import.meta.url)
    /** which process ran each step of each shipment, in order */
    const ran = new Map<string, Array<{ step: string; pid: number }>>()
    const children: Array<Child> = []
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        for (const c of children) c.process.kill("SIGTERM")
        for (const t of ["executions", "transitions", "errors", "inbox", "compensations", "shards", "migrations", "cluster_runners", "cluster_locks"]) {
          yield* sql.unsafe(`DROP TABLE IF EXISTS ${prefix}_${t}`)
        }
      }).pipe(Effect.ignore)
    )
    for (let i = 0; i < 3; i++) {
      const port = firstPort + i
      const child = spawn(process.execPath, [...process.execArgv, file, "runner", String(port), prefix], { stdio: ["pipe", "pipe", "inherit"] })
      const c: Child = { name: `runner ${i + 1} (127.0.0.1:${port}, pid ${child.pid})`, process: child, held: 0, started: [] }
      children.push(c)
      readline.createInterface({ input: child.stdout! }).on("line", (line) => {
        if (!line.startsWith("{")) return
        const m = JSON.parse(line) as { held?: number; started?: Array<string>; step?: string; id?: string; pid?: number }
        if (m.held !== undefined) c.held = m.held
        if (m.started !== undefined) c.started = m.started
        if (m.step !== undefined) ran.set(m.id!, [...(ran.get(m.id!) ?? []), { step: m.step, pid: m.pid! }])
      })
    }
    const [one, two] = [children[0]!, children[1]!]
    yield* waitFor(() => children.every((c) => c.held > 0) && children.reduce((n, c) => n + c.held, 0) === shards, 60, "the three runners share the shards")
    yield* Console.log(`${children.map((c) => `${c.name} holds ${c.held} shards`).join("\n")}`)

    one.process.stdin!.write(`start ${count}\n`)
    yield* waitFor(() => one.started.length === count, 30, `runner 1 started ${count} shipments`)
    yield* Console.log(`\nstarted ${count} shipments through runner 1; each runs where its shard is`)
    const onTwo = () => [...ran.values()].filter((steps) => steps.some((s) => s.pid === two.process.pid)).length
    yield* waitFor(() => onTwo() > 0 && [...ran.values()].some((steps) => steps.length >= 2), 30, "runner 2's shipments are under way")
    two.process.kill("SIGKILL")
    const killedAt = Date.now()
    yield* Console.log(`killed ${two.name} with SIGKILL while ${onTwo()} shipments were in its steps`)

    const statuses = sql<{ execution_id: string; status: string }>`SELECT execution_id, status FROM ${sql(`${prefix}_executions`)}`
    yield* Effect.flatMap(statuses, (rows) => rows.length === count && rows.every((r) => r.status === "succeeded") ? Effect.void : Effect.fail("not yet")).pipe(
      Effect.retry(Schedule.spaced("250 millis")),
      Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error(`not all ${count} shipments succeeded within 90 s`) })
    )
    const names = new Map(children.map((c, i) => [c.process.pid, `runner ${i + 1}`]))
    const after = ((Date.now() - killedAt) / 1000).toFixed(1)
    yield* Console.log(`all ${count} shipments succeeded, ${after} s after the kill (lease 3 s). Who ran each step (a step run twice: the killed runner was in it):`)
    for (const id of one.started) {
      const steps = (ran.get(id) ?? []).map((s) => `${s.step} on ${names.get(s.pid)}`)
      yield* Console.log(`  ${id.padEnd(8)} ${steps.join(", ")}`)
    }
    // every state once in each history: no committed step ran again
    const history = yield* sql<{ execution_id: string; to_state: string }>`SELECT execution_id, to_state FROM ${sql(`${prefix}_transitions`)} ORDER BY execution_id, seq`
    for (const id of one.started) {
      const states = history.filter((t) => t.execution_id === id).map((t) => t.to_state).join(",")
      if (states !== "pack,label,handOver,shipped") return yield* Effect.fail(new Error(`${id}'s history is ${states}, not pack,label,handOver,shipped`))
    }
    yield* Console.log("each history holds pack, label, handOver and shipped once: no committed step ran again")
  }).pipe(Effect.scoped, Effect.provide(Layer.orDie(PgClient.layer({ url: Redacted.make(url) }))))

const [role, port, prefix] = process.argv.slice(2)
const url = process.env.DATABASE_URL
if (url === undefined || url === "") {
  console.log("examples/cluster.ts needs a Postgres: DATABASE_URL=postgres://user:password@localhost:5432/db npx tsx examples/cluster.ts")
} else if (role === "runner") {
  NodeRuntime.runMain(runner(url, Number(port), prefix!))
} else {
  NodeRuntime.runMain(parent(url, Number(process.env.PORT ?? 34431)))
}
