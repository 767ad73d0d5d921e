/**
 * New execution ids: UUID version 7 (RFC 9562), the time in their first 48 bits, then
 * random bits. Executions started close in time get nearby ids, so a store's indexes
 * (B-trees keyed by execution id) take their rows on a few pages instead of scattering
 * them: measured on SQLite, 10k executions of ten steps, in lock step, 52k transitions/s
 * with random (v4) ids against 107k with v7 ids (.scratch rawx driver, this machine).
 */

/** A new execution id, made at `now` (milliseconds since the epoch). */
export const newId = (now: number) => {
  const millis = Math.max(0, Math.floor(now))
  if (millis !== idMillis) {
    idMillis = millis
    const time = millis.toString(16).padStart(12, "0").slice(-12)
    idPrefix = `${time.slice(0, 8)}-${time.slice(8)}-7`
  }
  // `toLowerCase` (these characters are lower case already) returns the id as one flat
  // string: concatenated, it is a rope of five pieces around a slice of the UUID, 208 B
  // kept for as long as the execution is in memory instead of 56 B
  return (idPrefix + crypto.randomUUID().slice(15)).toLowerCase()
}

/** the time part of the ids of the current millisecond */
let idMillis = -1
let idPrefix = ""
