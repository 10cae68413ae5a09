import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { encode } from "gpt-tokenizer"
import { Sim } from "../src/index.ts"
import { call, config, longText, openaiClient, rejection, weatherSchema } from "./helpers.ts"

const user = (content: string) => [{ role: "user" as const, content }]

layer(Sim.layer(config()), { excludeTestServices: true })("openai protocol through the openai SDK", (it) => {
  it.effect("answers deterministically with exact usage from the real tokenizer", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const a = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("Hello there") }))
      const b = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("Hello there") }))
      const text = a.choices[0]!.message.content!
      assert.strictEqual(text, b.choices[0]!.message.content)
      assert.strictEqual(a.choices[0]!.finish_reason, "stop")
      assert.strictEqual(a.object, "chat.completion")
      assert.strictEqual(a.usage!.completion_tokens, encode(text).length)
      assert.strictEqual(a.usage!.prompt_tokens, encode("Hello there").length + 3 + 3)
      assert.strictEqual(a.usage!.total_tokens, a.usage!.prompt_tokens + a.usage!.completion_tokens)
      assert.strictEqual(a.usage!.prompt_tokens_details!.cached_tokens, 0)
    }))

  it.effect("streams chunks, usage in the last chunk with include_usage, and [DONE]", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const plain = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("stream me") }))
      const chunks = yield* call(async () => {
        const out = []
        const s = await client.chat.completions.create({
          model: "gpt-4o-mini",
          messages: user("stream me"),
          stream: true,
          stream_options: { include_usage: true }
        })
        for await (const c of s) out.push(c)
        return out
      })
      const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")
      assert.strictEqual(text, plain.choices[0]!.message.content)
      const last = chunks[chunks.length - 1]!
      assert.deepStrictEqual(last.choices, [])
      assert.strictEqual(last.usage!.completion_tokens, plain.usage!.completion_tokens)
      assert.strictEqual(chunks[chunks.length - 2]!.choices[0]!.finish_reason, "stop")
    }))

  it.effect("honours max_tokens with finish_reason length", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* call(() => openaiClient(sim.url).chat.completions.create({ model: "gpt-4o-mini", messages: user("x"), max_tokens: 3 }))
      assert.strictEqual(r.choices[0]!.finish_reason, "length")
      assert.strictEqual(r.usage!.completion_tokens, 3)
      assert.strictEqual(encode(r.choices[0]!.message.content!).length, 3)
    }))

  it.effect("calls the first tool with schema-built arguments, then answers text after the tool result", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const tools = [{ type: "function" as const, function: { name: "get_weather", parameters: weatherSchema } }]
      const r = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("weather?"), tools }))
      const tc = r.choices[0]!.message.tool_calls![0]!
      assert.strictEqual(r.choices[0]!.finish_reason, "tool_calls")
      assert.strictEqual(tc.type === "function" && tc.function.name, "get_weather")
      const args = JSON.parse(tc.type === "function" ? tc.function.arguments : "{}")
      assert.deepStrictEqual(Object.keys(args).sort(), ["city", "days", "unit"])
      assert.strictEqual(args.unit, "c")
      const streamed = yield* call(async () => {
        let argsText = ""
        let finish: string | null = null
        const s = await client.chat.completions.create({ model: "gpt-4o-mini", messages: user("weather?"), tools, stream: true })
        for await (const c of s) {
          argsText += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? ""
          finish = c.choices[0]?.finish_reason ?? finish
        }
        return { argsText, finish }
      })
      assert.deepStrictEqual(JSON.parse(streamed.argsText), args)
      assert.strictEqual(streamed.finish, "tool_calls")
      const after = yield* call(() =>
        client.chat.completions.create({
          model: "gpt-4o-mini",
          tools,
          messages: [
            { role: "user", content: "weather?" },
            { role: "assistant", content: null, tool_calls: [tc] },
            { role: "tool", tool_call_id: tc.id, content: "sunny" }
          ]
        })
      )
      assert.strictEqual(after.choices[0]!.finish_reason, "stop")
      assert.isTrue(after.choices[0]!.message.content!.length > 0)
      const none = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("weather?"), tools, tool_choice: "none" }))
      assert.strictEqual(none.choices[0]!.finish_reason, "stop")
    }))

  it.effect("content-filter fault finishes with content_filter", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* call(() =>
        openaiClient(sim.url).chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }, { headers: { "x-sim-fault": "content-filter" } })
      )
      assert.strictEqual(r.choices[0]!.finish_reason, "content_filter")
    }))

  it.effect("reports cached_tokens when a long prompt prefix repeats", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const system = { role: "system" as const, content: longText(1200) }
      const first = yield* call(() => client.chat.completions.create({ model: "gpt-4o", messages: [system, { role: "user", content: "a" }] }))
      const second = yield* call(() => client.chat.completions.create({ model: "gpt-4o", messages: [system, { role: "user", content: "b" }] }))
      assert.strictEqual(first.usage!.prompt_tokens_details!.cached_tokens, 0)
      assert.isTrue(second.usage!.prompt_tokens_details!.cached_tokens! >= 1024)
    }))

  it.effect("unknown model is a 404 model_not_found; long prompt is a 400 context_length_exceeded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const nf = yield* rejection(() => client.chat.completions.create({ model: "gpt-9", messages: user("x") }))
      assert.strictEqual(nf.status, 404)
      assert.strictEqual(nf.code, "model_not_found")
      const cl = yield* rejection(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user(longText(2500)) }))
      assert.strictEqual(cl.status, 400)
      assert.strictEqual(cl.code, "context_length_exceeded")
      assert.match(cl.message, /maximum context length is 2000 tokens/)
      const models = yield* call(() => client.models.list())
      assert.deepStrictEqual(models.data.map((m) => m.id), ["gpt-4o-mini", "gpt-4o"])
    }))

  it.effect("every error status carries its real body and headers", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = openaiClient(sim.url)
      const cases = [
        [400, "invalid_request_error"],
        [401, "invalid_request_error"],
        [403, "request_forbidden"],
        [404, "invalid_request_error"],
        [429, "requests"],
        [500, "server_error"],
        [503, "server_error"]
      ] as const
      for (const [status, type] of cases) {
        const e = yield* rejection(() =>
          client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }, {
            headers: { "x-sim-fault": `status=${status}${status === 429 ? ";retry-after=2" : ""}` }
          })
        )
        assert.strictEqual(e.status, status)
        assert.strictEqual(e.type, type)
        assert.match(e.headers.get("x-request-id"), /^req_/)
        if (status === 429) {
          assert.strictEqual(e.headers.get("retry-after"), "2")
          assert.strictEqual(e.headers.get("retry-after-ms"), "2000")
          assert.strictEqual(e.code, "rate_limit_exceeded")
        }
      }
    }))
})

describe("openai rate limits and keys", () => {
  it.live("429 with x-ratelimit-* headers once requests per minute are used up", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ rateLimits: { requestsPerMinute: 2, tokensPerMinute: 100_000 } }))
      const client = openaiClient(sim.url)
      const ok = yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }).withResponse())
      assert.strictEqual(ok.response.headers.get("x-ratelimit-limit-requests"), "2")
      assert.strictEqual(ok.response.headers.get("x-ratelimit-remaining-requests"), "1")
      assert.match(ok.response.headers.get("x-ratelimit-reset-requests")!, /^(\d+ms|[\d.]+s|\d+m[\d.]+s)$/)
      assert.strictEqual(ok.response.headers.get("x-ratelimit-limit-tokens"), "100000")
      yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
      const e = yield* rejection(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
      assert.strictEqual(e.status, 429)
      assert.strictEqual(e.headers.get("x-ratelimit-remaining-requests"), "0")
      assert.isTrue(Number(e.headers.get("retry-after")) >= 1)
      assert.isTrue(Number(e.headers.get("retry-after-ms")) > 0)
      yield* sim.reset
      yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
    }))

  it.live("tokens per minute limit gives a tokens 429", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ rateLimits: { tokensPerMinute: 50 } }))
      const client = openaiClient(sim.url)
      yield* call(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
      const e = yield* rejection(() => client.chat.completions.create({ model: "gpt-4o-mini", messages: user(longText(40)) }))
      assert.strictEqual(e.status, 429)
      assert.strictEqual(e.type, "tokens")
    }))

  it.live("apiKeys: wrong or missing key is the real 401, and the key is never echoed", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ apiKeys: ["sk-good"] }))
      yield* call(() => openaiClient(sim.url, "openai", "sk-good").chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
      const e = yield* rejection(() => openaiClient(sim.url, "openai", "sk-wrong-secret").chat.completions.create({ model: "gpt-4o-mini", messages: user("x") }))
      assert.strictEqual(e.status, 401)
      assert.strictEqual(e.code, "invalid_api_key")
      assert.notInclude(JSON.stringify(e.error) + JSON.stringify([...e.headers.entries()]), "sk-wrong-secret")
    }))
})
