/**
 * `proctor validate`: the readiness report of the procedures the CLI loads (`--module`,
 * `PROCTOR_MODULES`, the examples in a checkout), as Markdown or JSON, with its progress on
 * stderr. The checks themselves are the library's (`Validate.run`); this module only
 * chooses where they run: never in the database itself, but in a new folder beside it
 * (same disk, same file system), removed afterwards.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Data, Effect, Option } from "effect"
import * as SqlStore from "../SqlStore.js"
import * as Validate from "../Validate.js"
import { loadNamed } from "./actions.js"
import * as Out from "./output.js"
import { resolveDbPath } from "./store.js"

/**
 * The deployment is not ready: the report says why. Exit code 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotReady extends Data.TaggedError("NotReady")<{ readonly failures: ReadonlyArray<string> }> {
  override get message() {
    return `NOT READY: ${this.failures.length} check${this.failures.length === 1 ? "" : "s"} failed (see the report): ${this.failures.join("; ")}`
  }
}

/**
 * The folder the checks run in: a new one beside the database (so the checks meet the
 * database's disk and file system), or in the system's temporary folder for `:memory:`
 * or when the database's folder does not exist. Removed with the scope.
 */
const scratchFor = (dbPath: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const beside = dbPath === ":memory:" ? undefined : path.dirname(path.resolve(dbPath))
      const parent = beside !== undefined && fs.existsSync(beside) ? beside : os.tmpdir()
      return fs.mkdtempSync(path.join(parent, ".proctor-validate-"))
    }),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** @internal */
export const validate = (a: {
  readonly db: Option.Option<string>
  readonly module: ReadonlyArray<string>
  readonly noExamples: boolean
  readonly json: boolean
}) =>
  Effect.scoped(Effect.gen(function*() {
    const loaded = yield* loadNamed(a)
    const dbPath = resolveDbPath(Option.getOrUndefined(a.db))
    const dir = yield* scratchFor(dbPath)
    const memory = dbPath === ":memory:"
    const flows = path.join(dir, "flows.db")
    const output = yield* Out.Output
    const report = yield* Validate.run({
      procedures: loaded.map((l) => ({ procedure: l.procedure, source: l.source })),
      migrations: [...new Set(loaded.flatMap((l) => l.migrations ?? []))],
      store: memory ? undefined : SqlStore.layerSqlite({ filename: flows }),
      storeName: memory ? "the memory store (--db :memory:)" : `a new SQLite file beside the database ${dbPath} (${flows}; the database itself is not opened)`,
      dir,
      measureOn: memory ? "memory" : "sqlite",
      onProgress: (message) => output.err(`validate: ${message}\n`)
    })
    yield* a.json ? Out.json(report) : Effect.flatMap(Out.Output, (o) => o.out(Validate.toMarkdown(report)))
    if (!report.ready) return yield* new NotReady({ failures: report.failures })
  }))
