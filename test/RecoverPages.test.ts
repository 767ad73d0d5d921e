/**
 * Recovery reads the executions to resume a page at a time (`Store.activePage`,
 * src/internal/resume.ts), never all their ids in one result: the first page when the
 * runtime starts, each next one once the queue is used up and the window has room. A
 * store outage while reading a page is waited out.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Schema, Scope, TestClock } from "effect"
import { Procedure, Runtime, Store, StoreError } from "proctor"
import type { Store as StoreNs } from "proctor"

/** whether the step holds (until its runtime closes) or returns at once */
const world = { hold: true }

const Slow = Procedure.make("slow", { version: 1, input: Schema.Struct({ n: Schema.Number }), context: Schema.Struct({ n: Schema.Number }) }, {
  initial: "work",
  states: {
    work: Procedure.step({ run: () => Effect.suspend(() => world.hold ? Effect.never : Effect.void), timeout: "2 hours", next: "done" }),
    done: Procedure.final()
  }
})

interface PageRead {
  readonly limit: number
  readonly read: number
  /** how many ids recovery had taken off its queue (their snapshots read) when it asked for this page */
  readonly resumedBefore: number
}

/** a memory store that records the reads recovery makes; the page reads listed in `failing` fail once with an outage */
const recording = (memory: StoreNs.StoreService, failing: ReadonlySet<number> = new Set()) => {
  const log = { active: 0, pages: [] as Array<PageRead>, resumed: 0, failed: 0 }
  const store: StoreNs.StoreService = {
    ...memory,
    active: () => Effect.suspend(() => (log.active++, memory.active())),
    activePage: (query) =>
      Effect.suspend(() => {
        const k = log.pages.length + log.failed
        if (failing.has(k)) {
          log.failed++
          return Effect.fail(new StoreError({ kind: "Unavailable", operation: "activePage", detail: "the store is restarting" }))
        }
        return Effect.tap(memory.activePage!(query), (page) =>
          Effect.sync(() => void log.pages.push({ limit: query.limit, read: page.length, resumedBefore: log.resumed })))
      }),
    getMany: (ids) => Effect.suspend(() => (log.resumed += ids.length, memory.getMany!(ids)))
  }
  return { store, log }
}

const runtimeOn = (store: StoreNs.StoreService, scope: Scope.CloseableScope, recoverWindow: number) =>
  Effect.map(
    Layer.buildWithScope(Runtime.layer({ procedures: [Slow], recoverWindow }).pipe(Layer.provide(Layer.succeed(Store.Store, store))), scope),
    (ctx) => ctx.unsafeMap.get(Runtime.Runtime.key) as Runtime.RuntimeService
  )

const eventLoopTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

/** `n` executions in their step when their runtime closed */
const inFlight = (memory: StoreNs.StoreService, n: number) =>
  Effect.gen(function*() {
    world.hold = true
    const scope = yield* Scope.make()
    const r1 = yield* runtimeOn(memory, scope, 100_000)
    const ids = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => r1.start(Slow, { n: i }))
    yield* TestClock.adjust("1 second")
    yield* Scope.close(scope, Exit.void)
    world.hold = false
    return ids
  })

describe("Recovery reads the executions to resume a page at a time", () => {
  it.effect("a page of ids when the queue is used up and the window has room, never all of them at once", () =>
    Effect.gen(function*() {
      const memory = yield* Store.makeMemory
      const ids = yield* inFlight(memory, 1_200)
      const { log, store } = recording(memory)
      const scope = yield* Scope.make()
      // a window of 100: the rest start as those end
      const r2 = yield* runtimeOn(store, scope, 100)
      for (const id of ids) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      assert.strictEqual(log.active, 0)
      // pages of 500 (a page of snapshots: more than the window's 100), each read once the one before was resumed
      assert.deepStrictEqual(log.pages, [
        { limit: 500, read: 500, resumedBefore: 0 },
        { limit: 500, read: 500, resumedBefore: 500 },
        { limit: 500, read: 200, resumedBefore: 1_000 }
      ])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("an outage while reading a page is waited out", () =>
    Effect.gen(function*() {
      const memory = yield* Store.makeMemory
      const ids = yield* inFlight(memory, 700)
      // the second page's first read fails
      const { log, store } = recording(memory, new Set([1]))
      const scope = yield* Scope.make()
      const r2 = yield* runtimeOn(store, scope, 500)
      // once the first page has run and the read of the next failed, it is tried again after 100 ms
      for (let turns = 0; log.failed === 0 && turns < 100_000; turns++) yield* eventLoopTurn
      assert.strictEqual(log.failed, 1)
      assert.strictEqual(log.pages.length, 1)
      yield* TestClock.adjust("100 millis")
      for (const id of ids) assert.strictEqual((yield* r2.await(id)).status, "succeeded")
      assert.strictEqual(log.failed, 1)
      assert.deepStrictEqual(log.pages.map((p) => p.read), [500, 200])
      yield* Scope.close(scope, Exit.void)
    }))
})
