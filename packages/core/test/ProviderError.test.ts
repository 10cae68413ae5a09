import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import { ProviderError } from "../src/index.ts"

const at = { provider: "openai", model: "gpt-4o" }
const now = Date.parse("2026-04-05T14:28:00Z")

describe("ProviderError.retryAfter", () => {
  it("prefers retry-after-ms", () => {
    assert.deepStrictEqual(ProviderError.retryAfter({ "retry-after-ms": "1500", "retry-after": "9" }), Duration.millis(1500))
  })
  it("reads retry-after in seconds", () => {
    assert.deepStrictEqual(ProviderError.retryAfter({ "Retry-After": "2" }), Duration.millis(2000))
  })
  it("reads retry-after as an HTTP date", () => {
    assert.deepStrictEqual(
      ProviderError.retryAfter({ "retry-after": "Sun, 05 Apr 2026 14:28:30 GMT" }, now),
      Duration.millis(30_000)
    )
  })
  it("reads a Headers object", () => {
    assert.deepStrictEqual(ProviderError.retryAfter(new Headers({ "retry-after": "3" })), Duration.millis(3000))
  })
  it("is undefined without a hint or with garbage", () => {
    assert.isUndefined(ProviderError.retryAfter({}))
    assert.isUndefined(ProviderError.retryAfter({ "retry-after": "soon" }))
  })
})

describe("ProviderError.parseGoDuration", () => {
  it("parses OpenAI reset durations", () => {
    assert.deepStrictEqual(ProviderError.parseGoDuration("6m0s"), Duration.millis(360_000))
    assert.deepStrictEqual(ProviderError.parseGoDuration("17ms"), Duration.millis(17))
    assert.deepStrictEqual(ProviderError.parseGoDuration("1s"), Duration.millis(1000))
    assert.deepStrictEqual(ProviderError.parseGoDuration("1h2m3.5s"), Duration.millis(3_723_500))
    assert.isUndefined(ProviderError.parseGoDuration("tomorrow"))
  })
})

describe("ProviderError.rateLimitInfo", () => {
  it("reads OpenAI x-ratelimit headers (recorded sample)", () => {
    const info = ProviderError.rateLimitInfo({
      "x-ratelimit-limit-requests": "30000",
      "x-ratelimit-limit-tokens": "150000000",
      "x-ratelimit-remaining-requests": "29999",
      "x-ratelimit-remaining-tokens": "149999990",
      "x-ratelimit-reset-requests": "2ms",
      "x-ratelimit-reset-tokens": "0s"
    })
    assert.deepStrictEqual(info, {
      requestsLimit: 30000,
      requestsRemaining: 29999,
      requestsReset: Duration.millis(2),
      tokensLimit: 150000000,
      tokensRemaining: 149999990,
      tokensReset: Duration.millis(0)
    })
  })
  it("reads Anthropic headers with RFC 3339 resets", () => {
    const info = ProviderError.rateLimitInfo({
      "anthropic-ratelimit-requests-limit": "20000",
      "anthropic-ratelimit-requests-remaining": "19999",
      "anthropic-ratelimit-requests-reset": "2026-04-05T14:28:37Z"
    }, now)
    assert.strictEqual(info?.requestsRemaining, 19999)
    assert.deepStrictEqual(info?.requestsReset, Duration.millis(37_000))
  })
  it("is undefined when no rate-limit header is present", () => {
    assert.isUndefined(ProviderError.rateLimitInfo({ "content-type": "application/json" }))
  })
})

describe("ProviderError.fromHttp", () => {
  const cases: ReadonlyArray<[string, ProviderError.HttpFailure, string]> = [
    ["400", { ...at, status: 400, message: "Unsupported parameter: 'stop'" }, "InvalidRequest"],
    ["422", { ...at, status: 422, message: "bad" }, "InvalidRequest"],
    ["401", { ...at, status: 401, message: "Incorrect API key provided" }, "AuthenticationFailed"],
    ["402", { ...at, status: 402 }, "QuotaExhausted"],
    ["403", { ...at, status: 403 }, "PermissionDenied"],
    ["404", { ...at, status: 404, code: "model_not_found" }, "ModelNotFound"],
    ["408", { ...at, status: 408 }, "Timeout"],
    ["429", { ...at, status: 429 }, "RateLimited"],
    ["429 insufficient_quota", { ...at, status: 429, code: "insufficient_quota" }, "QuotaExhausted"],
    ["500", { ...at, status: 500 }, "ServerError"],
    ["502", { ...at, status: 502 }, "ServerError"],
    ["503", { ...at, status: 503 }, "Overloaded"],
    ["529", { ...at, status: 529, code: "overloaded_error" }, "Overloaded"],
    ["504", { ...at, status: 504 }, "Timeout"],
    ["content filter", { ...at, status: 400, code: "content_filter" }, "ContentFiltered"]
  ]
  for (const [name, failure, tag] of cases) {
    it(`maps ${name} to ${tag}`, () => {
      const error = ProviderError.fromHttp(failure)
      assert.strictEqual(error._tag, tag)
      assert.strictEqual(error.provider, "openai")
    })
  }

  it("carries Retry-After on a 429 and reads its scope", () => {
    const error = ProviderError.fromHttp({
      ...at,
      status: 429,
      message: "Rate limit reached for gpt-4.1 in organization org-XXXX on tokens per min (TPM): Limit 30000",
      headers: { "retry-after": "2" }
    })
    assert.strictEqual(error._tag, "RateLimited")
    if (error._tag === "RateLimited") {
      assert.deepStrictEqual(error.retryAfter, Duration.seconds(2))
      assert.strictEqual(error.scope, "tokens")
      assert.strictEqual(error.source, "provider")
    }
  })

  it("uses a body retry hint when no header gives one", () => {
    const error = ProviderError.fromHttp({ ...at, status: 429, retryAfter: Duration.millis(34_400) })
    assert.deepStrictEqual(error._tag === "RateLimited" ? error.retryAfter : undefined, Duration.millis(34_400))
  })

  it("recognises OpenAI context-length errors and reads the sizes", () => {
    const error = ProviderError.fromHttp({
      ...at,
      status: 400,
      code: "context_length_exceeded",
      message:
        "This model's maximum context length is 4097 tokens. However, your messages resulted in 4200 tokens. Please reduce the length of the messages."
    })
    assert.strictEqual(error._tag, "ContextLengthExceeded")
    if (error._tag === "ContextLengthExceeded") {
      assert.strictEqual(error.limit, 4097)
      assert.strictEqual(error.requested, 4200)
    }
  })

  it("recognises Anthropic 'prompt is too long'", () => {
    const error = ProviderError.fromHttp({
      provider: "anthropic",
      status: 400,
      code: "invalid_request_error",
      message: "prompt is too long: 210000 tokens > 200000 maximum"
    })
    assert.strictEqual(error._tag, "ContextLengthExceeded")
    if (error._tag === "ContextLengthExceeded") assert.deepStrictEqual([error.requested, error.limit], [210000, 200000])
  })
})

describe("ProviderError.redact", () => {
  it("removes every occurrence of a secret", () => {
    assert.strictEqual(
      ProviderError.redact("key sk-abc123 rejected (sk-abc123)", ["sk-abc123"]),
      "key <redacted> rejected (<redacted>)"
    )
  })
})
