import { assert, describe, it } from "@effect/vitest"
import { type Duration, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Deadline, Fallback, Llm, LlmError, Retry } from "../src/index.ts"

const server = (provider = "a") => new LlmError.ServerError({ provider, model: "m", status: 503 })
const ask = { messages: [{ role: "user" as const, content: "hi" }] }

describe("Deadline", () => {
  it("sdkTimeout: the client's timeout, or the time left when sooner, whole milliseconds, at least 1", () => {
    assert.strictEqual(Deadline.sdkTimeout(600_000, undefined, 1_000), 600_000)
    assert.strictEqual(Deadline.sdkTimeout(600_000, 1_250.2, 1_000), 251)
    assert.strictEqual(Deadline.sdkTimeout(600_000, 900, 1_000), 1)
    assert.strictEqual(Deadline.sdkTimeout(100, 5_000, 1_000), 100)
    assert.strictEqual(Deadline.sdkTimeout(undefined, 1_500, 1_000), 500)
    assert.strictEqual(Deadline.sdkTimeout(undefined, undefined, 1_000), undefined)
    assert.strictEqual(Deadline.sdkTimeout(Number.POSITIVE_INFINITY, undefined, 1_000), undefined)
  })

  it.effect("Llm.withDeadline bounds the whole call: expiry fails with Timeout and cancels the provider call", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "late", delay: "5 seconds" }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(test.layer), Llm.withDeadline("1 second"))
      )
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "Timeout")
      assert.strictEqual(yield* test.interrupted, 1)
    }))

  it.effect("a request's deadline is one bound for all retries, not one per attempt", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server(), delay: "300 millis" }])
      const fiber = yield* Effect.forkChild(
        Llm.generate({ ...ask, deadline: 1000 }).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ times: 10, base: "400 millis", jitter: false })))
        )
      )
      // try 1: 0–300 ms, wait 400 ms, try 2: 700 ms – cut at 1000 ms
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "Timeout")
      assert.strictEqual((yield* test.requests).length, 2)
      assert.strictEqual(yield* test.interrupted, 1)
    }))

  it.effect("retries are cut short by the deadline and the fallback still runs in the time left", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", steps: [{ error: server("a") }] })
      const b = yield* Llm.makeTest({ provider: "b", steps: [{ text: "from b", delay: "100 millis" }] })
      const stack = Fallback.layer([a.layer.pipe(Retry.layer({ times: 5, base: "1 second", jitter: false })), b.layer])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(stack), Llm.withDeadline("1500 millis"))
      )
      // a fails at 0, waits 1 s, fails at 1 s; the next wait (2 s) would pass the deadline: give up, b answers at 1.1 s
      yield* TestClock.adjust("1100 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "from b")
      assert.deepStrictEqual(response.attempts.map((x) => `${x.provider}:${x.outcome}`), [
        "a:ServerError",
        "a:ServerError",
        "b:ok"
      ])
      assert.strictEqual((yield* a.requests).length, 2)
    }))

  it.effect("a deadline bounds a whole stream", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "abc", chunks: ["a", "b", "c"], chunkDelay: "400 millis" }])
      const seen: Array<string> = []
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(
          Llm.stream({ ...ask, deadline: 1000 }),
          (p) => Effect.sync(() => p.type === "text-delta" && seen.push(p.text))
        ).pipe(Effect.provide(test.layer))
      )
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("100 millis")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "Timeout")
      assert.deepStrictEqual(seen, ["a", "b"])
    }))

  it.effect("Deadline.layer bounds every call through it, and a bad duration fails the layer at build naming it", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "late", delay: "5 seconds" }])
      const fiber = yield* Effect.forkChild(Llm.generate(ask).pipe(Effect.provide(test.layer.pipe(Deadline.layer("1 second")))))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Effect.flip(Fiber.join(fiber)))._tag, "Timeout")
      for (const bad of ["soon", -1, Number.POSITIVE_INFINITY] as ReadonlyArray<Duration.Input>) {
        const error = yield* Effect.flip(Layer.build(Llm.layerTest([]).pipe(Deadline.layer(bad))))
        assert.strictEqual(error._tag === "SwitchboardConfigError" && error.path, "Deadline.duration")
      }
    }))
})
