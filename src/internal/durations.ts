/**
 * Checking the duration options of the state constructors. Effect's `Duration.decode`
 * turns a negative or NaN input into zero and throws on a malformed string, which would
 * hide the mistake: the constructors record the issue instead, and `validate` refuses the
 * procedure, naming the state and the field.
 */
import { Duration } from "effect"

/**
 * What is wrong with a duration option, or `undefined` when it is finite and not negative.
 * Effect's `Duration.decode` turns a negative or NaN input into zero and throws on a
 * malformed string, which would hide the mistake: the constructors keep the issue for
 * `validate` to refuse the procedure, naming the state.
 */
export const durationIssue = (input: Duration.DurationInput): string | undefined => {
  const ofNumber = (n: number, shown: string) =>
    Number.isNaN(n) ? "is NaN" : n === Infinity ? "is infinite" : n < 0 ? `is negative (${shown})` : undefined
  if (Duration.isDuration(input)) return Duration.isFinite(input) ? undefined : "is infinite"
  if (typeof input === "number") return ofNumber(input, `${input} ms`)
  if (typeof input === "bigint") return input < BigInt(0) ? `is negative (${input} ns)` : undefined
  if (Array.isArray(input)) {
    const [seconds, nanos] = input as readonly [number, number]
    return ofNumber(seconds, `[${seconds}, ${nanos}]`) ?? ofNumber(nanos, `[${seconds}, ${nanos}]`) ??
      ofNumber(seconds * 1e9 + nanos, `[${seconds}, ${nanos}]`)
  }
  if (typeof input === "string") {
    try {
      Duration.decode(input)
    } catch {
      return `is not a duration ("${input}"); write it like "30 seconds"`
    }
    return input.startsWith("-") && Number.parseFloat(input) !== 0 ? `is negative ("${input}")` : undefined
  }
  return `is not a duration (${String(input)})`
}

/** Decodes a duration option; a bad one is recorded in `issues` (as `field ...`) and decodes to zero. */
export const decodeDuration = (field: string, input: Duration.DurationInput, issues: Array<string>): Duration.Duration => {
  const issue = durationIssue(input)
  if (issue === undefined) return Duration.decode(input)
  issues.push(`\`${field}\` ${issue}`)
  return Duration.zero
}

