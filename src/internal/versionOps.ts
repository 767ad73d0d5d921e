/**
 * The runtime's operations on versions: `migrate` one execution (delivered to its actor,
 * which applies it between steps), `migrateAll` of a version, and `versions`, the executions
 * in flight per version. The rules of a migration are in `versions.ts`.
 */
import { Deferred, Effect, Either, FiberRef } from "effect"
import type { ExecutionNotFound, StoreError } from "../Errors.js"
import { InvalidTransition } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { requestedBy } from "../Plugin.js"
import type { StoreService } from "../Store.js"
import type { CommandError, Msg } from "./handle.js"
import type { MigrateAllOptions, MigrateOptions } from "./options.js"
import type { Compiled } from "./transition.js"
import * as Versions from "./versions.js"

export interface Deps {
  readonly store: StoreService
  readonly registry: ReadonlyMap<string, Compiled>
  readonly migrations: ReadonlyMap<string, Versions.Registered>
  readonly getSnapshot: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>
  readonly lookup: (snapshot: Snapshot) => Compiled | undefined
  readonly unavailable: (snapshot: Snapshot) => string
  readonly deliver: (id: string, msg: Msg) => Effect.Effect<void>
  /** runs a migration on the execution's owner (`Cluster.layer`: another runner's); `here` runs it on this runtime */
  readonly route: (id: string, to: number, here: Effect.Effect<Snapshot, CommandError>) => Effect.Effect<Snapshot, CommandError>
}

export const make = ({ deliver, getSnapshot, lookup, migrations, registry, route, store, unavailable }: Deps) => {
/** `Runtime.migrate` on this runtime: the actor serves it between steps, never stopping one. */
const migrateHere = (id: string, options: MigrateOptions) =>
  Effect.gen(function*() {
    const snapshot = yield* getSnapshot(id)
    const refused = Versions.refuseNow(snapshot, options.to)
    if (refused !== undefined) return yield* refused
    const registered = migrations.get(Versions.migrationKey(snapshot.procedure, snapshot.version, options.to))
    const hint = registered === undefined
      ? `No migration from version ${snapshot.version} to ${options.to} of ${snapshot.procedure} is declared; pass ` +
        `Procedure.migration(from, to, { state, context }) in Runtime.layer({ migrations }).`
      : lookup(snapshot) !== registered.from
      ? unavailable(snapshot)
      : undefined
    if (hint !== undefined) {
      return yield* new InvalidTransition({ executionId: id, operation: "migrate", status: snapshot.status, state: snapshot.state, hint })
    }
    const reply = yield* Deferred.make<Snapshot, CommandError>()
    yield* deliver(id, { _tag: "Migrate", migration: registered!, reply, by: yield* FiberRef.get(requestedBy) })
    return yield* Deferred.await(reply)
  })

const migrate = (id: string, options: MigrateOptions) => route(id, options.to, migrateHere(id, options))

const migrateAll = (procedure: string, options: MigrateAllOptions) =>
  Effect.gen(function*() {
    const migrated: Array<string> = []
    const refused: Array<{ readonly id: string; readonly reason: string }> = []
    const page = 500
    for (let offset = 0; ; offset += page) {
      const found = yield* store.list({ procedure, status: Versions.inFlight, limit: page, offset })
      const ids = found.filter((s) => s.version === options.from).map((s) => s.id)
      const results = yield* Effect.forEach(ids, (id) => Effect.either(migrate(id, { to: options.to })), { concurrency: 16 })
      for (const [i, result] of results.entries()) {
        if (Either.isRight(result)) migrated.push(ids[i]!)
        else if (result.left._tag === "StoreError") return yield* result.left
        else refused.push({ id: ids[i]!, reason: result.left.message })
      }
      // a migrated execution keeps its status: it stays in the list, and the pages do not shift
      if (found.length < page) break
    }
    return { migrated, refused }
  })

const versions = (procedure?: string) =>
  Effect.map(store.countByVersion({ procedure }), (counts) =>
    Versions.inFlightBy(counts, registry).filter((v) => procedure === undefined || v.procedure === procedure))

  return { migrate, migrateHere, migrateAll, versions }
}
