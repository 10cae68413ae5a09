import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Events, LLM, Llm, LlmError, ResponseCache } from "../src/index.ts"
import { canonicalRequest, memoryKey } from "../src/internal/canonical.ts"
import type { LlmRequest } from "../src/LlmRequest.ts"

const gpt = { provider: "openai", model: "gpt-4o" }
const ask = (content = "q") => ({ messages: [{ role: "user" as const, content }], temperature: 0 })
const getLlm = Effect.gen(function*() {
  return yield* LLM
})
const cached = (test: Llm.TestLlm, options: ResponseCache.Options = { capacity: 100, ttl: "1 hour" }) =>
  Effect.provide(getLlm, ResponseCache.layer(options)(test.layer))

describe("ResponseCache", () => {
  it.effect("identical concurrent requests share one provider call; the others are free hits", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "answer", delay: "100 millis", usage: { inputTokens: 10, outputTokens: 10 } }] })
      const llm = yield* cached(test)
      const fiber = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 10 }), () => llm.generate(ask()), { concurrency: "unbounded" }))
      yield* TestClock.adjust("100 millis")
      const responses = yield* Fiber.join(fiber)
      assert.strictEqual((yield* test.requests).length, 1)
      assert.strictEqual(responses.filter((r) => !r.cached).length, 1)
      assert.isAbove(responses.find((r) => !r.cached)!.costUsd, 0)
      for (const r of responses.filter((r) => r.cached)) {
        assert.deepStrictEqual([r.text, r.costUsd, r.attempts.length], ["answer", 0, 0])
      }
      const later = yield* llm.generate(ask())
      assert.deepStrictEqual([later.cached, later.costUsd], [true, 0])
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("a shared whole call outlives the caller that started it, and stops when every caller has left", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "first", delay: "100 millis" }, { text: "second", delay: "100 millis" }, { text: "third" }] })
      const llm = yield* cached(test)
      const starter = yield* Effect.forkChild(llm.generate(ask()))
      yield* Effect.yieldNow
      const joiner = yield* Effect.forkChild(llm.generate(ask()))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(starter)
      yield* TestClock.adjust("100 millis")
      const joined = yield* Fiber.join(joiner)
      assert.deepStrictEqual([joined.text, joined.cached, (yield* test.requests).length], ["first", true, 1])
      // Alone, a caller that leaves cancels its call: the next identical request starts a new one.
      const alone = yield* Effect.forkChild(llm.generate(ask("b")))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(alone)
      const again = yield* Effect.forkChild(llm.generate(ask("b")))
      yield* TestClock.adjust("100 millis")
      const answer = yield* Fiber.join(again)
      assert.deepStrictEqual([answer.text, answer.cached, (yield* test.requests).length], ["third", false, 3])
    }))

  it.effect("entries expire after the TTL, and the least recently used goes past capacity", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* cached(test, { capacity: 2, ttl: "1 minute" })
      yield* llm.generate(ask("a"))
      yield* TestClock.adjust("61 seconds")
      assert.isFalse((yield* llm.generate(ask("a"))).cached)
      yield* llm.generate(ask("b"))
      yield* llm.generate(ask("a")) // a is now the most recently used
      yield* llm.generate(ask("c")) // evicts b
      assert.isTrue((yield* llm.generate(ask("a"))).cached)
      assert.isFalse((yield* llm.generate(ask("b"))).cached)
      assert.strictEqual((yield* test.requests).length, 5)
    }))

  it.effect("streams are recorded live and replayed part by part", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "hello", chunks: ["he", "l", "lo"] }] })
      const llm = yield* cached(test)
      const live = yield* Stream.runCollect(llm.stream(ask()))
      const replay = yield* Stream.runCollect(llm.stream(ask()))
      assert.strictEqual((yield* test.requests).length, 1)
      assert.deepStrictEqual(replay.slice(0, 3), [
        { type: "text-delta", text: "he" },
        { type: "text-delta", text: "l" },
        { type: "text-delta", text: "lo" }
      ])
      assert.deepStrictEqual(live.slice(0, 3), replay.slice(0, 3))
      const finish = replay[3]
      assert.strictEqual(finish?.type, "finish")
      if (finish?.type === "finish") assert.deepStrictEqual([finish.response.cached, finish.response.costUsd], [true, 0])
      // A stored stream also answers a whole call.
      const whole = yield* llm.generate(ask())
      assert.deepStrictEqual([whole.cached, whole.text], [true, "hello"])
    }))

  it.effect("a stream that fails or is cut is not stored", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ cut: ["he"] }, { text: "hello" }] })
      const llm = yield* cached(test)
      yield* Effect.flip(Stream.runCollect(llm.stream(ask())))
      const second = yield* Stream.runCollect(llm.stream(ask()))
      assert.strictEqual((yield* test.requests).length, 2)
      const last = second[second.length - 1]
      assert.isTrue(last?.type === "finish" && !last.response.cached)
    }))

  it.effect("keys separate tenants, models and sampling parameters, and ignore key order, requestId, tags and deadline", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* cached(test)
      yield* llm.generate({ ...ask(), metadata: { tenant: "a", requestId: "1", tags: ["x"] } })
      assert.isTrue((yield* llm.generate({ metadata: { tags: ["y"], requestId: "2", tenant: "a" }, temperature: 0, messages: [{ content: "q", role: "user" }], deadline: 5000 })).cached)
      assert.isFalse((yield* llm.generate({ ...ask(), metadata: { tenant: "b" } })).cached)
      assert.isFalse((yield* llm.generate({ ...ask(), metadata: { tenant: "a" }, model: "gpt-4o-mini" })).cached)
      assert.isFalse((yield* llm.generate({ ...ask(), metadata: { tenant: "a" }, maxTokens: 5 })).cached)
      assert.isFalse((yield* llm.generate({ ...ask(), metadata: { tenant: "a" }, seed: 1 })).cached)
      assert.strictEqual((yield* test.requests).length, 5)
    }))

  it("the canonical encoding does not depend on key order or undefined fields", () => {
    const a = canonicalRequest({ messages: [{ role: "user", content: "x" }], temperature: 0, tools: [{ name: "t", parameters: { b: 1, a: 2 } }] })
    const b = canonicalRequest({ tools: [{ parameters: { a: 2, b: 1 }, name: "t", description: undefined }], temperature: 0, messages: [{ content: "x", role: "user" }] })
    assert.strictEqual(a, b)
  })

  it("the in-memory key is shared exactly by the requests the canonical encoding puts together", () => {
    const requests: Array<LlmRequest> = []
    // (`{"t":"x"}` is how a text part is written inside the key: a string content must not pass for one)
    const contents = ["x", "y", `{"t":"x"}`, [{ type: "text" as const, text: "x" }], [{ type: "text" as const, text: "x" }, { type: "text" as const, text: "y" }]]
    for (const content of contents) {
      for (const extra of [{}, { temperature: 0 }, { temperature: 0, seed: 1 }, { model: "m", system: "s" }, { maxTokens: 5 }]) {
        for (const meta of [undefined, { tenant: "a" }, { tenant: "a", requestId: "r", tags: ["t"] }]) {
          requests.push({ messages: [{ role: "user", content }], ...extra, ...(meta === undefined ? {} : { metadata: meta }) })
        }
      }
      // the same fields written in another key order, with undefined ones left in
      requests.push({ temperature: 0, messages: [{ content, role: "user" }], topP: undefined, stop: undefined })
      requests.push({ messages: [{ role: "user", content }, { role: "assistant", content: "x" }] })
    }
    requests.push({
      messages: [{ role: "user", content: "x" }],
      tools: [{ name: "t", parameters: { b: 1, a: 2 } }],
      toolChoice: "auto",
      stop: ["a", "b"],
      responseFormat: { type: "json-schema", name: "r", schema: { y: 1, x: 2 } }
    })
    requests.push({
      responseFormat: { schema: { x: 2, y: 1 }, name: "r", type: "json-schema" },
      stop: ["a", "b"],
      toolChoice: "auto",
      tools: [{ parameters: { a: 2, b: 1 }, name: "t", description: undefined }],
      messages: [{ content: "x", role: "user" }]
    })
    requests.push({ messages: [{ role: "user", content: "x" }], stop: ["b", "a"] })
    let shared = 0
    for (const a of requests) {
      for (const b of requests) {
        const same = canonicalRequest(a) === canonicalRequest(b)
        assert.strictEqual(memoryKey(a) === memoryKey(b), same, `${canonicalRequest(a)} vs ${canonicalRequest(b)}`)
        if (same && a !== b) shared++
      }
    }
    assert.isAbove(shared, 0)
    // A long request is keyed by a digest, not by its text.
    const long = memoryKey({ messages: [{ role: "user", content: "word ".repeat(200) }] })
    assert.strictEqual(long.length, 43)
  })

  it.effect("cache: false bypasses, non-deterministic requests are not cached, and when: always caches them", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* cached(test)
      yield* llm.generate(ask())
      assert.isFalse((yield* llm.generate({ ...ask(), cache: false })).cached)
      const warm = { messages: [{ role: "user" as const, content: "q" }], temperature: 0.7 }
      yield* llm.generate(warm)
      assert.isFalse((yield* llm.generate(warm)).cached)
      const seeded = { ...warm, seed: 42 }
      yield* llm.generate(seeded)
      assert.isTrue((yield* llm.generate(seeded)).cached)
      const always = yield* cached(test, { capacity: 10, ttl: "1 hour", when: "always" })
      yield* always.generate(warm)
      assert.isTrue((yield* always.generate(warm)).cached)
    }))

  it.effect("failures are not cached", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ error: new LlmError.ServerError({ provider: "openai", status: 503 }) }, { text: "ok" }] })
      const llm = yield* cached(test)
      assert.strictEqual((yield* Effect.flip(llm.generate(ask())))._tag, "ServerError")
      assert.strictEqual((yield* llm.generate(ask())).text, "ok")
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("a CacheHit event names the request by its SHA-256 digest, never by its text, short or long", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "a" }, { text: "b" }] })
      const llm = yield* cached(test)
      const keys: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => e._tag === "CacheHit" && keys.push(e.key))))
      yield* Effect.yieldNow
      const short = ask("the secret word is hunter2")
      const long = ask(`the secret word is hunter2 ${"and more words ".repeat(100)}`)
      for (const request of [short, long]) {
        yield* llm.generate(request)
        assert.isTrue((yield* llm.generate(request)).cached)
      }
      yield* Effect.yieldNow
      const digest = (request: typeof short) => createHash("sha256").update(canonicalRequest(request, "")).digest("base64url")
      assert.deepStrictEqual(keys, [digest(short), digest(long)])
      assert.isFalse(keys.some((key) => key.includes("hunter2")))
    }).pipe(Effect.provide(Events.layer())))

  it.effect("a settled hit is served in the caller's step, without the provider", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* cached(test, { capacity: 1000, ttl: "1 hour" })
      const request = { system: "You are terse.", ...ask("What is the capital of France?") }
      yield* llm.generate(request)
      const runSync = Effect.runSyncWith(yield* Effect.context())
      // `runSyncWith` (the test's context, its clock) throws on an effect that suspends: a hit takes no async step.
      for (let i = 0; i < 100; i++) {
        const hit = runSync(llm.generate(request))
        assert.deepStrictEqual([hit.text, hit.cached, hit.costUsd], ["ok", true, 0])
      }
      assert.strictEqual((yield* test.requests).length, 1)
    }))
})
