/**
 * Routing for `Cluster.layer`: any runner can be asked about any execution, and what must run
 * on the execution's owner goes there. Each execution is an @effect/cluster entity of type
 * `proctor/Execution` (its id is the execution id, so its shard is the execution's shard);
 * its messages are not persisted (Proctor's store and inbox are the durable record) and only
 * carry a request to the owner's runtime: wake the execution (after a `start` or a `send`
 * here), run an operator command or a version migration (`migrate`), wait for the end,
 * send an event and wait for its outcome. The entity holds no state of its own: the owner's
 * actor runs the execution as on one process.
 *
 * A runner answers locally when it holds the shard (in the cluster and in the fenced
 * store), and sends the message otherwise; a refusal because the shard moved meanwhile
 * (`Fenced`), a runner that does not answer, or a shard with no owner yet are tried again,
 * for at most `requestTimeout`.
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import type * as Sharding from "@effect/cluster/Sharding"
import * as ShardId from "@effect/cluster/ShardId"
import * as Rpc from "@effect/rpc/Rpc"
import { Duration, Effect, FiberRef, FiberSet, Option, Schedule, Schema } from "effect"
import { ExecutionNotFound, InvalidTransition, SendTimeout, StoreError, ValidationError, VersionConflict } from "../Errors.js"
import type { Snapshot as SnapshotType } from "../Execution.js"
import { isTerminal, Snapshot } from "../Execution.js"
import { requestedBy } from "../Plugin.js"
import type { StoreService } from "../Store.js"
import type { Holder, Router, RuntimeHooks, SendAndWaitError } from "./clusterHooks.js"
import type { SendResult as SendResultType } from "./eventWaiters.js"
import type { CommandError } from "./handle.js"

const CommandInput = Schema.Union(
  Schema.TaggedStruct("Pause", {}),
  Schema.TaggedStruct("Resume", {}),
  Schema.TaggedStruct("Cancel", { reason: Schema.optional(Schema.String) }),
  Schema.TaggedStruct("Rollback", { compensable: Schema.Boolean, undo: Schema.optional(Schema.String) }),
  Schema.TaggedStruct("Retry", {}),
  Schema.TaggedStruct("Skip", { state: Schema.String }),
  Schema.TaggedStruct("Compensate", { stepSeq: Schema.Number })
)

const SendResult = Schema.Union(
  Schema.TaggedStruct("Consumed", { snapshot: Snapshot }),
  Schema.TaggedStruct("Discarded", { snapshot: Snapshot, reason: Schema.Struct({ tag: Schema.String, message: Schema.String }) })
)

/** the entity of an execution: what other runners ask its owner */
export const Execution = Entity.make("proctor/Execution", [
  Rpc.make("Wake"),
  Rpc.make("Command", {
    // `by`: who asked, for the plugins of the runner that commits the transition (as in Migrate)
    payload: { input: CommandInput, by: Schema.optional(Schema.String) },
    success: Snapshot,
    error: Schema.Union(InvalidTransition, ExecutionNotFound, StoreError)
  }),
  // `Runtime.migrate` to version `to`
  Rpc.make("Migrate", {
    payload: { to: Schema.Number, by: Schema.optional(Schema.String) },
    success: Snapshot,
    error: Schema.Union(InvalidTransition, ExecutionNotFound, StoreError)
  }),
  // the final snapshot, or null when it has not ended within `waitMillis` (the caller asks again)
  Rpc.make("Await", {
    payload: { waitMillis: Schema.Number },
    success: Schema.NullOr(Snapshot),
    error: Schema.Union(ExecutionNotFound, StoreError)
  }),
  Rpc.make("SendAndWait", {
    payload: { event: Schema.Unknown, expectVersion: Schema.optional(Schema.Number), timeoutMillis: Schema.optional(Schema.Number) },
    success: SendResult,
    error: Schema.Union(ExecutionNotFound, ValidationError, InvalidTransition, VersionConflict, SendTimeout, StoreError)
  })
]).annotateRpcs(ClusterSchema.Persisted, false)

/** Which shards this runner may run: those the cluster gave it and the fenced store claimed. */
export interface Ownership {
  readonly held: ReadonlySet<number>
  readonly shardOf: (id: string) => number
}

/** whether this runner runs the execution now */
const owns = (sharding: Sharding.Sharding["Type"], ownership: Ownership, id: string) => {
  const shard = ownership.shardOf(id)
  return ownership.held.has(shard) && sharding.hasShardId(ShardId.make("default", shard))
}

/** a message reached a runner that does not own the execution: nothing was done, the sender asks again */
const movedAway = (id: string, operation: string) =>
  new StoreError({
    kind: "Fenced",
    operation: "route",
    detail: `${operation} of execution ${id} reached a runner that does not own its shard (yet, or any more): nothing was done, ask again`
  })
const isMovedAway = (e: unknown): boolean => e instanceof StoreError && e.kind === "Fenced" && e.operation === "route"

/**
 * The handlers of the messages routed to this runner: each waits (at most `claimWithin`)
 * until the ownership loop has claimed the execution's shard in the store, then runs the
 * operation on this runtime.
 */
/** on behalf of who asked (`Plugin.requestedBy`): the owner's plugins see `by` with the transition */
const asked = <A, E>(effect: Effect.Effect<A, E>, by: string | undefined) => by === undefined ? effect : Effect.locally(effect, requestedBy, by)

export const handlers = (holder: Holder, sharding: Sharding.Sharding["Type"], ownership: Ownership, claimWithin: Duration.Duration) =>
  Execution.toLayer(
    Effect.gen(function*() {
      const address = yield* Entity.CurrentAddress
      const id = String(address.entityId)
      const runtime = (operation: string): Effect.Effect<RuntimeHooks, StoreError> =>
        Effect.suspend(() => owns(sharding, ownership, id) && holder.current !== undefined ? Effect.succeed(holder.current) : Effect.fail(movedAway(id, operation))).pipe(
          Effect.retry({ schedule: Schedule.spaced("20 millis"), while: (e) => e.kind === "Fenced" && sharding.hasShardId(address.shardId) }),
          Effect.timeoutFail({ duration: claimWithin, onTimeout: () => movedAway(id, operation) })
        )
      return Execution.of({
        Wake: () => Effect.ignore(Effect.flatMap(runtime("wake"), (r) => r.activate(id))),
        Command: ({ payload }) => Effect.flatMap(runtime(payload.input._tag.toLowerCase()), (r) => asked(r.command(id, payload.input), payload.by)),
        Migrate: ({ payload }) => Effect.flatMap(runtime("migrate"), (r) => asked(r.migrate(id, payload.to), payload.by)),
        Await: ({ payload }) =>
          Effect.flatMap(runtime("await"), (r) =>
            r.await(id).pipe(
              Effect.map((s): SnapshotType | null => s),
              // the wait ends early when the shard leaves this runner: the caller asks the new owner
              Effect.raceFirst(Effect.as(untilNotOwned(sharding, ownership, id), null)),
              Effect.timeoutTo({ duration: payload.waitMillis, onTimeout: () => null, onSuccess: (s) => s })
            )),
        SendAndWait: ({ payload }) =>
          Effect.flatMap(runtime("sendAndWait"), (r) =>
            r.sendAndWait(id, payload.event, {
              expectVersion: payload.expectVersion,
              timeout: payload.timeoutMillis === undefined ? undefined : Duration.millis(payload.timeoutMillis)
            }))
      })
    }),
    // the entity only passes requests on: it may leave memory soon, and serves them all at once
    { concurrency: "unbounded", maxIdleTime: "30 seconds" }
  )

const untilNotOwned = (sharding: Sharding.Sharding["Type"], ownership: Ownership, id: string) =>
  Effect.repeat(Effect.sync(() => owns(sharding, ownership, id)), { while: (own) => own, schedule: Schedule.spaced("100 millis") })

/** a failure that asks for another try: the shard moved, its runner did not answer, no runner owns it yet */
class Again {
  readonly _tag = "Again"
  constructor(readonly reason: string) {}
}

export interface RouterOptions {
  readonly store: StoreService
  /** how long one try waits for a runner (about a lease: by then a dead owner's shards have moved) */
  readonly attempt: Duration.Duration
  /** how long an operation tries before it fails with `Unavailable` */
  readonly requestTimeout: Duration.Duration
}

/**
 * The router of `Cluster.layer`'s runtime. Wakes go out without waiting for an answer, in a
 * FiberSet of the layer's scope (bounded by `attempt`): the owner's scan of its shards finds
 * the execution anyway if a wake is lost.
 */
export const makeRouter = (sharding: Sharding.Sharding["Type"], ownership: Ownership, options: RouterOptions) =>
  Effect.gen(function*() {
    const client = yield* Execution.client
    const wakes = yield* FiberSet.make()
    const run = yield* FiberSet.runtime(wakes)<never>()
    const here = (id: string) => owns(sharding, ownership, id)
    const attemptMillis = Duration.toMillis(options.attempt)

    /** one try on the owner: our typed errors pass, the rest asks for another try */
    const remote = <A, E>(id: string, call: Effect.Effect<A, E | unknown>, isOurs: (e: unknown) => e is E, millis = attemptMillis) =>
      call.pipe(
        Effect.timeoutFail({ duration: millis, onTimeout: () => new Again(`no answer from the owner of execution ${id} within ${millis} ms`) }),
        Effect.catchAllDefect((defect) => Effect.fail(new Again(String(defect)))),
        Effect.catchAll((e): Effect.Effect<never, E | Again> =>
          Effect.fail(e instanceof Again ? e : isOurs(e) && !isMovedAway(e) ? e : new Again(String(e))))
      )
    // a commit refused because the shard moved meanwhile: nothing was done, the new owner is asked
    const local = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.catchIf(effect, isFenced, (e) => Effect.fail(new Again((e as StoreError).detail)))

    /** tries until an answer that is not `Again`, for at most `requestTimeout` */
    const persist = <A, E>(id: string, operation: string, once: Effect.Effect<A, E | Again>): Effect.Effect<A, E | StoreError> =>
      once.pipe(
        Effect.retry({ while: (e) => e instanceof Again, schedule: Schedule.spaced("100 millis") }),
        Effect.timeoutFail({
          duration: options.requestTimeout,
          onTimeout: () => unavailable(id, operation, options.requestTimeout)
        }),
        Effect.catchIf((e): e is Again => e instanceof Again, (e) => Effect.fail(unavailable(id, operation, options.requestTimeout, e.reason)))
      ) as Effect.Effect<A, E | StoreError>

    /** an operation that changes the execution (a command, a migration): on its owner, tried until one answers */
    const onOwner = <A>(
      id: string,
      operation: string,
      onHere: Effect.Effect<A, CommandError>,
      there: () => Effect.Effect<A, unknown>
    ): Effect.Effect<A, CommandError> =>
      persist(id, operation, Effect.suspend(() => here(id) ? local(onHere) : remote(id, there(), isCommandError)))

    const router: Router = {
      wake: (id, wakeHere) =>
        here(id) ? wakeHere : Effect.asVoid(Effect.sync(() =>
          run(client(id).Wake(undefined, { discard: true }).pipe(
            Effect.timeout(options.attempt),
            Effect.catchAllCause((cause) => Effect.logDebug(`Cluster: could not wake execution ${id} on its owner; its scan will`, cause))
          ))
        )),
      command: (id, input, commandHere) =>
        Effect.flatMap(FiberRef.get(requestedBy), (by) => onOwner(id, input._tag.toLowerCase(), commandHere, () => client(id).Command({ input, by }))),
      migrate: (id, to, migrateHere) => Effect.flatMap(FiberRef.get(requestedBy), (by) => onOwner(id, "migrate", migrateHere, () => client(id).Migrate({ to, by }))),
      await: (id, awaitHere) => {
        const wait = Math.min(attemptMillis, 5_000)
        const once: Effect.Effect<SnapshotType | null, ExecutionNotFound | StoreError | Again> = Effect.suspend(() =>
          here(id)
            ? Effect.raceFirst(local(awaitHere), Effect.as(untilNotOwned(sharding, ownership, id), null))
            : remote(id, client(id).Await({ waitMillis: wait }), isAwaitError, wait + attemptMillis)
        )
        // an unanswered try looks in the store: the execution may have ended meanwhile
        const ended = Effect.map(options.store.get(id), (found) => Option.isSome(found) && isTerminal(found.value.status) ? found.value : null)
        const loop: Effect.Effect<SnapshotType, ExecutionNotFound | StoreError> = Effect.flatMap(
          Effect.catchIf(once, (e): e is Again => e instanceof Again, () => Effect.zipLeft(ended, Effect.sleep("100 millis"))),
          (s) => s === null ? loop : Effect.succeed(s)
        )
        return loop
      },
      // tried again only when the message reached a runner that did nothing (`isMovedAway`): once the
      // owner may have put the event in the inbox, sending it again could put it there twice
      sendAndWait: (id, event, opts, sendHere) => {
        const timeout = opts?.timeout === undefined ? undefined : Duration.decode(opts.timeout)
        const send = client(id).SendAndWait({
          event,
          expectVersion: opts?.expectVersion,
          timeoutMillis: timeout === undefined ? undefined : Duration.toMillis(timeout)
        }).pipe(Effect.retry({ while: isMovedAway, schedule: Schedule.spaced("100 millis") }))
        const within = timeout === undefined ? options.requestTimeout : Duration.sum(timeout, options.attempt)
        return here(id) ? sendHere : send.pipe(
          Effect.timeoutFail({ duration: within, onTimeout: () => unavailable(id, "sendAndWait", within) }),
          Effect.catchAllDefect((defect) => Effect.fail(unavailable(id, "sendAndWait", within, String(defect)))),
          Effect.catchAll((e) => Effect.fail(isSendError(e) ? e : unavailable(id, "sendAndWait", within, String(e))))
        ) as Effect.Effect<SendResultType, SendAndWaitError>
      }
    }
    return router
  })

const isFenced = (e: unknown): boolean => e instanceof StoreError && e.kind === "Fenced"
const isCommandError = (e: unknown): e is InvalidTransition | ExecutionNotFound | StoreError =>
  e instanceof InvalidTransition || e instanceof ExecutionNotFound || e instanceof StoreError
const isAwaitError = (e: unknown): e is ExecutionNotFound | StoreError => e instanceof ExecutionNotFound || e instanceof StoreError
const isSendError = (e: unknown): e is SendAndWaitError =>
  isCommandError(e) || e instanceof ValidationError || e instanceof VersionConflict || e instanceof SendTimeout

const unavailable = (id: string, operation: string, timeout: Duration.Duration, reason?: string) =>
  new StoreError({
    kind: "Unavailable",
    operation,
    detail: `no runner answered for execution ${id} within ${Duration.format(timeout)}${reason === undefined ? "" : ` (${reason})`}: ` +
      `the runner that owns its shard may be down, and its shards move to another runner after the lease. Try again.`
  })
