/**
 * The handlers of `ProctorApi`: each one calls the `Runtime` and nothing else.
 *
 * @since 0.1.0
 */
import type { HttpApiGroup } from "@effect/platform"
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Layer, Schema } from "effect"
import type { QuotaExceeded } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import { allowedOperations } from "../Execution.js"
import { fingerprint } from "../internal/transition.js"
import type * as Procedure from "../Procedure.js"
import type { RolloutOptions } from "../Runtime.js"
import { Runtime } from "../Runtime.js"
import { ProcedureNotFound, ProctorApi, QuotaExceededWire } from "./Api.js"
import * as Metadata from "../internal/describe.js"

/**
 * The registered procedure called `name` (at `version`, or its latest version).
 *
 * @since 0.1.0
 * @category getters
 */
export const findProcedure = (
  procedures: ReadonlyArray<Procedure.Any>,
  name: string,
  version?: number | undefined
): Effect.Effect<Procedure.Any, ProcedureNotFound> => {
  let found: Procedure.Any | undefined
  for (const p of procedures) {
    if (p.name !== name) continue
    if (version !== undefined ? p.version === version : found === undefined || p.version > found.version) found = p
  }
  return found !== undefined
    ? Effect.succeed(found)
    : Effect.fail(
      new ProcedureNotFound({
        procedure: version === undefined ? name : `${name}@${version}`,
        known: procedures.map((p) => `${p.name}@${p.version}`)
      })
    )
}

/**
 * What an execution accepts now, by the definition this server runs it on: nothing when
 * that definition is not registered, or has another shape than the one the execution
 * started on (the runtime refuses every operation on it then).
 */
const allowedBy = (procedures: ReadonlyArray<Procedure.Any>) => {
  const shapes = new Map<Procedure.Any, string>()
  return (snapshot: Snapshot) => {
    const def = procedures.find((p) => p.name === snapshot.procedure && p.version === snapshot.version)
    if (def === undefined) return { commands: [], events: [] }
    let shape = shapes.get(def)
    if (shape === undefined) shapes.set(def, shape = fingerprint(def))
    return snapshot.fingerprint !== undefined && snapshot.fingerprint !== shape ? { commands: [], events: [] } : allowedOperations(snapshot, def)
  }
}

const ProceduresLive = HttpApiBuilder.group(ProctorApi, "procedures", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const infos = new Map<Procedure.Any, Metadata.ProcedureInfo>()
    const info = (p: Procedure.Any) => {
      let i = infos.get(p)
      if (i === undefined) infos.set(p, i = Metadata.describe(p))
      return i
    }
    return handlers
      .handle("list", () =>
        Effect.map(runtime.versions(), (versions) =>
          runtime.procedures.map((p) => ({
            ...info(p),
            inFlight: versions.find((v) => v.procedure === p.name && v.version === p.version)?.inFlight ?? 0
          }))))
      .handle("migrate", ({ path, payload }) => runtime.migrateAll(path.name, payload))
      .handle("get", ({ path }) => Effect.map(findProcedure(runtime.procedures, path.name), info))
      .handle("dependencies", () => runtime.dependencies)
  }))

/** A start over a quota: the typed error as the API encodes it, with a Retry-After header (whole seconds). */
const tooManyRequests = (error: QuotaExceeded) =>
  Effect.map(Schema.encode(QuotaExceededWire)(error).pipe(Effect.orDie), (body) =>
    HttpServerResponse.unsafeJson(body, {
      status: 429,
      headers: { "retry-after": String(Math.max(1, Math.ceil(Duration.toSeconds(error.retryAfter)))) }
    }))

const ExecutionsLive = HttpApiBuilder.group(ProctorApi, "executions", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    const allowed = allowedBy(runtime.procedures)
    return handlers
      .handle("start", ({ payload }) =>
        Effect.gen(function*() {
          const procedure = yield* findProcedure(runtime.procedures, payload.procedure, payload.version)
          const id = yield* runtime.start(procedure, payload.input, payload.options)
          return yield* Effect.catchTag(runtime.get(id), "ExecutionNotFound", Effect.die)
        }).pipe(Effect.catchTag("QuotaExceeded", tooManyRequests)))
      .handle("list", ({ urlParams }) =>
        runtime.list({
          ...(urlParams.status === undefined ? {} : { status: urlParams.status }),
          ...(urlParams.procedure === undefined ? {} : { procedure: urlParams.procedure }),
          ...(urlParams.state === undefined ? {} : { state: urlParams.state }),
          ...(urlParams.tenant === undefined ? {} : { tenant: urlParams.tenant }),
          ...(urlParams.parentId === undefined ? {} : { parentId: urlParams.parentId }),
          limit: urlParams.limit ?? 100,
          offset: urlParams.offset ?? 0
        }))
      .handle("get", ({ path }) =>
        Effect.flatMap(runtime.get(path.id), (s) =>
          Effect.map(runtime.configuration(s), (configuration) => ({ ...s, allowed: allowed(s), configuration }))))
      .handle("history", ({ path, urlParams }) =>
        runtime.history(path.id, urlParams.tail === undefined ? undefined : { tail: urlParams.tail }))
      .handle("errors", ({ path }) => runtime.errors(path.id))
      .handle("send", ({ path, payload }) =>
        Effect.as(runtime.send(path.id, payload), { executionId: path.id, event: payload._tag, accepted: true as const }))
      .handle("pause", ({ path }) => runtime.pause(path.id))
      .handle("resume", ({ path }) => runtime.resume(path.id))
      .handle("cancel", ({ path, payload }) =>
        runtime.cancel(path.id, payload?.reason === undefined ? undefined : { reason: payload.reason }))
      .handle("rollback", ({ path }) => runtime.rollback(path.id))
      .handle("retry", ({ path }) => runtime.retry(path.id))
      .handle("skip", ({ path, payload }) => runtime.skip(path.id, payload.state))
      .handle("migrate", ({ path, payload }) => runtime.migrate(path.id, payload))
  }))

const RolloutsLive = HttpApiBuilder.group(ProctorApi, "rollouts", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    return handlers
      .handle("list", ({ urlParams }) => runtime.rollouts(urlParams.procedure))
      .handle("start", ({ payload: { procedure, from, to, ...options } }) =>
        Effect.gen(function*() {
          const old = yield* findProcedure(runtime.procedures, procedure, from)
          yield* findProcedure(runtime.procedures, procedure, to)
          // the durations are strings the runtime decodes (a ValidationError, 400, when one is not a duration)
          return yield* runtime.rollout(old, { to, ...options } as RolloutOptions)
        }))
      .handle("control", ({ path, payload }) => runtime.controlRollout(path.name, path.control, payload ?? undefined))
  }))

/**
 * Every handler of `ProctorApi`; needs a `Runtime`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  HttpApiGroup.ApiGroup<"proctor", "procedures"> | HttpApiGroup.ApiGroup<"proctor", "executions"> | HttpApiGroup.ApiGroup<"proctor", "rollouts">,
  never,
  Runtime
> = Layer.mergeAll(ProceduresLive, ExecutionsLive, RolloutsLive)
