import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Events, Llm, LlmError } from "../src/index.ts"

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

describe("Llm.layerTest, more", () => {
  it.effect("answers from a function of the request and index", () =>
    Effect.gen(function*() {
      const a = yield* Llm.generateText("ping")
      const b = yield* Llm.generateText("pong")
      assert.deepStrictEqual([a, b], ["0:ping", "1:pong"])
    }).pipe(Effect.provide(Llm.layerTest({
      respond: (request, index) => ({ text: `${index}:${String(request.messages[0]?.content)}` })
    }))))

  it.effect("reports tool calls with a tool-calls finish reason, in whole and streamed calls", () =>
    Effect.gen(function*() {
      const response = yield* Llm.generate({ messages: [{ role: "user", content: "weather?" }] })
      assert.strictEqual(response.finishReason, "tool-calls")
      assert.deepStrictEqual(response.toolCalls, [{ type: "tool-call", id: "c1", name: "weather", input: { city: "Oslo" } }])
      const parts = yield* Stream.runCollect(Llm.stream({ messages: [{ role: "user", content: "weather?" }] }))
      assert.deepStrictEqual(parts.find((p) => p.type === "tool-call-delta"), {
        type: "tool-call-delta",
        id: "c1",
        name: "weather",
        inputDelta: "{\"city\":\"Oslo\"}"
      })
    }).pipe(Effect.provide(Llm.layerTest([{ text: "", toolCalls: [{ id: "c1", name: "weather", input: { city: "Oslo" } }] }]))))

  it.effect("records calls interrupted before they answered", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Llm.generateText("x"))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      const test = yield* Llm.LlmTest
      assert.strictEqual(yield* test.interrupted, 1)
      assert.strictEqual(yield* test.completed, 0)
    }).pipe(Effect.provide(Llm.layerTest([{ text: "never", delay: "1 hour" }]))))

  it.effect("a stream failing mid-way emits its chunks, then the typed error", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const error = yield* Effect.flip(Stream.runForEach(
        Llm.stream({ messages: [{ role: "user", content: "x" }] }),
        (part) => Effect.sync(() => part.type === "text-delta" && seen.push(part.text))
      ))
      assert.deepStrictEqual(seen, ["par", "tial"])
      assert.strictEqual(error._tag, "Overloaded")
    }).pipe(Effect.provide(Llm.layerTest([{
      error: new LlmError.Overloaded({ provider: "test" }),
      chunks: ["par", "tial"]
    }]))))

  it.effect("prices usage from the catalog and records the attempt", () =>
    Effect.gen(function*() {
      const response = yield* Llm.generate({ messages: [{ role: "user", content: "x" }] })
      // gpt-4o-mini: $0.15 / M input, $0.60 / M output
      assert.closeTo(response.costUsd, (1000 * 0.15 + 500 * 0.6) / 1_000_000, 1e-12)
      assert.isUndefined(response.priceUnknown)
      assert.strictEqual(response.attempts.length, 1)
      assert.strictEqual(response.attempts[0]?.outcome, "ok")
      assert.strictEqual(response.attempts[0]?.costUsd, response.costUsd)
    }).pipe(Effect.provide(Llm.layerTest({
      model: "gpt-4o-mini",
      steps: [{ text: "x", usage: { inputTokens: 1000, outputTokens: 500 } }]
    }))))

  it.effect("an unknown model is priced by the fallback rule and says so", () =>
    Effect.gen(function*() {
      const response = yield* Llm.generate({ messages: [{ role: "user", content: "x" }], model: "mystery-1" })
      assert.isTrue(response.priceUnknown)
      assert.isAbove(response.costUsd, 0)
    }).pipe(Effect.provide(Llm.layerTest([{ text: "x", usage: { inputTokens: 10, outputTokens: 10 } }]))))

  it.effect("a request deadline bounds the call with Timeout", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Effect.flip(Llm.generate({
        messages: [{ role: "user", content: "x" }],
        deadline: Duration.millis(500)
      })))
      yield* TestClock.adjust("500 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "Timeout")
      assert.strictEqual((yield* Llm.LlmTest.use((t) => t.interrupted)), 1)
    }).pipe(Effect.provide(Llm.layerTest([{ text: "slow", delay: "10 seconds" }]))))

  it.effect("publishes AttemptStarted and AttemptFailed events when a bus is provided", () =>
    Effect.gen(function*() {
      const collected = yield* Effect.forkChild(Stream.runCollect(Stream.take(Events.stream, 2)))
      yield* Effect.yieldNow
      yield* Effect.flip(Llm.generateText("x"))
      const events = yield* Fiber.join(collected)
      assert.deepStrictEqual(events.map((e) => e._tag), ["AttemptStarted", "AttemptFailed"])
    }).pipe(Effect.provide([
      Llm.layerTest([{ error: new LlmError.ServerError({ provider: "test", status: 500 }) }]),
      Events.layer()
    ])))
})

describe("Llm.layerTest without recording", () => {
  it.effect("answers and counts calls but keeps no requests when record is false", () =>
    Effect.gen(function*() {
      yield* Llm.generateText("a")
      yield* Llm.generateText("b")
      const test = yield* Llm.LlmTest
      assert.deepStrictEqual(yield* test.requests, [])
      assert.strictEqual(yield* test.completed, 2)
    }).pipe(Effect.provide(Llm.layerTest({ record: false, steps: [{ text: "x" }] }))))
})

describe("Llm.observeAttempts", () => {
  it.effect("tells the observer of every attempt: successes priced, failures and interruptions at zero", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const observe = Llm.observeAttempts((attempt) => seen.push(`${attempt.outcome}:${attempt.costUsd > 0}`))
      yield* observe(Llm.generateText("a"))
      yield* Effect.flip(observe(Llm.generateText("b")))
      const slow = yield* Effect.forkChild(observe(Llm.generateText("c")))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(slow)
      yield* Stream.runDrain(Llm.stream({ messages: [{ role: "user", content: "d" }] }).pipe(Llm.observeAttemptsStream((a) => seen.push(`stream ${a.outcome}`))))
      assert.deepStrictEqual(seen, ["ok:true", "ServerError:false", "Interrupted:false", "stream ok"])
    }).pipe(Effect.provide(Llm.layerTest({
      model: "gpt-4o-mini",
      steps: [
        { text: "one", usage: { inputTokens: 100, outputTokens: 10 } },
        { error: new LlmError.ServerError({ provider: "test", status: 500 }) },
        { text: "never", delay: "1 hour" },
        { text: "four" }
      ]
    }))))

  it.effect("an attempt that finished is observed even when the caller's deadline fires afterwards", () =>
    Effect.gen(function*() {
      let observed = 0
      const fiber = yield* Effect.forkChild(Effect.flip(
        Llm.generateText("x").pipe(
          Effect.tap(() => Effect.sleep("2 seconds")), // the answer arrives, then the caller is held up
          Llm.observeAttempts((attempt) => {
            observed += attempt.costUsd
          }),
          Llm.withDeadline("1 second")
        )
      ))
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "Timeout")
      assert.isAbove(observed, 0)
    }).pipe(Effect.provide(Llm.layerTest({
      model: "gpt-4o-mini",
      steps: [{ text: "paid for", usage: { inputTokens: 1000, outputTokens: 100 } }]
    }))))
})

describe("Llm.choose", () => {
  const ask = (tenant: string) => ({ messages: [{ role: "user" as const, content: "hi" }], metadata: { tenant } })
  const texts = (parts: ReadonlyArray<{ readonly type: string; readonly text?: string }>) =>
    parts.flatMap((part) => part.type === "text-delta" && part.text !== undefined ? [part.text] : []).join("")

  it.effect("hands each call, whole or streamed, to the service picked for it when it runs", () =>
    Effect.gen(function*() {
      const small = yield* Llm.makeTest({ provider: "openai", model: "small", steps: [{ text: "from small" }] })
      const large = yield* Llm.makeTest({ provider: "openai", model: "large", steps: [{ text: "from large" }] })
      let picks = 0
      const llm = Llm.choose((request) =>
        Effect.sync(() => {
          picks++
          return request.metadata?.tenant === "pro" ? large.service : small.service
        })
      )
      assert.strictEqual((yield* llm.generate(ask("pro"))).text, "from large")
      assert.strictEqual((yield* llm.generate(ask("free"))).text, "from small")
      const stream = llm.stream(ask("pro"))
      assert.strictEqual(picks, 2)
      assert.strictEqual(texts(yield* Stream.runCollect(stream)), "from large")
      assert.strictEqual(texts(yield* Stream.runCollect(stream)), "from large")
      assert.strictEqual(picks, 4)
      assert.deepStrictEqual([(yield* large.requests).length, (yield* small.requests).length], [3, 1])
    }))

  it.effect("a pick that fails fails the call, whole or streamed, with its error", () =>
    Effect.gen(function*() {
      const refused = new LlmError.InvalidRequest({ provider: "router", message: "no model for this tenant" })
      const llm = Llm.choose(() => Effect.fail(refused))
      assert.strictEqual(yield* Effect.flip(llm.generate(ask("x"))), refused)
      assert.strictEqual(yield* Effect.flip(Stream.runCollect(llm.stream(ask("x")))), refused)
    }))

  it.effect("the chosen stream's resources are released when the stream ends or is dropped", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const chosen = yield* Llm.makeTest({ provider: "openai", model: "m", steps: [{ text: "abc", chunks: ["a", "b", "c"] }] })
      const tracked = Llm.LLM.of({
        generate: chosen.service.generate,
        stream: (request) =>
          Stream.unwrap(Effect.acquireRelease(
            Effect.sync(() => void log.push("open")),
            () => Effect.sync(() => void log.push("close"))
          ).pipe(Effect.as(chosen.service.stream(request))))
      })
      const llm = Llm.choose(() => Effect.succeed(tracked))
      yield* Stream.runDrain(llm.stream(ask("x")))
      assert.deepStrictEqual(log, ["open", "close"])
      yield* Stream.runDrain(Stream.take(llm.stream(ask("x")), 1))
      assert.deepStrictEqual(log, ["open", "close", "open", "close"])
    }))
})
