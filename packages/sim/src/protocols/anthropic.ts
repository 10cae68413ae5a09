/**
 * The Anthropic Messages wire protocol: `POST /v1/messages` (JSON and SSE with
 * `message_start`, `content_block_*`, `ping`, `message_delta`, `message_stop`
 * and in-band `error` events), `GET /v1/models`, Anthropic error bodies and
 * `anthropic-ratelimit-*` headers with RFC 3339 resets.
 *
 * @since 0.1.0
 */
import type { Model } from "../Config.ts"
import {
  type Completion,
  contentText,
  markedPrefix,
  type ErrorSpec,
  errorSpec,
  type ProtocolImpl,
  type RateInfo,
  type Rendered,
  type SimRequest,
  type StreamEvent,
  type ToolChoice,
  type ToolSpec
} from "../internal/protocol.ts"
import { isRecord, rfc3339 } from "../internal/util.ts"

const stopReason = { stop: "end_turn", length: "max_tokens", tool: "tool_use", filter: "refusal" } as const

const invalid = (message: string): ErrorSpec => errorSpec(400, "invalid_request", { message })

const parse = (body: unknown): SimRequest | ErrorSpec => {
  if (!isRecord(body)) return invalid("messages: Input should be a valid list")
  if (typeof body.model !== "string") return invalid("model: Field required")
  if (body.max_tokens === undefined) return invalid("max_tokens: Field required")
  if (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens) || body.max_tokens < 1) {
    return invalid("max_tokens: Input should be greater than or equal to 1")
  }
  if (!Array.isArray(body.messages)) return invalid("messages: Field required")
  const texts: Array<string> = []
  // Anthropic caches only what a `cache_control` breakpoint marks: the prompt up to the last one.
  let cachePrefix: ReadonlyArray<string> = []
  const marker = (b: Record<string, unknown>) => isRecord(b.cache_control)
  if (body.system !== undefined) {
    cachePrefix = markedPrefix(texts, body.system, marker) ?? cachePrefix
    texts.push(contentText(body.system))
  }
  let lastIsToolResult = false
  for (const [i, m] of body.messages.entries()) {
    if (!isRecord(m) || (m.role !== "user" && m.role !== "assistant")) {
      return invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`)
    }
    cachePrefix = markedPrefix(texts, m.content, marker) ?? cachePrefix
    texts.push(contentText(m.content))
    lastIsToolResult = m.role === "user" && Array.isArray(m.content) &&
      m.content.some((b) => isRecord(b) && b.type === "tool_result")
  }
  const tools: Array<ToolSpec> = []
  if (Array.isArray(body.tools)) {
    for (const t of body.tools) {
      if (isRecord(t) && typeof t.name === "string") tools.push({ name: t.name, schema: t.input_schema })
    }
  }
  let toolChoice: ToolChoice = { _tag: "auto" }
  const tc = body.tool_choice
  if (isRecord(tc)) {
    if (tc.type === "none") toolChoice = { _tag: "none" }
    else if (tc.type === "any") toolChoice = { _tag: "required" }
    else if (tc.type === "tool" && typeof tc.name === "string") toolChoice = { _tag: "named", name: tc.name }
  }
  return {
    model: body.model,
    stream: body.stream === true,
    includeUsage: true,
    maxTokens: body.max_tokens,
    texts,
    cachePrefix,
    toolsJson: tools.length > 0 ? JSON.stringify(body.tools) : "",
    tools,
    toolChoice,
    lastIsToolResult
  }
}

const inputTokens = (c: Completion) => c.promptTokens - c.cachedTokens - c.cacheWriteTokens

const usage = (c: Completion, outputTokens: number) => ({
  input_tokens: inputTokens(c),
  cache_creation_input_tokens: c.cacheWriteTokens,
  cache_read_input_tokens: c.cachedTokens,
  cache_creation: { ephemeral_5m_input_tokens: c.cacheWriteTokens, ephemeral_1h_input_tokens: 0 },
  output_tokens: outputTokens,
  service_tier: "standard"
})

const messageId = (c: Completion) => `msg_01${c.requestId}`
const toolId = (c: Completion) => `toolu_01${c.tool?.id ?? ""}`

const json = (c: Completion): unknown => ({
  model: c.model,
  id: messageId(c),
  type: "message",
  role: "assistant",
  content: c.tool !== undefined
    ? [{ type: "tool_use", id: toolId(c), name: c.tool.name, input: c.tool.input }]
    : [{ type: "text", text: c.text }],
  stop_reason: stopReason[c.finish],
  stop_sequence: null,
  usage: usage(c, c.outputTokens)
})

const frame = (type: string, payload: string): string => `event: ${type}\ndata: ${payload}\n\n`

const stream = (c: Completion): ReadonlyArray<StreamEvent> => {
  const out: Array<StreamEvent> = []
  out.push({
    data: frame(
      "message_start",
      JSON.stringify({
        type: "message_start",
        message: {
          model: c.model,
          id: messageId(c),
          type: "message",
          role: "assistant",
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: usage(c, 1)
        }
      })
    ),
    tokens: 0
  })
  if (c.tool !== undefined) {
    out.push({
      data: frame(
        "content_block_start",
        JSON.stringify({ type: "content_block_start", index: 0, content_block: { type: "tool_use", id: toolId(c), name: c.tool.name, input: {} } })
      ),
      tokens: 1
    })
    out.push({ data: frame("ping", `{"type": "ping"}`), tokens: 0 })
    const args = c.tool.args
    const step = Math.max(1, Math.ceil(args.length / 4))
    for (let i = 0; i < args.length; i += step) {
      out.push({
        data: frame(
          "content_block_delta",
          JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: args.slice(i, i + step) } })
        ),
        tokens: 1
      })
    }
  } else {
    out.push({ data: frame("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`), tokens: 0 })
    out.push({ data: frame("ping", `{"type": "ping"}`), tokens: 0 })
    for (const p of c.pieces) {
      out.push({
        data: frame("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(p)}}}`),
        tokens: 1
      })
    }
  }
  out.push({ data: frame("content_block_stop", `{"type":"content_block_stop","index":0}`), tokens: 0 })
  out.push({
    data: frame(
      "message_delta",
      JSON.stringify({
        type: "message_delta",
        delta: { stop_reason: stopReason[c.finish], stop_sequence: null },
        usage: {
          input_tokens: inputTokens(c),
          cache_creation_input_tokens: c.cacheWriteTokens,
          cache_read_input_tokens: c.cachedTokens,
          output_tokens: c.outputTokens
        }
      })
    ),
    tokens: 0
  })
  out.push({ data: frame("message_stop", `{"type":"message_stop"}`), tokens: 0 })
  return out
}

const errorType = (e: ErrorSpec): { type: string; message: string } => {
  switch (e.kind) {
    case "context_length":
      return { type: "invalid_request_error", message: `prompt is too long: ${e.promptTokens} tokens > ${e.limit} maximum` }
    case "invalid_request":
      return e.status === 413
        ? { type: "request_too_large", message: e.message ?? "Request exceeds the maximum allowed number of bytes." }
        : { type: "invalid_request_error", message: e.message ?? "Invalid request" }
    case "auth":
      return { type: "authentication_error", message: e.missingKey ? "x-api-key header is required" : "invalid x-api-key" }
    case "permission":
      return { type: "permission_error", message: e.message ?? "Your API key does not have permission to use the specified resource." }
    case "not_found":
      return { type: "not_found_error", message: e.message ?? `model: ${e.model ?? "unknown"}` }
    case "rate_limit":
      return {
        type: "rate_limit_error",
        message: e.message ??
          `This request would exceed the rate limit for your organization of ${e.limit ?? 0} ${e.rateScope === "tokens" ? "input tokens" : "requests"} per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.`
      }
    case "overloaded":
    case "unavailable":
      return { type: "overloaded_error", message: e.message ?? "Overloaded" }
    case "timeout":
      return { type: "timeout_error", message: e.message ?? "Request timed out" }
    case "server":
      return { type: "api_error", message: e.message ?? "Internal server error" }
  }
}

const rateHeaders = (r: RateInfo): Record<string, string> => {
  const h: Record<string, string> = {}
  const reset = rfc3339(r.resetAt)
  if (r.requestsLimit !== undefined) {
    h["anthropic-ratelimit-requests-limit"] = String(r.requestsLimit)
    h["anthropic-ratelimit-requests-remaining"] = String(r.requestsRemaining)
    h["anthropic-ratelimit-requests-reset"] = reset
  }
  if (r.tokensLimit !== undefined) {
    for (const k of ["tokens", "input-tokens", "output-tokens"]) {
      h[`anthropic-ratelimit-${k}-limit`] = String(r.tokensLimit)
      h[`anthropic-ratelimit-${k}-remaining`] = String(r.tokensRemaining)
      h[`anthropic-ratelimit-${k}-reset`] = reset
    }
  }
  return h
}

const error = (e: ErrorSpec, rate: RateInfo | undefined): Rendered => {
  const requestId = `req_011${Math.random().toString(36).slice(2, 14)}`
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "request-id": requestId,
    ...(rate !== undefined ? rateHeaders(rate) : {})
  }
  if (e.retryAfterS !== undefined || e.retryAfterMs !== undefined) {
    headers["retry-after"] = String(e.retryAfterS ?? Math.ceil((e.retryAfterMs ?? 0) / 1000))
  }
  if (e.status === 529 || e.status === 503) headers["x-should-retry"] = "true"
  return { status: e.status, headers, body: JSON.stringify({ type: "error", error: errorType(e), request_id: requestId }) }
}

const model = (m: Model) => ({
  type: "model",
  id: m.id,
  display_name: m.displayName ?? m.id,
  created_at: "2025-01-01T00:00:00Z"
})

/**
 * The Anthropic protocol implementation.
 *
 * @since 0.1.0
 * @category protocols
 */
export const anthropic: ProtocolImpl = {
  name: "anthropic",
  route: (method, path) => {
    if (method === "POST" && path === "/v1/messages") return { _tag: "generate", model: undefined, stream: false }
    if (method === "GET" && path === "/v1/models") return { _tag: "models" }
    if (method === "GET" && path.startsWith("/v1/models/")) return { _tag: "model", id: decodeURIComponent(path.slice(11)) }
    return undefined
  },
  parse,
  auth: (headers, _query, keys) => {
    const h = headers["x-api-key"]
    const value = Array.isArray(h) ? h[0] : h
    if (value === undefined) {
      const b = headers["authorization"]
      const bearer = Array.isArray(b) ? b[0] : b
      if (bearer !== undefined && bearer.startsWith("Bearer ") && keys.has(bearer.slice(7).trim())) return undefined
      return errorSpec(401, "auth", { missingKey: true })
    }
    return keys.has(value) ? undefined : errorSpec(401, "auth")
  },
  json,
  stream,
  streamContentType: "text/event-stream; charset=utf-8",
  streamError: () => frame("error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
  malformedEvent: () => `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\n\n`,
  error,
  successHeaders: (requestId, rate) => ({ "request-id": `req_011${requestId}`, ...(rate !== undefined ? rateHeaders(rate) : {}) }),
  models: (ms) => ({ data: ms.map(model), has_more: false, first_id: ms[0]?.id ?? null, last_id: ms[ms.length - 1]?.id ?? null }),
  model,
  frameReplay: (line) => {
    let type = "message"
    try {
      const parsed = JSON.parse(line) as { type?: unknown }
      if (typeof parsed.type === "string") type = parsed.type
    } catch {
      // keep the default event name; the client will report the bad line
    }
    return frame(type, line)
  },
  replayTerminator: undefined
}
