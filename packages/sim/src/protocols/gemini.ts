/**
 * The Gemini API wire protocol (generativelanguage `v1beta`):
 * `POST /v1beta/models/{model}:generateContent`,
 * `:streamGenerateContent?alt=sse` (SSE with `\r\n\r\n` separators and no
 * terminator), `GET /v1beta/models`, and Google RPC error bodies
 * (`{"error":{"code","message","status","details"}}`). Gemini sends no
 * rate-limit headers; a 429 carries `google.rpc.RetryInfo` in the body.
 *
 * The same provider also serves Vertex AI's paths, as `@google/genai` builds
 * them with `vertexai: true`: `POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent`
 * (and `:streamGenerateContent?alt=sse`), `GET /v1beta1/publishers/google/models`
 * (`{ publisherModels }`) and `GET /v1beta1/publishers/google/models/{model}`.
 * Bodies and errors are the same; Vertex authenticates with
 * `Authorization: Bearer <token>` (401 `UNAUTHENTICATED` when missing or wrong).
 *
 * @since 0.1.0
 */
import type { Model } from "../Config.ts"
import {
  type Completion,
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

const finishReason = { stop: "STOP", length: "MAX_TOKENS", tool: "STOP", filter: "SAFETY" } as const



const partsText = (parts: unknown): string => {
  if (!Array.isArray(parts)) return ""
  let out = ""
  for (const p of parts) {
    if (!isRecord(p)) continue
    if (typeof p.text === "string") out += p.text
    else if (p.functionCall !== undefined) out += JSON.stringify(p.functionCall)
    else if (p.functionResponse !== undefined) out += JSON.stringify(p.functionResponse)
  }
  return out
}

const parse = (
  body: unknown,
  route: { readonly model: string | undefined; readonly stream: boolean; readonly vertex?: boolean | undefined }
): SimRequest | ErrorSpec => {
  if (!isRecord(body)) return errorSpec(400, "invalid_request", { message: "Invalid JSON payload received." })
  if (!Array.isArray(body.contents) || body.contents.length === 0) {
    return errorSpec(400, "invalid_request", { message: "* GenerateContentRequest.contents: contents is not specified\n" })
  }
  const texts: Array<string> = []
  if (isRecord(body.systemInstruction)) texts.push(partsText(body.systemInstruction.parts))
  let lastIsToolResult = false
  for (const c of body.contents) {
    if (!isRecord(c)) return errorSpec(400, "invalid_request", { message: "Invalid value at 'contents'" })
    texts.push(partsText(c.parts))
    lastIsToolResult = Array.isArray(c.parts) && c.parts.some((p) => isRecord(p) && p.functionResponse !== undefined)
  }
  const tools: Array<ToolSpec> = []
  if (Array.isArray(body.tools)) {
    for (const t of body.tools) {
      if (!isRecord(t) || !Array.isArray(t.functionDeclarations)) continue
      for (const f of t.functionDeclarations) {
        if (isRecord(f) && typeof f.name === "string") {
          tools.push({ name: f.name, schema: f.parametersJsonSchema ?? f.parameters })
        }
      }
    }
  }
  let toolChoice: ToolChoice = { _tag: "auto" }
  const fcc = isRecord(body.toolConfig) && isRecord(body.toolConfig.functionCallingConfig)
    ? body.toolConfig.functionCallingConfig
    : undefined
  if (fcc !== undefined) {
    if (fcc.mode === "NONE") toolChoice = { _tag: "none" }
    else if (fcc.mode === "ANY") {
      const names = fcc.allowedFunctionNames
      toolChoice = Array.isArray(names) && typeof names[0] === "string" ? { _tag: "named", name: names[0] } : { _tag: "required" }
    }
  }
  const gc = isRecord(body.generationConfig) ? body.generationConfig : undefined
  const max = gc !== undefined && typeof gc.maxOutputTokens === "number" ? gc.maxOutputTokens : undefined
  return {
    model: route.model ?? "",
    stream: route.stream,
    includeUsage: true,
    maxTokens: max,
    texts,
    toolsJson: tools.length > 0 ? JSON.stringify(body.tools) : "",
    tools,
    toolChoice,
    lastIsToolResult,
    ...(route.vertex === true ? { vertex: true } : {})
  }
}


const usage = (c: Completion, outputTokens: number | undefined) => ({
  promptTokenCount: c.promptTokens,
  ...(outputTokens !== undefined ? { candidatesTokenCount: outputTokens } : {}),
  totalTokenCount: c.promptTokens + (outputTokens ?? 0),
  ...(c.cachedTokens > 0 ? { cachedContentTokenCount: c.cachedTokens } : {}),
  promptTokensDetails: [{ modality: "TEXT", tokenCount: c.promptTokens }]
})

const responseId = (c: Completion) => `sim${c.requestId}`

const candidate = (c: Completion, parts: ReadonlyArray<unknown>, finish: boolean): unknown => {
  if (finish && c.finish === "filter") {
    return {
      content: {},
      finishReason: "SAFETY",
      index: 0,
      safetyRatings: [{ category: "HARM_CATEGORY_HATE_SPEECH", probability: "HIGH", blocked: true }]
    }
  }
  return {
    content: { parts, role: "model" },
    ...(finish ? { finishReason: finishReason[c.finish] } : {}),
    index: 0
  }
}

const json = (c: Completion): unknown => ({
  candidates: [
    candidate(
      c,
      c.tool !== undefined ? [{ functionCall: { name: c.tool.name, args: c.tool.input } }] : [{ text: c.text }],
      true
    )
  ],
  usageMetadata: usage(c, c.outputTokens),
  modelVersion: c.model,
  responseId: responseId(c)
})

const frame = (payload: string): string => `data: ${payload}\r\n\r\n`

const stream = (c: Completion): ReadonlyArray<StreamEvent> => {
  const out: Array<StreamEvent> = []
  const chunk = (parts: ReadonlyArray<unknown>, finish: boolean, tokens: number): StreamEvent => ({
    data: frame(JSON.stringify({
      candidates: [candidate(c, parts, finish)],
      usageMetadata: usage(c, finish ? c.outputTokens : undefined),
      modelVersion: c.model,
      responseId: responseId(c)
    })),
    tokens
  })
  if (c.tool !== undefined) {
    out.push(chunk([{ functionCall: { name: c.tool.name, args: c.tool.input } }], true, c.outputTokens))
    return out
  }
  const pieces = c.pieces
  if (pieces.length === 0) return [chunk([{ text: "" }], true, 0)]
  for (let i = 0; i < pieces.length; i++) {
    out.push(chunk([{ text: pieces[i] }], i === pieces.length - 1, 1))
  }
  return out
}

const statusName = (e: ErrorSpec): string => {
  switch (e.status) {
    case 400:
      return "INVALID_ARGUMENT"
    case 401:
      return "UNAUTHENTICATED"
    case 403:
      return "PERMISSION_DENIED"
    case 404:
      return "NOT_FOUND"
    case 409:
      return "ABORTED"
    case 429:
      return "RESOURCE_EXHAUSTED"
    case 499:
      return "CANCELLED"
    case 501:
      return "NOT_IMPLEMENTED"
    case 503:
      return "UNAVAILABLE"
    case 504:
      return "DEADLINE_EXCEEDED"
    default:
      return e.status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION"
  }
}

const vertexAuthMessage =
  "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."

const errorMessage = (e: ErrorSpec): string => {
  if (e.message !== undefined) return e.message
  if (e.vertex === true) {
    switch (e.kind) {
      case "auth":
        return vertexAuthMessage
      case "not_found":
        return `Publisher Model \`publishers/google/models/${e.model ?? "unknown"}\` was not found or your project does not have access to it. Please ensure you are using a valid model version. For more information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions`
      case "rate_limit":
        return "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
      default:
        break
    }
  }
  switch (e.kind) {
    case "context_length":
      return `The input token count (${e.promptTokens}) exceeds the maximum number of tokens allowed (${e.limit}).`
    case "invalid_request":
      return "Request contains an invalid argument."
    case "auth":
      return "API key not valid. Please pass a valid API key."
    case "permission":
      return "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
    case "not_found":
      return `models/${e.model ?? "unknown"} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`
    case "rate_limit":
      return "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    case "unavailable":
    case "overloaded":
      return "The model is overloaded. Please try again later."
    case "timeout":
      return "Deadline expired before operation could complete."
    case "server":
      return "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
  }
}

const errorObject = (e: ErrorSpec) => {
  const details: Array<unknown> = []
  if (e.kind === "auth") {
    details.push({
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: e.vertex === true ? (e.missingKey === true ? "CREDENTIALS_MISSING" : "ACCESS_TOKEN_TYPE_UNSUPPORTED") : "API_KEY_INVALID",
      domain: "googleapis.com",
      metadata: { service: e.vertex === true ? "aiplatform.googleapis.com" : "generativelanguage.googleapis.com" }
    })
  }
  if (e.status === 429) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.QuotaFailure",
      violations: [{
        quotaMetric: e.vertex === true
          ? "aiplatform.googleapis.com/generate_content_requests_per_minute_per_project_per_base_model"
          : "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        quotaId: e.rateScope === "tokens"
          ? "GenerateContentInputTokensPerModelPerMinute-FreeTier"
          : "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        ...(e.limit !== undefined ? { quotaValue: String(e.limit) } : {})
      }]
    })
    const delay = e.retryAfterMs !== undefined ? e.retryAfterMs / 1000 : e.retryAfterS
    if (delay !== undefined) {
      details.push({ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${Math.round(delay * 1000) / 1000}s` })
    }
  }
  return {
    error: {
      code: e.status,
      message: errorMessage(e),
      status: statusName(e),
      ...(details.length > 0 ? { details } : {})
    }
  }
}

const error = (e: ErrorSpec): Rendered => ({
  // A bad API key is a 400 INVALID_ARGUMENT on the real API, a missing one a 403.
  status: e.status,
  headers: { "content-type": "application/json; charset=UTF-8", vary: "Origin, X-Origin, Referer" },
  body: JSON.stringify(errorObject(e), null, 2) + "\n"
})

const model = (m: Model) => ({
  name: `models/${m.id}`,
  version: "001",
  displayName: m.displayName ?? m.id,
  description: `Simulated ${m.id}`,
  inputTokenLimit: m.contextWindow,
  outputTokenLimit: m.maxOutput,
  supportedGenerationMethods: ["generateContent", "countTokens", "streamGenerateContent"],
  temperature: 1,
  topP: 0.95,
  topK: 64,
  maxTemperature: 2
})

/** Vertex AI's publisher model resource (what `models.list` / `models.get` return there). */
const publisherModel = (m: Model) => ({
  name: `publishers/google/models/${m.id}`,
  versionId: "001",
  displayName: m.displayName ?? m.id,
  description: `Simulated ${m.id}`,
  openSourceCategory: "PROPRIETARY",
  launchStage: "GA",
  publisherModelTemplate: `projects/{project}/locations/{location}/publishers/google/models/${m.id}@001`
})

const pathRe = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/
const vertexPathRe =
  /^\/(v1beta1|v1)\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent)$/
const vertexModelsRe = /^\/(v1beta1|v1)\/(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/google\/models$/
const vertexModelRe = /^\/(v1beta1|v1)\/(?:projects\/[^/]+\/locations\/[^/]+\/)?publishers\/google\/models\/([^/:]+)$/

const bearer = (headers: Record<string, string | string[] | undefined>): string | undefined => {
  const h = headers["authorization"]
  const value = Array.isArray(h) ? h[0] : h
  if (value === undefined) return undefined
  const m = /^Bearer\s+(.+)$/i.exec(value.trim())
  return m === null ? "" : m[1]!
}

/**
 * The Gemini protocol implementation.
 *
 * @since 0.1.0
 * @category protocols
 */
export const gemini: ProtocolImpl = {
  name: "gemini",
  route: (method, path, query) => {
    if (method === "POST") {
      const v = vertexPathRe.exec(path)
      const m = v ?? pathRe.exec(path)
      if (m === null) return undefined
      const stream = m[3] === "streamGenerateContent"
      if (stream && query.get("alt") !== "sse") return undefined
      return { _tag: "generate", model: decodeURIComponent(m[2]!), stream, ...(v !== null ? { vertex: true } : {}) }
    }
    if (method !== "GET") return undefined
    if (/^\/(v1beta|v1|v1alpha)\/models$/.test(path)) return { _tag: "models" }
    if (vertexModelsRe.test(path)) return { _tag: "models", vertex: true }
    const g = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+)$/.exec(path)
    if (g !== null) return { _tag: "model", id: decodeURIComponent(g[2]!) }
    const vg = vertexModelRe.exec(path)
    if (vg !== null) return { _tag: "model", id: decodeURIComponent(vg[2]!), vertex: true }
    return undefined
  },
  parse: (body, route) => parse(body, route),
  auth: (headers, query, keys, route) => {
    if (route?.vertex === true) {
      // Vertex AI takes an OAuth 2 access token; the sim accepts a configured key as one.
      const token = bearer(headers)
      if (token === undefined) return errorSpec(401, "auth", { missingKey: true, vertex: true })
      return keys.has(token) ? undefined : errorSpec(401, "auth", { vertex: true })
    }
    const h = headers["x-goog-api-key"]
    const value = (Array.isArray(h) ? h[0] : h) ?? query.get("key") ?? undefined
    if (value === undefined) return errorSpec(403, "permission")
    return keys.has(value) ? undefined : errorSpec(400, "auth")
  },
  json,
  stream,
  streamContentType: "text/event-stream",
  streamError: () =>
    frame(JSON.stringify({ error: { code: 503, message: "The model is overloaded. Please try again later.", status: "UNAVAILABLE" } })),
  malformedEvent: () => `data: {"candidates": [{"content": {"parts": [{"text": "\r\n\r\n`,
  error: (e) => error(e),
  successHeaders: () => ({ vary: "Origin, X-Origin, Referer", "server-timing": "gfet4t7; dur=1" }),
  models: (ms, route) => route?.vertex === true ? { publisherModels: ms.map(publisherModel) } : { models: ms.map(model) },
  model: (m, route) => route?.vertex === true ? publisherModel(m) : model(m),
  frameReplay: (line) => frame(line),
  replayTerminator: undefined
}
