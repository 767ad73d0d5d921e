/**
 * The procedure DSL: a typed state machine whose states run steps, wait for events or
 * end. A transition to a state that does not exist is a compile-time error; what types
 * cannot see (unreachable states, no way to a final state) is rejected by `validate`
 * when the procedure is registered.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, Exit, ParseResult, Schedule, ScheduleDecision, ScheduleIntervals, Schema } from "effect"
import { DefinitionError } from "./Errors.js"
import type { TimeoutError } from "./Errors.js"

/**
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("proctor/Procedure")

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

declare const TargetsId: unique symbol

/**
 * What a step's `run` and `compensate` receive.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepArgs<C> {
  readonly context: C
  readonly executionId: string
  readonly state: string
  /** 1 for the first attempt, then 2, 3, ... */
  readonly attempt: number
  /** `executionId/state/visit`: stable across retries and crash recovery of one visit */
  readonly idempotencyKey: string
}

/**
 * What to do when a step fails for good (a business error, or retries ran out):
 * - `"fail"`: run the compensations of completed steps, then end `failed` (the default)
 * - `"intervene"`: stop in `needs_intervention` and wait for a person
 * - `{ goto }`: go to another state (an error-handling state)
 *
 * @since 0.1.0
 * @category models
 */
export type OnFailure<T extends string> = "fail" | "intervene" | { readonly goto: T }

/**
 * A state that runs an Effect, then goes to the next state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Step<T extends string, C, A, E, R> {
  readonly _tag: "Step"
  readonly [TargetsId]?: T
  readonly run: (args: StepArgs<C>) => Effect.Effect<A, E, R>
  // results are `any` here so that a step whose `run` never succeeds (A = never) is still a State
  readonly next: string | ((result: any, context: C) => string)
  readonly targets: ReadonlyArray<string> | undefined
  readonly update: ((result: any, context: C) => C) | undefined
  readonly timeout: Duration.Duration
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly isTransient: (error: unknown) => boolean
  readonly onFailure: OnFailure<string>
  readonly compensate: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  readonly compensateTimeout: Duration.Duration
  /** @internal what `step` found wrong with its options (a NaN timeout, ...); `validate` refuses the procedure */
  readonly "~invalid"?: ReadonlyArray<string> | undefined
}

/**
 * A handler of one event in a wait state: a target state, or a target and a context update.
 *
 * @since 0.1.0
 * @category models
 */
export type EventHandler<T extends string, C, Ev> = T | {
  readonly goto: T
  readonly update?: ((event: Ev, context: C) => C) | undefined
}

/**
 * A state that waits for an event or a durable timer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Wait<T extends string, C, Ev> {
  readonly _tag: "Wait"
  readonly [TargetsId]?: T
  readonly on: { readonly [tag: string]: { readonly goto: string; readonly update: ((event: any, context: C) => C) | undefined } }
  readonly after: { readonly delay: Duration.Duration; readonly goto: string } | undefined
  readonly [EventsId]?: Ev
  /** @internal what `wait` found wrong with its options (a negative delay, ...); `validate` refuses the procedure */
  readonly "~invalid"?: ReadonlyArray<string> | undefined
}
declare const EventsId: unique symbol

/**
 * A state that ends the execution.
 *
 * @since 0.1.0
 * @category models
 */
export interface Final {
  readonly _tag: "Final"
  readonly [TargetsId]?: never
  /** `succeeded`, `failed` or a custom outcome (which ends `succeeded`) */
  readonly outcome: string
}

/**
 * @since 0.1.0
 * @category models
 */
export type State<C, Ev> = Step<string, C, any, any, any> | Wait<string, C, Ev> | Final

/**
 * @since 0.1.0
 * @category models
 */
export type AnyState = Step<string, any, any, any, any> | Wait<string, any, any> | Final

type Tags<Ev> = Ev extends { readonly _tag: infer K extends string } ? K : never

/**
 * A tagged event Schema (`Schema.TaggedStruct`, `Schema.TaggedClass` or a union of them).
 *
 * @since 0.1.0
 * @category models
 */
export type EventSchema<Ev, EvI> = Schema.Schema<Ev, EvI, never>

/**
 * A procedure: name, version, Schemas, an initial state and its states.
 *
 * @since 0.1.0
 * @category models
 */
export interface Procedure<Name extends string, I, C, Ev, R, S extends string = string> {
  readonly [TypeId]: TypeId
  readonly name: Name
  readonly version: number
  readonly description: string | undefined
  readonly input: Schema.Schema<I, any, never>
  readonly context: Schema.Schema<C, any, never>
  readonly events: Schema.Schema<Ev, any, never>
  readonly init: (input: I) => C
  readonly initial: S
  readonly states: { readonly [K in S]: AnyState }
  /** see `Procedure.make`'s `maxTransitionsWithoutWaiting`. @default 10000 */
  readonly maxTransitionsWithoutWaiting?: number | undefined
  /** @internal phantom for the services the steps need */
  readonly "~R"?: R
}

/**
 * Any procedure, whatever its types.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly version: number
  readonly description: string | undefined
  readonly input: Schema.Schema<any, any, never>
  readonly context: Schema.Schema<any, any, never>
  readonly events: Schema.Schema<any, any, never>
  readonly init: (input: any) => any
  readonly initial: string
  readonly states: { readonly [name: string]: AnyState }
  readonly maxTransitionsWithoutWaiting?: number | undefined
  readonly "~R"?: unknown
}

/**
 * The services the steps of a procedure need.
 *
 * @since 0.1.0
 * @category type-level
 */
// `Exclude<R, undefined>`: see `TargetsOf`
export type Services<P> = P extends { readonly "~R"?: infer R } ? unknown extends R ? never : Exclude<R, undefined> : never

/**
 * The input type of a procedure.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Input<P> = P extends Procedure<any, infer I, any, any, any, any> ? I : never

/**
 * The event type of a procedure.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Event<P> = P extends Procedure<any, any, any, infer Ev, any, any> ? Ev : never

// The phantoms are optional properties, so without `exactOptionalPropertyTypes` (a
// consumer's default flags) `infer` also yields `undefined`: it is never a target nor a
// service, so it is dropped.
type TargetsOf<S> = { [K in keyof S]: S[K] extends { readonly [TargetsId]?: infer T } ? Exclude<T, undefined> : never }[keyof S]
type RequirementsOf<S> = { [K in keyof S]: S[K] extends Step<any, any, any, any, infer R> ? R : never }[keyof S]

/**
 * Passes when every target named in `S` is a key of `S`; otherwise names the unknown ones.
 *
 * @since 0.1.0
 * @category type-level
 */
export type CheckTargets<S> = [Exclude<TargetsOf<S>, keyof S>] extends [never] ? unknown
  : { readonly "unknown target state": Exclude<TargetsOf<S>, keyof S> }

/**
 * @since 0.1.0
 * @category guards
 */
export const isProcedure = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * Defines a procedure. The first object holds the Schemas, the second the machine; they
 * are two arguments so that TypeScript knows the context and event types before it
 * checks the states' functions.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Procedure } from "proctor"
 *
 * const Approve = Schema.TaggedStruct("Approve", { by: Schema.String })
 *
 * export const Approval = Procedure.make("approval", {
 *   version: 1,
 *   input: Schema.Struct({ doc: Schema.String }),
 *   context: Schema.Struct({ doc: Schema.String, approvedBy: Schema.optional(Schema.String) }),
 *   events: Approve
 * }, {
 *   initial: "submit",
 *   states: {
 *     submit: Procedure.step({ run: () => Effect.void, next: "review" }),
 *     review: Procedure.wait({
 *       on: { Approve: { goto: "approved", update: (e, c) => ({ ...c, approvedBy: e.by }) } },
 *       after: { delay: "24 hours", goto: "expired" }
 *     }),
 *     approved: Procedure.final({ outcome: "succeeded" }),
 *     expired: Procedure.final({ outcome: "failed" })
 *   }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  const Name extends string,
  I,
  II,
  C,
  CI,
  Ev extends { readonly _tag: string },
  EvI,
  const S extends Record<string, State<C, Ev>>
>(
  name: Name,
  schemas: {
    readonly version: number
    readonly description?: string | undefined
    readonly input: Schema.Schema<I, II, never>
    readonly context: Schema.Schema<C, CI, never>
    readonly events?: EventSchema<Ev, EvI> | undefined
    /** builds the initial context from the input; by default the input is the context */
    readonly init?: ((input: I) => C) | undefined
  },
  machine: {
    readonly initial: keyof S & string
    readonly states: S & CheckTargets<S>
    /**
     * The runaway-loop guard: how many transitions in a row an execution may make without
     * waiting (for an event, a timer or a person: a `wait` state, `paused`,
     * `needs_intervention`, or an operator command). Past it, the execution fails with
     * `LoopLimitExceeded` (its compensations run, as for a step that failed for good); the
     * rest of the runtime is not affected. Raise it for a loop of steps that is meant to be
     * longer, or put a `wait` with an `after` timer between its rounds.
     * @default 10000
     */
    readonly maxTransitionsWithoutWaiting?: number | undefined
  }
): Procedure<Name, I, C, Ev, RequirementsOf<S>, keyof S & string> => ({
  [TypeId]: TypeId,
  name,
  version: schemas.version,
  description: schemas.description,
  input: schemas.input,
  context: schemas.context,
  events: (schemas.events ?? Schema.Never) as Schema.Schema<Ev, any, never>,
  init: schemas.init ?? ((input: I) => input as unknown as C),
  initial: machine.initial,
  states: ownRecord(machine.states) as unknown as { readonly [K in keyof S & string]: AnyState },
  ...(machine.maxTransitionsWithoutWaiting === undefined ? {} : { maxTransitionsWithoutWaiting: machine.maxTransitionsWithoutWaiting })
})

/**
 * A copy of a record without a prototype, so that no name a user gives (`constructor`,
 * `toString`, `__proto__`) finds something the definition did not declare.
 */
const ownRecord = <V>(record: { readonly [key: string]: V }): Record<string, V> =>
  Object.assign(Object.create(null) as Record<string, V>, record)

/**
 * The state named `name`, or `undefined`: only the procedure's own states count, so a
 * name from `Object.prototype` (`constructor`, `toString`, `__proto__`) is not a state.
 * Every lookup of a state by a name from outside the definition goes through it.
 *
 * @since 0.1.0
 * @category getters
 */
export const stateOf = (procedure: { readonly states: Any["states"] }, name: string): AnyState | undefined =>
  Object.hasOwn(procedure.states, name) ? procedure.states[name] : undefined

/**
 * The handler of the event tagged `tag` in a wait state, or `undefined`: only the
 * wait's own handlers count (see `stateOf`).
 *
 * @since 0.1.0
 * @category getters
 */
export const handlerOf = (
  wait: Wait<string, any, any>,
  tag: string
): { readonly goto: string; readonly update: ((event: any, context: any) => any) | undefined } | undefined =>
  Object.hasOwn(wait.on, tag) ? wait.on[tag] : undefined

/**
 * The default retry Schedule: 3 retries with exponential backoff from 100 ms, with jitter.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(3))
)

/**
 * The default step timeout.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = Duration.minutes(1)

/**
 * Options of a step.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepOptions<T extends string, F extends string, C, A, E, R> {
  /** the action. It may need services: they become requirements of the runtime layer. */
  readonly run: (args: StepArgs<C>) => Effect.Effect<A, E, R>
  /** the next state, or a function of the step's result and the context (branching, loops) */
  readonly next: T | ((result: A, context: C) => T)
  /**
   * When `next` is a function: the states it may return. Registration checks and
   * diagrams use them; without them the step is taken to reach any state.
   */
  readonly targets?: ReadonlyArray<T> | undefined
  /** the new context from the step's result. @default the context is unchanged */
  readonly update?: ((result: A, context: C) => C) | undefined
  /** how long one attempt may run. @default "1 minute" */
  readonly timeout?: Duration.DurationInput | undefined
  /** when to retry a transient failure. @default 3 retries, exponential backoff from 100 ms with jitter */
  readonly retry?: Schedule.Schedule<unknown, any> | undefined
  /**
   * Which failures are transient (only those are retried): error tags, or a predicate.
   * @default ["TimeoutError"]
   */
  readonly transient?: ReadonlyArray<string> | ((error: E | TimeoutError) => boolean) | undefined
  /** what to do when the step fails for good. @default "fail" */
  readonly onFailure?: OnFailure<F> | undefined
  /** undoes the step's effect; runs in reverse order when the execution fails for good or is rolled back */
  readonly compensate?: ((args: StepArgs<C>) => Effect.Effect<unknown, unknown, R>) | undefined
  /**
   * how long the compensation may run; past it, it is interrupted and counts as a failed
   * compensation (logged in the error log), and the rollback goes on. @default "1 minute"
   */
  readonly compensateTimeout?: Duration.DurationInput | undefined
}

/**
 * What is wrong with a duration option, or `undefined` when it is finite and not negative.
 * Effect's `Duration.decode` turns a negative or NaN input into zero and throws on a
 * malformed string, which would hide the mistake: the constructors keep the issue for
 * `validate` to refuse the procedure, naming the state.
 */
const durationIssue = (input: Duration.DurationInput): string | undefined => {
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
const decodeDuration = (field: string, input: Duration.DurationInput, issues: Array<string>): Duration.Duration => {
  const issue = durationIssue(input)
  if (issue === undefined) return Duration.decode(input)
  issues.push(`\`${field}\` ${issue}`)
  return Duration.zero
}

/**
 * Refuses a step whose retry Schedule gives an infinite delay: the step would wait forever.
 * A Schedule is a value whose durations cannot be read, so its first delays are computed
 * (with no input; one that needs its input to step, or fails, is not probed). `validate`
 * is pure, so the runtime runs this at registration after it.
 *
 * @internal
 */
export const checkRetries = (procedure: Any): Effect.Effect<void, DefinitionError> =>
  Effect.forEach(Object.entries(procedure.states), ([name, state]) =>
    state._tag !== "Step" ? Effect.void : Effect.flatMap(Effect.exit(infiniteRetry(state.retry)), (exit) =>
      Exit.isSuccess(exit) && exit.value !== undefined
        ? Effect.fail(
          new DefinitionError({
            procedure: procedure.name,
            state: name,
            reason: `its \`retry\` Schedule waits forever (an infinite delay) before retry ${exit.value}; give the step a Schedule with finite delays`
          })
        )
        : Effect.void), { discard: true })

/** How many delays of a retry Schedule `checkRetries` computes. */
const retryProbe = 16

/** The first retry (1-based) before which the Schedule waits forever, if one of the first `retryProbe` does. */
const infiniteRetry = (schedule: Schedule.Schedule<unknown, unknown>) =>
  Effect.gen(function*() {
    let state = schedule.initial
    let now = 0
    for (let retry = 1; retry <= retryProbe; retry++) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      if (ScheduleDecision.isDone(decision)) return undefined
      const at = ScheduleIntervals.start(decision.intervals)
      if (!Number.isFinite(at)) return retry
      now = Math.max(now, at)
      state = next
    }
    return undefined
  })

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && typeof (error as { _tag?: unknown })._tag === "string"
    ? (error as { _tag: string })._tag
    : undefined

/**
 * A state that runs `run` with a timeout and a retry Schedule, then goes to `next`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const step = <C, A, E, R, const T extends string, const F extends string = never>(
  options: StepOptions<T, F, C, A, E, R>
): Step<NoInfer<T | F>, C, A, E, R> => {
  const transient = options.transient ?? ["TimeoutError"]
  const isTransient = typeof transient === "function"
    ? (transient as (error: unknown) => boolean)
    : (error: unknown) => {
      const tag = tagOf(error)
      return tag !== undefined && transient.includes(tag)
    }
  const invalid: Array<string> = []
  return {
    _tag: "Step",
    run: options.run,
    next: options.next,
    targets: options.targets,
    update: options.update,
    timeout: options.timeout === undefined ? defaultTimeout : decodeDuration("timeout", options.timeout, invalid),
    retry: options.retry ?? defaultRetry,
    isTransient,
    onFailure: options.onFailure ?? "fail",
    compensate: options.compensate,
    compensateTimeout: options.compensateTimeout === undefined
      ? defaultTimeout
      : decodeDuration("compensateTimeout", options.compensateTimeout, invalid),
    ...(invalid.length === 0 ? {} : { "~invalid": invalid })
  }
}

/**
 * A state that waits for one of the events in `on`, or for its timer (`after`).
 * Events are decoded with the procedure's event Schema before they reach the inbox.
 *
 * @since 0.1.0
 * @category constructors
 */
export const wait = <
  C,
  Ev extends { readonly _tag: string },
  const T extends string,
  const K extends Tags<Ev>,
  const D extends string = never
>(options: {
  readonly on: { readonly [P in K]: EventHandler<T, C, Extract<Ev, { readonly _tag: P }>> }
  readonly after?: { readonly delay: Duration.DurationInput; readonly goto: D } | undefined
}): Wait<NoInfer<T | D>, C, Ev> => {
  const on: Record<string, { goto: string; update: ((event: any, context: C) => C) | undefined }> = Object.create(null)
  for (const [tag, handler] of Object.entries(options.on) as Array<[string, EventHandler<string, C, any>]>) {
    on[tag] = typeof handler === "string"
      ? { goto: handler, update: undefined }
      : { goto: handler.goto, update: handler.update }
  }
  const invalid: Array<string> = []
  return {
    _tag: "Wait",
    on,
    after: options.after === undefined
      ? undefined
      : { delay: decodeDuration("after.delay", options.after.delay, invalid), goto: options.after.goto },
    ...(invalid.length === 0 ? {} : { "~invalid": invalid })
  }
}

/**
 * A state that ends the execution with an outcome. `"failed"` ends it `failed`; any
 * other outcome ends it `succeeded` and is kept as the snapshot's `outcome`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const final = (options?: { readonly outcome?: "succeeded" | "failed" | (string & {}) | undefined }): Final => ({
  _tag: "Final",
  outcome: options?.outcome ?? "succeeded"
})

/**
 * The states a state can go to, as far as the definition tells (`undefined` when a
 * step's `next` is a function without `targets`: it may go anywhere).
 *
 * @since 0.1.0
 * @category getters
 */
export const edges = (state: AnyState): ReadonlyArray<{ readonly to: string; readonly label: string }> | undefined => {
  switch (state._tag) {
    case "Final":
      return []
    case "Wait": {
      const out = Object.entries(state.on).map(([tag, h]) => ({ to: h.goto, label: tag }))
      if (state.after !== undefined) {
        out.push({ to: state.after.goto, label: `after ${Duration.format(state.after.delay)}` })
      }
      return out
    }
    case "Step": {
      const out: Array<{ to: string; label: string }> = []
      if (typeof state.next === "string") out.push({ to: state.next, label: "" })
      else if (state.targets !== undefined) for (const t of state.targets) out.push({ to: t, label: "" })
      else return undefined
      if (typeof state.onFailure === "object") out.push({ to: state.onFailure.goto, label: "on failure" })
      return out
    }
  }
}

/**
 * Checks what types cannot: the initial state and every target exist, every state is
 * reachable from the initial one, and a final state is reachable from every state.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (procedure: Any): Either.Either<Any, DefinitionError> => {
  const fail = (reason: string, state?: string) =>
    Either.left(new DefinitionError({ procedure: procedure.name, reason, ...(state === undefined ? {} : { state }) }))
  const names = Object.keys(procedure.states)
  if (procedure.name.trim() === "") return fail("the name is empty; give the procedure a name")
  if (!Number.isInteger(procedure.version) || procedure.version < 1) {
    return fail(`version ${procedure.version} is not a positive integer`)
  }
  const loopLimit = procedure.maxTransitionsWithoutWaiting
  if (loopLimit !== undefined && (!Number.isSafeInteger(loopLimit) || loopLimit < 1)) {
    return fail(`maxTransitionsWithoutWaiting ${loopLimit} is not a positive integer; leave it out for the default of 10000`)
  }
  if (stateOf(procedure, procedure.initial) === undefined) {
    return fail(`the initial state "${procedure.initial}" is not one of the states (${names.join(", ")})`, procedure.initial)
  }
  const graph = new Map<string, ReadonlyArray<string>>()
  for (const name of names) {
    const state = procedure.states[name]!
    if (state._tag === "Wait" && Object.keys(state.on).length === 0 && state.after === undefined) {
      return fail("the wait state accepts no event and has no timer: it could never leave", name)
    }
    const invalid = state._tag === "Final" ? undefined : state["~invalid"]
    if (invalid !== undefined && invalid.length > 0) {
      return fail(`${invalid.join("; ")}; give a finite duration that is not negative, like "30 seconds"`, name)
    }
    if (state._tag === "Step") {
      if (Duration.lessThanOrEqualTo(state.timeout, Duration.zero) || !Duration.isFinite(state.timeout)) {
        return fail("the step's timeout must be positive and finite", name)
      }
    }
    if (state._tag === "Wait" && state.after !== undefined && !Duration.isFinite(state.after.delay)) {
      return fail("the wait's `after.delay` is infinite; leave `after` out to wait without a timer", name)
    }
    const out = edges(state)
    const targets = out === undefined ? names : out.map((e) => e.to)
    for (const target of targets) {
      if (stateOf(procedure, target) === undefined) {
        return fail(`it goes to "${target}", which is not one of the states (${names.join(", ")})`, name)
      }
    }
    graph.set(name, targets)
  }
  const reachable = new Set<string>([procedure.initial])
  const queue = [procedure.initial]
  while (queue.length > 0) {
    for (const target of graph.get(queue.pop()!)!) {
      if (!reachable.has(target)) {
        reachable.add(target)
        queue.push(target)
      }
    }
  }
  for (const name of names) {
    if (!reachable.has(name)) {
      return fail(`the state is unreachable from the initial state "${procedure.initial}"; remove it or add a transition to it`, name)
    }
  }
  const finishing = new Set(names.filter((n) => procedure.states[n]!._tag === "Final"))
  if (finishing.size === 0) return fail("it has no final state; add one with Procedure.final")
  let grew = true
  while (grew) {
    grew = false
    for (const [name, targets] of graph) {
      if (!finishing.has(name) && targets.some((t) => finishing.has(t))) {
        finishing.add(name)
        grew = true
      }
    }
  }
  for (const name of names) {
    if (!finishing.has(name)) {
      return fail("no final state can be reached from this state; add a transition towards a final state", name)
    }
  }
  return Either.right(procedure)
}

const mermaidId = (name: string) => name.replace(/[^A-Za-z0-9_]/g, "_")

/**
 * The procedure as a Mermaid `stateDiagram-v2`. `current` is highlighted and `visited`
 * states are marked, for dashboards.
 *
 * @since 0.1.0
 * @category diagrams
 */
export const toMermaid = (
  procedure: Any,
  options?: { readonly current?: string | undefined; readonly visited?: Iterable<string> | undefined }
): string => {
  const lines = ["stateDiagram-v2", `  [*] --> ${mermaidId(procedure.initial)}`]
  for (const [name, state] of Object.entries(procedure.states)) {
    const id = mermaidId(name)
    if (id !== name) lines.push(`  state "${name}" as ${id}`)
    const out = edges(state)
    if (out === undefined) {
      lines.push(`  ${id} --> ${id}: next (any state)`)
    } else {
      for (const edge of out) lines.push(`  ${id} --> ${mermaidId(edge.to)}${edge.label === "" ? "" : `: ${edge.label}`}`)
    }
    if (state._tag === "Final") lines.push(`  ${id} --> [*]`)
  }
  const visited = new Set(options?.visited ?? [])
  if (options?.current !== undefined) visited.delete(options.current)
  if (visited.size > 0) {
    lines.push("  classDef visited fill:#dbeafe,stroke:#2563eb")
    for (const v of visited) lines.push(`  class ${mermaidId(v)} visited`)
  }
  if (options?.current !== undefined) {
    lines.push("  classDef current fill:#fde68a,stroke:#d97706,stroke-width:3px")
    lines.push(`  class ${mermaidId(options.current)} current`)
  }
  return lines.join("\n")
}

/** @internal */
export const formatParseError = (error: ParseResult.ParseError): string =>
  ParseResult.TreeFormatter.formatErrorSync(error).replace(/\n/g, " ")
