/**
 * Small readers for untrusted JSON bodies: each names the field it rejects
 * (`messages[2].content`), so the 400 says exactly what was wrong.
 */

/** Thrown by the readers; caught at the top of a wire's decoder and turned into a 400. */
export class BadField extends Error {
  readonly param: string
  constructor(param: string, message: string) {
    super(`${param}: ${message}`)
    this.param = param
  }
}

export type Json = Record<string, unknown>

export const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

export const object = (u: unknown, at: string): Json => {
  if (!isObject(u)) throw new BadField(at, "must be an object")
  return u
}

export const array = (u: unknown, at: string): ReadonlyArray<unknown> => {
  if (!Array.isArray(u)) throw new BadField(at, "must be an array")
  return u
}

export const string = (u: unknown, at: string): string => {
  if (typeof u !== "string") throw new BadField(at, "must be a string")
  return u
}

export const optString = (u: unknown, at: string): string | undefined => u == null ? undefined : string(u, at)

export const optNumber = (u: unknown, at: string): number | undefined => {
  if (u == null) return undefined
  if (typeof u !== "number" || !Number.isFinite(u)) throw new BadField(at, "must be a number")
  return u
}

export const optInt = (u: unknown, at: string): number | undefined => {
  const n = optNumber(u, at)
  if (n !== undefined && !Number.isInteger(n)) throw new BadField(at, "must be an integer")
  return n
}

export const optBoolean = (u: unknown, at: string): boolean | undefined => {
  if (u == null) return undefined
  if (typeof u !== "boolean") throw new BadField(at, "must be a boolean")
  return u
}

/** Parses a tool call's JSON arguments; empty means `{}`. */
export const jsonArguments = (u: unknown, at: string): unknown => {
  const text = string(u, at)
  if (text.trim().length === 0) return {}
  try {
    return JSON.parse(text)
  } catch {
    throw new BadField(at, "must be a JSON string")
  }
}

/** Splits a `data:` URL into its media type and base64 data. */
export const dataUrl = (url: string): { readonly mediaType: string; readonly data: string } | undefined => {
  const match = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  return match === null ? undefined : { mediaType: match[1]!, data: match[2]! }
}

/** Drops keys whose value is `undefined` (for `exactOptionalPropertyTypes`). */
export const compact = <A extends object>(a: A): A => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v
  return out as A
}
