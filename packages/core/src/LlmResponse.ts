/**
 * What a call returns: the text and parts, tool calls, why the model
 * stopped, token usage, money, latency, and every attempt that was made on
 * the way — failures included — so the caller and the cost ledger see what
 * really happened. Streams yield {@link StreamPart}s and always end with a
 * `finish` part holding the whole response.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Part, ToolCallPart } from "./LlmRequest.ts"

/**
 * Token counts. Every field is 0 when the provider did not say; `estimated`
 * is true when the counts were made locally rather than by the provider.
 *
 * @since 0.1.0
 * @category models
 */
export const Usage = Schema.Struct({
  inputTokens: Schema.Number,
  outputTokens: Schema.Number,
  cachedInputTokens: Schema.Number,
  cacheWriteTokens: Schema.Number,
  reasoningTokens: Schema.Number,
  totalTokens: Schema.Number,
  estimated: Schema.optional(Schema.Boolean)
})
/** @since 0.1.0 @category models */
export type Usage = typeof Usage.Type

/**
 * Usage with every count at zero.
 *
 * @since 0.1.0
 * @category constructors
 */
export const emptyUsage: Usage = {
  inputTokens: 0,
  outputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  totalTokens: 0
}

/**
 * Builds a {@link Usage} from the counts a provider gave; `totalTokens`
 * defaults to input + output.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUsage = (counts: Partial<Usage>): Usage => {
  const inputTokens = counts.inputTokens ?? 0
  const outputTokens = counts.outputTokens ?? 0
  const usage: Usage = {
    inputTokens,
    outputTokens,
    cachedInputTokens: counts.cachedInputTokens ?? 0,
    cacheWriteTokens: counts.cacheWriteTokens ?? 0,
    reasoningTokens: counts.reasoningTokens ?? 0,
    totalTokens: counts.totalTokens ?? inputTokens + outputTokens
  }
  return counts.estimated === undefined ? usage : { ...usage, estimated: counts.estimated }
}

/**
 * Why the model stopped.
 *
 * @since 0.1.0
 * @category models
 */
export const FinishReason = Schema.Literals(["stop", "length", "tool-calls", "content-filter", "other"])
/** @since 0.1.0 @category models */
export type FinishReason = typeof FinishReason.Type

/**
 * The rate-limit state a provider reported with a response (from its
 * `x-ratelimit-*` / `anthropic-ratelimit-*` headers). Resets are durations
 * from the moment of the response.
 *
 * @since 0.1.0
 * @category models
 */
export const RateLimitInfo = Schema.Struct({
  requestsLimit: Schema.optional(Schema.Number),
  requestsRemaining: Schema.optional(Schema.Number),
  requestsReset: Schema.optional(Schema.Duration),
  tokensLimit: Schema.optional(Schema.Number),
  tokensRemaining: Schema.optional(Schema.Number),
  tokensReset: Schema.optional(Schema.Duration)
})
/** @since 0.1.0 @category models */
export type RateLimitInfo = typeof RateLimitInfo.Type

/**
 * One try at one provider: `outcome` is `"ok"` or the tag of the error it
 * ended with. Attempts are kept in order on every response and every
 * `AllProvidersFailed`.
 *
 * @since 0.1.0
 * @category models
 */
export const Attempt = Schema.Struct({
  provider: Schema.String,
  model: Schema.String,
  outcome: Schema.String,
  latencyMs: Schema.Number,
  usage: Schema.optional(Usage),
  costUsd: Schema.Number,
  detail: Schema.optional(Schema.String)
})
/** @since 0.1.0 @category models */
export type Attempt = typeof Attempt.Type

/**
 * A model's answer.
 *
 * - `text`: the text parts joined; `content`: every part in order.
 * - `costUsd`: the price of this answer's usage (0 for a cache hit);
 *   `priceUnknown` is true when the model was not in the pricing catalog and
 *   a fallback rule priced it.
 * - `attempts`: every try that led here, the successful one last.
 * - `raw`: the provider's own response body, for debugging (never headers,
 *   never keys).
 *
 * @since 0.1.0
 * @category models
 */
export const LlmResponse = Schema.Struct({
  id: Schema.String,
  provider: Schema.String,
  model: Schema.String,
  text: Schema.String,
  content: Schema.Array(Part),
  toolCalls: Schema.Array(ToolCallPart),
  finishReason: FinishReason,
  usage: Usage,
  costUsd: Schema.Number,
  priceUnknown: Schema.optional(Schema.Boolean),
  latencyMs: Schema.Number,
  cached: Schema.Boolean,
  attempts: Schema.Array(Attempt),
  rateLimit: Schema.optional(RateLimitInfo),
  raw: Schema.optional(Schema.Unknown)
})
/** @since 0.1.0 @category models */
export type LlmResponse = typeof LlmResponse.Type

/**
 * A piece of a streamed answer. A stream ends with exactly one `finish` part;
 * one that ends without it has failed.
 *
 * @since 0.1.0
 * @category models
 */
export const StreamPart = Schema.Union([
  Schema.Struct({ type: Schema.Literal("text-delta"), text: Schema.String }),
  Schema.Struct({ type: Schema.Literal("reasoning-delta"), text: Schema.String }),
  Schema.Struct({
    type: Schema.Literal("tool-call-delta"),
    id: Schema.String,
    name: Schema.optional(Schema.String),
    inputDelta: Schema.String
  }),
  Schema.Struct({ type: Schema.Literal("finish"), response: LlmResponse })
])
/** @since 0.1.0 @category models */
export type StreamPart = typeof StreamPart.Type

/**
 * The attempt that a successful response stands for, before combinators add
 * the ones that failed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attemptOf = (response: Pick<LlmResponse, "provider" | "model" | "latencyMs" | "usage" | "costUsd">): Attempt => ({
  provider: response.provider,
  model: response.model,
  outcome: "ok",
  latencyMs: response.latencyMs,
  usage: response.usage,
  costUsd: response.costUsd
})
