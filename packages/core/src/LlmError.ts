/**
 * The one error union of Switchboard. Every failure a caller may handle
 * differently is its own tagged class, so `Effect.catchTag("RateLimited", …)`
 * works on any stack. Each carries the `provider` (and `model` where known)
 * and a `retryable` flag; {@link isRetryable} and {@link isFallbackable} are
 * the classifiers every combinator uses.
 *
 * Messages say what happened and what to do; they never hold a secret or a
 * whole prompt.
 *
 * @since 0.1.0
 */
import { Duration, Schema } from "effect"
import { Attempt } from "./LlmResponse.ts"

const origin = {
  provider: Schema.String,
  model: Schema.optional(Schema.String)
}

const where = (self: { readonly provider: string; readonly model?: string | undefined }): string =>
  self.model === undefined ? self.provider : `${self.provider}/${self.model}`

const detailed = (base: string, detail: string | undefined): string =>
  detail === undefined || detail.length === 0 ? base : `${base}: ${detail}`

const after = (retryAfter: Duration.Duration | undefined): string =>
  retryAfter === undefined ? "" : ` (retry after ${Duration.format(retryAfter)})`

/**
 * A provider answered 429, or the local limiter refused the call.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  ...origin,
  retryAfter: Schema.optional(Schema.Duration),
  scope: Schema.Literals(["requests", "tokens", "unknown"]),
  source: Schema.Literals(["provider", "local"]),
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    const who = this.source === "local" ? `local rate limit for ${where(this)}` : `${where(this)} rate limit`
    return detailed(`${who} reached (${this.scope})${after(this.retryAfter)}`, this.detail)
  }
}

/**
 * The provider is overloaded (503, Anthropic 529).
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  ...origin,
  retryAfter: Schema.optional(Schema.Duration),
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    return detailed(`${where(this)} is overloaded${after(this.retryAfter)}`, this.detail)
  }
}

/**
 * The provider failed with a 5xx status.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  ...origin,
  status: Schema.Number,
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    return detailed(`${where(this)} answered ${this.status}`, this.detail)
  }
}

/**
 * The call's deadline passed, or the SDK's request timeout fired.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", {
  ...origin,
  after: Schema.Duration
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    return `${where(this)} timed out after ${Duration.format(this.after)}`
  }
}

/**
 * The connection failed or was cut (reset, DNS, a stream that ended early).
 *
 * @since 0.1.0
 * @category errors
 */
export class NetworkError extends Schema.TaggedError<NetworkError>()("NetworkError", {
  ...origin,
  detail: Schema.String,
  /** What failed: `refused`, `reset`, `dns`, `tls`, `timeout`, `cut` (a stream ended early), `aborted` or `unknown`. */
  cause: Schema.optional(Schema.Literals(["refused", "reset", "dns", "tls", "timeout", "cut", "aborted", "unknown"])),
  /** The URL (scheme, host, port, path; never a query or credentials) the call went to, where known. */
  url: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    const kind = this.cause === undefined || this.cause === "unknown" ? "" : ` (${this.cause})`
    const at = this.url === undefined ? "" : ` at ${this.url}`
    return `network error${kind} talking to ${where(this)}${at}: ${this.detail}`
  }
}

/**
 * The API key was rejected (401). Not retryable: fix the configuration.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationFailed extends Schema.TaggedError<AuthenticationFailed>()("AuthenticationFailed", {
  ...origin,
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return detailed(`${where(this)} rejected the credentials; check the API key`, this.detail)
  }
}

/**
 * The credentials lack permission for this model or region (403).
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()("PermissionDenied", {
  ...origin,
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return detailed(`${where(this)} denied permission`, this.detail)
  }
}

/**
 * The account is out of credit or quota (402, `insufficient_quota`).
 *
 * @since 0.1.0
 * @category errors
 */
export class QuotaExhausted extends Schema.TaggedError<QuotaExhausted>()("QuotaExhausted", {
  ...origin,
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return detailed(`${where(this)} quota exhausted; check the plan and billing`, this.detail)
  }
}

/**
 * The provider does not know the model (404).
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>()("ModelNotFound", {
  ...origin,
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return detailed(`${this.provider} has no model ${this.model ?? "(unnamed)"}`, this.detail)
  }
}

/**
 * The prompt does not fit the model's context window. `Fallback` skips to a
 * child with a larger window.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContextLengthExceeded extends Schema.TaggedError<ContextLengthExceeded>()("ContextLengthExceeded", {
  ...origin,
  limit: Schema.optional(Schema.Number),
  requested: Schema.optional(Schema.Number),
  detail: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    const sizes = this.limit !== undefined || this.requested !== undefined
      ? ` (${this.requested ?? "?"} tokens requested, limit ${this.limit ?? "?"})`
      : ""
    return detailed(`prompt too long for ${where(this)}${sizes}`, this.detail)
  }
}

/**
 * The provider refused or filtered the content.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContentFiltered extends Schema.TaggedError<ContentFiltered>()("ContentFiltered", {
  ...origin,
  detail: Schema.optional(Schema.String),
  /** What the model had written before it stopped, when anything. */
  text: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return detailed(`${where(this)} filtered the content`, this.detail)
  }
}

/**
 * The request itself is wrong (a bad field, or a 400/422 from the provider).
 * `message` names what was wrong. Never retried, never falls back.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  ...origin,
  message: Schema.String,
  field: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
}

/**
 * The provider's answer could not be read (bad JSON, broken SSE, tool input
 * that is not JSON).
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedResponse extends Schema.TaggedError<MalformedResponse>()("MalformedResponse", {
  ...origin,
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly retryable = true
  override get message(): string {
    return `malformed response from ${where(this)}: ${this.detail}`
  }
}

/**
 * A circuit breaker is open for this provider and model: the call was refused
 * without reaching the provider. `until` is the epoch millisecond at which the
 * breaker admits a probe again.
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  ...origin,
  until: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return Number.isFinite(this.until)
      ? `circuit open for ${where(this)} until ${new Date(this.until).toISOString()}`
      : `circuit open for ${where(this)} until the layer is rebuilt (credentials rejected)`
  }
}

/**
 * The budget cannot take this call's worst-case cost. Refused before any
 * provider was called; stops a fallback chain.
 *
 * @since 0.1.0
 * @category errors
 */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  ...origin,
  scope: Schema.String,
  limitUsd: Schema.Number,
  spentUsd: Schema.Number,
  reservedUsd: Schema.Number,
  requestedUsd: Schema.optional(Schema.Number)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    const asked = this.requestedUsd === undefined ? "" : `, this call needs up to $${this.requestedUsd.toFixed(6)}`
    return `budget "${this.scope}" exhausted: $${this.spentUsd.toFixed(6)} spent and $${
      this.reservedUsd.toFixed(6)
    } reserved of $${this.limitUsd.toFixed(6)}${asked}`
  }
}

/**
 * Every child of a fallback chain or router failed. `attempts` lists each
 * one, in order, with its outcome.
 *
 * @since 0.1.0
 * @category errors
 */
export class AllProvidersFailed extends Schema.TaggedError<AllProvidersFailed>()("AllProvidersFailed", {
  ...origin,
  attempts: Schema.Array(Attempt)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    const tried = this.attempts.map((a) => `${a.provider}/${a.model}: ${a.outcome}`).join(", ")
    return `all providers failed (${tried})`
  }
}

/**
 * A stream failed after it had already emitted output, and the fallback
 * policy was `"fail"` (or `"continue"` was not possible). `emittedText` is
 * what the caller already received; `reason` is the tag of the error that cut it.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamInterrupted extends Schema.TaggedError<StreamInterrupted>()("StreamInterrupted", {
  ...origin,
  emittedText: Schema.String,
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return `stream from ${where(this)} failed with ${this.reason} after ${this.emittedText.length} characters of output`
  }
}

/**
 * The model's output did not decode with the requested schema, even after the
 * allowed repairs.
 *
 * @since 0.1.0
 * @category errors
 */
export class StructuredOutputError extends Schema.TaggedError<StructuredOutputError>()("StructuredOutputError", {
  ...origin,
  issues: Schema.String,
  text: Schema.String
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    return `output of ${where(this)} does not match the schema: ${this.issues}`
  }
}

/**
 * One candidate a router could not use, and why (`"no tools"`, `"context
 * window 8192 < 12000 tokens"`, `"circuit open"`, …).
 *
 * @since 0.1.0
 * @category models
 */
export const Rejection = Schema.Struct({ name: Schema.String, reason: Schema.String })

/**
 * A router found no candidate able to serve the request; `rejected` says why
 * for each one. Not retryable: the request or the candidates must change.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoEligibleModel extends Schema.TaggedError<NoEligibleModel>()("NoEligibleModel", {
  ...origin,
  rejected: Schema.Array(Rejection)
}) {
  /** @since 0.1.0 */
  readonly retryable = false
  override get message(): string {
    const why = this.rejected.map((r) => `${r.name}: ${r.reason}`).join("; ")
    return `no eligible model${this.rejected.length === 0 ? " (no candidates)" : ` (${why})`}`
  }
}

/**
 * Any Switchboard error.
 *
 * @since 0.1.0
 * @category models
 */
export type LlmError =
  | RateLimited
  | Overloaded
  | ServerError
  | Timeout
  | NetworkError
  | AuthenticationFailed
  | PermissionDenied
  | QuotaExhausted
  | ModelNotFound
  | ContextLengthExceeded
  | ContentFiltered
  | InvalidRequest
  | MalformedResponse
  | CircuitOpen
  | BudgetExceeded
  | AllProvidersFailed
  | StreamInterrupted
  | StructuredOutputError
  | NoEligibleModel

/**
 * The schema of the union, for encoding errors into logs or across processes.
 *
 * @since 0.1.0
 * @category models
 */
export const LlmError = Schema.Union([
  RateLimited,
  Overloaded,
  ServerError,
  Timeout,
  NetworkError,
  AuthenticationFailed,
  PermissionDenied,
  QuotaExhausted,
  ModelNotFound,
  ContextLengthExceeded,
  ContentFiltered,
  InvalidRequest,
  MalformedResponse,
  CircuitOpen,
  BudgetExceeded,
  AllProvidersFailed,
  StreamInterrupted,
  StructuredOutputError,
  NoEligibleModel
])

/**
 * The tag of any {@link LlmError}.
 *
 * @since 0.1.0
 * @category models
 */
export type Tag = LlmError["_tag"]

const tags: ReadonlySet<string> = new Set<Tag>([
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "NetworkError",
  "AuthenticationFailed",
  "PermissionDenied",
  "QuotaExhausted",
  "ModelNotFound",
  "ContextLengthExceeded",
  "ContentFiltered",
  "InvalidRequest",
  "MalformedResponse",
  "CircuitOpen",
  "BudgetExceeded",
  "AllProvidersFailed",
  "StreamInterrupted",
  "StructuredOutputError",
  "NoEligibleModel"
])

/**
 * True for any value that is one of the {@link LlmError} classes.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLlmError = (u: unknown): u is LlmError =>
  typeof u === "object" && u !== null && "_tag" in u && tags.has((u as { _tag: string })._tag) &&
  "retryable" in u

/**
 * True when the same call may succeed if tried again later (429, 5xx,
 * overload, timeouts, network and malformed-response errors).
 *
 * @since 0.1.0
 * @category guards
 */
export const isRetryable = (error: LlmError): boolean => error.retryable

const notFallbackable: ReadonlySet<Tag> = new Set<Tag>([
  "InvalidRequest",
  "BudgetExceeded",
  "AllProvidersFailed",
  "StreamInterrupted",
  "StructuredOutputError",
  "NoEligibleModel",
  "ContentFiltered"
])

/**
 * True when another provider may succeed where this one failed. A bad request
 * or an exhausted budget would fail anywhere, so they stop a chain; a content
 * filter falls back only when a fallback is configured to (`on`).
 *
 * @since 0.1.0
 * @category guards
 */
export const isFallbackable = (error: LlmError): boolean => !notFallbackable.has(error._tag)

/**
 * The `Retry-After` hint an error carries, if any.
 *
 * @since 0.1.0
 * @category getters
 */
export const retryAfter = (error: LlmError): Duration.Duration | undefined =>
  error._tag === "RateLimited" || error._tag === "Overloaded" ? error.retryAfter : undefined
