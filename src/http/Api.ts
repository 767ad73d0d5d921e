/**
 * The HTTP API of Proctor, schema first: every endpoint mirrors a `Runtime` operation,
 * and every typed error maps to an HTTP status (400 bad input, 404 unknown id, 409 an
 * operation the execution's status does not allow). The OpenAPI document is derived
 * from these definitions (`OpenApi.fromApi(ProctorApi)`), and `HttpApiClient.make(ProctorApi)`
 * gives a typed client.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { identity, Option, Schema } from "effect"
import { AllowedOperations, ErrorEntry, maxReasonLength, Snapshot, Status, Transition } from "../Execution.js"
import * as Dependency from "../Dependency.js"
import { ProcedureInfo } from "../internal/describe.js"
import { RolloutStatus } from "../internal/rollout.js"

import {
  DefinitionErrorWire,
  ExecutionNotFoundWire,
  InvalidTransitionWire,
  PayloadTooLargeWire,
  ProcedureNotFoundWire,
  QuotaExceededWire,
  SendTimeoutWire,
  StoreErrorWire,
  UnauthorizedWire,
  ValidationErrorWire
} from "./ApiErrors.js"

export * from "./ApiErrors.js"

/**
 * One execution as `GET /api/executions/:id` returns it: the snapshot, `allowed`, what
 * it accepts now (`Execution.allowedOperations`; empty when the server does not run its
 * procedure's definition), and its whole active `configuration` (`Runtime.configuration`).
 *
 * @since 0.1.0
 * @category models
 */
export const ExecutionView = Schema.extend(
  Snapshot,
  Schema.Struct({
    allowed: AllowedOperations,
    /** the whole active configuration (`Runtime.configuration`): compound states, a chart's states, parallel regions */
    configuration: Schema.optional(Schema.Array(Schema.String))
  })
)

const id = HttpApiSchema.param("id", Schema.String)
const name = HttpApiSchema.param("name", Schema.String)

/**
 * What `POST /api/executions` takes.
 *
 * @since 0.1.0
 * @category models
 */
export const StartRequest = Schema.Struct({
  procedure: Schema.String.annotations({ description: "the procedure's name" }),
  version: Schema.optional(Schema.Number.annotations({ description: "a registered version; the latest by default" })),
  input: Schema.optional(Schema.Unknown.annotations({ description: "the input, as the procedure's input Schema encodes it" })),
  options: Schema.optional(Schema.Struct({
    id: Schema.optional(Schema.String),
    tenant: Schema.optional(Schema.String),
    idempotencyKey: Schema.optional(Schema.String),
    waitForQuota: Schema.optional(Schema.DurationFromMillis.annotations({
      description: "milliseconds to wait for room when the start is over a quota, instead of a 429 at once"
    }))
  }))
}).annotations({ identifier: "StartRequest" })

/**
 * An event: its `_tag` and its fields.
 *
 * @since 0.1.0
 * @category models
 */
export const EventBody = Schema.Struct(
  { _tag: Schema.String.annotations({ description: "the event's tag, e.g. Approve" }) },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
).annotations({ identifier: "Event" })

/**
 * What `POST /api/executions/:id/send` answers: the event is in the durable inbox.
 *
 * @since 0.1.0
 * @category models
 */
export const SendResult = Schema.Struct({
  executionId: Schema.String,
  event: Schema.String,
  accepted: Schema.Literal(true)
}).annotations({ identifier: "SendResult" })

const statusList = Schema.compose(Schema.split(","), Schema.Array(Status)).annotations({
  description: "one status or several separated by commas, e.g. running,waiting"
})
/**
 * An optional query parameter that is a whole number from 0 to `max`: an integer in the
 * OpenAPI document, decoded from digits only ("1.5", "1e3", "0x10" and "-3" are refused
 * with a 400), and absent when empty (`?limit=` is no limit, as a form leaves it).
 */
const intParam = (max: number, description: string) =>
  Schema.optionalToOptional(
    Schema.String.annotations({ jsonSchema: { type: "integer", minimum: 0, maximum: max, description } }),
    Schema.compose(
      Schema.String.pipe(Schema.pattern(/^[0-9]{1,16}$/, { message: () => "expected a whole number, e.g. 10", description })),
      Schema.NumberFromString
    ).pipe(Schema.between(0, max, { message: () => `expected a whole number from 0 to ${max}` })),
    { decode: Option.filter((s) => s !== ""), encode: identity }
  )

/**
 * The filters of `GET /api/executions`.
 *
 * @since 0.1.0
 * @category models
 */
export const ListParams = Schema.Struct({
  status: Schema.optional(statusList),
  procedure: Schema.optional(Schema.String),
  state: Schema.optional(Schema.String),
  tenant: Schema.optional(Schema.String),
  parentId: Schema.optional(Schema.String).annotations({ description: "only the children of this execution" }),
  limit: intParam(1000, "at most this many executions"),
  offset: intParam(1_000_000_000, "skip this many executions first")
})

/**
 * The longest `reason` `POST /api/executions/:id/cancel` takes, in characters: the core's
 * bound (`Execution.maxReasonLength`).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxCancelReason = maxReasonLength

/**
 * What `POST /api/executions/:id/cancel` takes, optionally (no body, an empty body or
 * `null` is no reason): `reason`, why it is cancelled, recorded on the history's `cancel`
 * row (`Transition.reason`) in the cancel's own commit.
 *
 * @since 0.1.0
 * @category models
 */
export const CancelRequest = Schema.Struct({
  reason: Schema.optional(
    Schema.String.pipe(
      Schema.minLength(1, { message: () => "reason is empty: leave it out, or say why, e.g. {\"reason\":\"the document was withdrawn\"}" }),
      Schema.maxLength(maxCancelReason, {
        message: () => `reason is longer than ${maxCancelReason} characters: send a shorter one`
      })
    ).annotations({ title: "reason", description: `why it is cancelled (1 to ${maxCancelReason} characters), recorded on the history's cancel row` })
  )
}).annotations({ identifier: "CancelRequest" })

/** The platform marks every request body required; the cancel's may be left out. */
const optionalBody = (op: Record<string, any>): Record<string, any> =>
  op.requestBody === undefined ? op : { ...op, requestBody: { ...op.requestBody, required: false } }

const operation = <const N extends "pause" | "resume" | "cancel" | "rollback" | "retry">(opName: N, summary: string) =>
  HttpApiEndpoint.post(opName, `/executions/:id/${opName}`)
    .setPath(Schema.Struct({ id: Schema.String }))
    .addSuccess(Snapshot)
    .addError(ExecutionNotFoundWire)
    .addError(InvalidTransitionWire)
    .addError(StoreErrorWire)
    .annotate(OpenApi.Summary, summary)

/**
 * What `POST /api/procedures/:name/migrate` did (`Runtime.MigrateReport`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MigrateReport = Schema.Struct({
  migrated: Schema.Array(Schema.String),
  refused: Schema.Array(Schema.Struct({ id: Schema.String, reason: Schema.String }))
}).annotations({ identifier: "MigrateReport" })

/**
 * Registered procedures, and the dependencies their steps call.
 *
 * @since 0.1.0
 * @category groups
 */
export class ProceduresGroup extends HttpApiGroup.make("procedures")
  .add(
    HttpApiEndpoint.get("list", "/procedures")
      .addSuccess(Schema.Array(ProcedureInfo))
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "The registered procedures, with diagrams, states and event Schemas, and how many executions run on each version")
  )
  .add(
    HttpApiEndpoint.post("migrate")`/procedures/${name}/migrate`
      .setPayload(Schema.Struct({ from: Schema.Int, to: Schema.Int }))
      .addSuccess(MigrateReport)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Migrate every execution of version `from` not ended to version `to` (a declared migration), each at a safe point")
  )
  .add(
    HttpApiEndpoint.get("get")`/procedures/${name}`
      .addSuccess(ProcedureInfo)
      .addError(ProcedureNotFoundWire)
      .annotate(OpenApi.Summary, "One procedure (its latest version)")
  )
  .add(
    HttpApiEndpoint.get("dependencies", "/dependencies")
      .addSuccess(Schema.Array(Dependency.Status))
      .annotate(OpenApi.Summary, "The dependencies the procedures' steps call: breaker state, bulkhead, rate limit (this process's)")
  )
  .prefix("/api")
{}

/**
 * Executions: start, drive and read them.
 *
 * @since 0.1.0
 * @category groups
 */
export class ExecutionsGroup extends HttpApiGroup.make("executions")
  .add(
    HttpApiEndpoint.post("start", "/executions")
      .setPayload(StartRequest)
      .addSuccess(Snapshot, { status: 201 })
      .addError(ProcedureNotFoundWire)
      .addError(ValidationErrorWire)
      .addError(InvalidTransitionWire)
      .addError(DefinitionErrorWire)
      .addError(QuotaExceededWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Start an execution; returns after its first row commits (429 with Retry-After over a quota)")
  )
  .add(
    HttpApiEndpoint.get("list", "/executions")
      .setUrlParams(ListParams)
      .addSuccess(Schema.Array(Snapshot))
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "List executions, filtered by status, procedure, state, tenant or parent")
  )
  .add(
    HttpApiEndpoint.get("get")`/executions/${id}`
      .addSuccess(ExecutionView)
      .addError(ExecutionNotFoundWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "One execution's snapshot, with the commands and events it accepts now")
  )
  .add(
    HttpApiEndpoint.get("history")`/executions/${id}/history`
      .setUrlParams(Schema.Struct({ tail: intParam(1_000_000, "only the last `tail` transitions") }))
      .addSuccess(Schema.Array(Transition))
      .addError(ExecutionNotFoundWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "An execution's transitions, oldest first (the last `tail` of them)")
  )
  .add(
    HttpApiEndpoint.get("errors")`/executions/${id}/errors`
      .addSuccess(Schema.Array(ErrorEntry))
      .addError(ExecutionNotFoundWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "An execution's error log")
  )
  .add(
    HttpApiEndpoint.post("send")`/executions/${id}/send`
      .setPayload(EventBody)
      .addSuccess(SendResult, { status: 202 })
      .addError(ExecutionNotFoundWire)
      .addError(ValidationErrorWire)
      .addError(InvalidTransitionWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Send an event; returns once it is in the durable inbox")
  )
  .add(operation("pause", "Pause a running or waiting execution"))
  .add(operation("resume", "Resume a paused execution"))
  .add(
    operation("cancel", "Cancel an execution (no compensation), with an optional reason")
      .setPayload(Schema.NullOr(CancelRequest))
      .annotate(OpenApi.Transform, optionalBody)
  )
  .add(operation("rollback", "Run the compensations of completed steps, then end rolled_back"))
  .add(operation("retry", "Run the current step again (an execution that needs intervention)"))
  .add(
    HttpApiEndpoint.post("migrate")`/executions/${id}/migrate`
      .setPayload(Schema.Struct({ to: Schema.Int }))
      .addSuccess(Snapshot)
      .addError(ExecutionNotFoundWire)
      .addError(InvalidTransitionWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Move an execution to another version by a declared migration, at a safe point (never during a step)")
  )
  .add(
    HttpApiEndpoint.post("skip")`/executions/${id}/skip`
      .setPayload(Schema.Struct({ state: Schema.String }))
      .addSuccess(Snapshot)
      .addError(ExecutionNotFoundWire)
      .addError(InvalidTransitionWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Move an execution to another state")
  )
  .prefix("/api")
{}

const duration = Schema.String.annotations({ description: "a duration, e.g. \"10 minutes\" or \"2 seconds\"" })

/**
 * What `POST /api/rollouts` takes (`Runtime.rollout`): the procedure, the version it rolls
 * out from and the one it rolls out to; the rest as `Runtime.rollout`'s options.
 *
 * @since 0.1.0
 * @category models
 */
export const RolloutRequest = Schema.Struct({
  procedure: Schema.String,
  from: Schema.Int.annotations({ description: "the version new starts go to now" }),
  to: Schema.Int.annotations({ description: "the new version" }),
  phases: Schema.optional(Schema.Array(Schema.Number).annotations({ description: "percent of new starts on the new version, per phase; default [1, 5, 25, 50, 100]" })),
  hold: Schema.optional(duration.annotations({ description: "how long each phase holds; default 10 minutes" })),
  revertWhen: Schema.optional(Schema.Struct({
    failureRate: Schema.optional(Schema.Number),
    minExecutions: Schema.optional(Schema.Int),
    p99: Schema.optional(Schema.Union(duration, Schema.Struct({ state: Schema.optional(duration), execution: Schema.optional(duration) }))),
    restarts: Schema.optional(Schema.Int)
  }))
}).annotations({ identifier: "RolloutRequest" })

/**
 * Phased rollouts of new versions (`Runtime.rollout`, `rollouts`, `controlRollout`).
 *
 * @since 0.1.0
 * @category groups
 */
export class RolloutsGroup extends HttpApiGroup.make("rollouts")
  .add(
    HttpApiEndpoint.get("list", "/rollouts")
      .setUrlParams(Schema.Struct({ procedure: Schema.optional(Schema.String) }))
      .addSuccess(Schema.Array(RolloutStatus))
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "The rollouts (of one procedure, or all), the latest first, with both versions' health")
  )
  .add(
    HttpApiEndpoint.post("start", "/rollouts")
      .setPayload(RolloutRequest)
      .addSuccess(RolloutStatus)
      .addError(ProcedureNotFoundWire)
      .addError(ValidationErrorWire)
      .addError(InvalidTransitionWire)
      .addError(ExecutionNotFoundWire)
      .addError(DefinitionErrorWire)
      .addError(QuotaExceededWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Start a phased rollout of a new version, reverted by itself when its health passes a threshold")
  )
  .add(
    HttpApiEndpoint.post("control")`/rollouts/${name}/${HttpApiSchema.param("control", Schema.Literal("pause", "resume", "advance", "revert"))}`
      .setPayload(Schema.NullOr(Schema.Struct({ reason: Schema.optional(Schema.String.annotations({ description: "why (revert)" })) })))
      .annotate(OpenApi.Transform, optionalBody)
      .addSuccess(RolloutStatus)
      .addError(ExecutionNotFoundWire)
      .addError(ValidationErrorWire)
      .addError(InvalidTransitionWire)
      .addError(SendTimeoutWire)
      .addError(StoreErrorWire)
      .annotate(OpenApi.Summary, "Pause, resume, advance or revert the rollout of a procedure under way")
  )
  .prefix("/api")
{}

/**
 * The bearer token of a server started with one (`--token`, `PROCTOR_TOKEN`), as an
 * OpenAPI security scheme: `/docs` shows an Authorize button and "try it out" sends the
 * token. The empty requirement beside it says a server may also run without one. The
 * operations' own empty `security` lists (which would say "no auth" and hide the button's
 * token from them) are dropped, so that the document's requirement applies to each.
 */
const bearerAuth = (spec: Record<string, any>): Record<string, any> => ({
  ...spec,
  paths: Object.fromEntries(Object.entries(spec.paths ?? {}).map(([path, item]) => [
    path,
    Object.fromEntries(Object.entries(item as Record<string, any>).map(([method, op]) => {
      if (typeof op !== "object" || op === null || !Array.isArray(op.security) || op.security.length > 0) return [method, op]
      const { security: _, ...rest } = op
      return [method, rest]
    }))
  ])),
  components: {
    ...spec.components,
    securitySchemes: {
      ...spec.components?.securitySchemes,
      bearer: {
        type: "http",
        scheme: "bearer",
        description: "The server's token (`proctor serve --token`, or PROCTOR_TOKEN); needed when the server was started with one."
      }
    }
  },
  security: [{ bearer: [] }, {}]
})

/**
 * The whole API.
 *
 * @since 0.1.0
 * @category api
 */
export class ProctorApi extends HttpApi.make("proctor")
  .add(ProceduresGroup)
  .add(ExecutionsGroup)
  .add(RolloutsGroup)
  .addError(UnauthorizedWire)
  .addError(PayloadTooLargeWire)
  .annotate(OpenApi.Title, "Proctor")
  .annotate(OpenApi.Transform, bearerAuth)
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "Start, drive and watch executions of Proctor procedures. Live updates: GET /events (Server-Sent Events, optional ?id=)."
  )
{}
