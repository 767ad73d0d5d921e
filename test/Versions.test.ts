/**
 * Issue 16, item 1: versions in flight. Several versions of a procedure run at once, each
 * execution on the version it started with; `Runtime.versions` counts them (one grouped
 * query); a declared migration is checked at registration and moves an execution at a
 * safe point only, as one committed transition, or refuses it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref, Schema, TestClock } from "effect"
import type { DefinitionError } from "proctor"
import { Procedure, Runtime, Store } from "proctor"

const Input = Schema.Struct({ service: Schema.String })
const Approve = Schema.TaggedStruct("Approve", {})
const Ctx1 = Schema.Struct({ service: Schema.String })
const Ctx2 = Schema.Struct({ service: Schema.String, region: Schema.String })

/** how many attempts of `build` started, by version */
const attempts = { v1: 0, v2: 0 }

export const DeployV1 = Procedure.make("deploy", { version: 1, input: Input, context: Ctx1, events: Approve }, {
  initial: "build",
  states: {
    build: Procedure.step({
      run: () => Effect.zipRight(Effect.sync(() => attempts.v1++), Effect.sleep("1 minute")),
      timeout: "2 minutes",
      next: "review"
    }),
    review: Procedure.wait({ on: { Approve: "ship" }, after: { delay: "1 hour", goto: "expired" } }),
    ship: Procedure.step({ run: () => Effect.void, next: "done" }),
    done: Procedure.final(),
    expired: Procedure.final({ outcome: "failed" })
  }
})

export const DeployV2 = Procedure.make("deploy", {
  version: 2,
  input: Input,
  context: Ctx2,
  events: Approve,
  init: (i) => ({ ...i, region: "us" })
}, {
  initial: "build",
  states: {
    build: Procedure.step({
      run: () => Effect.zipRight(Effect.sync(() => attempts.v2++), Effect.sleep("1 minute")),
      timeout: "2 minutes",
      next: "approval"
    }),
    approval: Procedure.wait({ on: { Approve: "ship" }, after: { delay: "2 hours", goto: "expired" } }),
    ship: Procedure.step({ run: () => Effect.void, next: "done" }),
    done: Procedure.final(),
    expired: Procedure.final({ outcome: "failed" })
  }
})

/** v1's states by their v2 names */
const renamed = { build: "build", review: "approval", ship: "ship", done: "done", expired: "expired" } as const
const rename = (s: Procedure.StateName<typeof DeployV1>) => renamed[s as keyof typeof renamed]

export const toV2 = Procedure.migration(DeployV1, DeployV2, {
  state: rename,
  context: (c) => ({ ...c, region: "eu" })
})

const layer = (migrations: ReadonlyArray<Procedure.Migration>) =>
  Runtime.layer({ procedures: [DeployV1, DeployV2], migrations }).pipe(Layer.provide(Store.layerMemory))

const untilStatus = (id: string, status: string) =>
  Effect.repeat(Effect.zipLeft(Runtime.get(id), TestClock.adjust("1 seconds")), { until: (s) => s.status === status, times: 600 }).pipe(
    Effect.tap((s) => s.status === status ? Effect.void : Effect.dieMessage(`${id} is ${s.status} in ${s.state}, not ${status}`))
  )

const refusal = (migrations: ReadonlyArray<Procedure.Migration>, procedures: ReadonlyArray<Procedure.Any> = [DeployV1, DeployV2]) =>
  Effect.flip(Effect.scoped(Layer.build(Runtime.layer({ procedures, migrations }).pipe(Layer.provide(Store.layerMemory))))) as Effect.Effect<DefinitionError>

describe("Versions", () => {
  it.effect("registration refuses a migration to a state the new version lacks, of another kind, or between unregistered versions", () =>
    Effect.gen(function*() {
      const missing = yield* refusal([Procedure.migration(DeployV1, DeployV2, { state: (s) => s as never, context: (c) => ({ ...c, region: "eu" }) })])
      assert.strictEqual(missing._tag, "DefinitionError")
      assert.strictEqual(missing.state, "review")
      assert.match(missing.message, /state "review" maps to "review", which version 2 does not have/)
      const kind = yield* refusal([Procedure.migration(DeployV1, DeployV2, { state: (s) => s === "review" ? "build" : rename(s), context: (c) => ({ ...c, region: "eu" }) })])
      assert.match(kind.message, /state "review" \(a wait\) maps to "build", a step in version 2; map it to a state of the same kind/)
      const unregistered = yield* refusal([toV2], [DeployV1])
      assert.match(unregistered.message, /version 2 \(its "to" side\) is not registered with this runtime/)
      const twice = yield* refusal([toV2, toV2])
      assert.match(twice.message, /declared twice/)
    }))

  it.effect("versions counts the executions on each version; a waiting execution migrates in one transition and finishes on the new version", () =>
    Effect.gen(function*() {
      const old = yield* Runtime.start(DeployV1, { service: "api" })
      const other = yield* Runtime.start(DeployV1, { service: "web" })
      const fresh = yield* Runtime.start(DeployV2, { service: "db" })
      yield* untilStatus(old, "waiting")
      yield* untilStatus(fresh, "waiting")
      const counts = (yield* Runtime.versions("deploy")).map((v) => [v.version, v.inFlight])
      assert.deepStrictEqual(counts, [[1, 2], [2, 1]])
      const migrated = yield* Runtime.migrate(old, { to: 2 })
      assert.strictEqual(migrated.version, 2)
      assert.strictEqual(migrated.state, "approval")
      assert.deepStrictEqual(migrated.context, { service: "api", region: "eu" })
      const last = (yield* Runtime.history(old, { tail: 1 }))[0]!
      assert.deepStrictEqual([last.cause, last.from, last.to, last.reason], ["migrate", "review", "approval", "version 1 -> 2"])
      assert.deepStrictEqual((yield* Runtime.versions("deploy")).map((v) => [v.version, v.inFlight]), [[1, 1], [2, 2]])
      yield* Runtime.send(old, { _tag: "Approve" })
      const end = yield* Runtime.await(old)
      assert.deepStrictEqual([end.status, end.version], ["succeeded", 2])
      // the history replays against the new version from the migration on
      assert.isTrue((yield* Runtime.verify(old)).ok)
      // the other stays on version 1, its timer still the old state's
      yield* TestClock.adjust("1 hour")
      const expired = yield* Runtime.await(other)
      assert.deepStrictEqual([expired.state, expired.version], ["expired", 1])
    }).pipe(Effect.provide(layer([toV2]))))

  it.effect("a migration asked during a step waits for the step to commit: the step is not stopped or run again", () =>
    Effect.gen(function*() {
      attempts.v1 = 0
      attempts.v2 = 0
      const id = yield* Runtime.start(DeployV1, { service: "api" })
      yield* Effect.repeat(TestClock.adjust("1 millis"), { until: () => attempts.v1 === 1 })
      const asked = yield* Effect.fork(Runtime.migrate(id, { to: 2 }))
      yield* TestClock.adjust("30 seconds")
      assert.isNull(asked.unsafePoll())
      assert.strictEqual((yield* Runtime.get(id)).version, 1)
      yield* TestClock.adjust("30 seconds")
      const migrated = yield* Fiber.join(asked)
      assert.deepStrictEqual([migrated.version, migrated.state, migrated.status], [2, "approval", "waiting"])
      assert.deepStrictEqual(attempts, { v1: 1, v2: 0 })
      const causes = (yield* Runtime.history(id)).map((t) => t.cause)
      assert.deepStrictEqual(causes, ["start", "step", "migrate"])
    }).pipe(Effect.provide(layer([toV2]))))

  it.effect("a migrated context that does not fit the new Schema, an undeclared migration and an ended execution are refused", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(DeployV1, { service: "api" })
      yield* untilStatus(id, "waiting")
      const bad = yield* Effect.flip(Runtime.migrate(id, { to: 2 }))
      assert.strictEqual(bad._tag, "InvalidTransition")
      assert.match(bad.message, /Its migrated context does not fit version 2's context Schema/)
      const still = yield* Runtime.get(id)
      assert.deepStrictEqual([still.version, still.state], [1, "review"])
      const undeclared = yield* Effect.flip(Runtime.migrate(id, { to: 3 }))
      assert.match(undeclared.message, /No migration from version 1 to 3 of deploy is declared/)
      yield* Runtime.cancel(id)
      const ended = yield* Effect.flip(Runtime.migrate(id, { to: 2 }))
      assert.match(ended.message, /It has ended/)
      const report = yield* Runtime.migrateAll("deploy", { from: 1, to: 2 })
      assert.deepStrictEqual(report, { migrated: [], refused: [] })
    }).pipe(Effect.provide(layer([
      Procedure.migration(DeployV1, DeployV2, { state: rename, context: (c) => ({ ...c, region: 42 as never }) })
    ]))))

  it.effect("migrateAll moves every execution of a version that is not ended", () =>
    Effect.gen(function*() {
      const ids = yield* Effect.forEach(["a", "b", "c"], (service) => Runtime.start(DeployV1, { service }))
      for (const id of ids) yield* untilStatus(id, "waiting")
      const report = yield* Runtime.migrateAll("deploy", { from: 1, to: 2 })
      assert.deepStrictEqual([...report.migrated].sort(), [...ids].sort())
      assert.deepStrictEqual((yield* Runtime.versions("deploy")).map((v) => [v.version, v.inFlight]), [[1, 0], [2, 3]])
      const seen = yield* Ref.make(0)
      for (const id of ids) {
        yield* Runtime.send(id, { _tag: "Approve" })
        if ((yield* Runtime.await(id)).version === 2) yield* Ref.update(seen, (n) => n + 1)
      }
      assert.strictEqual(yield* Ref.get(seen), 3)
    }).pipe(Effect.provide(layer([toV2]))))
})
