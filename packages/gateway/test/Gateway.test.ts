import Anthropic from "@anthropic-ai/sdk"
import { assert, describe, it } from "@effect/vitest"
import { LlmError, LlmTest } from "@switchboard/core"
import { Cause, Duration, Effect, Exit, Layer, Option } from "effect"
import OpenAI from "openai"
import { Gateway } from "@switchboard/gateway"

type Options = Omit<Gateway.GatewayOptions, "port" | "host">

/** Serves a gateway on a free loopback port for the duration of `body`. */
const withGateway = <A, E>(options: Options, body: (url: string) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const server = yield* Gateway.GatewayServer
    return yield* body(server.url)
  }).pipe(Effect.provide(Gateway.layer({ ...options, port: 0, accessLog: false })))

const openai = (url: string, apiKey = "sk-team-a") => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 })
const anthropic = (url: string, apiKey = "sk-team-a") => new Anthropic({ apiKey, baseURL: url, maxRetries: 0 })

const rejection = <A>(p: () => Promise<A>) =>
  Effect.promise(() =>
    p().then(
      (value) => {
        throw new Error(`expected a rejection, got ${JSON.stringify(value).slice(0, 200)}`)
      },
      (error: unknown) => error as { status?: number; error?: any; headers?: any; message: string }
    )
  )

const keys = [{ key: "sk-team-a", tenant: "team-a" }]
const twoKeys = [
  { key: "sk-team-a", tenant: "team-a" },
  { key: "sk-team-b", tenant: "team-b", routes: ["cheap"] }
]

const post = (url: string, path: string, body: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer sk-team-a", ...headers },
      body
    })
    return { status: response.status, headers: response.headers, body: await response.json() as any }
  })

describe("Gateway", () => {
  it.live("OpenAI JSON: answer, usage, x-switchboard headers, tenant and route", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest({
        provider: "openai",
        model: "gpt-4o-mini",
        steps: [{ text: "hello there", usage: { inputTokens: 11, outputTokens: 3 } }]
      })
      yield* withGateway({ keys: twoKeys, routes: { default: test.layer, cheap: test.service } }, (url) =>
        Effect.gen(function*() {
          const { data, response } = yield* Effect.promise(() =>
            openai(url).chat.completions.create({
              model: "default",
              messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
              temperature: 0.5,
              max_completion_tokens: 50,
              stop: "END",
              seed: 7,
              user: "u-1",
              response_format: {
                type: "json_schema",
                json_schema: { name: "greeting", schema: { type: "object", properties: { text: { type: "string" } } }, strict: true }
              }
            }).withResponse()
          )
          assert.strictEqual(data.object, "chat.completion")
          assert.strictEqual(data.choices[0]!.message.content, "hello there")
          assert.strictEqual(data.choices[0]!.finish_reason, "stop")
          assert.deepStrictEqual(
            [data.usage!.prompt_tokens, data.usage!.completion_tokens, data.usage!.total_tokens],
            [11, 3, 14]
          )
          assert.strictEqual(response.headers.get("x-switchboard-provider"), "openai")
          assert.strictEqual(response.headers.get("x-switchboard-model"), "gpt-4o-mini")
          assert.strictEqual(response.headers.get("x-switchboard-attempts"), "1")
          assert.isTrue(Number(response.headers.get("x-switchboard-cost-usd")) > 0)
          const [seen] = yield* test.requests
          assert.strictEqual(seen!.model, undefined, "the route's own model answers")
          assert.strictEqual(seen!.metadata?.tenant, "team-a")
          assert.deepStrictEqual(seen!.metadata?.tags, ["user:u-1"])
          assert.strictEqual(seen!.temperature, 0.5)
          assert.strictEqual(seen!.maxTokens, 50)
          assert.deepStrictEqual(seen!.stop, ["END"])
          assert.strictEqual(seen!.seed, 7)
          assert.deepStrictEqual(seen!.messages.map((m) => m.role), ["system", "user"])
          assert.deepStrictEqual(seen!.responseFormat, {
            type: "json-schema",
            name: "greeting",
            schema: { type: "object", properties: { text: { type: "string" } } },
            strict: true
          })
        }))
    }))

  it.live("OpenAI SSE: chunks in order, usage chunk with include_usage, then [DONE]", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{
        text: "one two three",
        chunks: ["one ", "two ", "three"],
        chunkDelay: "50 millis",
        usage: { inputTokens: 4, outputTokens: 3 }
      }])
      const completed = () => Effect.runSync(test.completed)
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.promise(async () => {
          const stream = await openai(url).chat.completions.create({
            model: "default",
            messages: [{ role: "user", content: "count" }],
            stream: true,
            stream_options: { include_usage: true }
          })
          const deltas: Array<string> = []
          let finish: string | null = null
          let usage: OpenAI.CompletionUsage | undefined | null
          let providerDoneAtFirstDelta: number | undefined
          for await (const chunk of stream) {
            assert.strictEqual(chunk.object, "chat.completion.chunk")
            const choice = chunk.choices[0]
            if (choice?.delta.content) {
              // The first delta reaches the client while the provider is still streaming.
              providerDoneAtFirstDelta ??= completed()
              deltas.push(choice.delta.content)
            }
            if (choice?.finish_reason) finish = choice.finish_reason
            if (chunk.usage) usage = chunk.usage
          }
          assert.deepStrictEqual(deltas, ["one ", "two ", "three"])
          assert.strictEqual(providerDoneAtFirstDelta, 0)
          assert.strictEqual(completed(), 1)
          assert.strictEqual(finish, "stop")
          assert.strictEqual(usage?.prompt_tokens, 4)
          assert.strictEqual(usage?.completion_tokens, 3)
        }))
    }))

  it.live("tool calls both ways on the OpenAI wire, JSON and streaming", () =>
    Effect.gen(function*() {
      const call = { id: "call_1", name: "get_weather", input: { city: "Paris" } }
      const test = yield* LlmTest.makeTest([{ text: "", toolCalls: [call] }])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const tools: Array<OpenAI.ChatCompletionTool> = [{
            type: "function",
            function: { name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } }
          }]
          const messages: Array<OpenAI.ChatCompletionMessageParam> = [
            { role: "user", content: "weather?" },
            { role: "assistant", content: null, tool_calls: [{ id: "call_0", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Rome\"}" } }] },
            { role: "tool", tool_call_id: "call_0", content: "sunny" }
          ]
          const json = yield* Effect.promise(() =>
            openai(url).chat.completions.create({ model: "default", messages, tools, tool_choice: "auto" })
          )
          const toolCall = json.choices[0]!.message.tool_calls![0]!
          assert.strictEqual(json.choices[0]!.finish_reason, "tool_calls")
          assert.strictEqual(toolCall.id, "call_1")
          assert.strictEqual(toolCall.type === "function" ? toolCall.function.name : "", "get_weather")
          assert.deepStrictEqual(JSON.parse(toolCall.type === "function" ? toolCall.function.arguments : ""), { city: "Paris" })
          const [seen] = yield* test.requests
          assert.deepStrictEqual(seen!.tools?.map((t) => t.name), ["get_weather"])
          assert.strictEqual(seen!.toolChoice, "auto")
          assert.deepStrictEqual(seen!.messages[1]!.content, [{ type: "tool-call", id: "call_0", name: "get_weather", input: { city: "Rome" } }])
          assert.deepStrictEqual(seen!.messages[2], { role: "tool", content: [{ type: "tool-result", toolCallId: "call_0", output: "sunny" }] })

          const stream = openai(url).chat.completions.stream({ model: "default", messages, tools })
          const final = yield* Effect.promise(() => stream.finalChatCompletion())
          const streamed = final.choices[0]!.message.tool_calls![0]!
          assert.strictEqual(streamed.type === "function" ? streamed.function.name : "", "get_weather")
          assert.deepStrictEqual(JSON.parse(streamed.type === "function" ? streamed.function.arguments : ""), { city: "Paris" })
        }))
    }))

  it.live("Anthropic Messages: JSON, SSE in Anthropic's order, tool_use both ways", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest({
        provider: "anthropic",
        model: "claude-haiku-4-5",
        steps: [
          { text: "bonjour", usage: { inputTokens: 5, outputTokens: 2 } },
          { text: "hi", chunks: ["h", "i"], usage: { inputTokens: 5, outputTokens: 2 } },
          { text: "", toolCalls: [{ id: "toolu_1", name: "lookup", input: { q: "x" } }] }
        ]
      })
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const client = anthropic(url)
          const message = yield* Effect.promise(() =>
            client.messages.create({ model: "default", max_tokens: 100, system: "terse", messages: [{ role: "user", content: "hello" }] })
          )
          assert.strictEqual(message.type, "message")
          assert.deepStrictEqual(message.content, [{ type: "text", text: "bonjour" }] as any)
          assert.strictEqual(message.stop_reason, "end_turn")
          assert.strictEqual(message.usage.input_tokens, 5)

          const events: Array<string> = []
          const stream = client.messages.stream({ model: "default", max_tokens: 100, messages: [{ role: "user", content: "hi" }] })
          stream.on("streamEvent", (event) => events.push(event.type))
          const final = yield* Effect.promise(() => stream.finalMessage())
          assert.deepStrictEqual(final.content, [{ type: "text", text: "hi" }] as any)
          assert.strictEqual(final.usage.output_tokens, 2)
          assert.deepStrictEqual(events, [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
          ])

          const tool = yield* Effect.promise(() =>
            client.messages.create({
              model: "default",
              max_tokens: 100,
              tools: [{ name: "lookup", input_schema: { type: "object", properties: { q: { type: "string" } } } }],
              tool_choice: { type: "any" },
              messages: [
                { role: "user", content: "look" },
                { role: "assistant", content: [{ type: "tool_use", id: "toolu_0", name: "lookup", input: { q: "a" } }] },
                { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_0", content: "found" }] }
              ]
            })
          )
          assert.strictEqual(tool.stop_reason, "tool_use")
          assert.deepStrictEqual(tool.content, [{ type: "tool_use", id: "toolu_1", name: "lookup", input: { q: "x" } }] as any)
          const seen = (yield* test.requests)[2]!
          assert.strictEqual(seen.system, undefined === seen.system ? undefined : seen.system)
          assert.strictEqual(seen.toolChoice, "required")
          assert.deepStrictEqual(seen.messages.map((m) => m.role), ["user", "assistant", "tool"])
          assert.deepStrictEqual(seen.messages[2]!.content, [{ type: "tool-result", toolCallId: "toolu_0", output: "found" }])
          assert.strictEqual((yield* test.requests)[0]!.system, "terse")
        }))
    }))

  it.live("bad or missing key → 401 in each protocol's shape; a route the key may not use → 403; unknown route → 404", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "x" }])
      yield* withGateway({ keys: twoKeys, routes: { default: test.layer, cheap: test.layer } }, (url) =>
        Effect.gen(function*() {
          const body = { model: "default", messages: [{ role: "user" as const, content: "hi" }] }
          const bad = yield* rejection(() => openai(url, "sk-wrong").chat.completions.create(body))
          assert.isTrue(bad instanceof OpenAI.AuthenticationError)
          assert.strictEqual(bad.status, 401)
          assert.strictEqual(bad.error?.type, "authentication_error")
          const badAnthropic = yield* rejection(() =>
            anthropic(url, "sk-wrong").messages.create({ ...body, max_tokens: 10 })
          )
          assert.isTrue(badAnthropic instanceof Anthropic.AuthenticationError)
          assert.strictEqual(badAnthropic.error?.error?.type, "authentication_error")
          const missing = yield* post(url, "/v1/chat/completions", JSON.stringify(body), { authorization: "" })
          assert.strictEqual(missing.status, 401)
          assert.strictEqual(missing.body.error.code, "invalid_api_key")

          const forbidden = yield* rejection(() => openai(url, "sk-team-b").chat.completions.create(body))
          assert.isTrue(forbidden instanceof OpenAI.PermissionDeniedError)
          assert.strictEqual(forbidden.error?.param, "model")
          const unknown = yield* rejection(() => openai(url).chat.completions.create({ ...body, model: "nope" }))
          assert.isTrue(unknown instanceof OpenAI.NotFoundError)
          assert.strictEqual(unknown.error?.code, "model_not_found")
          const unknownAnthropic = yield* rejection(() => anthropic(url).messages.create({ ...body, model: "nope", max_tokens: 5 }))
          assert.isTrue(unknownAnthropic instanceof Anthropic.NotFoundError)
          assert.strictEqual(unknownAnthropic.error?.error?.type, "not_found_error")
          assert.strictEqual((yield* test.requests).length, 0, "nothing reached a provider")

          const listA = yield* Effect.promise(() => openai(url).models.list())
          assert.deepStrictEqual(listA.data.map((m) => m.id), ["default", "cheap"])
          const listB = yield* Effect.promise(() => openai(url, "sk-team-b").models.list())
          assert.deepStrictEqual(listB.data.map((m) => m.id), ["cheap"])
          const listAnthropic = yield* Effect.promise(() => anthropic(url, "sk-team-b").models.list())
          assert.deepStrictEqual(listAnthropic.data.map((m) => m.id), ["cheap"])
        }))
    }))

  it.live("bad JSON, an oversized body and invalid fields → 400 naming the field", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "x" }])
      yield* withGateway({ keys, maxBodyBytes: 2_000, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const badJson = yield* post(url, "/v1/chat/completions", "{\"model\": ")
          assert.strictEqual(badJson.status, 400)
          assert.deepStrictEqual(badJson.body.error.param, "body")
          assert.strictEqual(badJson.body.error.type, "invalid_request_error")

          const big = JSON.stringify({ model: "default", messages: [{ role: "user", content: "x".repeat(5_000) }] })
          const tooBig = yield* post(url, "/v1/chat/completions", big)
          assert.strictEqual(tooBig.status, 400)
          assert.strictEqual(tooBig.body.error.code, "request_too_large")
          const tooBigAnthropic = yield* post(url, "/v1/messages", big, { "x-api-key": "sk-team-a", authorization: "" })
          assert.strictEqual(tooBigAnthropic.status, 413)
          assert.strictEqual(tooBigAnthropic.body.error.type, "request_too_large")

          const n = yield* rejection(() =>
            openai(url).chat.completions.create({ model: "default", n: 2, messages: [{ role: "user", content: "hi" }] })
          )
          assert.isTrue(n instanceof OpenAI.BadRequestError)
          assert.strictEqual(n.error?.param, "n")
          const temperature = yield* rejection(() =>
            openai(url).chat.completions.create({ model: "default", temperature: 9, messages: [{ role: "user", content: "hi" }] })
          )
          assert.strictEqual(temperature.status, 400)
          assert.strictEqual(temperature.error?.param, "temperature")
          const role = yield* post(url, "/v1/chat/completions", JSON.stringify({ model: "default", messages: [{ role: "robot", content: "x" }] }))
          assert.strictEqual(role.status, 400)
          assert.strictEqual(role.body.error.param, "messages[0].role")
          const maxTokens = yield* post(
            url,
            "/v1/messages",
            JSON.stringify({ model: "default", messages: [{ role: "user", content: "x" }] }),
            { "x-api-key": "sk-team-a", authorization: "" }
          )
          assert.strictEqual(maxTokens.status, 400)
          assert.match(maxTokens.body.error.message, /max_tokens/)
          const unknownPath = yield* post(url, "/v1/embeddings", "{}")
          assert.strictEqual(unknownPath.status, 404)
          assert.strictEqual((yield* test.requests).length, 0)
        }))
    }))

  it.live("LlmErrors → status and body: 429 with retry-after, budget 429, context 400, outage 502/503", () =>
    Effect.gen(function*() {
      const origin = { provider: "openai", model: "gpt-4o" }
      const test = yield* LlmTest.makeTest([
        { error: new LlmError.RateLimited({ ...origin, retryAfter: Duration.seconds(7), scope: "requests", source: "provider" }) },
        { error: new LlmError.ContextLengthExceeded({ ...origin, limit: 100, requested: 200 }) },
        { error: new LlmError.ServerError({ ...origin, status: 500 }) },
        { error: new LlmError.Overloaded({ ...origin }) },
        { error: new LlmError.RateLimited({ ...origin, retryAfter: Duration.seconds(2), scope: "requests", source: "provider" }) }
      ])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const body = { model: "default", messages: [{ role: "user" as const, content: "hi" }] }
          const limited = yield* rejection(() => openai(url).chat.completions.create(body))
          assert.isTrue(limited instanceof OpenAI.RateLimitError)
          assert.strictEqual(limited.headers?.get("retry-after"), "7")
          assert.strictEqual(limited.error?.code, "rate_limit_exceeded")
          const context = yield* rejection(() => openai(url).chat.completions.create(body))
          assert.isTrue(context instanceof OpenAI.BadRequestError)
          assert.strictEqual(context.error?.code, "context_length_exceeded")
          const outage = yield* rejection(() => openai(url).chat.completions.create(body))
          assert.strictEqual(outage.status, 502)
          const overloaded = yield* rejection(() => anthropic(url).messages.create({ ...body, max_tokens: 5 }))
          assert.strictEqual(overloaded.status, 529)
          assert.strictEqual(overloaded.error?.error?.type, "overloaded_error")
          const limitedAnthropic = yield* rejection(() => anthropic(url).messages.create({ ...body, max_tokens: 5 }))
          assert.isTrue(limitedAnthropic instanceof Anthropic.RateLimitError)
          assert.strictEqual(limitedAnthropic.headers?.get("retry-after"), "2")
        }))
    }))

  it.live("per-key budget: a key over its budget gets 429 budget_exceeded; other keys are unaffected", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest({ provider: "openai", model: "gpt-4o", steps: [{ text: "x", usage: { inputTokens: 1000, outputTokens: 1000 } }] })
      const budgeted = [
        {
          key: "sk-team-a",
          tenant: "team-a",
          budget: { limitUsd: 0.02, window: "day" as const, price: { provider: "openai", model: "gpt-4o" } }
        },
        { key: "sk-team-b", tenant: "team-b" }
      ]
      yield* withGateway({ keys: budgeted, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const body = { model: "default", max_tokens: 1000, messages: [{ role: "user" as const, content: "hi" }] }
          // gpt-4o: 1000 in + 1000 out = $0.0125 spent; the next call reserves up to 1000 output
          // tokens ($0.01) more, which no longer fits in $0.02.
          const first = yield* Effect.promise(() => openai(url).chat.completions.create(body).withResponse())
          assert.strictEqual(first.response.headers.get("x-switchboard-cost-usd"), "0.01250000")
          const over = yield* rejection(() => openai(url).chat.completions.create(body))
          assert.strictEqual(over.status, 429)
          assert.strictEqual(over.error?.type, "budget_exceeded")
          assert.strictEqual(over.headers?.get("x-should-retry"), "false")
          const overStream = yield* rejection(async () => {
            const stream = await anthropic(url).messages.create({ ...body, stream: true })
            for await (const _ of stream) { /* drain */ }
          })
          assert.strictEqual(overStream.status, 429)
          assert.strictEqual(overStream.error?.error?.type, "budget_exceeded")
          const other = yield* Effect.promise(() => openai(url, "sk-team-b").chat.completions.create(body))
          assert.strictEqual(other.choices[0]!.message.content, "x")
          assert.strictEqual((yield* test.requests).length, 2)
        }))
    }))

  it.live("per-key rate limit: over the limit → 429 with retry-after, counted per key", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "x" }])
      const limited = [
        { key: "sk-team-a", tenant: "team-a", rateLimit: { requests: { limit: 2, window: "1 minute" } } },
        { key: "sk-team-b", tenant: "team-b" }
      ]
      yield* withGateway({ keys: limited, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const body = { model: "default", messages: [{ role: "user" as const, content: "hi" }] }
          yield* Effect.promise(() => openai(url).chat.completions.create(body))
          yield* Effect.promise(() => openai(url).chat.completions.create(body))
          const third = yield* rejection(() => openai(url).chat.completions.create(body))
          assert.isTrue(third instanceof OpenAI.RateLimitError)
          assert.isTrue(Number(third.headers?.get("retry-after")) >= 1)
          const other = yield* Effect.promise(() => openai(url, "sk-team-b").chat.completions.create(body))
          assert.strictEqual(other.choices[0]!.message.content, "x")
          assert.strictEqual((yield* test.requests).length, 3, "the refused call never reached the route")
        }))
    }))

  it.live("a failure after a stream started ends it with the in-band error event, never a clean end", () =>
    Effect.gen(function*() {
      const error = new LlmError.NetworkError({ provider: "openai", model: "gpt-4o", detail: "reset", cause: "reset" })
      const test = yield* LlmTest.makeTest([{ error, chunks: ["partial "] }])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const seen: Array<string> = []
          const failure = yield* rejection(async () => {
            const stream = await openai(url).chat.completions.create({
              model: "default",
              stream: true,
              messages: [{ role: "user", content: "hi" }]
            })
            for await (const chunk of stream) if (chunk.choices[0]?.delta.content) seen.push(chunk.choices[0].delta.content)
          })
          assert.deepStrictEqual(seen, ["partial "])
          assert.isTrue(failure instanceof OpenAI.APIError)
          assert.match(failure.message, /network error/)
          const anthropicFailure = yield* rejection(async () => {
            const stream = await anthropic(url).messages.create({ model: "default", max_tokens: 5, stream: true, messages: [{ role: "user", content: "hi" }] })
            for await (const _ of stream) { /* drain */ }
          })
          assert.isTrue(anthropicFailure instanceof Anthropic.APIError)
          assert.strictEqual(anthropicFailure.error?.error?.type, "api_error")
        }))
    }))

  it.live("a client that disconnects mid-stream interrupts the call", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "abcdef", chunks: ["a", "b", "c", "d", "e", "f"], chunkDelay: "200 millis" }])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          yield* Effect.promise(async () => {
            const controller = new AbortController()
            const stream = await openai(url).chat.completions.create(
              { model: "default", stream: true, messages: [{ role: "user", content: "hi" }] },
              { signal: controller.signal }
            )
            for await (const chunk of stream) {
              if (chunk.choices[0]?.delta.content === "a") break
            }
          })
          // The interruption reaches the provider stream once the server sees the closed socket.
          let interrupted = 0
          for (let i = 0; i < 100 && interrupted === 0; i++) {
            yield* Effect.sleep("20 millis")
            interrupted = yield* test.interrupted
          }
          assert.strictEqual(interrupted, 1)
          assert.strictEqual(yield* test.completed, 0)
        }))
    }))

  it.live("wire details: developer → system, image data URLs, Anthropic system blocks and stop_sequences", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "ok" }])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const openaiCall = yield* post(url, "/v1/chat/completions", JSON.stringify({
            model: "default",
            messages: [
              { role: "developer", content: "rules" },
              {
                role: "user",
                content: [
                  { type: "text", text: "what is this?" },
                  { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
                  { type: "image_url", image_url: { url: "https://example.com/cat.png" } }
                ]
              }
            ]
          }))
          assert.strictEqual(openaiCall.status, 200)
          const anthropicCall = yield* post(url, "/v1/messages", JSON.stringify({
            model: "default",
            max_tokens: 10,
            system: [{ type: "text", text: "one" }, { type: "text", text: "two" }],
            stop_sequences: ["###"],
            messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/" } }] }]
          }), { "x-api-key": "sk-team-a", authorization: "" })
          assert.strictEqual(anthropicCall.status, 200)
          assert.strictEqual(anthropicCall.body.type, "message")
          const [first, second] = yield* test.requests
          assert.deepStrictEqual(first!.messages, [
            { role: "system", content: "rules" },
            {
              role: "user",
              content: [
                { type: "text", text: "what is this?" },
                { type: "image", data: "iVBORw0KGgo=", mediaType: "image/png" },
                { type: "image", url: "https://example.com/cat.png" }
              ]
            }
          ])
          assert.strictEqual(second!.system, "one\ntwo")
          assert.deepStrictEqual(second!.stop, ["###"])
          assert.deepStrictEqual(second!.messages[0]!.content, [{ type: "image", data: "/9j/", mediaType: "image/jpeg" }])
        }))
    }))

  it.live("/health, /ready (with a readiness hook) and /metrics (Prometheus text with the gateway's counters)", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "ok" }])
      let ready = true
      yield* withGateway({ keys, routes: { default: test.layer }, ready: Effect.sync(() => ready) }, (url) =>
        Effect.gen(function*() {
          const get = (path: string) =>
            Effect.promise(async () => {
              const response = await fetch(`${url}${path}`)
              return { status: response.status, type: response.headers.get("content-type"), text: await response.text() }
            })
          assert.strictEqual((yield* get("/health")).status, 200)
          assert.strictEqual((yield* get("/ready")).status, 200)
          ready = false
          assert.strictEqual((yield* get("/ready")).status, 503)
          yield* Effect.promise(() => openai(url).chat.completions.create({ model: "default", messages: [{ role: "user", content: "hi" }] }))
          const metrics = yield* get("/metrics")
          assert.strictEqual(metrics.status, 200)
          assert.match(metrics.type ?? "", /^text\/plain/)
          assert.match(metrics.text, /switchboard_gateway_requests\{endpoint="\/v1\/chat\/completions",route="default",status="200"\} \d+/)
          assert.notInclude(metrics.text, "sk-team-a")
        }))
    }))

  it.live("a client that disconnects during a JSON call interrupts it too", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "late", delay: "5 seconds" }])
      yield* withGateway({ keys, routes: { default: test.layer } }, (url) =>
        Effect.gen(function*() {
          const controller = new AbortController()
          const call = openai(url).chat.completions.create(
            { model: "default", messages: [{ role: "user", content: "hi" }] },
            { signal: controller.signal }
          ).catch((error: unknown) => error)
          // Abort once the call has reached the model.
          for (let i = 0; i < 100 && (yield* test.requests).length === 0; i++) yield* Effect.sleep("10 millis")
          controller.abort()
          yield* Effect.promise(() => call)
          let interrupted = 0
          for (let i = 0; i < 100 && interrupted === 0; i++) {
            yield* Effect.sleep("20 millis")
            interrupted = yield* test.interrupted
          }
          assert.strictEqual(interrupted, 1)
          assert.strictEqual(yield* test.completed, 0)
        }))
    }))

  it.effect("bad options fail the layer with SwitchboardConfigError naming the option", () =>
    Effect.gen(function*() {
      const test = yield* LlmTest.makeTest([{ text: "x" }])
      const exit = yield* Effect.exit(Layer.build(Gateway.layer({
        keys: [{ key: "sk", tenant: "" }],
        routes: { default: test.layer }
      })))
      const pathOf = (e: typeof exit) => {
        if (Exit.isSuccess(e)) return "built"
        const error = Cause.findErrorOption(e.cause)
        return Option.isSome(error) && error.value._tag === "SwitchboardConfigError" ? error.value.path : "other"
      }
      assert.strictEqual(pathOf(exit), "Gateway.keys[0].tenant")
      const unknownRoute = yield* Effect.exit(Layer.build(Gateway.layer({
        keys: [{ key: "sk", tenant: "t", routes: ["missing"] }],
        routes: { default: test.layer }
      })))
      assert.strictEqual(pathOf(unknownRoute), "Gateway.keys[0].routes[0]")
    }))
})
