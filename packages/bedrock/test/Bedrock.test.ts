import { assert, layer } from "@effect/vitest"
import { Llm, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Stream } from "effect"
import { Bedrock } from "../src/index.ts"
import { fault, modelLayer, NOVA, user } from "./helpers.ts"

const weather: LlmRequest.Tool = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

const finishOf = (parts: ReadonlyArray<LlmResponse.StreamPart>): LlmResponse.LlmResponse => {
  const last = parts[parts.length - 1]
  assert.strictEqual(last?.type, "finish")
  if (last?.type !== "finish") throw new Error("no finish part")
  return last.response
}

const longSystem = Array.from({ length: 700 }, (_, i) => `rule ${i}: be brief.`).join(" ")

layer(Sim.layer(), { excludeTestServices: true })("Bedrock against the simulator", (it) => {
  it.effect("answers text with Converse usage, a stop finish and the request id", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("Say hello")).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(response.provider, "bedrock")
      assert.strictEqual(response.model, NOVA)
      assert.isAbove(response.text.length, 0)
      assert.deepStrictEqual(response.content, [{ type: "text", text: response.text }])
      assert.strictEqual(response.finishReason, "stop")
      assert.isAbove(response.usage.inputTokens, 0)
      assert.isAbove(response.usage.outputTokens, 0)
      assert.strictEqual(response.usage.totalTokens, response.usage.inputTokens + response.usage.outputTokens)
      assert.isAbove(response.costUsd, 0)
      assert.isAbove(response.id.length, 0)
      const raw = response.raw as Record<string, unknown>
      assert.isUndefined(raw.$metadata)
      assert.strictEqual(raw.stopReason, "end_turn")
    }))

  it.effect("round-trips a tool call: the call's input is parsed, the tool result gets a text answer", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const request: LlmRequest.LlmRequest = { ...user("Weather in Paris?"), tools: [weather], toolChoice: "required" }
      const first = yield* Llm.generate(request).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(first.finishReason, "tool-calls")
      assert.strictEqual(first.toolCalls.length, 1)
      const call = first.toolCalls[0]!
      assert.strictEqual(call.name, "get_weather")
      assert.strictEqual(typeof (call.input as { city?: unknown }).city, "string")
      const second = yield* Llm.generate({
        ...request,
        toolChoice: "auto",
        messages: [
          ...request.messages,
          { role: "assistant", content: first.content },
          { role: "tool", content: [{ type: "tool-result", toolCallId: call.id, output: { temperature: 21 } }] }
        ]
      }).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(second.finishReason, "stop")
      assert.strictEqual(second.toolCalls.length, 0)
      assert.isAbove(second.text.length, 0)
    }))

  it.effect("a named tool choice calls that tool", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const other: LlmRequest.Tool = { name: "get_time", parameters: { type: "object", properties: {} } }
      const response = yield* Llm.generate({
        ...user("time?"),
        tools: [weather, other],
        toolChoice: { type: "tool", name: "get_time" }
      }).pipe(Effect.provide(modelLayer(sim)))
      assert.deepStrictEqual(response.toolCalls.map((c) => c.name), ["get_time"])
    }))

  it.effect("maxTokens caps the answer and finishes with length", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate({ ...user("Tell me a long story"), maxTokens: 2 }).pipe(
        Effect.provide(modelLayer(sim))
      )
      assert.strictEqual(response.finishReason, "length")
      assert.strictEqual(response.usage.outputTokens, 2)
    }))

  it.effect("model defaults fill what the request leaves out, and request.model overrides the model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const layer = modelLayer(sim, {}, NOVA, { maxTokens: 1 })
      const capped = yield* Llm.generate(user("Tell me a long story")).pipe(Effect.provide(layer))
      assert.strictEqual(capped.usage.outputTokens, 1)
      const other = yield* Llm.generate({ ...user("hi"), model: "anthropic.claude-3-5-haiku-20241022-v1:0", maxTokens: 3 })
        .pipe(Effect.provide(layer))
      assert.strictEqual(other.model, "anthropic.claude-3-5-haiku-20241022-v1:0")
      assert.strictEqual(other.usage.outputTokens, 3)
    }))

  it.effect("a json-schema response format comes back as JSON text matching the schema, not as a tool call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const request: LlmRequest.LlmRequest = {
        ...user("Describe a city"),
        responseFormat: {
          type: "json-schema",
          name: "city",
          schema: { type: "object", properties: { name: { type: "string" }, size: { type: "integer" } }, required: ["name", "size"] }
        }
      }
      const response = yield* Llm.generate(request).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(response.finishReason, "stop")
      assert.deepStrictEqual(response.toolCalls, [])
      const parsed = JSON.parse(response.text) as { name: unknown; size: unknown }
      assert.strictEqual(typeof parsed.name, "string")
      assert.strictEqual(parsed.size, 42)
      const parts = yield* Stream.runCollect(Llm.stream(request)).pipe(Effect.provide(modelLayer(sim)))
      const streamed = parts.filter((p) => p.type === "text-delta").map((p) => p.type === "text-delta" ? p.text : "").join("")
      assert.deepStrictEqual(JSON.parse(streamed), parsed)
      assert.isFalse(parts.some((p) => p.type === "tool-call-delta"))
      assert.strictEqual(finishOf(parts).text, streamed)
    }))

  it.effect("prompt caching: cache writes then reads are counted inside inputTokens", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      // Bedrock caches only up to a cachePoint: the long system prompt is marked.
      const request: LlmRequest.LlmRequest = {
        messages: [
          { role: "system", content: [{ type: "text", text: longSystem, cache: true }] },
          { role: "user", content: "first question" }
        ]
      }
      const write = yield* Llm.generate(request).pipe(Effect.provide(modelLayer(sim)))
      const read = yield* Llm.generate({ ...request, messages: [...request.messages] }).pipe(
        Effect.provide(modelLayer(sim))
      )
      assert.isAbove(write.usage.cacheWriteTokens, 1000)
      assert.strictEqual(write.usage.cachedInputTokens, 0)
      assert.strictEqual(read.usage.cachedInputTokens, write.usage.cacheWriteTokens)
      assert.strictEqual(read.usage.cacheWriteTokens, 0)
      assert.strictEqual(read.usage.inputTokens, write.usage.inputTokens)
      assert.isAbove(read.usage.inputTokens, read.usage.cachedInputTokens)
    }))

  it.effect("streams text deltas that add up to the finish response, with usage", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const parts = yield* Stream.runCollect(Llm.stream(user("Say hello"))).pipe(Effect.provide(modelLayer(sim)))
      const text = parts.map((p) => p.type === "text-delta" ? p.text : "").join("")
      const response = finishOf(parts)
      assert.isAbove(parts.length, 2)
      assert.strictEqual(response.text, text)
      assert.strictEqual(response.finishReason, "stop")
      assert.isAbove(response.usage.inputTokens, 0)
      assert.strictEqual(response.usage.outputTokens, parts.length - 1)
      const whole = yield* Llm.generate(user("Say hello")).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(whole.text, text)
    }))

  it.effect("streams a tool call: a named start, input deltas, and the parsed input in the finish", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const parts = yield* Stream.runCollect(
        Llm.stream({ ...user("Weather in Paris?"), tools: [weather], toolChoice: "required" })
      ).pipe(Effect.provide(modelLayer(sim)))
      const deltas = parts.filter((p) => p.type === "tool-call-delta")
      assert.isAbove(deltas.length, 1)
      assert.strictEqual(deltas[0]?.type === "tool-call-delta" ? deltas[0].name : undefined, "get_weather")
      const response = finishOf(parts)
      assert.strictEqual(response.finishReason, "tool-calls")
      const json = deltas.map((p) => p.type === "tool-call-delta" ? p.inputDelta : "").join("")
      assert.deepStrictEqual(response.toolCalls[0]?.input, JSON.parse(json))
      assert.strictEqual(response.toolCalls[0]?.id, deltas[0]?.type === "tool-call-delta" ? deltas[0].id : "")
    }))

  it.effect("a content-filtered answer finishes with content-filter, whole and streamed", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const layer = modelLayer(sim, fault("content-filter"), NOVA, undefined, { contentFilter: "return" })
      const response = yield* Llm.generate(user("x")).pipe(Effect.provide(layer))
      assert.strictEqual(response.finishReason, "content-filter")
      const parts = yield* Stream.runCollect(Llm.stream(user("x"))).pipe(Effect.provide(layer))
      assert.strictEqual(finishOf(parts).finishReason, "content-filter")
    }))

  it.effect("lists the foundation models with a SigV4-signed control-plane call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const models = yield* Bedrock.listModels.pipe(Effect.provide(modelLayer(sim)))
      assert.deepStrictEqual(
        models.map((m) => m.id),
        Sim.defaultConfig.providers.bedrock!.models.map((m) => m.id)
      )
      assert.strictEqual(models[0]?.providerName, "Amazon")
      assert.strictEqual(models[0]?.streaming, true)
    }))

  it.effect("the client timeout bounds a stalled call with Timeout { after }", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, { ...fault("stall-ms=3000"), timeout: "200 millis" })))
      )
      assert.strictEqual(error._tag, "Timeout")
      if (error._tag === "Timeout") assert.strictEqual(Duration.toMillis(error.after), 200)
    }))

  it.effect("the client timeout also bounds a stream that goes silent after its first event", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      // Without the bound the stream would finish once the stall ends, and this would not fail.
      const error = yield* Effect.flip(
        Stream.runDrain(Llm.stream(user("x"))).pipe(
          Effect.provide(modelLayer(sim, { ...fault("stall-mid-ms=5000;stall-after=1"), timeout: "300 millis" }))
        )
      )
      assert.strictEqual(error._tag, "Timeout", String(error))
    }))
})
