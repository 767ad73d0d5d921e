/**
 * Issue 13: the HTTP API says what an execution accepts now (`allowed` in
 * `GET /api/executions/:id`), and it is the core's answer (`Execution.allowedOperations`)
 * in every status; in particular cancel is offered, and accepted, while compensating.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Execution, Runtime, Store } from "proctor"
import type { Procedure } from "proctor"
import * as Server from "../src/http/Server.js"
import { Approval, Broken, Gated, release } from "./fixtures/ops.js"
import { releaseUndo, Saga } from "./fixtures/saga.js"

const procedures: ReadonlyArray<Procedure.Any> = [Approval, Gated, Broken, Saga]

const server = Server.layer().pipe(
  Layer.provideMerge(Runtime.layer({ procedures }).pipe(Layer.provide(Store.layerMemory))),
  Layer.provideMerge(NodeHttpServer.layerTest)
)

/** waits (without a clock) until the execution is in `status` */
const until = (id: string, status: Execution.Status) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100_000; i++) {
      if ((yield* Runtime.get(id)).status === status) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`execution ${id} never reached ${status}`)
  })

const request = (method: "GET" | "POST", path: string, body?: unknown) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const base = method === "GET" ? HttpClientRequest.get(path) : HttpClientRequest.post(path)
    const response = yield* http.execute(body === undefined ? base : HttpClientRequest.bodyUnsafeJson(base, body))
    return { status: response.status, body: (yield* response.json) as any }
  })

/** `allowed` of GET /api/executions/:id, checked against the core's answer for the returned snapshot */
const allowedOverHttp = (id: string, status: Execution.Status) =>
  Effect.gen(function*() {
    const { body } = yield* request("GET", `/api/executions/${id}`)
    assert.strictEqual(body.status, status)
    const def = procedures.find((p) => p.name === body.procedure)!
    assert.deepStrictEqual(body.allowed, Execution.allowedOperations(body, def), status)
    return body.allowed as Execution.AllowedOperations
  })

describe("HTTP API: what an execution accepts now", () => {
  it.effect("GET /api/executions/:id carries the core's allowed operations in every status", () =>
    Effect.gen(function*() {
      const seen = new Set<Execution.Status>()
      const check = (id: string, status: Execution.Status) => {
        seen.add(status)
        return allowedOverHttp(id, status)
      }

      const gated = yield* Runtime.start(Gated, { n: 1 })
      yield* until(gated, "running")
      assert.deepStrictEqual((yield* check(gated, "running")).events, [])

      const waiting = yield* Runtime.start(Approval, { doc: "a" })
      yield* until(waiting, "waiting")
      assert.deepStrictEqual((yield* check(waiting, "waiting")).events, ["Approve", "Reject"])
      yield* Runtime.pause(waiting)
      yield* check(waiting, "paused")
      yield* Runtime.resume(waiting)
      yield* Runtime.send(waiting, { _tag: "Approve", by: "ann" })
      yield* until(waiting, "succeeded")
      yield* check(waiting, "succeeded")

      const rejected = yield* Runtime.start(Approval, { doc: "b" })
      yield* until(rejected, "waiting")
      yield* Runtime.send(rejected, { _tag: "Reject", reason: "no" })
      yield* until(rejected, "failed")
      yield* check(rejected, "failed")

      const broken = yield* Runtime.start(Broken, {})
      yield* until(broken, "needs_intervention")
      assert.deepStrictEqual((yield* check(broken, "needs_intervention")).commands, ["cancel", "rollback", "retry", "skip"])
      yield* Runtime.cancel(broken)
      yield* check(broken, "cancelled")

      const saga = yield* Runtime.start(Saga, {})
      yield* until(saga, "waiting")
      yield* Runtime.rollback(saga)
      yield* until(saga, "compensating")
      const compensating = yield* check(saga, "compensating")
      assert.deepStrictEqual(compensating, { commands: ["cancel"], events: [] })
      yield* releaseUndo(saga)
      yield* until(saga, "rolled_back")
      yield* check(saga, "rolled_back")

      yield* release(gated)
      yield* until(gated, "succeeded")
      assert.deepStrictEqual([...seen].sort(), [...Execution.Status.literals].sort())
    }).pipe(Effect.provide(server)))

  it.effect("while compensating, the commands it lists are the ones the API accepts: cancel yes, rollback no", () =>
    Effect.gen(function*() {
      const saga = yield* Runtime.start(Saga, {})
      yield* until(saga, "waiting")
      yield* Runtime.rollback(saga)
      yield* until(saga, "compensating")
      const refused = yield* request("POST", `/api/executions/${saga}/rollback`)
      assert.strictEqual(refused.status, 409)
      assert.include(refused.body.message, "already rolling back")
      const cancelled = yield* request("POST", `/api/executions/${saga}/cancel`)
      assert.strictEqual(cancelled.status, 200)
      assert.strictEqual(cancelled.body.status, "cancelled")
      yield* releaseUndo(saga)
    }).pipe(Effect.provide(server)))
})
