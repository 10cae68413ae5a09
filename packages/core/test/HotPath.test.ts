import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { CircuitBreaker, Fallback, Llm, LlmError, LlmResponse, ResponseCache, Retry } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }
const server = (provider: string) => new LlmError.ServerError({ provider, model: "m", status: 500 })

/** A tracer that keeps every span it makes. */
const recording = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

const parentName = (span: Tracer.Span): string | undefined => {
  const parent = Option.getOrUndefined(span.parent)
  return parent?._tag === "Span" ? parent.name : undefined
}

describe("tracing", () => {
  it.effect("with a tracer installed, a fallback call is a Fallback.generate span naming who answered, each try an Llm.attempt span under it", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: server("a") }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "ok" }] })
      const { spans, tracer } = recording()
      yield* Llm.generate(ask).pipe(Effect.provide(Fallback.layer([a.layer, b.layer])), Effect.withTracer(tracer))
      const fallback = spans.filter((s) => s.name === "Fallback.generate")
      const attempts = spans.filter((s) => s.name === "Llm.attempt")
      assert.strictEqual(fallback.length, 1)
      assert.strictEqual(fallback[0]!.attributes.get("llm.provider"), "b")
      assert.deepStrictEqual(attempts.map((s) => s.attributes.get("llm.provider")), ["a", "b"])
      assert.deepStrictEqual(attempts.map(parentName), ["Fallback.generate", "Fallback.generate"])
      assert.isTrue(spans.every((s) => s.status._tag === "Ended"))
    }))

  it.effect("with a tracer installed, a fallback whose children all fail records the outcome on its span", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: server("a") }] })
      const { spans, tracer } = recording()
      yield* Effect.flip(
        Llm.generate(ask).pipe(Effect.provide(Fallback.layer([a.layer, a.layer])), Effect.withTracer(tracer))
      )
      const fallback = spans.find((s) => s.name === "Fallback.generate")
      assert.strictEqual(fallback?.attributes.get("llm.outcome"), "AllProvidersFailed")
    }))

  it.effect("every provider attempt runs in its own Llm.attempt span, naming provider and model, even with no tracer", () =>
    Effect.gen(function*() {
      const seen: Array<Tracer.Span> = []
      const llm = Llm.make({
        provider: "p",
        model: "m",
        generate: (request, model) =>
          Effect.flatMap(Effect.orDie(Effect.currentSpan), (span) => {
            seen.push(span)
            return Effect.succeed({
              id: "1",
              provider: "p",
              model,
              text: "ok",
              content: [{ type: "text" as const, text: "ok" }],
              toolCalls: [],
              finishReason: "stop" as const,
              usage: LlmResponse.makeUsage({ inputTokens: 1, outputTokens: 1 }),
              costUsd: 0,
              latencyMs: 0,
              cached: false,
              attempts: []
            })
          }),
        stream: () => {
          throw new Error("not used")
        }
      })
      yield* llm.generate(ask)
      yield* llm.generate({ ...ask, model: "other" })
      assert.deepStrictEqual(seen.map((s) => [s.name, s.attributes.get("llm.provider"), s.attributes.get("llm.model")]), [
        ["Llm.attempt", "p", "m"],
        ["Llm.attempt", "p", "other"]
      ])
    }))
})

describe("a call's effect run twice", () => {
  it.effect("a retried call is a fresh retry series on every run", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ error: server("p") }, { text: "one" }, { error: server("p") }, { text: "two" }])
      const llm = Retry.service({ times: 1, base: "10 millis", jitter: false })(test.service)
      const call = llm.generate(ask)
      const first = yield* Effect.forkChild(call)
      yield* TestClock.adjust("10 millis")
      const second = yield* Effect.forkChild(call)
      yield* TestClock.adjust("10 millis")
      const one = yield* Fiber.join(first)
      const two = yield* Fiber.join(second)
      assert.deepStrictEqual([one.text, two.text], ["one", "two"])
      assert.deepStrictEqual(one.attempts.map((x) => x.outcome), ["ServerError", "ok"])
      assert.deepStrictEqual(two.attempts.map((x) => x.outcome), ["ServerError", "ok"])
    }))

  it.effect("a fallback call starts from its first child on every run", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: server("a") }, { text: "a" }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const call = Fallback.service([{ service: a.service }, { service: b.service }]).generate(ask)
      const first = yield* call
      const second = yield* call
      assert.deepStrictEqual(first.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "b:ok"])
      assert.deepStrictEqual(second.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ok"])
    }))
})

describe("CircuitBreaker on a closed circuit", () => {
  it.effect("an interrupted call on a known, closed route counts nothing and leaves the circuit closed", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "ok" }, { text: "slow", delay: "1 second" }])
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 1 })
      const llm = breaker.service(test.service)
      yield* llm.generate(ask)
      const fiber = yield* Effect.forkChild(llm.generate(ask))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(yield* breaker.state("test", "test-model"), { _tag: "Closed", failures: [] })
      assert.strictEqual(yield* test.interrupted, 1)
    }))
})

describe("ResponseCache hit", () => {
  it.effect("a hit answers from memory with the hit shape, without calling the provider again", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "cached" }])
      const stack = ResponseCache.layer({ capacity: 10, ttl: "1 minute" })(test.layer)
      const [miss, hit] = yield* Effect.all([Llm.generate({ ...ask, temperature: 0 }), Llm.generate({ ...ask, temperature: 0 })]).pipe(
        Effect.provide(stack)
      )
      assert.deepStrictEqual([miss.cached, hit.cached, hit.costUsd, hit.latencyMs, hit.attempts.length], [false, true, 0, 0, 0])
      assert.strictEqual(hit.text, "cached")
      assert.strictEqual(yield* test.completed, 1)
    }))
})
