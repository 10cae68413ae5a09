/**
 * Every failure of the `@google/genai` SDK as a Switchboard `LlmError`.
 *
 * The SDK throws `ApiError { status, message }` whose message is the JSON
 * error body (`{"error":{"code","message","status","details"}}`), or
 * `got status: X. {json}` for an error event inside a stream. It carries no
 * response headers, which costs nothing: Gemini sends no rate-limit headers
 * and puts its retry hint in the body (`google.rpc.RetryInfo.retryDelay`).
 * Transport failures are plain `TypeError`s (`fetch failed`, `terminated`),
 * the SDK's timeout is an `AbortError`, and a body that is not JSON a
 * `SyntaxError`.
 *
 * @internal
 */
import { ApiError } from "@google/genai"
import { LlmError, ProviderError } from "@switchboard/core"
import { Duration } from "effect"

/** Where a failure happened and what must never be printed. */
export interface ErrorContext {
  readonly provider: string
  readonly model?: string | undefined
  /** Secrets (API key, private key) to scrub from every message. */
  readonly secrets: ReadonlyArray<string | undefined>
  /** The SDK timeout in force, in ms, if any. */
  readonly timeoutMs?: number | undefined
  /** True when Switchboard itself aborted the call (the fiber was interrupted). */
  readonly aborted?: boolean | undefined
  /** True for a Vertex AI client, whose credentials are fetched by google-auth-library. */
  readonly vertex?: boolean | undefined
}

interface GoogleErrorBody {
  readonly code?: number
  readonly message?: string
  readonly status?: string
  readonly details?: ReadonlyArray<Record<string, unknown>>
}

const parseBody = (message: string): GoogleErrorBody | undefined => {
  const start = message.indexOf("{")
  if (start === -1) return undefined
  try {
    const parsed = JSON.parse(message.slice(start)) as unknown
    if (typeof parsed !== "object" || parsed === null) return undefined
    const error = (parsed as { error?: unknown }).error
    if (typeof error !== "object" || error === null) return undefined
    const e = error as Record<string, unknown>
    return {
      ...(typeof e.code === "number" ? { code: e.code } : {}),
      ...(typeof e.message === "string" ? { message: e.message } : {}),
      ...(typeof e.status === "string" ? { status: e.status } : {}),
      ...(Array.isArray(e.details)
        ? { details: e.details.filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null) }
        : {})
    }
  } catch {
    return undefined
  }
}

const detailOf = (body: GoogleErrorBody | undefined, type: string): Record<string, unknown> | undefined =>
  body?.details?.find((d) => d["@type"] === `type.googleapis.com/google.rpc.${type}`)

/**
 * The wait a Google error body asks for: `RetryInfo.retryDelay`, a protobuf
 * duration such as `"34.4s"`.
 */
export const retryDelayOf = (body: GoogleErrorBody | undefined): Duration.Duration | undefined => {
  const delay = detailOf(body, "RetryInfo")?.retryDelay
  if (typeof delay === "string") return ProviderError.parseGoDuration(delay)
  // The JSON form of a protobuf Duration is a string, but accept the object form too.
  if (typeof delay === "object" && delay !== null) {
    const { seconds, nanos } = delay as { seconds?: unknown; nanos?: unknown }
    const s = Number(seconds ?? 0)
    const n = Number(nanos ?? 0)
    if (Number.isFinite(s) && Number.isFinite(n)) return Duration.millis(s * 1000 + n / 1e6)
  }
  return undefined
}

const rateScopeOf = (body: GoogleErrorBody | undefined): "requests" | "tokens" | undefined => {
  const violations = detailOf(body, "QuotaFailure")?.violations
  if (!Array.isArray(violations)) return undefined
  for (const v of violations) {
    const id = `${(v as { quotaId?: unknown }).quotaId ?? ""} ${(v as { quotaMetric?: unknown }).quotaMetric ?? ""}`
    if (/token/i.test(id)) return "tokens"
    if (/request/i.test(id)) return "requests"
  }
  return undefined
}

const isApiError = (cause: unknown): cause is { readonly status: number; readonly message: string } =>
  cause instanceof ApiError ||
  (cause instanceof Error && cause.name === "ApiError" && typeof (cause as { status?: unknown }).status === "number")

/** Maps an `ApiError` (HTTP status or in-band stream error) to an `LlmError`. */
const fromApiError = (error: { readonly status: number; readonly message: string }, ctx: ErrorContext): LlmError.LlmError => {
  const origin = { provider: ctx.provider, model: ctx.model }
  const body = parseBody(error.message)
  const status = error.status
  const text = ProviderError.redact(body?.message ?? error.message.slice(0, 500), ctx.secrets)
  const code = body?.status
  const reason = detailOf(body, "ErrorInfo")?.reason
  const detail = text.length > 0 ? text : undefined
  // Gemini answers a wrong key with 400 INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID.
  if (status === 401 || code === "UNAUTHENTICATED" || reason === "API_KEY_INVALID" || reason === "API_KEY_EXPIRED") {
    return new LlmError.AuthenticationFailed({ ...origin, detail })
  }
  // "User location is not supported", "enable billing": the key cannot use this API here.
  if (code === "FAILED_PRECONDITION") return new LlmError.PermissionDenied({ ...origin, detail })
  if (status === 429 || code === "RESOURCE_EXHAUSTED") {
    const mapped = ProviderError.fromHttp({ ...origin, status: 429, message: text, code, retryAfter: retryDelayOf(body) })
    const scope = rateScopeOf(body)
    if (mapped._tag === "RateLimited" && scope !== undefined && mapped.scope === "unknown") {
      return new LlmError.RateLimited({ ...origin, retryAfter: mapped.retryAfter, scope, source: "provider", detail })
    }
    return mapped
  }
  if (code === "DEADLINE_EXCEEDED" || status === 504) {
    return new LlmError.Timeout({ ...origin, after: Duration.millis(ctx.timeoutMs ?? 0) })
  }
  return ProviderError.fromHttp({ ...origin, status, message: text, code, retryAfter: retryDelayOf(body) })
}

const causeCode = (error: Error): string | undefined => {
  const cause = (error as { cause?: unknown }).cause
  if (typeof cause !== "object" || cause === null) return undefined
  const code = (cause as { code?: unknown }).code
  return typeof code === "string" ? code : undefined
}

const authFailure = /default credentials|credential|access token|invalid_grant|unauthorized_client|private key|PEM|DECODER|invalid_client|No key or keyFile/i

/**
 * Maps anything the SDK (or the fetch under it) threw to an `LlmError`.
 * Never a defect: an unknown failure becomes a `NetworkError` naming it.
 */
export const toLlmError = (cause: unknown, ctx: ErrorContext): LlmError.LlmError => {
  const origin = { provider: ctx.provider, model: ctx.model }
  const scrub = (text: string) => ProviderError.redact(text, ctx.secrets)
  if (isApiError(cause)) return fromApiError(cause, ctx)
  if (!(cause instanceof Error)) {
    return new LlmError.NetworkError({ ...origin, detail: scrub(`the SDK failed with ${String(cause)}`) })
  }
  const message = scrub(cause.message)
  if (cause.name === "AbortError" || cause.name === "TimeoutError") {
    if (ctx.aborted === true) return new LlmError.NetworkError({ ...origin, detail: "the call was cancelled" })
    return new LlmError.Timeout({ ...origin, after: Duration.millis(ctx.timeoutMs ?? 0) })
  }
  if (cause.name === "SyntaxError" || message.startsWith("exception parsing stream chunk")) {
    return new LlmError.MalformedResponse({ ...origin, detail: `the response is not valid JSON: ${message}` })
  }
  if (message.startsWith("Incomplete JSON segment")) {
    return new LlmError.NetworkError({ ...origin, detail: "the stream was cut in the middle of an event" })
  }
  if (cause.name === "TypeError" && (message === "fetch failed" || message === "terminated" || causeCode(cause) !== undefined)) {
    const found = ProviderError.networkError(cause, { ...origin, secrets: ctx.secrets })
    return new LlmError.NetworkError({ ...origin, cause: found.cause, detail: found.detail })
  }
  // The SDK read a 200 body that is not a response object (`null`, a number): it is malformed, not a network failure.
  if (cause.name === "TypeError" && /^Cannot (read|set) properties of (null|undefined)/.test(message)) {
    return new LlmError.MalformedResponse({ ...origin, detail: `the body is not a Gemini response (${scrub(message)})` })
  }
  if (ctx.vertex === true && authFailure.test(message)) {
    return new LlmError.AuthenticationFailed({
      ...origin,
      detail: `could not get Google Cloud credentials (Application Default Credentials or the given credentials): ${message}`
    })
  }
  return new LlmError.NetworkError({ ...origin, detail: `${cause.name}: ${message}` })
}
