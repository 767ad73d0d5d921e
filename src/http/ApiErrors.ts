/**
 * The HTTP API's errors on the wire: each typed error of the runtime with the HTTP status
 * it maps to (400 bad input, 404 unknown id, 409 an operation the execution's status does
 * not allow, 429 over a quota, 503 the store unreachable, 504 no answer in time), and the
 * server's own errors. `Api.ts` re-exports them.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Option, Schema, SchemaAST } from "effect"
import {
  DefinitionError,
  ExecutionNotFound,
  QuotaExceeded,
  InvalidTransition,
  SendTimeout,
  StoreError,
  ValidationError
} from "../Errors.js"

/**
 * A typed error on the wire: its fields plus its human-readable `message`, with an
 * HTTP status. Decoding gives back an instance of the error class.
 */
const wire = <A extends { readonly message: string }, I, F extends Schema.Struct.Fields>(
  cls: Schema.Schema<A, I, never> & { readonly fields: F; new(props: any): A },
  status: number
) => {
  const keys = Object.keys(cls.fields)
  return Schema.transform(
    Schema.Struct({ ...cls.fields, message: Schema.String }),
    Schema.typeSchema(cls),
    {
      strict: false,
      decode: (w: Record<string, unknown>) => {
        const props: Record<string, unknown> = {}
        for (const k of keys) if (k !== "_tag" && w[k] !== undefined) props[k] = w[k]
        return new cls(props)
      },
      encode: (e: any) => {
        const out: Record<string, unknown> = { message: e.message }
        for (const k of keys) if (e[k] !== undefined) out[k] = e[k]
        return out
      }
    }
  ).annotations({
    ...HttpApiSchema.annotations({ status }),
    ...Option.match(SchemaAST.getIdentifierAnnotation(SchemaAST.isTransformation(cls.ast) ? cls.ast.to : cls.ast), {
      onNone: () => ({}),
      onSome: (identifier) => ({ identifier })
    })
  })
}

/**
 * No procedure with that name (and version) is registered with the server's runtime.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcedureNotFound extends Schema.TaggedError<ProcedureNotFound>()("ProcedureNotFound", {
  procedure: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `No procedure "${this.procedure}" is registered with this server. Registered: ${this.known.join(", ") || "none"}. ` +
      `Start the server with --module PATH to register more.`
  }
}

/**
 * The request carries no valid bearer token.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {}) {
  override get message(): string {
    return "This server requires a token: send the header `Authorization: Bearer <token>` " +
      "(the dashboard takes it once as ?token=<token>)."
  }
}

/**
 * The request body is larger than the server accepts.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  limit: Schema.Number
}) {
  override get message(): string {
    return `The request body is larger than ${this.limit} bytes; send a smaller body.`
  }
}

/** @since 0.1.0 @category wire errors */
export const ExecutionNotFoundWire = wire(ExecutionNotFound, 404)
/** @since 0.1.0 @category wire errors */
export const ProcedureNotFoundWire = wire(ProcedureNotFound, 404)
/** @since 0.1.0 @category wire errors */
export const ValidationErrorWire = wire(ValidationError, 400)
/** @since 0.1.0 @category wire errors */
export const InvalidTransitionWire = wire(InvalidTransition, 409)
/** @since 0.1.0 @category wire errors */
export const DefinitionErrorWire = wire(DefinitionError, 500)
/** @since 0.1.0 @category wire errors */
export const StoreErrorWire = wire(StoreError, 503)
/** @since 0.1.0 @category wire errors */
export const QuotaExceededWire = wire(QuotaExceeded, 429)
/** @since 0.1.0 @category wire errors */
export const SendTimeoutWire = wire(SendTimeout, 504)
/** @since 0.1.0 @category wire errors */
export const UnauthorizedWire = wire(Unauthorized, 401)
/** @since 0.1.0 @category wire errors */
export const PayloadTooLargeWire = wire(PayloadTooLarge, 413)
