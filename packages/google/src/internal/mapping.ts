/**
 * Pure translations between Switchboard's request/response data and the
 * `@google/genai` types: `LlmRequest` → `generateContent` parameters, and a
 * `GenerateContentResponse` → `LlmResponse` parts, finish reason and usage.
 *
 * @internal
 */
import type {
  Content,
  FunctionCallingConfigMode,
  GenerateContentConfig,
  GenerateContentResponse,
  GenerateContentResponseUsageMetadata,
  Part as GooglePart
} from "@google/genai"
import type { LlmRequest } from "@switchboard/core"
import { LlmResponse, ProviderError } from "@switchboard/core"

type Request = LlmRequest.LlmRequest
type Message = LlmRequest.Message
type Part = LlmRequest.Part
type ToolCallPart = LlmRequest.ToolCallPart
type FinishReason = LlmResponse.FinishReason
type Usage = LlmResponse.Usage

/** Prefix of the tool call ids Switchboard makes up when Gemini sends none. */
export const syntheticIdPrefix = "gemini-call-"

/**
 * The signature Google documents for replaying a Gemini 3 function call whose
 * real `thoughtSignature` is unknown (a conversation started elsewhere).
 */
export const skipSignature = "skip_thought_signature_validator"

/**
 * Remembers the `thoughtSignature` of each function call Gemini made, by tool
 * call id, so the call can be replayed with it on the next turn (Gemini 3
 * rejects a replayed function call without it). Bounded: oldest entries go
 * first.
 */
export class SignatureStore {
  readonly #entries = new Map<string, string>()
  readonly #capacity: number
  constructor(capacity = 10_000) {
    this.#capacity = capacity
  }
  get(id: string): string | undefined {
    return this.#entries.get(id)
  }
  set(id: string, signature: string): void {
    this.#entries.delete(id)
    this.#entries.set(id, signature)
    if (this.#entries.size > this.#capacity) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
  }
}

const mimeByExtension: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
  pdf: "application/pdf"
}

const guessMime = (url: string): string | undefined => {
  const path = url.split(/[?#]/)[0] ?? ""
  const dot = path.lastIndexOf(".")
  return dot === -1 ? undefined : mimeByExtension[path.slice(dot + 1).toLowerCase()]
}

const imagePart = (part: LlmRequest.ImagePart): GooglePart => {
  if (part.data !== undefined) {
    return { inlineData: { data: part.data, mimeType: part.mediaType ?? "application/octet-stream" } }
  }
  const url = part.url ?? ""
  const dataUrl = /^data:([^;,]+);base64,(.*)$/s.exec(url)
  if (dataUrl !== null) return { inlineData: { mimeType: part.mediaType ?? dataUrl[1]!, data: dataUrl[2]! } }
  const mimeType = part.mediaType ?? guessMime(url)
  return { fileData: mimeType === undefined ? { fileUri: url } : { fileUri: url, mimeType } }
}

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const argsOf = (input: unknown): Record<string, unknown> =>
  isRecord(input) ? input : input === undefined || input === null ? {} : { value: input }

/** Whether a model is of the Gemini 3 family (which validates thought signatures). */
const validatesSignatures = (model: string): boolean => /(^|\/)gemini-3/.test(model)

interface Built {
  readonly contents: Array<Content>
  readonly systemInstruction: Content | undefined
}

/**
 * Turns the conversation into Gemini `contents` (roles `user` / `model`) and a
 * `systemInstruction`. Tool results need the function's name, found from the
 * earlier assistant tool call with the same id.
 */
export const toContents = (request: Request, model: string, signatures: SignatureStore): Built => {
  const system: Array<GooglePart> = []
  if (request.system !== undefined && request.system.length > 0) system.push({ text: request.system })
  const names = new Map<string, string>()
  const contents: Array<Content> = []
  const push = (role: "user" | "model", parts: Array<GooglePart>) => {
    if (parts.length === 0) return
    const last = contents[contents.length - 1]
    // Gemini wants turns to alternate; merging also keeps parallel tool results in one turn.
    if (last !== undefined && last.role === role) last.parts = [...(last.parts ?? []), ...parts]
    else contents.push({ role, parts })
  }
  for (const message of request.messages) {
    if (message.role === "system") {
      const text = LlmRequestText(message)
      if (text.length > 0) system.push({ text })
      continue
    }
    const role = message.role === "assistant" ? "model" : "user"
    const parts: Array<GooglePart> = []
    if (typeof message.content === "string") {
      if (message.content.length > 0) parts.push({ text: message.content })
      push(role, parts)
      continue
    }
    let firstCall = true
    for (const part of message.content) parts.push(...toPart(part, names, signatures, model, () => {
      const was = firstCall
      firstCall = false
      return was
    }))
    push(role, parts)
  }
  if (contents.length === 0 && system.length > 0) {
    // A request made of a system prompt alone: Gemini needs at least one turn.
    return { contents: [{ role: "user", parts: system }], systemInstruction: undefined }
  }
  return { contents, systemInstruction: system.length === 0 ? undefined : { parts: system } }
}

const LlmRequestText = (message: Message): string =>
  typeof message.content === "string"
    ? message.content
    : message.content.map((part) => (part.type === "text" ? part.text : "")).join("")

const toPart = (
  part: Part,
  names: Map<string, string>,
  signatures: SignatureStore,
  model: string,
  isFirstCall: () => boolean
): ReadonlyArray<GooglePart> => {
  switch (part.type) {
    case "text":
      return part.text.length === 0 ? [] : [{ text: part.text }]
    case "image":
      return [imagePart(part)]
    case "tool-call": {
      names.set(part.id, part.name)
      const first = isFirstCall()
      const call: GooglePart = {
        functionCall: {
          name: part.name,
          args: argsOf(part.input),
          ...(part.id.startsWith(syntheticIdPrefix) ? {} : { id: part.id })
        }
      }
      const signature = signatures.get(part.id) ?? (first && validatesSignatures(model) ? skipSignature : undefined)
      return [signature === undefined ? call : { ...call, thoughtSignature: signature }]
    }
    case "tool-result": {
      const name = names.get(part.toolCallId) ?? part.toolCallId
      return [{
        functionResponse: {
          name,
          response: part.isError === true ? { error: part.output } : { output: part.output },
          ...(part.toolCallId.startsWith(syntheticIdPrefix) ? {} : { id: part.toolCallId })
        }
      }]
    }
  }
}

/**
 * The `config` of a `generateContent` call (without transport options).
 */
export const toConfig = (request: Request, systemInstruction: Content | undefined): GenerateContentConfig => {
  const config: GenerateContentConfig = {
    // The SDK would otherwise re-send a request on its own (continuation hops).
    automaticContinuation: false
  }
  if (systemInstruction !== undefined) config.systemInstruction = systemInstruction
  if (request.temperature !== undefined) config.temperature = request.temperature
  if (request.topP !== undefined) config.topP = request.topP
  if (request.maxTokens !== undefined) config.maxOutputTokens = request.maxTokens
  if (request.stop !== undefined && request.stop.length > 0) config.stopSequences = [...request.stop]
  if (request.seed !== undefined) config.seed = request.seed
  const format = request.responseFormat
  if (format !== undefined && format.type !== "text") {
    config.responseMimeType = "application/json"
    if (format.type === "json-schema") config.responseJsonSchema = format.schema
  }
  if (request.tools !== undefined && request.tools.length > 0) {
    config.tools = [{
      functionDeclarations: request.tools.map((tool) => ({
        name: tool.name,
        ...(tool.description !== undefined ? { description: tool.description } : {}),
        parametersJsonSchema: tool.parameters
      }))
    }]
  }
  const choice = request.toolChoice
  if (choice !== undefined) {
    const mode = (m: "AUTO" | "ANY" | "NONE") => m as FunctionCallingConfigMode
    config.toolConfig = {
      functionCallingConfig: typeof choice === "object"
        ? { mode: mode("ANY"), allowedFunctionNames: [choice.name] }
        : { mode: mode(choice === "auto" ? "AUTO" : choice === "none" ? "NONE" : "ANY") }
    }
  }
  return config
}

/**
 * Gemini's finish reasons in Switchboard's vocabulary; a turn that called a
 * function and stopped is `"tool-calls"`.
 */
export const finishReasonOf = (reason: string | undefined, hasToolCalls: boolean): FinishReason => {
  switch (reason) {
    case "STOP":
    case undefined:
      return hasToolCalls ? "tool-calls" : "stop"
    case "MAX_TOKENS":
    case "CONTINUATION":
      return "length"
    case "SAFETY":
    case "RECITATION":
    case "BLOCKLIST":
    case "PROHIBITED_CONTENT":
    case "SPII":
    case "IMAGE_SAFETY":
    case "IMAGE_PROHIBITED_CONTENT":
    case "IMAGE_RECITATION":
      return "content-filter"
    default:
      return hasToolCalls ? "tool-calls" : "other"
  }
}

/**
 * Usage in Switchboard's convention: `inputTokens` is every prompt token
 * (cached ones included), `outputTokens` is candidates plus thoughts, and
 * `reasoningTokens` the thoughts alone.
 */
export const usageOf = (metadata: GenerateContentResponseUsageMetadata | undefined): Usage => {
  const prompt = (metadata?.promptTokenCount ?? 0) + (metadata?.toolUsePromptTokenCount ?? 0)
  const thoughts = metadata?.thoughtsTokenCount ?? 0
  return LlmResponse.makeUsage({
    inputTokens: prompt,
    outputTokens: (metadata?.candidatesTokenCount ?? 0) + thoughts,
    cachedInputTokens: metadata?.cachedContentTokenCount ?? 0,
    reasoningTokens: thoughts
  })
}

/** A tool call id: Gemini's own, or a stable one made from the response id and position. */
export const toolCallId = (given: string | undefined, responseId: string, index: number): string =>
  given !== undefined && given.length > 0 ? given : `${syntheticIdPrefix}${responseId}-${index}`

/** What one candidate part contributes. */
export type Piece =
  | { readonly _tag: "text"; readonly text: string }
  | { readonly _tag: "reasoning"; readonly text: string }
  | { readonly _tag: "call"; readonly call: ToolCallPart }
  | { readonly _tag: "bad-call"; readonly detail: string }

/**
 * Reads the parts of a candidate. `nextCall` numbers the function calls of
 * the whole response (streams span several chunks).
 */
export const piecesOf = (
  parts: ReadonlyArray<GooglePart> | undefined,
  responseId: string,
  nextCall: () => number,
  signatures: SignatureStore
): Array<Piece> => {
  const out: Array<Piece> = []
  for (const part of parts ?? []) {
    if (part.functionCall !== undefined) {
      const fc = part.functionCall
      if (typeof fc.name !== "string" || fc.name.length === 0) {
        out.push({ _tag: "bad-call", detail: "a functionCall part has no name" })
        continue
      }
      let input: unknown = fc.args ?? {}
      if (typeof input === "string") {
        try {
          input = JSON.parse(input)
        } catch {
          out.push({ _tag: "bad-call", detail: `the arguments of ${fc.name} are not valid JSON` })
          continue
        }
      }
      const id = toolCallId(fc.id, responseId, nextCall())
      if (part.thoughtSignature !== undefined) signatures.set(id, part.thoughtSignature)
      out.push({ _tag: "call", call: { type: "tool-call", id, name: fc.name, input } })
      continue
    }
    if (typeof part.text === "string" && part.text.length > 0) {
      out.push(part.thought === true ? { _tag: "reasoning", text: part.text } : { _tag: "text", text: part.text })
    }
  }
  return out
}

/** The SDK's parsed body, without the HTTP headers it attaches. */
export const rawOf = (response: GenerateContentResponse): unknown => {
  const { sdkHttpResponse: _headers, ...body } = response as GenerateContentResponse & Record<string, unknown>
  return body
}

/** Rate-limit state from the headers the SDK kept (Gemini itself sends none). */
export const rateLimitOf = (response: GenerateContentResponse): LlmResponse.RateLimitInfo | undefined =>
  ProviderError.rateLimitInfo(response.sdkHttpResponse?.headers)
