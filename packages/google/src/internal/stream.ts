/**
 * Builds Switchboard responses from Gemini responses. One {@link Accumulator}
 * serves both calls: `generateContent` feeds it the single response,
 * `generateContentStream` feeds it every chunk (each chunk yields its
 * deltas), and `finish` assembles the whole `LlmResponse`.
 *
 * Gemini streams have no terminator event: the last chunk carries the
 * `finishReason`. A stream that ends without one was cut, and fails with
 * `NetworkError` instead of ending clean.
 *
 * @internal
 */
import type { GenerateContentResponse } from "@google/genai"
import type { LlmRequest, LlmResponse } from "@switchboard/core"
import { LlmError } from "@switchboard/core"
import { Clock, Effect, Stream } from "effect"
import {
  finishReasonOf,
  piecesOf,
  rateLimitOf,
  rawOf,
  type SignatureStore,
  usageOf
} from "./mapping.ts"

type Part = LlmRequest.Part
type ToolCallPart = LlmRequest.ToolCallPart
type StreamPart = LlmResponse.StreamPart

/** What the accumulator needs to know about the call. */
export interface CallContext {
  readonly provider: string
  readonly model: string
  readonly signatures: SignatureStore
  /** Used as the response id (and for tool call ids) when Gemini sends none. */
  readonly fallbackId: string
}

/**
 * Collects text, reasoning, tool calls, the finish reason and usage across
 * the chunks of one answer.
 */
export class Accumulator {
  readonly #ctx: CallContext
  #responseId: string | undefined
  #text = ""
  #content: Array<Part> = []
  #toolCalls: Array<ToolCallPart> = []
  #finish: string | undefined
  #sawFinish = false
  #sawCandidate = false
  #usage: GenerateContentResponse["usageMetadata"]
  #rateLimit: LlmResponse.RateLimitInfo | undefined
  #raw: Array<unknown> = []
  #calls = 0

  constructor(ctx: CallContext) {
    this.#ctx = ctx
  }

  get #origin() {
    return { provider: this.#ctx.provider, model: this.#ctx.model }
  }

  /** Adds one response (or stream chunk); returns its deltas, or the error it carries. */
  add(chunk: GenerateContentResponse): Array<StreamPart> | LlmError.LlmError {
    if (this.#raw.length === 0) this.#rateLimit = rateLimitOf(chunk)
    this.#raw.push(rawOf(chunk))
    this.#responseId ??= chunk.responseId
    if (chunk.usageMetadata !== undefined) this.#usage = chunk.usageMetadata
    const candidate = chunk.candidates?.[0]
    if (candidate === undefined) {
      const block = chunk.promptFeedback?.blockReason
      if (block !== undefined) {
        const why = chunk.promptFeedback?.blockReasonMessage
        return new LlmError.ContentFiltered({
          ...this.#origin,
          detail: `the prompt was blocked (${block})${why === undefined ? "" : `: ${why}`}`
        })
      }
      return []
    }
    this.#sawCandidate = true
    const id = this.#responseId ?? this.#ctx.fallbackId
    const pieces = piecesOf(candidate.content?.parts, id, () => this.#calls++, this.#ctx.signatures)
    const out: Array<StreamPart> = []
    for (const piece of pieces) {
      switch (piece._tag) {
        case "text": {
          this.#text += piece.text
          const last = this.#content[this.#content.length - 1]
          if (last !== undefined && last.type === "text") {
            this.#content[this.#content.length - 1] = { type: "text", text: last.text + piece.text }
          } else this.#content.push({ type: "text", text: piece.text })
          out.push({ type: "text-delta", text: piece.text })
          break
        }
        case "reasoning":
          out.push({ type: "reasoning-delta", text: piece.text })
          break
        case "call":
          this.#toolCalls.push(piece.call)
          this.#content.push(piece.call)
          out.push({
            type: "tool-call-delta",
            id: piece.call.id,
            name: piece.call.name,
            inputDelta: JSON.stringify(piece.call.input)
          })
          break
        case "bad-call":
          return new LlmError.MalformedResponse({ ...this.#origin, detail: piece.detail })
      }
    }
    if (candidate.finishReason !== undefined) {
      this.#finish = candidate.finishReason
      this.#sawFinish = true
    }
    return out
  }

  /**
   * The whole response. `stream` demands a finish reason (its absence means
   * the stream was cut); a single response only needs a candidate.
   */
  finish(latencyMs: number, mode: "generate" | "stream"): LlmResponse.LlmResponse | LlmError.LlmError {
    if (mode === "stream" && !this.#sawFinish) {
      return new LlmError.NetworkError({
        ...this.#origin,
        detail: "the stream ended before Gemini sent a finish reason"
      })
    }
    if (mode === "generate" && !this.#sawCandidate) {
      return new LlmError.MalformedResponse({ ...this.#origin, detail: "the response has no candidates" })
    }
    const response: LlmResponse.LlmResponse = {
      id: this.#responseId ?? this.#ctx.fallbackId,
      provider: this.#ctx.provider,
      model: this.#ctx.model,
      text: this.#text,
      content: this.#content,
      toolCalls: this.#toolCalls,
      finishReason: finishReasonOf(this.#finish, this.#toolCalls.length > 0),
      usage: usageOf(this.#usage),
      costUsd: 0,
      latencyMs,
      cached: false,
      attempts: [],
      raw: mode === "generate" ? this.#raw[0] : this.#raw
    }
    return this.#rateLimit === undefined ? response : { ...response, rateLimit: this.#rateLimit }
  }
}

const lift = <A>(result: A | LlmError.LlmError): Effect.Effect<A, LlmError.LlmError> =>
  result instanceof Error ? Effect.fail(result as LlmError.LlmError) : Effect.succeed(result as A)

/**
 * The SDK's chunk iterator as a Switchboard stream ending in `finish`.
 * `mapError` maps a failure of the iterator (a cut, an in-band error event).
 */
export const toStream = (
  chunks: AsyncIterable<GenerateContentResponse>,
  ctx: CallContext,
  start: number,
  mapError: (cause: unknown) => LlmError.LlmError
): Stream.Stream<StreamPart, LlmError.LlmError> => {
  const acc = new Accumulator(ctx)
  return Stream.fromAsyncIterable(chunks, mapError).pipe(
    Stream.mapEffect((chunk) => lift(acc.add(chunk))),
    Stream.flattenIterable,
    Stream.concat(Stream.fromEffect(
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(lift(acc.finish(now - start, "stream")), (response): StreamPart => ({ type: "finish", response })))
    ))
  )
}

/** A single `generateContent` response as an `LlmResponse`. */
export const toResponse = (
  response: GenerateContentResponse,
  ctx: CallContext,
  latencyMs: number
): Effect.Effect<LlmResponse.LlmResponse, LlmError.LlmError> => {
  const acc = new Accumulator(ctx)
  return Effect.flatMap(lift(acc.add(response)), () => lift(acc.finish(latencyMs, "generate")))
}
