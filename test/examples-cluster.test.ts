/**
 * examples/cluster.ts on Postgres (needs PROCTOR_TEST_PG_URL): three runner processes, one
 * killed with SIGKILL, every shipment succeeded with each state once in its history; without
 * DATABASE_URL it says how to run it and exits 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { freePorts } from "./fixtures/clusterProcesses.js"

const pgUrl = process.env.PROCTOR_TEST_PG_URL
const example = path.join(__dirname, "..", "examples", "cluster.ts")

const run = (env: Record<string, string>) =>
  Effect.async<{ code: number | null; out: string }>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", example], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.on("data", (chunk) => void (out += String(chunk)))
    child.on("exit", (code) => resume(Effect.succeed({ code, out })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

describe("examples/cluster.ts", () => {
  it.live("without DATABASE_URL it says how to run it", () =>
    Effect.gen(function*() {
      const { code, out } = yield* run({ DATABASE_URL: "" })
      assert.strictEqual(code, 0)
      assert.include(out, "DATABASE_URL=postgres://")
    }))

  it.live.skipIf(pgUrl === undefined || pgUrl === "")("three runners, one killed: all 12 shipments succeed, the killed runner's finished by the others", () =>
    Effect.gen(function*() {
      const { code, out } = yield* run({ DATABASE_URL: pgUrl!, PORT: String(yield* freePorts(3)) })
      assert.strictEqual(code, 0, out)
      assert.match(out, /killed runner 2 .* with SIGKILL while [1-9]\d* shipments were in its steps/)
      assert.include(out, "all 12 shipments succeeded")
      assert.include(out, "no committed step ran again")
      // a shipment that began on runner 2 ended elsewhere
      assert.match(out, /pack on runner 2, .*handOver on runner [13]/)
    }), 150_000)
})
