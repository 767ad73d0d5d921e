/**
 * What a bench child process uses to talk to the orchestrator (bench/index.ts): figures go
 * to stdout as `@@result {json}` lines, progress as plain lines on stderr.
 */
import * as v8 from "node:v8"

export interface Figure {
  readonly workload: string
  readonly system: string
  readonly n: number
  readonly metric: string
  readonly value: number
  readonly unit: string
  readonly note?: string | undefined
}

export const report = (figure: Figure) => {
  process.stdout.write(`@@result ${JSON.stringify(figure)}\n`)
}

/** a reporter bound to one workload and system */
export const reporter = (workload: string, system: string) => (n: number, metric: string, value: number, unit: string, note?: string) =>
  report({ workload, system, n, metric, value, unit, ...(note === undefined ? {} : { note }) })

export const progress = (message: string) => {
  process.stderr.write(`${message}\n`)
}

const gcFn = (globalThis as { gc?: () => void }).gc

/** full GC (the child runs with --expose-gc); twice, so weak and finalized objects go too */
export const gc = () => {
  if (gcFn === undefined) throw new Error("run the bench child with node --expose-gc")
  gcFn()
  gcFn()
}

/** heap in use after a full GC, in bytes */
export const heapAfterGc = () => {
  gc()
  return v8.getHeapStatistics().used_heap_size
}

/** the resident set now, in MB */
export const rssMb = () => process.memoryUsage.rss() / 1048576

/** the highest resident set this process has had, in MB */
export const peakRssMb = () => process.resourceUsage().maxRSS / 1024

export const argv = <A>(): A => JSON.parse(process.argv[3] ?? "{}") as A

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** resolves when `done()` turns true, checking every `ms` */
export const until = async (done: () => boolean, ms = 5, timeoutMs = 600_000) => {
  const start = performance.now()
  while (!done()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms`)
    await sleep(ms)
  }
}

/**
 * Runs `pass` up to `reps` times, and no more once `budgetSeconds` have gone by; returns
 * the fastest run. The fastest of a few is the one least disturbed by whatever else the
 * machine was doing.
 */
export const bestOf = async <A extends { readonly seconds: number }>(
  reps: number,
  budgetSeconds: number,
  pass: () => Promise<A>
): Promise<A & { readonly runs: number }> => {
  const start = performance.now()
  let best: A | undefined
  let runs = 0
  while (runs < Math.max(1, reps)) {
    const result = await pass()
    runs++
    if (best === undefined || result.seconds < best.seconds) best = result
    if ((performance.now() - start) / 1000 > budgetSeconds) break
  }
  return { ...best!, runs }
}

export const bestNote = (runs: number) => (runs > 1 ? `fastest of ${runs} runs` : undefined)
