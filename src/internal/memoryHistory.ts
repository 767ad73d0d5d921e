/**
 * An execution's history as the memory store keeps it: one flat array of numbers instead
 * of a `Transition` object per row. Per row four numbers, unboxed: the row's kind, its
 * seq, `at` and `duration`; the kind is the row's four strings (from, to, status, cause),
 * kept once per store (`Kinds`: a procedure's rows take few of them); the rare `event` and
 * `reason` by seq on the side. A row object with its boxed `at` cost ~104 B, and an
 * execution in memory keeps every row it committed; these cost ~32 B (W1's heap pass,
 * docs/benchmarks.md). `rows` makes the `Transition`s again when the history is read.
 */
import type { Transition } from "../Execution.js"

/** numbers per row: kind, seq, at, duration */
const width = 4

/** a row's strings, made once per distinct combination */
interface Kind {
  readonly from: string
  readonly to: string
  readonly status: Transition["status"]
  readonly cause: Transition["cause"]
}

/** the rarer fields of a row, by seq; with its strings when the store's `Kinds` are full */
interface Extra extends Partial<Kind> {
  readonly event?: unknown
  readonly reason?: string | undefined
}

/** distinct kinds a store keeps before it keeps the strings of a row with the row (`Extra`) */
const maxKinds = 4096

type Level<A> = Map<string, A>

/**
 * The kinds of rows of one store, each a number: found by its four strings (a map per
 * string, so a lookup makes nothing), up to `maxKinds` of them.
 */
export class Kinds {
  private readonly list: Array<Kind> = []
  private readonly index: Level<Level<Level<Level<number>>>> = new Map()
  constructor(private readonly max = maxKinds) {}

  /** the number of `t`'s kind, made if new; -1 when the store keeps no more kinds */
  of(t: Transition): number {
    const byTo = this.index.get(t.from) ?? this.put(this.index, t.from, new Map())
    const byStatus = byTo.get(t.to) ?? this.put(byTo, t.to, new Map())
    const byCause = byStatus.get(t.status) ?? this.put(byStatus, t.status, new Map())
    const found = byCause.get(t.cause)
    if (found !== undefined) return found
    if (this.list.length >= this.max) return -1
    this.list.push({ from: t.from, to: t.to, status: t.status, cause: t.cause })
    byCause.set(t.cause, this.list.length - 1)
    return this.list.length - 1
  }

  get(kind: number): Kind {
    return this.list[kind]!
  }

  private put<A>(level: Level<A>, key: string, value: A): A {
    level.set(key, value)
    return value
  }
}

export class History {
  /** only numbers: V8 keeps them unboxed (8 B each) */
  private num: Array<number> = []
  private extras: Map<number, Extra> | undefined = undefined

  get length() {
    return this.num.length / width
  }

  push(kinds: Kinds, t: Transition) {
    const kind = kinds.of(t)
    this.num.push(kind, t.seq, t.at, t.duration)
    if (kind === -1) this.extra(t.seq, { from: t.from, to: t.to, status: t.status, cause: t.cause, event: t.event, reason: t.reason })
    else if (t.event !== undefined || t.reason !== undefined) this.extra(t.seq, { event: t.event, reason: t.reason })
  }

  private extra(seq: number, extra: Extra) {
    ;(this.extras ??= new Map()).set(seq, extra)
  }

  /** rows `from` (inclusive) to `to` (exclusive), oldest first */
  rows(kinds: Kinds, executionId: string, from = 0, to = this.length): Array<Transition> {
    const out: Array<Transition> = []
    for (let i = Math.max(0, from); i < to; i++) {
      const kind = this.num[i * width]!
      const seq = this.num[i * width + 1]!
      const extra = this.extras?.get(seq)
      const strings = kind === -1 ? extra as Kind : kinds.get(kind)
      const row: { -readonly [K in keyof Transition]: Transition[K] } = {
        executionId,
        seq,
        from: strings.from,
        to: strings.to,
        status: strings.status,
        cause: strings.cause,
        at: this.num[i * width + 2]!,
        duration: this.num[i * width + 3]!
      }
      if (extra?.event !== undefined) row.event = extra.event
      if (extra?.reason !== undefined) row.reason = extra.reason
      out.push(row)
    }
    return out
  }

  /** Keeps the rows `keep` says to; returns how many it deleted. */
  retain(kinds: Kinds, executionId: string, keep: (t: Transition, i: number, length: number) => boolean): number {
    const all = this.rows(kinds, executionId)
    const kept = all.filter((t, i) => keep(t, i, all.length))
    if (kept.length === all.length) return 0
    this.num = []
    this.extras = undefined
    for (const t of kept) this.push(kinds, t)
    return all.length - kept.length
  }
}
