import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Duration, Effect, Layer, Schema } from "effect"
import { RateLimiter } from "effect/persistence"
import { TestClock } from "effect/testing"
import { BoundedRateLimiterStore, type LLM, Llm, LlmError, RateLimit } from "../src/index.ts"

const gpt = { provider: "openai", model: "gpt-4o" }
const ask = (maxTokens: number, key: string) => ({
  messages: [{ role: "user" as const, content: "q" }],
  maxTokens,
  model: "gpt-4o",
  metadata: { tenant: key }
})

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

describe("BoundedRateLimiterStore", () => {
  it.effect.prop(
    "as a RateLimiterStore it answers every call exactly as Effect's memory store, across keys",
    [Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 31 - 1 })))],
    ([seed]) =>
      Effect.gen(function*() {
        const next = prng(seed)
        const plan = Array.from({ length: 60 }, () => ({
          key: `t${Math.floor(next() * 3)}`,
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
          const options = {
            requests: { limit: 5, window: "10 seconds" },
            tokens: { limit: 700, window: "7 seconds" },
            onExceeded: mode,
            maxWait: "0 millis",
            key: (request: { readonly metadata?: { readonly tenant?: string | undefined } | undefined }) =>
              request.metadata?.tenant ?? "none"
          } as const
          const over = (store: Layer.Layer<RateLimiter.RateLimiterStore>) =>
            Effect.flatMap(Llm.makeTest(script), (test) =>
              Effect.map(
                RateLimit.make(options).pipe(Effect.provide(store)),
                (limit) => limit.wrap(test.service)
              ))
          const bounded = yield* over(BoundedRateLimiterStore.layerMemory({ capacity: 100 }))
          const effects = yield* over(Layer.fresh(RateLimiter.layerStoreMemory))
          const outcome = (llm: LLM["Service"], maxTokens: number, key: string) =>
            Effect.match(llm.generate(ask(maxTokens, key)), {
              onSuccess: () => "ok",
              onFailure: (error) =>
                error._tag === "RateLimited"
                  ? `${error.scope} ${Duration.toMillis(error.retryAfter!)} ${error.detail}`
                  : error._tag
            })
          for (const step of plan) {
            const a = yield* outcome(bounded, step.maxTokens, step.key)
            const b = yield* outcome(effects, step.maxTokens, step.key)
            assert.strictEqual(a, b, `${mode} mode`)
            yield* TestClock.adjust(Duration.millis(step.advanceMs))
          }
        }
      }),
    { arbitrary: { runs: 20 } }
  )
})
