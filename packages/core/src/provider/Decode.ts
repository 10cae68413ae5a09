/**
 * The body decoders every provider shares: Schema building blocks that hold
 * the sanity rules of a provider answer (DESIGN §8), and {@link decoder},
 * which compiles a wire-body Schema once and turns a violation into a
 * `MalformedResponse` detail naming the field.
 *
 * The rules: a usage count is a non-negative safe integer (a negative, a
 * fraction, a string, `1e308` or a `BigInt` is refused, never coerced to 0
 * nor left to overflow); text is a string; a tool call has a name and JSON
 * input; an answer is present; a finish reason is known. A provider declares
 * only the fields it reads; unknown fields are ignored.
 *
 * @since 0.1.0
 */
import { Result, Schema, SchemaIssue } from "effect"
import { MalformedResponse } from "../LlmError.ts"
import type { FinishReason, LlmResponse, Usage } from "../LlmResponse.ts"

/**
 * A token count as a provider must send it: a non-negative safe integer.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Count = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

/**
 * An optional token count: absent or `null` means "not said" (0).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OptionalCount = Schema.optional(Schema.NullOr(Count))

/**
 * An optional text field: absent or `null` is no text; anything else but a
 * string is refused.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OptionalText = Schema.optional(Schema.NullOr(Schema.String))

/**
 * A tool name: a non-empty string.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolName = Schema.String.check(Schema.isMinLength(1))

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

const pathOf = (path: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined): string => {
  let out = ""
  for (const entry of path ?? []) {
    const key = typeof entry === "object" ? entry.key : entry
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  }
  return out
}

/**
 * The one-line description of a Schema issue: `usage.prompt_tokens: Expected
 * a value greater than or equal to 0, got -50`.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (issue: SchemaIssue.Issue): string => {
  const first = formatter(issue).issues[0]
  if (first === undefined) return "the body does not match the protocol"
  const path = pathOf(first.path as ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined)
  return path === "" ? first.message : `${path}: ${first.message}`
}

/**
 * Compiles `schema` once into a decoder of wire bodies: the decoded value, or
 * the detail of the first violation (its path and what was wrong).
 *
 * @since 0.1.0
 * @category constructors
 */
export const decoder = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S
): (body: unknown) => Result.Result<S["Type"], string> => {
  const decode = Schema.decodeUnknownResult(schema)
  return (body) => {
    const result = decode(body)
    return Result.isSuccess(result) ? Result.succeed(result.success) : Result.fail(describe(result.failure.issue))
  }
}

/**
 * {@link decoder} failing with `MalformedResponse` for `origin`, as a
 * provider's mapping uses it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const bodyDecoder = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  what: string
): (
  body: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
) => S["Type"] | MalformedResponse => {
  const decode = decoder(schema)
  return (body, origin) => {
    if (body === null || body === undefined) {
      return new MalformedResponse({ ...origin, detail: `the ${what} is ${String(body)}, not an answer` })
    }
    const result = decode(body)
    return Result.isSuccess(result)
      ? result.success
      : new MalformedResponse({ ...origin, detail: `${what}: ${result.failure}` })
  }
}

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0

const usageKeys = [
  "inputTokens",
  "outputTokens",
  "cachedInputTokens",
  "cacheWriteTokens",
  "reasoningTokens",
  "totalTokens"
] as const

const finishReasons: ReadonlySet<unknown> = new Set<FinishReason>([
  "stop",
  "length",
  "tool-calls",
  "content-filter",
  "other"
])

/**
 * What is wrong with a response a provider built, or `undefined` when it is
 * sane: usage counts non-negative safe integers, text a string, every tool
 * call named, a known finish reason. `Provider.make` runs it on every answer,
 * so a provider that let something through still cannot hand nonsense on.
 *
 * @since 0.1.0
 * @category guards
 */
export const insane = (response: LlmResponse): string | undefined => {
  const usage = response.usage as Usage | undefined
  if (usage === undefined || usage === null) return "usage is missing"
  for (const key of usageKeys) {
    const n = usage[key]
    if (!isCount(n)) return `usage.${key} is ${typeof n === "bigint" ? `${n}n` : String(n)}, not a non-negative safe integer`
  }
  if (typeof response.text !== "string") return `text is a ${typeof response.text}, not a string`
  for (const call of response.toolCalls) {
    if (typeof call.name !== "string" || call.name.length === 0) return `tool call ${call.id} has no name`
  }
  if (!finishReasons.has(response.finishReason)) return `finish reason ${String(response.finishReason)} is unknown`
  return undefined
}

/**
 * The part of a usage that can be trusted: every count that is a
 * non-negative safe integer, 0 for the rest (never negative, never
 * infinite). What the ledger records for a response refused as insane.
 *
 * @since 0.1.0
 * @category constructors
 */
export const trustedUsage = (usage: Usage | undefined): Usage => {
  const counts = (usage ?? {}) as Partial<Record<(typeof usageKeys)[number], unknown>>
  const pick = (key: (typeof usageKeys)[number]): number => {
    const n = counts[key]
    return isCount(n) ? n : 0
  }
  const inputTokens = pick("inputTokens")
  const outputTokens = pick("outputTokens")
  const total = pick("totalTokens")
  return {
    inputTokens,
    outputTokens,
    cachedInputTokens: pick("cachedInputTokens"),
    cacheWriteTokens: pick("cacheWriteTokens"),
    reasoningTokens: pick("reasoningTokens"),
    totalTokens: Math.max(total, inputTokens + outputTokens)
  }
}
