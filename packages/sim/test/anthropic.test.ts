import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Sim } from "../src/index.ts"
import { anthropicClient, call, config, longText, rejection, weatherSchema } from "./helpers.ts"

const user = (content: string) => [{ role: "user" as const, content }]
const model = "claude-haiku-4-5"

layer(Sim.layer(config()), { excludeTestServices: true })("anthropic protocol through @anthropic-ai/sdk", (it) => {
  it.effect("answers deterministically with usage and end_turn", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const a = yield* call(() => client.messages.create({ model, max_tokens: 100, messages: user("Hi") }))
      const b = yield* call(() => client.messages.create({ model, max_tokens: 100, messages: user("Hi") }))
      assert.strictEqual(a.type, "message")
      assert.strictEqual(a.stop_reason, "end_turn")
      assert.deepStrictEqual(a.content, b.content)
      const text = a.content[0]!.type === "text" ? a.content[0]!.text : ""
      assert.strictEqual(a.usage.output_tokens, text.split(" ").length)
      assert.strictEqual(a.usage.input_tokens, b.usage.input_tokens)
      assert.strictEqual(a.usage.cache_read_input_tokens, 0)
    }))

  it.effect("streams message_start, content_block_*, ping, message_delta, message_stop", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const plain = yield* call(() => client.messages.create({ model, max_tokens: 100, messages: user("stream") }))
      const events = yield* call(async () => {
        const out: Array<string> = []
        const s = await client.messages.create({ model, max_tokens: 100, messages: user("stream"), stream: true })
        for await (const e of s) out.push(e.type)
        return out
      })
      assert.strictEqual(events[0], "message_start")
      assert.includeMembers(events, ["content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"])
      const final = yield* call(() => client.messages.stream({ model, max_tokens: 100, messages: user("stream") }).finalMessage())
      assert.deepStrictEqual(final.content, plain.content)
      assert.strictEqual(final.usage.output_tokens, plain.usage.output_tokens)
      assert.strictEqual(final.stop_reason, "end_turn")
    }))

  it.effect("max_tokens gives stop_reason max_tokens; missing max_tokens is a 400", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const r = yield* call(() => client.messages.create({ model, max_tokens: 2, messages: user("x") }))
      assert.strictEqual(r.stop_reason, "max_tokens")
      assert.strictEqual(r.usage.output_tokens, 2)
      const e = yield* rejection(() => client.messages.create({ model, messages: user("x") } as never))
      assert.strictEqual(e.status, 400)
      assert.strictEqual(e.error.error.type, "invalid_request_error")
    }))

  it.effect("tool_use blocks (JSON and streamed input_json_delta), text after tool_result", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const tools = [{ name: "get_weather", input_schema: weatherSchema as never }]
      const r = yield* call(() => client.messages.create({ model, max_tokens: 100, messages: user("weather?"), tools }))
      assert.strictEqual(r.stop_reason, "tool_use")
      const block = r.content[0]!
      assert.strictEqual(block.type, "tool_use")
      if (block.type !== "tool_use") return
      assert.deepStrictEqual(Object.keys(block.input as object).sort(), ["city", "days", "unit"])
      const streamed = yield* call(() => client.messages.stream({ model, max_tokens: 100, messages: user("weather?"), tools }).finalMessage())
      assert.deepStrictEqual(streamed.content[0], block)
      const after = yield* call(() =>
        client.messages.create({
          model,
          max_tokens: 100,
          tools,
          messages: [
            { role: "user", content: "weather?" },
            { role: "assistant", content: [block] },
            { role: "user", content: [{ type: "tool_result", tool_use_id: block.id, content: "sunny" }] }
          ]
        })
      )
      assert.strictEqual(after.stop_reason, "end_turn")
    }))

  it.effect("cache_creation then cache_read tokens for a repeated long prefix", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const system = longText(1100)
      const big = yield* Sim.start({ providers: { a: { protocol: "anthropic", models: [{ id: model, contextWindow: 200_000, maxOutput: 1000 }] } } })
      const c2 = anthropicClient(big.url, "a")
      // Anthropic caches only what a cache_control breakpoint marks.
      const marked = [{ type: "text" as const, text: system, cache_control: { type: "ephemeral" as const } }]
      const first = yield* call(() => c2.messages.create({ model, max_tokens: 10, system: marked, messages: user("a") }))
      const second = yield* call(() => c2.messages.create({ model, max_tokens: 10, system: marked, messages: user("b") }))
      assert.isTrue(first.usage.cache_creation_input_tokens! >= 1024)
      assert.strictEqual(first.usage.cache_read_input_tokens, 0)
      assert.strictEqual(second.usage.cache_read_input_tokens, first.usage.cache_creation_input_tokens)
      void client
    }))

  it.effect("404 not_found_error for an unknown model, 400 'prompt is too long' for a long prompt", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const nf = yield* rejection(() => client.messages.create({ model: "claude-nope", max_tokens: 10, messages: user("x") }))
      assert.strictEqual(nf.status, 404)
      assert.strictEqual(nf.error.error.type, "not_found_error")
      assert.strictEqual(nf.error.error.message, "model: claude-nope")
      const cl = yield* rejection(() => client.messages.create({ model, max_tokens: 10, messages: user(longText(2500)) }))
      assert.strictEqual(cl.status, 400)
      assert.match(cl.error.error.message, /^prompt is too long: \d+ tokens > 2000 maximum$/)
      const models = yield* call(() => client.models.list())
      assert.deepStrictEqual(models.data.map((m) => m.id), [model])
    }))

  it.effect("every error status carries its real error type and request-id", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const cases = [
        [400, "invalid_request_error"],
        [401, "authentication_error"],
        [403, "permission_error"],
        [404, "not_found_error"],
        [429, "rate_limit_error"],
        [500, "api_error"],
        [529, "overloaded_error"]
      ] as const
      for (const [status, type] of cases) {
        const e = yield* rejection(() =>
          client.messages.create({ model, max_tokens: 10, messages: user("x") }, {
            headers: { "x-sim-fault": `status=${status};retry-after=3` }
          })
        )
        assert.strictEqual(e.status, status)
        assert.strictEqual(e.error.type, "error")
        assert.strictEqual(e.error.error.type, type)
        assert.match(e.headers.get("request-id"), /^req_/)
        assert.strictEqual(e.headers.get("retry-after"), "3")
      }
    }))

  it.effect("in-band event: error mid-stream surfaces as an overloaded_error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = anthropicClient(sim.url)
      const e = yield* rejection(async () => {
        const s = await client.messages.create({ model, max_tokens: 100, messages: user("x"), stream: true }, {
          headers: { "x-sim-fault": "stream-error=3" }
        })
        for await (const _ of s) {
          // drain
        }
      })
      assert.match(String(e.message), /overloaded_error|Overloaded/)
    }))
})

describe("anthropic rate limits and keys", () => {
  it.live("429 with anthropic-ratelimit-* headers (RFC 3339 resets) once the limit is used up", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ rateLimits: { requestsPerMinute: 1, tokensPerMinute: 90_000 } }))
      const client = anthropicClient(sim.url)
      const ok = yield* call(() => client.messages.create({ model, max_tokens: 10, messages: user("x") }).withResponse())
      const h = ok.response.headers
      assert.strictEqual(h.get("anthropic-ratelimit-requests-limit"), "1")
      assert.strictEqual(h.get("anthropic-ratelimit-requests-remaining"), "0")
      assert.match(h.get("anthropic-ratelimit-requests-reset")!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
      assert.strictEqual(h.get("anthropic-ratelimit-tokens-limit"), "90000")
      assert.isNotNull(h.get("anthropic-ratelimit-input-tokens-remaining"))
      const e = yield* rejection(() => client.messages.create({ model, max_tokens: 10, messages: user("x") }))
      assert.strictEqual(e.status, 429)
      assert.strictEqual(e.error.error.type, "rate_limit_error")
      assert.isTrue(Number(e.headers.get("retry-after")) >= 1)
    }))

  it.live("apiKeys: a wrong x-api-key is a 401 authentication_error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ apiKeys: ["good-key"] }))
      yield* call(() => anthropicClient(sim.url, "anthropic", "good-key").messages.create({ model, max_tokens: 5, messages: user("x") }))
      const e = yield* rejection(() => anthropicClient(sim.url, "anthropic", "bad-key-123").messages.create({ model, max_tokens: 5, messages: user("x") }))
      assert.strictEqual(e.status, 401)
      assert.strictEqual(e.error.error.type, "authentication_error")
      assert.notInclude(JSON.stringify(e.error), "bad-key-123")
    }))
})
