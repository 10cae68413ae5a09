import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Llm, LlmError } from "../src/index.ts"

describe("Llm.layerTest", () => {
  it.effect("answers scripted replies in order and repeats the last", () =>
    Effect.gen(function*() {
      const first = yield* Llm.generateText("hi")
      const second = yield* Llm.generateText("again")
      const third = yield* Llm.generateText("and again")
      assert.deepStrictEqual([first, second, third], ["one", "two", "two"])
      const requests = yield* Llm.LlmTest.use((t) => t.requests)
      assert.deepStrictEqual(requests.map((r) => r.messages[0]?.content), ["hi", "again", "and again"])
    }).pipe(Effect.provide(Llm.layerTest([{ text: "one" }, { text: "two" }]))))

  it.effect("streams chunks and ends with a finish part", () =>
    Effect.gen(function*() {
      const parts = yield* Stream.runCollect(Llm.stream({ messages: [{ role: "user", content: "x" }] }))
      assert.deepStrictEqual(parts.slice(0, 2), [{ type: "text-delta", text: "he" }, { type: "text-delta", text: "llo" }])
      const last = parts[parts.length - 1]
      assert.strictEqual(last?.type, "finish")
      if (last?.type === "finish") {
        assert.strictEqual(last.response.text, "hello")
        assert.strictEqual(last.response.attempts.length, 1)
      }
    }).pipe(Effect.provide(Llm.layerTest([{ text: "hello", chunks: ["he", "llo"] }]))))

  it.effect("a stream cut before its finish part fails with NetworkError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream({ messages: [{ role: "user", content: "x" }] })))
      assert.strictEqual(error._tag, "NetworkError")
    }).pipe(Effect.provide(Llm.layerTest([{ cut: ["a", "b"] }]))))

  it.effect("delays run on the TestClock", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Llm.generateText("slow"))
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "late")
    }).pipe(Effect.provide(Llm.layerTest([{ text: "late", delay: "1 second" }]))))

  it.effect("scripted errors fail with their tag", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generateText("x"))
      assert.strictEqual(error._tag, "RateLimited")
    }).pipe(Effect.provide(Llm.layerTest([{
      error: new LlmError.RateLimited({ provider: "test", scope: "requests", source: "provider" })
    }]))))
})
