import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, FiberId, Layer, Stream, TestClock } from "effect"
import { Plugin, Runtime, Store, StoreError } from "proctor"
import type { Execution } from "proctor"
import { ProctorApi } from "../src/http/Api.js"
import * as Auth from "../src/http/Auth.js"
import * as Server from "../src/http/Server.js"
import { Charted, Nested, Release } from "./fixtures/nested.js"
import { Approval, Broken, Gated, release } from "./fixtures/ops.js"

const RuntimeLive = Runtime.layer({ procedures: [Approval, Gated, Broken] }).pipe(Layer.provide(Store.layerMemory))

const serverWith = (options: Server.Options = {}) =>
  Server.layer(options).pipe(
    Layer.provideMerge(RuntimeLive),
    Layer.provideMerge(NodeHttpServer.layerTest)
  )

const client = HttpApiClient.make(ProctorApi)

/** waits (without a clock) until the execution satisfies `pred` */
const until = (id: string, pred: (s: Execution.Snapshot) => boolean) =>
  Effect.gen(function*() {
    const runtime = yield* Runtime.Runtime
    for (let i = 0; i < 100_000; i++) {
      const s = yield* runtime.get(id)
      if (pred(s)) return s
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`execution ${id} never reached the expected state`)
  })

/** the status and JSON body of a raw request */
const raw = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    const http = yield* HttpClient.HttpClient
    const response = yield* http.execute(request)
    const text = yield* response.text
    let body: any = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, body, headers: response.headers }
  })

/** reads a Server-Sent Events response: `readUntil(done)` pulls until what arrived so far satisfies `done`, and returns it */
const sseReader = (response: { readonly stream: Stream.Stream<Uint8Array, unknown> }) =>
  Effect.map(Stream.toPull(response.stream.pipe(Stream.decodeText())), (pull) => {
    let received = ""
    return (done: (text: string) => boolean) =>
      Effect.gen(function*() {
        while (!done(received)) received += Chunk.join(yield* pull, "")
        return received
      })
  })

/** each request gets the status, a JSON content type and a JSON body with this `_tag` and a message that says what to do */
const expectJsonErrors = (cases: ReadonlyArray<readonly [string, HttpClientRequest.HttpClientRequest, number, string]>) =>
  Effect.forEach(cases, ([name, request, status, tag]) =>
    Effect.gen(function*() {
      const r = yield* raw(request)
      assert.strictEqual(r.status, status, name)
      assert.match(r.headers["content-type"] ?? "", /^application\/json/, name)
      assert.strictEqual(r.body._tag, tag, `${name}: ${JSON.stringify(r.body)}`)
      assert.isString(r.body.message, name)
      assert.isAbove(r.body.message.length, 10, name)
    }), { discard: true })

const startApproval = (doc = "q3.pdf") =>
  Effect.gen(function*() {
    const api = yield* client
    const s = yield* api.executions.start({ payload: { procedure: "ops-approval", input: { doc } } })
    return yield* until(s.id, (x) => x.status === "waiting")
  })

describe("HTTP API", () => {
  it.effect("lists procedures with diagrams, the events each wait accepts and their JSON Schemas", () =>
    Effect.gen(function*() {
      const api = yield* client
      const procedures = yield* api.procedures.list()
      assert.deepStrictEqual(procedures.map((p) => p.name).sort(), ["ops-approval", "ops-broken", "ops-gated"])
      const approval = yield* api.procedures.get({ path: { name: "ops-approval" } })
      assert.strictEqual(approval.initial, "submit")
      const review = approval.states.find((s) => s.name === "review")!
      assert.deepStrictEqual(review.accepts, ["Approve", "Reject"])
      // a flat procedure's states are all at the top
      assert.isTrue(approval.states.every((s) => s.parent === undefined && s.children === undefined))
      assert.deepStrictEqual(review.timer, { after: "1d", goto: "expired" })
      const approve = approval.events.find((e) => e.tag === "Approve")!
      assert.deepStrictEqual((approve.schema as any).properties.by, { type: "string" })
      assert.deepStrictEqual((approve.schema as any).required, ["_tag", "by"])
      assert.include(approval.mermaid, "review --> approved: Approve")
      assert.include(approval.svg, `data-state="review"`)
      assert.deepStrictEqual((approval.input as any).properties.doc, { type: "string" })
      const missing = yield* Effect.flip(api.procedures.get({ path: { name: "nope" } }))
      assert.strictEqual(missing._tag, "ProcedureNotFound")
      const status = yield* raw(HttpClientRequest.get("/api/procedures/nope"))
      assert.strictEqual(status.status, 404)
      assert.include(status.body.message, "ops-approval@1")
    }).pipe(Effect.provide(serverWith())))

  it.effect("a procedure's view nests its states: parent, children, initial state, and where region and chart states run", () =>
    Effect.gen(function*() {
      const api = yield* client
      const view = yield* api.procedures.get({ path: { name: "release" } })
      const state = (name: string) => view.states.find((s) => s.name === name)!
      assert.deepInclude(state("rollout"), { kind: "parallel", children: ["rollout.db", "rollout.web"], edges: [{ to: "live", label: "" }] })
      assert.deepInclude(state("rollout.web"), { kind: "compound", parent: "rollout", initial: "rollout.web.bundle", runsIn: "region" })
      assert.deepInclude(state("rollout.web.approve"), { kind: "wait", parent: "rollout.web", accepts: ["Approve"], runsIn: "region" })
      assert.isUndefined(state("prepare").parent)
      assert.include(view.svg, `data-parent="rollout.web" data-state="rollout.web.approve"`)
      assert.include(view.mermaid, "state rollout {")
      const chart = yield* api.procedures.get({ path: { name: "deploy-chart" } })
      const deploy = chart.states.find((s) => s.name === "deploy")!
      assert.deepInclude(deploy, { kind: "parallel", parent: "chart", children: ["db", "web"], runsIn: "chart" })
      assert.strictEqual(chart.states.find((s) => s.name === "chart")!.kind, "chart")
      const nested = yield* api.procedures.get({ path: { name: "deploy-nested" } })
      assert.deepInclude(nested.states.find((s) => s.name === "rollout")!, { kind: "compound", initial: "rollout.db", accepts: ["Abort"] })
      assert.deepInclude(nested.states.find((s) => s.name === "rollout.api.push")!, { kind: "step", parent: "rollout.api" })
      assert.isUndefined(nested.states.find((s) => s.name === "rollout.api.push")!.runsIn)
      // the OpenAPI document describes the new fields
      const spec = (yield* raw(HttpClientRequest.get("/openapi.json"))).body
      assert.includeMembers(Object.keys(spec.components.schemas.StateInfo.properties), ["parent", "children", "initial", "history", "runsIn"])
      assert.include(spec.components.schemas.StateInfo.properties.kind.enum, "parallel")
    }).pipe(
      Effect.provide(
        Server.layer({}).pipe(
          Layer.provideMerge(Runtime.layer({ procedures: [Release, Charted, Nested] })),
          Layer.provideMerge(Store.layerMemory),
          Layer.provideMerge(NodeHttpServer.layerTest)
        )
      )
    ))

  it.effect("starts, lists, reads and drives an approval to success", () =>
    Effect.gen(function*() {
      const api = yield* client
      const started = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: "q3.pdf" } })
      ))
      assert.strictEqual(started.status, 201)
      const id = started.body.id as string
      yield* until(id, (s) => s.status === "waiting")
      const other = yield* startApproval("other.pdf")

      const waiting = yield* api.executions.list({ urlParams: { status: ["waiting"], procedure: "ops-approval" } })
      assert.deepStrictEqual(waiting.map((s) => s.id).sort(), [id, other.id].sort())
      const limited = yield* api.executions.list({ urlParams: { limit: 1 } })
      assert.strictEqual(limited.length, 1)
      const none = yield* api.executions.list({ urlParams: { status: ["paused", "failed"] } })
      assert.strictEqual(none.length, 0)
      // the children of an execution (those its child states started name it as their parent)
      const child = yield* Runtime.start(Approval, { doc: "annex.pdf" }, { parentId: id })
      assert.deepStrictEqual((yield* api.executions.list({ urlParams: { parentId: id } })).map((s) => s.id), [child])
      assert.deepStrictEqual(yield* api.executions.list({ urlParams: { parentId: child } }), [])

      const snapshot = yield* api.executions.get({ path: { id } })
      assert.strictEqual(snapshot.state, "review")
      const history = yield* api.executions.history({ path: { id }, urlParams: {} })
      assert.deepStrictEqual(history.map((t) => t.to), ["submit", "review"])
      const tail = yield* api.executions.history({ path: { id }, urlParams: { tail: 1 } })
      assert.deepStrictEqual(tail.map((t) => t.to), ["review"])
      assert.deepStrictEqual(yield* api.executions.errors({ path: { id } }), [])

      const sent = yield* raw(HttpClientRequest.post(`/api/executions/${id}/send`).pipe(
        HttpClientRequest.bodyUnsafeJson({ _tag: "Approve", by: "ann" })
      ))
      assert.strictEqual(sent.status, 202)
      assert.deepStrictEqual(sent.body, { executionId: id, event: "Approve", accepted: true })
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual(done.context, { doc: "q3.pdf", approvedBy: "ann" })

      // an ended execution takes no more events: 409
      const late = yield* raw(HttpClientRequest.post(`/api/executions/${id}/send`).pipe(
        HttpClientRequest.bodyUnsafeJson({ _tag: "Reject", reason: "too late" })
      ))
      assert.strictEqual(late.status, 409)
      assert.strictEqual(late.body._tag, "InvalidTransition")
      assert.include(late.body.message, "already ended")
    }).pipe(Effect.provide(serverWith())))

  it.effect("answers bad input with 400 and the Schema's message; nothing is written", () =>
    Effect.gen(function*() {
      const s = yield* startApproval()
      const noField = yield* raw(HttpClientRequest.post(`/api/executions/${s.id}/send`).pipe(
        HttpClientRequest.bodyUnsafeJson({ _tag: "Approve" })
      ))
      assert.strictEqual(noField.status, 400)
      assert.strictEqual(noField.body._tag, "ValidationError")
      assert.include(noField.body.issue, `["by"]`)
      assert.include(noField.body.message, "does not match its Schema")
      const unknownTag = yield* raw(HttpClientRequest.post(`/api/executions/${s.id}/send`).pipe(
        HttpClientRequest.bodyUnsafeJson({ _tag: "Escalate" })
      ))
      assert.strictEqual(unknownTag.status, 400)
      const noTag = yield* raw(HttpClientRequest.post(`/api/executions/${s.id}/send`).pipe(
        HttpClientRequest.bodyUnsafeJson({ by: "ann" })
      ))
      assert.strictEqual(noTag.status, 400)
      assert.strictEqual(noTag.body._tag, "HttpApiDecodeError")

      const badInput = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: 42 } })
      ))
      assert.strictEqual(badInput.status, 400)
      assert.strictEqual(badInput.body._tag, "ValidationError")
      assert.strictEqual(badInput.body.subject, "input")
      const noProcedure = yield* raw(HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyUnsafeJson({ input: {} })))
      assert.strictEqual(noProcedure.status, 400)
      assert.include(noProcedure.body.message, "procedure")
      const unknown = yield* raw(HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyUnsafeJson({ procedure: "nope" })))
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.body._tag, "ProcedureNotFound")
      const notJson = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyText("{not json", "application/json")
      ))
      assert.strictEqual(notJson.status, 400)
      const badStatus = yield* raw(HttpClientRequest.get("/api/executions?status=waiting,bogus"))
      assert.strictEqual(badStatus.status, 400)
      const badLimit = yield* raw(HttpClientRequest.get("/api/executions?limit=-3"))
      assert.strictEqual(badLimit.status, 400)

      const after = yield* Runtime.get(s.id)
      assert.strictEqual(after.rowVersion, s.rowVersion)
      assert.strictEqual((yield* Runtime.list()).length, 1)
    }).pipe(Effect.provide(serverWith())))

  it.effect("every 4xx carries a JSON body with a _tag and a message, also for malformed JSON, unknown routes and wrong methods", () =>
    Effect.gen(function*() {
      const s = yield* startApproval()
      const cases: ReadonlyArray<readonly [string, HttpClientRequest.HttpClientRequest, number, string]> = [
        ["malformed JSON to start", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("{not json", "application/json")), 400, "HttpApiDecodeError"],
        ["malformed JSON to send", HttpClientRequest.post(`/api/executions/${s.id}/send`).pipe(HttpClientRequest.bodyText("{\"_tag\":", "application/json")), 400, "HttpApiDecodeError"],
        ["malformed JSON to skip", HttpClientRequest.post(`/api/executions/${s.id}/skip`).pipe(HttpClientRequest.bodyText("[", "application/json")), 400, "HttpApiDecodeError"],
        ["an empty JSON body", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("", "application/json")), 400, "HttpApiDecodeError"],
        ["a body that is not JSON at all", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("procedure=x", "text/plain")), 400, "HttpApiDecodeError"],
        ["a bad query parameter", HttpClientRequest.get("/api/executions?limit=-3"), 400, "HttpApiDecodeError"],
        ["an unknown API route", HttpClientRequest.get("/api/nothing-here"), 404, "NotFound"],
        ["an unknown page", HttpClientRequest.get("/no/such/page"), 404, "NotFound"],
        ["a wrong method", HttpClientRequest.del(`/api/executions/${s.id}`), 404, "NotFound"],
        ["GET on a POST route", HttpClientRequest.get(`/api/executions/${s.id}/pause`), 404, "NotFound"]
      ]
      yield* expectJsonErrors(cases)
      assert.strictEqual((yield* Runtime.get(s.id)).rowVersion, s.rowVersion)
    }).pipe(Effect.provide(serverWith())))

  it.effect("with a token, bad auth, unknown routes, wrong methods and malformed JSON all get JSON errors", () =>
    Effect.gen(function*() {
      const token = "s3cret-token"
      const bearer = HttpClientRequest.bearerToken(token)
      yield* expectJsonErrors([
        ["no token", HttpClientRequest.get("/api/procedures"), 401, "Unauthorized"],
        ["a wrong token", HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.bearerToken("wrong")), 401, "Unauthorized"],
        ["no token, unknown route", HttpClientRequest.get("/api/nothing-here"), 401, "Unauthorized"],
        ["no token, malformed JSON", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("{", "application/json")), 401, "Unauthorized"],
        ["unknown route", HttpClientRequest.get("/api/nothing-here").pipe(bearer), 404, "NotFound"],
        ["wrong method", HttpClientRequest.put("/api/executions").pipe(bearer), 404, "NotFound"],
        ["malformed JSON", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("{", "application/json"), bearer), 400, "HttpApiDecodeError"],
        ["a foreign origin", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.setHeader("origin", "http://attacker.example"), bearer), 403, "Forbidden"],
        ["a body over the limit", HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText("x".repeat(4096), "application/json"), bearer), 413, "PayloadTooLarge"]
      ])
    }).pipe(Effect.provide(serverWith({ token: "s3cret-token", maxBodyBytes: 2048 }))))

  it.effect("answers unknown ids with 404 ExecutionNotFound on every endpoint", () =>
    Effect.gen(function*() {
      const api = yield* client
      const requests = [
        HttpClientRequest.get("/api/executions/nope"),
        HttpClientRequest.get("/api/executions/nope/history"),
        HttpClientRequest.get("/api/executions/nope/errors"),
        HttpClientRequest.post("/api/executions/nope/send").pipe(HttpClientRequest.bodyUnsafeJson({ _tag: "Approve", by: "x" })),
        ...(["pause", "resume", "cancel", "rollback", "retry"] as const).map((op) => HttpClientRequest.post(`/api/executions/nope/${op}`)),
        HttpClientRequest.post("/api/executions/nope/skip").pipe(HttpClientRequest.bodyUnsafeJson({ state: "done" }))
      ]
      for (const request of requests) {
        const r = yield* raw(request)
        assert.strictEqual(r.status, 404, request.url)
        assert.strictEqual(r.body._tag, "ExecutionNotFound")
        assert.include(r.body.message, `"nope"`)
      }
      const typed = yield* Effect.flip(api.executions.pause({ path: { id: "nope" } }))
      assert.strictEqual(typed._tag, "ExecutionNotFound")
    }).pipe(Effect.provide(serverWith())))

  it.effect("pauses and resumes a running execution; refuses what its status does not allow with 409", () =>
    Effect.gen(function*() {
      const api = yield* client
      const started = yield* api.executions.start({ payload: { procedure: "ops-gated", input: { n: 1 } } })
      const id = started.id
      yield* until(id, (s) => s.state === "work" && s.status === "running")
      const resumeRunning = yield* Effect.flip(api.executions.resume({ path: { id } }))
      assert.strictEqual(resumeRunning._tag, "InvalidTransition")
      const paused = yield* api.executions.pause({ path: { id } })
      assert.strictEqual(paused.status, "paused")
      assert.strictEqual(paused.state, "work")
      const again = yield* raw(HttpClientRequest.post(`/api/executions/${id}/pause`))
      assert.strictEqual(again.status, 409)
      assert.strictEqual(again.body._tag, "InvalidTransition")
      const resumed = yield* api.executions.resume({ path: { id } })
      assert.strictEqual(resumed.status, "running")
      yield* release(id)
      const done = yield* Runtime.await(id)
      assert.strictEqual(done.status, "succeeded")
      assert.deepStrictEqual((yield* api.executions.history({ path: { id }, urlParams: {} })).map((t) => t.cause), [
        "start",
        "step",
        "pause",
        "resume",
        "step"
      ])
    }).pipe(Effect.provide(serverWith())))

  it.effect("cancels, rolls back, retries and skips", () =>
    Effect.gen(function*() {
      const api = yield* client
      const a = yield* startApproval("a")
      assert.strictEqual((yield* api.executions.cancel({ path: { id: a.id }, payload: {} })).status, "cancelled")
      const b = yield* startApproval("b")
      const rolled = yield* api.executions.rollback({ path: { id: b.id } })
      assert.include(["rolled_back", "compensating"], rolled.status)
      assert.strictEqual((yield* Runtime.await(b.id)).status, "rolled_back")

      const broken = yield* api.executions.start({ payload: { procedure: "ops-broken", input: {} } })
      yield* until(broken.id, (s) => s.status === "needs_intervention")
      const errors = yield* api.executions.errors({ path: { id: broken.id } })
      assert.strictEqual(errors[0]!.tag, "Nope")
      yield* api.executions.retry({ path: { id: broken.id } })
      const again = yield* until(broken.id, (s) => s.status === "needs_intervention" && s.seq > 3)
      assert.strictEqual(again.state, "check")
      assert.strictEqual((yield* api.executions.errors({ path: { id: broken.id } })).length, 2)
      const badSkip = yield* raw(HttpClientRequest.post(`/api/executions/${broken.id}/skip`).pipe(
        HttpClientRequest.bodyUnsafeJson({ state: "nowhere" })
      ))
      assert.strictEqual(badSkip.status, 409)
      const skipped = yield* api.executions.skip({ path: { id: broken.id }, payload: { state: "manual" } })
      assert.strictEqual(skipped.state, "manual")
      assert.strictEqual(skipped.status, "succeeded")
      assert.strictEqual(skipped.outcome, "handled-by-hand")
    }).pipe(Effect.provide(serverWith())))

  it.effect("cancel takes an optional reason, kept on the history's cancel row; a missing, empty or null body is no reason", () =>
    Effect.gen(function*() {
      const api = yield* client
      const a = yield* startApproval("withdrawn.pdf")
      const cancelled = yield* api.executions.cancel({ path: { id: a.id }, payload: { reason: "the document was withdrawn" } })
      assert.strictEqual(cancelled.status, "cancelled")
      const last = (yield* api.executions.history({ path: { id: a.id }, urlParams: {} })).at(-1)!
      assert.strictEqual(last.cause, "cancel")
      assert.strictEqual(last.reason, "the document was withdrawn")
      // the wire carries it: a raw read of the history
      const rawHistory = yield* raw(HttpClientRequest.get(`/api/executions/${a.id}/history`))
      assert.strictEqual(rawHistory.body.at(-1).reason, "the document was withdrawn")

      const bodies = [
        ["no body", (r: HttpClientRequest.HttpClientRequest) => r],
        ["an empty JSON body", HttpClientRequest.bodyText("", "application/json")],
        ["null", HttpClientRequest.bodyUnsafeJson(null)],
        ["{}", HttpClientRequest.bodyUnsafeJson({})]
      ] as const
      for (const [name, body] of bodies) {
        const s = yield* startApproval(name)
        const r = yield* raw(HttpClientRequest.post(`/api/executions/${s.id}/cancel`).pipe(body))
        assert.strictEqual(r.status, 200, `${name}: ${JSON.stringify(r.body)}`)
        assert.strictEqual(r.body.status, "cancelled", name)
        const row = (yield* Runtime.history(s.id)).at(-1)!
        assert.strictEqual(row.cause, "cancel", name)
        assert.isUndefined(row.reason, name)
      }
    }).pipe(Effect.provide(serverWith())))

  it.effect("cancel refuses an empty, too long or mistyped reason with a 400 that says what to send, and cancels nothing", () =>
    Effect.gen(function*() {
      const s = yield* startApproval("kept.pdf")
      const cancel = (body: unknown) => HttpClientRequest.post(`/api/executions/${s.id}/cancel`).pipe(HttpClientRequest.bodyUnsafeJson(body))
      yield* expectJsonErrors([
        ["a reason over 1000 characters", cancel({ reason: "x".repeat(1001) }), 400, "HttpApiDecodeError"],
        ["an empty reason", cancel({ reason: "" }), 400, "HttpApiDecodeError"],
        ["a reason that is not a string", cancel({ reason: 42 }), 400, "HttpApiDecodeError"]
      ])
      const long = yield* raw(cancel({ reason: "x".repeat(1001) }))
      assert.include(long.body.message, "longer than 1000 characters: send a shorter one")
      const empty = yield* raw(cancel({ reason: "" }))
      assert.include(empty.body.message, "leave it out")
      assert.strictEqual((yield* Runtime.get(s.id)).status, "waiting")
      // exactly 1000 characters is accepted
      const r = yield* raw(cancel({ reason: "y".repeat(1000) }))
      assert.strictEqual(r.status, 200)
      assert.strictEqual((yield* Runtime.history(s.id)).at(-1)!.reason, "y".repeat(1000))
    }).pipe(Effect.provide(serverWith())))

  it.effect("refuses bodies over the limit with 413, declared or chunked", () =>
    Effect.gen(function*() {
      const big = JSON.stringify({ procedure: "ops-approval", input: { doc: "x".repeat(4000) } })
      const declared = yield* raw(HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyText(big, "application/json")))
      assert.strictEqual(declared.status, 413)
      assert.strictEqual(declared.body._tag, "PayloadTooLarge")
      assert.strictEqual(declared.body.limit, 2048)
      const chunked = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyStream(Stream.make(new TextEncoder().encode(big)), { contentType: "application/json" })
      ))
      assert.strictEqual(chunked.status, 413)
      // a chunked body under the limit goes through
      const small = JSON.stringify({ procedure: "ops-approval", input: { doc: "ok" } })
      const ok = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyStream(Stream.make(new TextEncoder().encode(small)), { contentType: "application/json" })
      ))
      assert.strictEqual(ok.status, 201)
      assert.strictEqual((yield* Runtime.list()).length, 1)
    }).pipe(Effect.provide(serverWith({ maxBodyBytes: 2048 }))))

  it.effect("serves the OpenAPI document and an API explorer without any CDN", () =>
    Effect.gen(function*() {
      const spec = yield* raw(HttpClientRequest.get("/openapi.json"))
      assert.strictEqual(spec.status, 200)
      const paths = Object.keys(spec.body.paths)
      for (
        const p of [
          "/api/procedures",
          "/api/executions",
          "/api/executions/{id}",
          "/api/executions/{id}/history",
          "/api/executions/{id}/errors",
          "/api/executions/{id}/send",
          "/api/executions/{id}/pause",
          "/api/executions/{id}/skip"
        ]
      ) assert.include(paths, p)
      const pause = spec.body.paths["/api/executions/{id}/pause"].post.responses
      assert.includeMembers(Object.keys(pause), ["200", "401", "404", "409", "413"])
      assert.includeMembers(Object.keys(spec.body.paths["/api/executions"].post.responses), ["201", "400", "404"])
      assert.includeMembers(Object.keys(spec.body.components.schemas), [
        "ValidationError",
        "ExecutionNotFound",
        "InvalidTransition",
        "Unauthorized",
        "PayloadTooLarge",
        "ProcedureInfo"
      ])
      assert.include(Object.keys(spec.body.components.schemas.InvalidTransition.properties), "message")
      // cancel: an optional body with an optional reason; history rows carry it
      const cancelBody = spec.body.paths["/api/executions/{id}/cancel"].post.requestBody
      assert.strictEqual(cancelBody.required, false)
      assert.deepInclude(cancelBody.content["application/json"].schema.anyOf, { $ref: "#/components/schemas/CancelRequest" })
      assert.deepInclude(spec.body.components.schemas.CancelRequest.properties.reason, { type: "string", maxLength: 1000 })
      assert.notInclude(spec.body.components.schemas.CancelRequest.required ?? [], "reason")
      assert.strictEqual(spec.body.paths["/api/executions/{id}/pause"].post.requestBody, undefined)
      const history = spec.body.paths["/api/executions/{id}/history"].get.responses["200"].content["application/json"].schema
      assert.deepStrictEqual(history.items.properties.reason, { type: "string" })
      assert.notInclude(history.items.required, "reason")
      const docs = yield* raw(HttpClientRequest.get("/docs"))
      assert.strictEqual(docs.status, 200)
      assert.include(docs.body, "SwaggerUIBundle")
      assert.notMatch(docs.body, /<(script|link)[^>]+(src|href)="https?:/)
    }).pipe(Effect.provide(serverWith())))

  it.effect("OpenAPI: a bearer security scheme for /docs' Authorize button; limit, offset and tail are integers", () =>
    Effect.gen(function*() {
      const spec = (yield* raw(HttpClientRequest.get("/openapi.json"))).body
      assert.deepInclude(spec.components.securitySchemes.bearer, { type: "http", scheme: "bearer" })
      // the token applies to every operation, and a server without one needs none
      assert.deepStrictEqual(spec.security, [{ bearer: [] }, {}])
      for (const [path, item] of Object.entries<Record<string, { security?: unknown }>>(spec.paths)) {
        for (const [method, op] of Object.entries(item)) assert.isUndefined(op.security, `${method} ${path} overrides the security`)
      }
      const param = (path: string, name: string) => spec.paths[path].get.parameters.find((p: { name: string }) => p.name === name).schema
      assert.deepInclude(param("/api/executions", "limit"), { type: "integer", minimum: 0, maximum: 1000 })
      assert.deepInclude(param("/api/executions", "offset"), { type: "integer", minimum: 0 })
      assert.deepInclude(param("/api/executions/{id}/history", "tail"), { type: "integer", minimum: 0 })
    }).pipe(Effect.provide(serverWith())))

  it.effect("integer query parameters: whole numbers only; an empty one is absent", () =>
    Effect.gen(function*() {
      const a = yield* startApproval("a.pdf")
      yield* startApproval("b.pdf")
      for (const bad of ["1.5", "1e1", "0x10", "-3", "ten", " 1", "1001"]) {
        const r = yield* raw(HttpClientRequest.get(`/api/executions?limit=${encodeURIComponent(bad)}`))
        assert.strictEqual(r.status, 400, `limit=${bad}`)
        assert.strictEqual(r.body._tag, "HttpApiDecodeError", `limit=${bad}`)
      }
      assert.strictEqual((yield* raw(HttpClientRequest.get("/api/executions?limit=1&offset=1"))).body.length, 1)
      // a form that leaves a field empty sends `?limit=`: no limit, not an error
      const empty = yield* raw(HttpClientRequest.get("/api/executions?limit=&offset="))
      assert.strictEqual(empty.status, 200)
      assert.strictEqual(empty.body.length, 2)
      const history = yield* raw(HttpClientRequest.get(`/api/executions/${a.id}/history?tail=`))
      assert.strictEqual(history.status, 200)
      assert.strictEqual(history.body.length, (yield* Runtime.history(a.id)).length)
      assert.strictEqual((yield* raw(HttpClientRequest.get(`/api/executions/${a.id}/history?tail=1.0`))).status, 400)
      // the typed client sends numbers and gets them back as numbers
      const api = yield* client
      assert.strictEqual((yield* api.executions.list({ urlParams: { limit: 1, offset: 0 } })).length, 1)
    }).pipe(Effect.provide(serverWith())))

  it.effect("streams execution changes as Server-Sent Events, for all executions or one", () =>
    Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      const gated = yield* (yield* client).executions.start({ payload: { procedure: "ops-gated", input: { n: 1 } } })
      yield* until(gated.id, (s) => s.state === "work")
      const response = yield* http.execute(HttpClientRequest.get(`/events?id=${gated.id}`))
      assert.strictEqual(response.status, 200)
      assert.include(response.headers["content-type"]!, "text/event-stream")
      const readUntil = yield* sseReader(response)
      yield* readUntil((t) => t.includes("event: ready"))
      yield* Runtime.pause(gated.id)
      const other = yield* startApproval("not watched")
      yield* Runtime.resume(gated.id)
      yield* release(gated.id)
      const all = yield* readUntil((t) => t.includes(`"status":"succeeded"`))
      const events = all.split("\n\n").filter((b) => b.startsWith("event: execution"))
        .map((b) => JSON.parse(b.slice(b.indexOf("data: ") + 6)))
      assert.deepStrictEqual(events.map((e) => e.status), ["paused", "running", "succeeded"])
      assert.isTrue(events.every((e) => e.executionId === gated.id))
      assert.notInclude(all, other.id)
    }).pipe(Effect.scoped, Effect.provide(serverWith())))

  it.effect("streams changes another process made to the store, found by re-reading it", () =>
    Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      const s = yield* startApproval("elsewhere")
      const response = yield* http.execute(HttpClientRequest.get("/events"))
      const readUntil = yield* sseReader(response)
      yield* readUntil((t) => t.includes("event: ready"))
      // another process (same database) moves the execution: this runtime publishes nothing
      const store = yield* Store.Store
      yield* store.commit({
        snapshot: { ...s, status: "paused", seq: s.seq + 1, rowVersion: s.rowVersion + 1 },
        expectedVersion: s.rowVersion
      })
      yield* TestClock.adjust("1 second")
      const all = yield* readUntil((t) => t.includes(`"cause":"store"`))
      const event = JSON.parse(all.split("\n\n").find((b) => b.includes(`"cause":"store"`))!.split("data: ")[1]!)
      assert.strictEqual(event.executionId, s.id)
      assert.strictEqual(event.status, "paused")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Server.layer({}).pipe(
          Layer.provideMerge(Runtime.layer({ procedures: [Approval, Gated, Broken] })),
          Layer.provideMerge(Store.layerMemory),
          Layer.provideMerge(NodeHttpServer.layerTest)
        )
      )
    ))

  it.effect("GET /health reports the store: 200 while reachable, 503 with the last StoreError during an outage", () => {
    let down = false
    const flaky = Layer.effect(Store.Store, Effect.map(Store.makeMemory, (store) => ({
      ...store,
      create: (snapshot: Execution.Snapshot, transition: Execution.Transition) =>
        down
          ? Effect.fail(new StoreError({ kind: "Unavailable", operation: "create", detail: "database is locked" }))
          : store.create(snapshot, transition)
    })))
    const layer = Server.layer().pipe(
      Layer.provideMerge(Runtime.layer({ procedures: [Approval, Gated, Broken] }).pipe(Layer.provide(flaky))),
      Layer.provideMerge(NodeHttpServer.layerTest)
    )
    return Effect.gen(function*() {
      const up = yield* raw(HttpClientRequest.get("/health"))
      assert.strictEqual(up.status, 200)
      assert.deepStrictEqual(up.body, { storeReachable: true, waitingForStore: 0 })
      down = true
      const refused = yield* raw(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: "x" } })
      ))
      assert.strictEqual(refused.status, 503)
      const health = yield* raw(HttpClientRequest.get("/health"))
      assert.strictEqual(health.status, 503)
      assert.strictEqual(health.body.storeReachable, false)
      assert.strictEqual(health.body.lastStoreError.kind, "Unavailable")
      assert.strictEqual(typeof health.body.unavailableSince, "number")
    }).pipe(Effect.provide(layer))
  })

  it.effect("serves the dashboard's files from disk, and nothing outside its folder", () =>
    Effect.gen(function*() {
      const index = yield* raw(HttpClientRequest.get("/"))
      assert.strictEqual(index.status, 200)
      assert.include(index.body, `<script type="module" src="/assets/app.js">`)
      assert.include(index.headers["content-type"]!, "text/html")
      const deep = yield* raw(HttpClientRequest.get("/executions/abc"))
      assert.strictEqual(deep.status, 200)
      const js = yield* raw(HttpClientRequest.get("/assets/app.js"))
      assert.strictEqual(js.status, 200)
      assert.include(js.headers["content-type"]!, "javascript")
      const css = yield* raw(HttpClientRequest.get("/assets/style.css"))
      assert.include(css.headers["content-type"]!, "text/css")
      for (const p of ["/assets/..%2FServer.ts", "/assets/%2e%2e%2fAuth.ts", "/assets/nope.js"]) {
        const r = yield* raw(HttpClientRequest.get(p))
        assert.strictEqual(r.status, 404, p)
      }
    }).pipe(Effect.provide(serverWith())))
})

describe("HTTP auth", () => {
  const token = "s3cret-token"

  it.effect("with a token, every request needs it: API, events, docs and dashboard", () =>
    Effect.gen(function*() {
      for (const path of ["/api/procedures", "/api/executions", "/openapi.json", "/docs", "/events", "/", "/assets/app.js"]) {
        const r = yield* raw(HttpClientRequest.get(path))
        assert.strictEqual(r.status, 401, path)
      }
      const post = yield* raw(HttpClientRequest.post("/api/executions").pipe(HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: "x" } })))
      assert.strictEqual(post.status, 401)
      assert.strictEqual(post.body._tag, "Unauthorized")
      assert.include(post.body.message, "Authorization: Bearer")
      assert.strictEqual(post.headers["www-authenticate"], "Bearer")
      const wrong = yield* raw(HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.bearerToken("s3cret-tokeN")))
      assert.strictEqual(wrong.status, 401)
      const right = yield* raw(HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.bearerToken(token)))
      assert.strictEqual(right.status, 200)
      const lowercase = yield* raw(HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.setHeader("authorization", `bearer ${token}`)))
      assert.strictEqual(lowercase.status, 200)
      assert.strictEqual((yield* Runtime.list()).length, 0)
      // the typed client with the header
      const api = yield* HttpApiClient.make(ProctorApi, { transformClient: HttpClient.mapRequest(HttpClientRequest.bearerToken(token)) })
      const s = yield* api.executions.start({ payload: { procedure: "ops-approval", input: { doc: "x" } } })
      assert.strictEqual(s.procedure, "ops-approval")
    }).pipe(Effect.provide(serverWith({ token }))))

  it.effect("the dashboard takes the token once as ?token= and then uses a same-site cookie for reads only", () =>
    Effect.gen(function*() {
      const page = yield* raw(HttpClientRequest.get(`/?token=${token}`))
      assert.strictEqual(page.status, 200)
      const cookie = page.headers["set-cookie"]
      assert.isDefined(cookie)
      assert.match(String(cookie), /proctor_token=s3cret-token/)
      assert.match(String(cookie), /HttpOnly/)
      assert.match(String(cookie), /SameSite=Strict/)
      const withCookie = yield* raw(HttpClientRequest.get("/assets/app.js").pipe(HttpClientRequest.setHeader("cookie", `proctor_token=${token}`)))
      assert.strictEqual(withCookie.status, 200)
      const events = yield* raw(HttpClientRequest.get("/api/executions").pipe(HttpClientRequest.setHeader("cookie", `proctor_token=${token}`)))
      assert.strictEqual(events.status, 200)
      // a cookie or query token does not authorise a change: that needs the header
      const post = yield* raw(HttpClientRequest.post(`/api/executions?token=${token}`).pipe(
        HttpClientRequest.setHeader("cookie", `proctor_token=${token}`),
        HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: "x" } })
      ))
      assert.strictEqual(post.status, 401)
      const html = yield* raw(HttpClientRequest.get("/").pipe(HttpClientRequest.setHeader("accept", "text/html")))
      assert.strictEqual(html.status, 401)
      assert.include(html.body, `<form method="get" action="/">`)
    }).pipe(Effect.provide(serverWith({ token }))))

  it.effect("without a token, answers only loopback hosts, and refuses cross-origin changes", () =>
    Effect.gen(function*() {
      const rebound = yield* raw(HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.setHeader("host", "attacker.example:7878")))
      assert.strictEqual(rebound.status, 403)
      assert.include(rebound.body.message, "--token")
      const local = yield* raw(HttpClientRequest.get("/api/procedures").pipe(HttpClientRequest.setHeader("host", "localhost:7878")))
      assert.strictEqual(local.status, 200)
      const s = yield* startApproval()
      const crossSite = yield* raw(HttpClientRequest.post(`/api/executions/${s.id}/cancel`).pipe(
        HttpClientRequest.setHeader("origin", "http://attacker.example")
      ))
      assert.strictEqual(crossSite.status, 403)
      assert.strictEqual((yield* Runtime.get(s.id)).status, "waiting")
    }).pipe(Effect.provide(serverWith())))

  it("refuses to bind a non-loopback address without a token", () => {
    assert.isTrue(Either.isRight(Auth.checkBind({ host: "127.0.0.1", token: undefined })))
    assert.isTrue(Either.isRight(Auth.checkBind({ host: "localhost", token: undefined })))
    assert.isTrue(Either.isRight(Auth.checkBind({ host: "::1", token: undefined })))
    const open = Auth.checkBind({ host: "0.0.0.0", token: undefined })
    assert.isTrue(Either.isLeft(open))
    assert.include(Either.isLeft(open) ? open.left.message : "", "--token")
    assert.isTrue(Either.isLeft(Auth.checkBind({ host: "192.168.1.4", token: "" })))
    assert.isTrue(Either.isRight(Auth.checkBind({ host: "0.0.0.0", token: "t" })))
    assert.isFalse(Auth.isLoopback("127.0.0.1.evil.com"))
    assert.isTrue(Auth.isLoopback("[::1]"))
  })

  it("compares tokens in constant time, whatever their lengths", () => {
    assert.isTrue(Auth.tokenMatches("abc", "abc"))
    assert.isFalse(Auth.tokenMatches("abc", "abcd"))
    assert.isFalse(Auth.tokenMatches("abc", ""))
    assert.isFalse(Auth.tokenMatches("abc", undefined))
    assert.strictEqual(Auth.bearer("Bearer  xyz "), "xyz")
    assert.strictEqual(Auth.bearer("Basic xyz"), undefined)
    assert.strictEqual(Auth.cookie("a=1; proctor_token=t%20k", "proctor_token"), "t k")
    assert.strictEqual(Auth.hostName("[::1]:7878"), "::1")
    assert.strictEqual(Auth.hostName("127.0.0.1:80"), "127.0.0.1")
  })
})


describe("HTTP API: who asked", () => {
  it.effect("requests are shown to plugins as made by the token's name and the user the client says it is", () => {
    const records: Array<Plugin.Record> = []
    const seen = Deferred.unsafeMake<void>(FiberId.none)
    const collector = Plugin.make({
      name: "collector",
      handle: (batch) =>
        Effect.sync(() => {
          records.push(...batch)
          if (records.some((r) => r._tag === "Request" && r.request === "pause")) Deferred.unsafeDone(seen, Exit.void)
        })
    })
    const layer = Server.layer({ token: "t0ken", tokenName: "ops" }).pipe(
      Layer.provideMerge(Runtime.layer({ procedures: [Approval, Gated, Broken], plugins: [collector] }).pipe(Layer.provide(Store.layerMemory))),
      Layer.provideMerge(NodeHttpServer.layerTest)
    )
    return Effect.gen(function*() {
      const as = (user: string | undefined) => (request: HttpClientRequest.HttpClientRequest) =>
        request.pipe(HttpClientRequest.bearerToken("t0ken"), user === undefined ? (r) => r : HttpClientRequest.setHeader("x-proctor-user", user))
      const started = yield* raw(as("alice")(HttpClientRequest.post("/api/executions").pipe(
        HttpClientRequest.bodyUnsafeJson({ procedure: "ops-approval", input: { doc: "d" } })
      )))
      const id = started.body.id as string
      yield* until(id, (s) => s.status === "waiting")
      // a user name that is not a plain name is left out rather than recorded
      yield* raw(as("bob admin; drop")(HttpClientRequest.post(`/api/executions/${id}/pause`)))
      yield* Deferred.await(seen)
      const start = records.find((r) => r._tag === "Transition" && r.transition.executionId === id && r.transition.cause === "start")
      assert.strictEqual(start?._tag === "Transition" ? start.by : "none", "http:ops (user alice)")
      const pause = records.find((r) => r._tag === "Request" && r.executionId === id && r.request === "pause")
      assert.strictEqual(pause?._tag === "Request" ? pause.by : "none", "http:ops")
    }).pipe(Effect.provide(layer))
  })
})
