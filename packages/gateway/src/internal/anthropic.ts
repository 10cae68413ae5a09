/**
 * The Anthropic Messages wire: request decoding, `message` responses, the SSE
 * events in Anthropic's order and the `{ type: "error", error: { … } }` body.
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
}

const resultOutput = (u: unknown, at: string): unknown => {
  if (u == null) return ""
  if (typeof u === "string") return u
  return R.array(u, at).map((raw, i) => {
    const block = R.object(raw, `${at}[${i}]`)
    return block.type === "text" ? R.string(block.text, `${at}[${i}].text`) : ""
  }).join("")
}

const blocks = (
  u: unknown,
  at: string,
  role: "user" | "assistant"
): { readonly parts: Array<Part>; readonly results: Array<Part> } => {
  const parts: Array<Part> = []
  const results: Array<Part> = []
  if (typeof u === "string") {
    parts.push({ type: "text", text: u })
    return { parts, results }
  }
  R.array(u, at).forEach((raw, j) => {
    const pat = `${at}[${j}]`
    const block = R.object(raw, pat)
    switch (block.type) {
      case "text":
        parts.push({ type: "text", text: R.string(block.text, `${pat}.text`), ...(block.cache_control != null ? { cache: true } : {}) })
        break
      case "image": {
        const source = R.object(block.source, `${pat}.source`)
        if (source.type === "base64") {
          parts.push({
            type: "image",
            data: R.string(source.data, `${pat}.source.data`),
            mediaType: R.string(source.media_type, `${pat}.source.media_type`)
          })
        } else if (source.type === "url") {
          parts.push({ type: "image", url: R.string(source.url, `${pat}.source.url`) })
        } else {
          throw new R.BadField(`${pat}.source.type`, `must be "base64" or "url"`)
        }
        break
      }
      case "tool_use":
        if (role !== "assistant") throw new R.BadField(`${pat}.type`, "tool_use blocks belong in assistant messages")
        parts.push({
          type: "tool-call",
          id: R.string(block.id, `${pat}.id`),
          name: R.string(block.name, `${pat}.name`),
          input: block.input ?? {}
        })
        break
      case "tool_result":
        if (role !== "user") throw new R.BadField(`${pat}.type`, "tool_result blocks belong in user messages")
        results.push(R.compact({
          type: "tool-result" as const,
          toolCallId: R.string(block.tool_use_id, `${pat}.tool_use_id`),
          output: resultOutput(block.content, `${pat}.content`),
          isError: R.optBoolean(block.is_error, `${pat}.is_error`)
        }))
        break
      case "thinking":
      case "redacted_thinking":
        break
      default:
        throw new R.BadField(`${pat}.type`, `unsupported content block type ${JSON.stringify(block.type)}`)
    }
  })
  return { parts, results }
}

const messages = (u: unknown): Array<Message> => {
  const out: Array<Message> = []
  R.array(u, "messages").forEach((raw, i) => {
    const at = `messages[${i}]`
    const m = R.object(raw, at)
    if (m.role !== "user" && m.role !== "assistant") throw new R.BadField(`${at}.role`, `must be "user" or "assistant"`)
    if (m.content === undefined) throw new R.BadField(`${at}.content`, "is required")
    const { parts, results } = blocks(m.content, `${at}.content`, m.role)
    // Tool results travel in a user turn on Anthropic's wire, in a `tool` message in core.
    if (results.length > 0) out.push({ role: "tool", content: results })
    if (parts.length > 0 || results.length === 0) {
      out.push({ role: m.role, content: typeof m.content === "string" ? m.content : parts })
    }
  })
  return out
}

const system = (u: unknown): string | undefined => {
  if (u == null) return undefined
  if (typeof u === "string") return u
  return R.array(u, "system").map((raw, i) => R.string(R.object(raw, `system[${i}]`).text, `system[${i}].text`)).join("\n")
}

const tools = (u: unknown): Request["tools"] => {
  if (u == null) return undefined
  return R.array(u, "tools").map((raw, i) => {
    const at = `tools[${i}]`
    const tool = R.object(raw, at)
    return R.compact({
      name: R.string(tool.name, `${at}.name`),
      description: R.optString(tool.description, `${at}.description`),
      parameters: R.object(tool.input_schema, `${at}.input_schema`)
    })
  })
}

const toolChoice = (u: unknown): Request["toolChoice"] => {
  if (u == null) return undefined
  const choice = R.object(u, "tool_choice")
  switch (choice.type) {
    case "auto":
      return "auto"
    case "any":
      return "required"
    case "none":
      return "none"
    case "tool":
      return { type: "tool", name: R.string(choice.name, "tool_choice.name") }
    default:
      throw new R.BadField("tool_choice.type", `must be "auto", "any", "tool" or "none"`)
  }
}

/** Decodes a Messages request body; a `BadField` names what is wrong. */
export const decode = (body: unknown): Decoded => {
  const b = R.object(body, "body")
  const route = R.string(b.model, "model")
  if (b.messages === undefined) throw new R.BadField("messages", "is required")
  if (b.max_tokens === undefined) throw new R.BadField("max_tokens", "is required")
  const maxTokens = R.optInt(b.max_tokens, "max_tokens")
  const metadata = b.metadata == null ? undefined : R.object(b.metadata, "metadata")
  const user = R.optString(metadata?.user_id, "metadata.user_id")
  const request: Request = R.compact({
    messages: messages(b.messages),
    system: system(b.system),
    temperature: R.optNumber(b.temperature, "temperature"),
    topP: R.optNumber(b.top_p, "top_p"),
    maxTokens,
    stop: b.stop_sequences == null
      ? undefined
      : R.array(b.stop_sequences, "stop_sequences").map((s, i) => R.string(s, `stop_sequences[${i}]`)),
    tools: tools(b.tools),
    toolChoice: toolChoice(b.tool_choice),
    metadata: user === undefined ? undefined : { tags: [`user:${user}`] }
  })
  return { route, request, stream: R.optBoolean(b.stream, "stream") ?? false }
}

export const fieldName = (field: string | undefined): string | undefined => {
  if (field === undefined) return undefined
  return field
    .replace(/^maxTokens/, "max_tokens")
    .replace(/^topP/, "top_p")
    .replace(/^toolChoice/, "tool_choice")
    .replace(/^stop\b/, "stop_sequences")
}

export const stopReason = (reason: LlmResponse.FinishReason): string => {
  switch (reason) {
    case "length":
      return "max_tokens"
    case "tool-calls":
      return "tool_use"
    case "content-filter":
      return "refusal"
    default:
      return "end_turn"
  }
}

const usage = (u: LlmResponse.Usage) => ({
  input_tokens: u.inputTokens,
  output_tokens: u.outputTokens,
  cache_read_input_tokens: u.cachedInputTokens,
  cache_creation_input_tokens: u.cacheWriteTokens
})

/** A `message` body. */
export const encode = (response: Response, id: string) => {
  const content: Array<unknown> = []
  if (response.text.length > 0 || response.toolCalls.length === 0) content.push({ type: "text", text: response.text })
  for (const call of response.toolCalls) content.push({ type: "tool_use", id: call.id, name: call.name, input: call.input ?? {} })
  return {
    id,
    type: "message",
    role: "assistant",
    model: response.model,
    content,
    stop_reason: stopReason(response.finishReason),
    stop_sequence: null,
    usage: usage(response.usage)
  }
}

const typeOf = (p: Problem): string => {
  switch (p.kind) {
    case "invalid_request":
      return "invalid_request_error"
    case "too_large":
      return "request_too_large"
    case "not_found":
      return "not_found_error"
    case "authentication":
      return "authentication_error"
    case "permission":
      return "permission_error"
    case "rate_limit":
      return "rate_limit_error"
    case "budget":
      return "budget_exceeded"
    case "overloaded":
      return "overloaded_error"
    case "unavailable":
    case "timeout":
    case "upstream":
      return "api_error"
  }
}

/** Anthropic answers an overload with 529; every other status is as given. */
export const statusOf = (p: Problem): number => (p.kind === "overloaded" ? 529 : p.status)

/** The `{ type: "error", error: { type, message } }` body. */
export const errorBody = (p: Problem) => ({ type: "error", error: { type: typeOf(p), message: p.message } })

const event = (name: string, data: unknown): string => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`

/**
 * Turns stream parts into Anthropic's events: `message_start`, then per
 * block `content_block_start` / `content_block_delta`… / `content_block_stop`,
 * then `message_delta` with the stop reason and usage, then `message_stop`.
 */
export class EventWriter {
  private started = false
  private open: { readonly kind: "text" | "tool"; readonly id?: string } | undefined
  private index = -1
  private readonly seenTools = new Set<string>()
  readonly id: string
  private readonly model: string
  constructor(id: string, model: string) {
    this.id = id
    this.model = model
  }

  private start(): string {
    if (this.started) return ""
    this.started = true
    return event("message_start", {
      type: "message_start",
      message: {
        id: this.id,
        type: "message",
        role: "assistant",
        model: this.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 }
      }
    })
  }

  private close(): string {
    if (this.open === undefined) return ""
    this.open = undefined
    return event("content_block_stop", { type: "content_block_stop", index: this.index })
  }

  private openText(): string {
    if (this.open?.kind === "text") return ""
    const out = this.close()
    this.index++
    this.open = { kind: "text" }
    return out + event("content_block_start", {
      type: "content_block_start",
      index: this.index,
      content_block: { type: "text", text: "" }
    })
  }

  private openTool(id: string, name: string): string {
    if (this.open?.kind === "tool" && this.open.id === id) return ""
    const out = this.close()
    this.index++
    this.open = { kind: "tool", id }
    this.seenTools.add(id)
    return out + event("content_block_start", {
      type: "content_block_start",
      index: this.index,
      content_block: { type: "tool_use", id, name, input: {} }
    })
  }

  part(part: LlmResponse.StreamPart): string {
    switch (part.type) {
      case "text-delta":
        if (part.text.length === 0) return this.start()
        return this.start() + this.openText() + event("content_block_delta", {
          type: "content_block_delta",
          index: this.index,
          delta: { type: "text_delta", text: part.text }
        })
      case "reasoning-delta":
        return this.start()
      case "tool-call-delta":
        return this.start() + this.openTool(part.id, part.name ?? "") + (part.inputDelta.length === 0 ? "" : event(
          "content_block_delta",
          { type: "content_block_delta", index: this.index, delta: { type: "input_json_delta", partial_json: part.inputDelta } }
        ))
      case "finish": {
        const response = part.response
        let out = this.start()
        if (this.index < 0 && response.toolCalls.length === 0) out += this.openText()
        for (const call of response.toolCalls) {
          if (this.seenTools.has(call.id)) continue
          out += this.openTool(call.id, call.name) + event("content_block_delta", {
            type: "content_block_delta",
            index: this.index,
            delta: { type: "input_json_delta", partial_json: JSON.stringify(call.input ?? {}) }
          })
        }
        out += this.close()
        out += event("message_delta", {
          type: "message_delta",
          delta: { stop_reason: stopReason(response.finishReason), stop_sequence: null },
          usage: usage(response.usage)
        })
        return out + event("message_stop", { type: "message_stop" })
      }
    }
  }

  /** The in-band `error` event; the Anthropic SDK throws on it. */
  error(p: Problem): string {
    return event("error", errorBody(p))
  }
}
