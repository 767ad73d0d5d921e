/**
 * Constant-memory latency histogram: log-spaced buckets 2% wide from 0.1 µs to ~100 s,
 * so a run of a million transitions records every sample without keeping them.
 */
const BASE = 1.02
const MIN_US = 0.1
const BUCKETS = Math.ceil(Math.log(1e9) / Math.log(BASE)) + 2

export class Histogram {
  private readonly counts = new Float64Array(BUCKETS)
  count = 0
  sum = 0
  max = 0
  /** records a duration in milliseconds */
  record(ms: number) {
    const us = ms * 1000
    const i = us <= MIN_US ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(us / MIN_US) / Math.log(BASE)))
    this.counts[i]!++
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }
  /** the q-quantile in milliseconds (upper edge of its bucket, within 2%) */
  quantile(q: number): number {
    if (this.count === 0) return NaN
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return i === 0 ? MIN_US / 1000 : Math.min(this.max, (MIN_US * BASE ** i) / 1000)
    }
    return this.max
  }
  get mean() {
    return this.count === 0 ? NaN : this.sum / this.count
  }
  /** the non-empty buckets as [index, count] pairs, to send to another process */
  toSparse(): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]! > 0) out.push([i, this.counts[i]!])
    return out
  }
  /** adds another process's histogram (`toSparse`, its max and sum) to this one */
  addSparse(sparse: ReadonlyArray<readonly [number, number]>, max: number, sum: number) {
    for (const [i, c] of sparse) {
      this.counts[i]! += c
      this.count += c
    }
    this.sum += sum
    if (max > this.max) this.max = max
  }
}

export const round = (n: number, digits = 3) => {
  if (!Number.isFinite(n)) return n
  const p = 10 ** Math.max(0, digits - Math.max(0, Math.floor(Math.log10(Math.abs(n))) + 1))
  return Math.round(n * p) / p
}
