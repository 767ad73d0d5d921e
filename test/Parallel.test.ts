import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Metric, Option, Schedule, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { StoreError as StoreErrorClass } from "proctor"
import type { StoreError } from "proctor"
import type { Execution } from "proctor"
import * as Server from "../src/http/Server.js"
import { ClusterHooks } from "../src/internal/clusterHooks.js"
import { journal, Journal, record, Rejected } from "./fixtures/procedures.js"
import { layerFreshPg } from "./fixtures/sqlPg.js"
import { layerTempSqlite } from "./fixtures/sqlTemp.js"

const Ctx = Schema.Struct({ done: Schema.Array(Schema.String) })
type Ctx = typeof Ctx.Type
const Go = Schema.TaggedStruct("Go", { by: Schema.String })
const Stop = Schema.TaggedStruct("Stop", {})
/** an event no region takes */
const Ping = Schema.TaggedStruct("Ping", {})

/** A step of a region: takes `millis` of virtual time, records `name`, undone by `undo name`; `fails` fails it for good. */
const work = <const N extends string>(name: string, next: N, options?: { readonly millis?: number; readonly fails?: boolean }) =>
  Procedure.step({
    run: () =>
      Effect.zipRight(
        Effect.sleep(options?.millis ?? 0),
        options?.fails === true ? Effect.fail(new Rejected({ reason: `${name} broke` })) : record(name)
      ),
    update: (_, context: Ctx) => ({ ...context, done: [...context.done, name] }),
    compensate: () => record(`undo ${name}`),
    next
  })

/** The steps of the regions that succeeded, after the context's own. */
const merge = (result: Procedure.ParallelResult<Ctx>, context: Ctx): Ctx => ({
  ...context,
  done: [
    ...context.done,
    ...Object.values(result.regions).flatMap((r) => r.status === "succeeded" ? r.context.done.filter((d) => !context.done.includes(d)) : [])
  ]
})

/**
 * Three regions: db (migrate at 10 ms, seed `seedMillis` later), api (build at 5 ms, ship
 * 30 ms later, which fails for good with `apiFails`) and web (bundle at 20 ms, then waits
 * for Go or Stop); `mode` as given.
 */
const release = (name: string, mode: Procedure.ParallelMode, options?: { readonly apiFails?: boolean; readonly seedMillis?: number }) =>
  Procedure.make(name, { version: 1, input: Ctx, context: Ctx, events: Schema.Union(Go, Stop, Ping) }, {
    initial: "prepare",
    states: {
      prepare: work("prepare", "rollout"),
      rollout: Procedure.parallel({
        mode,
        regions: {
          db: {
            initial: "migrate",
            states: { migrate: work("migrate", "seed", { millis: 10 }), seed: work("seed", "done", { millis: options?.seedMillis ?? 15 }), done: Procedure.final() }
          },
          api: {
            initial: "build",
            states: {
              build: work("build", "ship", { millis: 5 }),
              ship: work("ship", "done", { millis: 30, fails: options?.apiFails === true }),
              done: Procedure.final()
            }
          },
          web: {
            initial: "bundle",
            states: {
              bundle: work("bundle", "approve", { millis: 20 }),
              approve: Procedure.wait({ on: { Go: "done", Stop: "stopped" } }),
              done: Procedure.final({ outcome: "approved" }),
              stopped: Procedure.final({ outcome: "failed" })
            }
          }
        },
        update: merge,
        next: "live",
        onFailure: { goto: "aborted" }
      }),
      live: Procedure.final(),
      aborted: Procedure.final({ outcome: "failed" })
    }
  })

const All = release("release-all", "all")
const Failing = release("release-failing", "all", { apiFails: true, seedMillis: 50 })
/** api fails at 35 ms, after db succeeded (at 25 ms) */
const LateFailure = release("release-late-failure", "all", { apiFails: true })
const Race = release("release-race", "race")
const AtLeast = release("release-two", { atLeast: 2 })

/** The regions succeed (api at 5 ms, db at 25 ms), then `check` fails for good: the parent compensates them. */
const Checked = Procedure.make("release-checked", { version: 1, input: Ctx, context: Ctx }, {
  initial: "prepare",
  states: {
    prepare: work("prepare", "rollout"),
    rollout: Procedure.parallel({
      regions: {
        db: { initial: "migrate", states: { migrate: work("migrate", "seed", { millis: 10 }), seed: work("seed", "done", { millis: 15 }), done: Procedure.final() } },
        api: { initial: "build", states: { build: work("build", "done", { millis: 5 }), done: Procedure.final() } }
      },
      compensate: () => record("undo rollout"),
      next: "check"
    }),
    check: work("check", "live", { fails: true }),
    live: Procedure.final()
  }
})

/** A parallel state inside a compound state. */
const Nested = Procedure.make("release-nested", { version: 1, input: Ctx, context: Ctx }, {
  initial: "phase",
  states: {
    phase: Procedure.compound({
      initial: "rollout",
      states: {
        rollout: Procedure.parallel({
          regions: {
            a: { initial: "x", states: { x: work("x", "done", { millis: 5 }), done: Procedure.final() } },
            b: { initial: "y", states: { y: work("y", "done", { millis: 10 }), done: Procedure.final() } }
          },
          update: merge,
          next: "phase.done"
        }),
        done: Procedure.final()
      },
      onDone: "live"
    }),
    live: Procedure.final()
  }
})

/** A parallel state whose region waits for ever, with a timeout that gives up at once. */
const Impatient = Procedure.make("release-impatient", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "rollout",
  states: {
    rollout: Procedure.parallel({
      regions: {
        a: { initial: "w", states: { w: Procedure.wait({ on: { Go: "done" } }), done: Procedure.final() } },
        b: { initial: "x", states: { x: work("x", "done"), done: Procedure.final() } }
      },
      timeout: "1 minute",
      retry: Schedule.stop,
      onFailure: { goto: "late" },
      next: "live"
    }),
    live: Procedure.final(),
    late: Procedure.final({ outcome: "late" })
  }
})

/** Two regions that both wait for Go. */
const Twins = Procedure.make("release-twins", { version: 1, input: Ctx, context: Ctx, events: Go }, {
  initial: "rollout",
  states: {
    rollout: Procedure.parallel({
      regions: {
        a: { initial: "w", states: { w: Procedure.wait({ on: { Go: "done" } }), done: Procedure.final() } },
        b: { initial: "w", states: { w: Procedure.wait({ on: { Go: "done" } }), done: Procedure.final() } }
      },
      next: "live"
    }),
    live: Procedure.final()
  }
})

const procedures = [All, Failing, LateFailure, Checked, Race, AtLeast, Nested, Impatient, Twins] as const
const layer = (store: Layer.Layer<Store.Store, StoreError> = Store.layerMemory) =>
  Runtime.layer({ procedures }).pipe(Layer.provideMerge(store), Layer.provideMerge(Journal.layer))

/**
 * A runtime whose operations go through a cluster's router, which runs each here: on several
 * runners a region's end may commit on another, so the parent awaits each region in a fiber.
 */
const routedLayer = () =>
  layer().pipe(Layer.provide(Layer.succeed(ClusterHooks, {
    current: undefined,
    route: {
      wake: (_, here) => here,
      command: (_, __, here) => here,
      migrate: (_, __, here) => here,
      await: (_, here) => here,
      sendAndWait: (_, __, ___, here) => here
    }
  })))

/** The region executions of `parent`, by region name (the last part of their procedure's name). */
const regionsOf = (parent: string) =>
  Effect.map(Runtime.list({ parentId: parent }), (all) => Object.fromEntries(all.map((s) => [s.procedure.split(".").at(-1)!, s])))

/** Waits until the region `name` of `parent` is `status`. */
const regionUntil = (parent: string, name: string, status: Execution.Status) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      const region = (yield* regionsOf(parent))[name]
      if (region?.status === status) return region.id
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`region ${name} of ${parent} never became ${status}`)
  })

/** Two waiting regions take Go sent to their parent; the store's `enqueueAll` writes all or none. */
const twinsTakeGo = Effect.gen(function*() {
  const id = yield* Runtime.start(Twins, { done: [] })
  const a = yield* regionUntil(id, "a", "waiting")
  const b = yield* regionUntil(id, "b", "waiting")
  const store = yield* Store.Store
  // the store's own answer: both events or none
  const ended = yield* Effect.flip(store.enqueueAll!([{ executionId: a, event: { _tag: "Ping" }, at: 0 }, { executionId: "none", event: { _tag: "Ping" }, at: 0 }]))
  assert.strictEqual(ended.kind, "Conflict")
  assert.deepStrictEqual(yield* store.inbox(a, 10), [])
  yield* Runtime.send(id, Go.make({ by: "ops" }))
  assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
  for (const region of [a, b]) assert.strictEqual((yield* Runtime.history(region)).at(-1)!.cause, "event:Go")
})

const pgUrl = process.env.PROCTOR_TEST_PG_URL

describe("parallel states", () => {
  it.effect("all: the regions run at once as child executions; when every one succeeded, next, with their contexts merged", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(id, "web", "running")
      yield* TestClock.adjust("100 millis")
      yield* regionUntil(id, "web", "waiting")
      assert.strictEqual((yield* Runtime.get(id)).state, "rollout")
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual(Object.keys(regions).sort(), ["api", "db", "web"])
      assert.deepStrictEqual(regions.db!.procedure, "release-all.rollout.db")
      assert.deepStrictEqual(regions.db!.parentId, id)
      // the regions' steps ran side by side, in virtual time
      assert.deepStrictEqual(yield* journal, ["prepare", "build", "migrate", "bundle", "seed", "ship"])
      yield* Runtime.send(id, Go.make({ by: "ops" }))
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.strictEqual(done.state, "live")
      assert.sameMembers([...(done.context as Ctx).done], ["prepare", "migrate", "seed", "build", "ship", "bundle"])
      assert.strictEqual((done.context as Ctx).done[0], "prepare")
      assert.strictEqual((yield* Runtime.get(regions.web!.id)).outcome, "approved")
    }).pipe(Effect.provide(layer())))

  it.effect("a region that fails for good: the running regions are rolled back at once, their steps undone latest first across the regions; onFailure decides", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Failing, { done: [] })
      yield* regionUntil(id, "web", "running")
      // api's ship fails at 35 ms: db is in its seed (migrate completed at 10 ms), web waits (bundle completed at 20 ms)
      yield* TestClock.adjust("40 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "aborted")
      assert.deepStrictEqual(yield* journal, ["prepare", "build", "migrate", "bundle", "undo build", "undo bundle", "undo migrate"])
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual([regions.db!.status, regions.api!.status, regions.web!.status], ["rolled_back", "failed", "rolled_back"])
      // db's seed was interrupted by its rollback, whose compensations its parent ran
      const dbHistory = yield* Runtime.history(regions.db!.id)
      assert.deepStrictEqual(dbHistory.slice(-3).map((t) => [t.from, t.cause]), [["migrate", "step"], ["seed", "rollback"], ["seed", "compensated"]])
      assert.deepStrictEqual((yield* (yield* Store.Store).compensations(regions.db!.id)).map((c) => [c.state, c.ok]), [["migrate", true]])
      const error = (yield* Runtime.errors(id)).at(-1)!
      assert.strictEqual(error.tag, "RegionFailed")
      assert.include(error.message, `Region "api" (execution ${regions.api!.id}) of parallel state "rollout"`)
      assert.include(error.message, "ended failed (ExecutionError in state \"ship\")")
      assert.include(error.message, "rolled back, those that had succeeded too (web, db)")
    }).pipe(Effect.provide(layer())))

  it.effect("a region that succeeded is undone too when another fails for good: every step in the reverse order of completion across the regions", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(LateFailure, { done: [] })
      yield* regionUntil(id, "web", "running")
      // db succeeds at 25 ms (seed), api's ship fails at 35 ms, web waits (bundle at 20 ms)
      yield* regionUntil(id, "db", "running")
      yield* TestClock.adjust("30 millis")
      yield* regionUntil(id, "db", "succeeded")
      yield* TestClock.adjust("10 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "aborted")
      assert.deepStrictEqual(yield* journal, [
        "prepare", "build", "migrate", "bundle", "seed",
        // api undoes its own step as it fails; then seed (25 ms), bundle (20 ms), migrate (10 ms)
        "undo build", "undo seed", "undo bundle", "undo migrate"
      ])
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual([regions.db!.status, regions.api!.status, regions.web!.status], ["rolled_back", "failed", "rolled_back"])
      assert.isUndefined(regions.db!.outcome)
      // db went from succeeded to compensating, with the reason, then to rolled_back
      const dbHistory = yield* Runtime.history(regions.db!.id)
      assert.deepStrictEqual(dbHistory.slice(-3).map((t) => [t.cause, t.status]), [["step", "succeeded"], ["rollback", "compensating"], ["compensated", "rolled_back"]])
      assert.include(dbHistory.at(-2)!.reason ?? "", `region "api" of parallel state "rollout" of ${id} ended failed`)
      // in the order they ended: web with bundle's compensation, db with migrate's
      assert.include((yield* Runtime.errors(id)).at(-1)!.message, "rolled back, those that had succeeded too (web, db)")
      // a person still cannot roll back a succeeded execution: only its parent undoes it
      const other = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(other, "db", "running")
      yield* TestClock.adjust("30 millis")
      const db = yield* regionUntil(other, "db", "succeeded")
      const refused = yield* Effect.flip(Runtime.rollback(db))
      assert.include(refused.message, "It has already ended.")
    }).pipe(Effect.provide(layer())))

  it.effect("the finished-executions metric counts a region that succeeded, then was undone, once", () =>
    Effect.gen(function*() {
      const outcomes = ["succeeded", "failed", "cancelled", "rolled_back"]
      const finished = Effect.map(
        Effect.forEach(outcomes, (outcome) => Metric.value(Metric.tagged(Runtime.metrics.executionsFinished, "outcome", outcome))),
        (counts) => counts.reduce((sum, c) => sum + c.count, 0)
      )
      const before = yield* finished
      const id = yield* Runtime.start(LateFailure, { done: [] })
      yield* regionUntil(id, "db", "running")
      yield* TestClock.adjust("30 millis")
      yield* regionUntil(id, "db", "succeeded")
      yield* TestClock.adjust("10 millis")
      yield* Runtime.await(id)
      const db = (yield* regionsOf(id)).db!
      yield* regionUntil(id, "db", "rolled_back")
      assert.deepStrictEqual((yield* Runtime.history(db.id)).slice(-3).map((t) => t.status), ["succeeded", "compensating", "rolled_back"])
      // the parent and its three regions: four executions, four ends (db was counted when it succeeded)
      assert.strictEqual((yield* finished) - before, 4)
    }).pipe(Effect.provide(layer())))

  it.effect("a parent compensated after its parallel state succeeded undoes the regions (latest last step first), then runs the state's compensate", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Checked, { done: [] })
      yield* regionUntil(id, "db", "running")
      yield* TestClock.adjust("30 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.status, "failed")
      assert.deepStrictEqual(yield* journal, [
        "prepare", "build", "migrate", "seed",
        "undo seed", "undo migrate", "undo build", "undo rollout", "undo prepare"
      ])
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual([regions.db!.status, regions.api!.status], ["rolled_back", "rolled_back"])
      assert.strictEqual((yield* Runtime.history(regions.api!.id)).at(-2)!.reason, `parent ${id} compensates state "rollout"`)
    }).pipe(Effect.provide(layer())))

  for (const [where, runtime] of [["", layer], [" (behind a cluster's router)", routedLayer]] as const) {
  it.effect(`race: the first region to succeed wins; the others are rolled back and the result says how each ended${where}`, () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Race, { done: [] })
      yield* regionUntil(id, "web", "running")
      // db succeeds at 25 ms; api is in its ship (build completed at 5 ms), web waits (bundle at 20 ms)
      yield* TestClock.adjust("30 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "live")
      assert.deepStrictEqual(end.context, { done: ["prepare", "migrate", "seed"] })
      assert.deepStrictEqual(yield* journal, ["prepare", "build", "migrate", "bundle", "seed", "undo bundle", "undo build"])
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual([regions.db!.status, regions.api!.status, regions.web!.status], ["succeeded", "rolled_back", "rolled_back"])
    }).pipe(Effect.provide(runtime())))
  }

  it.effect("atLeast: done when k regions succeeded; the rest is rolled back", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(AtLeast, { done: [] })
      yield* regionUntil(id, "web", "running")
      yield* TestClock.adjust("40 millis")
      const end = yield* Runtime.await(id)
      assert.strictEqual(end.state, "live")
      assert.sameMembers([...(end.context as Ctx).done], ["prepare", "migrate", "seed", "build", "ship"])
      assert.deepStrictEqual((yield* journal).slice(-1), ["undo bundle"])
      const regions = yield* regionsOf(id)
      assert.deepStrictEqual([regions.db!.status, regions.api!.status, regions.web!.status], ["succeeded", "succeeded", "rolled_back"])
    }).pipe(Effect.provide(layer())))

  it.effect("cancelling the parent cancels every running region, with the reason; rolling it back rolls them back", () =>
    Effect.gen(function*() {
      const cancelled = yield* Runtime.start(All, { done: [] })
      const rolledBack = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(rolledBack, "web", "running")
      yield* TestClock.adjust("22 millis")
      yield* Runtime.cancel(cancelled, { reason: "release called off" })
      yield* Runtime.rollback(rolledBack)
      for (const name of ["db", "api", "web"]) {
        const region = yield* regionUntil(cancelled, name, "cancelled")
        assert.match((yield* Runtime.history(region)).at(-1)!.reason ?? "", new RegExp(`parent ${cancelled} left state "rollout" \\(cancelled\\)`))
        yield* regionUntil(rolledBack, name, "rolled_back")
      }
      assert.strictEqual((yield* Runtime.await(rolledBack)).status, "rolled_back")
      // the cancelled release undid nothing; the rolled back one undid its regions' steps and its own
      const undone = (yield* journal).filter((e) => e.startsWith("undo"))
      assert.sameMembers(undone, ["undo prepare", "undo migrate", "undo build", "undo bundle"])
    }).pipe(Effect.provide(layer())))

  it.effect("events sent to the parent go to the regions that take them; others to the parent's inbox; refused when the regions that take it ended", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(id, "web", "running")
      yield* Runtime.send(id, Ping.make({}))
      const store = yield* Store.Store
      assert.deepStrictEqual((yield* store.inbox(id, 10)).map((e) => (e.event as { _tag: string })._tag), ["Ping"])
      const refused = yield* Effect.flip(Runtime.sendAndWait(id, Go.make({ by: "ops" })))
      assert.strictEqual(refused._tag, "InvalidTransition")
      assert.include(refused.message, "send it with send, which gives it to them")
      yield* TestClock.adjust("100 millis")
      yield* Runtime.send(id, Go.make({ by: "ops" }))
      yield* regionUntil(id, "web", "succeeded")
      const again = yield* Effect.flip(Runtime.send(id, Stop.make({})))
      assert.strictEqual(again._tag, "InvalidTransition")
      assert.include(again.message, `whose regions that take "Stop" (web) have ended or wait for other events now`)
      assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
    }).pipe(Effect.provide(layer())))

  it.effect("an event two regions take is written to both inboxes in one write: a failed write leaves it with neither", () =>
    Effect.gen(function*() {
      const memory = yield* Layer.build(Store.layerMemory)
      const inner = Context.get(memory, Store.Store)
      const writes: Array<string> = []
      let failNext = true
      const store: Store.StoreService = {
        ...inner,
        enqueue: (id, event, at) => Effect.zipRight(Effect.sync(() => writes.push(`enqueue ${id}`)), inner.enqueue(id, event, at)),
        enqueueAll: (entries) =>
          Effect.suspend(() => {
            writes.push(`enqueueAll ${entries.map((e) => e.executionId).join(",")}`)
            if (!failNext) return inner.enqueueAll!(entries)
            failNext = false
            return Effect.fail(new StoreErrorClass({ kind: "Unavailable", operation: "enqueue", detail: "the test's store failed this write" }))
          })
      }
      yield* Effect.gen(function*() {
        const id = yield* Runtime.start(Twins, { done: [] })
        const a = yield* regionUntil(id, "a", "waiting")
        const b = yield* regionUntil(id, "b", "waiting")
        const failed = yield* Effect.flip(Runtime.send(id, Go.make({ by: "ops" })))
        assert.strictEqual(failed._tag, "StoreError")
        // neither region has it: nothing half done
        assert.deepStrictEqual([...(yield* inner.inbox(a, 10)), ...(yield* inner.inbox(b, 10))], [])
        yield* Runtime.send(id, Go.make({ by: "ops" }))
        assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
        // one write for both each time, never one per region
        assert.deepStrictEqual(writes, [`enqueueAll ${a},${b}`, `enqueueAll ${a},${b}`])
      }).pipe(Effect.provide(Runtime.layer({ procedures }).pipe(Layer.provideMerge(Layer.succeed(Store.Store, store)), Layer.provideMerge(Journal.layer))))
    }).pipe(Effect.scoped))

  it.effect("on SQLite: the regions run, the parent joins them and merges their contexts", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(id, "web", "running")
      yield* TestClock.adjust("100 millis")
      yield* regionUntil(id, "web", "waiting")
      yield* Runtime.send(id, Go.make({ by: "ops" }))
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.sameMembers([...(done.context as Ctx).done], ["prepare", "migrate", "seed", "build", "ship", "bundle"])
      assert.strictEqual((yield* Runtime.list({ parentId: id })).length, 3)
    }).pipe(Effect.provide(layer(layerTempSqlite()))))

  it.effect("on SQLite: an event two waiting regions take goes to both in one write, and both take it", () =>
    twinsTakeGo.pipe(Effect.provide(layer(layerTempSqlite()))))

  it.live.skipIf(pgUrl === undefined)("on Postgres: an event two waiting regions take goes to both in one write, and both take it", () =>
    twinsTakeGo.pipe(Effect.provide(layer(layerFreshPg(pgUrl!).pipe(Layer.orDie)))), 60_000)

  it.effect("a parallel state inside a compound state: its regions' procedures are named by its full path", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Nested, { done: [] })
      yield* regionUntil(id, "b", "running")
      yield* TestClock.adjust("20 millis")
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.state, "live")
      assert.deepStrictEqual(done.context, { done: ["x", "y"] })
      assert.sameMembers((yield* Runtime.list({ parentId: id })).map((r) => r.procedure), ["release-nested.phase.rollout.a", "release-nested.phase.rollout.b"])
    }).pipe(Effect.provide(layer())))

  it.effect("Runtime.configuration: the parallel state, each region and the state it is in (ended regions too); under a compound state, by full path", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(id, "web", "running")
      const region = (name: string, state: string) => [`rollout.${name}`, `rollout.${name}.${state}`]
      assert.deepStrictEqual(yield* Runtime.configuration(id), ["rollout", ...region("db", "migrate"), ...region("api", "build"), ...region("web", "bundle")])
      yield* TestClock.adjust("100 millis")
      yield* regionUntil(id, "web", "waiting")
      assert.deepStrictEqual(yield* Runtime.configuration(yield* Runtime.get(id)), ["rollout", ...region("db", "done"), ...region("api", "done"), ...region("web", "approve")])
      yield* Runtime.send(id, Go.make({ by: "ops" }))
      assert.deepStrictEqual(yield* Runtime.configuration(yield* Runtime.await(id)), ["live"])
      const nested = yield* Runtime.start(Nested, { done: [] })
      yield* regionUntil(nested, "b", "running")
      assert.deepStrictEqual(
        yield* Runtime.configuration(nested),
        ["phase", "phase.rollout", "phase.rollout.a", "phase.rollout.a.x", "phase.rollout.b", "phase.rollout.b.y"]
      )
    }).pipe(Effect.provide(layer())))

  it.effect("front ends: the HTTP API serves a region's procedure by its dotted name, lists the regions as the parent's children and sends to the parent", () =>
    Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      const json = (request: HttpClientRequest.HttpClientRequest) =>
        Effect.flatMap(http.execute(request), (response) => Effect.map(response.json, (body) => ({ status: response.status, body: body as any })))
      const id = yield* Runtime.start(All, { done: [] })
      yield* regionUntil(id, "web", "running")
      yield* TestClock.adjust("100 millis")
      yield* regionUntil(id, "web", "waiting")
      const region = yield* json(HttpClientRequest.get("/api/procedures/release-all.rollout.web"))
      assert.strictEqual(region.status, 200)
      assert.strictEqual(region.body.name, "release-all.rollout.web")
      const children = yield* json(HttpClientRequest.get(`/api/executions?parentId=${id}`))
      assert.sameMembers(children.body.map((c: { procedure: string }) => c.procedure), ["release-all.rollout.db", "release-all.rollout.api", "release-all.rollout.web"])
      const web = children.body.find((c: { procedure: string }) => c.procedure === "release-all.rollout.web")
      const shown = yield* json(HttpClientRequest.get(`/api/executions/${web.id}`))
      assert.strictEqual(shown.body.parentId, id)
      // an event sent to the parent over HTTP reaches the region that waits for it
      const sent = yield* json(HttpClientRequest.post(`/api/executions/${id}/send`).pipe(HttpClientRequest.bodyUnsafeJson({ _tag: "Go", by: "ops" })))
      assert.isBelow(sent.status, 300, JSON.stringify(sent.body))
      assert.strictEqual((yield* Runtime.await(id)).status, "succeeded")
    }).pipe(Effect.provide(Server.layer().pipe(Layer.provideMerge(layer()), Layer.provideMerge(NodeHttpServer.layerTest)))))

  it.effect("a timeout whose retries give up ends the regions still running (cancelled); those that ended stay as they are", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Impatient, { done: [] })
      yield* regionUntil(id, "a", "waiting")
      yield* regionUntil(id, "b", "succeeded")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Runtime.await(id)).state, "late")
      const a = yield* regionUntil(id, "a", "cancelled")
      assert.match((yield* Runtime.history(a)).at(-1)!.reason ?? "", new RegExp(`parent ${id} left state "rollout"`))
      assert.strictEqual((yield* regionsOf(id)).b!.status, "succeeded")
      assert.strictEqual((yield* Runtime.errors(id)).at(-1)!.tag, "TimeoutError")
    }).pipe(Effect.provide(layer())))

  it.effect("a region whose parent left the state before a crash (the cancel never sent) is cancelled when it is loaded again", () =>
    Effect.gen(function*() {
      const store = yield* Layer.build(Store.layerMemory)
      const storeLayer = Layer.succeedContext(store)
      const { id, a } = yield* Effect.scoped(
        Effect.gen(function*() {
          const id = yield* Runtime.start(Impatient, { done: [] })
          const a = yield* regionUntil(id, "a", "waiting")
          return { id, a }
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      // the parent's cancel committed, then the process stopped before its regions heard of it
      const s = Option.getOrThrow(yield* Effect.flatMap(Store.Store, (st) => st.get(id)).pipe(Effect.provide(storeLayer)))
      yield* Effect.flatMap(Store.Store, (st) =>
        st.commit({
          snapshot: { ...s, status: "cancelled", seq: s.seq + 1, rowVersion: s.rowVersion + 1 },
          expectedVersion: s.rowVersion,
          transition: { executionId: s.id, seq: s.seq + 1, from: s.state, to: s.state, status: "cancelled", cause: "cancel", at: s.updatedAt, duration: 0 }
        })).pipe(Effect.provide(storeLayer))
      const last = yield* Effect.scoped(
        Effect.gen(function*() {
          // the waiting region is loaded when something is sent to it
          yield* Runtime.send(a, Go.make({ by: "ops" }))
          yield* regionUntil(id, "a", "cancelled")
          return (yield* Runtime.history(a)).at(-1)!
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      assert.strictEqual(last.cause, "cancel")
      assert.match(last.reason ?? "", /no longer waits in state "rollout"/)
    }).pipe(Effect.scoped))

  it.effect("regions whose parent began compensating before a crash (the rollback never sent) are rolled back together when loaded again, latest step first across them", () =>
    Effect.gen(function*() {
      const store = yield* Layer.build(Store.layerMemory)
      const storeLayer = Layer.succeedContext(store)
      const id = yield* Effect.scoped(
        Effect.gen(function*() {
          const id = yield* Runtime.start(All, { done: [] })
          yield* regionUntil(id, "web", "running")
          // build at 5 ms, migrate at 10, bundle at 20; db's seed and api's ship still run
          yield* TestClock.adjust("22 millis")
          yield* regionUntil(id, "web", "waiting")
          return id
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      // the parent's rollback committed, then the process stopped before its regions heard of it
      const s = Option.getOrThrow(yield* Effect.flatMap(Store.Store, (st) => st.get(id)).pipe(Effect.provide(storeLayer)))
      yield* Effect.flatMap(Store.Store, (st) =>
        st.commit({
          snapshot: { ...s, status: "compensating", compensateTo: "rolled_back", seq: s.seq + 1, rowVersion: s.rowVersion + 1 },
          expectedVersion: s.rowVersion,
          transition: { executionId: s.id, seq: s.seq + 1, from: s.state, to: s.state, status: "compensating", cause: "rollback", at: s.updatedAt, duration: 0 }
        })).pipe(Effect.provide(storeLayer))
      const undone = yield* Effect.scoped(
        Effect.gen(function*() {
          // the runtime recovers the regions (running, waiting) and the parent
          for (const name of ["db", "api", "web"]) yield* regionUntil(id, name, "rolled_back")
          yield* Runtime.await(id)
          return (yield* journal).filter((e) => e.startsWith("undo"))
        }).pipe(Effect.provide(layer(storeLayer)))
      )
      assert.deepStrictEqual(undone.filter((e) => e !== "undo prepare"), ["undo bundle", "undo migrate", "undo build"])
    }).pipe(Effect.scoped))

  it.effect("registration refuses a region that cannot end, a mode that cannot be met and a region's name that is not plain", () =>
    Effect.gen(function*() {
      const refused = (states: Procedure.ParallelSpec["regions"], mode: Procedure.ParallelMode = "all") => {
        const def = Procedure.makeUnsafe({
          name: "bad",
          version: 1,
          input: Ctx,
          context: Ctx,
          initial: "p",
          states: { p: Procedure.parallel({ regions: states, mode, next: "done" }) as never, done: { type: "final" } }
        })
        return Layer.build(Runtime.layer({ procedures: [def] }).pipe(Layer.provide(Store.layerMemory), Layer.provide(Journal.layer))).pipe(
          Effect.scoped,
          Effect.flip,
          Effect.map((e) => e.message)
        )
      }
      const loop = { initial: "a", states: { a: Procedure.step({ run: () => Effect.void, next: "a" }), end: Procedure.final() } }
      const fine = { initial: "end", states: { end: Procedure.final() } }
      assert.include(yield* refused({ ok: fine, stuck: loop }), `Procedure "bad" is not valid (state "p"): region "stuck"`)
      assert.include(yield* refused({ ok: fine, stuck: loop }), "unreachable")
      assert.include(yield* refused({ a: fine, b: fine }, { atLeast: 3 }), "{ atLeast: 3 } must be a whole number from 1 to the number of its regions (2)")
      assert.include(yield* refused({ "a/b": fine }), `region "a/b": a region's name may have only letters`)
    }))
})


