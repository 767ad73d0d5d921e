/**
 * The log annotations of a run (`executionId`, `procedure`) and of a step's attempt (with
 * `state` and `attempt`), shared between executions where they can be.
 *
 * Effect's log annotations are a HashMap (a trie) whose entries cost ~120 B each, and a
 * run keeps two of them while an attempt runs (its own and the attempt's). All but
 * `executionId` are the same for every execution of a procedure in a given state, so they
 * are built once per runtime and kept here, and `executionId` is set last: an execution
 * then owns only the trie's root and the path to its own entry.
 */
import { HashMap } from "effect"

type Annotations = HashMap.HashMap<string, unknown>

/** attempts past this one are annotated without the cache (a long retry loop does not grow it) */
const cachedAttempts = 8

interface OfProcedure {
  /** the base annotations with `procedure` */
  readonly run: Annotations
  /** per state: the run's with `state` and `attempt`, by attempt - 1 */
  readonly states: Map<string, Array<Annotations | undefined>>
}

/** The annotations of one runtime's runs, over the annotations their fibers start with. */
export class LogAnnotations {
  /** the annotations the cached ones were built on (the runtime's run fibers start with them) */
  private base: Annotations | undefined = undefined
  private readonly procedures = new Map<string, OfProcedure>()

  private of(base: Annotations, procedure: string): OfProcedure {
    if (base !== this.base) {
      this.base = base
      this.procedures.clear()
    }
    let found = this.procedures.get(procedure)
    if (found === undefined) {
      found = { run: HashMap.set(base, "procedure", procedure), states: new Map() }
      this.procedures.set(procedure, found)
    }
    return found
  }

  /** A run's: the base with `executionId` and `procedure`. */
  run(base: Annotations, procedure: string, executionId: string): Annotations {
    return HashMap.set(this.of(base, procedure).run, "executionId", executionId)
  }

  /** An attempt's: the run's with `state` and `attempt`. */
  attempt(base: Annotations, procedure: string, executionId: string, state: string, attempt: number): Annotations {
    const of = this.of(base, procedure)
    if (attempt < 1 || attempt > cachedAttempts) return HashMap.set(HashMap.set(this.run(base, procedure, executionId), "state", state), "attempt", attempt)
    let byAttempt = of.states.get(state)
    if (byAttempt === undefined) {
      byAttempt = []
      of.states.set(state, byAttempt)
    }
    const shared = byAttempt[attempt - 1] ??= HashMap.set(HashMap.set(of.run, "state", state), "attempt", attempt)
    return HashMap.set(shared, "executionId", executionId)
  }
}
