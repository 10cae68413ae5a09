import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Llm, LlmResponse, Pricing } from "../src/index.ts"

const pricing = Pricing.make(Pricing.shippedCatalog)
const close = (actual: number, expected: number) => assert.closeTo(actual, expected, 1e-12)

describe("Pricing", () => {
  it("prices the OpenAI chat fixture (gpt-4.1-nano-2025-04-14, 16 in / 363 out) at the gpt-4.1-nano rates", () => {
    const usage = LlmResponse.makeUsage({ inputTokens: 16, outputTokens: 363 })
    const cost = pricing.cost("openai", "gpt-4.1-nano-2025-04-14", usage)
    close(cost.costUsd, 16 * 0.1 / 1e6 + 363 * 0.4 / 1e6)
    assert.isFalse(cost.priceUnknown)
  })

  it("bills Anthropic cache reads at the cached rate (fixture: 3 uncached + 1111 cache_read in, 406 out)", () => {
    // Convention: inputTokens counts every prompt token; cached ones are a subset.
    const usage = LlmResponse.makeUsage({ inputTokens: 3 + 1111, cachedInputTokens: 1111, outputTokens: 406 })
    const cost = pricing.cost("anthropic", "claude-sonnet-4-5-20250929", usage)
    close(cost.costUsd, 3 * 3 / 1e6 + 1111 * 0.3 / 1e6 + 406 * 15 / 1e6)
  })

  it("bills Bedrock cache writes at the cache-write rate through a cross-region profile id", () => {
    // bedrock/converse-cache-write: inputTokens 2, cacheWriteInputTokens 1322, outputTokens 5
    const usage = LlmResponse.makeUsage({ inputTokens: 2 + 1322, cacheWriteTokens: 1322, outputTokens: 5 })
    const cost = pricing.cost("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", usage)
    close(cost.costUsd, 2 * 3 / 1e6 + 1322 * 3.75 / 1e6 + 5 * 15 / 1e6)
    assert.isFalse(cost.priceUnknown)
  })

  it("knows Bedrock Nova, Llama and Claude 3.5 ids and the compatible providers", () => {
    for (
      const [provider, model] of [
        ["bedrock", "amazon.nova-micro-v1:0"],
        ["bedrock", "meta.llama3-1-70b-instruct-v1:0"],
        ["bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"],
        ["groq", "llama-3.3-70b-versatile"],
        ["deepseek", "deepseek-chat"],
        ["together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"],
        ["openrouter", "openai/gpt-4o"],
        ["mistral", "mistral-large-latest"],
        ["google", "gemini-2.5-flash"]
      ] as const
    ) {
      assert.isDefined(pricing.lookup(provider, model), `${provider} ${model}`)
    }
  })

  it("matches dated snapshots only at a separator (gpt-4.5 is not priced as gpt-4)", () => {
    assert.strictEqual(pricing.lookup("openai", "gpt-4o-2024-08-06")?.model, "gpt-4o")
    assert.strictEqual(pricing.lookup("openai", "gpt-4o-mini-2024-07-18")?.model, "gpt-4o-mini")
    assert.isUndefined(pricing.lookup("openai", "gpt-4.5-preview"))
  })

  it("prices an unknown model by the explicit rule and says so", () => {
    const usage = LlmResponse.makeUsage({ inputTokens: 1000, outputTokens: 100 })
    const cost = pricing.cost("acme", "mystery-1", usage)
    assert.isTrue(cost.priceUnknown)
    close(cost.costUsd, 1000 * 15 / 1e6 + 100 * 75 / 1e6)
    const custom = Pricing.make(Pricing.shippedCatalog, { inputPerMillion: 1, outputPerMillion: 2, contextWindow: 1000, maxOutput: 10 })
    close(custom.cost("acme", "mystery-1", usage).costUsd, 1000 / 1e6 + 200 / 1e6)
    assert.strictEqual(custom.limits("acme", "mystery-1").maxOutput, 10)
  })

  it("worst case charges input at the dearer of input and cache-write, and output at maxTokens", () => {
    close(pricing.worstCase("anthropic", "claude-sonnet-4-5", 1000, 500).costUsd, 1000 * 3.75 / 1e6 + 500 * 15 / 1e6)
    close(pricing.worstCase("openai", "gpt-4o", 1000, 500).costUsd, 1000 * 2.5 / 1e6 + 500 * 10 / 1e6)
  })

  it.effect("a catalog with a bad entry fails to decode with an error naming the entry and field", () =>
    Effect.gen(function*() {
      const good = Pricing.shippedCatalog[0]!
      const error = yield* Effect.flip(
        Pricing.decodeCatalog([good, { ...good, model: "broken-model", inputPerMillion: -1 }])
      )
      assert.strictEqual(error._tag, "CatalogError")
      assert.strictEqual(error.entry, "[1] broken-model")
      assert.include(error.message, "inputPerMillion")
    }))

  it.effect("responses say priceUnknown for a model outside the catalog, and a layer entry prices it", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ provider: "acme", model: "acme-1", steps: [{ text: "hi", usage: { inputTokens: 1_000_000, outputTokens: 0 } }] })
      const unknown = yield* test.service.generate({ messages: [{ role: "user", content: "x" }] })
      assert.isTrue(unknown.priceUnknown)
      close(unknown.costUsd, 15)
      const known = yield* test.service.generate({ messages: [{ role: "user", content: "x" }] }).pipe(
        Effect.provide(Layer.orDie(Pricing.layer({
          entries: [{
            provider: "acme",
            model: "acme-1",
            inputPerMillion: 2,
            outputPerMillion: 4,
            contextWindow: 1000,
            maxOutput: 100,
            capabilities: { tools: false, vision: false, jsonSchema: false, prefill: false, reasoning: false }
          }]
        })))
      )
      assert.isUndefined(known.priceUnknown)
      close(known.costUsd, 2)
      // The shipped entries are still there.
      const pricingNow = yield* Pricing.Pricing
      assert.isDefined(pricingNow.lookup("openai", "gpt-4o"))
    }))
})
