/**
 * Gemini responses as a table to the shared `StreamAccumulator`: one table
 * serves both calls — `generateContent` feeds it the single response,
 * `generateContentStream` every chunk. Each response is decoded by a Schema
 * compiled once (usage counts non-negative integers, text a string, a
 * function call named).
 *
 * Gemini streams have no terminator event: the last chunk carries the
 * `finishReason`. A stream that ends without one was cut, and fails with
 * `NetworkError` instead of ending clean. A whole response must hold an
 * answer: a candidate without `content` (unless the model stopped for a
 * filter) is `MalformedResponse`.
 *
 * @internal
 */
import type { GenerateContentResponse } from "@google/genai"
import { LlmError, type LlmResponse } from "@switchboard/core"
import { Decode, StreamAccumulator } from "@switchboard/core/provider"
import { Effect, Schema } from "effect"
import { finishReasonOf, rateLimitOf, rawOf, type SignatureStore, toolCallId } from "./mapping.ts"

type StreamPart = LlmResponse.StreamPart

const WireUsage = Schema.Struct({
  promptTokenCount: Decode.OptionalCount,
  toolUsePromptTokenCount: Decode.OptionalCount,
  candidatesTokenCount: Decode.OptionalCount,
  thoughtsTokenCount: Decode.OptionalCount,
  cachedContentTokenCount: Decode.OptionalCount,
  totalTokenCount: Decode.OptionalCount
})

const WirePart = Schema.Struct({
  text: Decode.OptionalText,
  thought: Schema.optional(Schema.NullOr(Schema.Boolean)),
  thoughtSignature: Schema.optional(Schema.NullOr(Schema.String)),
  functionCall: Schema.optional(Schema.NullOr(Schema.Struct({
    id: Schema.optional(Schema.NullOr(Schema.String)),
    name: Schema.optional(Schema.NullOr(Schema.String)),
    args: Schema.optional(Schema.Unknown)
  })))
})

const WireResponse = Schema.Struct({
  responseId: Schema.optional(Schema.NullOr(Schema.String)),
  candidates: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    content: Schema.optional(Schema.NullOr(Schema.Struct({ parts: Schema.optional(Schema.NullOr(Schema.Array(WirePart))) }))),
    finishReason: Schema.optional(Schema.NullOr(Schema.String))
  })))),
  promptFeedback: Schema.optional(Schema.NullOr(Schema.Struct({
    blockReason: Schema.optional(Schema.NullOr(Schema.String)),
    blockReasonMessage: Schema.optional(Schema.NullOr(Schema.String))
  }))),
  usageMetadata: Schema.optional(Schema.NullOr(WireUsage))
})

const decodeResponseWithSchema = Decode.bodyDecoder(WireResponse, "the Gemini response")

// The fast path of the common response or chunk (text parts only, no prompt feedback): a hand-written
// check strictly narrower than `WireResponse`, so a response it accepts is one the Schema accepts too,
// read the same way (the table reads only the Schema's fields). Everything else (function calls, a blocked
// prompt, any doubt), and every error message, goes to the Schema. `test/fastpath.test.ts` holds it to it.
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)
const isAbsent = (u: unknown): boolean => u === undefined || u === null
const isCountOrAbsent = (u: unknown): boolean =>
  isAbsent(u) || (typeof u === "number" && Number.isSafeInteger(u) && u >= 0)
const isTextOrAbsent = (u: unknown): boolean => isAbsent(u) || typeof u === "string"
const isPlainUsage = (u: unknown): boolean =>
  isAbsent(u) || (isRecord(u) && isCountOrAbsent(u["promptTokenCount"]) && isCountOrAbsent(u["toolUsePromptTokenCount"]) &&
    isCountOrAbsent(u["candidatesTokenCount"]) && isCountOrAbsent(u["thoughtsTokenCount"]) &&
    isCountOrAbsent(u["cachedContentTokenCount"]) && isCountOrAbsent(u["totalTokenCount"]))
const isPlainPart = (u: unknown): boolean =>
  isRecord(u) && isTextOrAbsent(u["text"]) && (isAbsent(u["thought"]) || typeof u["thought"] === "boolean") &&
  isTextOrAbsent(u["thoughtSignature"]) && u["functionCall"] === undefined
const isPlainCandidate = (u: unknown): boolean => {
  if (!isRecord(u) || !isTextOrAbsent(u["finishReason"])) return false
  const content = u["content"]
  if (isAbsent(content)) return true
  if (!isRecord(content)) return false
  const parts = content["parts"]
  if (isAbsent(parts)) return true
  if (!Array.isArray(parts)) return false
  for (const part of parts) if (!isPlainPart(part)) return false
  return true
}
const isPlainResponse = (body: unknown): body is typeof WireResponse.Type => {
  if (
    !isRecord(body) || !isTextOrAbsent(body["responseId"]) || body["promptFeedback"] !== undefined ||
    !isPlainUsage(body["usageMetadata"])
  ) return false
  const candidates = body["candidates"]
  if (isAbsent(candidates)) return true
  if (!Array.isArray(candidates)) return false
  for (const candidate of candidates) if (!isPlainCandidate(candidate)) return false
  return true
}

/** A response or chunk as the table reads it: the fast path when it applies, else the Schema. @internal */
export const decodeResponse = (
  body: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireResponse.Type | LlmError.MalformedResponse => isPlainResponse(body) ? body : decodeResponseWithSchema(body, origin)

/** {@link decodeResponse} through the Schema alone (`test/fastpath.test.ts` holds the fast path to it). @internal */
export const decodeResponseSchemaOnly = (
  body: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireResponse.Type | LlmError.MalformedResponse => decodeResponseWithSchema(body, origin)

/** A decoded Gemini response (or chunk). @internal */
export type WireResponse = typeof WireResponse.Type

/** What the table needs to know about the call. */
export interface CallContext {
  readonly provider: string
  readonly model: string
  readonly signatures: SignatureStore
  /** Used as the response id (and for tool call ids) when Gemini sends none. */
  readonly fallbackId: string
}

const filtered = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"])

/**
 * The table of one answer: a Gemini response (or chunk) → deltas, or the
 * error it proves. `mode: "generate"` also requires an answer.
 */
export const table = (ctx: CallContext, mode: "generate" | "stream"): StreamAccumulator.Table<GenerateContentResponse> => {
  let calls = 0
  let responseId: string | undefined
  return (chunk, acc) => {
    const origin = { provider: acc.provider, model: acc.model }
    const decoded = decodeResponse(chunk, origin)
    if (decoded instanceof LlmError.MalformedResponse) return decoded
    const out: Array<StreamAccumulator.Delta> = []
    responseId ??= decoded.responseId ?? undefined
    out.push({ _tag: "meta", id: responseId ?? ctx.fallbackId })
    const usage = decoded.usageMetadata
    if (usage) {
      const thoughts = usage.thoughtsTokenCount ?? 0
      const inputTokens = (usage.promptTokenCount ?? 0) + (usage.toolUsePromptTokenCount ?? 0)
      const outputTokens = (usage.candidatesTokenCount ?? 0) + thoughts
      out.push({
        _tag: "usage",
        usage: {
          inputTokens,
          outputTokens,
          cachedInputTokens: usage.cachedContentTokenCount ?? 0,
          reasoningTokens: thoughts,
          totalTokens: inputTokens + outputTokens
        }
      })
    }
    const candidate = decoded.candidates?.[0]
    if (candidate === undefined) {
      const block = decoded.promptFeedback?.blockReason
      if (block !== undefined && block !== null) {
        const why = decoded.promptFeedback?.blockReasonMessage
        return new LlmError.ContentFiltered({
          ...origin,
          detail: `the prompt was blocked (${block})${why === undefined || why === null ? "" : `: ${why}`}`
        })
      }
      if (mode === "generate") return new LlmError.MalformedResponse({ ...origin, detail: "the response has no candidates" })
      return out
    }
    const reason = candidate.finishReason ?? undefined
    if (mode === "generate" && (candidate.content === undefined || candidate.content === null) && !filtered.has(reason ?? "")) {
      return new LlmError.MalformedResponse({ ...origin, detail: "candidates[0] has no content: the answer is missing" })
    }
    const id = responseId ?? ctx.fallbackId
    for (const part of candidate.content?.parts ?? []) {
      const fc = part.functionCall
      if (fc !== undefined && fc !== null) {
        if (typeof fc.name !== "string" || fc.name.length === 0) {
          return new LlmError.MalformedResponse({ ...origin, detail: "a functionCall part has no name" })
        }
        let args: unknown = fc.args ?? {}
        if (typeof args === "string") {
          try {
            args = JSON.parse(args)
          } catch {
            return new LlmError.MalformedResponse({ ...origin, detail: `the arguments of ${fc.name} are not valid JSON` })
          }
        }
        const index = calls++
        const callId = toolCallId(fc.id ?? undefined, id, index)
        if (typeof part.thoughtSignature === "string") ctx.signatures.set(callId, part.thoughtSignature)
        out.push({ _tag: "tool", index, id: callId, name: fc.name, input: JSON.stringify(args) })
        continue
      }
      if (typeof part.text === "string" && part.text.length > 0) {
        out.push({ _tag: part.thought === true ? "reasoning" : "text", text: part.text })
      }
    }
    if (reason !== undefined || mode === "generate") {
      out.push({ _tag: "finish", reason: finishReasonOf(reason, calls > 0), raw: reason ?? null })
    }
    return out
  }
}

/**
 * What `StreamAccumulator.stream` reads for one run of a stream: the SDK's
 * chunk iterator, folded into parts that end in `finish` (its rate-limit
 * state from the first chunk's headers). `mapError` maps a failure of the
 * iterator (a cut, an in-band error event).
 */
export const streamOptions = (
  open: Effect.Effect<AsyncIterable<GenerateContentResponse>, LlmError.LlmError>,
  abort: () => void,
  ctx: CallContext,
  mapError: (cause: unknown) => LlmError.LlmError
): StreamAccumulator.StreamOptions<GenerateContentResponse, never> => {
  const raws: Array<unknown> = []
  let first = true
  const step = table(ctx, "stream")
  return {
    provider: ctx.provider,
    model: ctx.model,
    // Interrupted before it opens, the request is aborted too (the SDK holds no signal of the fiber's).
    open: Effect.map(Effect.onInterrupt(open, () => Effect.sync(abort)), (events) => ({ events, abort })),
    table: (chunk, acc) => {
      if (first) {
        first = false
        acc.rateLimit = rateLimitOf(chunk)
      }
      raws.push(rawOf(chunk))
      return step(chunk, acc)
    },
    onError: mapError,
    unfinished: "the stream ended before Gemini sent a finish reason",
    raw: () => raws
  }
}

/** A single `generateContent` response as an `LlmResponse`. */
export const toResponse = (
  response: GenerateContentResponse,
  ctx: CallContext,
  start: number,
  end: number
): LlmResponse.LlmResponse | LlmError.LlmError => {
  const rateLimit = rateLimitOf(response)
  const acc = StreamAccumulator.make({ provider: ctx.provider, model: ctx.model, startedAt: start, rateLimit })
  const deltas = table(ctx, "generate")(response, acc)
  if (!Array.isArray(deltas)) return deltas as LlmError.LlmError
  const sink: Array<StreamPart> = []
  for (const delta of deltas) StreamAccumulator.push(acc, delta, sink)
  return StreamAccumulator.finish(acc, end, rawOf(response))
}
