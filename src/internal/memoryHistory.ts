/**
 * An execution's history as the memory store keeps it: two flat arrays instead of a
 * `Transition` object per row. Per row, four strings (from, to, status, cause) in one array
 * and three numbers (seq, at, duration) unboxed in another; the rare `event` and `reason`
 * by seq on the side. A row object with its boxed `at` cost ~104 B, and an execution in
 * memory keeps every row it committed; these cost ~56 B (W1's heap pass, docs/benchmarks.md).
 * `rows` makes the `Transition`s again when the history is read.
 */
import type { Transition } from "../Execution.js"

const texts = 4
const numbers = 3

export class History {
  private text: Array<string> = []
  /** only numbers: V8 keeps them unboxed (8 B each) */
  private num: Array<number> = []
  private extras: Map<number, { readonly event?: unknown; readonly reason?: string | undefined }> | undefined = undefined

  get length() {
    return this.num.length / numbers
  }

  push(t: Transition) {
    this.text.push(t.from, t.to, t.status, t.cause)
    this.num.push(t.seq, t.at, t.duration)
    if (t.event !== undefined || t.reason !== undefined) (this.extras ??= new Map()).set(t.seq, { event: t.event, reason: t.reason })
  }

  /** rows `from` (inclusive) to `to` (exclusive), oldest first */
  rows(executionId: string, from = 0, to = this.length): Array<Transition> {
    const out: Array<Transition> = []
    for (let i = Math.max(0, from); i < to; i++) {
      const row: { -readonly [K in keyof Transition]: Transition[K] } = {
        executionId,
        seq: this.num[i * numbers]!,
        from: this.text[i * texts]!,
        to: this.text[i * texts + 1]!,
        status: this.text[i * texts + 2] as Transition["status"],
        cause: this.text[i * texts + 3] as Transition["cause"],
        at: this.num[i * numbers + 1]!,
        duration: this.num[i * numbers + 2]!
      }
      const extra = this.extras?.get(row.seq)
      if (extra?.event !== undefined) row.event = extra.event
      if (extra?.reason !== undefined) row.reason = extra.reason
      out.push(row)
    }
    return out
  }

  /** Keeps the rows `keep` says to; returns how many it deleted. */
  retain(executionId: string, keep: (t: Transition, i: number, length: number) => boolean): number {
    const all = this.rows(executionId)
    const kept = all.filter((t, i) => keep(t, i, all.length))
    if (kept.length === all.length) return 0
    this.text = []
    this.num = []
    this.extras = undefined
    for (const t of kept) this.push(t)
    return all.length - kept.length
  }
}
