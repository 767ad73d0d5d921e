/**
 * The promises every Store makes, as one suite: `conformance(name, layer)` registers it
 * for a store. Each test provides `layer` anew, so a layer that builds a fresh database
 * each time it is built gives every test an empty store.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, TestClock } from "effect"
import type { Execution, ValidationError } from "proctor"
import { Procedure, Runtime, Store, StoreError } from "proctor"

type Snapshot = Execution.Snapshot
type Transition = Execution.Transition

const t0 = 1_700_000_000_000

/** A fresh execution as `Runtime.start` writes it. */
export const snapshot = (id: string, over: Partial<Snapshot> = {}): Snapshot => ({
  id,
  procedure: "order",
  version: 1,
  state: "a",
  status: "running",
  context: { n: 0 },
  visit: 0,
  attempt: 0,
  seq: 0,
  rowVersion: 0,
  startedAt: t0,
  enteredAt: t0,
  updatedAt: t0,
  ...over
})

export const transition = (id: string, seq: number, over: Partial<Transition> = {}): Transition => ({
  executionId: id,
  seq,
  from: seq === 0 ? "" : `s${seq - 1}`,
  to: `s${seq}`,
  status: "running",
  cause: seq === 0 ? "start" : "step",
  at: t0 + seq,
  duration: seq === 0 ? 0 : 1,
  ...over
})

/** The snapshot after `n` more transitions from `s`. */
const advance = (s: Snapshot, over: Partial<Snapshot> = {}): Snapshot => ({
  ...s,
  seq: s.seq + 1,
  visit: s.seq + 1,
  state: `s${s.seq + 1}`,
  rowVersion: s.rowVersion + 1,
  updatedAt: s.updatedAt + 1,
  enteredAt: s.updatedAt + 1,
  ...over
})

const create = (s: Snapshot) =>
  Effect.flatMap(Store.Store, (store) => store.create(s, transition(s.id, s.seq)))

/** Commits `n` plain transitions; returns the last snapshot. */
const step = (s: Snapshot, n = 1) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    let cur = s
    for (let i = 0; i < n; i++) {
      const next = advance(cur)
      yield* store.commit({ snapshot: next, expectedVersion: cur.rowVersion, transition: transition(cur.id, next.seq) })
      cur = next
    }
    return cur
  })

const failure = <A>(effect: Effect.Effect<A, StoreError, Store.Store>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return assert.fail(`expected a StoreError, got ${JSON.stringify(exit.value)}`)
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    assert.instanceOf(error, StoreError, `expected a StoreError, got ${String(exit.cause)}`)
    return error as StoreError
  })

/** Everything the store holds about one execution. */
const dump = (id: string) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    return {
      snapshot: yield* store.get(id),
      history: yield* store.history(id),
      errors: yield* store.errors(id),
      inbox: yield* store.inbox(id, 100),
      compensations: yield* store.compensations(id)
    }
  })

const errorEntry = (id: string, message: string, at: number): Execution.ErrorEntry => ({
  executionId: id,
  state: "a",
  attempt: 1,
  tag: "Boom",
  message,
  transient: message.includes("transient"),
  at
})

export const conformance = (name: string, layer: Layer.Layer<Store.Store, unknown>) =>
  describe(`Store conformance: ${name}`, () => {
    const test = (title: string, body: () => Effect.Effect<void, unknown, Store.Store>) =>
      it.effect(title, () => Effect.provide(body(), layer))

    describe("create", () => {
      test("creates an execution with its first transition", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = snapshot("e1")
          const result = yield* create(s)
          assert.isTrue(result.created)
          assert.deepStrictEqual(result.snapshot, s)
          assert.deepStrictEqual(yield* store.get("e1"), Option.some(s))
          assert.deepStrictEqual(yield* store.history("e1"), [transition("e1", 0)])
          assert.deepStrictEqual(yield* store.get("nope"), Option.none())
        }))

      test("an idempotency key already used creates nothing and returns the first execution", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const first = snapshot("e1", { idempotencyKey: "order-42", context: { n: 1 } })
          yield* create(first)
          const again = yield* create(snapshot("e2", { idempotencyKey: "order-42", context: { n: 2 } }))
          assert.isFalse(again.created)
          assert.deepStrictEqual(again.snapshot, first)
          assert.deepStrictEqual(yield* store.get("e2"), Option.none())
          assert.deepStrictEqual(yield* store.history("e2"), [])
          assert.strictEqual((yield* store.history("e1")).length, 1)
          // other keys, and no key, still create
          assert.isTrue((yield* create(snapshot("e3", { idempotencyKey: "order-43" }))).created)
          assert.isTrue((yield* create(snapshot("e4"))).created)
          assert.isTrue((yield* create(snapshot("e5"))).created)
        }))

      test("an id already used creates nothing and returns the existing execution", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const first = snapshot("e1")
          yield* create(first)
          const again = yield* create(snapshot("e1", { procedure: "other", context: { n: 9 } }))
          assert.isFalse(again.created)
          assert.deepStrictEqual(again.snapshot, first)
          assert.deepStrictEqual(yield* store.get("e1"), Option.some(first))
          assert.strictEqual((yield* store.history("e1")).length, 1)
        }))

      test("concurrent creates with one key create exactly one execution", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const results = yield* Effect.all(
            Array.from({ length: 8 }, (_, i) => create(snapshot(`e${i}`, { idempotencyKey: "same" }))),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(results.filter((r) => r.created).length, 1)
          const winner = results.find((r) => r.created)!.snapshot.id
          for (const r of results) assert.strictEqual(r.snapshot.id, winner)
          assert.deepStrictEqual(yield* store.active(), [winner])
        }))
    })

    describe("round trip", () => {
      test("a snapshot with every optional field comes back exactly", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const full = snapshot("full", {
            tenant: "acme",
            parentId: "parent-1",
            idempotencyKey: "key-1",
            context: { doc: "x", nested: { list: [1, 2.5, "three", null, true], empty: {} }, unicode: "žluť 🐴" },
            status: "compensating",
            outcome: "failed",
            error: { tag: "ExecutionError", message: "it broke: \"quotes\" and \n newlines" },
            timerDueAt: t0 + 86_400_000,
            compensateTo: "rolled_back",
            visit: 3,
            attempt: 2,
            seq: 3,
            rowVersion: 7,
            enteredAt: t0 + 5,
            updatedAt: t0 + 6
          })
          yield* store.create(full, transition("full", 3, { event: { _tag: "Approve", by: "ann", n: [1, { a: null }] } }))
          const got = Option.getOrThrow(yield* store.get("full"))
          assert.deepStrictEqual(got, full)
          const history = yield* store.history("full")
          assert.deepStrictEqual(history, [transition("full", 3, { event: { _tag: "Approve", by: "ann", n: [1, { a: null }] } })])
        }))

      test("a cancel row keeps its reason, quotes and newlines included", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          yield* create(snapshot("c"))
          const row = transition("c", 1, { from: "s0", to: "s0", status: "cancelled", cause: "cancel", reason: "duplicate of \"x\",\n see #12" })
          yield* store.commit({ snapshot: advance(snapshot("c"), { status: "cancelled" }), expectedVersion: 0, transition: row })
          assert.deepStrictEqual((yield* store.history("c"))[1], row)
        }))

      test("optional fields that are not set stay absent (not null, not undefined)", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          yield* create(snapshot("bare"))
          const got = Option.getOrThrow(yield* store.get("bare"))
          for (const key of ["tenant", "parentId", "idempotencyKey", "outcome", "error", "timerDueAt", "compensateTo"]) {
            assert.isFalse(key in got, `${key} should be absent`)
          }
          const [t] = yield* store.history("bare")
          assert.isFalse("event" in t!, "event should be absent")
          assert.isFalse("reason" in t!, "reason should be absent")
          // and a commit that clears a field clears it
          const waiting = advance(snapshot("bare"), { status: "waiting", timerDueAt: t0 + 10, tenant: "t" })
          yield* store.commit({ snapshot: waiting, expectedVersion: 0 })
          const cleared = advance(waiting)
          delete (cleared as { timerDueAt?: number }).timerDueAt
          delete (cleared as { tenant?: string }).tenant
          yield* store.commit({ snapshot: cleared, expectedVersion: waiting.rowVersion })
          const after = Option.getOrThrow(yield* store.get("bare"))
          assert.deepStrictEqual(after, cleared)
          assert.isFalse("timerDueAt" in after)
          assert.isFalse("tenant" in after)
        }))

      test("a read after each kind of write gives the row as last committed (reads the store keeps are dropped on writes)", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const read = (id: string) => Effect.map(store.get(id), Option.getOrThrow)
          const s = snapshot("r")
          yield* create(s)
          assert.deepStrictEqual(yield* read("r"), s)
          yield* store.enqueue("r", { _tag: "Go" }, t0)
          assert.deepStrictEqual(yield* read("r"), s)
          const next = advance(s, { status: "waiting", context: { n: 1 } })
          yield* store.commit({ snapshot: next, expectedVersion: 0 })
          assert.deepStrictEqual(yield* read("r"), next)
          // refused writes change nothing
          yield* Effect.exit(store.commit({ snapshot: advance(next), expectedVersion: 0 }))
          assert.deepStrictEqual(yield* read("r"), next)
          yield* store.create(advance(s, { context: { n: 2 } }), transition("r", 1))
          assert.deepStrictEqual(yield* read("r"), next)
          const last = advance(next, { status: "succeeded", outcome: "succeeded" })
          yield* store.commit({ snapshot: last, expectedVersion: next.rowVersion })
          assert.deepStrictEqual(yield* read("r"), last)
        }))

      test("contexts of every JSON kind round-trip", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const contexts: ReadonlyArray<unknown> = [null, 0, -1.5, "", "text", true, false, [], {}, [[{}]], { a: { b: { c: [1] } } }]
          for (let i = 0; i < contexts.length; i++) {
            yield* create(snapshot(`c${i}`, { context: contexts[i], startedAt: t0 + i }))
          }
          for (let i = 0; i < contexts.length; i++) {
            assert.deepStrictEqual(Option.getOrThrow(yield* store.get(`c${i}`)).context, contexts[i])
          }
        }))
    })

    describe("commit", () => {
      test("writes the snapshot, history row, errors, consumed event and compensation together", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = snapshot("e1", { status: "waiting" })
          yield* create(s)
          const event = yield* store.enqueue("e1", { _tag: "Approve", by: "ann" }, t0 + 1)
          const kept = yield* store.enqueue("e1", { _tag: "Approve", by: "bob" }, t0 + 2)
          const next = advance(s, { status: "running", context: { n: 1, by: "ann" } })
          const t = transition("e1", 1, { cause: "event:Approve", event: event.event })
          const errors = [errorEntry("e1", "first", t0 + 1), errorEntry("e1", "second transient", t0 + 1)]
          const compensation = { executionId: "e1", stepSeq: 0, state: "a", ok: true, at: t0 + 1 }
          yield* store.commit({ snapshot: next, expectedVersion: 0, transition: t, errors, consumed: event.seq, compensation })
          const after = yield* dump("e1")
          assert.deepStrictEqual(after.snapshot, Option.some(next))
          assert.deepStrictEqual(after.history, [transition("e1", 0), t])
          assert.deepStrictEqual(after.errors, errors)
          assert.deepStrictEqual(after.inbox, [kept])
          assert.deepStrictEqual(after.compensations, [compensation])
        }))

      test("commits written together each get their own result: a stale one fails alone, the others are written whole", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const ids = ["e1", "e2", "e3", "e4", "e5"]
          for (const [i, id] of ids.entries()) yield* create(snapshot(id, { status: "waiting", startedAt: t0 + i }))
          const consumed = yield* store.enqueue("e3", { _tag: "A" }, t0 + 1)
          const kept = yield* store.enqueue("e3", { _tag: "B" }, t0 + 2)
          const left = yield* store.enqueue("e4", { _tag: "C" }, t0 + 3)
          const before = { e2: yield* dump("e2"), e5: yield* dump("e5") }
          const next = (id: string, over: Partial<Snapshot> = {}) => advance(snapshot(id, { status: "waiting", startedAt: t0 + ids.indexOf(id) }), over)
          const ended = next("e4", { status: "succeeded" })
          // queued at once: the SQL stores write them in one group commit
          const exits = yield* Effect.all([
            store.commit({ snapshot: next("e1"), expectedVersion: 0, transition: transition("e1", 1) }),
            store.commit({ snapshot: next("e2"), expectedVersion: 3, transition: transition("e2", 1) }),
            store.commit({ snapshot: next("e3"), expectedVersion: 0, transition: transition("e3", 1), consumed: consumed.seq }),
            store.commit({ snapshot: ended, expectedVersion: 0, transition: transition("e4", 1, { status: "succeeded" }) }),
            store.commit({ snapshot: next("e5"), expectedVersion: 7, transition: transition("e5", 1) })
          ].map(Effect.exit), { concurrency: "unbounded" })
          assert.deepStrictEqual(exits.map(Exit.isSuccess), [true, false, true, true, false])
          for (const [i, expected] of [[1, "e2"], [4, "e5"]] as const) {
            const exit = exits[i]!
            assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.kind === "Conflict", String(exit))
            if (Exit.isFailure(exit) && exit.cause._tag === "Fail") assert.include(exit.cause.error.detail, expected)
          }
          assert.deepStrictEqual(yield* dump("e2"), before.e2)
          assert.deepStrictEqual(yield* dump("e5"), before.e5)
          const e1 = yield* dump("e1")
          assert.deepStrictEqual(e1.snapshot, Option.some(next("e1")))
          assert.strictEqual(e1.history.length, 2)
          const e3 = yield* dump("e3")
          assert.deepStrictEqual(e3.snapshot, Option.some(next("e3")))
          assert.deepStrictEqual(e3.inbox, [kept])
          const e4 = yield* dump("e4")
          assert.deepStrictEqual(e4.snapshot, Option.some(ended))
          assert.deepStrictEqual(e4.inbox, [])
          assert.deepStrictEqual(e4.errors.map((e) => e.tag), ["EventDiscarded"])
          assert.include(e4.errors[0]!.message, `inbox seq ${left.seq}`)
        }))

      test("commits written together, none ending its execution (one statement on Postgres): a stale one writes nothing, not even its consumed event's delete", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const ids = ["e1", "e2", "e3", "e4"]
          for (const [i, id] of ids.entries()) yield* create(snapshot(id, { status: "waiting", startedAt: t0 + i }))
          const taken = yield* store.enqueue("e1", { _tag: "A" }, t0 + 1)
          const stays = yield* store.enqueue("e2", { _tag: "B" }, t0 + 2)
          const before = { e2: yield* dump("e2"), e4: yield* dump("e4") }
          const next = (id: string) => advance(snapshot(id, { status: "waiting", startedAt: t0 + ids.indexOf(id) }))
          const exits = yield* Effect.all([
            store.commit({ snapshot: next("e1"), expectedVersion: 0, transition: transition("e1", 1), consumed: taken.seq }),
            store.commit({ snapshot: next("e2"), expectedVersion: 5, transition: transition("e2", 1), consumed: stays.seq }),
            store.commit({ snapshot: next("e3"), expectedVersion: 0, transition: transition("e3", 1) }),
            store.commit({ snapshot: next("e4"), expectedVersion: 2, transition: transition("e4", 1) })
          ].map(Effect.exit), { concurrency: "unbounded" })
          assert.deepStrictEqual(exits.map(Exit.isSuccess), [true, false, true, false])
          for (const i of [1, 3]) {
            const exit = exits[i]!
            assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error.kind === "Conflict", String(exit))
          }
          assert.deepStrictEqual(yield* dump("e2"), before.e2)
          assert.deepStrictEqual((yield* dump("e2")).inbox, [stays])
          assert.deepStrictEqual(yield* dump("e4"), before.e4)
          for (const id of ["e1", "e3"]) {
            const d = yield* dump(id)
            assert.deepStrictEqual(d.snapshot, Option.some(next(id)))
            assert.deepStrictEqual(d.history.map((x) => x.seq), [0, 1])
            assert.deepStrictEqual(d.inbox, [])
          }
        }))

      test("a commit with only a snapshot changes only the snapshot", () =>
        Effect.gen(function*() {
          const s = snapshot("e1")
          yield* create(s)
          const before = yield* dump("e1")
          const next = { ...s, rowVersion: 1, status: "paused" as const, updatedAt: t0 + 9 }
          yield* Effect.flatMap(Store.Store, (store) => store.commit({ snapshot: next, expectedVersion: 0 }))
          const after = yield* dump("e1")
          assert.deepStrictEqual(after, { ...before, snapshot: Option.some(next) })
        }))

      test("a stale expectedVersion fails with Conflict and writes nothing", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = yield* Effect.flatMap(create(snapshot("e1")), ({ snapshot: first }) => step(first, 2))
          const queued = yield* store.enqueue("e1", { _tag: "Go" }, t0 + 3)
          const before = yield* dump("e1")
          const error = yield* failure(store.commit({
            snapshot: advance(s, { context: { n: 99 } }),
            expectedVersion: s.rowVersion - 1,
            transition: transition("e1", s.seq + 1),
            errors: [errorEntry("e1", "never", t0)],
            consumed: queued.seq,
            compensation: { executionId: "e1", stepSeq: 1, state: "s1", ok: true, at: t0 }
          }))
          assert.strictEqual(error.kind, "Conflict")
          assert.strictEqual(error.operation, "commit")
          assert.include(error.detail, "e1")
          assert.deepStrictEqual(yield* dump("e1"), before)
          // the right version still commits
          yield* step(s)
          assert.strictEqual((yield* store.history("e1")).length, 4)
        }))

      test("a commit to an execution that does not exist fails with Conflict", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const error = yield* failure(store.commit({ snapshot: advance(snapshot("ghost")), expectedVersion: 0, transition: transition("ghost", 1) }))
          assert.strictEqual(error.kind, "Conflict")
          assert.deepStrictEqual(yield* store.get("ghost"), Option.none())
          assert.deepStrictEqual(yield* store.history("ghost"), [])
        }))

      test("of concurrent commits from one version exactly one wins; the others fail alone", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const { snapshot: s } = yield* create(snapshot("e1"))
          yield* create(snapshot("e2", { startedAt: t0 + 1 }))
          const racers = Array.from({ length: 6 }, (_, i) =>
            Effect.exit(store.commit({
              snapshot: advance(s, { context: { n: i } }),
              expectedVersion: 0,
              transition: transition("e1", 1, { cause: `event:racer-${i}` })
            })))
          // an unrelated commit in the same burst is not affected by the losers
          const other = step(snapshot("e2", { startedAt: t0 + 1 }))
          const [exits] = yield* Effect.all([Effect.all(racers, { concurrency: "unbounded" }), other], { concurrency: "unbounded" })
          const wins = exits.filter(Exit.isSuccess)
          assert.strictEqual(wins.length, 1)
          for (const exit of exits.filter(Exit.isFailure)) {
            assert.strictEqual(exit.cause._tag === "Fail" && exit.cause.error.kind, "Conflict")
          }
          const winner = exits.findIndex(Exit.isSuccess)
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get("e1")).context, { n: winner })
          const history = yield* store.history("e1")
          assert.deepStrictEqual(history.map((t) => t.cause), ["start", `event:racer-${winner}`])
          assert.strictEqual((yield* store.history("e2")).length, 2)
        }))

      test("many executions committing at once all commit, each history in order", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const ids = Array.from({ length: 40 }, (_, i) => `e${String(i).padStart(2, "0")}`)
          yield* Effect.forEach(ids, (id, i) => create(snapshot(id, { startedAt: t0 + i })), { concurrency: "unbounded" })
          yield* Effect.forEach(ids, (id, i) => step(snapshot(id, { startedAt: t0 + i }), 5), { concurrency: "unbounded" })
          for (const [i, id] of ids.entries()) {
            const s = Option.getOrThrow(yield* store.get(id))
            assert.strictEqual(s.rowVersion, 5)
            assert.strictEqual(s.startedAt, t0 + i)
            assert.deepStrictEqual((yield* store.history(id)).map((t) => t.seq), [0, 1, 2, 3, 4, 5])
          }
        }))
    })

    describe("history", () => {
      test("is in seq order; tail gives the last n", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const { snapshot: s } = yield* create(snapshot("e1"))
          yield* create(snapshot("e2", { startedAt: t0 + 1 }))
          yield* step(s, 4)
          const all = yield* store.history("e1")
          assert.deepStrictEqual(all.map((t) => t.seq), [0, 1, 2, 3, 4])
          assert.deepStrictEqual(all.map((t) => t.to), ["s0", "s1", "s2", "s3", "s4"])
          assert.deepStrictEqual(yield* store.history("e1", { tail: 2 }), all.slice(3))
          assert.deepStrictEqual(yield* store.history("e1", { tail: 1 }), all.slice(4))
          assert.deepStrictEqual(yield* store.history("e1", { tail: 0 }), [])
          assert.deepStrictEqual(yield* store.history("e1", { tail: 50 }), all)
          assert.deepStrictEqual(yield* store.history("e1", {}), all)
          assert.deepStrictEqual((yield* store.history("e2")).map((t) => t.executionId), ["e2"])
          assert.deepStrictEqual(yield* store.history("unknown"), [])
        }))
    })

    describe("inbox", () => {
      test("keeps events in order and hands each out until it is consumed, once", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const { snapshot: s } = yield* create(snapshot("e1", { status: "waiting" }))
          yield* create(snapshot("e2", { status: "waiting", startedAt: t0 + 1 }))
          const a = yield* store.enqueue("e1", { _tag: "A" }, t0 + 1)
          const other = yield* store.enqueue("e2", { _tag: "X" }, t0 + 1)
          const b = yield* store.enqueue("e1", { _tag: "B", payload: [1, 2] }, t0 + 2)
          const c = yield* store.enqueue("e1", { _tag: "C" }, t0 + 3)
          assert.deepStrictEqual(a, { executionId: "e1", seq: a.seq, event: { _tag: "A" }, at: t0 + 1 })
          assert.isTrue(a.seq < other.seq && other.seq < b.seq && b.seq < c.seq, "seq increases across the store")
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [a, b, c])
          assert.deepStrictEqual(yield* store.inbox("e1", 2), [a, b])
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [other])
          // reading does not consume
          assert.deepStrictEqual(yield* store.inbox("e1", 1), [a])
          const s1 = advance(s, { status: "waiting" })
          yield* store.commit({ snapshot: s1, expectedVersion: 0, transition: transition("e1", 1), consumed: a.seq })
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [b, c])
          // consuming a seq that is gone, or that belongs to another execution, removes nothing
          const s2 = advance(s1, { status: "waiting" })
          yield* store.commit({ snapshot: s2, expectedVersion: s1.rowVersion, consumed: a.seq })
          const s3 = advance(s2, { status: "waiting" })
          yield* store.commit({ snapshot: s3, expectedVersion: s2.rowVersion, consumed: other.seq })
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [b, c])
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [other])
          // a new event after a consumed one gets a new seq, never a reused one
          const d = yield* store.enqueue("e1", { _tag: "D" }, t0 + 4)
          assert.isTrue(d.seq > c.seq)
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [b, c, d])
        }))

      test("an event for an execution that does not exist is refused", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const error = yield* failure(store.enqueue("ghost", { _tag: "A" }, t0))
          assert.strictEqual(error.kind, "Conflict")
          assert.deepStrictEqual(yield* store.inbox("ghost", 10), [])
        }))

      test("an event for an execution that has ended is refused with Conflict, and nothing is stored", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          yield* create(snapshot("e1", { status: "succeeded" }))
          const error = yield* failure(store.enqueue("e1", { _tag: "A" }, t0))
          assert.strictEqual(error.kind, "Conflict")
          assert.strictEqual(error.operation, "enqueue")
          assert.include(error.detail, "has ended (succeeded)")
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [])
          assert.deepStrictEqual(yield* store.errors("e1"), [])
        }))

      test("a commit that ends the execution discards its unconsumed events, one EventDiscarded entry each", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = snapshot("e1", { status: "waiting" })
          yield* create(s)
          yield* create(snapshot("e2", { status: "waiting", startedAt: t0 + 1 }))
          const a = yield* store.enqueue("e1", { _tag: "A" }, t0 + 1)
          const b = yield* store.enqueue("e1", { _tag: "B", n: 1 }, t0 + 2)
          const c = yield* store.enqueue("e1", null, t0 + 3)
          const other = yield* store.enqueue("e2", { _tag: "X" }, t0 + 3)
          // a commit that does not end it keeps them
          const s1 = advance(s, { status: "waiting" })
          yield* store.commit({ snapshot: s1, expectedVersion: 0, transition: transition("e1", 1) })
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [a, b, c])
          const own = errorEntry("e1", "the commit's own", t0 + 4)
          const end = advance(s1, { status: "cancelled", updatedAt: t0 + 9 })
          yield* store.commit({ snapshot: end, expectedVersion: s1.rowVersion, transition: transition("e1", 2), consumed: a.seq, errors: [own] })
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [])
          const errors = yield* store.errors("e1")
          assert.deepStrictEqual(errors[0], own)
          assert.deepStrictEqual(errors.slice(1).map((e) => [e.tag, e.state, e.attempt, e.transient, e.at]), [
            ["EventDiscarded", end.state, end.attempt, false, end.updatedAt],
            ["EventDiscarded", end.state, end.attempt, false, end.updatedAt]
          ])
          assert.include(errors[1]!.message, `event "B" (inbox seq ${b.seq})`)
          assert.include(errors[1]!.message, "ended with status cancelled before consuming it")
          assert.include(errors[1]!.message, `{"_tag":"B","n":1}`)
          assert.include(errors[2]!.message, `inbox seq ${c.seq}`)
          // another execution's events are untouched
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [other])
          assert.deepStrictEqual(yield* store.errors("e2"), [])
          // a later commit of the ended execution finds nothing more to discard
          yield* store.commit({ snapshot: { ...end, rowVersion: end.rowVersion + 1 }, expectedVersion: end.rowVersion })
          assert.strictEqual((yield* store.errors("e1")).length, 3)
        }))

      test("events racing the commit that ends the execution are each refused, or stored and then discarded, once", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = snapshot("e1", { status: "waiting" })
          yield* create(s)
          const sends = Array.from({ length: 60 }, (_, i) => Effect.exit(store.enqueue("e1", { _tag: "P", i }, t0 + i)))
          const end = Effect.as(store.commit({ snapshot: advance(s, { status: "succeeded" }), expectedVersion: 0, transition: transition("e1", 1) }), undefined)
          // the end goes in the middle of the burst
          const exits = (yield* Effect.all([...sends.slice(0, 30), end, ...sends.slice(30)], { concurrency: "unbounded" }))
            .filter((exit) => exit !== undefined)
          const accepted = exits.filter(Exit.isSuccess).map((e) => e.value.seq)
          for (const exit of exits.filter(Exit.isFailure)) {
            assert.strictEqual(exit.cause._tag === "Fail" && exit.cause.error.kind, "Conflict")
          }
          assert.deepStrictEqual(yield* store.inbox("e1", 100), [])
          const discarded = (yield* store.errors("e1")).map((e) => Number(/inbox seq (\d+)/.exec(e.message)![1]))
          assert.deepStrictEqual(discarded, accepted.slice().sort((x, y) => x - y))
          assert.isTrue(discarded.length < 60 && discarded.length > 0, "some events came before the end, some after")
        }))

      test("an event without a body round-trips", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          yield* create(snapshot("e1"))
          const n = yield* store.enqueue("e1", null, t0)
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [{ executionId: "e1", seq: n.seq, event: null, at: t0 }])
        }))
    })

    describe("enqueueAll (events for several executions, all or none)", () => {
      // optional in the interface: a store without it is not held to these promises
      const enqueueAll = (entries: ReadonlyArray<{ readonly executionId: string; readonly event: unknown; readonly at: number }>) =>
        Effect.flatMap(Store.Store, (store) => store.enqueueAll === undefined ? Effect.succeed(undefined) : store.enqueueAll(entries))
      const hasIt = Effect.map(Store.Store, (store) => store.enqueueAll !== undefined)

      test("stores each event in its execution's inbox, in the order given, after the events already there", () =>
        Effect.gen(function*() {
          if (!(yield* hasIt)) return
          const store = yield* Store.Store
          for (const [i, id] of ["e1", "e2", "e3"].entries()) yield* create(snapshot(id, { status: "waiting", startedAt: t0 + i }))
          const before = yield* store.enqueue("e1", { _tag: "A" }, t0 + 1)
          const written = (yield* enqueueAll([
            { executionId: "e1", event: { _tag: "B", n: 1 }, at: t0 + 2 },
            { executionId: "e2", event: { _tag: "X" }, at: t0 + 2 },
            { executionId: "e1", event: null, at: t0 + 3 },
            { executionId: "e3", event: { _tag: "Y" }, at: t0 + 4 }
          ]))!
          assert.deepStrictEqual(written.map((e) => [e.executionId, e.event, e.at]), [
            ["e1", { _tag: "B", n: 1 }, t0 + 2],
            ["e2", { _tag: "X" }, t0 + 2],
            ["e1", null, t0 + 3],
            ["e3", { _tag: "Y" }, t0 + 4]
          ])
          const seqs = [before.seq, ...written.map((e) => e.seq)]
          assert.isTrue(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!), `seq increases in the order given: ${seqs.join(", ")}`)
          const [b, x, c, y] = [written[0]!, written[1]!, written[2]!, written[3]!]
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [before, b, c])
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [x])
          assert.deepStrictEqual(yield* store.inbox("e3", 10), [y])
          // each is consumed by its own execution's commit, like an event of `enqueue`
          const s2 = advance(snapshot("e2", { status: "waiting", startedAt: t0 + 1 }), { status: "waiting" })
          yield* store.commit({ snapshot: s2, expectedVersion: 0, transition: transition("e2", 1), consumed: x.seq })
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [])
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [before, b, c])
          const after = yield* store.enqueue("e2", { _tag: "Z" }, t0 + 5)
          assert.isTrue(after.seq > y.seq)
          // the executions that had events waiting are the ones recovery resumes
          assert.includeMembers([...(yield* store.active())], ["e1", "e3"])
        }))

      test("refuses them all with Conflict, storing none, when one execution has ended or does not exist", () =>
        Effect.gen(function*() {
          if (!(yield* hasIt)) return
          const store = yield* Store.Store
          yield* create(snapshot("e1", { status: "waiting" }))
          yield* create(snapshot("e2", { status: "succeeded", startedAt: t0 + 1 }))
          yield* create(snapshot("e3", { status: "waiting", startedAt: t0 + 2 }))
          const kept = yield* store.enqueue("e3", { _tag: "K" }, t0)
          const event = { _tag: "Go" }
          const toAll = (ids: ReadonlyArray<string>, at: number) => enqueueAll(ids.map((executionId) => ({ executionId, event, at })))
          const endedOne = yield* failure(toAll(["e1", "e2", "e3"], t0 + 1))
          assert.strictEqual(endedOne.kind, "Conflict")
          assert.strictEqual(endedOne.operation, "enqueue")
          assert.include(endedOne.detail, "e2 has ended (succeeded)")
          // the one that does not exist is the last: the events before it are not stored either
          const missing = yield* failure(toAll(["e1", "e3", "ghost"], t0 + 2))
          assert.strictEqual(missing.kind, "Conflict")
          assert.include(missing.detail, "ghost")
          assert.deepStrictEqual(yield* store.inbox("e1", 10), [])
          assert.deepStrictEqual(yield* store.inbox("e2", 10), [])
          assert.deepStrictEqual(yield* store.inbox("e3", 10), [kept])
          assert.deepStrictEqual(yield* store.inbox("ghost", 10), [])
          for (const id of ["e1", "e2", "e3"]) assert.deepStrictEqual(yield* store.errors(id), [])
          // refused writes take no seq from the ones that follow
          const next = (yield* toAll(["e1", "e3"], t0 + 3))!
          assert.isTrue(next[0]!.seq > kept.seq && next[1]!.seq > next[0]!.seq)
        }))

      test("racing the commit that ends one of the executions, each call stores all its events or none", () =>
        Effect.gen(function*() {
          if (!(yield* hasIt)) return
          const store = yield* Store.Store
          const s = snapshot("e2", { status: "waiting", startedAt: t0 + 1 })
          yield* create(snapshot("e1", { status: "waiting" }))
          yield* create(s)
          const sends = Array.from({ length: 40 }, (_, i) =>
            Effect.exit(store.enqueueAll!([
              { executionId: "e1", event: { _tag: "P", i }, at: t0 + i },
              { executionId: "e2", event: { _tag: "P", i }, at: t0 + i }
            ])))
          const end = Effect.as(store.commit({ snapshot: advance(s, { status: "cancelled" }), expectedVersion: 0, transition: transition("e2", 1) }), undefined)
          // the end goes in the middle of the burst
          const exits = (yield* Effect.all([...sends.slice(0, 20), end, ...sends.slice(20)], { concurrency: "unbounded" }))
            .filter((exit) => exit !== undefined)
          const accepted = exits.filter(Exit.isSuccess).map((e) => e.value)
          for (const exit of exits.filter(Exit.isFailure)) {
            assert.strictEqual(exit.cause._tag === "Fail" && exit.cause.error.kind, "Conflict")
          }
          assert.isTrue(accepted.length > 0 && accepted.length < 40, "some calls came before the end, some after")
          // e1 has the events of exactly the calls that were accepted, in their order
          assert.deepStrictEqual(yield* store.inbox("e1", 100), accepted.map((written) => written[0]!).sort((x, y) => x.seq - y.seq))
          // e2 had them too: its end discarded each of them, once
          assert.deepStrictEqual(yield* store.inbox("e2", 100), [])
          const discarded = (yield* store.errors("e2")).map((e) => Number(/inbox seq (\d+)/.exec(e.message)![1]))
          assert.deepStrictEqual(discarded, accepted.map((written) => written[1]!.seq).sort((x, y) => x - y))
        }))
    })

    describe("errors", () => {
      test("appendErrors and commits add to one log per execution, in order", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const { snapshot: s } = yield* create(snapshot("e1"))
          yield* create(snapshot("e2", { startedAt: t0 + 1 }))
          const first = [errorEntry("e1", "attempt 1 transient", t0 + 1), errorEntry("e1", "attempt 2 transient", t0 + 2)]
          yield* store.appendErrors(first)
          yield* store.appendErrors([])
          yield* store.appendErrors([errorEntry("e2", "elsewhere", t0 + 2)])
          const last = errorEntry("e1", "gave up", t0 + 3)
          yield* store.commit({ snapshot: advance(s), expectedVersion: 0, transition: transition("e1", 1), errors: [last] })
          assert.deepStrictEqual(yield* store.errors("e1"), [...first, last])
          assert.deepStrictEqual(yield* store.errors("e2"), [errorEntry("e2", "elsewhere", t0 + 2)])
          assert.deepStrictEqual(yield* store.errors("unknown"), [])
        }))
    })

    describe("compensations", () => {
      test("lists finished compensations in the order they finished", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const s = yield* Effect.flatMap(create(snapshot("e1")), ({ snapshot: first }) => step(first, 4))
          // compensations run from the last completed step back
          const c3 = { executionId: "e1", stepSeq: 3, state: "s2", ok: true, at: t0 + 10 }
          const c1 = { executionId: "e1", stepSeq: 1, state: "s0", ok: false, at: t0 + 10 }
          const s1 = advance(s, { status: "compensating", compensateTo: "rolled_back" })
          yield* store.commit({ snapshot: s1, expectedVersion: s.rowVersion, compensation: c3 })
          const s2 = { ...s1, rowVersion: s1.rowVersion + 1 }
          yield* store.commit({ snapshot: s2, expectedVersion: s1.rowVersion, compensation: c1, errors: [errorEntry("e1", "compensation failed", t0 + 10)] })
          assert.deepStrictEqual(yield* store.compensations("e1"), [c3, c1])
          assert.deepStrictEqual(yield* store.compensations("unknown"), [])
        }))
    })

    describe("queries", () => {
      test("active lists the executions that need a fiber: running, compensating, waiting with an event", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const statuses: ReadonlyArray<Execution.Status> = [
            "running",
            "succeeded",
            "waiting",
            "failed",
            "paused",
            "cancelled",
            "needs_intervention",
            "rolled_back",
            "compensating",
            "waiting"
          ]
          for (const [i, status] of statuses.entries()) yield* create(snapshot(`e${i}`, { status, startedAt: t0 + i }))
          assert.deepStrictEqual(yield* store.active(), ["e0", "e8"])
          // an event makes a waiting execution active, until it is consumed
          const event = yield* store.enqueue("e9", { _tag: "Go" }, t0)
          yield* store.enqueue("e2", { _tag: "Go" }, t0)
          assert.deepStrictEqual(yield* store.active(), ["e0", "e2", "e8", "e9"])
          const e9 = Option.getOrThrow(yield* store.get("e9"))
          yield* store.commit({ snapshot: advance(e9, { status: "waiting" }), expectedVersion: 0, consumed: event.seq })
          assert.deepStrictEqual(yield* store.active(), ["e0", "e2", "e8"])
          // finishing one removes it
          const e0 = Option.getOrThrow(yield* store.get("e0"))
          yield* store.commit({ snapshot: advance(e0, { status: "succeeded", outcome: "succeeded" }), expectedVersion: 0 })
          assert.deepStrictEqual(yield* store.active(), ["e2", "e8"])
        }))

      test("activePage lists what active lists, a page at a time after a cursor, oldest first and by id at the same start", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          // optional in the interface, made by every store of the library (recovery reads with it)
          if (store.activePage === undefined) return assert.fail("this store has no activePage")
          // created out of order; three start in the same millisecond
          const rows: ReadonlyArray<readonly [string, Execution.Status, number]> = [
            ["c", "running", 2],
            ["a", "waiting", 2],
            ["b", "compensating", 2],
            ["z", "running", 0],
            ["y", "succeeded", 1],
            ["x", "waiting", 1],
            ["w", "paused", 3],
            ["v", "running", 4]
          ]
          for (const [id, status, at] of rows) yield* create(snapshot(id, { status, startedAt: t0 + at }))
          // a waiting execution is listed while an event waits for it
          yield* store.enqueue("a", { _tag: "Go" }, t0)
          const pages: Array<ReadonlyArray<string>> = []
          let after: Store.ActiveEntry | undefined
          while (true) {
            const page = yield* store.activePage({ after, limit: 2 })
            pages.push(page.map((e) => e.id))
            if (page.length < 2) break
            after = page[page.length - 1]
          }
          assert.deepStrictEqual(pages, [["z", "a"], ["b", "c"], ["v"]])
          assert.sameMembers([...(yield* store.active())], pages.flat())
          assert.deepStrictEqual(yield* store.activePage({ limit: 2 }), [{ id: "z", startedAt: t0 }, { id: "a", startedAt: t0 + 2 }])
          assert.deepStrictEqual(yield* store.activePage({ after: { id: "a", startedAt: t0 + 2 }, limit: 10 }), [
            { id: "b", startedAt: t0 + 2 },
            { id: "c", startedAt: t0 + 2 },
            { id: "v", startedAt: t0 + 4 }
          ])
          assert.deepStrictEqual(yield* store.activePage({ after: { id: "v", startedAt: t0 + 4 }, limit: 10 }), [])
          assert.deepStrictEqual(yield* store.activePage({ limit: 0 }), [])
        }))

      test("countByVersion counts executions by procedure, version and status, by procedure and start time", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const rows: ReadonlyArray<readonly [string, number, Execution.Status, number]> = [
            ["order", 1, "running", 0],
            ["order", 1, "running", 1],
            ["order", 1, "succeeded", 2],
            ["order", 2, "waiting", 3],
            ["order", 2, "failed", 4],
            ["order", 2, "failed", 5],
            ["deploy", 1, "running", 6]
          ]
          for (const [i, [procedure, version, status, at]] of rows.entries()) {
            yield* create(snapshot(`v${i}`, { procedure, version, status, startedAt: t0 + at }))
          }
          const sorted = (counts: ReadonlyArray<Store.VersionCount>) =>
            [...counts].map((c) => `${c.procedure}@${c.version} ${c.status} ${c.count}`).sort()
          assert.deepStrictEqual(sorted(yield* store.countByVersion()), [
            "deploy@1 running 1",
            "order@1 running 2",
            "order@1 succeeded 1",
            "order@2 failed 2",
            "order@2 waiting 1"
          ])
          assert.deepStrictEqual(sorted(yield* store.countByVersion({ procedure: "order", startedSince: t0 + 2 })), [
            "order@1 succeeded 1",
            "order@2 failed 2",
            "order@2 waiting 1"
          ])
          assert.deepStrictEqual(yield* store.countByVersion({ procedure: "nothing" }), [])
        }))

      test("getMany gives the snapshots of the ids that exist, past a chunk of 500 too", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const ids = Array.from({ length: 510 }, (_, i) => `m${String(i).padStart(3, "0")}`)
          for (const [i, id] of ids.entries()) yield* create(snapshot(id, { startedAt: t0 + i }))
          assert.deepStrictEqual(yield* store.getMany!([]), [])
          const found = yield* store.getMany!([...ids, "missing"])
          assert.deepStrictEqual([...found].sort((a, b) => a.id.localeCompare(b.id)), yield* Effect.forEach(ids, (id) => Effect.map(store.get(id), Option.getOrThrow)))
        }))

      test("dueTimers gives waiting executions in (dueAt, id) order, up to until, from a cursor, at most limit", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          // created in another order than their timers fall due; two fall due together
          for (const [i, [id, due]] of ([["w30", 30], ["w10", 10], ["w40", 40], ["w20b", 20], ["w20a", 20]] as const).entries()) {
            yield* create(snapshot(id, { status: "waiting", timerDueAt: t0 + due, startedAt: t0 + i }))
          }
          yield* create(snapshot("paused", { status: "paused", timerDueAt: t0 + 5, startedAt: t0 + 10 }))
          yield* create(snapshot("running", { status: "running", timerDueAt: t0 + 5, startedAt: t0 + 11 }))
          yield* create(snapshot("notimer", { status: "waiting", startedAt: t0 + 12 }))
          const all = [
            { id: "w10", dueAt: t0 + 10 },
            { id: "w20a", dueAt: t0 + 20 },
            { id: "w20b", dueAt: t0 + 20 },
            { id: "w30", dueAt: t0 + 30 },
            { id: "w40", dueAt: t0 + 40 }
          ]
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 1000, limit: 100 }), all)
          // until is inclusive
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 20, limit: 100 }), all.slice(0, 3))
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 9, limit: 100 }), [])
          // a limit keeps the most overdue
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 1000, limit: 2 }), all.slice(0, 2))
          // the cursor is exclusive and orders ties by id
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 1000, limit: 2, after: all[1] }), all.slice(2, 4))
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 1000, limit: 100, after: all[4] }), [])
          assert.deepStrictEqual(
            yield* store.dueTimers({ until: t0 + 30, limit: 100, after: { id: "a", dueAt: t0 + 20 } }),
            all.slice(1, 4)
          )
          // a commit that leaves the wait removes its timer
          const s = Option.getOrThrow(yield* store.get("w10"))
          const next = advance(s, { status: "running" })
          delete (next as { timerDueAt?: number }).timerDueAt
          yield* store.commit({ snapshot: next, expectedVersion: s.rowVersion })
          assert.deepStrictEqual(yield* store.dueTimers({ until: t0 + 20, limit: 100 }), all.slice(1, 3))
        }))

      test("list filters by status, procedure, state, tenant and parent, with limit and offset", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          const rows: ReadonlyArray<Partial<Snapshot>> = [
            { procedure: "order", state: "pay", status: "running", tenant: "acme" },
            { procedure: "order", state: "ship", status: "waiting", tenant: "acme" },
            { procedure: "order", state: "pay", status: "waiting", parentId: "e0" },
            { procedure: "refund", state: "pay", status: "succeeded", tenant: "acme", parentId: "e0" },
            { procedure: "refund", state: "check", status: "failed", tenant: "globex" }
          ]
          for (const [i, over] of rows.entries()) yield* create(snapshot(`e${i}`, { ...over, startedAt: t0 + i }))
          const ids = (filter: Execution.ListFilter) => Effect.map(store.list(filter), (list) => list.map((s) => s.id))
          assert.deepStrictEqual(yield* ids({}), ["e0", "e1", "e2", "e3", "e4"])
          assert.deepStrictEqual(yield* ids({ status: "waiting" }), ["e1", "e2"])
          assert.deepStrictEqual(yield* ids({ status: ["running", "failed"] }), ["e0", "e4"])
          assert.deepStrictEqual(yield* ids({ procedure: "refund" }), ["e3", "e4"])
          assert.deepStrictEqual(yield* ids({ state: "pay" }), ["e0", "e2", "e3"])
          assert.deepStrictEqual(yield* ids({ tenant: "acme" }), ["e0", "e1", "e3"])
          assert.deepStrictEqual(yield* ids({ procedure: "order", state: "pay", status: "waiting" }), ["e2"])
          assert.deepStrictEqual(yield* ids({ tenant: "nobody" }), [])
          assert.deepStrictEqual(yield* ids({ parentId: "e0" }), ["e2", "e3"])
          assert.deepStrictEqual(yield* ids({ parentId: "e0", status: "waiting" }), ["e2"])
          assert.deepStrictEqual(yield* ids({ parentId: "e2" }), [])
          assert.deepStrictEqual(yield* ids({ limit: 2 }), ["e0", "e1"])
          assert.deepStrictEqual(yield* ids({ limit: 2, offset: 2 }), ["e2", "e3"])
          assert.deepStrictEqual(yield* ids({ offset: 4 }), ["e4"])
          assert.deepStrictEqual(yield* ids({ state: "pay", offset: 1, limit: 1 }), ["e2"])
          // list returns whole snapshots
          assert.deepStrictEqual((yield* store.list({ status: "running" }))[0], snapshot("e0", { ...rows[0], startedAt: t0 }))
        }))

      test("list returns at most 100 by default", () =>
        Effect.gen(function*() {
          const store = yield* Store.Store
          yield* Effect.forEach(
            Array.from({ length: 105 }, (_, i) => snapshot(`e${String(i).padStart(3, "0")}`, { startedAt: t0 + i })),
            create,
            { concurrency: "unbounded", discard: true }
          )
          const list = yield* store.list({})
          assert.strictEqual(list.length, 100)
          assert.strictEqual(list[0]!.id, "e000")
          assert.strictEqual((yield* store.list({ offset: 100 })).length, 5)
        }))
    })

    describe("values JSON cannot hold (through a runtime on this store)", () => {
      const withRuntime = Runtime.layer({ procedures: [JsonPay] }).pipe(Layer.provideMerge(layer))
      const refused = (effect: Effect.Effect<unknown, unknown, Runtime.Runtime>, issue: string) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(effect)
          assert.strictEqual((e as { _tag?: string })._tag, "ValidationError", String(e))
          const v = e as ValidationError
          assert.strictEqual(v.kind, "JSON")
          assert.include(v.message, `cannot be stored: ${issue}`, v.message)
        })

      it.effect("start refuses an input whose context JSON cannot hold, naming the path, and writes nothing", () =>
        Effect.gen(function*() {
          yield* refused(Runtime.start(JsonPay, { amount: NaN }), "context.amount: NaN cannot be stored (JSON has no NaN)")
          yield* refused(Runtime.start(JsonPay, { amount: -Infinity }), "context.amount: -Infinity cannot be stored (JSON has no infinite numbers)")
          yield* refused(Runtime.start(JsonPay, { amount: 1, notes: [1, undefined] }), "context.notes[1]: undefined cannot be stored (JSON turns it into null)")
          yield* refused(Runtime.start(JsonPay, { amount: 1, notes: [new Date(0)] }), "context.notes[0]: a Date cannot be stored as it is")
          yield* refused(Runtime.start(JsonPay, { amount: 1, notes: [{ big: BigInt(1) }] }), "context.notes[0].big: the bigint 1n cannot be stored")
          const cyclic: { self?: unknown } = {}
          cyclic.self = cyclic
          yield* refused(Runtime.start(JsonPay, { amount: 1, notes: [cyclic] }), "context.notes[0].self: a cycle cannot be stored")
          assert.deepStrictEqual(yield* Runtime.list(), [])
        }).pipe(Effect.provide(withRuntime)))

      it.effect("send refuses such an event; a step or event update that makes such a context fails that step or is discarded", () =>
        Effect.gen(function*() {
          const id = yield* Runtime.start(JsonPay, { amount: 4 })
          yield* refused(Runtime.send(id, { _tag: "Bump", by: NaN }), "event.by: NaN cannot be stored (JSON has no NaN)")
          assert.strictEqual((yield* Runtime.get(id)).seq, 1)
          // 1.7e308 + 1.7e308 is Infinity: the event is consumed and logged, the execution stays
          const big = yield* Runtime.start(JsonPay, { amount: 1.7e308 })
          yield* Runtime.send(big, { _tag: "Bump", by: 1.7e308 })
          // polled with the clock moved a little each time, so that a store's own fibers get their turn
          const errors = yield* Effect.repeat(Effect.zipLeft(Runtime.errors(big), TestClock.adjust("1 millis")), { until: (es) => es.length > 0 })
          assert.include(errors[0]!.message, "context.amount: Infinity cannot be stored")
          assert.deepStrictEqual((yield* Runtime.get(big)).context, { amount: 1.7e308 })
          assert.strictEqual((yield* Runtime.get(big)).status, "waiting")
          // -6 makes the step's update take a square root of a negative number: NaN
          yield* Runtime.send(id, { _tag: "Bump", by: -10 })
          const failed = yield* Runtime.await(id)
          assert.strictEqual(failed.status, "failed")
          assert.strictEqual(failed.state, "root")
          assert.strictEqual(failed.error?.tag, "ExecutionError")
          assert.include(failed.error!.message, "context.amount: NaN cannot be stored (JSON has no NaN)")
          assert.deepStrictEqual(failed.context, { amount: -6 })
          assert.isTrue((yield* Runtime.verify(id)).ok)
          // and a good one goes through
          const ok = yield* Runtime.start(JsonPay, { amount: 5 })
          yield* Runtime.send(ok, { _tag: "Bump", by: 4 })
          assert.deepStrictEqual((yield* Runtime.await(ok)).context, { amount: 3 })
        }).pipe(Effect.provide(withRuntime)))
    })
  })

const JsonAmount = Schema.Struct({ amount: Schema.Number, notes: Schema.optional(Schema.Array(Schema.Unknown)) })

/** waits for a `Bump` that adds to `amount`, then a step that takes its square root */
const JsonPay = Procedure.make("json-pay", {
  version: 1,
  input: JsonAmount,
  context: JsonAmount,
  events: Schema.TaggedStruct("Bump", { by: Schema.Number })
}, {
  initial: "gate",
  states: {
    gate: Procedure.wait({ on: { Bump: { goto: "root", update: (e, c) => ({ ...c, amount: c.amount + e.by }) } } }),
    root: Procedure.step({ run: () => Effect.void, update: (_, c) => ({ ...c, amount: Math.sqrt(c.amount) }), next: "done" }),
    done: Procedure.final()
  }
})
