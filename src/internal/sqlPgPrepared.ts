/**
 * The Postgres writer's own connection, on which the group commit's statement
 * (`sqlPgScript.ts`) is prepared once and then only bound and run. An unnamed statement is
 * parsed and planned on every round trip: for the one-commit batch of W7 that was most of
 * the server's time per commit (parse 0.25 ms, plan 0.25 ms, run 0.12 ms, from Postgres's
 * log on this machine). The statement binds each column's values as one array (a batch of
 * one, single values), so its text, and its plan, is the same whatever the batch's size; the
 * connection plans it generically (`plan_cache_mode`): a custom plan per batch would cost the
 * planning saved.
 *
 * `@effect/sql` has no named statements, so the query goes to the `pg` client of a reserved
 * connection (`Connection.pg`, as `@effect/sql-pg` 0.53 keeps it); the writer holds it for
 * its life and gives it back to the pool, setting reset, when the store closes. One
 * statement is sent by name (`pg` parses it on a connection the first time); two that must
 * share a transaction go in one simple-query message as `EXECUTE`s of statements prepared
 * with `PREPARE` (values as quoted literals: such a message takes no parameters). Without a
 * `pg` client (another driver under `SqlClient`), statements run unnamed on the pool, the
 * literals in their text. A connection that fails is given back (the pool drops a broken
 * one) and the next batch reserves another.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Exit, Scope } from "effect"
import { createHash } from "node:crypto"
import { arrayText, literal } from "./sqlPgBatch.js"
import type { Value } from "./sqlPgBatch.js"
import { errorCode } from "./sqlErrors.js"
import type { Row } from "./sqlSchema.js"

/** What this module uses of a `pg` client. */
interface PgQueryable {
  readonly query: (
    config: string | { readonly name: string; readonly text: string; readonly values: ReadonlyArray<unknown> },
    callback: (error: Error | null | undefined, result: unknown) => void
  ) => unknown
}

/** A statement and its parameters (`$n`, in order). */
export interface Statement {
  readonly text: string
  readonly params: ReadonlyArray<Value | ReadonlyArray<Value>>
}

/** the hash of each text met, which names it on a connection: two texts never share a name */
const hashes = new Map<string, string>()
/** texts kept named; past this many (a shape nobody expected), the rest run unnamed */
const maxNames = 256

const hashOf = (text: string): string | undefined => {
  let hash = hashes.get(text)
  if (hash === undefined && hashes.size < maxNames) {
    hash = createHash("sha256").update(text).digest("hex").slice(0, 32)
    hashes.set(text, hash)
  }
  return hash
}

/** the statements `PREPARE`d on each connection (`pg` keeps its own named ones itself) */
const preparedOn = new WeakMap<PgQueryable, Set<string>>()

const pgOf = (conn: unknown): PgQueryable | undefined => {
  const pg = (conn as { readonly pg?: unknown }).pg
  return typeof pg === "object" && pg !== null && typeof (pg as { query?: unknown }).query === "function" ? pg as PgQueryable : undefined
}

/** the rows of each statement of the message */
const query = (pg: PgQueryable, config: Parameters<PgQueryable["query"]>[0]) =>
  Effect.async<ReadonlyArray<ReadonlyArray<Row>>, SqlError>((resume) => {
    pg.query(config, (error, result) => {
      if (error) return resume(Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" })))
      const results = (Array.isArray(result) ? result : [result]) as ReadonlyArray<{ readonly rows?: ReadonlyArray<Row> } | undefined>
      resume(Effect.succeed(results.map((r) => r?.rows ?? [])))
    })
  })

/** a parameter as a literal: an array as its text, quoted */
const argument = (value: Value | ReadonlyArray<Value>): string =>
  Array.isArray(value) ? literal(arrayText(value as ReadonlyArray<Value>)) : literal(value as Value)

/** the statement with its parameters written in as literals */
const inline = (s: Statement): string => s.text.replace(/\$(\d+)/g, (_, n: string) => argument(s.params[Number(n) - 1]!))

/** a statement's own failure (a constraint, a lock timeout) leaves the connection usable; anything else gives it back */
const connectionIntact = (error: SqlError) => {
  const code = errorCode(error)
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !/^(08|53|57|58|XX)/.test(code)
}

export interface Session {
  /** runs one statement, prepared by name on the writer's connection; its rows (as the only element) */
  readonly run: (statement: Statement) => Effect.Effect<ReadonlyArray<ReadonlyArray<Row>>, SqlError>
  /** runs these statements in one message (one transaction), each prepared on the writer's connection; the rows of each */
  readonly script: (statements: ReadonlyArray<Statement>) => Effect.Effect<ReadonlyArray<ReadonlyArray<Row>>, SqlError>
  /** gives the connection back to the pool */
  readonly close: Effect.Effect<void>
}

/** The writer's session on `sql`: its connection is reserved at the first statement. */
export const session = (sql: SqlClient.SqlClient): Session => {
  let held: { readonly pg: PgQueryable; readonly scope: Scope.CloseableScope } | undefined
  // no `pg` client under this SqlClient: every statement runs unnamed on the pool
  let unnamed = false

  const release = (exit: Exit.Exit<unknown, unknown>) =>
    Effect.suspend(() => {
      const h = held
      held = undefined
      if (h === undefined) return Effect.void
      // the setting reset before the connection goes back to the pool (a broken one is dropped by it)
      const reset = Exit.isSuccess(exit) ? Effect.ignore(query(h.pg, "RESET plan_cache_mode")) : Effect.void
      return Effect.zipRight(reset, Scope.close(h.scope, exit))
    })

  const acquire = Effect.gen(function*() {
    const scope = yield* Scope.make()
    const conn = yield* Effect.onError(Scope.extend(sql.reserve, scope), (cause) => Scope.close(scope, Exit.failCause(cause)))
    const pg = pgOf(conn)
    if (pg === undefined) {
      unnamed = true
      yield* Scope.close(scope, Exit.void)
      return undefined
    }
    // a server without the setting (before Postgres 12) plans as it decides
    yield* Effect.ignore(query(pg, "SET plan_cache_mode = force_generic_plan"))
    held = { pg, scope }
    return pg
  })

  /** the held connection's `pg` client, reserved now if none is held; `undefined`: none to be had */
  const connection = Effect.suspend(() => unnamed ? Effect.succeed(undefined) : held !== undefined ? Effect.succeed(held.pg) : acquire)

  const unnamedRun = (statements: ReadonlyArray<Statement>) =>
    Effect.map(
      statements.length === 1
        ? sql.unsafe<Row>(statements[0]!.text, statements[0]!.params)
        : sql.unsafe<Row>(statements.map(inline).join(";\n"), []),
      // a message of several statements answers with the rows of each
      (result) => (statements.length === 1 ? [result] : result) as unknown as ReadonlyArray<ReadonlyArray<Row>>
    )

  const onFailure = (pg: PgQueryable) => (error: SqlError) => {
    // a statement gone from the connection (`DEALLOCATE` by someone else) is prepared again next time
    if (errorCode(error) === "26000") preparedOn.delete(pg)
    return connectionIntact(error) ? Effect.void : release(Exit.fail(error))
  }

  const run = (statement: Statement) =>
    Effect.flatMap(connection, (pg) => {
      const hash = hashOf(statement.text)
      if (pg === undefined || hash === undefined) return unnamedRun([statement])
      return query(pg, { name: `proctor_p_${hash}`, text: statement.text, values: statement.params }).pipe(Effect.tapError(onFailure(pg)))
    })

  const script = (statements: ReadonlyArray<Statement>) =>
    Effect.flatMap(connection, (pg) => {
      const named = statements.map((s) => hashOf(s.text))
      if (pg === undefined || named.some((hash) => hash === undefined)) return unnamedRun(statements)
      const prepared = preparedOn.get(pg) ?? new Set<string>()
      preparedOn.set(pg, prepared)
      const names = named.map((hash) => `proctor_s_${hash}`)
      // each in a message of its own, before the batch: a PREPARE's fate is not tied to the batch's transaction
      const prepare = Effect.forEach(statements, (s, k) => {
        const name = names[k]!
        if (prepared.has(name)) return Effect.void
        return query(pg, `PREPARE ${name} AS ${s.text}`).pipe(
          // one left on the connection by an earlier session of this process is the same text (its name is the text's hash)
          Effect.catchIf((error) => errorCode(error) === "42P05", () => Effect.void),
          Effect.tap(() => prepared.add(name))
        )
      }, { discard: true })
      const execute = statements.map((s, k) => `EXECUTE ${names[k]}(${s.params.map(argument).join(", ")})`).join(";\n")
      return Effect.zipRight(prepare, query(pg, execute)).pipe(Effect.tapError(onFailure(pg)))
    })

  return { run, script, close: release(Exit.void) }
}
