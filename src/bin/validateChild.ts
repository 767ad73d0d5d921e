// The child process of `Validate.run` (`proctor validate`): the crash-recovery check's
// process that is killed and the one that resumes, and the one that measures the heap per
// execution (under `node --expose-gc`). What each does is in src/internal/validateChild.ts;
// src/internal/validateProcess.ts starts it. Exits 0 when its mode finished, 1 otherwise.
import * as Effect from "effect/Effect"
import { main } from "../internal/validateChild.js"

Effect.runPromise(main(process.argv.slice(2))).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
