/**
 * Maps whatever the `openai` SDK throws to an `LlmError`: HTTP errors through
 * `ProviderError.fromHttp` (status, `error.code` / `error.type`, headers),
 * in-band stream errors by their `type`, connection failures to
 * `NetworkError`, SDK timeouts to `Timeout`, unparseable bodies to
 * `MalformedResponse`. Every message is scrubbed of the API key first.
 *
 * @internal
 */
import { LlmError, ProviderError } from "@switchboard/core"
import { Duration } from "effect"
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai"

/** Who failed and what must never appear in an error. */
export interface ErrorContext {
  readonly provider: string
  readonly model?: string | undefined
  /** The secrets to scrub from every message (the API key). */
  readonly secrets: ReadonlyArray<string | undefined>
  /** The per-request timeout the SDK was given, for `Timeout.after`. */
  readonly timeoutMs: number
  /** Where the call went (shown in a `NetworkError`, without query or credentials). */
  readonly url?: string | undefined
}

// OpenAI echoes a masked key in 401 messages ("Incorrect API key provided: sk-ab***yz");
// other servers mask keys the same way anywhere in a message.
const echoedKey = /(api key provided:?\s*)[^\s.,;]+/gi
const maskedKey = /[A-Za-z0-9_-]*\*{3,}[A-Za-z0-9_-]*/g

/** Removes the key, and any (masked) echo of it, from a text. */
export const scrub = (text: string, secrets: ReadonlyArray<string | undefined>): string =>
  ProviderError.redact(text, secrets).replace(echoedKey, "$1<redacted>").replace(maskedKey, "<redacted>")

const bodyOf = (error: APIError): Record<string, unknown> | undefined =>
  typeof error.error === "object" && error.error !== null ? error.error as Record<string, unknown> : undefined

const str = (value: unknown): string | undefined => typeof value === "string" && value.length > 0 ? value : undefined

const messageOf = (error: APIError): string => {
  const body = bodyOf(error)
  const message = body?.["message"]
  if (typeof message === "string") return message
  if (message !== undefined) return JSON.stringify(message)
  // The SDK prefixes its own message with the status ("429 Rate limit…").
  return error.message.replace(/^\d{3}\s+/, "")
}

/**
 * The code `fromHttp` should see: `insufficient_quota` wherever OpenAI put it
 * (the `code` or the `type`), else the body's `code`, else its `type`.
 */
const codeOf = (error: APIError): string | undefined => {
  const body = bodyOf(error)
  const code = str(error.code ?? body?.["code"])
  const type = str(error.type ?? body?.["type"])
  if (code === "insufficient_quota" || type === "insufficient_quota") return "insufficient_quota"
  return code ?? type
}

/**
 * The status an in-band stream error stands for: OpenAI-compatible servers
 * send `{"error": {...}}` inside a 200 stream, with a `type` (and sometimes a
 * numeric `code`) but no HTTP status.
 */
const inBandStatus = (error: APIError): number => {
  const body = bodyOf(error)
  const numeric = typeof body?.["code"] === "number" ? body["code"] : Number(body?.["status"])
  if (Number.isInteger(numeric) && numeric >= 400 && numeric <= 599) return numeric
  const kind = `${str(error.type) ?? ""} ${str(error.code) ?? ""}`.toLowerCase()
  if (/insufficient_quota/.test(kind)) return 429
  if (/rate_limit|tokens|requests/.test(kind)) return 429
  if (/context_length|invalid_request/.test(kind)) return 400
  if (/overloaded|unavailable/.test(kind)) return 503
  if (/authentication|invalid_api_key/.test(kind)) return 401
  return 500
}

/** A `NetworkError` naming the failure (refused, reset, dns, tls, cut…) and the URL, scrubbed. */
const network = (error: unknown, context: ErrorContext): LlmError.NetworkError =>
  ProviderError.networkError(error, { ...context, scrub: (text) => scrub(text, context.secrets) })

/**
 * Maps a thrown value from the SDK (or from reading its response) to an
 * `LlmError`. Never throws; anything unrecognised is a `NetworkError`.
 */
export const fromSdkError = (error: unknown, context: ErrorContext): LlmError.LlmError => {
  const { model, provider, secrets } = context
  const origin = { provider, model }
  if (error instanceof APIConnectionTimeoutError) {
    return new LlmError.Timeout({ ...origin, after: Duration.millis(context.timeoutMs) })
  }
  if (error instanceof APIUserAbortError) {
    return new LlmError.NetworkError({ ...origin, cause: "aborted", url: ProviderError.displayUrl(context.url), detail: "the request was aborted" })
  }
  if (error instanceof APIConnectionError) {
    return network(error, context)
  }
  if (error instanceof APIError) {
    const message = scrub(messageOf(error), secrets)
    const code = codeOf(error)
    if (error.status === undefined) {
      return ProviderError.fromHttp({ ...origin, status: inBandStatus(error), message, code, headers: error.headers })
    }
    return ProviderError.fromHttp({ ...origin, status: error.status, message, code, headers: error.headers })
  }
  if (error instanceof SyntaxError) {
    return new LlmError.MalformedResponse({ ...origin, detail: scrub(error.message, secrets) })
  }
  // undici reports a socket closed mid-body as `TypeError: terminated` (cause `cut`).
  return network(error, context)
}
