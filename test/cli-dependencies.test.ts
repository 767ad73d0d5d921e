/**
 * `proctor dependencies`: the dependencies' breakers, bulkheads and rate limits, from a
 * running server (its state), or from the loaded modules as a new runtime starts them;
 * and `proctor list --tenant`.
 */
import * as path from "node:path"
import { HttpServer } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { Dependency, Procedure, Runtime, Store } from "proctor"
import { runCli } from "../src/cli/commands.js"
import * as Out from "../src/cli/output.js"
import * as Server from "../src/http/Server.js"
import { cliSandbox } from "./fixtures/cliSandbox.js"

let db = ""
cliSandbox("proctor-cli-deps-", (d) => {
  db = path.join(d, "proctor.db")
})

const cli = (...argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const capture = Out.makeCapture()
    const code = yield* runCli(argv).pipe(Effect.provideService(Out.Output, capture.service), Effect.provide(NodeContext.layer))
    return { code, out: capture.stdout(), err: capture.stderr() }
  })

class Down extends Schema.TaggedError<Down>()("Down", {}) {}

const Mail = Dependency.make("mail", { breaker: { consecutiveFailures: 1, coolDown: "1 hour" }, bulkhead: { concurrency: 3, queue: 5 } })
const Notify = Procedure.make("notify", { version: 1, input: Schema.Struct({}), context: Schema.Struct({}) }, {
  initial: "send",
  states: {
    send: Procedure.step({ dependency: Mail, run: () => Effect.fail(new Down()), transient: ["Down"], retry: Schedule.stop, next: "sent" }),
    sent: Procedure.final()
  }
})

describe("proctor dependencies", () => {
  it.live("shows a server's breakers: open after a failure, with when probes go through", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        Server.layerNode({ host: "127.0.0.1", port: 0 }).pipe(
          Layer.provideMerge(Runtime.layer({ procedures: [Notify] }).pipe(Layer.provide(Store.layerMemory)))
        )
      )
      const address = Context.get(context, HttpServer.HttpServer).address
      const url = `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}`
      const runtime = Context.get(context, Runtime.Runtime)
      yield* runtime.await(yield* runtime.start(Notify, {}))
      const text = yield* cli("dependencies", "--server", url)
      assert.strictEqual(text.code, 0, text.err)
      assert.match(text.out, /mail\s+OPEN until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+0\/3 running, 0\/5 queued\s+-\s+1\s+1\s+0/)
      assert.include(text.out, `The state in the server at ${url}`)
      const json = yield* cli("dependencies", "--json", "--server", url)
      const [mail] = JSON.parse(json.out) as Array<Dependency.Status>
      assert.strictEqual(mail!.breaker!.state, "open")
      // and the tenant an execution was started for filters `list`
      const acme = yield* runtime.start(Notify, {}, { tenant: "acme" })
      yield* runtime.await(acme)
      const listed = JSON.parse((yield* cli("list", "--tenant", "acme", "--json", "--server", url)).out) as Array<{ id: string; tenant: string }>
      assert.deepStrictEqual(listed.map((s) => [s.id, s.tenant]), [[acme, "acme"]])
    }).pipe(Effect.scoped))

  it.live("without a server: the loaded modules' dependencies, as a new runtime starts them", () =>
    Effect.gen(function*() {
      const r = yield* cli("dependencies", "--module", "examples/payments.ts", "--no-examples", "--db", db)
      assert.strictEqual(r.code, 0, r.err)
      assert.match(r.out, /payments\s+closed \(0\/0 failed, 0 in a row\)\s+0\/2 running, 0\/20 queued\s+5\/5 free \(tokenBucket\)/)
      assert.include(r.out, "pass --server URL")
      const none = yield* cli("dependencies", "--module", "test/fixtures/ops.ts", "--no-examples", "--db", db)
      assert.include(none.out, "No step names a dependency")
    }))
})
