import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Schema, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { AuditLog, Plugin, Procedure, Runtime } from "proctor"
import { all, Approval, Linear, makeFlaky, runtimeLayer, Slow } from "./fixtures/procedures.js"

const Flaky = makeFlaky(1)
const procedures = [...all, Flaky]

/** A plugin that keeps what it is shown. */
const collector = () => {
  const records: Array<Plugin.Record> = []
  return { records, plugin: Plugin.make({ name: "collector", handle: (batch) => Effect.sync(() => records.push(...batch)) }) }
}

/** Runs `body` on a runtime with `plugins`, then closes it (which lets the plugins take what is queued). */
const withPlugins = <A, E>(plugins: ReadonlyArray<Plugin.Plugin>, body: Effect.Effect<A, E, Runtime.Runtime>) =>
  Effect.scoped(Effect.flatMap(Layer.build(runtimeLayer(procedures, { plugins })), (context) => Effect.provide(body, context)))

/** two versions of a procedure that waits for `Go`, and a migration between them */
const Go = Schema.TaggedStruct("Go", {})
const held = (version: number) =>
  Procedure.make("held", { version, input: Schema.Struct({}), context: Schema.Struct({}), events: Go }, {
    initial: "hold",
    states: { hold: Procedure.wait({ on: { Go: "done" } }), done: Procedure.final() }
  })
const [HeldV1, HeldV2] = [held(1), held(2)]
const toV2 = Procedure.migration(HeldV1, HeldV2, { state: (s) => s, context: (c) => c })

const descriptions: Record<string, string> = {
  proctor_plugin_dropped: "records a plugin's full queue did not take, by plugin",
  proctor_plugin_failures: "plugin calls that failed or timed out, by plugin"
}
const counter = (name: string, plugin: string) =>
  Metric.value(Metric.tagged(Metric.counter(name, { description: descriptions[name]! }), "plugin", plugin))

describe("Plugins", () => {
  it.effect("see every transition, failed attempt and accepted request after its commit, with who asked", () =>
    Effect.gen(function*() {
      const { plugin, records } = collector()
      const ids = yield* withPlugins([plugin], Effect.gen(function*() {
        const flaky = yield* Plugin.withRequester(Runtime.start(Flaky, { n: 0 }), "app:alice")
        yield* TestClock.adjust("1 second")
        yield* Runtime.await(flaky)
        const approval = yield* Runtime.start(Approval, { doc: "d" })
        yield* Plugin.withRequester(Runtime.send(approval, { _tag: "Approve", by: "bob" }), "http:ops")
        yield* Runtime.await(approval)
        const slow = yield* Runtime.start(Slow, { n: 0 })
        const paused = yield* Plugin.withRequester(Runtime.pause(slow), "cli:carol")
        yield* Plugin.withRequester(Runtime.cancel(slow, { reason: "not needed" }), "cli:carol")
        return { flaky, approval, slow, pausedSeq: paused.seq }
      }))
      const of = (id: string) =>
        records.filter((r) => (r._tag === "Transition" ? r.transition.executionId : r._tag === "Error" ? r.entry.executionId : r.executionId) === id)

      // every committed transition, in order; the start carries who asked for it
      const flaky = of(ids.flaky)
      const transitions = flaky.flatMap((r) => r._tag === "Transition" ? [r] : [])
      assert.deepStrictEqual(transitions.map((r) => `${r.transition.seq}:${r.transition.to}:${r.transition.cause}`), [
        "1:a:start",
        "2:b:step",
        "3:done:step"
      ])
      assert.strictEqual(transitions[0]!.by, "app:alice")
      // the failed attempt, between the transitions it sits between
      const kinds = flaky.map((r) => r._tag === "Transition" ? `t${r.transition.seq}` : r._tag)
      assert.deepStrictEqual(kinds, ["t1", "t2", "Error", "t3"])
      const error = flaky.find((r) => r._tag === "Error")
      assert.strictEqual(error?._tag === "Error" ? `${error.entry.state}#${error.entry.attempt}:${error.entry.tag}` : "", "b#1:Flaky")

      // an accepted event: the request (who sent it) and the transition that consumed it
      const approval = of(ids.approval).map((r) =>
        r._tag === "Request" ? `request:${r.request}:${r.detail}:${r.by}` : r._tag === "Transition" ? `t:${r.transition.cause}` : r._tag
      )
      assert.deepStrictEqual([...approval].sort(), ["request:send:Approve:http:ops", "t:event:Approve", "t:start"])

      // commands: the transition, then the command with who asked and the seq it committed
      const slow = of(ids.slow).flatMap((r) => r._tag === "Request" ? [r] : [])
      assert.deepStrictEqual(slow.map((r) => [r.request, r.by, r.detail]), [["pause", "cli:carol", undefined], ["cancel", "cli:carol", "not needed"]])
      assert.strictEqual(slow[0]!.seq, ids.pausedSeq)
      const cancelRow = of(ids.slow).find((r) => r._tag === "Transition" && r.transition.cause === "cancel")
      assert.strictEqual(cancelRow?._tag === "Transition" ? cancelRow.transition.reason : undefined, "not needed")
      // the transitions the commands committed carry who asked too (the pause stopped a running step)
      assert.deepStrictEqual(
        of(ids.slow).flatMap((r) => r._tag === "Transition" ? [[r.transition.cause, r.by]] : []),
        [["start", undefined], ["pause", "cli:carol"], ["cancel", "cli:carol"]]
      )
    }))

  it.effect("the transition of an operator command or a migration carries who asked for it; one nobody asked for, none", () =>
    Effect.gen(function*() {
      const { plugin, records } = collector()
      const id = yield* Effect.scoped(Effect.flatMap(
        Layer.build(runtimeLayer([HeldV1, HeldV2], { plugins: [plugin], migrations: [toV2] })),
        (context) =>
          Effect.provide(
            Effect.gen(function*() {
              const id = yield* Runtime.start(HeldV1, {})
              yield* Plugin.withRequester(Runtime.pause(id), "http:ops")
              yield* Plugin.withRequester(Runtime.migrate(id, { to: 2 }), "app:upgrader")
              yield* Plugin.withRequester(Runtime.resume(id), "http:ops (user bob)")
              yield* Runtime.cancel(id)
              return id
            }),
            context
          )
      ))
      const transitions = records.flatMap((r) => r._tag === "Transition" && r.transition.executionId === id ? [[r.transition.cause, r.by]] : [])
      assert.deepStrictEqual(transitions, [
        ["start", undefined],
        ["pause", "http:ops"],
        ["migrate", "app:upgrader"],
        ["resume", "http:ops (user bob)"],
        ["cancel", undefined]
      ])
    }))

  it.effect("a plugin that fails or hangs never holds an execution back: failures and drops are counted", () =>
    Effect.gen(function*() {
      const failing = Plugin.make({ name: "failing", handle: () => Effect.fail("broken") })
      const stuck = Plugin.make({ name: "stuck", handle: () => Effect.never, queue: 2, batch: 1, timeout: "1 minute", drain: 0 })
      const before = { failed: (yield* counter("proctor_plugin_failures", "failing")).count, dropped: (yield* counter("proctor_plugin_dropped", "stuck")).count }
      yield* withPlugins([failing, stuck], Effect.gen(function*() {
        const ids = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => Runtime.start(Linear, { n }))
        const ended = yield* Effect.forEach(ids, Runtime.await)
        assert.deepStrictEqual(ended.map((s) => s.status), ["succeeded", "succeeded", "succeeded", "succeeded", "succeeded"])
        // the stuck one's call is abandoned after its timeout, and counted
        const stuckBefore = (yield* counter("proctor_plugin_failures", "stuck")).count
        yield* TestClock.adjust("1 minute")
        assert.isAbove((yield* counter("proctor_plugin_failures", "stuck")).count, stuckBefore)
      }))
      assert.isAbove((yield* counter("proctor_plugin_failures", "failing")).count, before.failed)
      // 5 executions × 5 transitions: a queue of 2 behind a stuck call drops most
      assert.isAbove((yield* counter("proctor_plugin_dropped", "stuck")).count, before.dropped + 10)
    }))

  it.effect("AuditLog.jsonl: one JSON line per record with who asked, rotated by size", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proctor-audit-"))
      const file = path.join(dir, "logs", "audit.jsonl")
      const ids = yield* withPlugins([AuditLog.jsonl({ path: file })], Effect.gen(function*() {
        const slow = yield* Plugin.withRequester(Runtime.start(Slow, { n: 0 }), "app:alice")
        yield* Plugin.withRequester(Runtime.cancel(slow, { reason: "wrong input" }), "http:ops")
        return { slow }
      }))
      const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l))
      assert.deepStrictEqual(lines.map((l) => [l.kind, l.executionId, l.cause ?? l.request, l.by]), [
        ["transition", ids.slow, "start", "app:alice"],
        ["transition", ids.slow, "cancel", "http:ops"],
        ["request", ids.slow, "cancel", "http:ops"]
      ])
      assert.strictEqual(lines[1].reason, "wrong input")
      assert.strictEqual(lines[0].procedure, "slow")
      assert.match(lines[0].at, /^\d{4}-\d\d-\d\dT/)

      // rotation: past maxBytes, the file moves to .1, .1 to .2; no more than `keep` are kept
      const small = path.join(dir, "small.jsonl")
      yield* withPlugins([AuditLog.jsonl({ path: small, maxBytes: 600, keep: 2 })], Effect.gen(function*() {
        for (let n = 0; n < 6; n++) yield* Runtime.await(yield* Runtime.start(Linear, { n }))
      }))
      const files = fs.readdirSync(dir).filter((f) => f.startsWith("small.jsonl")).sort()
      assert.deepStrictEqual(files, ["small.jsonl", "small.jsonl.1", "small.jsonl.2"])
      for (const f of files) {
        const text = fs.readFileSync(path.join(dir, f), "utf8")
        // each file holds whole lines, no more than maxBytes of them
        assert.isAtMost(Buffer.byteLength(text), 600)
        for (const l of text.trimEnd().split("\n")) assert.strictEqual(JSON.parse(l).kind, "transition")
      }
      fs.rmSync(dir, { recursive: true, force: true })
    }))
})
