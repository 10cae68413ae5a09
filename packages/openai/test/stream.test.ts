import { assert, layer } from "@effect/vitest"
import { type LLM, Llm, LlmError, type LlmResponse } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Layer, Stream } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { OpenAI } from "../src/index.ts"
import { client, llm, recorder, SimLayer, user } from "./support.ts"

type Part = LlmResponse.StreamPart

const run = (layer: Layer.Layer<LLM>, request = user("Tell me something")) =>
  Stream.runCollect(Llm.stream(request)).pipe(Effect.provide(layer))

const finishOf = (parts: ReadonlyArray<Part>) => {
  const last = parts[parts.length - 1]
  assert.strictEqual(last?.type, "finish")
  assert.strictEqual(parts.filter((p) => p.type === "finish").length, 1)
  return (last as Extract<Part, { type: "finish" }>).response
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: "chatcmpl-fake",
  object: "chat.completion.chunk",
  created: 1,
  model: "gpt-4o-mini",
  choices: [{ index: 0, delta, finish_reason: finish }]
})
const usageChunk = {
  id: "chatcmpl-fake",
  object: "chat.completion.chunk",
  choices: [],
  usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14, completion_tokens_details: { reasoning_tokens: 2 } }
}

/** A `fetch` answering every request with this event-stream text. */
const textFetch = (text: string): typeof globalThis.fetch => () =>
  Promise.resolve(new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } }))

/** A `fetch` answering every request with these SSE events (and `[DONE]` unless told not to). */
const sseFetch = (events: ReadonlyArray<unknown>, done = true): typeof globalThis.fetch => () =>
  Promise.resolve(
    new Response(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + (done ? "data: [DONE]\n\n" : ""), {
      status: 200,
      headers: { "content-type": "text/event-stream" }
    })
  )

const fake = (fetch: typeof globalThis.fetch, options: { streamUsage?: boolean } = {}) =>
  llm(OpenAI.compatible({ name: "fake", baseURL: "http://fake.invalid/v1", apiKey: "k", fetch, ...options }))

layer(SimLayer, { excludeTestServices: true })("OpenAI.model stream", (it) => {
  it.effect("streams text deltas and ends with one finish part holding the whole response and usage", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const parts = yield* run(llm(client(sim, { fetch: seen.fetch })))
      const response = finishOf(parts)
      const text = parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []).join("")
      assert.isTrue(parts.filter((p) => p.type === "text-delta").length > 1)
      assert.strictEqual(response.text, text)
      assert.strictEqual(response.finishReason, "stop")
      assert.isTrue(response.usage.inputTokens > 0)
      assert.strictEqual(response.usage.outputTokens, parts.filter((p) => p.type === "text-delta").length)
      assert.isTrue(response.costUsd > 0)
      assert.strictEqual(seen.bodies[0]!["stream"], true)
      assert.deepStrictEqual(seen.bodies[0]!["stream_options"], { include_usage: true })
    }))

  it.effect("streams tool-call deltas whose JSON adds up to the finish part's parsed input", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const parts = yield* run(llm(client(sim)), {
        ...user("Weather?"),
        tools: [{
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city", "days"] }
        }]
      })
      const deltas = parts.filter((p): p is Extract<Part, { type: "tool-call-delta" }> => p.type === "tool-call-delta")
      assert.isTrue(deltas.length > 1)
      assert.strictEqual(deltas[0]!.name, "get_weather")
      assert.isTrue(deltas.every((d) => d.id === deltas[0]!.id))
      const response = finishOf(parts)
      assert.strictEqual(response.finishReason, "tool-calls")
      assert.deepStrictEqual(response.toolCalls[0]!.input, JSON.parse(deltas.map((d) => d.inputDelta).join("")))
      assert.strictEqual(response.toolCalls[0]!.id, deltas[0]!.id)
      assert.strictEqual((response.toolCalls[0]!.input as { days: number }).days, 42)
    }))

  it.effect("a stream whose connection is cut fails with NetworkError and never finishes", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const parts: Array<Part> = []
      const error = yield* Effect.flip(
        Llm.stream(user("Tell me something")).pipe(
          Stream.runForEach((p) => Effect.sync(() => parts.push(p))),
          Effect.provide(llm(client(sim, { headers: { "x-sim-fault": "cut-after=3" } })))
        )
      )
      assert.instanceOf(error, LlmError.NetworkError)
      assert.strictEqual(error.provider, "openai")
      assert.isTrue(parts.length > 0, "the deltas before the cut were delivered")
      assert.isFalse(parts.some((p) => p.type === "finish"))
    }))

  it.effect("a truncated or malformed stream event fails with MalformedResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      for (const fault of ["truncate=2", "malformed"]) {
        const error = yield* Effect.flip(run(llm(client(sim, { headers: { "x-sim-fault": fault } }))))
        assert.instanceOf(error, LlmError.MalformedResponse, fault)
      }
    }))

  it.effect("an in-band error event fails the stream with the mapped error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(run(llm(client(sim, { headers: { "x-sim-fault": "stream-error=2" } }))))
      assert.instanceOf(error, LlmError.ServerError)
      assert.strictEqual(error.status, 500)
      const limited = yield* Effect.flip(run(fake(sseFetch([
        chunk({ content: "Hi" }),
        { error: { message: "Rate limit reached on tokens per min (TPM)", type: "tokens", code: "rate_limit_exceeded" } }
      ]))))
      assert.instanceOf(limited, LlmError.RateLimited)
      assert.strictEqual(limited.scope, "tokens")
    }))

  it.effect("an HTTP error when the stream opens maps like any call, with retryAfter", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(run(llm(client(sim, { headers: { "x-sim-fault": "status=429;retry-after=3" } }))))
      assert.instanceOf(error, LlmError.RateLimited)
      assert.strictEqual(Duration.toMillis(error.retryAfter!), 3_000)
    }))

  it.effect("a stream that ends quietly before its finish_reason, or before its usage chunk, fails with NetworkError", () =>
    Effect.gen(function*() {
      const noFinish = yield* Effect.flip(run(fake(sseFetch([chunk({ content: "Hel" }), chunk({ content: "lo" })], false))))
      assert.instanceOf(noFinish, LlmError.NetworkError)
      assert.include(noFinish.detail, "finish_reason")
      const noUsage = yield* Effect.flip(run(fake(sseFetch([chunk({ content: "Hello" }), chunk({}, "stop")], false))))
      assert.instanceOf(noUsage, LlmError.NetworkError)
      assert.include(noUsage.detail, "usage")
    }))

  it.effect("with streamUsage off, stream_options is not sent and the finish_reason alone completes the stream", () =>
    Effect.gen(function*() {
      const bodies: Array<Record<string, unknown>> = []
      const inner = sseFetch([chunk({ content: "Hello" }), chunk({}, "stop")])
      const fetch: typeof globalThis.fetch = (input, init) => {
        bodies.push(JSON.parse(init!.body as string))
        return inner(input, init)
      }
      const parts = yield* run(fake(fetch, { streamUsage: false }))
      assert.isUndefined(bodies[0]!["stream_options"])
      const response = finishOf(parts)
      assert.strictEqual(response.text, "Hello")
      assert.strictEqual(response.usage.totalTokens, 0)
    }))

  it.effect("streams reasoning_content as reasoning deltas and counts reasoning tokens", () =>
    Effect.gen(function*() {
      const parts = yield* run(fake(sseFetch([
        chunk({ role: "assistant", reasoning_content: "Think" }),
        chunk({ reasoning_content: "ing." }),
        chunk({ content: "Answer" }),
        chunk({}, "stop"),
        usageChunk
      ])))
      assert.deepStrictEqual(parts.slice(0, 3), [
        { type: "reasoning-delta", text: "Think" },
        { type: "reasoning-delta", text: "ing." },
        { type: "text-delta", text: "Answer" }
      ])
      const response = finishOf(parts)
      assert.strictEqual(response.provider, "fake")
      assert.strictEqual(response.text, "Answer")
      assert.deepStrictEqual(
        [response.usage.inputTokens, response.usage.outputTokens, response.usage.reasoningTokens, response.usage.totalTokens],
        [10, 4, 2, 14]
      )
    }))

  it.effect("tool-call arguments that are not JSON fail with MalformedResponse", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run(fake(sseFetch([
        chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "{\"a\":" } }] }),
        chunk({}, "tool_calls"),
        usageChunk
      ]))))
      assert.instanceOf(error, LlmError.MalformedResponse)
      assert.include(error.detail, "call_1")
    }))

  it.effect("reads the event stream as the SDK does: named error events, error chunks, a last event without its blank line", () =>
    Effect.gen(function*() {
      const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`
      // An `error` event: its data's `error` is the error (an overloaded server, in band: 503).
      const named = yield* Effect.flip(run(fake(textFetch(
        data(chunk({ content: "Hi" })) +
          `event: error\ndata: ${JSON.stringify({ error: { message: "Overloaded", type: "overloaded_error" } })}\n\n`
      ))))
      assert.instanceOf(named, LlmError.Overloaded)
      assert.include(named.message, "Overloaded")
      // Any truthy `error` in a chunk fails the stream, a bare string too.
      const bare = yield* Effect.flip(run(fake(sseFetch([chunk({ content: "Hi" }), { error: "upstream went away" }]))))
      assert.instanceOf(bare, LlmError.ServerError)
      // The body ends right after the usage chunk, with no blank line and no `[DONE]`: still a whole answer.
      const parts = yield* run(fake(textFetch(
        data(chunk({ content: "Hi" })) + data(chunk({}, "stop")) + `data: ${JSON.stringify(usageChunk)}`
      )))
      const response = finishOf(parts)
      assert.strictEqual(response.text, "Hi")
      assert.strictEqual(response.usage.totalTokens, 14)
      // Comments (keep-alives) and CRLF line endings are part of the format.
      const crlf = yield* run(fake(textFetch(
        [": keep-alive", `data: ${JSON.stringify(chunk({ content: "Hi" }))}`, "", `data: ${JSON.stringify(chunk({}, "stop"))}`, "",
          `data: ${JSON.stringify(usageChunk)}`, "", "data: [DONE]", "", ""].join("\r\n")
      )))
      assert.strictEqual(finishOf(crlf).text, "Hi")
    }))

  it.effect("streams read to their end leave the connection for the next call", () =>
    Effect.gen(function*() {
      const body = [chunk({ content: "Hi" }), chunk({}, "stop"), usageChunk].map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") +
        "data: [DONE]\n\n"
      let connections = 0
      const server = yield* Effect.acquireRelease(
        Effect.promise(() =>
          new Promise<Http.Server>((resolve) => {
            const server = Http.createServer((request, response) => {
              request.resume()
              request.on("end", () => {
                response.writeHead(200, { "content-type": "text/event-stream" })
                response.end(body)
              })
            })
            server.on("connection", () => connections++)
            server.listen(0, "127.0.0.1", () => resolve(server))
          })
        ),
        (server) => Effect.promise(() => new Promise<void>((resolve) => {
          server.closeAllConnections()
          server.close(() => resolve())
        }))
      )
      const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`
      const model = llm(OpenAI.compatible({ name: "local", baseURL, apiKey: "k" }))
      for (let i = 0; i < 3; i++) {
        const parts = yield* run(model)
        assert.strictEqual(finishOf(parts).text, "Hi")
      }
      assert.strictEqual(connections, 1)
    }))
})
