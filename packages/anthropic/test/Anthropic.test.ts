import { assert, describe, expect, layer } from "@effect/vitest"
import { Deadline, Llm, type LlmError, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Fiber, Layer, Result, Stream } from "effect"
import { Anthropic } from "../src/index.ts"
import { eventually, GOOD_KEY, llm, outcomes, recorder, simConfig, user } from "./helpers.ts"

const url = Effect.map(Sim.SimServer, (s) => s.url)

const weather = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

const failure = <A>(effect: Effect.Effect<A, LlmError.LlmError>) =>
  Effect.map(Effect.result(effect), (r) => {
    if (Result.isSuccess(r)) throw new Error(`expected a failure, got ${JSON.stringify(r.success).slice(0, 200)}`)
    return r.failure
  })

const collect = (stream: Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError>) =>
  Effect.gen(function*() {
    const parts: Array<LlmResponse.StreamPart> = []
    const result = yield* Effect.result(Stream.runForEach(stream, (part) => Effect.sync(() => void parts.push(part))))
    return { parts, error: Result.isFailure(result) ? result.failure : undefined }
  })

const finishOf = (parts: ReadonlyArray<LlmResponse.StreamPart>) => {
  const last = parts[parts.length - 1]
  if (last === undefined || last.type !== "finish") throw new Error("the stream has no finish part")
  return last.response
}

// Real sockets and real time: the test clock is left out.
layer(Sim.layer(simConfig), { excludeTestServices: true })("Anthropic over the simulator", (it) => {
  describe("request mapping (the JSON the SDK sent)", () => {
    it.effect("joins request.system and role system messages into one top-level system prompt", () =>
      Effect.gen(function*() {
        const rec = recorder()
        yield* Llm.generate({
          system: "Be brief.",
          messages: [
            { role: "system", content: "Answer in English." },
            { role: "user", content: "hi" },
            { role: "system", content: [{ type: "text", text: "No lists." }] }
          ]
        }).pipe(Effect.provide(llm(yield* url, { fetch: rec.fetch })))
        const body = rec.last()
        assert.strictEqual(body.system, "Be brief.\n\nAnswer in English.\n\nNo lists.")
        assert.deepStrictEqual(body.messages, [{ role: "user", content: "hi" }])
      }))

    it.effect("sends text and images (base64 data, data URL and https URL) as content blocks", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const response = yield* Llm.generate({
          messages: [{
            role: "user",
            content: [
              { type: "text", text: "What is in these?" },
              { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" },
              { type: "image", url: "data:image/jpeg;base64,/9j/4AAQ" },
              { type: "image", url: "https://example.com/cat.webp" }
            ]
          }]
        }).pipe(Effect.provide(llm(yield* url, { fetch: rec.fetch })))
        assert.deepStrictEqual(rec.last().messages[0].content, [
          { type: "text", text: "What is in these?" },
          { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
          { type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/4AAQ" } },
          { type: "image", source: { type: "url", url: "https://example.com/cat.webp" } }
        ])
        assert.isAbove(response.text.length, 0)
      }))

    it.effect("sends tools with input_schema and maps each tool choice", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const layer = llm(yield* url, { fetch: rec.fetch })
        const other = { name: "get_time", parameters: { type: "object", properties: {} } }
        const ask = (toolChoice: LlmRequest.ToolChoice) =>
          Llm.generate({ ...user("weather in Paris?"), tools: [weather, other], toolChoice }).pipe(Effect.provide(layer))
        const auto = yield* ask("auto")
        assert.deepStrictEqual(rec.last().tools, [
          { name: "get_weather", description: "Weather for a city", input_schema: weather.parameters },
          { name: "get_time", input_schema: { type: "object", properties: {} } }
        ])
        assert.deepStrictEqual(rec.last().tool_choice, { type: "auto" })
        assert.strictEqual(auto.finishReason, "tool-calls")
        yield* ask("required")
        assert.deepStrictEqual(rec.last().tool_choice, { type: "any" })
        const none = yield* ask("none")
        assert.deepStrictEqual(rec.last().tool_choice, { type: "none" })
        assert.strictEqual(none.toolCalls.length, 0)
        assert.strictEqual(none.finishReason, "stop")
        const named = yield* ask({ type: "tool", name: "get_time" })
        assert.deepStrictEqual(rec.last().tool_choice, { type: "tool", name: "get_time" })
        assert.strictEqual(named.toolCalls[0]?.name, "get_time")
      }))

    it.effect("round-trips a tool call: tool_use and tool_result (with is_error) blocks, then a text answer", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const layer = llm(yield* url, { fetch: rec.fetch })
        const first = yield* Llm.generate({ ...user("weather in Paris?"), tools: [weather] }).pipe(Effect.provide(layer))
        assert.strictEqual(first.finishReason, "tool-calls")
        const call = first.toolCalls[0]!
        assert.strictEqual(call.name, "get_weather")
        assert.isString((call.input as { city: unknown }).city)
        assert.deepStrictEqual(first.content, [call])
        const second = yield* Llm.generate({
          tools: [weather],
          messages: [
            { role: "user", content: "weather in Paris?" },
            { role: "assistant", content: [{ type: "text", text: "Checking." }, call] },
            { role: "tool", content: [{ type: "tool-result", toolCallId: call.id, output: { temp: 21 } }] },
            { role: "tool", content: [{ type: "tool-result", toolCallId: call.id, output: "timeout", isError: true }] }
          ]
        }).pipe(Effect.provide(layer))
        assert.deepStrictEqual(rec.last().messages.slice(1), [
          {
            role: "assistant",
            content: [
              { type: "text", text: "Checking." },
              { type: "tool_use", id: call.id, name: "get_weather", input: call.input }
            ]
          },
          {
            role: "user",
            content: [
              { type: "tool_result", tool_use_id: call.id, content: "{\"temp\":21}" },
              { type: "tool_result", tool_use_id: call.id, content: "timeout", is_error: true }
            ]
          }
        ])
        assert.strictEqual(second.finishReason, "stop")
        assert.strictEqual(second.toolCalls.length, 0)
        assert.isAbove(second.text.length, 0)
      }))

    it.effect("sends stop sequences, temperature and top_p, and no seed (Anthropic has none)", () =>
      Effect.gen(function*() {
        const rec = recorder()
        yield* Llm.generate({ ...user("hi"), stop: ["END", "###"], temperature: 0.3, topP: 0.9, seed: 7 }).pipe(
          Effect.provide(llm(yield* url, { fetch: rec.fetch }))
        )
        const body = rec.last()
        assert.deepStrictEqual(body.stop_sequences, ["END", "###"])
        assert.strictEqual(body.temperature, 0.3)
        assert.strictEqual(body.top_p, 0.9)
        assert.notProperty(body, "seed")
      }))

    it.effect("max_tokens: the request's, else the model defaults', else the catalog's maxOutput, else 4096", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const base = yield* url
        yield* Llm.generate({ ...user("hi"), maxTokens: 77 }).pipe(Effect.provide(llm(base, { fetch: rec.fetch })))
        assert.strictEqual(rec.last().max_tokens, 77)
        yield* Llm.generate(user("hi")).pipe(
          Effect.provide(llm(base, { fetch: rec.fetch, defaults: { maxTokens: 55 } }))
        )
        assert.strictEqual(rec.last().max_tokens, 55)
        yield* Llm.generate(user("hi")).pipe(Effect.provide(llm(base, { fetch: rec.fetch })))
        assert.strictEqual(rec.last().max_tokens, 64_000) // claude-haiku-4-5 in the catalog
        const error = yield* failure(
          Llm.generate(user("hi")).pipe(Effect.provide(llm(base, { fetch: rec.fetch, model: "claude-unknown-9" })))
        )
        assert.strictEqual(rec.last().max_tokens, Anthropic.fallbackMaxTokens)
        assert.strictEqual(error._tag, "ModelNotFound")
      }))

    it.effect("a maxTokens smaller than the answer finishes with length", () =>
      Effect.gen(function*() {
        const response = yield* Llm.generate({ ...user("hi"), maxTokens: 3 }).pipe(Effect.provide(llm(yield* url)))
        assert.strictEqual(response.finishReason, "length")
        assert.strictEqual(response.usage.outputTokens, 3)
      }))

    it.effect("defaults fill what the request leaves out, and request.model overrides the layer's model", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const response = yield* Llm.generate({ ...user("hi"), model: "claude-opus-4-1", temperature: 0.1 }).pipe(
          Effect.provide(llm(yield* url, { fetch: rec.fetch, defaults: { temperature: 0.9, topP: 0.5 } }))
        )
        assert.strictEqual(rec.last().model, "claude-opus-4-1")
        assert.strictEqual(rec.last().temperature, 0.1)
        assert.strictEqual(rec.last().top_p, 0.5)
        assert.strictEqual(response.model, "claude-opus-4-1")
      }))

    it.effect("json response format adds a JSON-only system instruction", () =>
      Effect.gen(function*() {
        const rec = recorder()
        yield* Llm.generate({ ...user("hi"), system: "Be brief.", responseFormat: { type: "json" } }).pipe(
          Effect.provide(llm(yield* url, { fetch: rec.fetch }))
        )
        assert.strictEqual(rec.last().system, `Be brief.\n\n${Anthropic.jsonInstruction}`)
        assert.notProperty(rec.last(), "tools")
      }))

    it.effect("json-schema response format forces a tool whose input is the answer text", () =>
      Effect.gen(function*() {
        const rec = recorder()
        const layer = llm(yield* url, { fetch: rec.fetch })
        const schema = {
          type: "object",
          properties: { title: { type: "string" }, year: { type: "integer" } },
          required: ["title", "year"]
        }
        const request = { ...user("a film"), responseFormat: { type: "json-schema" as const, name: "film", schema } }
        const response = yield* Llm.generate(request).pipe(Effect.provide(layer))
        assert.deepStrictEqual(rec.last().tools, [{
          name: "film",
          description: rec.last().tools[0].description,
          input_schema: schema
        }])
        assert.deepStrictEqual(rec.last().tool_choice, { type: "tool", name: "film" })
        const value = JSON.parse(response.text)
        assert.isString(value.title)
        assert.strictEqual(value.year, 42)
        assert.strictEqual(response.finishReason, "stop")
        assert.deepStrictEqual(response.toolCalls, [])
        assert.deepStrictEqual(response.content, [{ type: "text", text: response.text }])
        const { parts, error } = yield* collect(Llm.stream(request).pipe(Stream.provide(layer)))
        assert.isUndefined(error)
        const deltas = parts.flatMap((p) => (p.type === "text-delta" ? [p.text] : []))
        assert.isAbove(deltas.length, 0)
        assert.strictEqual(deltas.join(""), finishOf(parts).text)
        assert.deepStrictEqual(JSON.parse(finishOf(parts).text), value)
        assert.isFalse(parts.some((p) => p.type === "tool-call-delta"))
      }))
  })

  describe("response mapping", () => {
    it.effect("generate returns text, content, stop, usage, raw body and latency", () =>
      Effect.gen(function*() {
        const response = yield* Llm.generate(user("hello there")).pipe(Effect.provide(llm(yield* url)))
        assert.strictEqual(response.provider, "anthropic")
        assert.strictEqual(response.model, "claude-haiku-4-5")
        assert.match(response.id, /^msg_/)
        assert.isAbove(response.text.length, 0)
        assert.deepStrictEqual(response.content, [{ type: "text", text: response.text }])
        assert.strictEqual(response.finishReason, "stop")
        const raw = response.raw as { usage: { input_tokens: number; output_tokens: number } }
        assert.strictEqual(response.usage.inputTokens, raw.usage.input_tokens)
        assert.strictEqual(response.usage.outputTokens, raw.usage.output_tokens)
        assert.strictEqual(response.usage.totalTokens, response.usage.inputTokens + response.usage.outputTokens)
        assert.isAbove(response.costUsd, 0)
        assert.isAtLeast(response.latencyMs, 0)
        assert.isUndefined(response.rateLimit)
      }))

    it.effect("counts cache reads and writes inside inputTokens (a repeated long prefix)", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url)
        const long = "The quick brown fox jumps over the lazy dog. ".repeat(200)
        const request = (last: string) => ({
          messages: [
            { role: "user" as const, content: [{ type: "text" as const, text: long, cache: true }] },
            { role: "assistant" as const, content: "Noted." },
            { role: "user" as const, content: last }
          ]
        })
        const first = yield* Llm.generate(request("first question")).pipe(Effect.provide(layer))
        const second = yield* Llm.generate(request("second question")).pipe(Effect.provide(layer))
        const rawFirst = (first.raw as any).usage
        const rawSecond = (second.raw as any).usage
        assert.isAbove(first.usage.cacheWriteTokens, 1000)
        assert.strictEqual(first.usage.cacheWriteTokens, rawFirst.cache_creation_input_tokens)
        assert.strictEqual(first.usage.inputTokens, rawFirst.input_tokens + rawFirst.cache_creation_input_tokens)
        assert.isAbove(second.usage.cachedInputTokens, 1000)
        assert.strictEqual(second.usage.inputTokens, rawSecond.input_tokens + rawSecond.cache_read_input_tokens)
        assert.isAbove(second.usage.inputTokens, second.usage.cachedInputTokens)
      }))

    it.effect("streams text deltas that add up to the finish text, with usage from message_start and message_delta", () =>
      Effect.gen(function*() {
        const base = yield* url
        const { parts, error } = yield* collect(Llm.stream(user("tell me")).pipe(Stream.provide(llm(base))))
        assert.isUndefined(error)
        const response = finishOf(parts)
        const text = parts.flatMap((p) => (p.type === "text-delta" ? [p.text] : [])).join("")
        assert.strictEqual(text, response.text)
        assert.strictEqual(response.finishReason, "stop")
        const whole = yield* Llm.generate(user("tell me")).pipe(Effect.provide(llm(base)))
        assert.strictEqual(response.text, whole.text)
        assert.deepStrictEqual(response.usage, whole.usage)
      }))

    it.effect("streams a tool call as tool-call-deltas whose JSON is the finish part's parsed input", () =>
      Effect.gen(function*() {
        const { parts, error } = yield* collect(
          Llm.stream({ ...user("weather?"), tools: [weather] }).pipe(Stream.provide(llm(yield* url)))
        )
        assert.isUndefined(error)
        const response = finishOf(parts)
        const deltas = parts.filter((p) => p.type === "tool-call-delta")
        assert.strictEqual(deltas[0]?.type === "tool-call-delta" && deltas[0].name, "get_weather")
        const json = deltas.map((d) => (d.type === "tool-call-delta" ? d.inputDelta : "")).join("")
        assert.strictEqual(response.finishReason, "tool-calls")
        assert.deepStrictEqual(JSON.parse(json), response.toolCalls[0]!.input)
        assert.strictEqual(response.toolCalls[0]!.id, deltas[0]!.type === "tool-call-delta" ? deltas[0]!.id : "")
      }))

    it.effect("reports rate-limit state from the anthropic-ratelimit-* headers", () =>
      Effect.gen(function*() {
        const base = yield* url
        const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(llm(base, { provider: "anthropic-small" })))
        assert.strictEqual(response.rateLimit?.requestsLimit, 1000)
        assert.isBelow(response.rateLimit!.requestsRemaining!, 1000)
        assert.strictEqual(response.rateLimit?.tokensLimit, 1_000_000)
        assert.isTrue(Duration.toMillis(response.rateLimit!.requestsReset!) <= 60_000)
        const { parts } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(llm(base, { provider: "anthropic-small" }))))
        assert.strictEqual(finishOf(parts).rateLimit?.requestsLimit, 1000)
      }))

    it.effect("a refusal finishes with content-filter", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "content-filter" }, contentFilter: "return" })
        const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(layer))
        assert.strictEqual(response.finishReason, "content-filter")
        const { parts } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))
        assert.strictEqual(finishOf(parts).finishReason, "content-filter")
      }))
  })

  describe("errors", () => {
    const cases: ReadonlyArray<readonly [fault: string, tag: LlmError.LlmError["_tag"], retryAfterMs?: number]> = [
      ["status=400", "InvalidRequest"],
      ["status=401", "AuthenticationFailed"],
      ["status=402", "QuotaExhausted"],
      ["status=403", "PermissionDenied"],
      ["status=404", "ModelNotFound"],
      ["status=413", "InvalidRequest"],
      ["status=422", "InvalidRequest"],
      ["status=429;retry-after=3", "RateLimited", 3000],
      ["status=429", "RateLimited"],
      ["status=500", "ServerError"],
      ["status=502", "ServerError"],
      ["status=503;retry-after=1", "Overloaded", 1000],
      ["status=529;retry-after=2", "Overloaded", 2000],
      ["status=529", "Overloaded"],
      ["status=504", "Timeout"],
      ["status=408", "Timeout"]
    ]
    for (const [fault, tag, retryAfterMs] of cases) {
      it.effect(`x-sim-fault ${fault} fails generate and stream with ${tag}`, () =>
        Effect.gen(function*() {
          const layer = llm(yield* url, { headers: { "x-sim-fault": fault } })
          const errors = [
            yield* failure(Llm.generate(user("hi")).pipe(Effect.provide(layer))),
            (yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))).error!
          ]
          for (const error of errors) {
            assert.strictEqual(error._tag, tag)
            assert.strictEqual((error as { provider: string }).provider, "anthropic")
            const after = "retryAfter" in error ? error.retryAfter : undefined
            assert.strictEqual(after === undefined ? undefined : Duration.toMillis(after), retryAfterMs)
          }
        }))
    }

    it.effect("a 500 keeps its status", () =>
      Effect.gen(function*() {
        const error = yield* failure(
          Llm.generate(user("hi")).pipe(Effect.provide(llm(yield* url, { headers: { "x-sim-fault": "status=502" } })))
        )
        assert.strictEqual(error._tag === "ServerError" && error.status, 502)
      }))

    it.effect("a prompt too long fails with ContextLengthExceeded giving the limit and the requested size", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { provider: "anthropic-small" })
        const error = yield* failure(Llm.generate(user("many words ".repeat(100))).pipe(Effect.provide(layer)))
        assert.strictEqual(error._tag, "ContextLengthExceeded")
        if (error._tag !== "ContextLengthExceeded") return
        assert.strictEqual(error.limit, 60)
        assert.isAbove(error.requested!, 60)
      }))

    it.effect("a rejected key fails with AuthenticationFailed whose text never holds the key", () =>
      Effect.gen(function*() {
        const secret = "sk-ant-api03-LEAKCHECK-7f3a9c2e1b"
        const base = yield* url
        const layer = llm(base, { provider: "anthropic-keyed", apiKey: secret })
        const errors = [
          yield* failure(Llm.generate(user("hi")).pipe(Effect.provide(layer))),
          (yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))).error!,
          yield* failure(Anthropic.listModels.pipe(
            Effect.provide(Layer.orDie(Anthropic.layerClient({ apiKey: secret, baseURL: `${base}/anthropic-keyed` })))
          ))
        ]
        for (const error of errors) {
          assert.strictEqual(error._tag, "AuthenticationFailed")
          for (const text of [String(error), JSON.stringify(error), error.message, error.stack ?? ""]) {
            expect(text).not.toContain(secret)
            expect(text).not.toContain("LEAKCHECK")
          }
        }
        const ok = yield* Llm.generate(user("hi")).pipe(
          Effect.provide(llm(base, { provider: "anthropic-keyed", apiKey: GOOD_KEY }))
        )
        expect(JSON.stringify(ok)).not.toContain(GOOD_KEY)
      }))

    it.effect("an unreadable body fails with MalformedResponse (generate and stream)", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "malformed" } })
        assert.strictEqual((yield* failure(Llm.generate(user("hi")).pipe(Effect.provide(layer))))._tag, "MalformedResponse")
        const { error } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))
        assert.strictEqual(error?._tag, "MalformedResponse")
      }))

    it.effect("a connection cut mid-body fails with NetworkError (generate and stream, after some output)", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "cut-after=4" } })
        assert.strictEqual((yield* failure(Llm.generate(user("hi")).pipe(Effect.provide(layer))))._tag, "NetworkError")
        const { error, parts } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))
        assert.strictEqual(error?._tag, "NetworkError")
        assert.isAbove(parts.filter((p) => p.type === "text-delta").length, 0)
        assert.isFalse(parts.some((p) => p.type === "finish"))
      }))

    it.effect("a stream that ends cleanly before message_stop fails with NetworkError", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "truncate=5" } })
        const { error, parts } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))
        assert.strictEqual(error?._tag, "NetworkError")
        assert.isFalse(parts.some((p) => p.type === "finish"))
      }))

    it.effect("an in-band error event fails the stream with the mapped error after the output so far", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "stream-error=5" } })
        const { error, parts } = yield* collect(Llm.stream(user("hi")).pipe(Stream.provide(layer)))
        assert.strictEqual(error?._tag, "Overloaded")
        assert.isAbove(parts.filter((p) => p.type === "text-delta").length, 0)
        assert.isFalse(parts.some((p) => p.type === "finish"))
      }))

    it.effect("an unreachable server fails with NetworkError", () =>
      Effect.gen(function*() {
        const error = yield* failure(
          Llm.generate(user("hi")).pipe(Effect.provide(llm("http://127.0.0.1:9")))
        )
        assert.strictEqual(error._tag, "NetworkError")
      }))

    it.effect("the SDK timeout fails with Timeout after that long", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "stall-ms=5000" }, timeout: 200 })
        const start = Date.now()
        const error = yield* failure(Llm.generate(user("hi")).pipe(Effect.provide(layer)))
        assert.strictEqual(error._tag, "Timeout")
        assert.strictEqual(error._tag === "Timeout" && Duration.toMillis(error.after), 200)
        assert.isBelow(Date.now() - start, 2000)
      }))

    it.effect("the time left before the deadline is the SDK timeout", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "stall-ms=5000" } })
        const start = Date.now()
        // Only the deadline reference, no Effect-level timeout: the SDK must enforce it.
        const error = yield* failure(
          Llm.generate(user("hi")).pipe(Effect.provide(layer), Effect.provideService(Deadline.CurrentDeadline, Date.now() + 300))
        )
        assert.strictEqual(error._tag, "Timeout")
        assert.isAtMost(error._tag === "Timeout" ? Duration.toMillis(error.after) : 0, 300)
        assert.isBelow(Date.now() - start, 2000)
      }))

    it.effect("a request deadline bounds a stalled call with Timeout", () =>
      Effect.gen(function*() {
        const layer = llm(yield* url, { headers: { "x-sim-fault": "stall-ms=5000" } })
        const start = Date.now()
        const error = yield* failure(Llm.generate({ ...user("hi"), deadline: 250 }).pipe(Effect.provide(layer)))
        assert.strictEqual(error._tag, "Timeout")
        assert.isBelow(Date.now() - start, 2000)
      }))
  })

  describe("cancellation", () => {
    it.effect("interrupting a call stalled by the server aborts the HTTP request (x-sim-fault stall-ms)", () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const count = Effect.map(sim.stats, (s) => s.providers.anthropic?.models["claude-opus-4-1"] ?? { requests: 0, outcomes: {} as Record<string, number> })
        const before = yield* count
        const fiber = yield* Llm.generate(user("cancel me")).pipe(
          Effect.provide(llm(sim.url, { model: "claude-opus-4-1", headers: { "x-sim-fault": "stall-ms=5000" } })),
          Effect.forkChild
        )
        yield* Effect.sleep("300 millis") // the request is in the simulator's stall by now
        yield* Fiber.interrupt(fiber)
        const after = yield* eventually(count, (c) => (c.outcomes.aborted ?? 0) > (before.outcomes.aborted ?? 0))
        assert.strictEqual(after.outcomes.aborted, (before.outcomes.aborted ?? 0) + 1)
        assert.strictEqual(after.requests, before.requests + 1)
      }))

    it.effect("interrupting a call waiting for a slow model aborts the HTTP request", () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const fiber = yield* Llm.generate(user("cancel me")).pipe(
          Effect.provide(llm(sim.url, { provider: "anthropic-slow" })),
          Effect.forkChild
        )
        yield* eventually(
          Effect.map(sim.stats, (s) => s.providers["anthropic-slow"]?.models["claude-haiku-4-5"]?.requests ?? 0),
          (n) => n >= 1
        )
        yield* Fiber.interrupt(fiber)
        const seen = yield* eventually(outcomes("anthropic-slow", "claude-haiku-4-5"), (o) => (o.aborted ?? 0) >= 1)
        assert.strictEqual(seen.aborted, 1)
      }))

    it.effect("interrupting a stream before its response arrives aborts the HTTP request at once", () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const before = (yield* outcomes("anthropic", "claude-sonnet-4-5")).aborted ?? 0
        // The server holds the response (headers too) for 5 s; the abort must not wait for it.
        const layer = llm(sim.url, { headers: { "x-sim-fault": "stall-ms=5000" }, model: "claude-sonnet-4-5" })
        const fiber = yield* Stream.runDrain(Llm.stream(user("cancel me before the headers"))).pipe(
          Effect.provide(layer),
          Effect.forkChild
        )
        yield* eventually(
          Effect.map(sim.stats, (s) => s.providers.anthropic?.models["claude-sonnet-4-5"]?.requests ?? 0),
          (n) => n >= 1
        )
        yield* Effect.forkChild(Fiber.interrupt(fiber))
        const seen = yield* eventually(outcomes("anthropic", "claude-sonnet-4-5"), (o) => (o.aborted ?? 0) > before)
        assert.strictEqual(seen.aborted, before + 1)
      }))

    it.effect("interrupting a stream mid-answer aborts the HTTP request", () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = llm(sim.url, { headers: { "x-sim-fault": "stall-mid-ms=5000;stall-after=5" }, model: "claude-opus-4-1" })
        const before = (yield* outcomes("anthropic", "claude-opus-4-1")).aborted ?? 0
        const first: Array<LlmResponse.StreamPart> = []
        const fiber = yield* Llm.stream(user("cancel me mid-stream")).pipe(
          Stream.provide(layer),
          Stream.runForEach((part) => Effect.sync(() => void first.push(part))),
          Effect.forkChild
        )
        yield* eventually(Effect.sync(() => first.length), (n) => n >= 1)
        assert.isAbove(first.length, 0)
        yield* Fiber.interrupt(fiber)
        const seen = yield* eventually(outcomes("anthropic", "claude-opus-4-1"), (o) => (o.aborted ?? 0) > before)
        assert.strictEqual(seen.aborted, before + 1)
      }))

    it.effect("taking a few parts of a stream closes the connection", () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = llm(sim.url, { headers: { "x-sim-fault": "stall-mid-ms=5000;stall-after=5" }, model: "claude-haiku-4-5" })
        const before = (yield* outcomes("anthropic", "claude-haiku-4-5")).aborted ?? 0
        const start = Date.now()
        const parts = yield* Stream.runCollect(Stream.take(Llm.stream(user("just one")).pipe(Stream.provide(layer)), 1))
        assert.strictEqual(parts.length, 1)
        assert.isBelow(Date.now() - start, 2000)
        const seen = yield* eventually(outcomes("anthropic", "claude-haiku-4-5"), (o) => (o.aborted ?? 0) > before)
        assert.strictEqual(seen.aborted, before + 1)
      }))
  })

  describe("models", () => {
    it.effect("listModels returns the API's models", () =>
      Effect.gen(function*() {
        const models = yield* Anthropic.listModels.pipe(
          Effect.provide(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: `${yield* url}/anthropic` }))
        )
        assert.deepStrictEqual(models.map((m) => m.id), ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1"])
        assert.strictEqual(models[0]?.displayName, "claude-haiku-4-5")
      }))
  })
})
