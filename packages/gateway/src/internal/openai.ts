/**
 * The OpenAI Chat Completions wire: request decoding, JSON responses, the
 * `chat.completion.chunk` SSE stream and the `{ error: { … } }` body.
 */
import type { LlmRequest, LlmResponse } from "@switchboard/core"
import type { Problem } from "./problem.ts"
import * as R from "./read.ts"

type Request = LlmRequest.LlmRequest
type Message = LlmRequest.Message
type Part = LlmRequest.Part
type Response = LlmResponse.LlmResponse

export interface Decoded {
  readonly route: string
  readonly request: Request
  readonly stream: boolean
  readonly includeUsage: boolean
}

const contentParts = (u: unknown, at: string): string | ReadonlyArray<Part> => {
  if (typeof u === "string") return u
  if (u == null) return ""
  const parts: Array<Part> = []
  R.array(u, at).forEach((raw, j) => {
    const pat = `${at}[${j}]`
    const part = R.object(raw, pat)
    switch (part.type) {
      case "text":
        parts.push({ type: "text", text: R.string(part.text, `${pat}.text`) })
        break
      case "image_url": {
        const image = R.object(part.image_url, `${pat}.image_url`)
        const url = R.string(image.url, `${pat}.image_url.url`)
        const data = R.dataUrl(url)
        parts.push(data === undefined ? { type: "image", url } : { type: "image", data: data.data, mediaType: data.mediaType })
        break
      }
      case "refusal":
        parts.push({ type: "text", text: R.string(part.refusal, `${pat}.refusal`) })
        break
      default:
        throw new R.BadField(`${pat}.type`, `unsupported content part type ${JSON.stringify(part.type)}`)
    }
  })
  return parts
}

const textOf = (content: string | ReadonlyArray<Part>): string =>
  typeof content === "string" ? content : content.map((p) => (p.type === "text" ? p.text : "")).join("")

const message = (raw: unknown, at: string): Message => {
  const m = R.object(raw, at)
  const role = m.role
  switch (role) {
    case "system":
    case "developer":
      return { role: "system", content: textOf(contentParts(m.content, `${at}.content`)) }
    case "user":
      return { role: "user", content: contentParts(m.content, `${at}.content`) }
    case "assistant": {
      const content = contentParts(m.content, `${at}.content`)
      if (m.tool_calls == null) return { role: "assistant", content }
      const parts: Array<Part> = typeof content === "string"
        ? (content.length > 0 ? [{ type: "text", text: content }] : [])
        : [...content]
      R.array(m.tool_calls, `${at}.tool_calls`).forEach((rawCall, k) => {
        const cat = `${at}.tool_calls[${k}]`
        const call = R.object(rawCall, cat)
        const fn = R.object(call.function, `${cat}.function`)
        parts.push({
          type: "tool-call",
          id: R.string(call.id, `${cat}.id`),
          name: R.string(fn.name, `${cat}.function.name`),
          input: R.jsonArguments(fn.arguments ?? "", `${cat}.function.arguments`)
        })
      })
      return { role: "assistant", content: parts }
    }
    case "tool": {
      const content = contentParts(m.content, `${at}.content`)
      return {
        role: "tool",
        content: [{
          type: "tool-result",
          toolCallId: R.string(m.tool_call_id, `${at}.tool_call_id`),
          output: textOf(content)
        }]
      }
    }
    default:
      throw new R.BadField(`${at}.role`, `must be "system", "developer", "user", "assistant" or "tool"`)
  }
}

const tools = (u: unknown): Request["tools"] => {
  if (u == null) return undefined
  return R.array(u, "tools").map((raw, i) => {
    const at = `tools[${i}]`
    const tool = R.object(raw, at)
    if (tool.type !== "function") throw new R.BadField(`${at}.type`, `must be "function"`)
    const fn = R.object(tool.function, `${at}.function`)
    return R.compact({
      name: R.string(fn.name, `${at}.function.name`),
      description: R.optString(fn.description, `${at}.function.description`),
      parameters: fn.parameters == null ? { type: "object", properties: {} } : R.object(fn.parameters, `${at}.function.parameters`)
    })
  })
}

const toolChoice = (u: unknown): Request["toolChoice"] => {
  if (u == null) return undefined
  if (u === "auto" || u === "none" || u === "required") return u
  const choice = R.object(u, "tool_choice")
  if (choice.type !== "function") throw new R.BadField("tool_choice.type", `must be "function"`)
  const fn = R.object(choice.function, "tool_choice.function")
  return { type: "tool", name: R.string(fn.name, "tool_choice.function.name") }
}

const responseFormat = (u: unknown): Request["responseFormat"] => {
  if (u == null) return undefined
  const format = R.object(u, "response_format")
  switch (format.type) {
    case "text":
      return { type: "text" }
    case "json_object":
      return { type: "json" }
    case "json_schema": {
      const schema = R.object(format.json_schema, "response_format.json_schema")
      return R.compact({
        type: "json-schema" as const,
        name: R.string(schema.name, "response_format.json_schema.name"),
        schema: schema.schema == null ? {} : R.object(schema.schema, "response_format.json_schema.schema"),
        strict: R.optBoolean(schema.strict, "response_format.json_schema.strict")
      })
    }
    default:
      throw new R.BadField("response_format.type", `must be "text", "json_object" or "json_schema"`)
  }
}

const stop = (u: unknown): ReadonlyArray<string> | undefined => {
  if (u == null) return undefined
  if (typeof u === "string") return [u]
  return R.array(u, "stop").map((s, i) => R.string(s, `stop[${i}]`))
}

/** Decodes a chat completion request body; a `BadField` names what is wrong. */
export const decode = (body: unknown): Decoded => {
  const b = R.object(body, "body")
  const route = R.string(b.model, "model")
  if (b.messages === undefined) throw new R.BadField("messages", "is required")
  const messages = R.array(b.messages, "messages").map((m, i) => message(m, `messages[${i}]`))
  const n = R.optInt(b.n, "n")
  if (n !== undefined && n !== 1) throw new R.BadField("n", "only n=1 is supported")
  const maxTokens = R.optInt(b.max_completion_tokens, "max_completion_tokens") ?? R.optInt(b.max_tokens, "max_tokens")
  const streamOptions = b.stream_options == null ? undefined : R.object(b.stream_options, "stream_options")
  const user = R.optString(b.user, "user")
  const request: Request = R.compact({
    messages,
    temperature: R.optNumber(b.temperature, "temperature"),
    topP: R.optNumber(b.top_p, "top_p"),
    maxTokens,
    stop: stop(b.stop),
    seed: R.optInt(b.seed, "seed"),
    tools: tools(b.tools),
    toolChoice: toolChoice(b.tool_choice),
    responseFormat: responseFormat(b.response_format),
    metadata: user === undefined ? undefined : { tags: [`user:${user}`] }
  })
  return {
    route,
    request,
    stream: R.optBoolean(b.stream, "stream") ?? false,
    includeUsage: R.optBoolean(streamOptions?.include_usage, "stream_options.include_usage") ?? false
  }
}

/** Maps core's request field names back to OpenAI's for error messages. */
export const fieldName = (field: string | undefined): string | undefined => {
  if (field === undefined) return undefined
  return field
    .replace(/^maxTokens/, "max_tokens")
    .replace(/^topP/, "top_p")
    .replace(/^toolChoice/, "tool_choice")
    .replace(/^responseFormat/, "response_format")
}

export const finishReason = (reason: LlmResponse.FinishReason): string => {
  switch (reason) {
    case "length":
      return "length"
    case "tool-calls":
      return "tool_calls"
    case "content-filter":
      return "content_filter"
    default:
      return "stop"
  }
}

const usage = (u: LlmResponse.Usage) => ({
  prompt_tokens: u.inputTokens,
  completion_tokens: u.outputTokens,
  total_tokens: u.totalTokens,
  prompt_tokens_details: { cached_tokens: u.cachedInputTokens },
  completion_tokens_details: { reasoning_tokens: u.reasoningTokens }
})

const created = (nowMillis: number) => Math.floor(nowMillis / 1000)

/** A `chat.completion` body. */
export const encode = (response: Response, id: string, nowMillis: number) => ({
  id,
  object: "chat.completion",
  created: created(nowMillis),
  model: response.model,
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: response.toolCalls.length > 0 && response.text.length === 0 ? null : response.text,
      refusal: null,
      ...(response.toolCalls.length > 0
        ? {
          tool_calls: response.toolCalls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: JSON.stringify(call.input ?? {}) }
          }))
        }
        : {})
    },
    logprobs: null,
    finish_reason: finishReason(response.finishReason)
  }],
  usage: usage(response.usage),
  system_fingerprint: null
})

const typeOf = (p: Problem): string => {
  switch (p.kind) {
    case "invalid_request":
    case "too_large":
    case "not_found":
      return "invalid_request_error"
    case "authentication":
      return "authentication_error"
    case "permission":
      return "permission_error"
    case "rate_limit":
      return "rate_limit_error"
    case "budget":
      return "budget_exceeded"
    case "overloaded":
    case "unavailable":
      return "service_unavailable"
    case "timeout":
      return "timeout"
    case "upstream":
      return "api_error"
  }
}

/** OpenAI answers every malformed request, an oversized body included, with a 400. */
export const statusOf = (p: Problem): number => (p.kind === "too_large" ? 400 : p.status)

/** The `{ error: { message, type, param, code } }` body. */
export const errorBody = (p: Problem) => ({
  error: { message: p.message, type: typeOf(p), param: p.param ?? null, code: p.code ?? null }
})

const sse = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`

/**
 * Turns stream parts into `chat.completion.chunk` events. The role chunk goes
 * out with the first part; tool calls get stable indexes in order of first
 * appearance; the finish chunk, the optional usage chunk and `[DONE]` end it.
 */
export class ChunkWriter {
  private started = false
  private readonly toolIndex = new Map<string, number>()
  readonly id: string
  private model: string
  readonly created: number
  readonly includeUsage: boolean
  constructor(id: string, model: string, created: number, includeUsage: boolean) {
    this.id = id
    this.model = model
    this.created = created
    this.includeUsage = includeUsage
  }

  private chunk(delta: unknown, finish: string | null, extra?: object) {
    return sse({
      id: this.id,
      object: "chat.completion.chunk",
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...extra
    })
  }

  private start(): string {
    if (this.started) return ""
    this.started = true
    return this.chunk({ role: "assistant", content: "", refusal: null }, null)
  }

  part(part: LlmResponse.StreamPart): string {
    switch (part.type) {
      case "text-delta":
        return part.text.length === 0 ? this.start() : this.start() + this.chunk({ content: part.text }, null)
      case "reasoning-delta":
        return this.start()
      case "tool-call-delta": {
        let index = this.toolIndex.get(part.id)
        const first = index === undefined
        if (index === undefined) {
          index = this.toolIndex.size
          this.toolIndex.set(part.id, index)
        }
        const call = first
          ? { index, id: part.id, type: "function", function: { name: part.name ?? "", arguments: part.inputDelta } }
          : { index, function: { arguments: part.inputDelta } }
        return this.start() + this.chunk({ tool_calls: [call] }, null)
      }
      case "finish": {
        const response = part.response
        this.model = response.model
        let out = this.start()
        // A provider that sent tool calls only in the final response: emit them whole.
        const missing = response.toolCalls.filter((call) => !this.toolIndex.has(call.id))
        if (missing.length > 0) {
          out += this.chunk({
            tool_calls: missing.map((call) => {
              const index = this.toolIndex.size
              this.toolIndex.set(call.id, index)
              return {
                index,
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: JSON.stringify(call.input ?? {}) }
              }
            })
          }, null)
        }
        out += this.chunk({}, finishReason(response.finishReason))
        if (this.includeUsage) {
          out += sse({
            id: this.id,
            object: "chat.completion.chunk",
            created: this.created,
            model: this.model,
            system_fingerprint: null,
            choices: [],
            usage: usage(response.usage)
          })
        }
        return out + "data: [DONE]\n\n"
      }
    }
  }

  /** The in-band error event: the OpenAI SDK throws on a data event carrying `error`. No `[DONE]` follows. */
  error(p: Problem): string {
    return sse(errorBody(p))
  }
}
