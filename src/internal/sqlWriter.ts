/**
 * Group commit: every write of the store (commits, creates, enqueued events, error
 * entries) goes through ONE writer fiber fed by a bounded queue. The writer takes all
 * that is queued (up to `maxBatchSize`), writes it in one transaction, and completes each
 * caller only after that transaction committed. When the writer is idle a
 * single write goes at once: there is no wait window.
 */
import { Effect, Exit, Fiber, Metric, MetricBoundaries, Queue } from "effect"
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
  /** synchronous reads of the hot path (an actor's row, its inbox), where the backend has them; they throw on failure */
  readonly reads?: {
    readonly get: (id: string) => Row | undefined
    readonly inbox: (id: string, limit: number) => ReadonlyArray<Row>
  } | undefined
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
 * A queued write and its caller. Not a `Deferred`: on the hot path its allocation (it copies
 * the Effect prototype into every instance) and the garbage were a third of the writer's cost.
 */
interface Item {
  readonly op: Op
  /** the outcome, once the writer has it */
  exit: Exit.Exit<unknown, StoreError> | undefined
  /** resumes the waiting caller, once it waits */
  resume: ((exit: Exit.Exit<unknown, StoreError>) => void) | undefined
}

const complete = (item: Item, exit: Exit.Exit<unknown, StoreError>): void => {
  if (item.exit !== undefined) return
  item.exit = exit
  const resume = item.resume
  item.resume = undefined
  if (resume !== undefined) resume(exit)
}

/** Queued by the close to wake an idle writer. */
const stop: unique symbol = Symbol("proctor/SqlStore/stop")

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
  const queue = yield* Queue.bounded<Item | typeof stop>(options.queueCapacity)
  // every submitted write until it is completed: nothing is left waiting at close
  const pending = new Set<Item>()
  let closed = false

  const write = (items: ReadonlyArray<Item>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const ops = items.map((item) => item.op)
      // a store that is closing stops waiting for a lock: its scope is not held up by another program
      const writeBatch = (isolated: boolean) => options.lockWait(backend.writeBatch(ops, isolated), () => closed)
      return Metric.update(batchSize, ops.length).pipe(
        Effect.zipRight(writeBatch(false)),
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
        Effect.flatMap((exit) =>
          Effect.sync(() => {
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
              pending.delete(item)
              complete(item, result)
            }
          })
        )
      )
    })

  // wait for one write, then take whatever else is queued by now (the callers resumed by the
  // last batch have run and queued their next writes before the writer resumes)
  const takeBatch = Effect.flatMap(Queue.take(queue), (first) =>
    Effect.map(Queue.takeUpTo(queue, options.maxBatchSize - 1), (rest) => [first, ...rest]))
  const step = Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      // only the wait for work is interruptible: a batch, once taken, is written and acknowledged whole
      const batch = yield* restore(takeBatch)
      const items = batch.filter((item): item is Item => item !== stop)
      if (items.length > 0) yield* write(items)
      // once closed, the writer ends when the queue is empty (nothing new is admitted)
      return closed && (yield* Queue.size(queue)) <= 0
    })
  )
  const loop = Effect.iterate(false, { while: (done) => !done, body: () => step })
  const fiber = yield* Effect.forkScoped(loop)

  // runs before the scope interrupts the writer (finalizers run in reverse order): the
  // writer writes what was queued before the close, then ends
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      closed = true
      queue.unsafeOffer(stop) // wakes an idle writer; a full queue means it is busy and sees `closed`
      yield* Fiber.await(fiber)
      yield* Queue.shutdown(queue)
      for (const item of pending) complete(item, Exit.fail(closedError(operationOf(item.op))))
      pending.clear()
    })
  )

  const submit = (op: Op): Effect.Effect<unknown, StoreError> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(closedError(operationOf(op)))
      const item: Item = { op, exit: undefined, resume: undefined }
      pending.add(item)
      const wait = Effect.async<unknown, StoreError>((resume) => {
        if (item.exit !== undefined) resume(item.exit)
        else item.resume = resume
      })
      // fast path: room in the queue; otherwise wait for room (back-pressure)
      return queue.unsafeOffer(item) ? wait : Effect.zipRight(Queue.offer(queue, item), wait)
    })

  return { submit } satisfies Writer
})
