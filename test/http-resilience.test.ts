/**
 * The HTTP API's part of quotas and dependencies: a start over a quota answers 429 with a
 * Retry-After header and the typed error (which the client decodes), and
 * `GET /api/dependencies` reports the dependencies' breakers, bulkheads and rate limits.
 */
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Schedule, Schema } from "effect"
import { Dependency, Procedure, Runtime, Store } from "proctor"
import { ProctorApi } from "../src/http/Api.js"
import * as Server from "../src/http/Server.js"

const Payments = Dependency.make("payments", {
  breaker: { consecutiveFailures: 1, coolDown: "1 minute" },
  bulkhead: { concurrency: 4, queue: 8 },
  rateLimit: { slidingWindow: { limit: 100, window: "1 second" } }
})

const Charge = Procedure.make("charge", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "pay",
  states: {
    pay: Procedure.step({ dependency: Payments, run: () => Effect.fail("Declined" as const), retry: Schedule.stop, next: "done" }),
    done: Procedure.final()
  }
})

const layer = Server.layer().pipe(
  Layer.provideMerge(
    Runtime.layer({ procedures: [Charge], quotas: { tenants: { byTenant: { acme: { rate: { tokenBucket: { capacity: 1, refill: { tokens: 1, every: "30 seconds" } } } } } } } })
      .pipe(Layer.provideMerge(Store.layerMemory))
  ),
  Layer.provideMerge(NodeHttpServer.layerTest)
)

describe("HTTP API: quotas and dependencies", () => {
  it.effect("a start over a tenant's quota answers 429 with Retry-After and the QuotaExceeded error", () =>
    Effect.gen(function*() {
      const api = yield* HttpApiClient.make(ProctorApi)
      yield* api.executions.start({ payload: { procedure: "charge", input: {}, options: { tenant: "acme" } } })
      const http = yield* HttpClient.HttpClient
      const response = yield* http.execute(
        HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyUnsafeJson({ procedure: "charge", input: {}, options: { tenant: "acme" } }))
      )
      assert.strictEqual(response.status, 429)
      assert.strictEqual(response.headers["retry-after"], "30")
      const body = (yield* response.json) as { _tag: string; retryAfter: number; message: string; tenant: string }
      assert.strictEqual(body._tag, "QuotaExceeded")
      assert.strictEqual(body.tenant, "acme")
      assert.strictEqual(body.retryAfter, 30_000)
      assert.match(body.message, /Retry after 30s/)
      // the typed client gets the error back
      const refused = yield* Effect.either(api.executions.start({ payload: { procedure: "charge", input: {}, options: { tenant: "acme" } } }))
      assert.isTrue(Either.isLeft(refused))
      if (Either.isLeft(refused)) {
        assert.strictEqual(refused.left._tag, "QuotaExceeded")
        if (refused.left._tag === "QuotaExceeded") assert.strictEqual(Duration.toMillis(refused.left.retryAfter), 30_000)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("GET /api/dependencies reports each dependency's breaker, bulkhead and rate limit", () =>
    Effect.gen(function*() {
      const api = yield* HttpApiClient.make(ProctorApi)
      const before = yield* api.procedures.dependencies()
      assert.deepStrictEqual(before.map((d) => [d.name, d.breaker?.state, d.bulkhead?.concurrency, d.rateLimit?.kind]), [["payments", "closed", 4, "slidingWindow"]])
      // a business error is an answer: the breaker stays closed
      const s = yield* api.executions.start({ payload: { procedure: "charge", input: {} } })
      yield* Runtime.await(s.id)
      const after = yield* api.procedures.dependencies()
      assert.strictEqual(after[0]!.calls, 1)
      assert.strictEqual(after[0]!.breaker?.state, "closed")
    }).pipe(Effect.provide(layer)))
})
