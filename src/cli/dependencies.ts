/**
 * What `proctor dependencies` prints: one line per dependency with its breaker state,
 * bulkhead occupancy, rate-limit room and counts, and a note on whose state it is (the
 * state is per process: a server's, or a new runtime's when no server runs).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Dependency from "../Dependency.js"
import { Output, table } from "./output.js"

const when = (at: number) => new Date(at).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z")

const breakerOf = (b: Dependency.Status["breaker"]) => {
  if (b === undefined) return "-"
  if (b.state === "open") return `OPEN until ${b.probeAt === undefined ? "?" : when(b.probeAt)}`
  if (b.state === "half-open") return "half-open (probing)"
  return `closed (${b.failures}/${b.calls} failed, ${b.consecutiveFailures} in a row)`
}

/**
 * Prints the dependencies; `server` is the URL whose state they are, or none for this
 * process's new runtime.
 *
 * @since 0.1.0
 * @category printing
 */
export const print = (dependencies: ReadonlyArray<Dependency.Status>, server: string | undefined) =>
  Effect.flatMap(Output, (o) => {
    if (dependencies.length === 0) {
      return o.out("No step names a dependency. Name one with Procedure.step({ dependency: Dependency.make(...) }).\n")
    }
    const rows = [
      ["DEPENDENCY", "BREAKER", "BULKHEAD", "RATE LIMIT", "CALLS", "FAILED", "REFUSED"],
      ...dependencies.map((d) => [
        d.name,
        breakerOf(d.breaker),
        d.bulkhead === undefined ? "-" : `${d.bulkhead.running}/${d.bulkhead.concurrency} running, ${d.bulkhead.queued}/${d.bulkhead.queue} queued`,
        d.rateLimit === undefined ? "-" : `${d.rateLimit.available}/${d.rateLimit.limit} free (${d.rateLimit.kind})`,
        String(d.calls),
        String(d.failures),
        Object.entries(d.refused).filter(([, n]) => n > 0).map(([tag, n]) => `${n} ${tag}`).join(", ") || "0"
      ])
    ]
    const note = server === undefined
      ? "The state of a new runtime in this process (nothing called yet). Breakers, bulkheads and rate limits are per process: " +
        "pass --server URL (or PROCTOR_SERVER) to see those of the server that runs the executions.\n"
      : `The state in the server at ${server} (per process: other runners keep their own).\n`
    return o.out(table(rows) + note)
  })
