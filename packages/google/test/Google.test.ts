import { assert, describe, it, layer } from "@effect/vitest"
import { Llm, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Layer, Stream } from "effect"
import { Google } from "../src/index.ts"
import { fault, llm, recorder, simConfig, user, weather } from "./helpers.ts"

type StreamPart = LlmResponse.StreamPart

const collect = (request: LlmRequest.LlmRequest) => Stream.runCollect(Llm.stream(request))

const finishOf = (parts: ReadonlyArray<StreamPart>): LlmResponse.LlmResponse => {
  const last = parts[parts.length - 1]
  if (last?.type !== "finish") throw new Error(`the stream did not end with finish: ${JSON.stringify(last)}`)
  return last.response
}

/** Sends `request` through a recording proxy and returns the body the SDK sent. */
const wire = (
  sim: Sim.SimHandle,
  request: LlmRequest.LlmRequest,
  options: { readonly model?: string; readonly defaults?: Partial<LlmRequest.LlmRequest> } = {}
) =>
  Effect.gen(function*() {
    const proxy = yield* recorder(sim.url)
    const layer = Google.model(options.model ?? "gemini-2.5-flash", options.defaults).pipe(
      Layer.provide(Google.layerClient({ apiKey: "AIza-wire", baseURL: `${proxy.url}/gemini` }))
    )
    const response = yield* Llm.generate(request).pipe(Effect.provide(layer))
    const seen = proxy.seen[proxy.seen.length - 1]!
    return { body: seen.body, seen, response }
  })

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google request mapping (what the SDK sends)", (it) => {
  it.effect("sends request.system and system messages as systemInstruction, roles as user/model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { body } = yield* wire(sim, {
        system: "Be brief.",
        messages: [
          { role: "system", content: "Answer in French." },
          { role: "user", content: "Hi" },
          { role: "assistant", content: "Bonjour" },
          { role: "user", content: [{ type: "text", text: "How " }, { type: "text", text: "are you?" }] }
        ]
      })
      assert.deepStrictEqual(body.systemInstruction, { parts: [{ text: "Be brief." }, { text: "Answer in French." }] })
      // Nothing SDK-only (abortSignal, automaticContinuation, httpOptions) leaks into the body.
      for (const key of Object.keys(body)) {
        assert.include(["contents", "systemInstruction", "generationConfig", "tools", "toolConfig"], key)
      }
      assert.deepStrictEqual(body.contents, [
        { role: "user", parts: [{ text: "Hi" }] },
        { role: "model", parts: [{ text: "Bonjour" }] },
        { role: "user", parts: [{ text: "How " }, { text: "are you?" }] }
      ])
    }))

  it.effect("a request with only a system prompt still sends one user turn", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { body, response } = yield* wire(sim, { system: "Say hi.", messages: [] })
      assert.deepStrictEqual(body.contents, [{ role: "user", parts: [{ text: "Say hi." }] }])
      assert.isUndefined(body.systemInstruction)
      assert.isAbove(response.text.length, 0)
    }))

  it.effect("sends images by URL as fileData and base64 data (or data: URLs) as inlineData", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { body } = yield* wire(sim, {
        messages: [{
          role: "user",
          content: [
            { type: "text", text: "Compare" },
            { type: "image", url: "https://example.com/cat.PNG?size=2" },
            { type: "image", url: "gs://bucket/doc", mediaType: "application/pdf" },
            { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" },
            { type: "image", url: "data:image/jpeg;base64,/9j/4AAQ" }
          ]
        }]
      })
      assert.deepStrictEqual(body.contents[0].parts, [
        { text: "Compare" },
        { fileData: { fileUri: "https://example.com/cat.PNG?size=2", mimeType: "image/png" } },
        { fileData: { fileUri: "gs://bucket/doc", mimeType: "application/pdf" } },
        { inlineData: { data: "iVBORw0KGgo=", mimeType: "image/png" } },
        { inlineData: { data: "/9j/4AAQ", mimeType: "image/jpeg" } }
      ])
    }))

  it.effect("sends tools as functionDeclarations with their JSON Schema, and each tool choice as a calling mode", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const other: LlmRequest.Tool = { name: "time", parameters: { type: "object", properties: {} } }
      const base = { ...user("weather?"), tools: [weather, other] }
      const auto = yield* wire(sim, { ...base, toolChoice: "auto" })
      assert.deepStrictEqual(auto.body.tools, [{
        functionDeclarations: [
          { name: "weather", description: "Current weather in a city", parametersJsonSchema: weather.parameters },
          { name: "time", parametersJsonSchema: other.parameters }
        ]
      }])
      assert.deepStrictEqual(auto.body.toolConfig, { functionCallingConfig: { mode: "AUTO" } })
      const none = yield* wire(sim, { ...base, toolChoice: "none" })
      assert.deepStrictEqual(none.body.toolConfig, { functionCallingConfig: { mode: "NONE" } })
      assert.strictEqual(none.response.toolCalls.length, 0)
      const required = yield* wire(sim, { ...base, toolChoice: "required" })
      assert.deepStrictEqual(required.body.toolConfig, { functionCallingConfig: { mode: "ANY" } })
      const named = yield* wire(sim, { ...base, toolChoice: { type: "tool", name: "time" } })
      assert.deepStrictEqual(named.body.toolConfig, {
        functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["time"] }
      })
      assert.strictEqual(named.response.toolCalls[0]?.name, "time")
      const unset = yield* wire(sim, base)
      assert.isUndefined(unset.body.toolConfig)
    }))

  it.effect("replays assistant tool calls as functionCall and tool results as functionResponse named after the call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { body } = yield* wire(sim, {
        tools: [weather],
        messages: [
          { role: "user", content: "Weather in Paris and Rome?" },
          {
            role: "assistant",
            content: [
              { type: "text", text: "Checking." },
              { type: "tool-call", id: "gemini-call-r1-0", name: "weather", input: { city: "Paris", unit: "c" } },
              { type: "tool-call", id: "fc_provider_id", name: "weather", input: { city: "Rome", unit: "c" } }
            ]
          },
          { role: "tool", content: [{ type: "tool-result", toolCallId: "gemini-call-r1-0", output: { temp: 21 } }] },
          {
            role: "tool",
            content: [{ type: "tool-result", toolCallId: "fc_provider_id", output: "station down", isError: true }]
          }
        ]
      })
      assert.deepStrictEqual(body.contents, [
        { role: "user", parts: [{ text: "Weather in Paris and Rome?" }] },
        {
          role: "model",
          parts: [
            { text: "Checking." },
            { functionCall: { name: "weather", args: { city: "Paris", unit: "c" } } },
            { functionCall: { name: "weather", args: { city: "Rome", unit: "c" }, id: "fc_provider_id" } }
          ]
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "weather", response: { output: { temp: 21 } } } },
            { functionResponse: { name: "weather", response: { error: "station down" }, id: "fc_provider_id" } }
          ]
        }
      ])
    }))

  it.effect("maps sampling, maxTokens, stop sequences and seed to the generation config", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { body, response } = yield* wire(sim, {
        ...user("Count to three"),
        temperature: 0.2,
        topP: 0.9,
        maxTokens: 500,
        stop: ["four", "END"],
        seed: 7
      })
      assert.deepStrictEqual(body.generationConfig, {
        temperature: 0.2,
        topP: 0.9,
        maxOutputTokens: 500,
        stopSequences: ["four", "END"],
        seed: 7
      })
      // The simulator does not apply stop sequences: a stopped turn is reported as "stop".
      assert.strictEqual(response.finishReason, "stop")
    }))

  it.effect("asks for JSON with responseMimeType, and for a schema with responseJsonSchema", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const json = yield* wire(sim, { ...user("a json object"), responseFormat: { type: "json" } })
      assert.deepStrictEqual(json.body.generationConfig, { responseMimeType: "application/json" })
      const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] }
      const typed = yield* wire(sim, {
        ...user("a number"),
        responseFormat: { type: "json-schema", name: "n", schema }
      })
      assert.deepStrictEqual(typed.body.generationConfig, {
        responseMimeType: "application/json",
        responseJsonSchema: schema
      })
      const text = yield* wire(sim, { ...user("plain"), responseFormat: { type: "text" } })
      assert.isUndefined(text.body.generationConfig?.responseMimeType)
    }))

  it.effect("model defaults fill what the request leaves out, and request.model overrides the layer's model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const defaults = { temperature: 0.1, maxTokens: 300, system: "Default system." }
      const filled = yield* wire(sim, user("hi"), { defaults })
      assert.deepStrictEqual(filled.body.generationConfig, { temperature: 0.1, maxOutputTokens: 300 })
      assert.deepStrictEqual(filled.body.systemInstruction, { parts: [{ text: "Default system." }] })
      assert.match(filled.seen.path, /^\/gemini\/v1(beta)?\/models\/gemini-2\.5-flash:generateContent$/)
      const overridden = yield* wire(sim, { ...user("hi"), temperature: 0.9, model: "gemini-3-pro-preview" }, { defaults })
      assert.strictEqual(overridden.body.generationConfig.temperature, 0.9)
      assert.match(overridden.seen.path, /models\/gemini-3-pro-preview:generateContent$/)
      assert.strictEqual(overridden.response.model, "gemini-3-pro-preview")
    }))

  it.effect("sends the API key only in the x-goog-api-key header, never in the URL", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { seen } = yield* wire(sim, user("hi"))
      assert.strictEqual(seen.headers["x-goog-api-key"], "AIza-wire")
      assert.notInclude(seen.path, "AIza-wire")
    }))

  it.effect("passes the time left before the request deadline to the SDK as its timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const { seen } = yield* wire(sim, { ...user("hi"), deadline: 4_500 })
      // The SDK turns its timeout into X-Server-Timeout, in whole seconds.
      assert.strictEqual(seen.headers["x-server-timeout"], "5")
      const none = yield* wire(sim, user("hi"))
      assert.isUndefined(none.seen.headers["x-server-timeout"])
    }))
})

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google responses", (it) => {
  it.effect("returns text, usage, finish reason, cost, latency and the raw body without headers", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("Tell me something")).pipe(Effect.provide(llm(sim)))
      assert.strictEqual(response.provider, "google")
      assert.strictEqual(response.model, "gemini-2.5-flash")
      assert.isAbove(response.text.length, 0)
      assert.deepStrictEqual(response.content, [{ type: "text", text: response.text }])
      assert.strictEqual(response.finishReason, "stop")
      const raw = response.raw as any
      assert.strictEqual(raw.usageMetadata.promptTokenCount, response.usage.inputTokens)
      assert.strictEqual(raw.usageMetadata.candidatesTokenCount, response.usage.outputTokens)
      assert.strictEqual(response.usage.totalTokens, response.usage.inputTokens + response.usage.outputTokens)
      assert.isUndefined(raw.sdkHttpResponse)
      assert.notInclude(JSON.stringify(raw), "AIza")
      assert.strictEqual(response.id, raw.responseId)
      assert.isAbove(response.costUsd, 0)
      assert.isAtLeast(response.latencyMs, 0)
      assert.strictEqual(response.attempts.length, 1)
      // Gemini sends no rate-limit headers.
      assert.isUndefined(response.rateLimit)
    }))

  it.effect("returns a tool call with parsed input and finish reason tool-calls, and the result round-trips", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const first = yield* Llm.generate({ ...user("Weather in Paris?"), tools: [weather] }).pipe(
        Effect.provide(llm(sim))
      )
      assert.strictEqual(first.finishReason, "tool-calls")
      assert.strictEqual(first.toolCalls.length, 1)
      const call = first.toolCalls[0]!
      assert.strictEqual(call.name, "weather")
      assert.deepStrictEqual(Object.keys(call.input as object).sort(), ["city", "unit"])
      assert.strictEqual((call.input as { unit: string }).unit, "c")
      // Gemini sent no id: a stable one is made from the response id and the call's position.
      assert.strictEqual(call.id, `gemini-call-${first.id}-0`)
      assert.deepStrictEqual(first.content, [call])
      const second = yield* Llm.generate({
        tools: [weather],
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: first.content },
          { role: "tool", content: [{ type: "tool-result", toolCallId: call.id, output: { temp: 20 } }] }
        ]
      }).pipe(Effect.provide(llm(sim)))
      assert.strictEqual(second.finishReason, "stop")
      assert.isAbove(second.text.length, 0)
    }))

  it.effect("maxTokens reached → finish reason length", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate({ ...user("Write a long story"), maxTokens: 2 }).pipe(
        Effect.provide(llm(sim))
      )
      assert.strictEqual(response.finishReason, "length")
      assert.strictEqual(response.usage.outputTokens, 2)
    }))

  it.effect("a SAFETY finish → finish reason content-filter", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(llm(sim, { ...fault("content-filter"), contentFilter: "return" })))
      assert.strictEqual(response.finishReason, "content-filter")
      const parts = yield* collect(user("hi")).pipe(Effect.provide(llm(sim, { ...fault("content-filter"), contentFilter: "return" })))
      assert.strictEqual(finishOf(parts).finishReason, "content-filter")
    }))

  it.effect("remembers a Gemini 3 function call's thought signature and sends it back with the call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const proxy = yield* recorder(sim.url)
      const replaying = Google.makeClient({
        apiKey: "AIza-sig",
        baseURL: `${proxy.url}/gemini`,
        headers: { "x-sim-replay": "google/generate-content-tool-call.json" }
      })
      // A second client on the same signature store, as one client would be.
      const client = { ...Google.makeClient({ apiKey: "AIza-sig", baseURL: `${proxy.url}/gemini` }), signatures: replaying.signatures }
      const first = yield* Google.make(replaying, "gemini-3-pro-preview").generate({ ...user("Weather in SF?"), tools: [weather] })
      assert.strictEqual(first.toolCalls[0]?.name, "weather")
      assert.deepStrictEqual(first.toolCalls[0]?.input, { location: "San Francisco" })
      const model = Google.make(client, "gemini-3-pro-preview")
      yield* model.generate({
        tools: [weather],
        messages: [
          { role: "user", content: "Weather in SF?" },
          { role: "assistant", content: first.content },
          { role: "tool", content: [{ type: "tool-result", toolCallId: first.toolCalls[0]!.id, output: { temp: 18 } }] }
        ]
      })
      const sent = proxy.seen[proxy.seen.length - 1]!.body
      assert.strictEqual(
        sent.contents[1].parts[0].thoughtSignature,
        "EskgCsYgAb4+9vtF7/499YQS2bjZs3xcQI+iAl+ILn29nK1j0Kg6su7QsUUUk3nrAAfnS2w5WiVvlcCqu9fAebJ2cvfaEyBahEt5"
      )
      // A call Gemini never made (another provider's) gets Google's documented skip value on Gemini 3.
      const foreign: LlmRequest.LlmRequest = {
        tools: [weather],
        messages: [
          { role: "user", content: "Weather?" },
          { role: "assistant", content: [{ type: "tool-call", id: "call_x", name: "weather", input: {} }] },
          { role: "tool", content: [{ type: "tool-result", toolCallId: "call_x", output: 1 }] }
        ]
      }
      yield* model.generate(foreign)
      assert.strictEqual(proxy.seen[proxy.seen.length - 1]!.body.contents[1].parts[0].thoughtSignature, "skip_thought_signature_validator")
      // Older models get no made-up signature.
      yield* Google.make(client, "gemini-2.5-flash").generate(foreign)
      assert.isUndefined(proxy.seen[proxy.seen.length - 1]!.body.contents[1].parts[0].thoughtSignature)
    }))
})

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google streaming", (it) => {
  it.effect("streams text deltas and ends with a finish part holding the same text as generate", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const request = user("Stream a sentence please")
      const parts = yield* collect(request).pipe(Effect.provide(llm(sim)))
      const deltas = parts.filter((p) => p.type === "text-delta").map((p) => p.type === "text-delta" ? p.text : "")
      assert.isAbove(deltas.length, 1)
      const response = finishOf(parts)
      assert.strictEqual(response.text, deltas.join(""))
      assert.strictEqual(response.finishReason, "stop")
      assert.strictEqual(parts.filter((p) => p.type === "finish").length, 1)
      const whole = yield* Llm.generate(request).pipe(Effect.provide(llm(sim)))
      assert.strictEqual(response.text, whole.text)
      assert.deepStrictEqual(response.usage, whole.usage)
      assert.isAbove(response.costUsd, 0)
    }))

  it.effect("a stream's finish part carries the rate-limit state of the response's headers, as generate's answer does", () =>
    Effect.gen(function*() {
      // A proxy in front of Gemini that sends OpenAI-style x-ratelimit-* headers.
      const chunk = (text: string, finish?: string) =>
        `data: ${
          JSON.stringify({
            candidates: [{ content: { role: "model", parts: [{ text }] }, index: 0, ...(finish ? { finishReason: finish } : {}) }],
            ...(finish ? { usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 } } : {}),
            modelVersion: "gemini-2.5-flash"
          })
        }\r\n\r\n`
      const fetch: typeof globalThis.fetch = () =>
        Promise.resolve(
          new Response(chunk("Hel") + chunk("lo", "STOP"), {
            status: 200,
            headers: {
              "content-type": "text/event-stream",
              "x-ratelimit-limit-requests": "100",
              "x-ratelimit-remaining-requests": "7"
            }
          })
        )
      const layer = Google.model("gemini-2.5-flash").pipe(
        Layer.provide(Layer.orDie(Google.layerClient({ apiKey: "AIza-test", baseURL: "http://gemini.invalid", fetch })))
      )
      const response = finishOf(yield* collect(user("hi")).pipe(Effect.provide(layer)))
      assert.strictEqual(response.text, "Hello")
      assert.deepStrictEqual(response.rateLimit, { requestsLimit: 100, requestsRemaining: 7 })
    }))

  it.effect("streams a tool call as one tool-call-delta whose input matches the final tool call", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const parts = yield* collect({ ...user("Weather in Oslo?"), tools: [weather], toolChoice: "required" }).pipe(
        Effect.provide(llm(sim))
      )
      const delta = parts.find((p) => p.type === "tool-call-delta")
      assert.isDefined(delta)
      const response = finishOf(parts)
      assert.strictEqual(response.finishReason, "tool-calls")
      if (delta?.type === "tool-call-delta") {
        assert.strictEqual(delta.name, "weather")
        assert.strictEqual(delta.id, response.toolCalls[0]!.id)
        assert.deepStrictEqual(JSON.parse(delta.inputDelta), response.toolCalls[0]!.input)
      }
    }))

  it.effect("a stream cut by the server fails with NetworkError, never ends clean", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      for (const plan of ["cut-after=2", "truncate=2"]) {
        const error = yield* Effect.flip(collect(user("Stream a sentence please")).pipe(Effect.provide(llm(sim, fault(plan)))))
        assert.strictEqual(error._tag, "NetworkError", plan)
      }
    }))

  it.effect("an in-band error event fails the stream with the mapped error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen: Array<StreamPart> = []
      const error = yield* Effect.flip(
        Llm.stream(user("Stream a sentence please")).pipe(
          Stream.runForEach((part) => Effect.sync(() => seen.push(part))),
          Effect.provide(llm(sim, fault("stream-error=2")))
        )
      )
      assert.strictEqual(error._tag, "Overloaded")
      assert.strictEqual(seen.filter((p) => p.type === "text-delta").length, 2)
    }))

  it.effect("a malformed stream event fails with MalformedResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(collect(user("Stream a sentence please")).pipe(Effect.provide(llm(sim, fault("malformed")))))
      assert.strictEqual(error._tag, "MalformedResponse")
    }))

  it.effect("an error status before the stream starts fails with the mapped error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        collect(user("hi")).pipe(Effect.provide(llm(sim, fault("status=429;retry-after=3"))))
      )
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") assert.strictEqual(Duration.toMillis(error.retryAfter!), 3000)
    }))
})

describe("Google client", () => {
  it.effect("the client holds the key as Redacted and reports provider google", () =>
    Effect.gen(function*() {
      const c = yield* Google.GoogleClient
      assert.strictEqual(c.provider, "google")
      assert.strictEqual(c.backend, "gemini")
      assert.strictEqual(String(c.apiKey), "<redacted>")
      assert.notInclude(JSON.stringify(c.apiKey), "AIza-client-secret")
    }).pipe(Effect.provide(Google.layerClient({ apiKey: "AIza-client-secret" }))))

  it.effect("name renames the provider in responses and errors", () =>
    Effect.gen(function*() {
      const c = yield* Google.GoogleClient
      assert.strictEqual(c.provider, "gemini-eu")
    }).pipe(Effect.provide(Google.layerClient({ apiKey: "AIza-x", name: "gemini-eu" }))))
})
