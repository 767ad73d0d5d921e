import { assert, describe, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { Execution, Runtime } from "proctor"
import { all, Approval, Linear, Looping, Manual, Saga, runtimeLayer } from "./fixtures/procedures.js"

const finished = Effect.gen(function*() {
  const ids: Array<string> = []
  ids.push(yield* Runtime.start(Linear, { n: 0 }))
  ids.push(yield* Runtime.start(Looping, { n: 0 }))
  const saga = yield* Runtime.start(Saga, { n: 0 })
  yield* Runtime.send(saga, { _tag: "Go" })
  ids.push(saga)
  const manual = yield* Runtime.start(Manual, { n: 1 })
  yield* TestClock.adjust("1 millis")
  yield* Runtime.retry(manual)
  yield* TestClock.adjust("1 millis")
  yield* Runtime.skip(manual, "other")
  ids.push(manual)
  const approval = yield* Runtime.start(Approval, { doc: "x" })
  yield* Runtime.pause(approval)
  yield* Runtime.resume(approval)
  yield* Runtime.send(approval, { _tag: "Approve", by: "ann" })
  ids.push(approval)
  const late = yield* Runtime.start(Approval, { doc: "y" })
  yield* TestClock.adjust("1 day")
  ids.push(late)
  for (const id of ids) yield* Runtime.await(id)
  return ids
})

describe("history: tail, export, verify, retention", () => {
  it.effect("history with a tail returns the last N transitions", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Looping, { n: 0 })
      yield* Runtime.await(id)
      const all = yield* Runtime.history(id)
      const tail = yield* Runtime.history(id, { tail: 2 })
      assert.deepStrictEqual(tail, all.slice(-2))
      assert.deepStrictEqual(yield* Runtime.history(id, { tail: 100 }), all)
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("every finished execution's history replays to its stored state", () =>
    Effect.gen(function*() {
      const ids = yield* finished
      for (const id of ids) {
        const report = yield* Runtime.verify(id)
        assert.deepStrictEqual(report.problems, [], id)
        assert.isTrue(report.ok)
      }
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("cancel with a reason records it on the cancel row, in the export too, and the history still verifies", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "x" })
      const plain = yield* Runtime.start(Approval, { doc: "y" })
      const ended = yield* Runtime.cancel(id, { reason: "the document was withdrawn" })
      yield* Runtime.cancel(plain)
      assert.strictEqual(ended.status, "cancelled")
      const [row] = yield* Runtime.history(id, { tail: 1 })
      assert.deepInclude(row, { cause: "cancel", status: "cancelled", seq: ended.seq, reason: "the document was withdrawn" })
      const [bare] = yield* Runtime.history(plain, { tail: 1 })
      assert.strictEqual(bare!.cause, "cancel")
      assert.isFalse("reason" in bare!)
      const lines = (yield* Runtime.exportHistory(id)).trim().split("\n").map((l) => JSON.parse(l))
      assert.strictEqual(lines.at(-1).reason, "the document was withdrawn")
      assert.isTrue((yield* Runtime.verify(id)).ok)
      assert.isTrue((yield* Runtime.verifyExport(yield* Runtime.exportHistory(id))).ok)
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("the core refuses a cancel reason that is empty or longer than Execution.maxReasonLength, and changes nothing", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Approval, { doc: "x" })
      const before = yield* Runtime.get(id)
      for (const reason of ["", "x".repeat(Execution.maxReasonLength + 1)]) {
        const refused = yield* Effect.flip(Runtime.cancel(id, { reason }))
        assert.strictEqual(refused._tag, "InvalidTransition")
        assert.include(refused.message, `1 to ${Execution.maxReasonLength} characters`)
      }
      assert.deepStrictEqual(yield* Runtime.get(id), before)
      const longest = "x".repeat(Execution.maxReasonLength)
      assert.strictEqual((yield* Runtime.cancel(id, { reason: longest })).status, "cancelled")
      assert.strictEqual((yield* Runtime.history(id, { tail: 1 }))[0]!.reason, longest)
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("the export is JSON Lines: the execution, its transitions and its errors", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Manual, { n: 1 })
      yield* TestClock.adjust("1 millis")
      yield* Runtime.skip(id, "b")
      yield* Runtime.await(id)
      const lines = (yield* Runtime.exportHistory(id)).trim().split("\n").map((l) => JSON.parse(l))
      assert.deepStrictEqual(lines.map((l) => l.type), ["execution", "transition", "transition", "transition", "transition", "error"])
      assert.strictEqual(lines[0].snapshot.id, id)
      assert.deepStrictEqual(lines.slice(1, 5).map((l) => l.seq), [1, 2, 3, 4])
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("a tampered export fails verification, naming what is wrong", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 0 })
      yield* Runtime.await(id)
      const lines = (yield* Runtime.exportHistory(id)).trim().split("\n")
      const gap = [...lines.slice(0, 2), ...lines.slice(3)].join("\n")
      const r1 = yield* Runtime.verifyExport(gap)
      assert.isFalse(r1.ok)
      assert.isTrue(r1.problems.some((p) => /gap or a repeat/.test(p)))
      const skipped = lines.map((l) => l.replace(`"from":"a","to":"b"`, `"from":"a","to":"c"`)).join("\n")
      const r2 = yield* Runtime.verifyExport(skipped)
      assert.isTrue(r2.problems.some((p) => /transition 2 \(a -> c, step\) is not a transition the definition of linear v1 allows/.test(p)))
      const wrongEnd = lines.map((l) => l.replace(`"state":"done"`, `"state":"c"`)).join("\n")
      const r3 = yield* Runtime.verifyExport(wrongEnd)
      assert.isTrue(r3.problems.some((p) => /ends in "done" but the execution is in "c"/.test(p)))
      const garbage = yield* Effect.flip(Runtime.verifyExport("not json"))
      assert.strictEqual(garbage._tag, "ValidationError")
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("verify replays with the transition function: a compensation that ends rolled_back after a failure is caught", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Saga, { n: 0 })
      yield* Runtime.send(id, { _tag: "Go" })
      const ended = yield* Runtime.await(id)
      assert.strictEqual(ended.status, "failed")
      assert.isTrue((yield* Runtime.verify(id)).ok)
      const lines = (yield* Runtime.exportHistory(id)).trim().split("\n")
      // the compensations after a step failed for good end failed, never rolled_back
      const forged = lines.map((l) =>
        l.includes(`"cause":"compensated"`) || l.startsWith(`{"type":"execution"`) ? l.replace(`"status":"failed"`, `"status":"rolled_back"`) : l
      ).join("\n")
      const report = yield* Runtime.verifyExport(forged)
      assert.isFalse(report.ok)
      assert.isTrue(report.problems.some((p) => /\(d -> d, compensated\) ends with status rolled_back, which that transition cannot give/.test(p)), report.problems.join("; "))
    }).pipe(Effect.provide(runtimeLayer(all))))

  it.effect("retention keeps the last N transitions of ended executions, and all of live ones", () =>
    Effect.gen(function*() {
      const done = yield* Runtime.start(Looping, { n: 0 })
      yield* Runtime.await(done)
      const live = yield* Runtime.start(Saga, { n: 0 })
      yield* TestClock.adjust("1 millis")
      const liveBefore = (yield* Runtime.history(live)).length
      assert.strictEqual((yield* Runtime.history(done)).length, 7)
      yield* TestClock.adjust("1 minute")
      const kept = yield* Runtime.history(done)
      assert.deepStrictEqual(kept.map((t) => t.seq), [6, 7])
      assert.strictEqual((yield* Runtime.history(live)).length, liveBefore)
      const report = yield* Runtime.verify(done)
      assert.isFalse(report.ok)
      assert.match(report.problems[0]!, /pruned/)
    }).pipe(Effect.provide(runtimeLayer(all, { retention: { keepLast: 2, every: "1 minute" } }))))

  it.effect("retention by age drops old transitions of ended executions", () =>
    Effect.gen(function*() {
      const id = yield* Runtime.start(Linear, { n: 0 })
      yield* Runtime.await(id)
      yield* TestClock.adjust("2 hours")
      assert.deepStrictEqual(yield* Runtime.history(id), [])
      assert.strictEqual((yield* Runtime.get(id)).status, "succeeded")
    }).pipe(Effect.provide(runtimeLayer(all, { retention: { maxAge: "1 hour", every: "30 minutes" } }))))
})
