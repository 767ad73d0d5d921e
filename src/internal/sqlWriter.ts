/**
 * Group commit: every write of the store (commits, creates, enqueued events, error
 * entries) goes through ONE writer fiber fed by a queue. The writer takes all
 * that is queued (up to `maxBatchSize`), writes it in one transaction, and completes each
 * caller only after that transaction committed. When the writer is idle a
 * single write goes at once: there is no wait window.
 */
import { Effect, Exit, Fiber, Metric, MetricBoundaries } from "effect"
import type { ErrorEntry, Snapshot, Transition } from "../Execution.js"
import { StoreError } from "../Errors.js"
import type { Commit } from "../Store.js"
import type { LockWait } from "./sqlBusy.js"
import { isEnvironmental } from "./sqlErrors.js"
import type { Row } from "./sqlSchema.js"

/** One write, as queued for the writer. */
export type Op =
  | { readonly _tag: "Commit"; readonly commit: Commit }
  | { readonly _tag: "Create"; readonly snapshot: Snapshot; readonly transition: Transition }
  | { readonly _tag: "Enqueue"; readonly executionId: string; readonly event: unknown; readonly at: number }
  /** several events, all or none (`Store.enqueueAll`) */
  | { readonly _tag: "EnqueueAll"; readonly entries: ReadonlyArray<{ readonly executionId: string; readonly event: unknown; readonly at: number }> }
  | { readonly _tag: "AppendErrors"; readonly entries: ReadonlyArray<ErrorEntry> }

export interface CreateResult {
  readonly created: boolean
  readonly snapshot: Snapshot
}

/** The outcome of one op inside a batch that committed: a value, or a failure of that op alone (a `Conflict`). */
export type OpResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: StoreError }

export const succeed = (value: unknown): OpResult => ({ ok: true, value })
export const fail = (error: StoreError): OpResult => ({ ok: false, error })
export const done: OpResult = succeed(undefined)

/**
 * How a batch is written. `isolated: false` writes the batch with shared multi-row
 * statements; `isolated: true` puts each op in its own SAVEPOINT, so an op whose rows
 * the database rejects fails alone. Fails as a whole (nothing written) when the
 * transaction fails.
 */
export interface Backend {
  readonly writeBatch: (ops: ReadonlyArray<Op>, isolated: boolean) => Effect.Effect<ReadonlyArray<OpResult>, StoreError>
  /**
   * synchronous reads of the hot path (an execution's row, its inbox), where the backend has
   * them; they throw on failure. An execution's row comes as the values of `executionColumns`
   * in their order (see `valuesToSnapshot`).
   */
  readonly reads?: {
    readonly get: (id: string) => ReadonlyArray<unknown> | undefined
    readonly inbox: (id: string, limit: number) => ReadonlyArray<Row>
    /** the rows of these executions (those that exist), in any order */
    readonly many: (ids: ReadonlyArray<string>) => ReadonlyArray<ReadonlyArray<unknown>>
  } | undefined
  /** what the backend holds (a connection of its own), given back once the writer has ended */
  readonly close?: Effect.Effect<void> | undefined
}

export interface WriterOptions {
  readonly maxBatchSize: number
  readonly queueCapacity: number
  /** how a batch waits while another connection holds the database's write lock */
  readonly lockWait: LockWait
}

/** Writes per group-commit transaction: near 1 when idle, larger under load. */
export const batchSize = Metric.histogram(
  "proctor_store_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 11 }),
  "writes per group-commit transaction of the SQL store"
)

/**
 * A queued write and its caller, resumed through the callback of its `Effect.async`. Not a
 * `Deferred`: on the hot path its allocation (it copies the Effect prototype into every
 * instance) and the garbage were a third of the writer's cost.
 */
interface Item {
  readonly op: Op
  /** resumes the waiting caller; cleared once called, so a write is acknowledged once */
  resume: ((exit: Exit.Exit<unknown, StoreError>) => void) | undefined
}

const complete = (item: Item, exit: Exit.Exit<unknown, StoreError>): void => {
  const resume = item.resume
  item.resume = undefined
  if (resume !== undefined) resume(exit)
}

export interface Writer {
  readonly submit: (op: Op) => Effect.Effect<unknown, StoreError>
}

const closedError = (operation: string) =>
  new StoreError({
    kind: "Unavailable",
    operation,
    detail: "the store is closed (the scope of its layer ended) and did not write this. " +
      "Keep the store's layer open while the runtime runs."
  })

const operationOf = (op: Op): string =>
  op._tag === "Commit" ? "commit" : op._tag === "Create" ? "create" : op._tag === "Enqueue" || op._tag === "EnqueueAll" ? "enqueue" : "appendErrors"

/**
 * Starts the writer fiber in the current scope. Closing the scope stops taking new
 * writes, writes what is already queued, then fails whatever could not be written.
 */
export const make = Effect.fnUntraced(function*(backend: Backend, options: WriterOptions) {
  // the writes waiting for the writer, oldest first (at most `queueCapacity`), and past that
  // the ones waiting for room. Plain arrays, not an Effect `Queue`: its `Chunk`s per batch and
  // an Effect per offer were garbage on the hot path.
  let queue: Array<Item> = []
  let overflow: Array<Item> = []
  // the batch being written; failed with the rest if the writer ends without writing it
  let current: ReadonlyArray<Item> = []
  // resumes the writer when it waits for work
  let wake: (() => void) | undefined
  let closed = false

  const write = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const ops = items.map((item) => item.op)
      // a store that is closing stops waiting for a lock: its scope is not held up by another program
      const writeBatch = (isolated: boolean) => options.lockWait(backend.writeBatch(ops, isolated), () => closed)
      batchSize.unsafeUpdate(ops.length, [])
      return writeBatch(false).pipe(
        Effect.catchIf(
          (error) => ops.length > 1 && !isEnvironmental(error.kind),
          // some op's rows were rejected: write again, each op alone, so only that one fails
          () => writeBatch(true)
        ),
        Effect.catchAllDefect((defect) =>
          Effect.fail(
            new StoreError({
              kind: "Unknown",
              operation: "commit",
              detail: `the store's writer failed unexpectedly: ${String(defect)}. Nothing of this batch was written.`,
              cause: defect
            })
          )
        ),
        Effect.exit,
        Effect.map((exit) => {
          for (let i = 0; i < items.length; i++) {
            const item = items[i]!
            let result: Exit.Exit<unknown, StoreError>
            if (Exit.isSuccess(exit)) {
              const r = exit.value[i]
              result = r === undefined
                ? Exit.fail(new StoreError({ kind: "Unknown", operation: operationOf(item.op), detail: "the writer lost this write" }))
                : r === done
                ? Exit.void
                : r.ok
                ? Exit.succeed(r.value)
                : Exit.fail(r.error)
            } else {
              result = exit as Exit.Exit<never, StoreError>
            }
            complete(item, result)
          }
        })
      )
    })

  /** takes the next batch: up to `maxBatchSize` writes, oldest first */
  const take = (): ReadonlyArray<Item> => {
    const n = Math.min(queue.length, options.maxBatchSize)
    let batch: Array<Item>
    if (n === queue.length) {
      batch = queue
      queue = []
    } else {
      batch = queue.splice(0, n)
    }
    // writers waiting for room come in, in their order
    if (overflow.length > 0) {
      const room = options.queueCapacity - queue.length
      if (room >= overflow.length) {
        for (const item of overflow) queue.push(item)
        overflow = []
      } else if (room > 0) {
        for (const item of overflow.splice(0, room)) queue.push(item)
      }
    }
    return batch
  }

  // waits for one write, then takes whatever else is queued by now (the callers resumed by the
  // last batch have run and queued their next writes before the writer resumes)
  const takeBatch = Effect.async<ReadonlyArray<Item>>((resume) => {
    if (queue.length > 0 || closed) return resume(Effect.sync(take))
    wake = () => resume(Effect.sync(take))
    return Effect.sync(() => {
      wake = undefined
    })
  })
  const step = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      // only the wait for work is interruptible: a batch, once taken, is written and acknowledged whole
      const batch = yield* restore(takeBatch)
      if (batch.length > 0) {
        current = batch
        yield* write(batch)
        current = []
      }
      // once closed, the writer ends when the queue is empty (nothing new is admitted)
      return closed && queue.length === 0
    })
  )
  const loop = Effect.iterate(false, { while: (done) => !done, body: () => step })
  // the backends' statements make no spans (they are the store's own, not the app's): the
  // writer's fiber runs with the tracer off, set once here rather than around every batch
  // (`Effect.withTracerEnabled` around an effect costs a FiberRef change and its restore)
  const fiber = yield* Effect.forkScoped(Effect.withTracerEnabled(loop, false))

  // runs before the scope interrupts the writer (finalizers run in reverse order): the
  // writer writes what was queued before the close, then ends
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closed = true
      const idle = wake
      wake = undefined
      idle?.()
      yield* Fiber.await(fiber)
      if (backend.close !== undefined) yield* backend.close
      for (const items of [current, queue, overflow]) {
        for (const item of items) complete(item, Exit.fail(closedError(operationOf(item.op))))
      }
      current = []
      queue = []
      overflow = []
    })
  )

  const submit = (op: Op): Effect.Effect<unknown, StoreError> =>
    Effect.async<unknown, StoreError>((resume) => {
      if (closed) return resume(Exit.fail(closedError(operationOf(op))))
      const item: Item = { op, resume }
      if (queue.length < options.queueCapacity) queue.push(item)
      else overflow.push(item) // back-pressure: it waits for room
      const idle = wake
      if (idle !== undefined) {
        wake = undefined
        idle()
      }
    })

  return { submit } satisfies Writer
})
