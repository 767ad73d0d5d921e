/**
 * Group commit: every write of the store (commits, creates, enqueued events, error
 * entries) goes through ONE writer fiber fed by a bounded queue. The writer takes all
 * that is queued (up to `maxBatchSize`), writes it in one transaction, and completes each
 * caller's Deferred only after that transaction committed. When the writer is idle a
 * single write goes at once: there is no wait window.
 */
import { Deferred, Effect, Exit, Fiber, Metric, MetricBoundaries, Queue } from "effect"
import type { ErrorEntry, Snapshot, Transition } from "../Execution.js"
import { StoreError } from "../Errors.js"
import type { Commit, InboxEntry } from "../Store.js"
import { isEnvironmental } from "./sqlErrors.js"

/** One write, as queued for the writer. */
export type Op =
  | { readonly _tag: "Commit"; readonly commit: Commit }
  | { readonly _tag: "Create"; readonly snapshot: Snapshot; readonly transition: Transition }
  | { readonly _tag: "Enqueue"; readonly executionId: string; readonly event: unknown; readonly at: number }
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
}

export interface WriterOptions {
  readonly maxBatchSize: number
  readonly queueCapacity: number
}

/** Writes per group-commit transaction: near 1 when idle, larger under load. */
export const batchSize = Metric.histogram(
  "proctor_store_batch_size",
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 11 }),
  "writes per group-commit transaction of the SQL store"
)

interface Item {
  readonly op: Op
  readonly deferred: Deferred.Deferred<unknown, StoreError>
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
  op._tag === "Commit" ? "commit" : op._tag === "Create" ? "create" : op._tag === "Enqueue" ? "enqueue" : "appendErrors"

/**
 * Starts the writer fiber in the current scope. Closing the scope stops taking new
 * writes, writes what is already queued, then fails whatever could not be written.
 */
export const make = Effect.fnUntraced(function*(backend: Backend, options: WriterOptions) {
  const queue = yield* Queue.bounded<Item>(options.queueCapacity)
  // every submitted write until its Deferred is completed: nothing is left waiting at close
  const pending = new Set<Deferred.Deferred<unknown, StoreError>>()
  let closed = false

  const write = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const ops = items.map((item) => item.op)
      return Metric.update(batchSize, ops.length).pipe(
        Effect.zipRight(backend.writeBatch(ops, false)),
        Effect.catchIf(
          (error) => ops.length > 1 && !isEnvironmental(error.kind),
          // some op's rows were rejected: write again, each op alone, so only that one fails
          () => backend.writeBatch(ops, true)
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
        Effect.flatMap((exit) =>
          Effect.sync(() => {
            for (let i = 0; i < items.length; i++) {
              const item = items[i]!
              let result: Exit.Exit<unknown, StoreError>
              if (Exit.isSuccess(exit)) {
                const r = exit.value[i]
                result = r === undefined
                  ? Exit.fail(new StoreError({ kind: "Unknown", operation: operationOf(item.op), detail: "the writer lost this write" }))
                  : r.ok
                  ? Exit.succeed(r.value)
                  : Exit.fail(r.error)
              } else {
                result = exit as Exit.Exit<never, StoreError>
              }
              Deferred.unsafeDone(item.deferred, result)
              pending.delete(item.deferred)
            }
          })
        )
      )
    })

  // wait for one write, then take whatever else is queued by now (the callers resumed by the
  // last batch have run and queued their next writes before the writer resumes)
  const takeBatch = Effect.flatMap(Queue.take(queue), (first) =>
    Effect.map(Queue.takeUpTo(queue, options.maxBatchSize - 1), (rest) => [first, ...rest]))
  // a batch, once taken, is written and acknowledged whole: only the wait for work is interruptible
  const loop = Effect.forever(Effect.uninterruptibleMask((restore) => Effect.flatMap(restore(takeBatch), write)))
  const fiber = yield* Effect.forkScoped(loop)

  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closed = true
      yield* Fiber.interrupt(fiber)
      // write what was queued before the close, batch by batch (bounded: nothing new is accepted)
      for (let rounds = 0; rounds < 1 + Math.ceil(pending.size / options.maxBatchSize); rounds++) {
        const rest = Array.from(yield* Queue.takeUpTo(queue, options.maxBatchSize))
        if (rest.length === 0) break
        yield* write(rest)
      }
      yield* Queue.shutdown(queue)
      for (const deferred of pending) {
        Deferred.unsafeDone(deferred, Exit.fail(closedError("commit")))
      }
      pending.clear()
    })
  )

  const submit = (op: Op): Effect.Effect<unknown, StoreError> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(closedError(operationOf(op)))
      const deferred = Deferred.unsafeMake<unknown, StoreError>(fiber.id())
      pending.add(deferred)
      const item: Item = { op, deferred }
      // fast path: room in the queue; otherwise wait for room (back-pressure)
      const offered = queue.unsafeOffer(item) ? Effect.void : Queue.offer(queue, item)
      return Effect.zipRight(offered, Deferred.await(deferred))
    })

  return { submit } satisfies Writer
})
