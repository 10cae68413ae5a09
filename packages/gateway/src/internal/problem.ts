/**
 * One protocol-neutral description of a failed gateway call: what went wrong,
 * the HTTP status and the headers. Each wire (OpenAI, Anthropic) renders it
 * in its own error shape.
 */
import { Duration } from "effect"
import type { LlmError as Errors } from "@switchboard/core"

type LlmError = Errors.LlmError

/** What kind of failure, in words both protocols have an error type for. */
export type Kind =
  | "invalid_request"
  | "too_large"
  | "authentication"
  | "permission"
  | "not_found"
  | "rate_limit"
  | "budget"
  | "overloaded"
  | "upstream"
  | "timeout"
  | "unavailable"

export interface Problem {
  readonly kind: Kind
  readonly status: number
  readonly message: string
  /** The request field at fault, for `invalid_request`. */
  readonly param?: string | undefined
  /** A machine-readable code (`context_length_exceeded`, `budget_exceeded`, …). */
  readonly code?: string | undefined
  /** For 429 and 503: when to come back, in milliseconds. */
  readonly retryAfterMs?: number | undefined
  /** `false` tells clients that honour `x-should-retry` (the official SDKs) not to retry. */
  readonly shouldRetry?: boolean | undefined
  /** The `LlmError` tag behind it, for logs. */
  readonly error?: string | undefined
}

export const problem = (kind: Kind, status: number, message: string, extra?: Partial<Problem>): Problem => ({
  kind,
  status,
  message,
  ...extra
})

const millisOf = (d: Duration.Duration | undefined): number | undefined =>
  d === undefined ? undefined : Math.max(0, Duration.toMillis(d))

const upstream = (error: LlmError): Problem =>
  problem("upstream", 502, error.message, { code: "upstream_error", error: error._tag })

/**
 * Maps every `LlmError` to a status and kind. Provider-side credential or
 * model problems are the gateway's upstream failing (502), not the caller's.
 */
export const fromLlmError = (error: LlmError, now: number): Problem => {
  switch (error._tag) {
    case "InvalidRequest":
      return problem("invalid_request", 400, error.message, { param: error.field, error: error._tag })
    case "ContextLengthExceeded":
      return problem("invalid_request", 400, error.message, {
        code: "context_length_exceeded",
        param: "messages",
        error: error._tag
      })
    case "ContentFiltered":
      return problem("invalid_request", 400, error.message, { code: "content_filter", error: error._tag })
    case "RateLimited":
      return problem("rate_limit", 429, error.message, {
        code: "rate_limit_exceeded",
        retryAfterMs: millisOf(error.retryAfter) ?? 1000,
        error: error._tag
      })
    case "BudgetExceeded":
      return problem("budget", 429, error.message, {
        code: "budget_exceeded",
        shouldRetry: false,
        error: error._tag
      })
    case "Overloaded":
      return problem("overloaded", 503, error.message, {
        code: "overloaded",
        retryAfterMs: millisOf(error.retryAfter) ?? 1000,
        error: error._tag
      })
    case "CircuitOpen":
      return problem("unavailable", 503, error.message, {
        code: "circuit_open",
        retryAfterMs: Number.isFinite(error.until) ? Math.max(0, error.until - now) : undefined,
        error: error._tag
      })
    case "NoEligibleModel":
      return problem("unavailable", 503, error.message, { code: "no_eligible_model", error: error._tag })
    case "Timeout":
      return problem("timeout", 504, error.message, { code: "timeout", error: error._tag })
    case "AllProvidersFailed": {
      const outcomes = error.attempts.map((a) => a.outcome)
      if (outcomes.length > 0 && outcomes.every((o) => o === "RateLimited")) {
        return problem("rate_limit", 429, error.message, {
          code: "rate_limit_exceeded",
          retryAfterMs: 1000,
          error: error._tag
        })
      }
      if (outcomes.length > 0 && outcomes.every((o) => o === "Overloaded" || o === "CircuitOpen")) {
        return problem("overloaded", 503, error.message, { code: "overloaded", retryAfterMs: 1000, error: error._tag })
      }
      return problem("upstream", 502, error.message, { code: "all_providers_failed", error: error._tag })
    }
    default:
      return upstream(error)
  }
}

/** The `retry-after` (seconds, rounded up) and `retry-after-ms` headers, and `x-should-retry`. */
export const headersOf = (p: Problem): Record<string, string> => {
  const headers: Record<string, string> = {}
  if (p.retryAfterMs !== undefined) {
    headers["retry-after"] = String(Math.max(1, Math.ceil(p.retryAfterMs / 1000)))
    headers["retry-after-ms"] = String(Math.ceil(p.retryAfterMs))
  }
  if (p.shouldRetry === false) headers["x-should-retry"] = "false"
  return headers
}
