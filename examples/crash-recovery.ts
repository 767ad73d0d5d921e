/**
 * Crash recovery: a process that dies in the middle of a step, and a second run that
 * finds the SQLite file, resumes the execution where it stood and finishes it.
 *
 * Run it three times:
 *
 *   npx tsx examples/crash-recovery.ts           # starts order A-1001, crashes (SIGKILL) in step "charge"
 *   npx tsx examples/crash-recovery.ts           # resumes A-1001 at "charge" and finishes it
 *   npx tsx examples/crash-recovery.ts           # nothing to resume
 *   npx tsx examples/crash-recovery.ts --reset   # deletes the files and starts over
 *
 * `--data <folder>` keeps the files elsewhere than `.data/`.
 *
 * The crash comes after the payment was made but before the step returned, so its
 * transition never committed: the step runs again after recovery (steps run at least
 * once). The payment service sees the same idempotency key the second time and does not
 * charge twice.
 *
 * @since 0.1.0
 */
import { Console, Duration, Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Execution, Procedure, Runtime, SqlStore, Store } from "proctor"
import { isMain } from "./report.js"

const args = process.argv.slice(2)
const dataDir = args.includes("--data") ? args[args.indexOf("--data") + 1] ?? ".data" : ".data"
const dbFile = path.join(dataDir, "crash-recovery.db")
/** the payment service's own records: which idempotency keys it has charged */
const paymentsFile = path.join(dataDir, "crash-recovery.payments.json")

/** The step this process crashes in: set only by the run that starts the order. */
let crashIn: string | undefined

const payments = (): Record<string, number> =>
  fs.existsSync(paymentsFile) ? JSON.parse(fs.readFileSync(paymentsFile, "utf8")) : {}

/** Charges once per idempotency key, like a payment API that takes one. */
const pay = (key: string, amount: number) =>
  Effect.gen(function*() {
    const made = payments()
    if (key in made) return yield* Console.log(`    payment ${key} was already made: not charging again`)
    made[key] = amount
    fs.writeFileSync(paymentsFile, JSON.stringify(made, null, 2))
    yield* Console.log(`    charged ${amount.toFixed(2)} (payment key ${key})`)
  })

/** A step's work: it says what it runs, then takes a moment. */
const work = (name: string, args: Procedure.StepArgs<unknown>) =>
  Console.log(`  step ${name} (attempt ${args.attempt}, key ${args.idempotencyKey})`).pipe(
    Effect.zipRight(Effect.sleep(Duration.millis(100)))
  )

const crashPoint = (state: string) =>
  Effect.suspend(() => {
    if (crashIn !== state) return Effect.void
    return Effect.sync(() => {
      console.log(`crashing now in step ${state}: its transition is not committed`)
      process.kill(process.pid, "SIGKILL")
    })
  })

/**
 * An order: reserve the stock, charge the customer, ship.
 *
 * @since 0.1.0
 */
export const Order = Procedure.make("crash-recovery-order", {
  version: 1,
  input: Schema.Struct({ order: Schema.String, amount: Schema.Number }),
  context: Schema.Struct({ order: Schema.String, amount: Schema.Number })
}, {
  initial: "reserve",
  states: {
    reserve: Procedure.step({ run: (args) => work("reserve", args), next: "charge" }),
    charge: Procedure.step({
      run: (args) =>
        work("charge", args).pipe(
          Effect.zipRight(pay(args.idempotencyKey, args.context.amount)),
          Effect.zipRight(crashPoint("charge"))
        ),
      next: "ship"
    }),
    ship: Procedure.step({ run: (args) => work("ship", args), next: "done" }),
    done: Procedure.final()
  }
})

const orderId = "A-1001"

const finish = (runtime: Runtime.RuntimeService, id: string) =>
  Effect.gen(function*() {
    const end = yield* runtime.await(id)
    const history = yield* runtime.history(id)
    yield* Console.log(`done: ${end.status} at state ${end.state} (${history.map((t) => t.to).join(" → ")})`)
  })

/**
 * One run: start the order (and crash), or resume it, or say there is nothing to do.
 *
 * @since 0.1.0
 */
export const main = Effect.gen(function*() {
  const store = yield* Store.Store
  // what the file holds before the runtime resumes anything
  const stored = yield* store.list({ limit: 1000 })
  const pending = stored.filter((s) => !Execution.isTerminal(s.status))
  if (stored.length > 0 && pending.length === 0) {
    for (const s of stored) yield* Console.log(`execution ${s.id} ended ${s.status} at state ${s.state}`)
    return yield* Console.log(`nothing to resume in ${dbFile}. Run with --reset to start over.`)
  }
  if (stored.length === 0) {
    crashIn = "charge"
    yield* Console.log(`starting order ${orderId} on ${dbFile}; this process will crash in step charge`)
  } else {
    yield* Console.log(`found ${dbFile}`)
    for (const s of pending) {
      yield* Console.log(`resumed execution ${s.id} at state ${s.state} (status ${s.status}, ${s.seq} transitions committed)`)
    }
  }
  // building the runtime resumes every execution that was not finished
  const runtime = yield* Runtime.make({ procedures: [Order] })
  const id = yield* runtime.start(Order, { order: orderId, amount: 42 }, { id: orderId, idempotencyKey: orderId })
  yield* finish(runtime, id)
}).pipe(Effect.scoped, Effect.provide(SqlStore.layerSqlite({ filename: dbFile })))

if (isMain(import.meta.url)) {
  if (args.includes("--reset")) {
    for (const file of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, paymentsFile]) fs.rmSync(file, { force: true })
    console.log(`removed ${dbFile} and ${paymentsFile}`)
  }
  Effect.runPromise(main).catch((error) => {
    console.error(String(error))
    process.exit(1)
  })
}
