/**
 * The shape every wire protocol implements, and the protocol-neutral request
 * and completion the simulator core works with.
 *
 * @internal
 */
import type { Model } from "../Config.ts"

export interface ToolSpec {
  readonly name: string
  readonly schema: unknown
}

export type ToolChoice =
  | { readonly _tag: "auto" }
  | { readonly _tag: "none" }
  | { readonly _tag: "required" }
  | { readonly _tag: "named"; readonly name: string }

/** A request reduced to what the simulator needs. */
export interface SimRequest {
  readonly model: string
  readonly stream: boolean
  readonly includeUsage: boolean
  readonly maxTokens: number | undefined
  /** Message texts in order (system first), used for tokens and hashing. */
  readonly texts: ReadonlyArray<string>
  /**
   * Explicit prompt caching (Anthropic `cache_control`, Bedrock `cachePoint`):
   * the texts the last breakpoint covers (up to and including the marked
   * block) — empty when nothing is marked, and then nothing is cached, as on
   * the real APIs. Absent for the protocols that cache a repeated prefix by
   * themselves (OpenAI, Gemini).
   */
  readonly cachePrefix?: ReadonlyArray<string> | undefined
  readonly toolsJson: string
  readonly tools: ReadonlyArray<ToolSpec>
  readonly toolChoice: ToolChoice
  readonly lastIsToolResult: boolean
  /** Came in on a Vertex AI path (Gemini protocol). */
  readonly vertex?: boolean | undefined
}

export type Finish = "stop" | "length" | "tool" | "filter"

export interface ToolCall {
  readonly id: string
  readonly name: string
  readonly args: string
  readonly input: unknown
}

export interface Completion {
  readonly model: string
  readonly hash: number
  /** One token per piece; `text` is their concatenation. */
  readonly pieces: ReadonlyArray<string>
  readonly text: string
  readonly tool: ToolCall | undefined
  readonly finish: Finish
  readonly promptTokens: number
  readonly outputTokens: number
  /** Prompt tokens served from the simulated prompt cache. */
  readonly cachedTokens: number
  /** Prompt tokens written to the simulated prompt cache (Anthropic/Bedrock report these). */
  readonly cacheWriteTokens: number
  readonly requestId: string
  readonly created: number
}

export type ErrorKind =
  | "invalid_request"
  | "context_length"
  | "auth"
  | "permission"
  | "not_found"
  | "rate_limit"
  | "server"
  | "unavailable"
  | "overloaded"
  | "timeout"

export interface ErrorSpec {
  readonly _tag: "ErrorSpec"
  readonly status: number
  readonly kind: ErrorKind
  readonly message?: string | undefined
  readonly param?: string | undefined
  readonly model?: string | undefined
  readonly retryAfterS?: number | undefined
  readonly retryAfterMs?: number | undefined
  readonly rateScope?: "requests" | "tokens" | undefined
  readonly promptTokens?: number | undefined
  readonly limit?: number | undefined
  /** Authentication detail: missing vs. wrong credentials. */
  readonly missingKey?: boolean | undefined
  /** The request came in on a Vertex AI path (Gemini protocol): Vertex's auth errors and resource names. */
  readonly vertex?: boolean | undefined
}

export const errorSpec = (status: number, kind: ErrorKind, rest?: Omit<ErrorSpec, "_tag" | "status" | "kind">): ErrorSpec => ({
  _tag: "ErrorSpec",
  status,
  kind,
  ...rest
})

export const isErrorSpec = (u: unknown): u is ErrorSpec =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "ErrorSpec"

export const kindOfStatus = (status: number): ErrorKind => {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return "invalid_request"
    case 401:
      return "auth"
    case 403:
      return "permission"
    case 404:
      return "not_found"
    case 408:
    case 504:
      return "timeout"
    case 429:
      return "rate_limit"
    case 503:
      return "unavailable"
    case 529:
      return "overloaded"
    default:
      return "server"
  }
}

/** A rendered HTTP response. */
export interface Rendered {
  readonly status: number
  readonly headers: Record<string, string | ReadonlyArray<string>>
  readonly body: string | Uint8Array
}

export interface RateInfo {
  readonly requestsLimit: number | undefined
  readonly requestsRemaining: number
  readonly tokensLimit: number | undefined
  readonly tokensRemaining: number
  /** Epoch ms when the window resets. */
  readonly resetAt: number
  readonly now: number
}

/**
 * What a path under a provider prefix means for this protocol. `vertex` marks
 * the Gemini protocol's Vertex AI paths (`/v1beta1/projects/{p}/locations/{l}/publishers/google/...`).
 */
export type Route =
  | { readonly _tag: "generate"; readonly model: string | undefined; readonly stream: boolean; readonly vertex?: boolean | undefined }
  | { readonly _tag: "models"; readonly vertex?: boolean | undefined }
  | { readonly _tag: "model"; readonly id: string; readonly vertex?: boolean | undefined }

export interface ProtocolImpl {
  readonly name: string
  /** `path` is the part after `/{provider}`, without query. */
  readonly route: (method: string, path: string, query: URLSearchParams) => Route | undefined
  readonly parse: (body: unknown, route: Route & { _tag: "generate" }) => SimRequest | ErrorSpec
  /** Returns an ErrorSpec when credentials are missing or wrong; `keys` is non-empty. `route` is unset for replays on unknown paths. */
  readonly auth: (
    headers: Record<string, string | string[] | undefined>,
    query: URLSearchParams,
    keys: ReadonlySet<string>,
    route?: Route | undefined
  ) => ErrorSpec | undefined
  readonly json: (c: Completion) => unknown
  /** Framed stream events; `tokens` is how many output tokens the event carries (for latency). */
  readonly stream: (c: Completion, req: SimRequest) => ReadonlyArray<StreamEvent>
  readonly streamContentType: string
  /** One framed in-band error event. */
  readonly streamError: (c: Completion) => string | Uint8Array
  /** A malformed (non-JSON) framed event. */
  readonly malformedEvent: () => string | Uint8Array
  readonly error: (e: ErrorSpec, rate: RateInfo | undefined) => Rendered
  readonly successHeaders: (requestId: string, rate: RateInfo | undefined) => Record<string, string>
  readonly models: (models: ReadonlyArray<Model>, route?: Route | undefined) => unknown
  readonly model: (m: Model, route?: Route | undefined) => unknown
  /** Frames one replay line (`.chunks.jsonl` / `.events.jsonl`) and the terminator. */
  readonly frameReplay: (line: string) => string | Uint8Array
  readonly replayTerminator: string | undefined
}

export interface StreamEvent {
  readonly data: string | Uint8Array
  readonly tokens: number
}

/** Extracts text from OpenAI/Anthropic style content (string or array of parts). */
/**
 * The texts an explicit cache breakpoint covers: `before` (the texts of the
 * turns ahead of `content`) plus `content`'s blocks up to and including the
 * last one `isMarker` accepts; `undefined` when `content` holds no marker.
 */
export const markedPrefix = (
  before: ReadonlyArray<string>,
  content: unknown,
  isMarker: (block: Record<string, unknown>) => boolean
): ReadonlyArray<string> | undefined => {
  if (!Array.isArray(content)) return undefined
  let last = -1
  for (let i = 0; i < content.length; i++) {
    const block = content[i]
    if (block !== null && typeof block === "object" && isMarker(block as Record<string, unknown>)) last = i
  }
  return last === -1 ? undefined : [...before, contentText(content.slice(0, last + 1))]
}

export const contentText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return content === undefined || content === null ? "" : JSON.stringify(content)
  let out = ""
  for (const part of content) {
    if (typeof part === "string") out += part
    else if (part !== null && typeof part === "object") {
      const p = part as Record<string, unknown>
      if (typeof p.text === "string") out += p.text
      else if (p.content !== undefined) out += contentText(p.content)
      else if (p.input !== undefined) out += JSON.stringify(p.input)
      else if (p.json !== undefined) out += JSON.stringify(p.json)
    }
  }
  return out
}
