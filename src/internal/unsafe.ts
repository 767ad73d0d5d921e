/**
 * Procedures built at run time (`Procedure.makeUnsafe`): plain state descriptions, with
 * names as strings, checked field by field here, because no type checked them. Each
 * mistake becomes a `DefinitionError` that names the state and the field.
 */
import type { Duration } from "effect"
import { Schema } from "effect"
import { DefinitionError } from "../Errors.js"
import type { AnyState } from "./states.js"
import type { StepOptions } from "./step.js"
import { compound, history } from "./compound.js"
import { final, ownRecord, wait } from "./states.js"
import { step } from "./step.js"

/**
 * A step, described by plain values: the fields of `Procedure.step`'s options.
 *
 * @since 0.1.0
 * @category models
 */
export interface StepDescription extends StepOptions<string, string, any, any, any, never> {
  readonly type: "step"
}

/**
 * A handler of one event in a described wait: a target state, or a target with a guard
 * and a context update.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerDescription = string | {
  readonly goto: string
  readonly guard?: ((event: any, context: any) => boolean) | undefined
  readonly update?: ((event: any, context: any) => unknown) | undefined
}

/**
 * A wait, described by plain values: the fields of `Procedure.wait`'s options.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitDescription {
  readonly type: "wait"
  readonly on?: { readonly [tag: string]: HandlerDescription } | undefined
  readonly after?: { readonly delay: Duration.DurationInput; readonly goto: string } | undefined
}

/**
 * A final state, described by plain values.
 *
 * @since 0.1.0
 * @category models
 */
export interface FinalDescription {
  readonly type: "final"
  readonly outcome?: string | undefined
}

/**
 * A compound state, described by plain values: the fields of `Procedure.compound`'s
 * options, with child states described the same way. Targets are full dotted paths.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompoundDescription {
  readonly type: "compound"
  readonly initial: string
  readonly states: { readonly [name: string]: StateDescription }
  readonly on?: { readonly [tag: string]: HandlerDescription } | undefined
  readonly onDone?: string | undefined
  readonly onEnter?: ReadonlyArray<(args: { readonly context: any; readonly event: any }) => unknown> | undefined
  readonly onExit?: ReadonlyArray<(args: { readonly context: any; readonly event: any }) => unknown> | undefined
  readonly always?: ReadonlyArray<{ readonly goto: string; readonly guard?: ((context: any) => boolean) | undefined; readonly actions?: ReadonlyArray<(args: { readonly context: any; readonly event: any }) => unknown> | undefined }> | undefined
}

/**
 * A history state, described by plain values (`deep: true` for a deep one).
 *
 * @since 0.1.0
 * @category models
 */
export interface HistoryDescription {
  readonly type: "history"
  readonly deep?: boolean | undefined
  readonly default?: string | undefined
}

/**
 * One state of `Procedure.makeUnsafe`: a description, or a state already built with
 * `Procedure.step`, `wait`, `final`, `compound` or `history`.
 *
 * @since 0.1.0
 * @category models
 */
export type StateDescription = StepDescription | WaitDescription | FinalDescription | CompoundDescription | HistoryDescription | AnyState

const actionFields = ["onEnter", "onExit"] as const
const fields = {
  step: ["type", "run", "next", "targets", "update", "timeout", "retry", "transient", "onFailure", "compensate", "compensateTimeout", ...actionFields],
  wait: ["type", "on", "after", "always", ...actionFields],
  final: ["type", "outcome", ...actionFields],
  compound: ["type", "initial", "states", "on", "onDone", "always", ...actionFields],
  history: ["type", "deep", "default"]
} as const

const isObject = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null && !Array.isArray(u)
const isStringArray = (u: unknown): u is ReadonlyArray<string> => Array.isArray(u) && u.every((x) => typeof x === "string")
const isDuration = (u: unknown) => ["string", "number", "bigint"].includes(typeof u) || Array.isArray(u) || isObject(u)
const shown = (u: unknown) => typeof u === "function" ? "a function" : JSON.stringify(u) ?? String(u)

/**
 * The states of a procedure built at run time, each description checked and turned into
 * the state `Procedure.step`, `wait` or `final` would make. Throws a `DefinitionError`
 * naming the state and the field at the first mistake.
 */
export const statesOf = (procedure: string, described: unknown, prefix = ""): Record<string, AnyState> => {
  if (!isObject(described)) {
    throw new DefinitionError({
      procedure,
      ...(prefix === "" ? {} : { state: prefix }),
      reason: `\`states\` is ${shown(described)}; give an object of state descriptions by name`
    })
  }
  const states: Record<string, AnyState> = ownRecord({})
  for (const [key, description] of Object.entries(described)) {
    const name = prefix === "" ? key : `${prefix}.${key}`
    const fail = (reason: string): never => {
      throw new DefinitionError({ procedure, state: name, reason })
    }
    if (!isObject(description)) fail(`the description is ${shown(description)}; give { type: "step" | "wait" | "final" | "compound" | "history", ... }`)
    const d = description as Readonly<Record<string, unknown>>
    if (typeof d["_tag"] === "string" && ["Step", "Wait", "Final", "Compound", "History"].includes(d["_tag"])) {
      states[key] = description as AnyState
      continue
    }
    const type = d["type"]
    if (type !== "step" && type !== "wait" && type !== "final" && type !== "compound" && type !== "history") {
      fail(`\`type\` is ${shown(type)}; it must be "step", "wait", "final", "compound" or "history"`)
    }
    const kind = type as keyof typeof fields
    const known: ReadonlyArray<string> = fields[kind]
    for (const key of Object.keys(d)) {
      if (!known.includes(key)) fail(`a ${kind} has no field \`${key}\`; its fields are ${known.join(", ")}`)
    }
    const optional = (key: string, ok: (u: unknown) => boolean, what: string) => {
      if (d[key] !== undefined && !ok(d[key])) fail(`\`${key}\` is ${shown(d[key])}; it must be ${what}`)
    }
    const isFunction = (u: unknown) => typeof u === "function"
    const isFunctions = (u: unknown) => Array.isArray(u) && u.every(isFunction)
    if (kind !== "history") {
      for (const key of actionFields) optional(key, isFunctions, "an array of functions ({ context, event }) => context | undefined")
    }
    const checkHandlers = () => {
      optional("on", isObject, "an object of handlers by event tag")
      for (const [tag, handler] of Object.entries((d["on"] ?? {}) as object)) {
        const at = `on.${tag}`
        if (typeof handler === "string") continue
        if (!isObject(handler) || typeof handler["goto"] !== "string") {
          fail(`\`${at}\` is ${shown(handler)}; it must be a state name or { goto, guard?, update?, actions? }`)
        }
        for (const k of Object.keys(handler)) {
          if (!["goto", "guard", "update", "actions"].includes(k)) fail(`\`${at}\` has no field \`${k}\`; its fields are goto, guard, update, actions`)
        }
        for (const k of ["guard", "update"]) {
          const f = (handler as Record<string, unknown>)[k]
          if (f !== undefined && !isFunction(f)) fail(`\`${at}.${k}\` is ${shown(f)}; it must be a function (event, context) => ...`)
        }
        const actions = (handler as Record<string, unknown>)["actions"]
        if (actions !== undefined && !isFunctions(actions)) fail(`\`${at}.actions\` is ${shown(actions)}; it must be an array of functions ({ context, event }) => context | undefined`)
      }
    }
    const checkAlways = () =>
      optional(
        "always",
        (u) => Array.isArray(u) && u.every((t) =>
          isObject(t) && typeof t["goto"] === "string" && (t["guard"] === undefined || isFunction(t["guard"])) &&
          (t["actions"] === undefined || isFunctions(t["actions"])) && Object.keys(t).every((k) => ["goto", "guard", "actions"].includes(k))
        ),
        "an array of { goto, guard?, actions? }"
      )
    switch (kind) {
      case "step": {
        if (!isFunction(d["run"])) fail(`\`run\` is ${shown(d["run"])}; it must be a function returning an Effect`)
        if (typeof d["next"] !== "string" && !isFunction(d["next"])) {
          fail(`\`next\` is ${shown(d["next"])}; it must be a state name or a function returning one`)
        }
        optional("targets", isStringArray, "an array of state names")
        optional("update", isFunction, "a function (result, context) => context")
        optional("timeout", isDuration, "a duration, like \"30 seconds\"")
        optional("compensateTimeout", isDuration, "a duration, like \"30 seconds\"")
        optional("retry", isObject, "a Schedule")
        optional("transient", (u) => isStringArray(u) || isFunction(u), "an array of error tags or a function (error) => boolean")
        optional("compensate", isFunction, "a function returning an Effect")
        optional(
          "onFailure",
          (u) => u === "fail" || u === "intervene" || (isObject(u) && typeof u["goto"] === "string"),
          "\"fail\", \"intervene\" or { goto: state }"
        )
        states[key] = step(d as unknown as Parameters<typeof step>[0])
        break
      }
      case "wait": {
        checkHandlers()
        checkAlways()
        optional("after", (u) => isObject(u) && isDuration(u["delay"]) && typeof u["goto"] === "string", "{ delay, goto }")
        states[key] = wait({ ...d, on: d["on"] ?? {} } as unknown as Parameters<typeof wait>[0])
        break
      }
      case "final":
        optional("outcome", (u) => typeof u === "string", "a string (\"succeeded\", \"failed\" or a custom outcome)")
        states[key] = final(d as Parameters<typeof final>[0])
        break
      case "compound": {
        if (typeof d["initial"] !== "string") fail(`\`initial\` is ${shown(d["initial"])}; it must be the name of one of its states`)
        checkHandlers()
        checkAlways()
        optional("onDone", (u) => typeof u === "string", "a state's full path")
        const children = statesOf(procedure, d["states"], name)
        states[key] = compound({ ...d, states: children } as unknown as Parameters<typeof compound>[0])
        break
      }
      case "history":
        optional("deep", (u) => typeof u === "boolean", "true or false")
        optional("default", (u) => typeof u === "string", "a state's full path")
        states[key] = history({ type: d["deep"] === true ? "deep" : "shallow", default: d["default"] as string | undefined })
    }
  }
  return states
}

/** Throws a `DefinitionError` when a field of a procedure built at run time has the wrong kind of value. */
export const checkFields = (procedure: string, definition: Readonly<Record<string, unknown>>): void => {
  const fail = (reason: string): never => {
    throw new DefinitionError({ procedure, reason })
  }
  if (typeof definition["name"] !== "string") fail(`\`name\` is ${shown(definition["name"])}; it must be a string`)
  for (const key of ["input", "context", "events"]) {
    const schema = definition[key]
    if ((schema !== undefined || key !== "events") && !Schema.isSchema(schema)) fail(`\`${key}\` is ${shown(schema)}; it must be a Schema`)
  }
  if (typeof definition["initial"] !== "string") fail(`\`initial\` is ${shown(definition["initial"])}; it must be a state name`)
  if (definition["init"] !== undefined && typeof definition["init"] !== "function") fail("`init` must be a function (input) => context")
}
