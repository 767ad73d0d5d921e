/**
 * Who may talk to `proctor serve`: it binds 127.0.0.1 by default; binding any other
 * address needs a token, and with a token every request must carry it
 * (`Authorization: Bearer <token>`; the dashboard takes it once as `?token=` and then
 * uses a same-site cookie for its own page loads and its event stream).
 *
 * @since 0.1.0
 */
import * as crypto from "node:crypto"
import { Either, Schema } from "effect"

/**
 * The server was asked to listen on a non-loopback address without a token.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenRequired extends Schema.TaggedError<TokenRequired>()("TokenRequired", {
  host: Schema.String
}) {
  override get message(): string {
    return `Refusing to listen on ${this.host} without a token: anyone who can reach it could drive your executions. ` +
      `Pass --token <secret> (or set PROCTOR_TOKEN), or listen on 127.0.0.1 (the default).`
  }
}

/**
 * Whether `host` names this machine only (127.0.0.0/8, ::1, localhost).
 *
 * @since 0.1.0
 * @category guards
 */
export const isLoopback = (host: string): boolean => {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "")
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" || /^127(\.\d{1,3}){3}$/.test(h) ||
    h === "::ffff:127.0.0.1"
}

/**
 * Checks a bind address against the token rule: a loopback host needs nothing, any
 * other host needs a non-empty token.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkBind = (options: { readonly host: string; readonly token: string | undefined }): Either.Either<void, TokenRequired> =>
  isLoopback(options.host) || (options.token !== undefined && options.token !== "")
    ? Either.right(undefined)
    : Either.left(new TokenRequired({ host: options.host }))

const digest = (s: string) => crypto.createHash("sha256").update(s, "utf8").digest()

/**
 * Compares a presented token with the expected one in constant time (both are hashed
 * first so that their lengths do not leak either).
 *
 * @since 0.1.0
 * @category guards
 */
export const tokenMatches = (expected: string, presented: string | undefined): boolean =>
  presented !== undefined && crypto.timingSafeEqual(digest(expected), digest(presented))

/**
 * The token in an `Authorization: Bearer <token>` header.
 *
 * @since 0.1.0
 * @category getters
 */
export const bearer = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header)
  return m === null ? undefined : m[1]
}

/**
 * The name of the cookie the dashboard's page loads and event stream authenticate with.
 *
 * @since 0.1.0
 * @category constants
 */
export const cookieName = "proctor_token"

/**
 * The value of one cookie in a `Cookie` header.
 *
 * @since 0.1.0
 * @category getters
 */
export const cookie = (header: string | undefined, name: string): string | undefined => {
  if (header === undefined) return undefined
  for (const part of header.split(";")) {
    const i = part.indexOf("=")
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim())
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

/**
 * The host name in a `Host` header (`127.0.0.1:7878` → `127.0.0.1`, `[::1]:80` → `::1`).
 *
 * @since 0.1.0
 * @category getters
 */
export const hostName = (hostHeader: string): string => {
  const h = hostHeader.trim().toLowerCase()
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") > 0 ? h.indexOf("]") : undefined)
  const i = h.lastIndexOf(":")
  return i >= 0 && h.indexOf(":") === i ? h.slice(0, i) : h
}
