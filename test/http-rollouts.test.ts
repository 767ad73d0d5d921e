/**
 * The HTTP API's rollout routes: each calls one Runtime operation (`rollout`, `rollouts`,
 * `controlRollout`) and answers its typed errors with their status codes; writes need the
 * server's token like every route.
 */
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Procedure, Runtime, Store } from "proctor"
import { ProctorApi } from "../src/http/Api.js"
import * as Server from "../src/http/Server.js"

const app = (version: number) =>
  Procedure.make("app", { version, input: Schema.Struct({}), context: Schema.Struct({}) }, {
    initial: "work",
    states: { work: Procedure.step({ run: () => Effect.void, next: "done" }), done: Procedure.final() }
  })

const token = "s3cret-token"
const serverWith = (options: Server.Options) =>
  Server.layer(options).pipe(
    Layer.provideMerge(Runtime.layer({ procedures: [app(1), app(2)] }).pipe(Layer.provideMerge(Store.layerMemory))),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

const raw = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.flatMap(HttpClient.HttpClient, (http) =>
    Effect.flatMap(http.execute(request), (r) => Effect.map(r.json, (body) => ({ status: r.status, body: body as { _tag?: string; message?: string } }))))

describe("HTTP API: rollouts", () => {
  it.effect("start, list, pause, resume, advance and revert a rollout; its errors answer 400, 404 and 409", () =>
    Effect.gen(function*() {
      const api = yield* HttpApiClient.make(ProctorApi)
      const started = yield* api.rollouts.start({
        payload: { procedure: "app", from: 1, to: 2, phases: [10, 50, 100], hold: "1 hour", revertWhen: { failureRate: 0.1, p99: "2 seconds", restarts: 2 } }
      })
      assert.deepStrictEqual([started.procedure, started.from, started.to, started.phase, started.share, started.hold], ["app", 1, 2, 1, 10, "1h"])
      assert.deepStrictEqual(started.revertWhen, { failureRate: 0.1, minExecutions: 10, p99State: 2000, p99Execution: 2000, restarts: 2 })
      assert.deepStrictEqual((yield* api.rollouts.list({ urlParams: { procedure: "app" } })).map((r) => r.id), [started.id])
      assert.strictEqual((yield* api.rollouts.control({ path: { name: "app", control: "pause" }, payload: null })).state, "paused")
      assert.strictEqual((yield* api.rollouts.control({ path: { name: "app", control: "resume" }, payload: null })).state, "holding")
      const advanced = yield* api.rollouts.control({ path: { name: "app", control: "advance" }, payload: {} })
      assert.deepStrictEqual([advanced.state, advanced.phase, advanced.share], ["holding", 2, 50])
      const reverted = yield* api.rollouts.control({ path: { name: "app", control: "revert" }, payload: { reason: "looks wrong" } })
      assert.deepStrictEqual([reverted.share, reverted.reason], [0, "looks wrong"])
      const post = (path: string, body: unknown) => raw(HttpClientRequest.post(path).pipe(HttpClientRequest.bodyUnsafeJson(body)))
      for (
        const [what, request, status, tag] of [
          ["no rollout under way", post("/api/rollouts/app/advance", {}), 404, "ExecutionNotFound"],
          ["an unknown version", post("/api/rollouts", { procedure: "app", from: 1, to: 3 }), 404, "ProcedureNotFound"],
          ["bad phases", post("/api/rollouts", { procedure: "app", from: 1, to: 2, phases: [50, 10] }), 400, "ValidationError"],
          ["a hold that is no duration", post("/api/rollouts", { procedure: "app", from: 1, to: 2, hold: "soon" }), 400, "ValidationError"],
          ["an unknown control", post("/api/rollouts/app/explode", {}), 400, "HttpApiDecodeError"]
        ] as const
      ) {
        const r = yield* request
        assert.deepStrictEqual([r.status, r.body._tag], [status, tag], what)
      }
      yield* api.rollouts.start({ payload: { procedure: "app", from: 1, to: 2 } })
      const twice = yield* post("/api/rollouts", { procedure: "app", from: 1, to: 2 })
      assert.deepStrictEqual([twice.status, twice.body._tag], [409, "InvalidTransition"])
      assert.match(twice.body.message!, /A rollout of app \(version 1 to 2\) is under way/)
    }).pipe(Effect.provide(serverWith({}))))

  it.effect("with a token, the rollout routes need it", () =>
    Effect.gen(function*() {
      const without = yield* raw(HttpClientRequest.post("/api/rollouts").pipe(HttpClientRequest.bodyUnsafeJson({ procedure: "app", from: 1, to: 2 })))
      assert.deepStrictEqual([without.status, without.body._tag], [401, "Unauthorized"])
      assert.strictEqual((yield* raw(HttpClientRequest.get("/api/rollouts"))).status, 401)
      const api = yield* HttpApiClient.make(ProctorApi, { transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token)) })
      assert.strictEqual((yield* api.rollouts.start({ payload: { procedure: "app", from: 1, to: 2 } })).phase, 1)
      assert.strictEqual((yield* Runtime.rollouts("app")).length, 1)
    }).pipe(Effect.provide(serverWith({ token }))))
})
