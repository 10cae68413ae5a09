import { assert, describe, it } from "@effect/vitest"
import { Budget, LanguageModel as Interop, LLM, Llm, LlmError } from "@switchboard/core"
import { Duration, Effect, Layer, Option, Ref, Schema, Stream, Tracer } from "effect"
import { AiError, Chat, LanguageModel, Model, type Prompt, Tool, Toolkit } from "effect/ai"

const origin = { provider: "openai", model: "gpt-4o-mini" }

const fullUsage = {
  inputTokens: 1200,
  outputTokens: 50,
  cachedInputTokens: 1000,
  cacheWriteTokens: 100,
  reasoningTokens: 20,
  totalTokens: 1250
}

const GetWeather = Tool.make("GetWeather", {
  description: "Weather in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const GetTime = Tool.make("GetTime", {
  description: "Time in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const Tools = Toolkit.make(GetWeather, GetTime)
const ToolsLayer = Tools.toLayer({
  GetWeather: ({ city }) => Effect.succeed(`sunny in ${city}`),
  GetTime: ({ city }) => Effect.succeed(`noon in ${city}`)
})

/** A stack that is a scripted test LLM, seen through effect/ai. */
const through = (script: Parameters<typeof Llm.layerTest>[0]) => {
  const test = Llm.layerTest(script)
  return Layer.merge(Interop.toLanguageModel.pipe(Layer.provide(test)), test)
}

const requests = Llm.LlmTest.use((t) => t.requests)

/** One instance of every LlmError tag. */
const everyError: ReadonlyArray<readonly [LlmError.LlmError, string]> = [
  [new LlmError.RateLimited({ ...origin, scope: "requests", source: "provider", retryAfter: Duration.seconds(3) }), "RateLimitError"],
  [new LlmError.Overloaded({ ...origin }), "InternalProviderError"],
  [new LlmError.ServerError({ ...origin, status: 502 }), "InternalProviderError"],
  [new LlmError.Timeout({ ...origin, after: Duration.seconds(5) }), "NetworkError"],
  [new LlmError.NetworkError({ ...origin, detail: "ECONNRESET", cause: "reset", url: "http://x/v1" }), "NetworkError"],
  [new LlmError.AuthenticationFailed({ ...origin }), "AuthenticationError"],
  [new LlmError.PermissionDenied({ ...origin }), "AuthenticationError"],
  [new LlmError.QuotaExhausted({ ...origin }), "QuotaExhaustedError"],
  [new LlmError.ModelNotFound({ ...origin }), "InvalidRequestError"],
  [new LlmError.ContextLengthExceeded({ ...origin, limit: 100, requested: 200 }), "InvalidRequestError"],
  [new LlmError.ContentFiltered({ ...origin }), "ContentPolicyError"],
  [new LlmError.InvalidRequest({ ...origin, field: "temperature", message: "too hot" }), "InvalidRequestError"],
  [new LlmError.MalformedResponse({ ...origin, detail: "not json" }), "InvalidOutputError"],
  [new LlmError.CircuitOpen({ ...origin, until: 1_000 }), "UnknownError"],
  [new LlmError.BudgetExceeded({ ...origin, scope: "global", limitUsd: 1, spentUsd: 1, reservedUsd: 0 }), "QuotaExhaustedError"],
  [new LlmError.AllProvidersFailed({ ...origin, attempts: [{ ...origin, outcome: "ServerError", latencyMs: 3, costUsd: 0 }] }), "UnknownError"],
  [new LlmError.StreamInterrupted({ ...origin, emittedText: "he", reason: "NetworkError" }), "InvalidResponseError"],
  [new LlmError.StructuredOutputError({ ...origin, issues: "missing title", text: "{}" }), "UnknownError"],
  [new LlmError.NoEligibleModel({ rejected: [{ name: "a", reason: "no vision" }], provider: "router" }), "InvalidRequestError"]
]

describe("LanguageModel interop: errors", () => {
  it("covers every LlmError tag", () => {
    assert.deepStrictEqual(
      new Set(everyError.map(([e]) => e._tag)),
      new Set(LlmError.LlmError.members.map((m) => m.fields._tag.schema.literal))
    )
  })

  it.each(everyError)("%s maps to its AiError reason, agrees on isRetryable and comes back exact", (error, reason) => {
    const ai = Interop.toAiError(error)
    assert.strictEqual(ai._tag, "AiError")
    assert.strictEqual(ai.reason._tag, reason)
    assert.strictEqual(ai.isRetryable, error.retryable, `${error._tag}: isRetryable`)
    const back = Interop.fromAiError(ai, { provider: "other", model: "m" })
    assert.strictEqual(back._tag, error._tag)
    assert.strictEqual(back.message, error.message)
    assert.strictEqual(back.retryable, error.retryable)
  })

  it("RateLimited keeps its retryAfter on the AiError", () => {
    const ai = Interop.toAiError(everyError[0]![0])
    assert.strictEqual(Duration.toMillis(ai.retryAfter!), 3_000)
    const back = Interop.fromAiError(ai, origin)
    assert.strictEqual(back._tag === "RateLimited" && Duration.toMillis(back.retryAfter!), 3_000)
  })

  it.each([
    [new AiError.RateLimitError({ retryAfter: Duration.seconds(2) }), "RateLimited"],
    [new AiError.QuotaExhaustedError({}), "QuotaExhausted"],
    [new AiError.AuthenticationError({ kind: "InvalidKey" }), "AuthenticationFailed"],
    [new AiError.AuthenticationError({ kind: "InsufficientPermissions" }), "PermissionDenied"],
    [new AiError.ContentPolicyError({ description: "no" }), "ContentFiltered"],
    [new AiError.InvalidRequestError({ parameter: "temperature" }), "InvalidRequest"],
    [new AiError.InternalProviderError({ description: "boom" }), "ServerError"],
    [new AiError.InternalProviderError({ description: "busy", http: { response: { status: 529, headers: {} } } }), "Overloaded"],
    [new AiError.NetworkError({ reason: "TransportError", method: "POST", url: "http://x" }), "NetworkError"],
    [new AiError.NetworkError({ reason: "InvalidUrlError", method: "POST", url: "::" }), "InvalidRequest"],
    [new AiError.InvalidResponseError({ description: "bad" }), "MalformedResponse"],
    [new AiError.InvalidOutputError({ description: "bad" }), "MalformedResponse"],
    [new AiError.UnsupportedSchemaError({ description: "union" }), "InvalidRequest"],
    [new AiError.UnknownError({}), "ServerError"]
  ] as const)("a foreign %s becomes %s", (reason, tag) => {
    const error = Interop.fromAiError(new AiError.AiError({ module: "X", method: "y", reason }), origin)
    assert.strictEqual(error._tag, tag)
    assert.strictEqual(error.provider, "openai")
  })
})

describe("LanguageModel interop: toLanguageModel", () => {
  it.effect("generateText: text, finish reason, usage with cache reads/writes and reasoning, metadata", () =>
    Effect.gen(function*() {
      const response = yield* LanguageModel.generateText({ prompt: "Say hi" })
      assert.strictEqual(response.text, "Hello!")
      assert.strictEqual(response.finishReason, "stop")
      assert.deepStrictEqual(
        { input: { ...response.usage.inputTokens }, output: { ...response.usage.outputTokens } },
        {
          input: { total: 1200, uncached: 100, cacheRead: 1000, cacheWrite: 100 },
          output: { total: 50, text: 30, reasoning: 20 }
        }
      )
      const meta = response.content.find((p) => p.type === "response-metadata")
      assert.strictEqual(meta?.modelId, "test-model")
      const sb = Interop.metadataOf(response.content)
      assert.strictEqual(sb?.provider, "test")
      assert.deepStrictEqual(sb?.attempts.map((a) => a.outcome), ["ok"])
      const [request] = yield* requests
      assert.deepStrictEqual(request!.messages, [{ role: "user", content: [{ type: "text", text: "Say hi" }] }])
    }).pipe(Effect.provide(through({ steps: [{ text: "Hello!", usage: fullUsage }], provider: "test", model: "test-model" }))))

  it.effect("telemetry: the LanguageModel.generateText span carries GenAI attributes; Llm.attempt spans sit under it", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.NativeSpan> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = new Tracer.NativeSpan(options)
          spans.push(span)
          return span
        }
      })
      yield* LanguageModel.generateText({ prompt: "Say hi" }).pipe(Effect.withTracer(tracer))
      const top = spans.find((s) => s.name === "LanguageModel.generateText")!
      assert.strictEqual(top.attributes.get("gen_ai.provider.name"), "test")
      assert.strictEqual(top.attributes.get("gen_ai.response.model"), "test-model")
      assert.strictEqual(top.attributes.get("gen_ai.usage.input_tokens"), 1200)
      assert.strictEqual(top.attributes.get("llm.attempts"), 1)
      const attempt = spans.find((s) => s.name === "Llm.attempt")!
      const parent = Option.getOrUndefined(attempt.parent)
      assert.strictEqual(parent?._tag === "Span" ? parent.name : undefined, "LanguageModel.generateText")
    }).pipe(Effect.provide(through({ steps: [{ text: "Hello!", usage: fullUsage }], provider: "test", model: "test-model" }))))

  it.effect("prompts: system, user text and image, assistant tool call, tool result map to LlmRequest", () =>
    Effect.gen(function*() {
      yield* LanguageModel.generateText({
        prompt: [
          { role: "system", content: "Be brief." },
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?", options: { switchboard: { cache: true } } },
              { type: "file", mediaType: "image/png", data: "iVBORw0KGgo=" },
              { type: "file", mediaType: "image/jpeg", data: new URL("https://example.com/cat.jpg") }
            ]
          },
          {
            role: "assistant",
            content: [
              { type: "reasoning", text: "hmm" },
              { type: "text", text: "Let me look." },
              { type: "tool-call", id: "c1", name: "GetWeather", params: { city: "Paris" }, providerExecuted: false }
            ]
          },
          {
            role: "tool",
            content: [{ type: "tool-result", id: "c1", name: "GetWeather", result: "sunny", isFailure: false, providerExecuted: false }]
          }
        ]
      })
      const [request] = yield* requests
      assert.strictEqual(request!.system, "Be brief.")
      assert.deepStrictEqual(request!.messages, [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?", cache: true },
            { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" },
            { type: "image", url: "https://example.com/cat.jpg", mediaType: "image/jpeg" }
          ]
        },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me look." },
            { type: "tool-call", id: "c1", name: "GetWeather", input: { city: "Paris" } }
          ]
        },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "c1", output: "sunny", isError: false }] }
      ])
    }).pipe(Effect.provide(through([{ text: "A cat." }]))))

  it.effect("a PDF file part fails with InvalidRequestError naming the part", () =>
    Effect.gen(function*() {
      const error = yield* LanguageModel.generateText({
        prompt: [{ role: "user", content: [{ type: "file", mediaType: "application/pdf", data: "JVBERi0=" }] }]
      }).pipe(Effect.flip)
      assert.strictEqual(error.reason._tag, "InvalidRequestError")
      assert.strictEqual(error.reason._tag === "InvalidRequestError" && error.reason.parameter, "prompt[0].content[0]")
      assert.strictEqual((yield* requests).length, 0)
    }).pipe(Effect.provide(through([{ text: "never" }]))))

  it.effect("generateObject: a Schema becomes a native json-schema response format and the value is decoded", () =>
    Effect.gen(function*() {
      const Article = Schema.Struct({ title: Schema.String, tags: Schema.Array(Schema.String) })
      const response = yield* LanguageModel.generateObject({ prompt: "An article", schema: Article, objectName: "article" })
      assert.deepStrictEqual(response.value, { title: "Launch", tags: ["a", "b"] })
      const [request] = yield* requests
      const format = request!.responseFormat
      assert.strictEqual(format?.type, "json-schema")
      if (format?.type !== "json-schema") return
      assert.strictEqual(format.name, "article")
      assert.deepStrictEqual(Object.keys(format.schema["properties"] as object), ["title", "tags"])
    }).pipe(Effect.provide(through([{ text: `{"title":"Launch","tags":["a","b"]}` }]))))

  it.effect("Toolkit: tools and tool choice are offered, tool calls are run by effect/ai, results go back", () =>
    Effect.gen(function*() {
      const chat = yield* Chat.empty
      const first = yield* chat.generateText({ prompt: "Weather in Paris?", toolkit: Tools, toolChoice: { tool: "GetWeather" } })
      assert.deepStrictEqual(first.toolCalls.map((c) => [c.name, c.params]), [["GetWeather", { city: "Paris" }]])
      assert.deepStrictEqual(first.toolResults.map((r) => r.result), ["sunny in Paris"])
      const second = yield* chat.generateText({ prompt: [], toolkit: Tools, toolChoice: { oneOf: ["GetTime"], mode: "required" } })
      assert.strictEqual(second.text, "It is sunny.")
      const [r1, r2] = yield* requests
      assert.deepStrictEqual(r1!.tools?.map((t) => t.name), ["GetWeather", "GetTime"])
      assert.deepStrictEqual(r1!.toolChoice, { type: "tool", name: "GetWeather" })
      assert.strictEqual(r1!.tools?.[0]?.description, "Weather in a city")
      assert.deepStrictEqual(r2!.tools?.map((t) => t.name), ["GetTime"])
      assert.strictEqual(r2!.toolChoice, "required")
      assert.deepStrictEqual(r2!.messages.slice(1), [
        { role: "assistant", content: [{ type: "tool-call", id: "call_1", name: "GetWeather", input: { city: "Paris" } }] },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "call_1", output: "sunny in Paris", isError: false }] }
      ])
    }).pipe(
      Effect.provide(through([
        { text: "", toolCalls: [{ id: "call_1", name: "GetWeather", input: { city: "Paris" } }], finishReason: "tool-calls" },
        { text: "It is sunny." }
      ])),
      Effect.provide(ToolsLayer)
    ))

  it.effect("errors: an LlmError reaches the effect/ai caller as an AiError with the right reason", () =>
    Effect.gen(function*() {
      const error = yield* LanguageModel.generateText({ prompt: "hi" }).pipe(Effect.flip)
      assert.strictEqual(error.reason._tag, "RateLimitError")
      assert.isTrue(error.isRetryable)
      assert.strictEqual(Duration.toMillis(error.retryAfter!), 50)
      const recovered = yield* LanguageModel.generateText({ prompt: "hi" }).pipe(
        Effect.catchReason("AiError", "RateLimitError", () => Effect.succeed("caught"))
      )
      assert.strictEqual(typeof recovered === "string" ? recovered : recovered.text, "ok")
    }).pipe(Effect.provide(through([
      { error: new LlmError.RateLimited({ ...origin, scope: "requests", source: "provider", retryAfter: Duration.millis(50) }) },
      { text: "ok" }
    ]))))

  it.effect("streamText: parts come in effect/ai order (blocks started and ended, tool-call after its params, finish last)", () =>
    Effect.gen(function*() {
      const response = {
        id: "r1",
        provider: "p",
        model: "m",
        text: "Hi there",
        content: [
          { type: "text" as const, text: "Hi there" },
          { type: "tool-call" as const, id: "t1", name: "GetWeather", input: { city: "Oslo" } }
        ],
        toolCalls: [{ type: "tool-call" as const, id: "t1", name: "GetWeather", input: { city: "Oslo" } }],
        finishReason: "tool-calls" as const,
        usage: fullUsage,
        costUsd: 0,
        latencyMs: 1,
        cached: false,
        attempts: []
      }
      const llm = LLM.of({
        generate: () => Effect.die("unused"),
        stream: () =>
          Stream.make(
            { type: "reasoning-delta" as const, text: "think" },
            { type: "reasoning-delta" as const, text: "ing" },
            { type: "text-delta" as const, text: "Hi" },
            { type: "text-delta" as const, text: " there" },
            { type: "tool-call-delta" as const, id: "t1", name: "GetWeather", inputDelta: "{\"city\":" },
            { type: "tool-call-delta" as const, id: "t1", inputDelta: "\"Oslo\"}" },
            { type: "finish" as const, response }
          )
      })
      const parts = yield* LanguageModel.streamText({ prompt: "hi", toolkit: Tools, disableToolCallResolution: true }).pipe(
        Stream.runCollect,
        Effect.provide(Interop.toLanguageModel.pipe(Layer.provide(Layer.succeed(LLM, llm))))
      )
      assert.deepStrictEqual(parts.map((p) => p.type), [
        "reasoning-start",
        "reasoning-delta",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-delta",
        "text-end",
        "tool-params-start",
        "tool-params-delta",
        "tool-params-delta",
        "tool-params-end",
        "tool-call",
        "response-metadata",
        "finish"
      ])
      const call = (parts as ReadonlyArray<{ readonly type: string; readonly params?: unknown }>).find((p) =>
        p.type === "tool-call"
      )
      assert.deepStrictEqual(call?.params, { city: "Oslo" })
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type === "finish" && last.usage.outputTokens.reasoning, 20)
      assert.strictEqual(Interop.metadataOf(parts)?.model, "m")
    }))

  it.effect("model: provides effect/ai's ProviderName and ModelName beside the LanguageModel", () =>
    Effect.gen(function*() {
      const provider = yield* Model.ProviderName
      const name = yield* Model.ModelName
      assert.deepStrictEqual([provider, name], ["switchboard", "default"])
      assert.strictEqual((yield* LanguageModel.generateText({ prompt: "x" })).text, "y")
    }).pipe(Effect.provide(Interop.model("switchboard", "default").pipe(Layer.provide(Llm.layerTest([{ text: "y" }]))))))
})

describe("LanguageModel interop: fromLanguageModel", () => {
  /** A hand-written effect/ai provider that records what it was asked. */
  const foreign = Effect.gen(function*() {
    const seen = yield* Ref.make<Array<Prompt.Prompt>>([])
    const lm = yield* LanguageModel.make({
      generateText: (options) =>
        Effect.gen(function*() {
          yield* Ref.update(seen, (all) => [...all, options.prompt])
          const last = options.prompt.content[options.prompt.content.length - 1]
          if (last?.role === "user" && last.content.some((p) => p.type === "text" && p.text === "fail")) {
            return yield* new AiError.AiError({
              module: "Foreign",
              method: "generateText",
              reason: new AiError.RateLimitError({ retryAfter: Duration.seconds(1) })
            })
          }
          return [
            { type: "response-metadata", id: "resp-1", modelId: "foreign-model-2025" },
            { type: "text", text: "from foreign" },
            ...(options.tools.length > 0
              ? [{ type: "tool-call" as const, id: "tc", name: options.tools[0]!.name, params: { q: 1 } }]
              : []),
            {
              type: "finish",
              reason: options.tools.length > 0 ? "tool-calls" : "stop",
              usage: {
                inputTokens: { total: 1_000_000, cacheRead: 0, cacheWrite: 0 },
                outputTokens: { total: 1_000_000, reasoning: 10 }
              }
            }
          ]
        }),
      streamText: () =>
        Stream.make(
          { type: "text-start", id: "a" },
          { type: "text-delta", id: "a", delta: "str" },
          { type: "text-delta", id: "a", delta: "eam" },
          { type: "text-end", id: "a" },
          { type: "tool-call", id: "tc", name: "Lookup", params: { q: 2 } },
          { type: "finish", reason: "tool-calls", usage: { inputTokens: { total: 3 }, outputTokens: { total: 4 } } }
        )
    })
    return { seen, layer: Layer.succeed(LanguageModel.LanguageModel, lm) }
  })

  it.effect("answers through Llm.make: text, tool calls, usage priced, errors mapped", () =>
    Effect.gen(function*() {
      const { layer, seen } = yield* foreign
      const leaf = Interop.fromLanguageModel({ provider: "openai", model: "gpt-4o-mini" }).pipe(Layer.provide(layer))
      const response = yield* Llm.generate({
        system: "sys",
        messages: [{ role: "user", content: "hello" }],
        tools: [{ name: "Lookup", description: "look", parameters: { type: "object", properties: { q: { type: "number" } } } }],
        toolChoice: "auto"
      }).pipe(Effect.provide(leaf))
      assert.strictEqual(response.text, "from foreign")
      assert.strictEqual(response.provider, "openai")
      // Reported (and priced) as the configured model, whatever id the foreign provider used.
      assert.strictEqual(response.model, "gpt-4o-mini")
      assert.strictEqual(response.id, "resp-1")
      assert.deepStrictEqual(response.toolCalls, [{ type: "tool-call", id: "tc", name: "Lookup", input: { q: 1 } }])
      assert.strictEqual(response.finishReason, "tool-calls")
      assert.strictEqual(response.usage.inputTokens, 1_000_000)
      assert.strictEqual(response.usage.reasoningTokens, 10)
      assert.deepStrictEqual(response.attempts.map((a) => a.outcome), ["ok"])
      const [prompt] = yield* Ref.get(seen)
      assert.deepStrictEqual(prompt!.content.map((m) => m.role), ["system", "user"])

      const error = yield* Llm.generate({ messages: [{ role: "user", content: "fail" }] }).pipe(
        Effect.provide(leaf),
        Effect.flip
      )
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual(error._tag === "RateLimited" && Duration.toMillis(error.retryAfter!), 1_000)
      assert.isTrue(error.retryable)
    }))

  it.effect("prices the leaf by its provider and model (usage -> Usage)", () =>
    Effect.gen(function*() {
      const { layer } = yield* foreign
      const leaf = Interop.fromLanguageModel({ provider: "openai", model: "gpt-4o-mini" }).pipe(Layer.provide(layer))
      const response = yield* Llm.generate({ messages: [{ role: "user", content: "hello" }], model: "gpt-4o-mini" }).pipe(
        Effect.provide(leaf)
      )
      // A million in and a million out is priced by the catalog, not 0.
      assert.isAbove(response.costUsd, 0)
      assert.isUndefined(response.priceUnknown)
    }))

  it.effect("a Budget over the leaf counts its usage: a report far beyond the worst case is charged and closes the window", () =>
    Effect.gen(function*() {
      const { layer, seen } = yield* foreign
      // The foreign model reports 1M input and 1M output tokens ($0.75 at gpt-4o-mini prices) for a
      // request allowed 100 output tokens: what the provider reports is charged as billed, and a report
      // beyond any worst case closes the budget's window (issue 14), so the second call is refused.
      const leaf = Interop.fromLanguageModel({ provider: "openai", model: "gpt-4o-mini" }).pipe(
        Layer.provide(layer),
        Budget.layer({ limitUsd: 1, window: "day" })
      )
      const ask = Llm.generate({ messages: [{ role: "user", content: "hello" }], model: "gpt-4o-mini", maxTokens: 100 })
      const error = yield* Effect.gen(function*() {
        const first = yield* ask
        assert.closeTo(first.costUsd, 0.75, 1e-9)
        return yield* Effect.flip(ask)
      }).pipe(Effect.provide(leaf))
      assert.strictEqual(error._tag, "BudgetExceeded")
      assert.closeTo(error._tag === "BudgetExceeded" ? error.spentUsd : 0, 0.75, 1e-9)
      assert.strictEqual((yield* Ref.get(seen)).length, 1)
    }))

  it.effect("streams text deltas, a tool call as one delta, and a finish with the whole response", () =>
    Effect.gen(function*() {
      const { layer } = yield* foreign
      const leaf = Interop.fromLanguageModel({ provider: "p", model: "m" }).pipe(Layer.provide(layer))
      const parts = yield* Llm.stream({
        messages: [{ role: "user", content: "s" }],
        tools: [{ name: "Lookup", parameters: { type: "object", properties: { q: { type: "number" } } } }]
      }).pipe(Stream.runCollect, Effect.provide(leaf))
      assert.deepStrictEqual(parts.slice(0, 3), [
        { type: "text-delta", text: "str" },
        { type: "text-delta", text: "eam" },
        { type: "tool-call-delta", id: "tc", name: "Lookup", inputDelta: "{\"q\":2}" }
      ])
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type, "finish")
      if (last.type !== "finish") return
      assert.strictEqual(last.response.text, "stream")
      assert.deepStrictEqual(last.response.toolCalls.map((c) => c.input), [{ q: 2 }])
      assert.strictEqual(last.response.usage.totalTokens, 7)
    }))

  it.effect("an in-band error part ends the leaf's stream with a typed error", () =>
    Effect.gen(function*() {
      const lm = yield* LanguageModel.make({
        generateText: () => Effect.die("unused"),
        streamText: () =>
          Stream.make(
            { type: "text-start", id: "a" },
            { type: "text-delta", id: "a", delta: "par" },
            { type: "error", error: "upstream overloaded" }
          )
      })
      const leaf = Interop.fromLanguageModel({ provider: "p", model: "m" }).pipe(
        Layer.provide(Layer.succeed(LanguageModel.LanguageModel, lm))
      )
      const error = yield* Llm.stream({ messages: [{ role: "user", content: "s" }] }).pipe(
        Stream.runDrain,
        Effect.provide(leaf),
        Effect.flip
      )
      assert.strictEqual(error._tag, "MalformedResponse")
      assert.include(error.message, "upstream overloaded")
    }))

  it.effect("round trip: fromLanguageModel(toLanguageModel(stack)) answers like the stack, errors come back exact", () =>
    Effect.gen(function*() {
      const request = {
        messages: [{ role: "user" as const, content: "hi" }],
        tools: [{ name: "Lookup", parameters: { type: "object", properties: {} } }]
      }
      const script = [
        { text: "Hello!", usage: fullUsage, toolCalls: [{ id: "c9", name: "Lookup", input: { a: 1 } }] },
        { text: "Hello!", usage: fullUsage, toolCalls: [{ id: "c9", name: "Lookup", input: { a: 1 } }] },
        { error: new LlmError.ContextLengthExceeded({ ...origin, limit: 10, requested: 20 }) }
      ]
      const direct = yield* Llm.generate(request).pipe(Effect.provide(Llm.layerTest(script)))
      const roundTrip = Interop.fromLanguageModel(origin).pipe(
        Layer.provide(Interop.toLanguageModel),
        Layer.provide(Llm.layerTest(script))
      )
      const viaAi = yield* Llm.generate(request).pipe(Effect.provide(roundTrip))
      assert.strictEqual(viaAi.text, direct.text)
      assert.deepStrictEqual(viaAi.toolCalls, direct.toolCalls)
      assert.deepStrictEqual(viaAi.usage, direct.usage)
      assert.strictEqual(viaAi.finishReason, direct.finishReason)
      const streamed = yield* Llm.stream(request).pipe(Stream.runCollect, Effect.provide(roundTrip))
      const end = streamed[streamed.length - 1]!
      assert.strictEqual(end.type === "finish" && end.response.text, "Hello!")
      const error = yield* Effect.gen(function*() {
        yield* Llm.generate(request)
        yield* Llm.generate(request)
        return yield* Effect.flip(Llm.generate(request))
      }).pipe(Effect.provide(roundTrip))
      assert.strictEqual(error._tag, "ContextLengthExceeded")
      assert.strictEqual(error._tag === "ContextLengthExceeded" && error.requested, 20)
    }))
})
