/**
 * An execution's record for an audit: its export as JSON Lines (the snapshot, every
 * history row, every error-log entry) and the check that the history is what the
 * procedure's rules produce (`verify`, by replaying `transition` over it; `replay.ts`).
 */
import { Effect, Either } from "effect"
import type { ExecutionNotFound, StoreError } from "../Errors.js"
import { DefinitionError, ValidationError } from "../Errors.js"
import type { Snapshot } from "../Execution.js"
import type { StoreService } from "../Store.js"
import * as Replay from "./replay.js"
import type { Compiled } from "./transition.js"

export const make = (
  store: StoreService,
  getSnapshot: (id: string) => Effect.Effect<Snapshot, ExecutionNotFound | StoreError>,
  lookup: (snapshot: Snapshot) => Compiled | undefined,
  unavailable: (snapshot: Snapshot) => string
) => {
  const exportHistory = (id: string) =>
    Effect.gen(function*() {
      const snapshot = yield* getSnapshot(id)
      const [history, errors] = yield* Effect.all([store.history(id), store.errors(id)])
      const lines = [JSON.stringify({ type: "execution", snapshot })]
      for (const t of history) lines.push(JSON.stringify({ type: "transition", ...t }))
      for (const e of errors) lines.push(JSON.stringify({ type: "error", ...e }))
      return lines.join("\n") + "\n"
    })

  const verifyExport = (jsonl: string) =>
    Effect.gen(function*() {
      const parsed = Replay.parseExport(jsonl)
      if (Either.isLeft(parsed)) return yield* new ValidationError({ procedure: "(export)", subject: "input", issue: parsed.left })
      const { history, snapshot } = parsed.right
      const compiled = lookup(snapshot)
      if (compiled === undefined) {
        return yield* new DefinitionError({
          procedure: snapshot.procedure,
          reason: unavailable(snapshot)
        })
      }
      return Replay.verify(compiled, snapshot, history)
    })

  const verify = (id: string) => Effect.flatMap(exportHistory(id), verifyExport).pipe(
    Effect.catchTag("ValidationError", (e) => Effect.die(e))
  )

  return { exportHistory, verify, verifyExport }
}
