/**
 * `effect/ai` interop, both ways.
 *
 * - {@link toLanguageModel}: any Switchboard stack (a `Layer<LLM>` with its
 *   fallbacks, breakers, budgets and caches) as Effect's own
 *   `LanguageModel.LanguageModel`, so `LanguageModel.generateText`,
 *   `streamText`, `generateObject`, `Chat`, `Toolkit` and `ExecutionPlan` run
 *   on it unchanged.
 * - {@link fromLanguageModel}: any `effect/ai` `LanguageModel` as a Switchboard
 *   leaf, built with `Llm.make`, so it is priced, observed and composable like a
 *   provider layer.
 *
 * Every `LlmError` becomes an `AiError` whose `reason` says the same thing and
 * whose `isRetryable` agrees with ours ({@link toAiError}); the reverse mapping
 * ({@link fromAiError}) is exact for errors that came from a Switchboard stack
 * (the original error rides in the reason's `metadata.switchboard`).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Layer, Option, Schema, Stream } from "effect"
import {
  AiError,
  LanguageModel as AiLanguageModel,
  Model,
  Prompt,
  type Response,
  Telemetry,
  Tool,
  type Toolkit
} from "effect/ai"
import { Base64 } from "effect/encoding"
import type * as JsonSchema from "effect/JsonSchema"
import * as Llm from "../LLM.ts"
import { LLM } from "../LLM.ts"
import * as LlmErrors from "../LlmError.ts"
import type { LlmError } from "../LlmError.ts"
import type * as LlmRequest from "../LlmRequest.ts"
import type { LlmResponse, StreamPart, Usage } from "../LlmResponse.ts"
import { makeUsage } from "../LlmResponse.ts"

// ---------------------------------------------------------------------------
// Errors: LlmError <-> AiError
// ---------------------------------------------------------------------------

const LlmErrorJson = Schema.toCodecJson(LlmErrors.LlmError)
const encodeLlmError = Schema.encodeOption(LlmErrorJson)
const decodeLlmError = Schema.decodeUnknownOption(LlmErrorJson)

/** The original error as JSON metadata, so the reverse mapping is exact. */
const carry = (error: LlmError): { readonly switchboard: Schema.MutableJson } | {} => {
  const encoded = encodeLlmError(error)
  return Option.isSome(encoded) ? { switchboard: encoded.value as Schema.MutableJson } : {}
}

const statusContext = (status: number) => ({ response: { status, headers: {} } })

/**
 * The `AiError` reason for an `LlmError`. `reason.isRetryable` equals
 * `error.retryable` for every tag; `retryAfter` is kept where effect/ai has a
 * place for it (`RateLimitError`).
 *
 * @since 0.1.0
 * @category errors
 */
export const toAiErrorReason = (error: LlmError): AiError.AiErrorReason => {
  const metadata = carry(error)
  switch (error._tag) {
    case "RateLimited":
      return new AiError.RateLimitError({
        metadata,
        http: statusContext(429),
        ...(error.retryAfter !== undefined ? { retryAfter: error.retryAfter } : {})
      })
    case "Overloaded":
      return new AiError.InternalProviderError({ description: error.message, metadata, http: statusContext(503) })
    case "ServerError":
      return new AiError.InternalProviderError({ description: error.message, metadata, http: statusContext(error.status) })
    case "Timeout":
    case "NetworkError":
      // NetworkError has no metadata: the original rides in its `cause`.
      return new AiError.NetworkError({
        reason: "TransportError",
        method: "POST",
        url: error._tag === "NetworkError" && error.url !== undefined ? error.url : error.provider,
        description: error.message,
        cause: error
      })
    case "AuthenticationFailed":
      return new AiError.AuthenticationError({ kind: "InvalidKey", description: error.message, metadata })
    case "PermissionDenied":
      return new AiError.AuthenticationError({ kind: "InsufficientPermissions", description: error.message, metadata })
    case "QuotaExhausted":
    case "BudgetExceeded":
      return new AiError.QuotaExhaustedError({ metadata })
    case "ModelNotFound":
      return new AiError.InvalidRequestError({ parameter: "model", description: error.message, metadata })
    case "ContextLengthExceeded":
      return new AiError.InvalidRequestError({
        parameter: "prompt",
        constraint: "exceeds the model's context window",
        description: error.message,
        metadata
      })
    case "ContentFiltered":
      return new AiError.ContentPolicyError({ description: error.message, metadata })
    case "InvalidRequest":
      return new AiError.InvalidRequestError({
        description: error.message,
        metadata,
        ...(error.field !== undefined ? { parameter: error.field } : {})
      })
    case "NoEligibleModel":
      return new AiError.InvalidRequestError({ parameter: "routing", description: error.message, metadata })
    case "MalformedResponse":
      return new AiError.InvalidOutputError({ description: error.message, metadata })
    case "StreamInterrupted":
      return new AiError.InvalidResponseError({ description: error.message, metadata })
    case "CircuitOpen":
    case "AllProvidersFailed":
    case "StructuredOutputError":
      return new AiError.UnknownError({ description: error.message, metadata })
  }
}

/**
 * An `LlmError` as an `AiError` raised by `LanguageModel.<method>`.
 *
 * @since 0.1.0
 * @category errors
 */
export const toAiError = (error: LlmError, method = "generateText"): AiError.AiError =>
  new AiError.AiError({ module: "LanguageModel", method, reason: toAiErrorReason(error) })

const statusOf = (http: { readonly response?: { readonly status: number } | undefined } | undefined) =>
  http?.response?.status

/**
 * An `AiError` (or a bare reason) as an `LlmError` of the given provider and
 * model. Errors that came from a Switchboard stack come back as they were.
 *
 * @since 0.1.0
 * @category errors
 */
export const fromAiError = (
  error: AiError.AiError | AiError.AiErrorReason,
  origin: { readonly provider: string; readonly model: string }
): LlmError => {
  const reason = AiError.isAiError(error) ? error.reason : error
  if (reason._tag === "NetworkError" && LlmErrors.isLlmError(reason.cause)) return reason.cause
  if ("metadata" in reason && reason.metadata.switchboard !== undefined) {
    const original = decodeLlmError(reason.metadata.switchboard)
    if (Option.isSome(original)) return original.value
  }
  const { provider, model } = origin
  switch (reason._tag) {
    case "RateLimitError":
      return new LlmErrors.RateLimited({
        provider,
        model,
        scope: "unknown",
        source: "provider",
        ...(reason.retryAfter !== undefined ? { retryAfter: reason.retryAfter } : {})
      })
    case "QuotaExhaustedError":
      return new LlmErrors.QuotaExhausted({ provider, model, detail: reason.message })
    case "AuthenticationError":
      return reason.kind === "InsufficientPermissions"
        ? new LlmErrors.PermissionDenied({ provider, model, detail: reason.message })
        : new LlmErrors.AuthenticationFailed({ provider, model, detail: reason.message })
    case "ContentPolicyError":
      return new LlmErrors.ContentFiltered({ provider, model, detail: reason.description })
    case "InvalidRequestError":
      return new LlmErrors.InvalidRequest({
        provider,
        model,
        message: reason.message,
        ...(reason.parameter !== undefined ? { field: reason.parameter } : {})
      })
    case "InternalProviderError": {
      const status = statusOf(reason.http) ?? 500
      return status === 503 || status === 529
        ? new LlmErrors.Overloaded({ provider, model, detail: reason.description })
        : new LlmErrors.ServerError({ provider, model, status, detail: reason.description })
    }
    case "NetworkError":
      return reason.reason === "TransportError"
        ? new LlmErrors.NetworkError({ provider, model, detail: reason.message, cause: "unknown", url: reason.url })
        : new LlmErrors.InvalidRequest({ provider, model, message: reason.message })
    case "InvalidResponseError":
    case "InvalidOutputError":
    case "StructuredOutputError":
      return new LlmErrors.MalformedResponse({ provider, model, detail: reason.message })
    case "UnsupportedSchemaError":
      return new LlmErrors.InvalidRequest({ provider, model, field: "responseFormat", message: reason.message })
    case "UnknownError":
      return new LlmErrors.ServerError({ provider, model, status: statusOf(reason.http) ?? 500, detail: reason.message })
    case "ToolNotFoundError":
    case "ToolParameterValidationError":
    case "InvalidToolResultError":
    case "ToolResultEncodingError":
    case "ToolConfigurationError":
    case "ToolkitRequiredError":
    case "InvalidUserInputError":
      return new LlmErrors.InvalidRequest({ provider, model, message: reason.message })
  }
}

// ---------------------------------------------------------------------------
// Usage and finish reasons
// ---------------------------------------------------------------------------

/**
 * Our `Usage` in effect/ai's shape. `inputTokens` counts every prompt token
 * (cached reads and writes included), as effect/ai's `inputTokens.total` does;
 * `outputTokens.total` includes reasoning tokens.
 *
 * @since 0.1.0
 * @category models
 */
export const toAiUsage = (usage: Usage): typeof Response.Usage.Encoded => ({
  inputTokens: {
    total: usage.inputTokens,
    uncached: Math.max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteTokens),
    cacheRead: usage.cachedInputTokens,
    cacheWrite: usage.cacheWriteTokens
  },
  outputTokens: {
    total: usage.outputTokens,
    text: Math.max(0, usage.outputTokens - usage.reasoningTokens),
    reasoning: usage.reasoningTokens
  }
})

const count = (n: number | undefined): number => n !== undefined && Number.isSafeInteger(n) && n > 0 ? n : 0

/**
 * effect/ai's usage as our `Usage` (missing counts are 0), so pricing and
 * budgets work on a {@link fromLanguageModel} leaf.
 *
 * @since 0.1.0
 * @category models
 */
export const fromAiUsage = (usage: typeof Response.Usage.Encoded): Usage => {
  const cacheRead = count(usage.inputTokens.cacheRead)
  const cacheWrite = count(usage.inputTokens.cacheWrite)
  const reasoning = count(usage.outputTokens.reasoning)
  return makeUsage({
    inputTokens: usage.inputTokens.total !== undefined
      ? count(usage.inputTokens.total)
      : count(usage.inputTokens.uncached) + cacheRead + cacheWrite,
    outputTokens: usage.outputTokens.total !== undefined
      ? count(usage.outputTokens.total)
      : count(usage.outputTokens.text) + reasoning,
    cachedInputTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: reasoning
  })
}

const fromAiFinishReason = (reason: Response.FinishReason): LlmResponse["finishReason"] =>
  reason === "stop" || reason === "length" || reason === "tool-calls" || reason === "content-filter" ? reason : "other"

// ---------------------------------------------------------------------------
// What an effect/ai caller sees of the stack: metadata.switchboard
// ---------------------------------------------------------------------------

/**
 * What {@link toLanguageModel} puts under `metadata.switchboard` of the
 * `response-metadata` and `finish` parts: who answered, what it cost, and every
 * attempt the stack made underneath (a fallback shows here and nowhere else).
 *
 * @since 0.1.0
 * @category models
 */
export interface SwitchboardMetadata {
  readonly provider: string
  readonly model: string
  readonly costUsd: number
  readonly latencyMs: number
  readonly cached: boolean
  readonly usage: Usage
  readonly attempts: ReadonlyArray<{
    readonly provider: string
    readonly model: string
    readonly outcome: string
    readonly latencyMs: number
    readonly costUsd: number
  }>
}

const summary = (response: LlmResponse): Schema.MutableJson => {
  const meta: SwitchboardMetadata = {
    provider: response.provider,
    model: response.model,
    costUsd: response.costUsd,
    latencyMs: response.latencyMs,
    cached: response.cached,
    usage: makeUsage(response.usage),
    attempts: response.attempts.map((a) => ({
      provider: a.provider,
      model: a.model,
      outcome: a.outcome,
      latencyMs: a.latencyMs,
      costUsd: a.costUsd
    }))
  }
  return meta as unknown as Schema.MutableJson
}

/**
 * Reads the {@link SwitchboardMetadata} from the parts of an effect/ai
 * response (`response.content`) or stream (the collected parts).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LanguageModel } from "effect/ai"
 * import { LanguageModel as Interop } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const response = yield* LanguageModel.generateText({ prompt: "hi" })
 *   return Interop.metadataOf(response.content)?.attempts ?? []
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const metadataOf = (
  parts: ReadonlyArray<{ readonly type: string; readonly metadata?: unknown }>
): SwitchboardMetadata | undefined => {
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!
    if (part.type !== "finish" && part.type !== "response-metadata") continue
    const meta = part.metadata
    if (typeof meta === "object" && meta !== null && "switchboard" in meta) {
      const value = (meta as { readonly switchboard: unknown }).switchboard
      if (typeof value === "object" && value !== null && "attempts" in value) return value as SwitchboardMetadata
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------
// effect/ai ProviderOptions -> LlmRequest
// ---------------------------------------------------------------------------

const invalidPrompt = (method: string, parameter: string, description: string) =>
  new AiError.AiError({
    module: "LanguageModel",
    method,
    reason: new AiError.InvalidRequestError({ parameter, description })
  })

const cacheOf = (options: Prompt.ProviderOptions): boolean => {
  const own = options["switchboard"]
  return typeof own === "object" && own !== null && !Array.isArray(own) && (own as { cache?: unknown }).cache === true
}

const textPart = (text: string, options: Prompt.ProviderOptions): LlmRequest.TextPart =>
  cacheOf(options) ? { type: "text", text, cache: true } : { type: "text", text }

const isUrl = (s: string) => /^(https?:|data:)/i.test(s)

const filePart = (part: Prompt.FilePart, method: string, at: string): Effect.Effect<LlmRequest.Part, AiError.AiError> => {
  const mediaType = part.mediaType
  if (mediaType.startsWith("image/")) {
    const data = part.data
    if (data instanceof URL) return Effect.succeed({ type: "image", url: data.href, mediaType })
    if (typeof data === "string") {
      return Effect.succeed(isUrl(data) ? { type: "image", url: data, mediaType } : { type: "image", data, mediaType })
    }
    return Effect.succeed({ type: "image", data: Base64.encode(data), mediaType })
  }
  if (mediaType.startsWith("text/") && !(part.data instanceof URL)) {
    const text = typeof part.data === "string"
      ? part.data
      : new TextDecoder().decode(part.data)
    return Effect.succeed({ type: "text", text })
  }
  return Effect.fail(
    invalidPrompt(method, at, `file parts of media type ${mediaType} are not supported (images and text/* are)`)
  )
}

const toolResultOutput = (part: Prompt.ToolResultPart): unknown =>
  part.modelOutput !== undefined && part.modelOutput.length > 0
    ? Prompt.toolModelOutputToText(part.modelOutput)
    : part.result

/**
 * An effect/ai prompt as our messages: leading system messages become
 * `system`; text, image (file) parts, tool calls and tool results map one to
 * one; assistant reasoning and approval parts are dropped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const requestFromPrompt: (
  prompt: Prompt.Prompt,
  method?: string
) => Effect.Effect<
  { readonly system?: string; readonly messages: ReadonlyArray<LlmRequest.Message> },
  AiError.AiError
> = Effect.fnUntraced(function*(prompt: Prompt.Prompt, method: string = "generateText") {
  const systems: Array<string> = []
  const messages: Array<LlmRequest.Message> = []
  let leading = true
  for (let i = 0; i < prompt.content.length; i++) {
    const message = prompt.content[i]!
    const at = `prompt[${i}]`
    if (message.role === "system") {
      if (leading) systems.push(message.content)
      else messages.push({ role: "system", content: message.content })
      continue
    }
    leading = false
    if (message.role === "user") {
      const parts: Array<LlmRequest.Part> = []
      for (let j = 0; j < message.content.length; j++) {
        const part = message.content[j]!
        parts.push(part.type === "text" ? textPart(part.text, part.options) : yield* filePart(part, method, `${at}.content[${j}]`))
      }
      messages.push({ role: "user", content: parts })
    } else if (message.role === "assistant") {
      const parts: Array<LlmRequest.Part> = []
      const results: Array<LlmRequest.Part> = []
      for (let j = 0; j < message.content.length; j++) {
        const part = message.content[j]!
        switch (part.type) {
          case "text":
            parts.push(textPart(part.text, part.options))
            break
          case "file":
            parts.push(yield* filePart(part, method, `${at}.content[${j}]`))
            break
          case "tool-call":
            parts.push({ type: "tool-call", id: part.id, name: part.name, input: part.params })
            break
          case "tool-result":
            results.push({ type: "tool-result", toolCallId: part.id, output: toolResultOutput(part), isError: part.isFailure })
            break
          default:
            // reasoning and approval requests have no place in LlmRequest
            break
        }
      }
      if (parts.length > 0) messages.push({ role: "assistant", content: parts })
      if (results.length > 0) messages.push({ role: "tool", content: results })
    } else {
      const parts: Array<LlmRequest.Part> = []
      for (const part of message.content) {
        if (part.type === "tool-result") {
          parts.push({ type: "tool-result", toolCallId: part.id, output: toolResultOutput(part), isError: part.isFailure })
        }
      }
      if (parts.length > 0) messages.push({ role: "tool", content: parts })
    }
  }
  return systems.length > 0 ? { system: systems.join("\n\n"), messages } : { messages }
})

const objectNameOf = (name: string): string => {
  const clean = name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64)
  return clean.length > 0 ? clean : "output"
}

/**
 * The `LlmRequest` effect/ai's `LanguageModel.make` hands a provider: prompt,
 * tools (their JSON schemas), tool choice, and `responseFormat: json` with a
 * schema as a native `json-schema` response format.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toRequest: (
  options: AiLanguageModel.ProviderOptions,
  method?: string
) => Effect.Effect<LlmRequest.LlmRequest, AiError.AiError> = Effect.fnUntraced(function*(
  options: AiLanguageModel.ProviderOptions,
  method: string = "generateText"
) {
  const { messages, system } = yield* requestFromPrompt(options.prompt, method)
  const tools: Array<LlmRequest.Tool> = []
  for (const tool of options.tools) {
    if (Tool.isProviderDefined(tool)) {
      return yield* invalidPrompt(method, "tools", `provider-defined tool ${tool.name} cannot run through Switchboard`)
    }
    const description = Tool.getDescription(tool)
    tools.push({
      name: tool.name,
      parameters: Tool.getJsonSchema(tool) as Record<string, unknown>,
      ...(description !== undefined ? { description } : {})
    })
  }
  let toolChoice: LlmRequest.ToolChoice | undefined
  if (tools.length > 0) {
    const choice = options.toolChoice
    toolChoice = typeof choice === "string"
      ? choice
      : "tool" in choice
      ? { type: "tool", name: choice.tool }
      : choice.mode ?? "auto"
  }
  const format = options.responseFormat
  const responseFormat: LlmRequest.ResponseFormat | undefined = format.type === "json"
    ? {
      type: "json-schema",
      name: objectNameOf(format.objectName),
      schema: AiLanguageModel.defaultCodecTransformer(format.schema).jsonSchema as Record<string, unknown>
    }
    : undefined
  return {
    messages,
    ...(system !== undefined ? { system } : {}),
    ...(tools.length > 0 ? { tools, toolChoice } : {}),
    ...(responseFormat !== undefined ? { responseFormat } : {})
  }
})

// ---------------------------------------------------------------------------
// LlmResponse / StreamPart -> effect/ai Response parts
// ---------------------------------------------------------------------------

const finishParts = (response: LlmResponse, timestamp: string) => {
  const switchboard = summary(response)
  return [
    {
      type: "response-metadata",
      id: response.id,
      modelId: response.model,
      timestamp,
      metadata: { switchboard }
    },
    {
      type: "finish",
      reason: response.finishReason,
      usage: toAiUsage(response.usage),
      metadata: { switchboard }
    }
  ] as const satisfies ReadonlyArray<Response.PartEncoded>
}

/**
 * An `LlmResponse` as effect/ai response parts: text and tool calls in order,
 * then `response-metadata` (id, model, time) and `finish` (reason and usage),
 * both carrying {@link SwitchboardMetadata}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const responseParts = (response: LlmResponse, timestamp: string): Array<Response.PartEncoded> => {
  const parts: Array<Response.PartEncoded> = []
  for (const part of response.content) {
    if (part.type === "text") {
      if (part.text.length > 0) parts.push({ type: "text", text: part.text })
    } else if (part.type === "tool-call") {
      parts.push({ type: "tool-call", id: part.id, name: part.name, params: part.input })
    }
  }
  // A provider that leaves `content` empty still reports text and tool calls.
  if (parts.length === 0) {
    if (response.text.length > 0) parts.push({ type: "text", text: response.text })
    for (const call of response.toolCalls) parts.push({ type: "tool-call", id: call.id, name: call.name, params: call.input })
  }
  parts.push(...finishParts(response, timestamp))
  return parts
}

type Block =
  | { readonly kind: "text"; readonly id: string }
  | { readonly kind: "reasoning"; readonly id: string }
  | { readonly kind: "tool"; readonly id: string }

/**
 * Turns our stream parts into effect/ai stream parts, in effect/ai's order:
 * `text-start`/`-delta`/`-end`, `reasoning-start`/`-delta`/`-end`,
 * `tool-params-start`/`-delta`/`-end` then `tool-call` (the final input), then
 * `response-metadata` and `finish`. One converter per stream.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStreamConverter = (timestamp: string) => {
  let open: Block | undefined
  let next = 0
  const started = new Set<string>()
  const close = (out: Array<Response.StreamPartEncoded>) => {
    if (open === undefined) return
    out.push({ type: open.kind === "tool" ? "tool-params-end" : `${open.kind}-end`, id: open.id })
    open = undefined
  }
  return (part: StreamPart): Array<Response.StreamPartEncoded> => {
    const out: Array<Response.StreamPartEncoded> = []
    switch (part.type) {
      case "text-delta":
      case "reasoning-delta": {
        if (part.text.length === 0) return out
        const kind = part.type === "text-delta" ? "text" : "reasoning"
        const current: Block | undefined = open
        let id: string
        if (current === undefined || current.kind !== kind) {
          close(out)
          id = `${kind}_${next++}`
          open = { kind, id }
          out.push({ type: `${kind}-start`, id })
        } else {
          id = current.id
        }
        out.push({ type: `${kind}-delta`, id, delta: part.text })
        return out
      }
      case "tool-call-delta": {
        if (open === undefined || open.kind !== "tool" || open.id !== part.id) {
          close(out)
          open = { kind: "tool", id: part.id }
          if (!started.has(part.id)) {
            started.add(part.id)
            out.push({ type: "tool-params-start", id: part.id, name: part.name ?? "" })
          }
        }
        if (part.inputDelta.length > 0) out.push({ type: "tool-params-delta", id: part.id, delta: part.inputDelta })
        return out
      }
      case "finish": {
        close(out)
        const response = part.response
        const calls = response.toolCalls.length > 0
          ? response.toolCalls
          : response.content.filter((p): p is LlmRequest.ToolCallPart => p.type === "tool-call")
        for (const call of calls) out.push({ type: "tool-call", id: call.id, name: call.name, params: call.input })
        out.push(...finishParts(response, timestamp))
        return out
      }
    }
  }
}

// ---------------------------------------------------------------------------
// toLanguageModel
// ---------------------------------------------------------------------------

const annotate = (span: AiLanguageModel.ProviderOptions["span"], response: LlmResponse) => {
  // effect/ai's GenAI semantic conventions, plus Switchboard's own attributes.
  Telemetry.addGenAIAnnotations(span, {
    provider: { name: response.provider },
    response: { id: response.id, model: response.model, finishReasons: [response.finishReason] },
    usage: { inputTokens: response.usage.inputTokens, outputTokens: response.usage.outputTokens }
  })
  span.attribute("llm.provider", response.provider)
  span.attribute("llm.model", response.model)
  span.attribute("llm.cost_usd", response.costUsd)
  span.attribute("llm.attempts", response.attempts.length)
}

const isoNow = Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis).toISOString())

/**
 * Builds an effect/ai `LanguageModel` over the `LLM` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<AiLanguageModel.LanguageModel, never, LLM> = Effect.gen(function*() {
  const llm = yield* LLM
  return yield* AiLanguageModel.make({
    generateText: (options) =>
      Effect.gen(function*() {
        const request = yield* toRequest(options, "generateText")
        const response = yield* Llm.generate(request).pipe(
          Effect.provideService(LLM, llm),
          Effect.mapError((error) => toAiError(error, "generateText"))
        )
        annotate(options.span, response)
        return responseParts(response, yield* isoNow)
      }),
    streamText: (options) =>
      Stream.unwrap(Effect.gen(function*() {
        const request = yield* toRequest(options, "streamText")
        const convert = makeStreamConverter(yield* isoNow)
        return Llm.stream(request).pipe(
          Stream.provideService(LLM, llm),
          Stream.tap((part) => Effect.sync(() => part.type === "finish" && annotate(options.span, part.response))),
          Stream.map(convert),
          Stream.flattenIterable,
          Stream.mapError((error) => toAiError(error, "streamText"))
        )
      }))
  })
})

/**
 * Any Switchboard stack as Effect's own `LanguageModel`: provide it over a
 * `Layer<LLM>` and `LanguageModel.generateText`, `streamText`,
 * `generateObject`, `Chat`, `Toolkit` and `ExecutionPlan` run on the stack.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { LanguageModel } from "effect/ai"
 * import { LanguageModel as Interop, Llm } from "@switchboard/core"
 *
 * const model = Interop.toLanguageModel.pipe(Layer.provide(Llm.layerTest([{ text: "hi" }])))
 * const program = LanguageModel.generateText({ prompt: "Say hi" }).pipe(Effect.provide(model))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const toLanguageModel: Layer.Layer<AiLanguageModel.LanguageModel, never, LLM> = Layer.effect(
  AiLanguageModel.LanguageModel,
  make
)

/**
 * {@link toLanguageModel} as an effect/ai `Model`: also provides
 * `Model.ProviderName` and `Model.ModelName` (labels for telemetry and
 * `ExecutionPlan` steps; they do not choose the model, the stack does).
 *
 * @since 0.1.0
 * @category layers
 */
export const model = <const Provider extends string, const Name extends string>(
  provider: Provider,
  name: Name
): Model.Model<Provider, AiLanguageModel.LanguageModel, LLM> => Model.make(provider, name, toLanguageModel)

// ---------------------------------------------------------------------------
// fromLanguageModel
// ---------------------------------------------------------------------------

const toolNames = (messages: ReadonlyArray<LlmRequest.Message>): Map<string, string> => {
  const names = new Map<string, string>()
  for (const message of messages) {
    if (typeof message.content === "string") continue
    for (const part of message.content) if (part.type === "tool-call") names.set(part.id, part.name)
  }
  return names
}

const imageFile = (part: LlmRequest.ImagePart): Prompt.FilePart =>
  Prompt.filePart({
    mediaType: part.mediaType ?? "image/*",
    data: part.data !== undefined ? part.data : new URL(part.url!)
  })

const jsonInstruction = (format: LlmRequest.ResponseFormat | undefined): string | undefined =>
  format === undefined || format.type === "text"
    ? undefined
    : format.type === "json"
    ? "Answer with a single JSON value and nothing else."
    : `Answer with a single JSON value matching this JSON schema (${format.name}) and nothing else: ${
      JSON.stringify(format.schema)
    }`

/**
 * Our request as an effect/ai prompt (the reverse of {@link requestFromPrompt}).
 * `responseFormat` json and json-schema become a system instruction.
 *
 * @since 0.1.0
 * @category constructors
 */
export const promptFromRequest = (request: LlmRequest.LlmRequest): Prompt.Prompt => {
  const names = toolNames(request.messages)
  const out: Array<Prompt.Message> = []
  const instruction = jsonInstruction(request.responseFormat)
  const system = [request.system, instruction].filter((s): s is string => s !== undefined && s.length > 0)
  if (system.length > 0) out.push(Prompt.systemMessage({ content: system.join("\n\n") }))
  for (const message of request.messages) {
    const parts = typeof message.content === "string" ? [{ type: "text" as const, text: message.content }] : message.content
    const options = (part: LlmRequest.Part) => part.type === "text" && part.cache === true ? { switchboard: { cache: true } } : {}
    switch (message.role) {
      case "system":
        out.push(Prompt.systemMessage({ content: parts.map((p) => p.type === "text" ? p.text : "").join("") }))
        break
      case "user": {
        const content: Array<Prompt.UserMessagePart> = []
        for (const part of parts) {
          if (part.type === "text") content.push(Prompt.textPart({ text: part.text, options: options(part) }))
          else if (part.type === "image") content.push(imageFile(part))
        }
        out.push(Prompt.userMessage({ content }))
        break
      }
      case "assistant": {
        const content: Array<Prompt.AssistantMessagePart> = []
        for (const part of parts) {
          if (part.type === "text") content.push(Prompt.textPart({ text: part.text, options: options(part) }))
          else if (part.type === "image") content.push(imageFile(part))
          else if (part.type === "tool-call") {
            content.push(Prompt.toolCallPart({ id: part.id, name: part.name, params: part.input, providerExecuted: false }))
          }
        }
        out.push(Prompt.assistantMessage({ content }))
        break
      }
      case "tool": {
        const content: Array<Prompt.ToolMessagePart> = []
        for (const part of parts) {
          if (part.type === "tool-result") {
            content.push(Prompt.toolResultPart({
              id: part.toolCallId,
              name: names.get(part.toolCallId) ?? "tool",
              result: part.output,
              isFailure: part.isError === true,
              providerExecuted: false
            }))
          }
        }
        out.push(Prompt.toolMessage({ content }))
        break
      }
    }
  }
  return Prompt.fromMessages(out)
}

const dynamicTool = (tool: LlmRequest.Tool) =>
  Tool.dynamic(tool.name, { parameters: tool.parameters as JsonSchema.JsonSchema, description: tool.description })

type DynamicTool = ReturnType<typeof dynamicTool>

const toolkitOf = (request: LlmRequest.LlmRequest): Toolkit.WithHandler<Record<string, DynamicTool>> => {
  const tools: Record<string, DynamicTool> = {}
  for (const tool of request.tools ?? []) tools[tool.name] = dynamicTool(tool)
  return {
    tools,
    // Never called: a Switchboard leaf returns tool calls, it does not run them.
    handle: (name) =>
      Effect.fail(
        new AiError.AiError({
          module: "Switchboard",
          method: "fromLanguageModel",
          reason: new AiError.ToolConfigurationError({ toolName: String(name), description: "tools are not run here" })
        })
      )
  }
}

const toolChoiceOf = (choice: LlmRequest.ToolChoice | undefined): AiLanguageModel.ToolChoice<string> | undefined =>
  choice === undefined ? undefined : typeof choice === "string" ? choice : { tool: choice.name }

interface Collected {
  id: string | undefined
  text: string
  content: Array<LlmRequest.Part>
  toolCalls: Array<LlmRequest.ToolCallPart>
  finishReason: LlmResponse["finishReason"]
  usage: Usage
  sawFinish: boolean
}

const collect = (): Collected => ({
  id: undefined,
  text: "",
  content: [],
  toolCalls: [],
  finishReason: "other",
  usage: makeUsage({}),
  sawFinish: false
})

const pushText = (c: Collected, text: string) => {
  c.text += text
  const last = c.content[c.content.length - 1]
  if (last !== undefined && last.type === "text") c.content[c.content.length - 1] = { type: "text", text: last.text + text }
  else c.content.push({ type: "text", text })
}

type AnyResponsePart = {
  readonly type: string
} & Record<string, unknown>

const absorb = (c: Collected, part: AnyResponsePart) => {
  switch (part.type) {
    case "text":
      pushText(c, part["text"] as string)
      break
    case "tool-call": {
      const call: LlmRequest.ToolCallPart = {
        type: "tool-call",
        id: part["id"] as string,
        name: part["name"] as string,
        input: part["params"]
      }
      c.toolCalls.push(call)
      c.content.push(call)
      break
    }
    case "response-metadata":
      if (typeof part["id"] === "string") c.id = part["id"]
      break
    case "finish": {
      c.sawFinish = true
      c.finishReason = fromAiFinishReason(part["reason"] as Response.FinishReason)
      const usage = part["usage"] as typeof Response.Usage.Encoded | undefined
      if (usage !== undefined) c.usage = fromAiUsage(usage)
      break
    }
  }
}

const finish = (
  c: Collected,
  provider: string,
  model: string,
  latencyMs: number,
  fallbackId: string
): LlmResponse => ({
  id: c.id ?? fallbackId,
  provider,
  model,
  text: c.text,
  content: c.content,
  toolCalls: c.toolCalls,
  finishReason: c.toolCalls.length > 0 && c.finishReason === "other" ? "tool-calls" : c.finishReason,
  usage: c.usage,
  costUsd: 0,
  latencyMs,
  cached: false,
  attempts: []
})

/**
 * Options of {@link fromLanguageModel}: the provider and model names the leaf
 * reports (and is priced, budgeted and broken by).
 *
 * @since 0.1.0
 * @category models
 */
export interface FromLanguageModelOptions {
  readonly provider: string
  readonly model: string
}

/**
 * Any effect/ai `LanguageModel` as a Switchboard leaf, built with `Llm.make`
 * (so it is validated, priced, observed and recorded like a provider layer).
 * `AiError`s become `LlmError`s ({@link fromAiError}); usage becomes `Usage`.
 * Tools are offered to the model and its tool calls returned, never run.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { LanguageModel as Interop, Llm } from "@switchboard/core"
 *
 * // `someLanguageModel` is any Layer<LanguageModel.LanguageModel>.
 * declare const someLanguageModel: Layer.Layer<import("effect/ai").LanguageModel.LanguageModel>
 * const leaf = Interop.fromLanguageModel({ provider: "openai", model: "gpt-4o-mini" }).pipe(
 *   Layer.provide(someLanguageModel)
 * )
 * const program = Llm.generateText("hello").pipe(Effect.provide(leaf))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const fromLanguageModel = (
  options: FromLanguageModelOptions
): Layer.Layer<LLM, never, AiLanguageModel.LanguageModel> =>
  Layer.effect(
    LLM,
    Effect.gen(function*() {
      const lm = yield* AiLanguageModel.LanguageModel
      const { provider } = options
      let ids = 0
      const nextId = (at: number) => `${provider}-${at.toString(36)}-${(ids++).toString(36)}`
      const call = (request: LlmRequest.LlmRequest) => {
        const toolkit = toolkitOf(request)
        const toolChoice = toolChoiceOf(request.toolChoice)
        return {
          prompt: promptFromRequest(request),
          disableToolCallResolution: true as const,
          toolkit,
          ...(toolChoice !== undefined ? { toolChoice } : {})
        }
      }
      return Llm.make({
        provider,
        model: options.model,
        generate: (request, model) =>
          Effect.gen(function*() {
            const start = yield* Clock.currentTimeMillis
            const response = yield* lm.generateText(call(request)).pipe(
              Effect.mapError((error) => fromAiError(error, { provider, model }))
            )
            const c = collect()
            for (const part of response.content) absorb(c, part as unknown as AnyResponsePart)
            const end = yield* Clock.currentTimeMillis
            return finish(c, provider, model, end - start, nextId(start))
          }),
        stream: (request, model) =>
          Stream.unwrap(Effect.gen(function*() {
            const start = yield* Clock.currentTimeMillis
            const c = collect()
            const inputs = new Map<string, string>()
            const parts = lm.streamText(call(request)).pipe(
              Stream.mapError((error) => fromAiError(error, { provider, model })),
              Stream.mapEffect((raw): Effect.Effect<ReadonlyArray<StreamPart>, LlmError> => {
                const part = raw as unknown as AnyResponsePart
                switch (part.type) {
                  case "text-delta": {
                    const delta = part["delta"] as string
                    pushText(c, delta)
                    return Effect.succeed([{ type: "text-delta", text: delta }])
                  }
                  case "reasoning-delta":
                    return Effect.succeed([{ type: "reasoning-delta", text: part["delta"] as string }])
                  case "tool-params-start": {
                    const id = part["id"] as string
                    inputs.set(id, "")
                    return Effect.succeed([{ type: "tool-call-delta", id, name: part["name"] as string, inputDelta: "" }])
                  }
                  case "tool-params-delta": {
                    const id = part["id"] as string
                    inputs.set(id, (inputs.get(id) ?? "") + (part["delta"] as string))
                    return Effect.succeed([{ type: "tool-call-delta", id, inputDelta: part["delta"] as string }])
                  }
                  case "tool-call": {
                    absorb(c, part)
                    const id = part["id"] as string
                    return Effect.succeed(
                      inputs.has(id)
                        ? []
                        : [{
                          type: "tool-call-delta",
                          id,
                          name: part["name"] as string,
                          inputDelta: JSON.stringify(part["params"] ?? {})
                        }]
                    )
                  }
                  case "response-metadata":
                    absorb(c, part)
                    return Effect.succeed([])
                  case "error": {
                    // An in-band error part ends the stream with a typed error.
                    const error = part["error"]
                    return Effect.fail(
                      AiError.isAiError(error) || AiError.isAiErrorReason(error)
                        ? fromAiError(error, { provider, model })
                        : new LlmErrors.MalformedResponse({
                          provider,
                          model,
                          detail: `the stream reported an error: ${error instanceof Error ? error.message : String(error)}`
                        })
                    )
                  }
                  case "finish":
                    absorb(c, part)
                    return Effect.map(Clock.currentTimeMillis, (end) => [{
                      type: "finish",
                      response: finish(c, provider, model, end - start, nextId(start))
                    }])
                  default:
                    return Effect.succeed([])
                }
              }),
              Stream.flattenIterable
            )
            return parts
          }))
      })
    })
  )
