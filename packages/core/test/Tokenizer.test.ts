import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Tokenizer } from "../src/index.ts"

const gpt4o = { provider: "openai", model: "gpt-4o" }

describe("Tokenizer", () => {
  it.effect("counts text exactly with o200k_base for gpt-4o and cl100k_base for gpt-4", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Tokenizer.countText("hello world", gpt4o), { tokens: 2, estimated: false })
      assert.deepStrictEqual(
        yield* Tokenizer.countText("The quick brown fox jumps over the lazy dog.", { provider: "openai", model: "gpt-4" }),
        { tokens: 10, estimated: false }
      )
    }))

  it("picks the encoding per model family", () => {
    assert.strictEqual(Tokenizer.encodingFor({ provider: "openai", model: "gpt-4.1-mini" }), "o200k_base")
    assert.strictEqual(Tokenizer.encodingFor({ provider: "openai", model: "o3-mini" }), "o200k_base")
    assert.strictEqual(Tokenizer.encodingFor({ provider: "openai", model: "gpt-4-turbo" }), "cl100k_base")
    assert.strictEqual(Tokenizer.encodingFor({ provider: "openai", model: "gpt-3.5-turbo" }), "cl100k_base")
    assert.strictEqual(Tokenizer.encodingFor({ provider: "openrouter", model: "openai/gpt-4o" }), "o200k_base")
    assert.isUndefined(Tokenizer.encodingFor({ provider: "anthropic", model: "claude-sonnet-4-5" }))
    assert.isUndefined(Tokenizer.encodingFor({ provider: "groq", model: "openai/gpt-oss-120b" }))
  })

  it.effect("counts a chat like OpenAI bills it: 3 per message + role + content, 3 to prime the reply", () =>
    Effect.gen(function*() {
      // gpt-tokenizer's encodeChat of the same chat for gpt-4o is 17 tokens.
      const count = yield* Tokenizer.countRequest({
        system: "You are helpful.",
        messages: [{ role: "user", content: "Hello there" }]
      }, gpt4o)
      assert.deepStrictEqual(count, { tokens: 17, estimated: false })
    }))

  it.effect("marks counts for other providers as estimates, on the high side", () =>
    Effect.gen(function*() {
      const exact = yield* Tokenizer.countText("The quick brown fox jumps over the lazy dog.", gpt4o)
      const estimate = yield* Tokenizer.countText("The quick brown fox jumps over the lazy dog.", {
        provider: "anthropic",
        model: "claude-sonnet-4-5"
      })
      assert.isTrue(estimate.estimated)
      assert.isAbove(estimate.tokens, exact.tokens)
    }))

  it.effect("tools make a count an estimate and add their definitions", () =>
    Effect.gen(function*() {
      const request = { messages: [{ role: "user" as const, content: "weather?" }] }
      const plain = yield* Tokenizer.countRequest(request, gpt4o)
      const withTools = yield* Tokenizer.countRequest({
        ...request,
        tools: [{ name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } } } }]
      }, gpt4o)
      assert.isTrue(withTools.estimated)
      assert.isAbove(withTools.tokens, plain.tokens + 10)
    }))

  it.effect("treats special-token spellings in user text as plain text", () =>
    Effect.gen(function*() {
      const count = yield* Tokenizer.countText("say <|endoftext|> now", gpt4o)
      assert.isAbove(count.tokens, 3)
    }))

  it.effect("once its encoding is loaded, a count is answered in the caller's step: no suspension, no reload", () =>
    Effect.gen(function*() {
      const tokenizer = yield* Tokenizer.Tokenizer
      const request = { system: "You are helpful.", messages: [{ role: "user" as const, content: "What is the capital of France?" }] }
      const first = yield* tokenizer.countRequest(request, gpt4o)
      const runSync = Effect.runSyncWith(yield* Effect.context())
      // `runSyncWith` (the test's context) throws on an effect that suspends (a load, a lookup off the fiber).
      for (let i = 0; i < 100; i++) {
        const fresh = { ...request, messages: [{ role: "user" as const, content: `What is the capital of France? (${i})` }] }
        assert.isAbove(runSync(tokenizer.countRequest(fresh, gpt4o)).tokens, first.tokens)
      }
      assert.deepStrictEqual(runSync(tokenizer.countRequest(request, gpt4o)), first)
    }))
})

describe("Tokenizer remembered counts", () => {
  it.effect("a text counted again, or after a megabyte of other text pushed it out, counts the same", () =>
    Effect.gen(function*() {
      const tokenizer = Tokenizer.make()
      const text = "The quick brown fox jumps over the lazy dog."
      const first = yield* tokenizer.countText(text, gpt4o)
      assert.deepStrictEqual(yield* tokenizer.countText(text, gpt4o), first)
      const filler = "lorem ipsum dolor sit amet ".repeat(400)
      for (let i = 0; i < 120; i++) yield* tokenizer.countText(`${i} ${filler}`, gpt4o)
      assert.deepStrictEqual(yield* tokenizer.countText(text, gpt4o), { tokens: 10, estimated: false })
      // A new request object with the same texts counts the same as the first one.
      const request = { system: "You are helpful.", messages: [{ role: "user" as const, content: "Hello there" }] }
      assert.deepStrictEqual(yield* tokenizer.countRequest(request, gpt4o), { tokens: 17, estimated: false })
      assert.deepStrictEqual(yield* tokenizer.countRequest({ ...request }, gpt4o), { tokens: 17, estimated: false })
    }))
})
