import { assert, describe, it } from "@effect/vitest"
import type { Execution } from "proctor"
import { History, Kinds } from "../src/internal/memoryHistory.js"

const row = (seq: number, from: string, to: string, extra: Partial<Execution.Transition> = {}): Execution.Transition => ({
  executionId: "e",
  seq,
  from,
  to,
  status: "running",
  cause: "step",
  at: 1_700_000_000_000 + seq,
  duration: seq,
  ...extra
})

describe("the memory store's history", () => {
  it("gives back the rows it was given, their strings kept once per kind", () => {
    const kinds = new Kinds()
    const a = new History()
    const b = new History()
    const rows = [row(1, "", "s1", { cause: "start" }), row(2, "s1", "s2"), row(3, "s2", "s2", { cause: "event:Go", event: { _tag: "Go" } }), row(4, "s2", "done", { reason: "why" })]
    for (const t of rows) a.push(kinds, t)
    for (const t of rows) b.push(kinds, t)
    assert.deepStrictEqual(a.rows(kinds, "e"), rows)
    assert.deepStrictEqual(b.rows(kinds, "e", 2), rows.slice(2))
    assert.strictEqual(a.length, 4)
  })

  it("keeps a row's strings with the row once the store keeps no more kinds", () => {
    const kinds = new Kinds(2)
    const h = new History()
    const rows = [row(1, "", "a", { cause: "start" }), row(2, "a", "b"), row(3, "b", "c", { reason: "r" }), row(4, "c", "d"), row(5, "a", "b")]
    for (const t of rows) h.push(kinds, t)
    assert.deepStrictEqual(h.rows(kinds, "e"), rows)
    // retention keeps the rows it is told to, kinds or not
    assert.strictEqual(h.retain(kinds, "e", (t) => t.seq % 2 === 1), 2)
    assert.deepStrictEqual(h.rows(kinds, "e"), rows.filter((t) => t.seq % 2 === 1))
  })
})
