/**
 * The format of a workflow folder's `workflow.json`, and the compiler of a phase's
 * checkpoint (its evidence field specs) into an Effect Schema.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"

/**
 * The types an evidence field can have.
 *
 * @since 0.1.0
 * @category models
 */
export const FieldType = Schema.Literal("string", "number", "boolean", "array", "object")

/**
 * One evidence field of a checkpoint: its type and constraints. `required` defaults to
 * `true`. `minLength`/`maxLength` bound a string's characters or an array's items;
 * `min`/`max` bound a number; `pattern` is a regular expression a string must match;
 * `enum` lists the values allowed; `items` describes an array's items and `properties`
 * an object's fields.
 *
 * @since 0.1.0
 * @category models
 */
export interface FieldSpec {
  readonly type: typeof FieldType.Type
  readonly description?: string | undefined
  readonly required?: boolean | undefined
  readonly minLength?: number | undefined
  readonly maxLength?: number | undefined
  readonly min?: number | undefined
  readonly max?: number | undefined
  readonly integer?: boolean | undefined
  readonly pattern?: string | undefined
  readonly enum?: ReadonlyArray<string | number | boolean> | undefined
  readonly items?: FieldSpec | undefined
  readonly properties?: { readonly [name: string]: FieldSpec } | undefined
}

const FieldName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, {
    message: () => "a field name is a letter or _ followed by up to 63 letters, digits or _"
  })
)

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/**
 * The Schema of a field spec (recursive through `items` and `properties`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldSpec: Schema.Schema<FieldSpec> = Schema.Struct({
  type: FieldType,
  description: Schema.optional(Schema.String),
  required: Schema.optional(Schema.Boolean),
  minLength: Schema.optional(NonNegativeInt),
  maxLength: Schema.optional(NonNegativeInt),
  min: Schema.optional(Schema.Finite),
  max: Schema.optional(Schema.Finite),
  integer: Schema.optional(Schema.Boolean),
  pattern: Schema.optional(Schema.String),
  enum: Schema.optional(Schema.Array(Schema.Union(Schema.String, Schema.Finite, Schema.Boolean)).pipe(Schema.minItems(1))),
  items: Schema.optional(Schema.suspend((): Schema.Schema<FieldSpec> => FieldSpec)),
  properties: Schema.optional(
    Schema.Record({ key: FieldName, value: Schema.suspend((): Schema.Schema<FieldSpec> => FieldSpec) })
  )
})

/**
 * Text given inline, or the path of a Markdown file relative to the workflow folder.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Content = Schema.Union(
  Schema.String,
  Schema.Struct({ file: Schema.String.pipe(Schema.pattern(/\.md$/, { message: () => "a content file must be a .md file" })) })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const TaskFile = Schema.Struct({
  title: Schema.NonEmptyTrimmedString,
  content: Content,
  execution_steps: Schema.Array(Schema.NonEmptyTrimmedString).pipe(Schema.minItems(1)),
  artifacts: Schema.optionalWith(Schema.Array(Schema.NonEmptyTrimmedString), { default: () => [] })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const CheckpointFile = Schema.Struct({
  description: Schema.optional(Schema.String),
  evidence: Schema.Record({ key: FieldName, value: FieldSpec })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const PhaseFile = Schema.Struct({
  title: Schema.NonEmptyTrimmedString,
  content: Content,
  tasks: Schema.Array(TaskFile).pipe(Schema.minItems(1)),
  checkpoint: CheckpointFile
})

/**
 * The contents of `workflow.json`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkflowFile = Schema.Struct({
  name: Schema.String.pipe(
    Schema.pattern(/^[a-z][a-z0-9_]{0,63}$/, {
      message: () => "a workflow name is a lowercase letter followed by up to 63 lowercase letters, digits or _"
    })
  ),
  version: Schema.Int.pipe(Schema.positive({ message: () => "version is a positive integer; bump it when the phases change" })),
  description: Schema.NonEmptyTrimmedString,
  category: Schema.NonEmptyTrimmedString,
  estimated_duration: Schema.NonEmptyTrimmedString,
  phases: Schema.Array(PhaseFile).pipe(Schema.minItems(1), Schema.maxItems(50))
})

/**
 * @since 0.1.0
 * @category models
 */
export type WorkflowFile = typeof WorkflowFile.Type

/**
 * A task with its content resolved to text.
 *
 * @since 0.1.0
 * @category models
 */
export interface Task {
  readonly title: string
  readonly content: string
  readonly execution_steps: ReadonlyArray<string>
  readonly artifacts: ReadonlyArray<string>
}

/**
 * A phase with its content resolved and its checkpoint compiled.
 *
 * @since 0.1.0
 * @category models
 */
export interface Phase {
  readonly number: number
  readonly title: string
  readonly content: string
  readonly tasks: ReadonlyArray<Task>
  readonly checkpoint: Checkpoint
}

/**
 * A compiled checkpoint: the field specs (to show agents) and the evidence validator.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint {
  readonly description: string | undefined
  readonly fields: { readonly [name: string]: FieldSpec }
  readonly check: (evidence: unknown) => CheckResult
}

/**
 * What a checkpoint says about some evidence.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckResult =
  | { readonly passed: true }
  | {
    readonly passed: false
    /** required fields that are absent */
    readonly missing: ReadonlyArray<string>
    /** fields that are present but wrong */
    readonly invalid: ReadonlyArray<{ readonly field: string; readonly problem: string }>
  }

/**
 * A loaded workflow: its description and phases, ready to compile into a procedure.
 *
 * @since 0.1.0
 * @category models
 */
export interface Workflow {
  readonly name: string
  readonly version: number
  readonly description: string
  readonly category: string
  readonly estimated_duration: string
  readonly phases: ReadonlyArray<Phase>
  /** the folder it was loaded from */
  readonly path: string
}

/**
 * Checks what the field Schema cannot: constraints that do not fit the type, bad regular
 * expressions, `min > max`. Returns the problems, each with the field's path.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkFieldSpec = (spec: FieldSpec, path: string): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const only = (key: keyof FieldSpec, types: ReadonlyArray<FieldSpec["type"]>) => {
    if (spec[key] !== undefined && !types.includes(spec.type)) {
      problems.push(`${path}: "${key}" applies to ${types.join(" or ")} fields, not ${spec.type}`)
    }
  }
  only("minLength", ["string", "array"])
  only("maxLength", ["string", "array"])
  only("min", ["number"])
  only("max", ["number"])
  only("integer", ["number"])
  only("pattern", ["string"])
  only("items", ["array"])
  only("properties", ["object"])
  only("enum", ["string", "number", "boolean"])
  if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
    problems.push(`${path}: min (${spec.min}) is greater than max (${spec.max})`)
  }
  if (spec.minLength !== undefined && spec.maxLength !== undefined && spec.minLength > spec.maxLength) {
    problems.push(`${path}: minLength (${spec.minLength}) is greater than maxLength (${spec.maxLength})`)
  }
  if (spec.pattern !== undefined) {
    try {
      new RegExp(spec.pattern, "u")
    } catch (error) {
      problems.push(`${path}: pattern is not a valid regular expression: ${(error as Error).message}`)
    }
  }
  if (spec.enum !== undefined) {
    const wrong = spec.enum.filter((v) => typeof v !== spec.type)
    if (wrong.length > 0) problems.push(`${path}: enum values ${JSON.stringify(wrong)} are not of type ${spec.type}`)
  }
  if (spec.items !== undefined) problems.push(...checkFieldSpec(spec.items, `${path}[]`))
  if (spec.properties !== undefined) {
    for (const [name, child] of Object.entries(spec.properties)) problems.push(...checkFieldSpec(child, `${path}.${name}`))
  }
  return problems
}

/** The Schema of one field. Descriptions stay out of it: Effect would print them as the "Expected ..." of messages. */
const fieldSchema = (spec: FieldSpec): Schema.Schema<any> => {
  if (spec.enum !== undefined) {
    const allowed = spec.enum.map((v) => JSON.stringify(v)).join(", ")
    return Schema.Literal(...(spec.enum as Array<string | number | boolean>)).annotations({
      message: () => ({ message: `must be one of ${allowed}`, override: true })
    })
  }
  switch (spec.type) {
    case "string": {
      let s: Schema.Schema<string> = Schema.String
      if (spec.minLength !== undefined) s = s.pipe(Schema.minLength(spec.minLength))
      if (spec.maxLength !== undefined) s = s.pipe(Schema.maxLength(spec.maxLength))
      if (spec.pattern !== undefined) {
        const re = new RegExp(spec.pattern, "u")
        s = s.pipe(Schema.filter((v) => re.test(v) || `must match the pattern /${spec.pattern}/`))
      }
      return s
    }
    case "number": {
      let s: Schema.Schema<number> = spec.integer === true ? Schema.Int : Schema.Finite
      if (spec.min !== undefined) s = s.pipe(Schema.greaterThanOrEqualTo(spec.min))
      if (spec.max !== undefined) s = s.pipe(Schema.lessThanOrEqualTo(spec.max))
      return s
    }
    case "boolean":
      return Schema.Boolean
    case "array": {
      let s: Schema.Schema<ReadonlyArray<unknown>> = Schema.Array(spec.items === undefined ? Schema.Unknown : fieldSchema(spec.items))
      if (spec.minLength !== undefined) s = s.pipe(Schema.minItems(spec.minLength))
      if (spec.maxLength !== undefined) s = s.pipe(Schema.maxItems(spec.maxLength))
      return s
    }
    case "object":
      return spec.properties === undefined
        ? Schema.Record({ key: Schema.String, value: Schema.Unknown })
        : structOf(spec.properties)
  }
}

const structOf = (fields: { readonly [name: string]: FieldSpec }): Schema.Schema<any> => {
  const out: Record<string, Schema.Schema.All | Schema.PropertySignature.All> = {}
  for (const [name, spec] of Object.entries(fields)) {
    out[name] = spec.required === false ? Schema.optionalWith(fieldSchema(spec), { exact: true }) : fieldSchema(spec)
  }
  return Schema.Struct(out as Schema.Struct.Fields) as unknown as Schema.Schema<any>
}

const MAX_PROBLEM = 300

const truncate = (s: string) => s.length <= MAX_PROBLEM ? s : `${s.slice(0, MAX_PROBLEM)}…`

/**
 * How many missing or invalid fields a failed check names. Evidence with a million bad items
 * would otherwise make an error record (stored, and sent back) as large as the evidence.
 */
const MAX_REPORTED = 20

const capped = <A>(items: ReadonlyArray<A>, more: (n: number) => A): ReadonlyArray<A> =>
  items.length <= MAX_REPORTED ? items : [...items.slice(0, MAX_REPORTED), more(items.length - MAX_REPORTED)]

const pathOf = (path: ReadonlyArray<PropertyKey>) =>
  path.map((p, i) => typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`).join("")

/**
 * Compiles a checkpoint's field specs into a validator. The evidence must be an object;
 * extra fields are allowed and kept.
 *
 * @since 0.1.0
 * @category constructors
 */
export const compileCheckpoint = (checkpoint: typeof CheckpointFile.Type): Checkpoint => {
  const decode = Schema.decodeUnknownEither(structOf(checkpoint.evidence), { errors: "all" })
  return {
    description: checkpoint.description,
    fields: checkpoint.evidence,
    check: (evidence) => {
      if (typeof evidence !== "object" || evidence === null || Array.isArray(evidence)) {
        return {
          passed: false,
          missing: Object.entries(checkpoint.evidence).filter(([, s]) => s.required !== false).map(([n]) => n),
          invalid: [{ field: "evidence", problem: "evidence must be a JSON object whose keys are the checkpoint's fields" }]
        }
      }
      const result = decode(evidence)
      if (Either.isRight(result)) return { passed: true }
      const missing: Array<string> = []
      const invalid = new Map<string, Array<string>>()
      for (const issue of ParseResult.ArrayFormatter.formatErrorSync(result.left)) {
        const field = pathOf(issue.path)
        if (issue._tag === "Missing") {
          if (!missing.includes(field)) missing.push(field)
          continue
        }
        const problems = invalid.get(field) ?? []
        const problem = truncate(issue.message)
        if (!problems.includes(problem)) problems.push(problem)
        invalid.set(field, problems)
      }
      const invalidFields = [...invalid].map(([field, problems]) => ({ field, problem: problems.join("; ") }))
      return {
        passed: false,
        missing: capped(missing, (more) => `… and ${more} more missing fields`),
        invalid: capped(invalidFields, (more) => ({ field: "…", problem: `and ${more} more invalid fields` }))
      }
    }
  }
}

/**
 * A one-line description of a field spec, for agents: `array of string, at least 1 item`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeField = (spec: FieldSpec): string => {
  const parts: Array<string> = []
  let type: string = spec.type
  if (spec.type === "number" && spec.integer === true) type = "integer"
  if (spec.type === "array" && spec.items !== undefined) type = `array of ${describeField(spec.items)}`
  if (spec.type === "object" && spec.properties !== undefined) {
    type = `object { ${Object.entries(spec.properties).map(([n, s]) => `${n}${s.required === false ? "?" : ""}: ${describeField(s)}`).join("; ")} }`
  }
  parts.push(type)
  if (spec.enum !== undefined) parts.push(`one of ${spec.enum.map((v) => JSON.stringify(v)).join(", ")}`)
  const unit = spec.type === "array" ? "item(s)" : "character(s)"
  if (spec.minLength !== undefined) parts.push(`at least ${spec.minLength} ${unit}`)
  if (spec.maxLength !== undefined) parts.push(`at most ${spec.maxLength} ${unit}`)
  if (spec.min !== undefined) parts.push(`>= ${spec.min}`)
  if (spec.max !== undefined) parts.push(`<= ${spec.max}`)
  if (spec.pattern !== undefined) parts.push(`matching /${spec.pattern}/`)
  return parts.join(", ")
}
