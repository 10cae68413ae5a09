import { assert, layer } from "@effect/vitest"
import { Llm, LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { ConfigProvider, Effect, Fiber, Layer, Redacted, Stream } from "effect"
import { OpenAI } from "../src/index.ts"
import { client, eventually, generate, llm, outcomes, recorder, SimLayer, user } from "./support.ts"

const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(env))

layer(SimLayer, { excludeTestServices: true })("OpenAI clients", (it) => {
  it.effect("layerClientConfig reads the key, base URL, organization and project from the environment", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* generate(
        OpenAI.model("gpt-4o-mini").pipe(
          Layer.provide(OpenAI.layerClientConfig()),
          Layer.provide(fromEnv({
            OPENAI_API_KEY: "sk-from-env",
            OPENAI_BASE_URL: `${sim.url}/openai/v1`,
            OPENAI_ORG_ID: "org-123",
            OPENAI_PROJECT_ID: "proj_456"
          }))
        ),
        user("hi")
      )
      assert.strictEqual(response.provider, "openai")
      const service = yield* OpenAI.OpenAIClient.pipe(
        Effect.provide(OpenAI.layerClientConfig()),
        Effect.provide(fromEnv({ OPENAI_API_KEY: "sk-from-env", OPENAI_ORG_ID: "org-123", OPENAI_PROJECT_ID: "proj_456" }))
      )
      assert.isTrue(Redacted.isRedacted(service.apiKey))
      assert.strictEqual(Redacted.value(service.apiKey!), "sk-from-env")
      assert.strictEqual(service.sdk.baseURL, "https://api.openai.com/v1")
      assert.strictEqual(service.sdk.organization, "org-123")
      assert.strictEqual(service.sdk.project, "proj_456")
      assert.strictEqual(service.sdk.maxRetries, 0)
    }))

  it.effect("layerClientConfig fails with a ConfigError naming a missing, empty or bad variable", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(OpenAI.OpenAIClient.pipe(Effect.provide(OpenAI.layerClientConfig()), Effect.provide(fromEnv({}))))
      assert.strictEqual(missing._tag, "ConfigError")
      assert.include(missing.message, "OPENAI_API_KEY")
      const empty = yield* Effect.flip(
        OpenAI.OpenAIClient.pipe(Effect.provide(OpenAI.layerClientConfig()), Effect.provide(fromEnv({ OPENAI_API_KEY: "" })))
      )
      assert.strictEqual(empty._tag, "ConfigError")
      assert.include(empty.message, "OPENAI_API_KEY")
      const badUrl = yield* Effect.flip(OpenAI.OpenAIClient.pipe(
        Effect.provide(OpenAI.layerClientConfig()),
        Effect.provide(fromEnv({ OPENAI_API_KEY: "sk-x", OPENAI_BASE_URL: "not a url" }))
      ))
      assert.strictEqual(badUrl._tag, "ConfigError")
      assert.include(badUrl.message, "OPENAI_BASE_URL")
      assert.notInclude(badUrl.message, "sk-x")
    }))

  it.effect("SDK retries are off: one failing call is one request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      yield* Effect.flip(generate(llm(client(sim, { headers: { "x-sim-fault": "status=500" } }), "gpt-4o"), user("hi")))
      const stats = yield* sim.stats
      assert.strictEqual(stats.providers["openai"]!.models["gpt-4o"]!.requests, 1)
    }))

  it.effect("compatible reports its own name as the provider of responses and errors", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const groq = OpenAI.compatible({ name: "groq", baseURL: `${sim.url}/groq/v1`, apiKey: "gsk-test" })
      const response = yield* generate(OpenAI.model("llama-3.3-70b-versatile").pipe(Layer.provide(groq)), user("hi"))
      assert.strictEqual(response.provider, "groq")
      assert.strictEqual(response.model, "llama-3.3-70b-versatile")
      assert.isTrue(response.text.length > 0)
      const parts = yield* Stream.runCollect(Llm.stream(user("hi"))).pipe(
        Effect.provide(OpenAI.model("llama-3.3-70b-versatile").pipe(Layer.provide(groq)))
      )
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type === "finish" && last.response.provider, "groq")
      const error = yield* Effect.flip(generate(
        OpenAI.model("llama-3.3-70b-versatile").pipe(Layer.provide(OpenAI.compatible({
          name: "groq",
          baseURL: `${sim.url}/groq/v1`,
          apiKey: "gsk-test",
          headers: { "x-sim-fault": "status=429;retry-after=1" }
        }))),
        user("hi")
      ))
      assert.instanceOf(error, LlmError.RateLimited)
      assert.strictEqual(error.provider, "groq")
      assert.strictEqual(error.model, "llama-3.3-70b-versatile")
    }))

  it.effect("compatible needs no key (Ollama) and never forwards OpenAI's organization from the environment", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const before = process.env["OPENAI_ORG_ID"]
      process.env["OPENAI_ORG_ID"] = "org-should-not-leak"
      const response = yield* generate(
        OpenAI.model("llama-3.3-70b-versatile").pipe(
          Layer.provide(OpenAI.compatible({ name: "ollama", baseURL: `${sim.url}/groq/v1`, fetch: seen.fetch }))
        ),
        user("hi")
      ).pipe(Effect.ensuring(Effect.sync(() => {
        if (before === undefined) delete process.env["OPENAI_ORG_ID"]
        else process.env["OPENAI_ORG_ID"] = before
      })))
      assert.strictEqual(response.provider, "ollama")
      assert.isNull(seen.headers[0]!.get("openai-organization"))
    }))

  it.effect("listModels lists the server's models", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const models = yield* OpenAI.listModels.pipe(Effect.provide(client(sim)))
      assert.deepStrictEqual(models.map((m) => m.id), ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "o3-mini", "tiny"])
      assert.strictEqual(models[0]!.ownedBy, "system")
      assert.strictEqual(typeof models[0]!.created, "number")
      const groq = yield* OpenAI.listModels.pipe(
        Effect.provide(OpenAI.compatible({ name: "groq", baseURL: `${sim.url}/groq/v1` }))
      )
      assert.deepStrictEqual(groq.map((m) => m.id), ["llama-3.3-70b-versatile"])
      const denied = yield* Effect.flip(OpenAI.listModels.pipe(Effect.provide(client(sim, { provider: "locked", apiKey: "sk-wrong" }))))
      assert.instanceOf(denied, LlmError.AuthenticationFailed)
      assert.notInclude(JSON.stringify(denied), "sk-wrong")
    }))

  it.effect("interrupting a call aborts its HTTP request: the server sees the client go away", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const fiber = yield* Effect.forkChild(generate(llm(client(sim, { provider: "slow" })), user("hi")))
      yield* eventually(sim.stats, (s) => (s.providers["slow"]?.models["gpt-4o-mini"]?.requests ?? 0) === 1)
      yield* Fiber.interrupt(fiber)
      const seen = yield* eventually(outcomes(sim, "slow", "gpt-4o-mini"), (o) => o["aborted"] === 1)
      assert.deepStrictEqual(seen, { aborted: 1 })
    }))

  it.effect("interrupting a stream before its response arrives aborts its HTTP request at once", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      // The server holds the response (headers too) for 5 s; the abort must not wait for it.
      const model = llm(client(sim, { headers: { "x-sim-fault": "stall-ms=5000" } }), "gpt-4o")
      const fiber = yield* Effect.forkChild(Stream.runDrain(Llm.stream(user("hi"))).pipe(Effect.provide(model)))
      yield* eventually(sim.stats, (s) => (s.providers["openai"]?.models["gpt-4o"]?.requests ?? 0) === 1)
      yield* Effect.forkChild(Fiber.interrupt(fiber))
      const seen = yield* eventually(outcomes(sim, "openai", "gpt-4o"), (o) => o["aborted"] === 1)
      assert.deepStrictEqual(seen, { aborted: 1 })
    }))

  it.effect("a request the client's SDK makes directly (no Switchboard call) goes through its fetch unchanged", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const service = yield* Effect.provide(OpenAI.OpenAIClient, client(sim))
      const completion = yield* Effect.promise(() =>
        service.sdk.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      )
      assert.isString(completion.choices[0]!.message.content)
    }))

  it.effect("dropping a stream early aborts its HTTP request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const model = llm(client(sim, { headers: { "x-sim-fault": "stall-mid-ms=5000;stall-after=2" } }), "gpt-4o")
      const first = yield* Stream.runCollect(Stream.take(Llm.stream(user("Tell me a story")), 1)).pipe(Effect.provide(model))
      assert.strictEqual(first.length, 1)
      const seen = yield* eventually(outcomes(sim, "openai", "gpt-4o"), (o) => o["aborted"] === 1)
      assert.deepStrictEqual(seen, { aborted: 1 })
    }))

  it.effect("interrupting a streaming fiber mid-stream aborts its HTTP request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const model = llm(client(sim, { headers: { "x-sim-fault": "stall-mid-ms=5000;stall-after=2" } }), "gpt-4.1")
      let received = 0
      const fiber = yield* Effect.forkChild(
        Llm.stream(user("Tell me a story")).pipe(
          Stream.runForEach(() => Effect.sync(() => received++)),
          Effect.provide(model)
        )
      )
      yield* eventually(Effect.sync(() => received), (n) => n >= 1)
      yield* Fiber.interrupt(fiber)
      const seen = yield* eventually(outcomes(sim, "openai", "gpt-4.1"), (o) => o["aborted"] === 1)
      assert.deepStrictEqual(seen, { aborted: 1 })
    }))
})
