/**
 * `LlmRequest` → Chat Completions parameters, and a Chat Completions body
 * (whole, or accumulated from a stream) → `LlmResponse`.
 *
 * @internal
 */
import { LlmError, type LlmRequest, type LlmResponse } from "@switchboard/core"
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
// Responses
// ---------------------------------------------------------------------------

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const num = (u: unknown): number | undefined => typeof u === "number" && Number.isFinite(u) ? u : undefined

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
 * Normalises a Chat Completions `usage`: `prompt_tokens` already counts the
 * cached prompt tokens (`prompt_tokens_details.cached_tokens`, or DeepSeek's
 * `prompt_cache_hit_tokens`), and `completion_tokens` already counts the
 * reasoning tokens (`completion_tokens_details.reasoning_tokens`).
 */
export const usageOf = (usage: unknown): LlmResponse.Usage => {
  if (!isRecord(usage)) return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 0 }
  const input = num(usage["prompt_tokens"]) ?? 0
  const output = num(usage["completion_tokens"]) ?? 0
  const promptDetails = isRecord(usage["prompt_tokens_details"]) ? usage["prompt_tokens_details"] : {}
  const completionDetails = isRecord(usage["completion_tokens_details"]) ? usage["completion_tokens_details"] : {}
  return {
    inputTokens: input,
    outputTokens: output,
    cachedInputTokens: num(promptDetails["cached_tokens"]) ?? num(usage["prompt_cache_hit_tokens"]) ?? 0,
    cacheWriteTokens: 0,
    reasoningTokens: num(completionDetails["reasoning_tokens"]) ?? 0,
    totalTokens: num(usage["total_tokens"]) ?? input + output
  }
}

/** A tool call as accumulated from a message or a stream. */
export interface RawToolCall {
  readonly id: string
  readonly name: string
  readonly arguments: string
}

/** What a response is built from: a whole message, or one accumulated from chunks. */
export interface Collected {
  readonly id: string
  readonly text: string
  readonly refusal: string | undefined
  readonly toolCalls: ReadonlyArray<RawToolCall>
  readonly finishReason: unknown
  readonly usage: unknown
}

/**
 * Builds the `LlmResponse` (cost 0, no attempts: `Llm.make` fills them) or
 * the `MalformedResponse` for tool arguments that are not JSON.
 */
export const toResponse = (
  collected: Collected,
  context: {
    readonly provider: string
    readonly model: string
    readonly latencyMs: number
    readonly rateLimit: LlmResponse.RateLimitInfo | undefined
    readonly raw: unknown
  }
): LlmResponse.LlmResponse | LlmError.MalformedResponse => {
  const { provider, model } = context
  const toolCalls: Array<LlmRequest.ToolCallPart> = []
  for (const call of collected.toolCalls) {
    let input: unknown
    try {
      input = call.arguments.trim() === "" ? {} : JSON.parse(call.arguments)
    } catch {
      return new LlmError.MalformedResponse({
        provider,
        model,
        detail: `the arguments of tool call ${call.id} (${call.name}) are not valid JSON`
      })
    }
    toolCalls.push({ type: "tool-call", id: call.id, name: call.name, input })
  }
  // A refusal is the model declining: surface its words and say so in the finish reason.
  const refused = collected.refusal !== undefined && collected.refusal.length > 0 && collected.text.length === 0
  const text = refused ? collected.refusal! : collected.text
  const content: Array<Part> = text.length > 0 ? [{ type: "text", text }, ...toolCalls] : [...toolCalls]
  const response: LlmResponse.LlmResponse = {
    id: collected.id,
    provider,
    model,
    text,
    content,
    toolCalls,
    finishReason: refused ? "content-filter" : finishReason(collected.finishReason),
    usage: usageOf(collected.usage),
    costUsd: 0,
    latencyMs: context.latencyMs,
    cached: false,
    attempts: [],
    raw: context.raw
  }
  return context.rateLimit === undefined ? response : { ...response, rateLimit: context.rateLimit }
}

/**
 * Reads a whole Chat Completions body, or fails with `MalformedResponse` when
 * it is not one (e.g. a legacy `/v1/completions` `text_completion`, whose
 * choices have `text` and no `message`).
 */
export const collect = (
  body: unknown,
  origin: { readonly provider: string; readonly model: string }
): Collected | LlmError.MalformedResponse => {
  const malformed = (detail: string) => new LlmError.MalformedResponse({ ...origin, detail })
  if (!isRecord(body)) return malformed("the body is not a JSON object")
  const choices = body["choices"]
  const choice = Array.isArray(choices) ? choices[0] : undefined
  const message = isRecord(choice) ? choice["message"] : undefined
  if (!isRecord(choice) || !isRecord(message)) {
    const object = typeof body["object"] === "string" ? ` (object "${body["object"]}")` : ""
    return malformed(`expected a chat.completion with choices[0].message${object}`)
  }
  const content = message["content"]
  let text = ""
  if (typeof content === "string") text = content
  else if (Array.isArray(content)) {
    for (const part of content) if (isRecord(part) && typeof part["text"] === "string") text += part["text"]
  }
  const toolCalls: Array<RawToolCall> = []
  const calls = message["tool_calls"]
  if (Array.isArray(calls)) {
    for (const call of calls) {
      if (!isRecord(call) || !isRecord(call["function"])) return malformed("a tool call has no function")
      const fn = call["function"]
      const args = fn["arguments"]
      toolCalls.push({
        id: typeof call["id"] === "string" ? call["id"] : `call_${toolCalls.length}`,
        name: typeof fn["name"] === "string" ? fn["name"] : "",
        arguments: typeof args === "string" ? args : JSON.stringify(args ?? {})
      })
    }
  } else if (isRecord(message["function_call"])) {
    const fn = message["function_call"]
    toolCalls.push({
      id: "function_call",
      name: typeof fn["name"] === "string" ? fn["name"] : "",
      arguments: typeof fn["arguments"] === "string" ? fn["arguments"] : "{}"
    })
  }
  const refusal = message["refusal"]
  return {
    id: typeof body["id"] === "string" ? body["id"] : "",
    text,
    refusal: typeof refusal === "string" ? refusal : undefined,
    toolCalls,
    finishReason: choice["finish_reason"],
    usage: body["usage"]
  }
}
