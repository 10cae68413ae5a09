/**
 * Maps whatever the Bedrock runtime SDK throws — a modeled service exception
 * (`ThrottlingException`, `ValidationException`, …, found by `name`), an
 * unmodeled one (`UnrecognizedClientException`, or `Unknown` when the
 * response lacked `x-amzn-ErrorType`), an exception frame inside a
 * ConverseStream, a transport error of the HTTP/2 handler, a deserialization
 * failure — to one `LlmError`. Every message passes through `redact` first,
 * so a secret can never reach an error.
 *
 * @internal
 */
import { LlmError, ProviderError } from "@switchboard/core"
import { Duration } from "effect"

/** What the mapping needs to know about the call. */
export interface ErrorContext {
  readonly provider: string
  readonly model?: string | undefined
  /** The request timeout that was in force (for `Timeout.after`). */
  readonly timeoutMs?: number | undefined
  /** Secrets to scrub from any text. */
  readonly secrets: ReadonlyArray<string | undefined>
}

interface SdkErrorLike {
  readonly name?: unknown
  readonly message?: unknown
  readonly code?: unknown
  readonly $fault?: unknown
  readonly $metadata?: { readonly httpStatusCode?: number | undefined } | undefined
  readonly $response?: { readonly statusCode?: number | undefined; readonly headers?: Record<string, string> } | undefined
}

const authNames = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
  "InvalidClientTokenId",
  "ExpiredTokenException",
  "ExpiredToken",
  "SignatureDoesNotMatch",
  "CredentialsProviderError",
  "TokenProviderError",
  "NotAuthorized"
])

/**
 * Bedrock's own wordings for a prompt that does not fit, beyond the shared
 * patterns of `ProviderError.isContextLengthMessage`.
 */
const contextPatterns: ReadonlyArray<RegExp> = [
  /too long/i,
  /input tokens exceed/i,
  /exceed(?:s|ed)? (?:the )?context limit/i,
  /max(?:imum)?[_ `]*tokens.*exceed/i
]

/** "The provided model identifier is invalid." — Bedrock's answer for an unknown model id. */
const unknownModel = /model identifier is invalid|model id(?:entifier)? .*(?:not found|invalid)|unknown model/i

const transport = /ECONNRESET|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EPIPE|ETIMEDOUT|socket hang up|Stream closed|NGHTTP2|http2|abnormally aborted|did not get a response|Truncated event message|network|fetch failed|ERR_HTTP2/i
const malformed = /SyntaxError|JSON|checksum|CRC|Deserialization error|Unexpected token|not valid/i

const messageOf = (cause: unknown, secrets: ReadonlyArray<string | undefined>): string => {
  const raw = typeof cause === "object" && cause !== null && "message" in cause
    ? String((cause as { message: unknown }).message)
    : String(cause)
  // The SDK appends a hint about `$response` to deserialization failures; it is noise for callers.
  const text = raw.replace(/\s*Deserialization error: to see the raw response.*$/s, "").trim()
  return ProviderError.redact(text, secrets)
}

const headerValue = (headers: Record<string, string> | undefined, name: string): string | undefined => {
  if (headers === undefined) return undefined
  const direct = headers[name]
  if (direct !== undefined) return direct
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : headers[key]
}

/** The exception name: the SDK's `name`, else the `x-amzn-errortype` header (`Name:namespace`). */
const nameOf = (error: SdkErrorLike): string => {
  const name = typeof error.name === "string" ? error.name : "Error"
  if (name !== "Unknown" && name !== "Error") return name
  const header = headerValue(error.$response?.headers, "x-amzn-errortype")
  return header === undefined ? name : header.split(":")[0]!
}

/**
 * Maps a failure of a Bedrock call to an `LlmError`.
 *
 * @internal
 */
export const toLlmError = (cause: unknown, context: ErrorContext): LlmError.LlmError => {
  if (LlmError.isLlmError(cause)) return cause
  const origin = { provider: context.provider, model: context.model }
  const error = (typeof cause === "object" && cause !== null ? cause : { message: String(cause) }) as SdkErrorLike
  const name = nameOf(error)
  const message = messageOf(cause, context.secrets)
  const detail = message.length > 0 ? message : undefined
  const status = error.$metadata?.httpStatusCode ?? error.$response?.statusCode
  const headers = error.$response?.headers
  const wait = ProviderError.retryAfter(headers)
  const timeoutAfter = Duration.millis(context.timeoutMs ?? 0)
  const code = typeof error.code === "string" ? error.code : undefined

  switch (name) {
    case "ThrottlingException":
    case "throttlingException":
      return new LlmError.RateLimited({
        ...origin,
        retryAfter: wait,
        scope: /tokens/i.test(message) ? "tokens" : /requests/i.test(message) ? "requests" : "unknown",
        source: "provider",
        detail
      })
    case "ServiceUnavailableException":
    case "serviceUnavailableException":
    case "ModelNotReadyException":
      return new LlmError.Overloaded({ ...origin, retryAfter: wait, detail })
    case "ValidationException":
    case "validationException": {
      if (unknownModel.test(message)) return new LlmError.ModelNotFound({ ...origin, detail })
      if (ProviderError.isContextLengthMessage(message) || contextPatterns.some((re) => re.test(message))) {
        return new LlmError.ContextLengthExceeded({ ...origin, ...ProviderError.contextSizes(message), detail })
      }
      return new LlmError.InvalidRequest({ ...origin, message: detail ?? "Bedrock rejected the request (ValidationException)" })
    }
    case "AccessDeniedException":
      return new LlmError.PermissionDenied({ ...origin, detail })
    case "ResourceNotFoundException":
      return new LlmError.ModelNotFound({ ...origin, detail })
    case "ModelTimeoutException":
      return new LlmError.Timeout({ ...origin, after: timeoutAfter })
    case "InternalServerException":
    case "internalServerException":
      return new LlmError.ServerError({ ...origin, status: status ?? 500, detail })
    case "ModelErrorException":
    case "ModelStreamErrorException":
    case "modelStreamErrorException":
      return new LlmError.ServerError({ ...origin, status: status ?? 424, detail })
    case "ServiceQuotaExceededException":
      return new LlmError.QuotaExhausted({ ...origin, detail })
    case "TimeoutError":
      return new LlmError.Timeout({ ...origin, after: timeoutAfter })
    case "AbortError":
      return new LlmError.NetworkError({ ...origin, cause: "aborted", detail: "the request was aborted" })
  }
  if (authNames.has(name) || status === 401) return new LlmError.AuthenticationFailed({ ...origin, detail })
  if (status !== undefined && status >= 400) {
    if (status === 400 && unknownModel.test(message)) return new LlmError.ModelNotFound({ ...origin, detail })
    return ProviderError.fromHttp({ ...origin, status, message: detail, code: name, headers })
  }
  // No HTTP error status: the transport failed, or a body did not parse.
  // The SDK read a 200 body that is not an output object (`null`): malformed, not a network failure.
  if (name === "TypeError" && /^Cannot (read|set) properties of (null|undefined)/.test(message)) {
    return new LlmError.MalformedResponse({ ...origin, detail: `the body is not a Converse output (${message})` })
  }
  if (transport.test(message) || (code !== undefined && transport.test(code))) {
    const found = ProviderError.networkError(cause, { ...origin, secrets: context.secrets })
    return new LlmError.NetworkError({ ...origin, cause: found.cause, detail: detail ?? "connection failed" })
  }
  if (name === "SyntaxError" || malformed.test(name) || malformed.test(message)) {
    return new LlmError.MalformedResponse({ ...origin, detail: detail ?? "the response could not be read" })
  }
  const found = ProviderError.networkError(cause, { ...origin, secrets: context.secrets })
  return new LlmError.NetworkError({ ...origin, cause: found.cause, detail: detail ?? name })
}
