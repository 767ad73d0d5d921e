/**
 * The handlers of `ProctorApi`: each one calls the `Runtime` and nothing else.
 *
 * @since 0.1.0
 */
import type { HttpApiGroup } from "@effect/platform"
import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import type * as Procedure from "../Procedure.js"
import { Runtime } from "../Runtime.js"
import { ProcedureNotFound, ProctorApi } from "./Api.js"
import * as Metadata from "./Metadata.js"

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
      .handle("list", () => Effect.sync(() => runtime.procedures.map(info)))
      .handle("get", ({ path }) => Effect.map(findProcedure(runtime.procedures, path.name), info))
  }))

const ExecutionsLive = HttpApiBuilder.group(ProctorApi, "executions", (handlers) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime
    return handlers
      .handle("start", ({ payload }) =>
        Effect.gen(function*() {
          const procedure = yield* findProcedure(runtime.procedures, payload.procedure, payload.version)
          const id = yield* runtime.start(procedure, payload.input, payload.options)
          return yield* Effect.catchTag(runtime.get(id), "ExecutionNotFound", Effect.die)
        }))
      .handle("list", ({ urlParams }) =>
        runtime.list({
          ...(urlParams.status === undefined ? {} : { status: urlParams.status }),
          ...(urlParams.procedure === undefined ? {} : { procedure: urlParams.procedure }),
          ...(urlParams.state === undefined ? {} : { state: urlParams.state }),
          ...(urlParams.tenant === undefined ? {} : { tenant: urlParams.tenant }),
          limit: urlParams.limit ?? 100,
          offset: urlParams.offset ?? 0
        }))
      .handle("get", ({ path }) => runtime.get(path.id))
      .handle("history", ({ path, urlParams }) =>
        runtime.history(path.id, urlParams.tail === undefined ? undefined : { tail: urlParams.tail }))
      .handle("errors", ({ path }) => runtime.errors(path.id))
      .handle("send", ({ path, payload }) =>
        Effect.as(runtime.send(path.id, payload), { executionId: path.id, event: payload._tag, accepted: true as const }))
      .handle("pause", ({ path }) => runtime.pause(path.id))
      .handle("resume", ({ path }) => runtime.resume(path.id))
      .handle("cancel", ({ path }) => runtime.cancel(path.id))
      .handle("rollback", ({ path }) => runtime.rollback(path.id))
      .handle("retry", ({ path }) => runtime.retry(path.id))
      .handle("skip", ({ path, payload }) => runtime.skip(path.id, payload.state))
  }))

/**
 * Every handler of `ProctorApi`; needs a `Runtime`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  HttpApiGroup.ApiGroup<"proctor", "procedures"> | HttpApiGroup.ApiGroup<"proctor", "executions">,
  never,
  Runtime
> = Layer.mergeAll(ProceduresLive, ExecutionsLive)
