import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Llm, ResponseCache } from "../src/index.ts"
import type { LlmResponse } from "../src/LlmResponse.ts"

const gpt = { provider: "openai", model: "gpt-4o" }
const ask = { messages: [{ role: "user" as const, content: "q" }], temperature: 0 }
const textOf = (parts: ReadonlyArray<{ readonly type: string; readonly text?: string }>) =>
  parts.filter((p) => p.type === "text-delta").map((p) => p.text).join("")
const finishOf = (parts: ReadonlyArray<{ readonly type: string }>) =>
  (parts.find((p) => p.type === "finish") as { readonly response: LlmResponse } | undefined)?.response

describe("ResponseCache single-flight for streams", () => {
  it.effect("identical concurrent cache-miss streams make one provider call; every caller gets every part", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...gpt,
        steps: [{ text: "hello", chunks: ["he", "l", "lo"], chunkDelay: "10 millis", usage: { inputTokens: 5, outputTokens: 5 } }]
      })
      const cache = yield* ResponseCache.make({ capacity: 10, ttl: "1 hour" })
      const llm = cache.wrap(test.service)
      const fibers = yield* Effect.forEach(
        Array.from({ length: 5 }),
        () => Effect.forkChild(Stream.runCollect(llm.stream(ask)))
      )
      yield* TestClock.adjust("5 millis")
      assert.strictEqual(yield* cache.streamsInFlight, 1)
      yield* TestClock.adjust("100 millis")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.strictEqual((yield* test.requests).length, 1)
      for (const parts of results) assert.strictEqual(textOf(parts), "hello")
      const finishes = results.map(finishOf)
      // The caller that started the call pays; the others get the hit shape.
      assert.strictEqual(finishes.filter((f) => f?.cached !== true).length, 1)
      assert.isAbove(finishes.find((f) => f?.cached !== true)!.costUsd, 0)
      for (const f of finishes.filter((f) => f?.cached === true)) assert.deepStrictEqual([f!.costUsd, f!.attempts.length], [0, 0])
      // Stored: the next one is a replay.
      const replay = yield* Stream.runCollect(llm.stream(ask))
      assert.strictEqual(textOf(replay), "hello")
      assert.strictEqual((yield* test.requests).length, 1)
      assert.strictEqual(yield* cache.streamsInFlight, 0)
    }))

  it.effect("a caller that disconnects does not cancel the others", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "hello", chunks: ["he", "l", "lo"], chunkDelay: "10 millis" }] })
      const llm = (yield* ResponseCache.make({ capacity: 10, ttl: "1 hour" })).wrap(test.service)
      const starter = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask)))
      const joiner = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask)))
      const quitter = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask).pipe(Stream.take(1))))
      yield* TestClock.adjust("15 millis")
      yield* Fiber.interrupt(starter)
      assert.strictEqual(textOf(yield* Fiber.join(quitter)), "he")
      yield* TestClock.adjust("100 millis")
      assert.strictEqual(textOf(yield* Fiber.join(joiner)), "hello")
      assert.strictEqual((yield* test.requests).length, 1)
      assert.strictEqual(yield* test.interrupted, 0)
    }))

  it.effect("a failure reaches every caller, and is not stored", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ cut: ["he"], delay: "10 millis" }, { text: "hello" }] })
      const llm = (yield* ResponseCache.make({ capacity: 10, ttl: "1 hour" })).wrap(test.service)
      const fibers = yield* Effect.forEach(
        Array.from({ length: 3 }),
        () => Effect.forkChild(Effect.flip(Stream.runCollect(llm.stream(ask))))
      )
      yield* TestClock.adjust("50 millis")
      const errors = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(errors.map((e) => e._tag), ["NetworkError", "NetworkError", "NetworkError"])
      assert.strictEqual((yield* test.requests).length, 1)
      const next = yield* Stream.runCollect(llm.stream(ask))
      assert.strictEqual(textOf(next), "hello")
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("when every caller has left, the provider call is cancelled", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "hello", chunks: ["he", "l", "lo"], chunkDelay: "10 millis" }] })
      const cache = yield* ResponseCache.make({ capacity: 10, ttl: "1 hour" })
      const llm = cache.wrap(test.service)
      const a = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask)))
      const b = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask)))
      yield* TestClock.adjust("5 millis")
      yield* Fiber.interrupt(a)
      yield* Fiber.interrupt(b)
      yield* Effect.yieldNow
      assert.strictEqual(yield* test.interrupted, 1)
      assert.strictEqual(yield* cache.streamsInFlight, 0)
    }))
})
