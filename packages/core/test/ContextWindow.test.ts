import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { countTokens } from "gpt-tokenizer/encoding/o200k_base"
import { ContextWindow, Llm, Pricing, Tokenizer } from "../src/index.ts"
import type { LlmRequest, Message } from "../src/LlmRequest.ts"

// A conversation with a tool turn. Exact o200k_base counts (gpt-4o), each with 3 framing + 1 role token:
// system 8, first user 9, tool call + its result 14 + 12 = 26 (one turn), "Apples are red." 9,
// second user 9, "Pears are green." 9, third user 10; plus 3 reply-priming tokens: 83 in all.
const system: Message = { role: "system", content: "You are terse." }
const first: Message = { role: "user", content: "First question about apples." }
const call: Message = { role: "assistant", content: [{ type: "tool-call", id: "c1", name: "lookup", input: { q: "apples" } }] }
const result: Message = { role: "tool", content: [{ type: "tool-result", toolCallId: "c1", output: "Apples are red." }] }
const apples: Message = { role: "assistant", content: "Apples are red." }
const second: Message = { role: "user", content: "Second question about pears." }
const pears: Message = { role: "assistant", content: "Pears are green." }
const third: Message = { role: "user", content: "Third question about plums." }
const conversation = [system, first, call, result, apples, second, pears, third]
const request: LlmRequest = { model: "gpt-4o", messages: conversation }
const gpt4o = { provider: "openai", model: "gpt-4o" }

const count = (r: LlmRequest) => Effect.map(Tokenizer.countRequest(r, gpt4o), (c) => c.tokens)

/** The documented chat framing, computed here with the BPE directly: 3 + Σ (3 + 1 + content). */
const framed = (messages: ReadonlyArray<Message>) =>
  3 + messages.reduce((n, m) => n + 4 + countTokens(m.content as string), 0)

describe("ContextWindow.fit", () => {
  it.effect("counts the whole conversation exactly and returns a request that fits unchanged", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* count(request), 83)
      const fitted = yield* ContextWindow.fit(request, { strategy: "start", maxInputTokens: 83 })
      assert.strictEqual(fitted, request)
    }))

  it.effect("start: drops the oldest turns, the tool call together with its result, and keeps system", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit(request, { strategy: "start", maxInputTokens: 60 })
      assert.deepStrictEqual(fitted.messages, [system, apples, second, pears, third])
      assert.strictEqual(yield* count(fitted), 48)
      const tight = yield* ContextWindow.fit(request, { strategy: "start", maxInputTokens: 40 })
      assert.deepStrictEqual(tight.messages, [system, second, pears, third])
      assert.strictEqual(yield* count(tight), 39)
      assert.strictEqual(framed(tight.messages), 39)
    }))

  it.effect("end: drops the newest turns and keeps the tool turn whole", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit(request, { strategy: "end", maxInputTokens: 50 })
      assert.deepStrictEqual(fitted.messages, [system, first, call, result])
      assert.strictEqual(yield* count(fitted), 46)
      const tighter = yield* ContextWindow.fit(request, { strategy: "end", maxInputTokens: 45 })
      assert.deepStrictEqual(tighter.messages, [system, first])
      assert.strictEqual(yield* count(tighter), 20)
    }))

  it.effect("middle: drops from the middle outwards, keeping the first and last turns", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit(request, { strategy: "middle", maxInputTokens: 70 })
      assert.deepStrictEqual(fitted.messages, [system, first, call, result, pears, third])
      assert.strictEqual(yield* count(fitted), 65)
      const tight = yield* ContextWindow.fit(request, { strategy: "middle", maxInputTokens: 60 })
      assert.deepStrictEqual(tight.messages, [system, first, pears, third])
      assert.strictEqual(yield* count(tight), 39)
    }))

  it.effect("smart: keeps system, the first user turn and the most recent turns", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit(request, { strategy: "smart", maxInputTokens: 50 })
      assert.deepStrictEqual(fitted.messages, [system, first, second, pears, third])
      assert.strictEqual(yield* count(fitted), 48)
    }))

  it.effect("reserve is taken from the budget", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit(request, { strategy: "start", maxInputTokens: 70, reserve: 10 })
      assert.deepStrictEqual(fitted.messages, [system, apples, second, pears, third])
    }))

  it.effect("the window comes from the Pricing catalog, minus the request's maxTokens, when maxInputTokens is not given", () =>
    Effect.gen(function*() {
      const fitted = yield* ContextWindow.fit({ ...request, model: "gpt-4o-tiny", maxTokens: 10 }, { strategy: "smart" })
      assert.deepStrictEqual(fitted.messages, [system, first, second, pears, third])
      assert.strictEqual(yield* Effect.map(Tokenizer.countRequest(fitted, { provider: "openai", model: "gpt-4o-tiny" }), (c) => c.tokens), 48)
    }).pipe(Effect.provide(Pricing.layer({
      entries: [{
        provider: "openai",
        model: "gpt-4o-tiny",
        inputPerMillion: 1,
        outputPerMillion: 1,
        contextWindow: 60,
        maxOutput: 10,
        capabilities: { tools: true, vision: false, jsonSchema: true, prefill: false, reasoning: false }
      }]
    }))))

  it.effect("fails with ContextLengthExceeded { limit, requested } when even the kept turns do not fit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ContextWindow.fit(request, { strategy: "start", maxInputTokens: 20 }))
      assert.strictEqual(error._tag, "ContextLengthExceeded")
      assert.strictEqual(error.limit, 20)
      assert.strictEqual(error.requested, 21) // system 8 + last user 10 + priming 3
      const smart = yield* Effect.flip(ContextWindow.fit(request, { strategy: "smart", maxInputTokens: 25 }))
      assert.strictEqual(smart.requested, 30) // system + first user + last user
    }))
})

describe("ContextWindow.layer", () => {
  it.effect("fits every request on its way down", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "ok" }])
      const layer = test.layer.pipe(ContextWindow.layer({ strategy: "start", maxInputTokens: 40 }))
      yield* Llm.generate(request).pipe(Effect.provide(layer))
      const [seen] = yield* test.requests
      assert.deepStrictEqual(seen?.messages, [system, second, pears, third])
    }))

  it.effect("a request that cannot fit fails before any call", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate(request).pipe(
        Effect.provide(Llm.layerTest([{ text: "ok" }]).pipe(ContextWindow.layer({ strategy: "end", maxInputTokens: 10 })))
      ))
      assert.strictEqual(error._tag, "ContextLengthExceeded")
    }))

  it.effect("streams are fitted too", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "ok" }])
      yield* Effect.provide(
        Stream.runDrain(Llm.stream(request)),
        test.layer.pipe(ContextWindow.layer({ strategy: "smart", maxInputTokens: 50 }))
      )
      const [seen] = yield* test.requests
      assert.deepStrictEqual(seen?.messages, [system, first, second, pears, third])
    }))

  it.effect("a bad option fails the layer at build with SwitchboardConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(
        Llm.layerTest([{ text: "ok" }]).pipe(ContextWindow.layer({ strategy: "oldest" as never, reserve: -1 }))
      ))
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      assert.strictEqual(error.path, "ContextWindow.strategy")
      assert.deepStrictEqual(error.issues?.map((i) => i.path), ["ContextWindow.strategy", "ContextWindow.reserve"])
    }))
})

describe("ContextWindow.prune", () => {
  const items = [
    { id: "a", text: "Alpha paragraph about the launch schedule.", score: 0.2, timestamp: 400 },
    { id: "b", text: "Bravo note on pricing tiers and discounts.", score: 0.9, timestamp: 100 },
    { id: "c", text: "Charlie memo about the hiring plan.", score: 0.5, timestamp: 300 },
    { id: "d", text: "Delta update on the vendor contract renewal terms.", score: 0.7, timestamp: 200 }
  ]
  const tokens = (text: string) => countTokens(text)

  it.effect("relevance: best score first, within the budget", () =>
    Effect.gen(function*() {
      const budget = tokens(items[1]!.text) + tokens(items[3]!.text)
      const picked = yield* ContextWindow.prune(items, { maxTokens: budget, strategy: "relevance" })
      assert.deepStrictEqual(picked.map((i) => i.id), ["b", "d"])
    }))

  it.effect("recency: newest first, skipping an item that would overflow and taking a smaller one", () =>
    Effect.gen(function*() {
      const budget = tokens(items[0]!.text) + tokens(items[2]!.text)
      const all = yield* ContextWindow.prune(items, { maxTokens: 10_000, strategy: "recency" })
      assert.deepStrictEqual(all.map((i) => i.id), ["a", "c", "d", "b"])
      const bounded = yield* ContextWindow.prune(items, { maxTokens: budget, strategy: "recency" })
      assert.deepStrictEqual(bounded.map((i) => i.id), ["a", "c"])
      const total = bounded.reduce((n, i) => n + tokens(i.text), 0)
      assert.isAtMost(total, budget)
    }))

  it.effect("hybrid: weighted blend of scaled relevance and recency", () =>
    Effect.gen(function*() {
      // relevance scaled: a 0, b 1, c 0.43, d 0.71; recency scaled: a 1, b 0, c 0.67, d 0.33
      const even = yield* ContextWindow.prune(items, { maxTokens: 10_000, strategy: "hybrid" })
      assert.deepStrictEqual(even.map((i) => i.id), ["c", "d", "a", "b"])
      const relevant = yield* ContextWindow.prune(items, {
        maxTokens: 10_000,
        strategy: "hybrid",
        weights: { relevance: 0.9, recency: 0.1 }
      })
      assert.deepStrictEqual(relevant.map((i) => i.id), ["b", "d", "c", "a"])
    }))

  it.effect("every budget is respected", () =>
    Effect.gen(function*() {
      for (let budget = 0; budget <= 40; budget++) {
        const picked = yield* ContextWindow.prune(items, { maxTokens: budget, strategy: "hybrid" })
        assert.isAtMost(picked.reduce((n, i) => n + tokens(i.text), 0), budget)
      }
    }))

  it.effect("items may say content / relevance and carry Date timestamps; their own fields are kept", () =>
    Effect.gen(function*() {
      const docs = [
        { content: "old but relevant", relevance: 0.9, timestamp: new Date(1_000), source: "wiki" },
        { content: "new and less relevant", relevance: 0.1, timestamp: new Date(9_000), source: "chat" }
      ]
      assert.deepStrictEqual((yield* ContextWindow.prune(docs, { maxTokens: 100, strategy: "recency" })).map((d) => d.source), ["chat", "wiki"])
      assert.deepStrictEqual((yield* ContextWindow.prune(docs, { maxTokens: 100, strategy: "relevance" })).map((d) => d.source), ["wiki", "chat"])
    }))

  it.effect("bad options fail with SwitchboardConfigError naming them", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ContextWindow.prune(items, { maxTokens: -5, strategy: "relevance" }))
      assert.strictEqual(error.path, "ContextWindow.prune.maxTokens")
    }))
})
