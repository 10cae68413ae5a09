/**
 * The shared half of every provider's error mapping: an HTTP status, the
 * provider's error code and message, and the response headers become the
 * right {@link LlmError}, with `retryAfter` read from `retry-after-ms`,
 * `retry-after` (seconds or an HTTP date) or a reset header, and context
 * limits read from the message when it states them. Also parses the
 * rate-limit headers of OpenAI-style and Anthropic responses into
 * `RateLimitInfo`.
 *
 * Provider packages call {@link fromHttp} with what their SDK exposes and
 * add only what is specific to them.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import * as LlmError from "../LlmError.ts"
import type { RateLimitInfo } from "../LlmResponse.ts"

/**
 * Anything that reads headers by name: a `Headers`, or a plain record.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersLike =
  | { readonly get: (name: string) => string | null | undefined }
  | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * Reads one header, case-insensitively.
 *
 * @since 0.1.0
 * @category getters
 */
export const header = (headers: HeadersLike | undefined, name: string): string | undefined => {
  if (headers === undefined) return undefined
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get: (name: string) => string | null | undefined }).get(name) ?? undefined
  }
  const record = headers as Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  const direct = record[name] ?? record[name.toLowerCase()]
  const value = direct ?? Object.entries(record).find(([key]) => key.toLowerCase() === name)?.[1]
  return Array.isArray(value) ? value[0] : value as string | undefined
}

/**
 * Parses a Go-style duration as OpenAI sends in `x-ratelimit-reset-*`
 * (`"1s"`, `"6m0s"`, `"17ms"`, `"1h2m3.5s"`).
 *
 * @since 0.1.0
 * @category parsers
 */
export const parseGoDuration = (text: string): Duration.Duration | undefined => {
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g
  let millis = 0
  let matched = ""
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1])
    matched += m[0]
    switch (m[2]) {
      case "h":
        millis += n * 3_600_000
        break
      case "m":
        millis += n * 60_000
        break
      case "s":
        millis += n * 1000
        break
      case "ms":
        millis += n
        break
      case "us":
      case "µs":
        millis += n / 1000
        break
      case "ns":
        millis += n / 1_000_000
        break
    }
  }
  return matched.length > 0 && matched === text.trim() ? Duration.millis(millis) : undefined
}

const untilDate = (text: string, now: number | undefined): Duration.Duration | undefined => {
  if (now === undefined) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Duration.millis(Math.max(0, at - now))
}

/**
 * The wait a response asks for: `retry-after-ms`, then `retry-after` in
 * seconds or as an HTTP date (relative to `now`, epoch ms: pass the `Clock`'s
 * time; without it an HTTP date cannot be measured and is ignored).
 *
 * @since 0.1.0
 * @category parsers
 */
export const retryAfter = (headers: HeadersLike | undefined, now?: number | undefined): Duration.Duration | undefined => {
  const ms = header(headers, "retry-after-ms")
  if (ms !== undefined && ms.trim() !== "" && Number.isFinite(Number(ms))) return Duration.millis(Math.max(0, Number(ms)))
  const value = header(headers, "retry-after")
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Duration.millis(Math.max(0, seconds * 1000))
  return untilDate(value, now)
}

const num = (value: string | undefined): number | undefined => {
  if (value === undefined || value.trim() === "") return undefined
  const n = Number(value)
  return Number.isFinite(n) ? n : undefined
}

const resetOf = (value: string | undefined, now: number | undefined): Duration.Duration | undefined => {
  if (value === undefined) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && value.trim() !== "") return Duration.millis(Math.max(0, seconds * 1000))
  return parseGoDuration(value) ?? untilDate(value, now)
}

// The rate-limit headers, in `RateLimitInfo` field order: OpenAI-style first, then Anthropic.
const rateLimitHeaders: ReadonlyArray<string> = [
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
  "anthropic-ratelimit-requests-limit",
  "anthropic-ratelimit-requests-remaining",
  "anthropic-ratelimit-requests-reset",
  "anthropic-ratelimit-tokens-limit",
  "anthropic-ratelimit-tokens-remaining",
  "anthropic-ratelimit-tokens-reset"
]
const rateLimitSlot = new Map(rateLimitHeaders.map((name, index) => [name, index]))

const firstValue = (value: unknown): string | undefined =>
  typeof value === "string" ? value : Array.isArray(value) && typeof value[0] === "string" ? value[0] : undefined

/**
 * The rate-limit header values, by slot, read in one pass over the headers
 * (a `Headers` lookup validates and normalises its name, so twelve `get`s of
 * absent headers cost several times one walk over the few present ones).
 * `undefined` when none is present.
 */
const rateLimitValues = (headers: HeadersLike): Array<string | undefined> | undefined => {
  let values: Array<string | undefined> | undefined
  const see = (name: string, value: unknown) => {
    if (name.length < 24) return
    const slot = rateLimitSlot.get(name.toLowerCase())
    const text = firstValue(value)
    if (slot === undefined || text === undefined) return
    values ??= new Array<string | undefined>(rateLimitHeaders.length)
    values[slot] ??= text
  }
  if (typeof (headers as { get?: unknown }).get === "function") {
    if (typeof (headers as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== "function") {
      // Something that only reads by name: ask for each header.
      for (const name of rateLimitHeaders) see(name, header(headers, name))
      return values
    }
    for (const [name, value] of headers as unknown as Iterable<readonly [string, unknown]>) see(name, value)
    return values
  }
  const record = headers as Readonly<Record<string, unknown>>
  for (const name in record) see(name, record[name])
  return values
}

const rateLimitFrom = (
  values: ReadonlyArray<string | undefined>,
  offset: number,
  now: number | undefined
): RateLimitInfo | undefined => {
  const out: { -readonly [K in keyof RateLimitInfo]: RateLimitInfo[K] } = {}
  let any = false
  const requestsLimit = num(values[offset])
  if (requestsLimit !== undefined) {
    out.requestsLimit = requestsLimit
    any = true
  }
  const requestsRemaining = num(values[offset + 1])
  if (requestsRemaining !== undefined) {
    out.requestsRemaining = requestsRemaining
    any = true
  }
  const requestsReset = resetOf(values[offset + 2], now)
  if (requestsReset !== undefined) {
    out.requestsReset = requestsReset
    any = true
  }
  const tokensLimit = num(values[offset + 3])
  if (tokensLimit !== undefined) {
    out.tokensLimit = tokensLimit
    any = true
  }
  const tokensRemaining = num(values[offset + 4])
  if (tokensRemaining !== undefined) {
    out.tokensRemaining = tokensRemaining
    any = true
  }
  const tokensReset = resetOf(values[offset + 5], now)
  if (tokensReset !== undefined) {
    out.tokensReset = tokensReset
    any = true
  }
  return any ? out : undefined
}

/**
 * The rate-limit state in a response's headers: OpenAI-style
 * `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (also used by Groq,
 * Together, DeepSeek…) or Anthropic `anthropic-ratelimit-{requests,tokens}-*`.
 * `undefined` when the response carries none.
 *
 * @since 0.1.0
 * @category parsers
 */
export const rateLimitInfo = (headers: HeadersLike | undefined, now?: number | undefined): RateLimitInfo | undefined => {
  if (headers === undefined) return undefined
  const values = rateLimitValues(headers)
  if (values === undefined) return undefined
  return rateLimitFrom(values, 0, now) ?? rateLimitFrom(values, 6, now)
}

const contextPatterns: ReadonlyArray<RegExp> = [
  /context[_ ]length/i,
  /context window/i,
  /prompt is too long/i,
  /input is too long/i,
  /too many (input )?tokens/i,
  /maximum (context|prompt) length/i,
  /exceeds the maximum number of tokens/i,
  /input token count.*exceeds/i,
  /reduce the length of the messages/i
]

/**
 * True when a provider's 400 message or code says the prompt does not fit.
 *
 * @since 0.1.0
 * @category guards
 */
export const isContextLengthMessage = (message: string, code?: string | undefined): boolean =>
  code === "context_length_exceeded" || code === "string_above_max_length" ||
  contextPatterns.some((re) => re.test(message))

/**
 * The limit and requested sizes a context-length message states, when it
 * does: OpenAI "maximum context length is 8192 tokens. However, your messages
 * resulted in 9000 tokens", Anthropic "prompt is too long: 210000 tokens >
 * 200000 maximum", Gemini "input token count (1200000) exceeds the maximum
 * number of tokens allowed (1048576)".
 *
 * @since 0.1.0
 * @category parsers
 */
export const contextSizes = (message: string): { limit?: number; requested?: number } => {
  const n = (s: string | undefined) => s === undefined ? undefined : Number(s.replace(/,/g, ""))
  let m = /(\d[\d,]*) tokens? > (\d[\d,]*) maximum/i.exec(message)
  if (m) return { requested: n(m[1])!, limit: n(m[2])! }
  m = /maximum context length is (\d[\d,]*) tokens?.*?(?:resulted in|requested) (\d[\d,]*) tokens?/is.exec(message)
  if (m) return { limit: n(m[1])!, requested: n(m[2])! }
  m = /input token count \(?(\d[\d,]*)\)? exceeds the maximum number of tokens allowed \(?(\d[\d,]*)\)?/i.exec(message)
  if (m) return { requested: n(m[1])!, limit: n(m[2])! }
  m = /maximum context length is (\d[\d,]*)/i.exec(message)
  if (m) return { limit: n(m[1])! }
  return {}
}

/**
 * What a provider said about a failed call.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpFailure {
  readonly provider: string
  readonly model?: string | undefined
  /** The HTTP status. */
  readonly status: number
  /** The provider's error message (already free of secrets). */
  readonly message?: string | undefined
  /** The provider's error code or type (`insufficient_quota`, `overloaded_error`, `RESOURCE_EXHAUSTED`, …). */
  readonly code?: string | undefined
  readonly headers?: HeadersLike | undefined
  /** A retry hint found elsewhere (a Gemini `RetryInfo`), used when no header gives one. */
  readonly retryAfter?: Duration.Duration | undefined
  /** The moment the response arrived, epoch ms (for HTTP-date headers). */
  readonly now?: number | undefined
}

const modelCodes = new Set(["model_not_found", "not_found_error", "NOT_FOUND", "ResourceNotFoundException", "not_found"])

/**
 * True when a 404 is about the model (its code, or a message that names a
 * model), not about the path.
 *
 * @since 0.1.0
 * @category guards
 */
export const isModelNotFound = (message: string, code?: string | undefined): boolean => {
  if (/invalid url|unknown (url|path|endpoint|route)|no route|cannot (post|get)\b/i.test(message)) return false
  return (code !== undefined && modelCodes.has(code)) || /model/i.test(message)
}

const quotaCodes = new Set(["insufficient_quota", "billing_error", "credit_balance_exhausted", "billing_hard_limit_reached"])
const overloadCodes = new Set(["overloaded_error", "server_is_overloaded", "slow_down", "UNAVAILABLE", "service_unavailable_error"])
const filterCodes = new Set(["content_filter", "content_policy_violation", "safety", "SAFETY"])

const rateScope = (failure: HttpFailure): "requests" | "tokens" | "unknown" => {
  const text = `${failure.code ?? ""} ${failure.message ?? ""}`.toLowerCase()
  if (/tokens per|\btpm\b|too many tokens|input tokens|output tokens|token rate/.test(text)) return "tokens"
  if (/requests per|\brpm\b|\brpd\b|too many requests|request rate/.test(text)) return "requests"
  const headers = failure.headers
  if (header(headers, "x-ratelimit-remaining-tokens") === "0" || header(headers, "anthropic-ratelimit-tokens-remaining") === "0") {
    return "tokens"
  }
  if (
    header(headers, "x-ratelimit-remaining-requests") === "0" ||
    header(headers, "anthropic-ratelimit-requests-remaining") === "0"
  ) return "requests"
  return "unknown"
}

/**
 * Maps a provider's HTTP failure to the right {@link LlmError.LlmError}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromHttp = (failure: HttpFailure): LlmError.LlmError => {
  const { provider, model, status, code } = failure
  const message = failure.message ?? ""
  const detail = message.length > 0 ? message : undefined
  const origin = { provider, model }
  const wait = retryAfter(failure.headers, failure.now) ?? failure.retryAfter
  if (code !== undefined && quotaCodes.has(code)) return new LlmError.QuotaExhausted({ ...origin, detail })
  if (code !== undefined && filterCodes.has(code)) return new LlmError.ContentFiltered({ ...origin, detail })
  switch (status) {
    case 400:
    case 413:
    case 422: {
      if (isContextLengthMessage(message, code)) {
        return new LlmError.ContextLengthExceeded({ ...origin, ...contextSizes(message), detail })
      }
      return new LlmError.InvalidRequest({
        ...origin,
        message: detail ?? `${provider} rejected the request (${status})`
      })
    }
    case 401:
      return new LlmError.AuthenticationFailed({ ...origin, detail })
    case 402:
      return new LlmError.QuotaExhausted({ ...origin, detail })
    case 403:
      return new LlmError.PermissionDenied({ ...origin, detail })
    case 404:
      // A 404 names a missing model only when it says so; a 404 for the path
      // itself (a baseURL without `/v1`, a proxy's HTML page) is a wrong client
      // configuration, which no fallback to another model can mend.
      if (isModelNotFound(message, code)) return new LlmError.ModelNotFound({ ...origin, detail })
      return new LlmError.InvalidRequest({
        ...origin,
        field: "baseURL",
        message: `${provider} answered 404 for the request path (is the baseURL right?)${detail !== undefined ? `: ${detail}` : ""}`
      })
    case 408:
    case 504:
      return new LlmError.Timeout({ ...origin, after: Duration.zero })
    case 429:
      return new LlmError.RateLimited({ ...origin, retryAfter: wait, scope: rateScope(failure), source: "provider", detail })
    case 503:
    case 529:
      return new LlmError.Overloaded({ ...origin, retryAfter: wait, detail })
  }
  if (code !== undefined && overloadCodes.has(code)) return new LlmError.Overloaded({ ...origin, retryAfter: wait, detail })
  if (status >= 500) return new LlmError.ServerError({ ...origin, status, detail })
  if (status >= 400) {
    return new LlmError.InvalidRequest({ ...origin, message: detail ?? `${provider} rejected the request (${status})` })
  }
  return new LlmError.MalformedResponse({ ...origin, detail: detail ?? `unexpected status ${status}` })
}

/**
 * Removes every occurrence of the given secrets from a text (an SDK error
 * message, a log line), so an API key can never leak through an error.
 *
 * @since 0.1.0
 * @category utils
 */
export const redact = (text: string, secrets: ReadonlyArray<string | undefined>): string => {
  let out = text
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join("<redacted>")
  }
  return out
}

/**
 * What a network failure was: `refused`, `reset`, `dns`, `tls`, `timeout`,
 * `cut` (a body or stream ended early), `aborted` or `unknown`.
 *
 * @since 0.1.0
 * @category models
 */
export type NetworkCause = "refused" | "reset" | "dns" | "tls" | "timeout" | "cut" | "aborted" | "unknown"

const causeCodes: ReadonlyArray<readonly [RegExp, NetworkCause]> = [
  [/^ECONNREFUSED$/, "refused"],
  [/^(ECONNRESET|EPIPE|UND_ERR_SOCKET|ECONNABORTED)$/, "reset"],
  [/^(ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL)$/, "dns"],
  [/CERT|TLS|SSL|^ERR_SSL|^DEPTH_ZERO|^UNABLE_TO_(GET|VERIFY)/, "tls"],
  [/^(ETIMEDOUT|UND_ERR_CONNECT_TIMEOUT|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT|ESOCKETTIMEDOUT)$/, "timeout"],
  [/^(UND_ERR_ABORTED|ABORT_ERR)$/, "aborted"]
]

/**
 * Reads what kind of network failure a thrown value is, walking its `cause`
 * chain (undici wraps the socket error: `TypeError: fetch failed` →
 * `Error: connect ECONNREFUSED`; a body cut mid-way is `TypeError:
 * terminated`).
 *
 * @since 0.1.0
 * @category parsers
 */
export const networkCause = (error: unknown): NetworkCause => {
  let current: unknown = error
  let cut = false
  for (let depth = 0; depth < 8 && current !== undefined && current !== null; depth++) {
    const record = current as { readonly code?: unknown; readonly name?: unknown; readonly message?: unknown; readonly cause?: unknown }
    const code = typeof record.code === "string" ? record.code : undefined
    if (code !== undefined) for (const [re, cause] of causeCodes) if (re.test(code)) return cause
    const message = typeof record.message === "string" ? record.message : ""
    if (/certificate|ssl|tls/i.test(message)) return "tls"
    if (/getaddrinfo|ENOTFOUND/i.test(message)) return "dns"
    if (/ECONNREFUSED/.test(message)) return "refused"
    if (/ECONNRESET|socket hang up/i.test(message)) return "reset"
    if (/^terminated$|premature close|other side closed|ended before|unexpected end/i.test(message)) cut = true
    if (record.name === "AbortError") return "aborted"
    current = record.cause
  }
  return cut ? "cut" : "unknown"
}

/**
 * A URL as errors may show it: scheme, host, port and path, never the query,
 * a fragment or credentials.
 *
 * @since 0.1.0
 * @category utils
 */
export const displayUrl = (url: string | URL | undefined): string | undefined => {
  if (url === undefined) return undefined
  try {
    const parsed = typeof url === "string" ? new URL(url) : url
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return undefined
  }
}

/**
 * A `NetworkError` that says which failure it was and where: the cause read
 * by {@link networkCause}, the URL by {@link displayUrl}, the detail with the
 * socket's own words (scrubbed of `secrets`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const networkError = (
  error: unknown,
  context: {
    readonly provider: string
    readonly model?: string | undefined
    readonly url?: string | URL | undefined
    readonly secrets?: ReadonlyArray<string | undefined> | undefined
    /** A provider's own scrubbing (masked key echoes), applied after the secrets are removed. */
    readonly scrub?: ((text: string) => string) | undefined
  }
): LlmError.NetworkError => {
  const cause = networkCause(error)
  const words: Array<string> = []
  let current: unknown = error
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code
    words.push(typeof code === "string" && !current.message.includes(code) ? `${current.message} (${code})` : current.message)
    current = current.cause
  }
  const url = displayUrl(context.url)
  const text = words.length > 0 ? words.join(": ") : String(error)
  return new LlmError.NetworkError({
    provider: context.provider,
    model: context.model,
    cause,
    ...(url !== undefined ? { url } : {}),
    detail: (context.scrub ?? String)(redact(text, context.secrets ?? []))
  })
}

/**
 * Checks a client's `baseURL` at build: an absolute `http:` or `https:` URL.
 * The problem, or `undefined` when it is fine.
 *
 * @since 0.1.0
 * @category guards
 */
export const baseUrlProblem = (baseURL: string): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(baseURL)
  } catch {
    return `expected an absolute http(s) URL, got ${JSON.stringify(baseURL.slice(0, 200))}`
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return `expected an http: or https: URL, got ${parsed.protocol}`
  }
  if (parsed.username !== "" || parsed.password !== "") return "credentials do not belong in the URL; use the apiKey option"
  return undefined
}
