/**
 * The Amazon Bedrock Runtime Converse wire protocol:
 * `POST /model/{modelId}/converse` (JSON) and `/converse-stream` (AWS
 * event-stream binary frames), restJson1 errors (`{"message"}` plus
 * `x-amzn-ErrorType`), stream exceptions as `:message-type: exception`
 * frames, and the control-plane `GET /foundation-models` list.
 *
 * @since 0.1.0
 */
import type { Model } from "../Config.ts"
import { encodeFrame, eventFrame, exceptionFrame } from "../internal/eventstream.ts"
import {
  type Completion,
  contentText,
  markedPrefix,
  type ErrorSpec,
  errorSpec,
  type ProtocolImpl,
  type Rendered,
  type SimRequest,
  type StreamEvent,
  type ToolChoice,
  type ToolSpec
} from "../internal/protocol.ts"
import { isRecord } from "../internal/util.ts"

const stopReason = { stop: "end_turn", length: "max_tokens", tool: "tool_use", filter: "content_filtered" } as const

const parse = (body: unknown, route: { readonly model: string | undefined; readonly stream: boolean }): SimRequest | ErrorSpec => {
  if (!isRecord(body)) return errorSpec(400, "invalid_request", { message: "Malformed input request, please reformat your input and try again." })
  if (!Array.isArray(body.messages)) {
    return errorSpec(400, "invalid_request", { message: "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null" })
  }
  const texts: Array<string> = []
  // Bedrock caches only up to a `cachePoint` block: the prompt up to the last one.
  let cachePrefix: ReadonlyArray<string> = []
  const marker = (b: Record<string, unknown>) => isRecord(b.cachePoint)
  if (Array.isArray(body.system)) {
    cachePrefix = markedPrefix(texts, body.system, marker) ?? cachePrefix
    texts.push(contentText(body.system))
  }
  let lastIsToolResult = false
  for (const m of body.messages) {
    if (!isRecord(m)) return errorSpec(400, "invalid_request", { message: "Malformed input request, please reformat your input and try again." })
    let t = ""
    if (Array.isArray(m.content)) {
      for (const b of m.content) {
        if (!isRecord(b)) continue
        if (typeof b.text === "string") t += b.text
        else if (b.toolUse !== undefined) t += JSON.stringify(b.toolUse)
        else if (b.toolResult !== undefined) t += JSON.stringify(b.toolResult)
      }
    }
    cachePrefix = markedPrefix(texts, m.content, marker) ?? cachePrefix
    texts.push(t)
    lastIsToolResult = Array.isArray(m.content) && m.content.some((b) => isRecord(b) && b.toolResult !== undefined)
  }
  const tools: Array<ToolSpec> = []
  let toolChoice: ToolChoice = { _tag: "auto" }
  const tc = isRecord(body.toolConfig) ? body.toolConfig : undefined
  if (tc !== undefined) {
    if (Array.isArray(tc.tools)) {
      for (const t of tc.tools) {
        if (isRecord(t) && isRecord(t.toolSpec) && typeof t.toolSpec.name === "string") {
          const schema = isRecord(t.toolSpec.inputSchema) ? t.toolSpec.inputSchema.json : undefined
          tools.push({ name: t.toolSpec.name, schema })
        }
      }
    }
    const choice = tc.toolChoice
    if (isRecord(choice)) {
      if (choice.any !== undefined) toolChoice = { _tag: "required" }
      else if (isRecord(choice.tool) && typeof choice.tool.name === "string") toolChoice = { _tag: "named", name: choice.tool.name }
    }
  }
  const ic = isRecord(body.inferenceConfig) ? body.inferenceConfig : undefined
  const max = ic !== undefined && typeof ic.maxTokens === "number" ? ic.maxTokens : undefined
  return {
    model: route.model ?? "",
    stream: route.stream,
    includeUsage: true,
    maxTokens: max,
    texts,
    cachePrefix,
    toolsJson: tools.length > 0 ? JSON.stringify(tc?.tools) : "",
    tools,
    toolChoice,
    lastIsToolResult
  }
}

const usage = (c: Completion) => ({
  inputTokens: c.promptTokens - c.cachedTokens - c.cacheWriteTokens,
  outputTokens: c.outputTokens,
  totalTokens: c.promptTokens + c.outputTokens,
  ...(c.cachedTokens > 0 ? { cacheReadInputTokens: c.cachedTokens } : {}),
  ...(c.cacheWriteTokens > 0 ? { cacheWriteInputTokens: c.cacheWriteTokens } : {})
})

const toolUseId = (c: Completion) => `tooluse_${c.tool?.id ?? ""}`

const json = (c: Completion): unknown => ({
  metrics: { latencyMs: 1 },
  output: {
    message: {
      content: c.tool !== undefined
        ? [{ toolUse: { input: c.tool.input, name: c.tool.name, toolUseId: toolUseId(c) } }]
        : [{ text: c.text }],
      role: "assistant"
    }
  },
  stopReason: stopReason[c.finish],
  usage: usage(c)
})

const stream = (c: Completion): ReadonlyArray<StreamEvent> => {
  const out: Array<StreamEvent> = [{ data: eventFrame("messageStart", { role: "assistant" }), tokens: 0 }]
  if (c.tool !== undefined) {
    out.push({
      data: eventFrame("contentBlockStart", { contentBlockIndex: 0, start: { toolUse: { toolUseId: toolUseId(c), name: c.tool.name } } }),
      tokens: 1
    })
    const args = c.tool.args
    const step = Math.max(1, Math.ceil(args.length / 4))
    for (let i = 0; i < args.length; i += step) {
      out.push({
        data: eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { toolUse: { input: args.slice(i, i + step) } } }),
        tokens: 1
      })
    }
  } else {
    for (const p of c.pieces) {
      out.push({ data: eventFrame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: p } }), tokens: 1 })
    }
  }
  out.push({ data: eventFrame("contentBlockStop", { contentBlockIndex: 0 }), tokens: 0 })
  out.push({ data: eventFrame("messageStop", { stopReason: stopReason[c.finish] }), tokens: 0 })
  out.push({ data: eventFrame("metadata", { usage: usage(c), metrics: { latencyMs: 1 } }), tokens: 0 })
  return out
}

const errorType = (e: ErrorSpec): { type: string; message: string } => {
  switch (e.kind) {
    case "context_length":
      return { type: "ValidationException", message: e.message ?? "Input is too long for requested model." }
    case "invalid_request":
      return { type: "ValidationException", message: e.message ?? "Malformed input request, please reformat your input and try again." }
    case "auth":
      return e.missingKey
        ? { type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" }
        : { type: "UnrecognizedClientException", message: "The security token included in the request is invalid." }
    case "permission":
      return { type: "AccessDeniedException", message: e.message ?? "You don't have access to the model with the specified model ID." }
    case "not_found":
      return e.status === 400
        ? { type: "ValidationException", message: e.message ?? "The provided model identifier is invalid." }
        : { type: "ResourceNotFoundException", message: e.message ?? "Could not resolve the foundation model from the provided model identifier." }
    case "rate_limit":
      return {
        type: "ThrottlingException",
        message: e.message ?? (e.rateScope === "tokens" ? "Too many tokens, please wait before trying again." : "Too many requests, please wait before trying again.")
      }
    case "unavailable":
    case "overloaded":
      return { type: "ServiceUnavailableException", message: e.message ?? "Too many connections, please wait before trying again." }
    case "timeout":
      return { type: "ModelTimeoutException", message: e.message ?? "Model has timed out in processing the request. Try your request again." }
    case "server":
      return e.status === 424
        ? { type: "ModelErrorException", message: e.message ?? "The system encountered an unexpected error during processing. Try your request again." }
        : { type: "InternalServerException", message: e.message ?? "The system encountered an unexpected error during processing. Try your request again." }
  }
}

const error = (e: ErrorSpec): Rendered => {
  const { type, message } = errorType(e)
  return {
    status: e.status,
    headers: {
      "content-type": "application/json",
      "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
      "x-amzn-requestid": crypto.randomUUID()
    },
    body: JSON.stringify({ message })
  }
}

const providerName = (id: string): string => {
  const parts = id.split(".")
  const vendor = parts.length > 2 ? parts[1]! : parts[0]!
  return vendor.charAt(0).toUpperCase() + vendor.slice(1)
}

const model = (m: Model) => ({
  modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${m.id}`,
  modelId: m.id,
  modelName: m.displayName ?? m.id,
  providerName: providerName(m.id),
  inputModalities: ["TEXT"],
  outputModalities: ["TEXT"],
  responseStreamingSupported: true,
  customizationsSupported: [],
  inferenceTypesSupported: ["ON_DEMAND"],
  modelLifecycle: { status: "ACTIVE" }
})

const pathRe = /^\/model\/([^/]+)\/(converse|converse-stream)$/

/**
 * The Bedrock protocol implementation.
 *
 * @since 0.1.0
 * @category protocols
 */
export const bedrock: ProtocolImpl = {
  name: "bedrock",
  route: (method, path) => {
    if (method === "POST") {
      const m = pathRe.exec(path)
      if (m === null) return undefined
      return { _tag: "generate", model: decodeURIComponent(m[1]!), stream: m[2] === "converse-stream" }
    }
    if (method === "GET" && path === "/foundation-models") return { _tag: "models" }
    if (method === "GET" && path.startsWith("/foundation-models/")) return { _tag: "model", id: decodeURIComponent(path.slice(19)) }
    return undefined
  },
  parse: (body, route) => parse(body, route),
  auth: (headers, _query, keys) => {
    const h = headers["authorization"]
    const value = Array.isArray(h) ? h[0] : h
    if (value === undefined) return errorSpec(403, "auth", { missingKey: true })
    if (value.startsWith("Bearer ")) return keys.has(value.slice(7).trim()) ? undefined : errorSpec(403, "auth")
    // The SigV4 signature itself is not verified; the access key id must be listed.
    const m = /Credential=([^/,\s]+)/.exec(value)
    if (m === null) return errorSpec(403, "auth", { missingKey: true })
    return keys.has(m[1]!) ? undefined : errorSpec(403, "auth")
  },
  json,
  stream,
  streamContentType: "application/vnd.amazon.eventstream",
  streamError: () => exceptionFrame("serviceUnavailableException", "Too many connections, please wait before trying again."),
  malformedEvent: () =>
    encodeFrame(
      { ":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event" },
      `{"contentBlockIndex":0,"delta":{"text":`
    ),
  error,
  successHeaders: (requestId) => ({ "x-amzn-requestid": requestId }),
  models: (ms) => ({ modelSummaries: ms.map(model) }),
  model: (m) => ({ modelDetails: model(m) }),
  frameReplay: (line) => {
    const parsed = JSON.parse(line) as Record<string, unknown>
    if (isRecord(parsed.headers) && parsed.payload !== undefined) {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(parsed.headers)) headers[k] = String(v)
      return encodeFrame(headers, JSON.stringify(parsed.payload))
    }
    const [type, payload] = Object.entries(parsed)[0] ?? ["message", {}]
    return eventFrame(type, payload)
  },
  replayTerminator: undefined
}
