import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Events, Llm, LlmError, Retry, SwitchboardConfigError } from "../src/index.ts"

const server = () => new LlmError.ServerError({ provider: "p", model: "m", status: 500 })
const limited = (retryAfter: Duration.Input) =>
  new LlmError.RateLimited({
    provider: "p",
    model: "m",
    scope: "requests",
    source: "provider",
    retryAfter: Duration.fromInputUnsafe(retryAfter)
  })
const ask = { messages: [{ role: "user" as const, content: "hi" }] }

const collectEvents = Effect.gen(function*() {
  const seen: Array<Events.LlmEvent> = []
  yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => void seen.push(e))))
  yield* Effect.yieldNow
  return seen
})

describe("Retry.layer", () => {
  it.effect("retries retryable errors and lists the failed attempts before the success", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server() }, { error: server() }, { text: "ok" }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(test.layer.pipe(Retry.layer({ base: "100 millis", jitter: false }))))
      )
      yield* TestClock.adjust("300 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "ok")
      assert.deepStrictEqual(response.attempts.map((a) => a.outcome), ["ServerError", "ServerError", "ok"])
      const failed = response.attempts[0]!
      assert.deepStrictEqual(failed, {
        provider: "p",
        model: "m",
        outcome: "ServerError",
        latencyMs: 0,
        costUsd: 0,
        detail: server().message
      })
      assert.strictEqual((yield* test.requests).length, 3)
    }))

  it.effect("waits base, then base × 2, … exactly when jitter is off, and stops after `times` retries", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server() }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ times: 3, base: "100 millis", jitter: false })))
        )
      )
      yield* Effect.yieldNow
      const counts: Array<number> = []
      for (const wait of [100, 200, 400]) {
        yield* TestClock.adjust(wait - 1)
        counts.push((yield* test.requests).length)
        yield* TestClock.adjust(1)
        counts.push((yield* test.requests).length)
      }
      assert.deepStrictEqual(counts, [1, 2, 2, 3, 3, 4])
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual((yield* test.requests).length, 4)
    }))

  it.effect("jittered delays stay within ±jitter of the exponential step, are capped at max, and are the real waits", () =>
    Effect.gen(function*() {
      const seen = yield* collectEvents
      const test = yield* Llm.makeTest([{ error: server() }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ times: 5, base: "100 millis", max: "500 millis", jitter: 0.2 })))
        )
      )
      yield* Effect.yieldNow
      for (let n = 1; n <= 5; n++) {
        const scheduled = seen.filter((e) => e._tag === "RetryScheduled")
        assert.strictEqual(scheduled.length, n)
        const event = scheduled[n - 1]!
        assert.strictEqual(event._tag === "RetryScheduled" && event.attempt, n)
        const delay = event._tag === "RetryScheduled" ? event.delayMs : -1
        const step = 100 * 2 ** (n - 1)
        assert.isAtLeast(delay, Math.min(step * 0.8, 500))
        assert.isAtMost(delay, Math.min(step * 1.2, 500))
        const before = (yield* test.requests).length
        yield* TestClock.adjust(Math.ceil(delay) - 1)
        assert.strictEqual((yield* test.requests).length, before)
        yield* TestClock.adjust(1)
        assert.strictEqual((yield* test.requests).length, before + 1)
      }
      assert.strictEqual((yield* Effect.flip(Fiber.join(fiber)))._tag, "ServerError")
    }).pipe(Effect.provide(Events.layer())))

  it.effect("honours Retry-After when it is longer than the backoff", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: limited("2 seconds") }, { text: "ok" }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(test.layer.pipe(Retry.layer({ base: "100 millis", jitter: false }))))
      )
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual((yield* test.requests).length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).text, "ok")
    }))

  it.effect("ignores Retry-After when respectRetryAfter is false", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: limited("2 seconds") }, { text: "ok" }])
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ base: "100 millis", jitter: false, respectRetryAfter: false })))
        )
      )
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).text, "ok")
    }))

  it.effect("never retries a non-retryable error", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: new LlmError.InvalidRequest({ provider: "p", message: "bad" }) }])
      const error = yield* Effect.flip(Llm.generate(ask).pipe(Effect.provide(test.layer.pipe(Retry.layer()))))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("`while` decides which errors are retried", () =>
    Effect.gen(function*() {
      const filtered = new LlmError.ContentFiltered({ provider: "p" })
      const test = yield* Llm.makeTest([{ error: filtered }, { error: server() }, { text: "ok" }])
      const error = yield* Effect.flip(
        Llm.generate(ask).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ jitter: false, while: (e) => e._tag === "ContentFiltered" })))
        ),
        // the first retry waits 100 ms
      ).pipe(Effect.forkChild, Effect.tap(() => TestClock.adjust("100 millis")), Effect.flatMap(Fiber.join))
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("gives up at once with the last error when the next wait would pass the deadline", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: limited("5 seconds") }, { text: "ok" }])
      const error = yield* Effect.flip(
        Llm.generate(ask).pipe(
          Effect.provide(test.layer.pipe(Retry.layer())),
          Llm.withDeadline("1 second")
        )
      )
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("retries a stream that failed before its first part and records the attempt", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server() }, { text: "hello", chunks: ["he", "llo"] }])
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(Llm.stream(ask)).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ base: "100 millis", jitter: false })))
        )
      )
      yield* TestClock.adjust("100 millis")
      const parts = yield* Fiber.join(fiber)
      assert.deepStrictEqual(parts.filter((p) => p.type === "text-delta").map((p) => p.text), ["he", "llo"])
      const last = parts[parts.length - 1]!
      assert.deepStrictEqual(last.type === "finish" && last.response.attempts.map((a) => a.outcome), ["ServerError", "ok"])
    }))

  it.effect("does not retry a stream after output was emitted: it fails with the error", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server(), chunks: ["par"] }, { text: "whole" }])
      const seen: Array<string> = []
      const error = yield* Effect.flip(
        Stream.runForEach(Llm.stream(ask), (p) => Effect.sync(() => p.type === "text-delta" && seen.push(p.text))).pipe(
          Effect.provide(test.layer.pipe(Retry.layer({ jitter: false })))
        )
      )
      assert.strictEqual(error._tag, "ServerError")
      assert.deepStrictEqual(seen, ["par"])
      assert.strictEqual((yield* test.requests).length, 1)
    }))
})

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { retryable: Schema.Boolean }) {}

describe("Retry.retry (value level)", () => {
  it.effect("retries any effect whose error is retryable and keeps its error type", () =>
    Effect.gen(function*() {
      let calls = 0
      const effect = Effect.suspend(() => ++calls < 3 ? Effect.fail(new Flaky({ retryable: true })) : Effect.succeed(calls))
      const fiber = yield* Effect.forkChild(effect.pipe(Retry.retry({ base: "10 millis", jitter: false })))
      yield* TestClock.adjust("30 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 3)
    }))

  it.effect("stops on a non-retryable error", () =>
    Effect.gen(function*() {
      let calls = 0
      const effect = Effect.suspend(() => (calls++, Effect.fail(new Flaky({ retryable: false }))))
      const error: Flaky = yield* Effect.flip(effect.pipe(Retry.retry({ jitter: false })))
      assert.strictEqual(error._tag, "Flaky")
      assert.strictEqual(calls, 1)
    }))

  it.effect("rejects bad options at build, in the layer's error channel, with an error naming the option", () =>
    Effect.gen(function*() {
      const refused = (options: Retry.Options) =>
        Effect.flip(Layer.build(Llm.layerTest([]).pipe(Retry.layer(options))))
      const cases: ReadonlyArray<readonly [Retry.Options, string, RegExp]> = [
        [{ times: -1 }, "Retry.times", /integer ≥ 0, got -1/],
        [{ times: 1.5 }, "Retry.times", /integer ≥ 0, got 1.5/],
        [{ jitter: 3 }, "Retry.jitter", /\[0, 1\], got 3/],
        [{ base: "soon" as Duration.Input }, "Retry.base", /duration/],
        [{ max: "-5 millis" as Duration.Input }, "Retry.max", /duration/],
        [{ factor: 0.5 }, "Retry.factor", /≥ 1, got 0.5/],
        [{ respectRetryAfter: "yes" as unknown as boolean }, "Retry.respectRetryAfter", /boolean/],
        [{ while: 3 as unknown as () => boolean }, "Retry.while", /function/]
      ]
      for (const [options, path, message] of cases) {
        const error = yield* refused(options)
        assert.strictEqual(error._tag, "SwitchboardConfigError")
        assert.strictEqual(error.path, path)
        assert.match(error.message, message)
      }
      // the synchronous constructors throw the same typed error
      assert.throws(() => Retry.schedule({ times: -1 }), /Retry\.times: expected an integer ≥ 0, got -1/)
      assert.throws(() => Retry.retry({ jitter: 2 }), /Retry\.jitter: /)
    }))

  it("the layer keeps the wrapped layer's error and requirement types", () => {
    const layer: Layer.Layer<Llm.LLM, SwitchboardConfigError.SwitchboardConfigError> = Llm.layerTest([{ text: "x" }]).pipe(
      Retry.layer()
    )
    assert.isDefined(layer)
  })

  it.effect("Retry.policy is the whole rule as one Schedule for Effect.retry: Retry-After raises the delay, events are published", () =>
    Effect.gen(function*() {
      const seen = yield* collectEvents
      let calls = 0
      const effect = Effect.suspend(() => ++calls < 2 ? Effect.fail(limited("2 seconds")) : Effect.succeed(calls))
      const fiber = yield* Effect.forkChild(effect.pipe(Effect.retry(Retry.policy({ base: "10 millis", jitter: false }))))
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(calls, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 2)
      const scheduled = seen.filter((e) => e._tag === "RetryScheduled")
      assert.deepStrictEqual(scheduled.map((e) => e._tag === "RetryScheduled" && [e.attempt, e.delayMs, e.error]), [[1, 2000, "RateLimited"]])
    }).pipe(Effect.provide(Events.layer())))

  it.effect("Retry.retry works data-first too", () =>
    Effect.gen(function*() {
      let calls = 0
      const effect = Effect.suspend(() => ++calls < 2 ? Effect.fail(new Flaky({ retryable: true })) : Effect.succeed(calls))
      const fiber = yield* Effect.forkChild(Retry.retry(effect, { base: "10 millis", jitter: false }))
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 2)
    }))
})
