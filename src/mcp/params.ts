/**
 * Reading the parameters of a `workflow` tool call: each reader names the parameter and
 * says what was expected when it is missing or mistyped.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { WorkflowToolError } from "./errors.js"
import { invalidParameter } from "./errors.js"

/**
 * The arguments of a call.
 *
 * @since 0.1.0
 * @category models
 */
export type Args = { readonly [key: string]: unknown }

const typeName = (u: unknown) => u === null ? "null" : Array.isArray(u) ? "array" : typeof u

/**
 * A required string of 1 to `max` characters.
 *
 * @since 0.1.0
 * @category readers
 */
export const string = (args: Args, name: string, example: string, max = 4096): Effect.Effect<string, WorkflowToolError> => {
  const v = args[name]
  if (v === undefined || v === null) {
    return Effect.fail(invalidParameter(name, "is required", `Pass ${name} as a string, e.g. "${name}": "${example}".`))
  }
  if (typeof v !== "string") {
    return Effect.fail(invalidParameter(name, `must be a string, got ${typeName(v)}`, `Pass ${name} as a string, e.g. "${name}": "${example}".`))
  }
  if (v.length === 0 || v.length > max) {
    return Effect.fail(invalidParameter(name, `must have 1 to ${max} characters, got ${v.length}`, `Pass a shorter or non-empty ${name}.`))
  }
  return Effect.succeed(v)
}

/**
 * An optional string of at most `max` characters.
 *
 * @since 0.1.0
 * @category readers
 */
export const optionalString = (args: Args, name: string, example: string, max = 4096): Effect.Effect<string | undefined, WorkflowToolError> =>
  args[name] === undefined || args[name] === null ? Effect.succeed(undefined) : string(args, name, example, max)

/**
 * A required integer in `[min, max]`.
 *
 * @since 0.1.0
 * @category readers
 */
export const integer = (args: Args, name: string, min: number, max: number): Effect.Effect<number, WorkflowToolError> => {
  const v = args[name]
  const fix = `Pass ${name} as an integer from ${min} to ${max}, e.g. "${name}": ${min}.`
  if (v === undefined || v === null) return Effect.fail(invalidParameter(name, "is required", fix))
  if (typeof v !== "number" || !Number.isInteger(v)) {
    return Effect.fail(invalidParameter(name, `must be an integer, got ${typeof v === "number" ? v : typeName(v)}`, fix))
  }
  if (v < min || v > max) return Effect.fail(invalidParameter(name, `must be from ${min} to ${max}, got ${v}`, fix))
  return Effect.succeed(v)
}

/**
 * An optional integer in `[min, max]`.
 *
 * @since 0.1.0
 * @category readers
 */
export const optionalInteger = (args: Args, name: string, min: number, max: number): Effect.Effect<number | undefined, WorkflowToolError> =>
  args[name] === undefined || args[name] === null ? Effect.succeed(undefined) : integer(args, name, min, max)

/**
 * An optional boolean.
 *
 * @since 0.1.0
 * @category readers
 */
export const optionalBoolean = (args: Args, name: string): Effect.Effect<boolean | undefined, WorkflowToolError> => {
  const v = args[name]
  if (v === undefined || v === null) return Effect.succeed(undefined)
  if (typeof v !== "boolean") {
    return Effect.fail(invalidParameter(name, `must be a boolean, got ${typeName(v)}`, `Pass ${name} as true or false.`))
  }
  return Effect.succeed(v)
}

/**
 * An optional JSON object (not an array).
 *
 * @since 0.1.0
 * @category readers
 */
export const optionalObject = (args: Args, name: string): Effect.Effect<{ readonly [key: string]: unknown } | undefined, WorkflowToolError> => {
  const v = args[name]
  if (v === undefined || v === null) return Effect.succeed(undefined)
  if (typeof v !== "object" || Array.isArray(v)) {
    return Effect.fail(invalidParameter(name, `must be a JSON object, got ${typeName(v)}`, `Pass ${name} as an object, e.g. "${name}": { "key": "value" }.`))
  }
  return Effect.succeed(v as { readonly [key: string]: unknown })
}

/**
 * One of a fixed set of strings.
 *
 * @since 0.1.0
 * @category readers
 */
export const optionalLiteral = <const L extends string>(
  args: Args,
  name: string,
  values: ReadonlyArray<L>
): Effect.Effect<L | undefined, WorkflowToolError> => {
  const v = args[name]
  if (v === undefined || v === null) return Effect.succeed(undefined)
  if (typeof v !== "string" || !(values as ReadonlyArray<string>).includes(v)) {
    return Effect.fail(
      invalidParameter(name, `must be one of ${values.join(", ")}, got ${JSON.stringify(v)?.slice(0, 100)}`, `Pass one of: ${values.join(", ")}.`)
    )
  }
  return Effect.succeed(v as L)
}
