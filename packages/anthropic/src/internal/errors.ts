/**
 * Every failure the Anthropic SDK can throw, as an `LlmError`: HTTP errors
 * through core's `ProviderError.fromHttp` (status, `error.type`, message,
 * `retry-after` and `anthropic-ratelimit-*` headers), in-band stream `error`
 * events by their type, SDK timeouts as `Timeout`, connection failures and
 * cut bodies as `NetworkError`, unreadable bodies as `MalformedResponse`.
 * Every text taken from the SDK is scrubbed of the API key.
 *
 * @internal
 */
import {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError
} from "@anthropic-ai/sdk"
import { LlmError, ProviderError } from "@switchboard/core"
import { Duration } from "effect"

/** Where a failure happened and what must never appear in its text. */
export interface ErrorContext {
  readonly provider: string
  readonly model: string | undefined
  /** Secrets to scrub from any text (the API key). */
  readonly secrets: ReadonlyArray<string>
  /** The SDK timeout the call ran with, in ms (for `Timeout.after`). */
  readonly timeoutMs: number | undefined
  /** Epoch ms of the failure, from the `Clock` (for HTTP-date headers). */
  readonly now: number
  /** Where the call went (shown in a `NetworkError`, without query or credentials). */
  readonly url?: string | undefined
}


/**
 * The HTTP status an Anthropic `error.type` stands for, used for in-band
 * stream errors, which arrive after a 200.
 */
export const statusOfType = (type: string | null | undefined): number => {
  switch (type) {
    case "invalid_request_error":
      return 400
    case "authentication_error":
      return 401
    case "billing_error":
      return 402
    case "permission_error":
      return 403
    case "not_found_error":
      return 404
    case "request_too_large":
      return 413
    case "rate_limit_error":
      return 429
    case "timeout_error":
      return 504
    case "overloaded_error":
      return 529
    default:
      return 500
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/** `error.message` and `error.type` of an Anthropic error body, when it has them. */
const bodyError = (body: unknown): { message?: string; type?: string } => {
  if (!isRecord(body)) return typeof body === "string" && body.length > 0 ? { message: body } : {}
  const inner = isRecord(body.error) ? body.error : body
  return {
    ...(typeof inner.message === "string" ? { message: inner.message } : {}),
    ...(typeof inner.type === "string" ? { type: inner.type } : {})
  }
}

/**
 * Maps anything the SDK threw (or a promise around it rejected with) to an
 * `LlmError`. Never throws.
 */
export const toLlmError = (cause: unknown, context: ErrorContext): LlmError.LlmError => {
  const origin = { provider: context.provider, model: context.model }
  const clean = (text: string) => ProviderError.redact(text, context.secrets)
  if (cause instanceof APIConnectionTimeoutError) {
    return new LlmError.Timeout({ ...origin, after: Duration.millis(context.timeoutMs ?? 0) })
  }
  if (cause instanceof APIUserAbortError) {
    return new LlmError.NetworkError({ ...origin, cause: "aborted", detail: "the request was aborted" })
  }
  if (cause instanceof APIConnectionError) return ProviderError.networkError(cause, context)
  if (cause instanceof APIError) {
    const fromBody = bodyError(cause.error)
    const code = cause.type ?? fromBody.type
    const message = cause.apiMessage ?? fromBody.message ?? cause.message
    return ProviderError.fromHttp({
      ...origin,
      status: cause.status ?? statusOfType(code),
      message: clean(message),
      code: code ?? undefined,
      headers: cause.headers,
      now: context.now
    })
  }
  if (cause instanceof SyntaxError) {
    return new LlmError.MalformedResponse({ ...origin, detail: clean(`the body is not valid JSON (${cause.message})`) })
  }
  if (cause instanceof AnthropicError) {
    if (/streaming is required/i.test(cause.message)) {
      return new LlmError.InvalidRequest({ ...origin, message: clean(cause.message) })
    }
    return new LlmError.MalformedResponse({ ...origin, detail: clean(cause.message) })
  }
  if (isRecord(cause) && (cause as { name?: unknown }).name === "AbortError") {
    return new LlmError.NetworkError({ ...origin, cause: "aborted", detail: "the request was aborted" })
  }
  // fetch body errors ("terminated", "other side closed"), DNS, resets.
  return ProviderError.networkError(cause, context)
}
