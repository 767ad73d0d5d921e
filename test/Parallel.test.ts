import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import type { Execution } from "proctor"
import { journal, Journal, record, Rejected } from "./fixtures/procedures.js"

const Ctx = Schema.Struct({ done: Schema.Array(Schema.String) })
type Ctx = typeof Ctx.Type
const Go = Schema.TaggedStruct("Go", { by: Schema.String })
const Stop = Schema.TaggedStruct("Stop", {})

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

const merge = (result: Procedure.ParallelResult<Ctx>, context: Ctx): Ctx => ({
  ...context,
  done: [...context.done, ...Object.values(result.regions).flatMap((r) => r.context.done.filter((d) => !context.done.includes(d)))]
})

/** Three regions of two steps each; `mode` as given. */
const release = (name: string, mode: Procedure.ParallelMode, failing?: string) =>
  Procedure.make(name, { version: 1, input: Ctx, context: Ctx, events: Schema.Union(Go, Stop) }, {
    initial: "prepare",
    states: {
      prepare: work("prepare", "rollout"),
      rollout: Procedure.parallel({
        mode,
        regions: {
          db: {
            initial: "migrate",
            states: { migrate: work("migrate", "seed", { millis: 10 }), seed: work("seed", "done", { millis: 15 }), done: Procedure.final() }
          },
          api: {
            initial: "build",
            states: {
              build: work("build", "ship", { millis: 5 }),
              ship: work("ship", "done", { millis: 30, fails: failing === "api" }),
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
const Failing = release("release-failing", "all", "api")
const Race = release("release-race", "race")
const AtLeast = release("release-two", { atLeast: 2 })

const procedures = [All, Failing, Race, AtLeast] as const
const layer = (store: Layer.Layer<Store.Store> = Store.layerMemory) =>
  Runtime.layer({ procedures }).pipe(Layer.provideMerge(store), Layer.provideMerge(Journal.layer))

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
})


