import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Duration, Effect, Fiber, Layer, Schema, Stream } from "effect"
import { RateLimiter } from "effect/persistence"
import { TestClock } from "effect/testing"
import { LLM, Llm, LlmError, type LlmResponse, RateLimit } from "../src/index.ts"

const gpt = { provider: "openai", model: "gpt-4o" }
const ask = (maxTokens = 100) => ({ messages: [{ role: "user" as const, content: "q" }], maxTokens, model: "gpt-4o" })

const getLlm = Effect.gen(function*() {
  return yield* LLM
})

const limited = (test: Llm.TestLlm, options: RateLimit.Options) =>
  Effect.provide(getLlm, RateLimit.layer(options)(test.layer))

/**
 * A 200-token limit over a provider whose answers use 18, then 158 tokens: reserved 8 + `maxTokens` each, so
 * the second call fits only if the first one's unused tokens went back.
 */
const reconciling = Effect.gen(function*() {
  const test = yield* Llm.makeTest({
    ...gpt,
    steps: [
      { text: "ok", usage: { inputTokens: 8, outputTokens: 10 } }, // reserved 8 + 100, used 18
      { text: "ok", usage: { inputTokens: 8, outputTokens: 150 } }, // reserved 8 + 170, used 158
      { text: "ok" }
    ]
  })
  const llm = yield* limited(test, { tokens: { limit: 200, window: "1 minute" }, onExceeded: "fail" })
  return { llm, test }
})

describe("RateLimit", () => {
  it.effect("fail mode refuses the call over the request limit with a local RateLimited and a retryAfter", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* limited(test, { requests: { limit: 2, window: "1 minute" }, onExceeded: "fail" })
      yield* llm.generate(ask())
      yield* llm.generate(ask())
      const error = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") {
        assert.deepStrictEqual([error.source, error.scope], ["local", "requests"])
        assert.isAbove(Duration.toMillis(error.retryAfter!), 0)
      }
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("wait mode queues callers in arrival order and lets each through when its slot comes", () =>
    Effect.gen(function*() {
      const order: Array<number> = []
      const test = yield* Llm.makeTest({ ...gpt, respond: (request) => {
        order.push(Number(request.metadata?.requestId))
        return { text: "ok" }
      } })
      const llm = yield* limited(test, { requests: { limit: 1, window: "1 second" }, onExceeded: "wait" })
      const fibers = []
      for (let i = 0; i < 3; i++) {
        fibers.push(yield* Effect.forkChild(llm.generate({ ...ask(), metadata: { requestId: String(i) } })))
      }
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(order, [0])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(order, [0, 1])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(order, [0, 1, 2])
      yield* Fiber.joinAll(fibers)
    }))

  it.effect("a wait beyond maxWait fails at once and gives its slot back", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const llm = yield* limited(test, {
        requests: { limit: 1, window: "10 seconds" },
        onExceeded: "wait",
        maxWait: "1 second"
      })
      yield* llm.generate(ask())
      const error = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") assert.isAbove(Duration.toMillis(error.retryAfter!), 1000)
      yield* TestClock.adjust("10 seconds")
      // Had the refused call kept its slot, this one would have to wait another 10 s.
      yield* llm.generate(ask())
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("tokens are reserved from the count plus maxTokens and reconciled from usage both ways", () =>
    Effect.gen(function*() {
      const { llm, test } = yield* reconciling
      yield* llm.generate(ask(100))
      // 18 used: 178 more fit only because the unused 90 went back.
      yield* llm.generate(ask(170))
      // 18 + 158 used: a request of 8 + 100 no longer fits, because the extra was charged.
      const error = yield* Effect.flip(llm.generate(ask(100)))
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") assert.strictEqual(error.scope, "tokens")
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("a streamed call's tokens are reconciled from its finish part's usage, as a whole call's are", () =>
    Effect.gen(function*() {
      const { llm, test } = yield* reconciling
      yield* Stream.runDrain(llm.stream(ask(100)))
      // 18 used: 178 more fit only because the unused 90 went back when the stream ended.
      yield* Stream.runDrain(llm.stream(ask(170)))
      // 18 + 158 used: a request of 8 + 100 no longer fits, because the extra was charged.
      const error = yield* Effect.flip(Stream.runDrain(llm.stream(ask(100))))
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") assert.strictEqual(error.scope, "tokens")
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("a failed call gives its tokens back", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...gpt,
        steps: [{ error: new LlmError.ServerError({ provider: "openai", status: 500 }) }, { text: "ok" }]
      })
      const llm = yield* limited(test, { tokens: { limit: 200, window: "1 minute" }, onExceeded: "fail" })
      yield* Effect.flip(llm.generate(ask(150)))
      yield* llm.generate(ask(150))
    }))

  it.effect("limits tighten when the provider's headers say no requests remain, until their reset", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      let remaining = 1
      const withHeaders = Layer.succeed(LLM, LLM.of({
        generate: (request) =>
          Effect.map(test.service.generate(request), (response): LlmResponse.LlmResponse => ({
            ...response,
            rateLimit: { requestsRemaining: remaining--, requestsReset: Duration.seconds(5) }
          })),
        stream: test.service.stream
      }))
      const llm = yield* Effect.provide(
        getLlm,
        RateLimit.layer({ requests: { limit: 100, window: "1 minute" }, onExceeded: "fail" })(withHeaders)
      )
      yield* llm.generate(ask()) // headers: 1 left
      yield* llm.generate(ask()) // headers: 0 left
      const error = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(error._tag, "RateLimited")
      if (error._tag === "RateLimited") {
        assert.strictEqual(error.source, "local")
        assert.strictEqual(Duration.toMillis(error.retryAfter!), 5000)
      }
      assert.strictEqual((yield* test.requests).length, 2)
      yield* TestClock.adjust("5 seconds")
      yield* llm.generate(ask())
    }))

  it.effect("each response's headers replace the key's hints: a provider that reports more left lets calls through again", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      // What the provider reports after each call: 1 left, then a new window with 5 left, then none.
      const reported = [1, 5, 0]
      let call = 0
      const withHeaders = Layer.succeed(LLM, LLM.of({
        generate: (request) =>
          Effect.map(test.service.generate(request), (response): LlmResponse.LlmResponse => ({
            ...response,
            rateLimit: { requestsRemaining: reported[call++]!, requestsReset: Duration.seconds(5) }
          })),
        stream: test.service.stream
      }))
      const llm = yield* Effect.provide(
        getLlm,
        RateLimit.layer({ requests: { limit: 100, window: "1 minute" }, onExceeded: "fail" })(withHeaders)
      )
      yield* llm.generate(ask()) // headers: 1 left
      yield* llm.generate(ask()) // counted against the hint (0 left), then headers: 5 left
      yield* llm.generate(ask()) // let through by the new hint; headers: none left
      const error = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(error._tag, "RateLimited")
      assert.strictEqual((yield* test.requests).length, 3)
    }))

  it.effect("a provider 429 with Retry-After pauses the key; wait mode sits it out", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...gpt,
        steps: [
          { error: new LlmError.RateLimited({ provider: "openai", scope: "requests", source: "provider", retryAfter: Duration.seconds(2) }) },
          { text: "ok" }
        ]
      })
      const llm = yield* limited(test, { requests: { limit: 100, window: "1 minute" }, onExceeded: "wait" })
      yield* Effect.flip(llm.generate(ask()))
      const fiber = yield* Effect.forkChild(llm.generate(ask()))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* test.requests).length, 1)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* test.requests).length, 2)
    }))
})

describe("RateLimit in-process counting", () => {
  /** mulberry32: a tiny seeded PRNG. */
  const prng = (seed: number) => {
    let a = seed >>> 0
    return () => {
      a = (a + 0x6D2B79F5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }

  it.effect.prop(
    "the default in-memory limiter answers every call exactly as Effect's RateLimiter over a memory store",
    [Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 31 - 1 })))],
    ([seed]) =>
      Effect.gen(function*() {
        const next = prng(seed)
        const plan = Array.from({ length: 60 }, () => ({
          maxTokens: 10 + Math.floor(next() * 300),
          output: Math.floor(next() * 400),
          fails: next() < 0.2,
          advanceMs: Math.floor(next() * 3000)
        }))
        const script = {
          ...gpt,
          respond: (_request: unknown, index: number) => {
            const step = plan[index % plan.length]!
            return step.fails
              ? { error: new LlmError.ServerError({ provider: "openai", status: 500 }) }
              : { text: "ok", usage: { inputTokens: 8, outputTokens: step.output } }
          }
        }
        for (const mode of ["fail", "wait"] as const) {
          const options: RateLimit.Options = {
            requests: { limit: 7, window: "10 seconds" },
            tokens: { limit: 900, window: "7 seconds" },
            onExceeded: mode,
            maxWait: "0 millis"
          }
          const local = yield* limited(yield* Llm.makeTest(script), options)
          const viaStore = yield* Effect.provide(
            getLlm,
            RateLimit.layer({ ...options, store: Layer.fresh(RateLimiter.layerStoreMemory) })(
              (yield* Llm.makeTest(script)).layer
            )
          )
          const outcome = (llm: LLM["Service"], maxTokens: number) =>
            Effect.match(llm.generate(ask(maxTokens)), {
              onSuccess: () => "ok",
              onFailure: (error) =>
                error._tag === "RateLimited"
                  ? `${error.scope} ${Duration.toMillis(error.retryAfter!)} ${error.detail}`
                  : error._tag
            })
          for (const step of plan) {
            const a = yield* outcome(local, step.maxTokens)
            const b = yield* outcome(viaStore, step.maxTokens)
            assert.strictEqual(a, b, `${mode} mode`)
            yield* TestClock.adjust(Duration.millis(step.advanceMs))
          }
        }
      }),
    { arbitrary: { runs: 20 } }
  )
})
