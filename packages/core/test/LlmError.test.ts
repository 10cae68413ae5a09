import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Schema } from "effect"
import { LlmError } from "../src/index.ts"

const at = { provider: "openai", model: "gpt-4o" }

// [error, retryable, fallbackable] — the table of DESIGN.md §5
const table: ReadonlyArray<[LlmError.LlmError, boolean, boolean]> = [
  [new LlmError.RateLimited({ ...at, scope: "requests", source: "provider", retryAfter: Duration.seconds(2) }), true, true],
  [new LlmError.Overloaded({ ...at }), true, true],
  [new LlmError.ServerError({ ...at, status: 502 }), true, true],
  [new LlmError.Timeout({ ...at, after: Duration.seconds(30) }), true, true],
  [new LlmError.NetworkError({ ...at, detail: "ECONNRESET" }), true, true],
  [new LlmError.AuthenticationFailed({ ...at }), false, true],
  [new LlmError.PermissionDenied({ ...at }), false, true],
  [new LlmError.QuotaExhausted({ ...at }), false, true],
  [new LlmError.ModelNotFound({ ...at }), false, true],
  [new LlmError.ContextLengthExceeded({ ...at, limit: 128000, requested: 130000 }), false, true],
  [new LlmError.ContentFiltered({ ...at }), false, false],
  [new LlmError.InvalidRequest({ ...at, message: "temperature: must be between 0 and 2" }), false, false],
  [new LlmError.MalformedResponse({ ...at, detail: "unexpected token" }), true, true],
  [new LlmError.CircuitOpen({ ...at, until: 1_700_000_000_000 }), false, true],
  [new LlmError.BudgetExceeded({ ...at, scope: "global", limitUsd: 1, spentUsd: 0.9, reservedUsd: 0.05 }), false, false],
  [new LlmError.AllProvidersFailed({ provider: "fallback", attempts: [] }), false, false],
  [new LlmError.StreamInterrupted({ ...at, emittedText: "partial", reason: "NetworkError" }), false, false],
  [new LlmError.StructuredOutputError({ ...at, issues: "expected number", text: "{}" }), false, false]
]

describe("LlmError classification", () => {
  for (const [error, retryable, fallbackable] of table) {
    it(`${error._tag} is ${retryable ? "" : "not "}retryable and ${fallbackable ? "" : "does not "}fall back`, () => {
      assert.strictEqual(LlmError.isRetryable(error), retryable)
      assert.strictEqual(LlmError.isFallbackable(error), fallbackable)
      assert.isTrue(LlmError.isLlmError(error))
      assert.instanceOf(error, Error)
      assert.isAbove(error.message.length, 0)
    })
  }

  it("covers every tag of the union", () => {
    const tags = new Set(table.map(([e]) => e._tag))
    assert.strictEqual(tags.size, 18)
  })

  it("reads Retry-After from rate-limit and overload errors only", () => {
    assert.deepStrictEqual(LlmError.retryAfter(table[0]![0]), Duration.seconds(2))
    assert.isUndefined(LlmError.retryAfter(new LlmError.ServerError({ ...at, status: 500 })))
    assert.deepStrictEqual(
      LlmError.retryAfter(new LlmError.Overloaded({ ...at, retryAfter: Duration.millis(1500) })),
      Duration.millis(1500)
    )
  })

  it("messages name the provider and the reason, not the whole request", () => {
    const error = new LlmError.RateLimited({
      ...at,
      scope: "tokens",
      source: "local",
      retryAfter: Duration.millis(250)
    })
    assert.include(error.message, "local rate limit for openai/gpt-4o")
    assert.include(error.message, "tokens")
    assert.include(error.message, "250")
  })

  it("is not fooled by look-alike objects", () => {
    assert.isFalse(LlmError.isLlmError({ _tag: "Custom", retryable: true }))
    assert.isFalse(LlmError.isLlmError(new Error("boom")))
  })

  it.effect("each error can be caught by its tag", () =>
    Effect.gen(function*() {
      for (const [error] of table) {
        const caught = yield* Effect.fail(error).pipe(
          Effect.catchTag(error._tag, (e) => Effect.succeed(e._tag)),
          Effect.catch(() => Effect.succeed("wrong handler"))
        )
        assert.strictEqual(caught, error._tag)
      }
    }))

  it("encodes and decodes through the union schema", () => {
    const encode = Schema.encodeSync(LlmError.LlmError)
    const decode = Schema.decodeUnknownSync(LlmError.LlmError)
    for (const [error] of table) {
      const back = decode(encode(error))
      assert.strictEqual(back._tag, error._tag)
      assert.strictEqual(back.retryable, error.retryable)
    }
  })
})
