/**
 * Runs `Runtime.layer({ plugins })`: a bounded queue and a fiber per plugin, fed from two
 * places that see everything committed without the run loop knowing — the store, wrapped
 * (`create` and `commit` give `Transition` records, committed error entries `Error` records),
 * and the service, wrapped (an accepted `send` or command gives a `Request` record, from the
 * caller's fiber, where `Plugin.requestedBy` says who asked).
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, FiberId, FiberRef, Metric, Queue } from "effect"
import type { Scope } from "effect"
import type { Command, ErrorEntry, Snapshot, Transition } from "../Execution.js"
import type { Plugin, Record } from "../Plugin.js"
import { requestedBy } from "../Plugin.js"
import type { RuntimeService } from "../Runtime.js"
import type { StoreService } from "../Store.js"

const dropped = Metric.counter("proctor_plugin_dropped", { description: "records a plugin's full queue did not take, by plugin" })
const failures = Metric.counter("proctor_plugin_failures", { description: "plugin calls that failed or timed out, by plugin" })

/** Offers a record to every plugin; never waits. */
export type Dispatch = (record: Record) => void

/**
 * Starts a fiber per plugin in the scope. Closing the scope gives each plugin up to its
 * `drain` to take what is queued (the runtime's own fibers have stopped by then), then
 * interrupts it.
 */
export const start = (plugins: ReadonlyArray<Plugin>): Effect.Effect<Dispatch, never, Scope.Scope> =>
  Effect.gen(function*() {
    const feeds = yield* Effect.forEach(plugins, (plugin) =>
      Effect.gen(function*() {
        const queue = yield* Queue.dropping<Record>(plugin.queue ?? 10_000)
        const drops = Metric.tagged(dropped, "plugin", plugin.name)
        const fails = Metric.tagged(failures, "plugin", plugin.name)
        const timeout = Duration.decode(plugin.timeout ?? "5 seconds")
        const batch = plugin.batch ?? 512
        const drain = plugin.drain ?? "2 seconds"
        const handleOnce = (records: ReadonlyArray<Record>) =>
          Effect.suspend(() => plugin.handle(records)).pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new Error(`took longer than ${Duration.format(timeout)}; its records were skipped`)
            }),
            Effect.catchAllCause((cause) =>
              Cause.isInterruptedOnly(cause) ? Effect.void : Effect.zipRight(
                fails(Effect.succeed(1)),
                Effect.logError(`Plugin ${plugin.name} failed on ${records.length} record(s); executions carry on`, cause)
              ))
          )
        // records offered and not yet handled: closing waits for none (bounded by `drain`, in real time)
        let pending = 0
        let idle = Deferred.unsafeMake<void>(FiberId.none)
        const loop = Effect.forever(Effect.flatMap(Queue.takeBetween(queue, 1, batch), (chunk) =>
          Effect.ensuring(handleOnce([...chunk]), Effect.sync(() => {
            pending -= chunk.length
            if (pending === 0) Deferred.unsafeDone(idle, Exit.void)
          }))))
        yield* Effect.forkScoped(loop)
        // runs before the fiber above is interrupted (finalizers run in reverse order); a
        // finalizer is uninterruptible, and the wait must not be, for its timeout to end it
        yield* Effect.addFinalizer(() =>
          pending === 0
            ? Effect.void
            : Effect.interruptible(Deferred.await(idle)).pipe(Effect.timeout(drain), Effect.ignore, Effect.withClock(Clock.make()))
        )
        return (record: Record) => {
          if (!queue.unsafeOffer(record)) return drops.unsafeUpdate(1, [])
          if (pending++ === 0) idle = Deferred.unsafeMake<void>(FiberId.none)
        }
      }))
    return (record: Record) => {
      for (const feed of feeds) feed(record)
    }
  })

/** The store, wrapped: what it commits is shown to the plugins once the commit returns. */
export const observeStore = (store: StoreService, dispatch: Dispatch): StoreService => {
  const transition = (commit: { readonly transition?: Transition | undefined; readonly snapshot: Snapshot }) =>
    commit.transition === undefined ? Effect.void : Effect.map(FiberRef.get(requestedBy), (by) =>
      dispatch({ _tag: "Transition", transition: commit.transition!, snapshot: commit.snapshot, by }))
  const errors = (entries: ReadonlyArray<ErrorEntry> | undefined) => {
    if (entries !== undefined) for (const entry of entries) dispatch({ _tag: "Error", entry })
  }
  return {
    ...store,
    create: (snapshot, first) =>
      Effect.tap(store.create(snapshot, first), (created) => created.created ? transition({ snapshot, transition: first }) : Effect.void),
    createWithin: store.createWithin === undefined ? undefined : (snapshot, first, limits) =>
      Effect.tap(store.createWithin!(snapshot, first, limits), (r) => r._tag === "Created" && r.created ? transition({ snapshot, transition: first }) : Effect.void),
    commit: (commit) => Effect.zipLeft(store.commit(commit), Effect.zipRight(transition(commit), Effect.sync(() => errors(commit.errors)))),
    appendErrors: (entries) => Effect.tap(store.appendErrors(entries), () => errors(entries))
  }
}

const tagOf = (event: unknown) =>
  typeof event === "object" && event !== null && "_tag" in event ? String((event as { _tag: unknown })._tag) : undefined

const request = (
  request: Extract<Record, { _tag: "Request" }>["request"],
  executionId: string,
  detail: string | undefined,
  seq: number | undefined,
  dispatch: Dispatch
) =>
  Effect.flatMap(FiberRef.get(requestedBy), (by) =>
    Effect.clockWith((clock) =>
      Effect.sync(() => dispatch({ _tag: "Request", request, executionId, by, detail, seq, at: clock.unsafeCurrentTimeMillis() }))
    ))

/** The service, wrapped: each accepted event and operator command is shown with who asked for it. */
export const observeService = (service: RuntimeService, dispatch: Dispatch): RuntimeService => {
  const after = (command: Command, id: string, detail?: string) => (snapshot: Snapshot) => request(command, id, detail, snapshot.seq, dispatch)
  return {
    ...service,
    send: (id, event) => Effect.tap(service.send(id, event), () => request("send", id, tagOf(event), undefined, dispatch)),
    sendAndWait: (id, event, options) =>
      Effect.tap(service.sendAndWait(id, event, options), (result) => request("send", id, tagOf(event), result.snapshot.seq, dispatch)),
    pause: (id) => Effect.tap(service.pause(id), after("pause", id)),
    resume: (id) => Effect.tap(service.resume(id), after("resume", id)),
    cancel: (id, options) => Effect.tap(service.cancel(id, options), after("cancel", id, options?.reason)),
    rollback: (id) => Effect.tap(service.rollback(id), after("rollback", id)),
    retry: (id) => Effect.tap(service.retry(id), after("retry", id)),
    skip: (id, state) => Effect.tap(service.skip(id, state), after("skip", id, state))
  }
}
