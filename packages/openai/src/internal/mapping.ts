/**
 * `LlmRequest` → Chat Completions parameters, and a Chat Completions body
 * (whole, or accumulated from a stream) → `LlmResponse`.
 *
 * @internal
 */
import { LlmError, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Decode, StreamAccumulator } from "@switchboard/core/provider"
import { Schema } from "effect"
import type {
  ChatCompletionContentPart,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionToolChoiceOption
} from "openai/resources/chat/completions"

type Request = LlmRequest.LlmRequest
type Part = LlmRequest.Part

/**
 * Which field carries `maxTokens`: `"auto"` applies {@link usesMaxCompletionTokens}.
 */
export type MaxTokensParameter = "auto" | "max_tokens" | "max_completion_tokens"

/**
 * The rule for `"auto"`: OpenAI's reasoning models (`o1`, `o3`, `o4-mini`, …,
 * `gpt-5*`, `codex-*`) reject `max_tokens` and need `max_completion_tokens`;
 * every other model gets `max_tokens`, the field every OpenAI-compatible
 * server understands. A provider prefix (`openai/o3-mini`) is ignored.
 */
export const usesMaxCompletionTokens = (model: string): boolean => {
  const bare = model.slice(model.lastIndexOf("/") + 1).toLowerCase()
  return /^(o\d|gpt-5|codex)/.test(bare)
}

const outputText = (output: unknown): string => typeof output === "string" ? output : JSON.stringify(output) ?? "null"

const imageUrl = (part: LlmRequest.ImagePart): string =>
  part.url !== undefined ? part.url : `data:${part.mediaType ?? "application/octet-stream"};base64,${part.data ?? ""}`

const textOf = (parts: ReadonlyArray<Part>): string => {
  let text = ""
  for (const part of parts) if (part.type === "text") text += part.text
  return text
}

/**
 * Builds the Chat Completions body (without `stream`) for a request, or the
 * `InvalidRequest` naming a part OpenAI cannot carry.
 */
export const toParams = (
  request: Request,
  model: string,
  origin: { readonly provider: string },
  maxTokensParameter: MaxTokensParameter = "auto"
): ChatCompletionCreateParamsNonStreaming | LlmError.InvalidRequest => {
  const invalid = (field: string, message: string) =>
    new LlmError.InvalidRequest({ provider: origin.provider, model, field, message: `${field}: ${message}` })
  const messages: Array<ChatCompletionMessageParam> = []
  if (request.system !== undefined && request.system.length > 0) {
    messages.push({ role: "system", content: request.system })
  }
  for (let i = 0; i < request.messages.length; i++) {
    const message = request.messages[i]!
    const at = `messages[${i}]`
    if (typeof message.content === "string") {
      switch (message.role) {
        case "system":
          messages.push({ role: "system", content: message.content })
          break
        case "assistant":
          messages.push({ role: "assistant", content: message.content })
          break
        default:
          messages.push({ role: "user", content: message.content })
      }
      continue
    }
    const parts = message.content
    // Tool results travel as their own `role: "tool"` messages, in order.
    for (const part of parts) {
      if (part.type === "tool-result") {
        const text = outputText(part.output)
        messages.push({
          role: "tool",
          tool_call_id: part.toolCallId,
          content: part.isError === true ? `Error: ${text}` : text
        })
      }
    }
    const rest = parts.filter((part) => part.type !== "tool-result")
    if (rest.length === 0 && parts.length > 0) continue
    switch (message.role) {
      case "system": {
        const image = rest.findIndex((part) => part.type === "image")
        if (image !== -1) return invalid(`${at}.content[${image}]`, "a system message can only hold text")
        messages.push({ role: "system", content: textOf(rest) })
        break
      }
      case "assistant": {
        const image = rest.findIndex((part) => part.type === "image")
        if (image !== -1) return invalid(`${at}.content[${image}]`, "an assistant message cannot hold images on Chat Completions")
        const text = textOf(rest)
        const calls: Array<ChatCompletionMessageToolCall> = []
        for (const part of rest) {
          if (part.type === "tool-call") {
            calls.push({
              id: part.id,
              type: "function",
              function: { name: part.name, arguments: JSON.stringify(part.input ?? {}) }
            })
          }
        }
        messages.push(
          calls.length > 0
            ? { role: "assistant", content: text.length > 0 ? text : null, tool_calls: calls }
            : { role: "assistant", content: text }
        )
        break
      }
      default: {
        // Plain text goes as a string: some OpenAI-compatible servers accept
        // content arrays only when an image is present.
        if (rest.every((part) => part.type === "text")) {
          messages.push({ role: "user", content: textOf(rest) })
          break
        }
        const content: Array<ChatCompletionContentPart> = []
        for (const part of rest) {
          if (part.type === "text") content.push({ type: "text", text: part.text })
          else if (part.type === "image") content.push({ type: "image_url", image_url: { url: imageUrl(part) } })
        }
        messages.push({ role: "user", content })
      }
    }
  }
  const params: ChatCompletionCreateParamsNonStreaming = { model, messages }
  if (request.maxTokens !== undefined) {
    const completion = maxTokensParameter === "max_completion_tokens" ||
      (maxTokensParameter === "auto" && usesMaxCompletionTokens(model))
    if (completion) params.max_completion_tokens = request.maxTokens
    else params.max_tokens = request.maxTokens
  }
  if (request.temperature !== undefined) params.temperature = request.temperature
  if (request.topP !== undefined) params.top_p = request.topP
  if (request.seed !== undefined) params.seed = request.seed
  if (request.stop !== undefined && request.stop.length > 0) params.stop = [...request.stop]
  if (request.tools !== undefined && request.tools.length > 0) {
    params.tools = request.tools.map((tool) => ({
      type: "function" as const,
      function: {
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parameters: { ...tool.parameters }
      }
    }))
  }
  if (request.toolChoice !== undefined) {
    const choice = request.toolChoice
    params.tool_choice = (typeof choice === "string"
      ? choice
      : { type: "function", function: { name: choice.name } }) as ChatCompletionToolChoiceOption
  }
  const format = request.responseFormat
  if (format !== undefined) {
    switch (format.type) {
      case "text":
        params.response_format = { type: "text" }
        break
      case "json":
        params.response_format = { type: "json_object" }
        break
      case "json-schema":
        params.response_format = {
          type: "json_schema",
          json_schema: {
            name: format.name,
            schema: { ...format.schema },
            ...(format.strict !== undefined ? { strict: format.strict } : {})
          }
        }
        break
    }
  }
  return params
}

// ---------------------------------------------------------------------------
// Responses: every body and chunk decoded by a Schema compiled once
// ---------------------------------------------------------------------------

const WireUsage = Schema.Struct({
  prompt_tokens: Decode.OptionalCount,
  completion_tokens: Decode.OptionalCount,
  total_tokens: Decode.OptionalCount,
  prompt_cache_hit_tokens: Decode.OptionalCount,
  prompt_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ cached_tokens: Decode.OptionalCount }))),
  completion_tokens_details: Schema.optional(Schema.NullOr(Schema.Struct({ reasoning_tokens: Decode.OptionalCount })))
})
type WireUsage = typeof WireUsage.Type

const Arguments = Schema.optional(Schema.NullOr(Schema.Unknown))

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.Struct({ name: Decode.ToolName, arguments: Arguments })
})

const WireMessage = Schema.Struct({
  content: Schema.optional(Schema.NullOr(Schema.Union([
    Schema.String,
    Schema.Array(Schema.Struct({ text: Decode.OptionalText }))
  ]))),
  refusal: Decode.OptionalText,
  tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall))),
  function_call: Schema.optional(Schema.NullOr(Schema.Struct({ name: Decode.ToolName, arguments: Arguments })))
})

const WireBody = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  choices: Schema.Array(Schema.Struct({ message: WireMessage, finish_reason: Schema.optional(Schema.NullOr(Schema.String)) }))
    .check(Schema.isMinLength(1)),
  usage: Schema.optional(Schema.NullOr(WireUsage))
})

const decodeSchema = Decode.bodyDecoder(WireBody, "the chat.completion body")

// The fast path of the common answer (text or nothing, no tool calls): a hand-written check strictly
// narrower than `WireBody`, so a body it accepts is one the Schema accepts too, read the same way (the
// mapping reads only the Schema's fields). Everything else, and every error message, goes to the Schema.
const isCountOrAbsent = (u: unknown): boolean =>
  u === undefined || u === null || (typeof u === "number" && Number.isSafeInteger(u) && u >= 0)
const isTextOrAbsent = (u: unknown): boolean => u === undefined || u === null || typeof u === "string"
const isPlainUsage = (u: unknown): boolean => {
  if (u === undefined || u === null) return true
  if (!isRecord(u)) return false
  if (
    !isCountOrAbsent(u["prompt_tokens"]) || !isCountOrAbsent(u["completion_tokens"]) ||
    !isCountOrAbsent(u["total_tokens"]) || !isCountOrAbsent(u["prompt_cache_hit_tokens"])
  ) return false
  const prompt = u["prompt_tokens_details"]
  if (prompt !== undefined && prompt !== null && !(isRecord(prompt) && isCountOrAbsent(prompt["cached_tokens"]))) return false
  const completion = u["completion_tokens_details"]
  return completion === undefined || completion === null ||
    (isRecord(completion) && isCountOrAbsent(completion["reasoning_tokens"]))
}
const isPlainBody = (body: unknown): body is typeof WireBody.Type => {
  if (!isRecord(body) || !isTextOrAbsent(body["id"]) || !isPlainUsage(body["usage"])) return false
  const choices = body["choices"]
  if (!Array.isArray(choices) || choices.length === 0) return false
  for (const choice of choices) {
    if (!isRecord(choice) || !isTextOrAbsent(choice["finish_reason"])) return false
    const message = choice["message"]
    if (
      !isRecord(message) || !isTextOrAbsent(message["content"]) || !isTextOrAbsent(message["refusal"]) ||
      (message["tool_calls"] !== undefined && message["tool_calls"] !== null) ||
      (message["function_call"] !== undefined && message["function_call"] !== null)
    ) return false
  }
  return true
}

/** A body as the mapping reads it: the fast path when it applies, else the Schema. @internal */
export const decodeBody = (
  body: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireBody.Type | LlmError.MalformedResponse => isPlainBody(body) ? body : decodeSchema(body, origin)

const WireChunk = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  usage: Schema.optional(Schema.NullOr(WireUsage)),
  x_groq: Schema.optional(Schema.NullOr(Schema.Struct({ usage: Schema.optional(Schema.NullOr(WireUsage)) }))),
  choices: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    index: Schema.optional(Schema.NullOr(Schema.Number)),
    delta: Schema.optional(Schema.NullOr(Schema.Struct({
      content: Decode.OptionalText,
      refusal: Decode.OptionalText,
      reasoning_content: Decode.OptionalText,
      reasoning: Decode.OptionalText,
      tool_calls: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
        index: Schema.optional(Schema.NullOr(Schema.Number)),
        id: Schema.optional(Schema.NullOr(Schema.String)),
        function: Schema.optional(Schema.NullOr(Schema.Struct({
          name: Decode.OptionalText,
          arguments: Decode.OptionalText
        })))
      }))))
    }))),
    finish_reason: Schema.optional(Schema.NullOr(Schema.String))
  }))))
})

const decodeChunkSchema = Decode.bodyDecoder(WireChunk, "a chat.completion.chunk")

// The same fast path for the common chunk (text, reasoning or refusal deltas, a finish reason, usage;
// no tool-call fragments, no `x_groq`): strictly narrower than `WireChunk`, everything else to the Schema.
const isIndexOrAbsent = (u: unknown): boolean => u === undefined || u === null || (typeof u === "number" && Number.isFinite(u))
const isPlainChunk = (chunk: unknown): chunk is typeof WireChunk.Type => {
  if (
    !isRecord(chunk) || !isTextOrAbsent(chunk["id"]) || !isTextOrAbsent(chunk["model"]) ||
    !isPlainUsage(chunk["usage"]) || (chunk["x_groq"] !== undefined && chunk["x_groq"] !== null)
  ) return false
  const choices = chunk["choices"]
  if (choices === undefined || choices === null) return true
  if (!Array.isArray(choices)) return false
  for (const choice of choices) {
    if (!isRecord(choice) || !isIndexOrAbsent(choice["index"]) || !isTextOrAbsent(choice["finish_reason"])) return false
    const delta = choice["delta"]
    if (delta === undefined || delta === null) continue
    if (
      !isRecord(delta) || !isTextOrAbsent(delta["content"]) || !isTextOrAbsent(delta["refusal"]) ||
      !isTextOrAbsent(delta["reasoning_content"]) || !isTextOrAbsent(delta["reasoning"]) ||
      (delta["tool_calls"] !== undefined && delta["tool_calls"] !== null)
    ) return false
  }
  return true
}

/** A chunk as the stream table reads it: the fast path when it applies, else the Schema. @internal */
export const decodeChunk = (
  chunk: unknown,
  origin: { readonly provider: string; readonly model?: string | undefined }
): typeof WireChunk.Type | LlmError.MalformedResponse => isPlainChunk(chunk) ? chunk : decodeChunkSchema(chunk, origin)

/** {@link decodeChunk} through the Schema alone (the tests hold the fast path to it). @internal */
export const decodeChunkWithSchema = decodeChunkSchema

/** {@link decodeBody} through the Schema alone (the same test holds the body's fast path to it). @internal */
export const decodeBodyWithSchema = (body: unknown, origin: { readonly provider: string; readonly model?: string | undefined }) =>
  decodeSchema(body, origin)

/**
 * Maps OpenAI's `finish_reason` (`function_call` is the pre-tools name of
 * `tool_calls`); anything else, or none, is `"other"`.
 */
export const finishReason = (reason: unknown): LlmResponse.FinishReason => {
  switch (reason) {
    case "stop":
      return "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "content_filter":
      return "content-filter"
    default:
      return "other"
  }
}

/**
 * Normalises a decoded Chat Completions `usage`: `prompt_tokens` already
 * counts the cached prompt tokens (`prompt_tokens_details.cached_tokens`, or
 * DeepSeek's `prompt_cache_hit_tokens`), and `completion_tokens` already
 * counts the reasoning tokens (`completion_tokens_details.reasoning_tokens`).
 */
export const usageOf = (usage: WireUsage | null | undefined): LlmResponse.Usage => {
  if (usage === null || usage === undefined) {
    return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 0 }
  }
  const input = usage.prompt_tokens ?? 0
  const output = usage.completion_tokens ?? 0
  return {
    inputTokens: input,
    outputTokens: output,
    cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? usage.prompt_cache_hit_tokens ?? 0,
    cacheWriteTokens: 0,
    reasoningTokens: usage.completion_tokens_details?.reasoning_tokens ?? 0,
    totalTokens: usage.total_tokens ?? input + output
  }
}

const argumentsText = (args: unknown): string => typeof args === "string" ? args : JSON.stringify(args ?? {})

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Reads a whole Chat Completions body into a response (cost 0, no attempts:
 * `Provider.make` fills them), or fails with `MalformedResponse` naming what
 * is wrong: not a chat completion (e.g. a legacy `/v1/completions`
 * `text_completion`), usage that is not a non-negative integer, text that is
 * not a string, a nameless tool call, tool arguments that are not JSON.
 */
export const toResponse = (
  body: unknown,
  context: {
    readonly provider: string
    readonly model: string
    readonly latencyMs: number
    readonly rateLimit: LlmResponse.RateLimitInfo | undefined
  }
): LlmResponse.LlmResponse | LlmError.MalformedResponse => {
  const origin = { provider: context.provider, model: context.model }
  if (isRecord(body)) {
    const choices = body["choices"]
    const choice = Array.isArray(choices) ? choices[0] : undefined
    if (!isRecord(choice) || !isRecord(choice["message"])) {
      const object = typeof body["object"] === "string" ? ` (object "${body["object"]}")` : ""
      return new LlmError.MalformedResponse({ ...origin, detail: `expected a chat.completion with choices[0].message${object}` })
    }
  }
  const decoded = decodeBody(body, origin)
  if (decoded instanceof LlmError.MalformedResponse) return decoded
  const choice = decoded.choices[0]!
  const message = choice.message
  let text = ""
  if (typeof message.content === "string") text = message.content
  else if (message.content) for (const part of message.content) text += part.text ?? ""
  const raw: Array<{ id: string; name: string; input: string }> = []
  if (message.tool_calls) {
    for (const call of message.tool_calls) {
      raw.push({ id: call.id ?? `call_${raw.length}`, name: call.function.name, input: argumentsText(call.function.arguments) })
    }
  } else if (message.function_call) {
    raw.push({ id: "function_call", name: message.function_call.name, input: argumentsText(message.function_call.arguments) })
  }
  const toolCalls = StreamAccumulator.toolCalls(raw, origin)
  if (toolCalls instanceof LlmError.MalformedResponse) return toolCalls
  // A refusal is the model declining: surface its words and say so in the finish reason.
  const refusal = message.refusal ?? ""
  const refused = refusal.length > 0 && text.length === 0
  if (refused) text = refusal
  const content: Array<Part> = text.length > 0 ? [{ type: "text", text }, ...toolCalls] : [...toolCalls]
  const response: LlmResponse.LlmResponse = {
    id: decoded.id ?? "",
    provider: context.provider,
    model: context.model,
    text,
    content,
    toolCalls,
    finishReason: refused ? "content-filter" : finishReason(choice.finish_reason),
    usage: usageOf(decoded.usage),
    costUsd: 0,
    latencyMs: context.latencyMs,
    cached: false,
    attempts: [],
    raw: body
  }
  return context.rateLimit === undefined ? response : { ...response, rateLimit: context.rateLimit }
}

/** What a stream must have said before it ends, beyond its finish reason. */
export interface StreamSeen {
  usage: boolean
}

/**
 * The stream table: one `chat.completion.chunk` → deltas. `delta.content` is
 * text, `delta.refusal` a refusal, `delta.reasoning_content` (DeepSeek, vLLM)
 * or `delta.reasoning` (OpenRouter, Ollama) reasoning, each tool-call
 * fragment a `tool` delta by index; only choice 0 is read.
 */
export const chunkTable = (seen: StreamSeen) =>
(chunk: unknown, acc: StreamAccumulator.Accumulator): ReadonlyArray<StreamAccumulator.Delta> | LlmError.LlmError => {
  const decoded = decodeChunk(chunk, { provider: acc.provider, model: acc.model })
  if (decoded instanceof LlmError.MalformedResponse) return decoded
  return readChunk(decoded, seen, acc)
}

/** The deltas of one decoded chunk (see {@link chunkTable}). @internal */
export const readChunk = (
  decoded: typeof WireChunk.Type,
  seen: StreamSeen,
  acc: { readonly calls: { readonly size: number } }
): ReadonlyArray<StreamAccumulator.Delta> => {
  const out: Array<StreamAccumulator.Delta> = []
  if (typeof decoded.id === "string") out.push({ _tag: "meta", id: decoded.id })
  const usage = decoded.usage ?? decoded.x_groq?.usage
  if (usage) {
    seen.usage = true
    out.push({ _tag: "usage", usage: usageOf(usage) })
  }
  for (const choice of decoded.choices ?? []) {
    if (choice.index !== undefined && choice.index !== null && choice.index !== 0) continue
    const delta = choice.delta
    if (delta) {
      const reasoning = delta.reasoning_content ?? delta.reasoning
      if (reasoning) out.push({ _tag: "reasoning", text: reasoning })
      if (delta.content) out.push({ _tag: "text", text: delta.content })
      if (delta.refusal) out.push({ _tag: "refusal", text: delta.refusal })
      for (const call of delta.tool_calls ?? []) {
        const index = typeof call.index === "number" ? call.index : acc.calls.size
        out.push({
          _tag: "tool",
          index,
          id: call.id ?? undefined,
          name: call.function?.name ?? undefined,
          input: call.function?.arguments ?? ""
        })
      }
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
      out.push({ _tag: "finish", reason: finishReason(choice.finish_reason), raw: choice.finish_reason })
    }
  }
  return out
}
