import { assert, layer } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Layer } from "effect"
import { OpenAI } from "../src/index.ts"
import { client, generate, llm, recorder, SimLayer, user } from "./support.ts"

const weather = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

layer(SimLayer, { excludeTestServices: true })("OpenAI.model generate", (it) => {
  it.effect("answers with text, usage, finish reason, latency, cost and the raw body", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* generate(llm(client(sim)), user("Say hello"))
      assert.strictEqual(response.provider, "openai")
      assert.strictEqual(response.model, "gpt-4o-mini")
      assert.isTrue(response.text.length > 0)
      assert.deepStrictEqual(response.content, [{ type: "text", text: response.text }])
      assert.strictEqual(response.finishReason, "stop")
      assert.isTrue(response.id.startsWith("chatcmpl-"))
      assert.isTrue(response.usage.inputTokens > 0 && response.usage.outputTokens > 0)
      assert.strictEqual(response.usage.totalTokens, response.usage.inputTokens + response.usage.outputTokens)
      assert.isTrue(response.latencyMs >= 0)
      assert.isTrue(response.costUsd > 0, "priced from the catalog by Llm.make")
      assert.strictEqual(response.attempts.length, 1)
      assert.strictEqual((response.raw as { object: string }).object, "chat.completion")
      assert.strictEqual((response.raw as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, response.text)
    }))

  it.effect("maps system prompts, images, sampling, stop and JSON format onto the Chat Completions body", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      yield* generate(llm(client(sim, { fetch: seen.fetch })), {
        system: "Be brief.",
        messages: [
          { role: "system", content: "Answer in English." },
          {
            role: "user",
            content: [
              { type: "text", text: "What is in these pictures?" },
              { type: "image", url: "https://example.com/cat.png" },
              { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" }
            ]
          },
          { role: "assistant", content: [{ type: "text", text: "A cat." }] },
          { role: "user", content: [{ type: "text", text: "Sure?" }] }
        ],
        temperature: 0.2,
        topP: 0.9,
        seed: 7,
        stop: ["END"],
        maxTokens: 50,
        responseFormat: { type: "json" }
      })
      const body = seen.bodies[0]!
      assert.deepStrictEqual(body["messages"], [
        { role: "system", content: "Be brief." },
        { role: "system", content: "Answer in English." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these pictures?" },
            { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } }
          ]
        },
        { role: "assistant", content: "A cat." },
        { role: "user", content: "Sure?" }
      ])
      assert.strictEqual(body["model"], "gpt-4o-mini")
      assert.strictEqual(body["temperature"], 0.2)
      assert.strictEqual(body["top_p"], 0.9)
      assert.strictEqual(body["seed"], 7)
      assert.deepStrictEqual(body["stop"], ["END"])
      assert.strictEqual(body["max_tokens"], 50)
      assert.isUndefined(body["max_completion_tokens"])
      assert.deepStrictEqual(body["response_format"], { type: "json_object" })
      assert.isUndefined(body["stream"])
    }))

  it.effect("sends a JSON schema response format as json_schema", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const schema = { type: "object", properties: { name: { type: "string" } }, required: ["name"] }
      yield* generate(llm(client(sim, { fetch: seen.fetch })), {
        ...user("Name a city"),
        responseFormat: { type: "json-schema", name: "city", schema, strict: true }
      })
      assert.deepStrictEqual(seen.bodies[0]!["response_format"], {
        type: "json_schema",
        json_schema: { name: "city", schema, strict: true }
      })
    }))

  it.effect("calls a tool, parses its JSON arguments, and round-trips the result", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const model = llm(client(sim, { fetch: seen.fetch }))
      const first = yield* generate(model, {
        ...user("Weather in Paris?"),
        tools: [weather],
        toolChoice: { type: "tool", name: "get_weather" }
      })
      assert.deepStrictEqual(seen.bodies[0]!["tools"], [{ type: "function", function: weather }])
      assert.deepStrictEqual(seen.bodies[0]!["tool_choice"], { type: "function", function: { name: "get_weather" } })
      assert.strictEqual(first.finishReason, "tool-calls")
      assert.strictEqual(first.toolCalls.length, 1)
      const call = first.toolCalls[0]!
      assert.strictEqual(call.name, "get_weather")
      assert.strictEqual(typeof (call.input as { city: unknown }).city, "string")
      assert.deepStrictEqual(first.content, [call])

      const second = yield* generate(model, {
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: [call] },
          { role: "tool", content: [{ type: "tool-result", toolCallId: call.id, output: { tempC: 21 } }] }
        ],
        tools: [weather]
      })
      assert.deepStrictEqual((seen.bodies[1]!["messages"] as Array<unknown>).slice(1), [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: call.id, type: "function", function: { name: "get_weather", arguments: JSON.stringify(call.input) } }]
        },
        { role: "tool", tool_call_id: call.id, content: "{\"tempC\":21}" }
      ])
      assert.strictEqual(second.finishReason, "stop")
      assert.deepStrictEqual(second.toolCalls, [])
      assert.isTrue(second.text.length > 0)
    }))

  it.effect("passes the tool choices auto, none and required through unchanged, and marks failed tool results", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const model = llm(client(sim, { fetch: seen.fetch }))
      const none = yield* generate(model, { ...user("hi"), tools: [weather], toolChoice: "none" })
      yield* generate(model, { ...user("hi"), tools: [weather], toolChoice: "required" })
      yield* generate(model, { ...user("hi"), tools: [weather], toolChoice: "auto" })
      assert.deepStrictEqual(seen.bodies.map((b) => b["tool_choice"]), ["none", "required", "auto"])
      assert.strictEqual(none.toolCalls.length, 0, "tool_choice none gets text")
      yield* generate(model, {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: [{ type: "tool-call", id: "c1", name: "get_weather", input: { city: "X" } }] },
          { role: "tool", content: [{ type: "tool-result", toolCallId: "c1", output: "no such city", isError: true }] }
        ]
      })
      assert.deepStrictEqual((seen.bodies[3]!["messages"] as Array<unknown>)[2], {
        role: "tool",
        tool_call_id: "c1",
        content: "Error: no such city"
      })
    }))

  it.effect("stops at maxTokens with finish reason length", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* generate(llm(client(sim)), { ...user("Tell me a long story"), maxTokens: 3 })
      assert.strictEqual(response.finishReason, "length")
      assert.strictEqual(response.usage.outputTokens, 3)
    }))

  it.effect("sends max_completion_tokens to reasoning models and max_tokens to the others", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const clientLayer = client(sim, { fetch: seen.fetch })
      yield* generate(llm(clientLayer, "o3-mini"), { ...user("hi"), maxTokens: 5 })
      yield* generate(llm(clientLayer, "gpt-4o-mini"), { ...user("hi"), maxTokens: 5 })
      assert.strictEqual(seen.bodies[0]!["max_completion_tokens"], 5)
      assert.isUndefined(seen.bodies[0]!["max_tokens"])
      assert.strictEqual(seen.bodies[1]!["max_tokens"], 5)
      assert.isUndefined(seen.bodies[1]!["max_completion_tokens"])
      assert.isTrue(OpenAI.usesMaxCompletionTokens("openai/o4-mini"))
      assert.isTrue(OpenAI.usesMaxCompletionTokens("gpt-5-mini"))
      assert.isFalse(OpenAI.usesMaxCompletionTokens("gpt-4o"))
      assert.isFalse(OpenAI.usesMaxCompletionTokens("llama-3.3-70b-versatile"))

      const forced = recorder()
      const forcedClient = OpenAI.layerClient({
        apiKey: "sk-test",
        baseURL: `${sim.url}/openai/v1`,
        fetch: forced.fetch,
        maxTokensParameter: "max_completion_tokens"
      })
      yield* generate(llm(forcedClient, "gpt-4o-mini"), { ...user("hi"), maxTokens: 5 })
      assert.strictEqual(forced.bodies[0]!["max_completion_tokens"], 5)
    }))

  it.effect("fills left-out fields from the model's defaults; the request's own values and model win", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const model = OpenAI.model("gpt-4o-mini", { maxTokens: 2, temperature: 0.5 }).pipe(
        Layer.provide(client(sim, { fetch: seen.fetch }))
      )
      const defaulted = yield* generate(model, user("Tell me a story"))
      assert.strictEqual(seen.bodies[0]!["max_tokens"], 2)
      assert.strictEqual(seen.bodies[0]!["temperature"], 0.5)
      assert.strictEqual(defaulted.usage.outputTokens, 2)
      const overridden = yield* generate(model, { ...user("Tell me a story"), maxTokens: 4, model: "gpt-4o" })
      assert.strictEqual(seen.bodies[1]!["max_tokens"], 4)
      assert.strictEqual(seen.bodies[1]!["model"], "gpt-4o")
      assert.strictEqual(seen.bodies[1]!["temperature"], 0.5)
      assert.strictEqual(overridden.model, "gpt-4o")
    }))

  it.effect("reports a content filter as finish reason content-filter", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const returning = OpenAI.model("gpt-4o-mini", undefined, { contentFilter: "return" }).pipe(
        Layer.provide(Layer.orDie(client(sim, { headers: { "x-sim-fault": "content-filter" } })))
      )
      const response = yield* generate(returning, user("hi"))
      assert.strictEqual(response.finishReason, "content-filter")
    }))

  it.effect("by default a content-filter finish fails with ContentFiltered carrying the text, so a Fallback can act on it", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(generate(llm(client(sim, { headers: { "x-sim-fault": "content-filter" } })), user("hi")))
      assert.instanceOf(error, LlmError.ContentFiltered)
      assert.isFalse(error.retryable)
      assert.isString(error.text)
      assert.isAbove(error.text!.length, 0)
    }))

  it.effect("reads the rate-limit headers into rateLimit", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* generate(llm(client(sim, { provider: "limited" })), user("hi"))
      const info = response.rateLimit!
      assert.strictEqual(info.requestsLimit, 1_000)
      assert.strictEqual(info.tokensLimit, 1_000_000)
      assert.isTrue(info.requestsRemaining! < 1_000)
      assert.isTrue(Duration.toMillis(info.requestsReset!) > 0)
    }))

  it.effect("rejects an invalid request before any network call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const error = yield* Effect.flip(generate(llm(client(sim, { fetch: seen.fetch })), { ...user("hi"), temperature: 5 }))
      assert.instanceOf(error, LlmError.InvalidRequest)
      assert.strictEqual(error.field, "temperature")
      assert.strictEqual(seen.bodies.length, 0)
    }))

  it.effect("refuses images in assistant messages with InvalidRequest naming the part", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(generate(llm(client(sim)), {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: [{ type: "image", url: "https://example.com/x.png" }] }
        ]
      }))
      assert.instanceOf(error, LlmError.InvalidRequest)
      assert.strictEqual(error.field, "messages[1].content[0]")
    }))
})
