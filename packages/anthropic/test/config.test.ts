import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Llm } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { ConfigProvider, Effect, Layer, Redacted, Result } from "effect"
import { Anthropic } from "../src/index.ts"
import { user } from "./helpers.ts"

const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(env))

const buildClient = (env: Record<string, string>) =>
  Effect.result(
    Effect.scoped(Layer.build(Anthropic.layerClientConfig().pipe(Layer.provide(fromEnv(env)))))
  )

describe("layerClientConfig", () => {
  it.effect("a missing ANTHROPIC_API_KEY fails with a ConfigError naming it", () =>
    Effect.gen(function*() {
      const result = yield* buildClient({})
      assert.isTrue(Result.isFailure(result))
      if (!Result.isFailure(result)) return
      assert.strictEqual(result.failure._tag, "ConfigError")
      expect(String(result.failure)).toContain("ANTHROPIC_API_KEY")
    }))

  it.effect("an ANTHROPIC_BASE_URL that is not a URL fails with a ConfigError naming it", () =>
    Effect.gen(function*() {
      const result = yield* buildClient({ ANTHROPIC_API_KEY: "sk-ant-x", ANTHROPIC_BASE_URL: "not a url" })
      assert.isTrue(Result.isFailure(result))
      if (!Result.isFailure(result)) return
      expect(String(result.failure)).toContain("ANTHROPIC_BASE_URL")
      expect(String(result.failure)).not.toContain("sk-ant-x")
    }))

  it.effect("keeps the key Redacted in the client service", () =>
    Effect.gen(function*() {
      const client = yield* Anthropic.AnthropicClient.pipe(
        Effect.provide(Anthropic.layerClientConfig().pipe(Layer.provide(fromEnv({ ANTHROPIC_API_KEY: "sk-ant-secret-123" }))))
      )
      assert.isTrue(Redacted.isRedacted(client.apiKey))
      assert.strictEqual(Redacted.value(client.apiKey), "sk-ant-secret-123")
      expect(String(client.apiKey)).not.toContain("sk-ant-secret-123")
      assert.strictEqual(client.provider, "anthropic")
      assert.strictEqual(client.sdk.maxRetries, 0)
      assert.strictEqual(client.sdk.baseURL, Anthropic.defaultBaseURL)
    }))
})

layer(Sim.layer(), { excludeTestServices: true })("configured clients against the simulator", (it) => {
  it.effect("layerClientConfig reads ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const models = Anthropic.model("claude-haiku-4-5").pipe(
        Layer.provide(Anthropic.layerClientConfig()),
        Layer.provide(fromEnv({ ANTHROPIC_API_KEY: "sk-ant-env", ANTHROPIC_BASE_URL: `${sim.url}/anthropic/` }))
      )
      const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(models))
      assert.strictEqual(response.provider, "anthropic")
      assert.isAbove(response.text.length, 0)
    }))

  it.effect("layerClient accepts a Redacted key and a provider name", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const models = Anthropic.model("claude-haiku-4-5").pipe(
        Layer.provide(Anthropic.layerClient({
          apiKey: Redacted.make("sk-ant-redacted"),
          baseURL: `${sim.url}/anthropic`,
          provider: "anthropic-eu"
        }))
      )
      const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(models))
      assert.strictEqual(response.provider, "anthropic-eu")
      assert.isAbove(response.costUsd, 0) // priced by model name from the catalog
    }))
})
