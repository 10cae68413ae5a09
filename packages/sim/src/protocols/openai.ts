/**
 * The OpenAI Chat Completions wire protocol: `POST /v1/chat/completions`
 * (JSON and SSE with `data: [DONE]`), `GET /v1/models`, OpenAI error bodies
 * and `x-ratelimit-*` headers with Go-style reset durations.
 *
 * @since 0.1.0
 */
import type { Model } from "../Config.ts"
import {
  type Completion,
  contentText,
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
import { goDuration, isRecord } from "../internal/util.ts"

const finishReason = { stop: "stop", length: "length", tool: "tool_calls", filter: "content_filter" } as const

const invalid = (message: string, param: string | undefined = undefined): ErrorSpec =>
  errorSpec(400, "invalid_request", { message, param })

const parse = (body: unknown): SimRequest | ErrorSpec => {
  if (!isRecord(body)) return invalid("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")
  if (typeof body.model !== "string") return invalid("you must provide a model parameter", "model")
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return invalid("[] is too short - 'messages'", "messages")
  }
  const texts: Array<string> = []
  let lastIsToolResult = false
  for (const m of body.messages) {
    if (!isRecord(m) || typeof m.role !== "string") return invalid("Invalid type for 'messages': expected an object with a role.", "messages")
    let t = contentText(m.content)
    if (Array.isArray(m.tool_calls)) t += JSON.stringify(m.tool_calls)
    texts.push(t)
    lastIsToolResult = m.role === "tool" || m.role === "function"
  }
  const tools: Array<ToolSpec> = []
  if (Array.isArray(body.tools)) {
    for (const t of body.tools) {
      if (isRecord(t) && isRecord(t.function) && typeof t.function.name === "string") {
        tools.push({ name: t.function.name, schema: t.function.parameters })
      }
    }
  }
  let toolChoice: ToolChoice = { _tag: "auto" }
  const tc = body.tool_choice
  if (tc === "none") toolChoice = { _tag: "none" }
  else if (tc === "required") toolChoice = { _tag: "required" }
  else if (isRecord(tc) && isRecord(tc.function) && typeof tc.function.name === "string") {
    toolChoice = { _tag: "named", name: tc.function.name }
  }
  const max = typeof body.max_completion_tokens === "number"
    ? body.max_completion_tokens
    : typeof body.max_tokens === "number"
    ? body.max_tokens
    : undefined
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    return invalid(`Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got ${max} instead.`, "max_tokens")
  }
  return {
    model: body.model,
    stream: body.stream === true,
    includeUsage: isRecord(body.stream_options) && body.stream_options.include_usage === true,
    maxTokens: max,
    texts,
    toolsJson: tools.length > 0 ? JSON.stringify(body.tools) : "",
    tools,
    toolChoice,
    lastIsToolResult
  }
}

const usage = (c: Completion) => ({
  prompt_tokens: c.promptTokens,
  completion_tokens: c.outputTokens,
  total_tokens: c.promptTokens + c.outputTokens,
  prompt_tokens_details: { cached_tokens: c.cachedTokens, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: 0,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0
  }
})

const fingerprint = "fp_sim0000001"
const completionId = (c: Completion) => `chatcmpl-${c.requestId}`

const json = (c: Completion): unknown => ({
  id: completionId(c),
  object: "chat.completion",
  created: c.created,
  model: c.model,
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: c.tool !== undefined ? null : c.text,
      ...(c.tool !== undefined
        ? { tool_calls: [{ id: `call_${c.tool.id}`, type: "function", function: { name: c.tool.name, arguments: c.tool.args } }] }
        : {}),
      refusal: null,
      annotations: []
    },
    logprobs: null,
    finish_reason: finishReason[c.finish]
  }],
  usage: usage(c),
  service_tier: "default",
  system_fingerprint: fingerprint
})

const frame = (payload: string): string => `data: ${payload}\n\n`

const stream = (c: Completion, req: SimRequest): ReadonlyArray<StreamEvent> => {
  const head = `{"id":"${completionId(c)}","object":"chat.completion.chunk","created":${c.created},"model":${JSON.stringify(c.model)},"service_tier":"default","system_fingerprint":"${fingerprint}","choices":`
  const tail = req.includeUsage ? `,"usage":null}` : "}"
  const chunk = (choice: unknown, tokens: number): StreamEvent => ({
    data: frame(head + `[${JSON.stringify(choice)}]` + tail),
    tokens
  })
  const out: Array<StreamEvent> = []
  if (c.tool !== undefined) {
    out.push(chunk({
      index: 0,
      delta: {
        role: "assistant",
        content: null,
        tool_calls: [{ index: 0, id: `call_${c.tool.id}`, type: "function", function: { name: c.tool.name, arguments: "" } }],
        refusal: null
      },
      logprobs: null,
      finish_reason: null
    }, 1))
    const args = c.tool.args
    const step = Math.max(1, Math.ceil(args.length / 4))
    for (let i = 0; i < args.length; i += step) {
      out.push(chunk({
        index: 0,
        delta: { tool_calls: [{ index: 0, function: { arguments: args.slice(i, i + step) } }] },
        logprobs: null,
        finish_reason: null
      }, 1))
    }
  } else {
    out.push(chunk({ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }, 0))
    for (const p of c.pieces) {
      out.push(chunk({ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }, 1))
    }
  }
  out.push(chunk({ index: 0, delta: {}, logprobs: null, finish_reason: finishReason[c.finish] }, 0))
  if (req.includeUsage) {
    out.push({ data: frame(head + `[],"usage":${JSON.stringify(usage(c))}}`), tokens: 0 })
  }
  out.push({ data: "data: [DONE]\n\n", tokens: 0 })
  return out
}

const errorBody = (e: ErrorSpec): { message: string; type: string; param: string | null; code: string | null } => {
  switch (e.kind) {
    case "context_length":
      return {
        message: `This model's maximum context length is ${e.limit} tokens. However, your messages resulted in ${e.promptTokens} tokens. Please reduce the length of the messages.`,
        type: "invalid_request_error",
        param: "messages",
        code: "context_length_exceeded"
      }
    case "invalid_request":
      return { message: e.message ?? "Invalid request.", type: "invalid_request_error", param: e.param ?? null, code: null }
    case "auth":
      return {
        message: e.missingKey
          ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys."
          : "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        type: "invalid_request_error",
        param: null,
        code: e.missingKey ? null : "invalid_api_key"
      }
    case "permission":
      return { message: e.message ?? "Country, region, or territory not supported", type: "request_forbidden", param: null, code: "unsupported_country_region_territory" }
    case "not_found":
      // A wrong path (no model involved) reads as the real API's: code null.
      return {
        message: e.message ?? `The model \`${e.model ?? "unknown"}\` does not exist or you do not have access to it.`,
        type: "invalid_request_error",
        param: null,
        code: e.model === undefined && e.message !== undefined ? null : "model_not_found"
      }
    case "rate_limit":
      return {
        message: e.message ??
          `Rate limit reached for ${e.model ?? "model"} in organization org-sim on ${e.rateScope === "tokens" ? "tokens per min (TPM)" : "requests per min (RPM)"}${e.limit !== undefined ? `: Limit ${e.limit}` : ""}. Please try again in ${e.retryAfterS ?? (e.retryAfterMs !== undefined ? e.retryAfterMs / 1000 : 1)}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
        type: e.rateScope ?? "requests",
        param: null,
        code: "rate_limit_exceeded"
      }
    case "unavailable":
      return { message: e.message ?? "The engine is currently overloaded, please try again later.", type: "server_error", param: null, code: null }
    case "overloaded":
      return { message: e.message ?? "The server is overloaded, please try again later.", type: "server_error", param: null, code: "server_is_overloaded" }
    case "timeout":
      return { message: e.message ?? "Request timed out.", type: "server_error", param: null, code: null }
    case "server":
      return { message: e.message ?? "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null }
  }
}

const rateHeaders = (r: RateInfo): Record<string, string> => {
  const h: Record<string, string> = {}
  const reset = goDuration(r.resetAt - r.now)
  if (r.requestsLimit !== undefined) {
    h["x-ratelimit-limit-requests"] = String(r.requestsLimit)
    h["x-ratelimit-remaining-requests"] = String(r.requestsRemaining)
    h["x-ratelimit-reset-requests"] = reset
  }
  if (r.tokensLimit !== undefined) {
    h["x-ratelimit-limit-tokens"] = String(r.tokensLimit)
    h["x-ratelimit-remaining-tokens"] = String(r.tokensRemaining)
    h["x-ratelimit-reset-tokens"] = reset
  }
  return h
}

const baseHeaders = (requestId: string): Record<string, string> => ({
  "x-request-id": `req_${requestId}`,
  "openai-version": "2020-10-01",
  "openai-processing-ms": "1"
})

const error = (e: ErrorSpec, rate: RateInfo | undefined): Rendered => {
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    ...baseHeaders(Math.random().toString(36).slice(2, 14)),
    ...(rate !== undefined && e.status !== 404 ? rateHeaders(rate) : {})
  }
  if (e.retryAfterS !== undefined || e.retryAfterMs !== undefined) {
    const ms = e.retryAfterMs ?? (e.retryAfterS ?? 0) * 1000
    headers["retry-after"] = String(e.retryAfterS ?? Math.ceil(ms / 1000))
    headers["retry-after-ms"] = String(Math.round(ms))
  }
  return { status: e.status, headers, body: JSON.stringify({ error: errorBody(e) }, null, 2) + "\n" }
}

const model = (m: Model) => ({ id: m.id, object: "model", created: 1_700_000_000, owned_by: "system" })

/**
 * The OpenAI protocol implementation.
 *
 * @since 0.1.0
 * @category protocols
 */
export const openai: ProtocolImpl = {
  name: "openai",
  route: (method, path) => {
    if (method === "POST" && path === "/v1/chat/completions") return { _tag: "generate", model: undefined, stream: false }
    if (method === "GET" && path === "/v1/models") return { _tag: "models" }
    if (method === "GET" && path.startsWith("/v1/models/")) return { _tag: "model", id: decodeURIComponent(path.slice(11)) }
    return undefined
  },
  parse,
  auth: (headers, _query, keys) => {
    const h = headers["authorization"]
    const value = Array.isArray(h) ? h[0] : h
    if (value === undefined || !value.startsWith("Bearer ")) return errorSpec(401, "auth", { missingKey: true })
    return keys.has(value.slice(7).trim()) ? undefined : errorSpec(401, "auth")
  },
  json,
  stream,
  streamContentType: "text/event-stream; charset=utf-8",
  streamError: () =>
    frame(JSON.stringify({ error: { message: "The server had an error while processing your request. Sorry about that!", type: "server_error", param: null, code: null } })),
  malformedEvent: () => `data: {"id":"chatcmpl-malformed","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"\n\n`,
  error,
  successHeaders: (requestId, rate) => ({ ...baseHeaders(requestId), ...(rate !== undefined ? rateHeaders(rate) : {}) }),
  models: (ms) => ({ object: "list", data: ms.map(model) }),
  model,
  frameReplay: (line) => frame(line),
  replayTerminator: "data: [DONE]\n\n"
}
