/**
 * effect/ai over Switchboard, end to end: Effect's own `LanguageModel`,
 * `Chat`, `Toolkit` and `ExecutionPlan` running on Switchboard stacks of the
 * real OpenAI and Anthropic SDK leaves, against the simulator.
 */
import { assert, describe, it } from "@effect/vitest"
import { Anthropic } from "@switchboard/anthropic"
import { Fallback, LanguageModel as Interop, Llm, type LLM } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, ExecutionPlan, Layer, Ref, Schema, Stream } from "effect"
import { Chat, LanguageModel, Tool, Toolkit } from "effect/ai"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { main as example } from "../examples/effect-ai.ts"

const config = {
  providers: {
    openai: { protocol: "openai" as const, models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
    anthropic: {
      protocol: "anthropic" as const,
      models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }]
    }
  }
}

const openai = (sim: Sim.SimHandle) =>
  OpenAI.model("gpt-4o-mini", { maxTokens: 40 }).pipe(
    Layer.provide(OpenAI.compatible({ name: "openai", baseURL: `${sim.providerUrl("openai")}/v1`, apiKey: "sk-test" }))
  )
const anthropic = (sim: Sim.SimHandle) =>
  Anthropic.model("claude-haiku-4-5", { maxTokens: 40 }).pipe(
    Layer.provide(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: sim.providerUrl("anthropic") }))
  )

/** OpenAI first, Anthropic behind it, the whole stack as effect/ai's LanguageModel. */
const fallbackModel = (sim: Sim.SimHandle) =>
  Interop.toLanguageModel.pipe(Layer.provide(Fallback.layer([openai(sim), anthropic(sim)])))

const outage = (sim: Sim.SimHandle, name: string) =>
  sim.setFaults(name, { outages: [{ status: 503, durationMs: 3_600_000 }] })

const requestsTo = (sim: Sim.SimHandle, provider: string, model: string) =>
  Effect.map(sim.stats, (stats) => {
    const outcomes = stats.providers[provider]?.models[model]?.outcomes ?? {}
    return Object.values(outcomes).reduce((a, b) => a + b, 0)
  })

const GetWeather = Tool.make("GetWeather", {
  description: "The weather in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const GetTime = Tool.make("GetTime", {
  description: "The local time in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const CityTools = Toolkit.make(GetWeather, GetTime)

describe("effect/ai on Switchboard stacks (real SDKs, simulator)", () => {
  it.live("generateText: OpenAI is in an outage, Anthropic answers; the caller sees it only in usage and attempts", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* outage(sim, "openai")
      const response = yield* LanguageModel.generateText({ prompt: "Say hello" }).pipe(
        Effect.provide(fallbackModel(sim))
      )
      assert.isAbove(response.text.length, 0)
      assert.strictEqual(response.finishReason, "stop")
      assert.isAbove(response.usage.inputTokens.total ?? 0, 0)
      assert.isAbove(response.usage.outputTokens.total ?? 0, 0)
      const meta = Interop.metadataOf(response.content)!
      assert.strictEqual(meta.provider, "anthropic")
      assert.deepStrictEqual(meta.attempts.map((a) => `${a.provider}:${a.outcome}`), [
        "openai:Overloaded",
        "anthropic:ok"
      ])
      assert.isAbove(meta.costUsd, 0)
      assert.strictEqual(yield* requestsTo(sim, "openai", "gpt-4o-mini"), 1)
    }))

  it.live("streamText: parts in effect/ai order, with the fallback underneath", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* outage(sim, "openai")
      const parts = yield* LanguageModel.streamText({ prompt: "Tell me a story" }).pipe(
        Stream.runCollect,
        Effect.provide(fallbackModel(sim))
      )
      const types = parts.map((p) => p.type)
      assert.strictEqual(types[0], "text-start")
      const end = types.indexOf("text-end")
      assert.isAbove(end, 1)
      assert.isTrue(types.slice(1, end).every((t) => t === "text-delta"))
      assert.deepStrictEqual(types.slice(end), ["text-end", "response-metadata", "finish"])
      const text = parts.flatMap((p) => p.type === "text-delta" ? [p.delta] : []).join("")
      const finish = parts[parts.length - 1]!
      assert.isTrue(finish.type === "finish" && (finish.usage.outputTokens.total ?? 0) > 0)
      const meta = Interop.metadataOf(parts)!
      assert.strictEqual(meta.provider, "anthropic")
      assert.isAbove(text.length, 0)
    }))

  it.live("streamText with a Toolkit: tool params stream, the tool call is resolved by effect/ai, in order (both SDKs)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const handlers = CityTools.toLayer({
        GetWeather: ({ city }) => Effect.succeed(`sunny in ${city}`),
        GetTime: ({ city }) => Effect.succeed(`noon in ${city}`)
      })
      for (const leaf of [openai(sim), anthropic(sim)]) {
        const parts = yield* LanguageModel.streamText({
          prompt: "Time in Oslo?",
          toolkit: CityTools,
          toolChoice: { tool: "GetTime" }
        }).pipe(
          Stream.runCollect,
          Effect.provide([Interop.toLanguageModel.pipe(Layer.provide(leaf)), handlers])
        )
        const types = parts.map((p) => p.type).filter((t) => t !== "tool-params-delta")
        assert.deepStrictEqual(types, [
          "tool-params-start",
          "tool-params-end",
          "tool-call",
          "response-metadata",
          "tool-result",
          "finish"
        ])
        const start = parts[0]!
        const call = parts.find((p) => p.type === "tool-call")!
        const result = parts.find((p) => p.type === "tool-result")!
        assert.isTrue(start.type === "tool-params-start" && call.type === "tool-call" && start.id === call.id)
        assert.isTrue(start.type === "tool-params-start" && start.name === "GetTime")
        assert.isTrue(call.type === "tool-call" && result.type === "tool-result" && result.id === call.id)
        assert.isTrue(result.type === "tool-result" && typeof result.result === "string" && result.result.startsWith("noon in "))
        const streamed = parts.flatMap((p) => p.type === "tool-params-delta" ? [p.delta] : []).join("")
        assert.deepStrictEqual(JSON.parse(streamed), call.type === "tool-call" ? call.params : undefined)
      }
    }))

  it.live("generateObject with a Schema, through the fallback (Anthropic's forced-tool structured output)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* outage(sim, "openai")
      const Forecast = Schema.Struct({ city: Schema.String, highC: Schema.Finite, tags: Schema.Array(Schema.String) })
      const response = yield* LanguageModel.generateObject({
        prompt: "A forecast for Oslo",
        schema: Forecast,
        objectName: "forecast"
      }).pipe(Effect.provide(fallbackModel(sim)))
      assert.strictEqual(Interop.metadataOf(response.content)?.provider, "anthropic")
      assert.strictEqual(typeof response.value.city, "string")
      assert.strictEqual(response.value.highC, 42)
      assert.strictEqual(response.value.tags.length, 1)
    }))

  it.live("Chat keeps multi-turn history across calls through the stack", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const chat = yield* Chat.fromPrompt([{ role: "system", content: "You are terse." }])
      const model = fallbackModel(sim)
      const first = yield* chat.generateText({ prompt: "Hello" }).pipe(Effect.provide(model))
      const second = yield* chat.generateText({ prompt: "And again" }).pipe(Effect.provide(model))
      const history = yield* Ref.get(chat.history)
      assert.deepStrictEqual(history.content.map((m) => m.role), ["system", "user", "assistant", "user", "assistant"])
      const assistant = history.content[2]!
      assert.strictEqual(
        assistant.role === "assistant" && assistant.content.flatMap((p) => p.type === "text" ? [p.text] : []).join(""),
        first.text
      )
      // The second turn carried the first: it was a longer prompt.
      assert.isAbove(second.usage.inputTokens.total!, first.usage.inputTokens.total!)
    }))

  it.live("Toolkit with two tools through a Chat tool-calling loop", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const calls: Array<string> = []
      const handlers = CityTools.toLayer({
        GetWeather: ({ city }) => Effect.sync(() => (calls.push(`GetWeather(${city})`), `sunny in ${city}`)),
        GetTime: ({ city }) => Effect.sync(() => (calls.push(`GetTime(${city})`), `noon in ${city}`))
      })
      const model = fallbackModel(sim)
      const chat = yield* Chat.empty
      const loop = (prompt: string, tool: "GetWeather" | "GetTime") =>
        Effect.gen(function*() {
          let response = yield* chat.generateText({ prompt, toolkit: CityTools, toolChoice: { tool } })
          let rounds = 1
          while (response.toolCalls.length > 0 && rounds < 5) {
            response = yield* chat.generateText({ prompt: [], toolkit: CityTools })
            rounds++
          }
          return { text: response.text, rounds }
        })
      const weather = yield* loop("What is the weather?", "GetWeather").pipe(Effect.provide([model, handlers]))
      const time = yield* loop("And the time?", "GetTime").pipe(Effect.provide([model, handlers]))
      assert.strictEqual(calls.length, 2)
      assert.match(calls[0]!, /^GetWeather\(/)
      assert.match(calls[1]!, /^GetTime\(/)
      assert.deepStrictEqual([weather.rounds, time.rounds], [2, 2])
      assert.isAbove(time.text.length, 0)
      const history = yield* Ref.get(chat.history)
      assert.deepStrictEqual(history.content.map((m) => m.role), [
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant"
      ])
    }))

  it.live("ExecutionPlan on top: a step whose provider is out falls to the next Switchboard model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { outages: [{ status: 401, durationMs: 3_600_000 }] })
      const plan = ExecutionPlan.make(
        { provide: Interop.model("openai", "gpt-4o-mini").pipe(Layer.provide(openai(sim))), attempts: 2 },
        { provide: Interop.model("anthropic", "claude-haiku-4-5").pipe(Layer.provide(anthropic(sim))) }
      )
      const response = yield* LanguageModel.generateText({ prompt: "hi" }).pipe(Effect.withExecutionPlan(plan))
      assert.strictEqual(Interop.metadataOf(response.content)?.provider, "anthropic")
      assert.strictEqual(yield* requestsTo(sim, "openai", "gpt-4o-mini"), 2)
    }))

  it.live("round trip: fromLanguageModel(toLanguageModel(stack)) answers like the stack", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const stack: Layer.Layer<LLM> = anthropic(sim).pipe(Layer.orDie)
      const roundTrip = Interop.fromLanguageModel({ provider: "anthropic", model: "claude-haiku-4-5" }).pipe(
        Layer.provide(Interop.toLanguageModel),
        Layer.provide(stack)
      )
      const request = { messages: [{ role: "user" as const, content: "Name a colour" }] }
      const direct = yield* Llm.generate(request).pipe(Effect.provide(stack))
      const viaAi = yield* Llm.generate(request).pipe(Effect.provide(roundTrip))
      assert.strictEqual(viaAi.text, direct.text)
      assert.deepStrictEqual(viaAi.usage, direct.usage)
      assert.strictEqual(viaAi.finishReason, direct.finishReason)
      assert.strictEqual(viaAi.costUsd, direct.costUsd)
      const streamed = yield* Llm.stream(request).pipe(Stream.runCollect, Effect.provide(roundTrip))
      const text = streamed.flatMap((p) => p.type === "text-delta" ? [p.text] : []).join("")
      assert.strictEqual(text, direct.text)
      yield* sim.setFaults("anthropic", { script: [{ status: 429, retryAfter: 7 }] })
      const error = yield* Llm.generate(request).pipe(Effect.provide(roundTrip), Effect.flip)
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual(error.provider, "anthropic")
    }))
})

describe("examples/effect-ai.ts", () => {
  it.live("its program answers both questions through tools, Anthropic behind OpenAI's outage", () =>
    Effect.gen(function*() {
      const results = yield* example
      assert.deepStrictEqual(results.map((r) => r.tools), [["GetWeather"], ["GetTime"]])
      for (const r of results) {
        assert.strictEqual(r.answeredBy, "anthropic")
        assert.strictEqual(r.attempts[r.attempts.length - 1], "anthropic:ok")
        assert.isTrue(r.attempts.slice(0, -1).every((a) => a.startsWith("openai:")))
        assert.isAbove(r.answer.length, 0)
      }
    }))

  it("runs as a script with node", () => {
    const script = fileURLToPath(new URL("../examples/effect-ai.ts", import.meta.url))
    const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 50_000 })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.match(result.stdout, /tools GetWeather \| answered by anthropic/)
    assert.match(result.stdout, /tools GetTime \| answered by anthropic/)
  }, 60_000)
})
