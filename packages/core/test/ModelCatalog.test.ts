import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { LlmError, ModelCatalog, Pricing, Router, Llm } from "../src/index.ts"

describe("ModelCatalog", () => {
  it.effect("merges listings with Pricing: known models priced, unknown ones flagged priceUnknown, windows from the API", () =>
    Effect.gen(function*() {
      const catalog = yield* ModelCatalog.make({
        sources: [
          { provider: "openai", listModels: Effect.succeed([{ id: "gpt-4o-mini-2024-07-18" }, { id: "brand-new-model" }]) },
          { provider: "google", listModels: Effect.succeed([{ id: "gemini-2.5-flash", inputTokenLimit: 2_000_000, outputTokenLimit: 1_000 }]) }
        ]
      })
      const mini = catalog.lookup("openai", "gpt-4o-mini-2024-07-18")
      const shipped = (yield* Pricing.Pricing).lookup("openai", "gpt-4o-mini")!
      assert.strictEqual(mini?.priceUnknown, false)
      assert.strictEqual(mini?.listed, true)
      assert.strictEqual(mini?.inputPerMillion, shipped.inputPerMillion)
      assert.deepStrictEqual(mini?.capabilities, shipped.capabilities)
      const fresh = catalog.lookup("openai", "brand-new-model")
      assert.deepStrictEqual(fresh, { provider: "openai", model: "brand-new-model", priceUnknown: true, listed: true, contextWindow: undefined, maxOutput: undefined, capabilities: undefined })
      const flash = catalog.lookup("google", "gemini-2.5-flash")
      assert.strictEqual(flash?.contextWindow, 2_000_000)
      assert.strictEqual(flash?.maxOutput, 1_000)
      assert.strictEqual(flash?.priceUnknown, false)
      // the shipped catalog still answers for models nobody listed
      assert.strictEqual(catalog.lookup("anthropic", "claude-haiku-4-5")?.listed, false)
      assert.isUndefined(catalog.lookup("nobody", "nothing"))
      const all = yield* catalog.entries
      assert.isTrue(all.some((e) => e.model === "brand-new-model"))
      assert.isTrue(all.some((e) => e.model === "claude-haiku-4-5"))
    }))

  it.effect("refreshes on its interval; a failing source keeps its last listing and is reported", () =>
    Effect.gen(function*() {
      let listing: ReadonlyArray<{ id: string }> = [{ id: "m1" }]
      let fail = false
      const listModels = Effect.suspend(() =>
        fail
          ? Effect.fail(new LlmError.ServerError({ provider: "local", status: 503 }))
          : Effect.succeed(listing)
      )
      const catalog = yield* ModelCatalog.make({ sources: [{ provider: "local", listModels }], interval: "1 minute" })
      assert.isDefined(catalog.lookup("local", "m1"))
      listing = [{ id: "m1" }, { id: "m2" }]
      assert.isUndefined(catalog.lookup("local", "m2"))
      yield* TestClock.adjust("1 minute")
      assert.isDefined(catalog.lookup("local", "m2"))
      fail = true
      yield* TestClock.adjust("1 minute")
      assert.isDefined(catalog.lookup("local", "m2"))
      const errors = yield* catalog.errors
      assert.deepStrictEqual(errors.map((e) => `${e.provider}:${e.error._tag}`), ["local:ServerError"])
    }))

  it.effect("a Router in its scope reads it: an unpriced listed model is refused under maxPriceUsd", () =>
    Effect.gen(function*() {
      const unpriced = yield* Llm.makeTest({ provider: "local", model: "m", steps: [{ text: "unpriced" }] })
      const priced = yield* Llm.makeTest({ provider: "openai", model: "m", steps: [{ text: "priced" }] })
      const stack = Router.layer([
        { name: "local", provider: "local", model: "llama-next", layer: unpriced.layer },
        { name: "mini", provider: "openai", model: "gpt-4o-mini", layer: priced.layer }
      ], { strategy: "priority" }).pipe(
        Layer.provide(ModelCatalog.layer({ sources: [{ provider: "local", listModels: Effect.succeed([{ id: "llama-next" }]) }] }))
      )
      const response = yield* Effect.provide(
        Llm.generate({ messages: [{ role: "user", content: "hi" }], maxTokens: 10, routing: { maxPriceUsd: 1 } }),
        stack
      )
      assert.strictEqual(response.text, "priced")
      assert.strictEqual((yield* unpriced.requests).length, 0)
    }))

  it.effect("a bad interval is a SwitchboardConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(ModelCatalog.layer({ interval: -5 })))
      assert.strictEqual(error.path, "ModelCatalog.interval")
    }))
})
