import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import { CostLedger, LLM, Llm, LlmResponse, RateLimit } from "../src/index.ts"

const gpt = { provider: "openai", model: "gpt-4o" }
const ask = (tenant: string) => ({ messages: [{ role: "user" as const, content: "q" }], maxTokens: 5, metadata: { tenant } })

describe("cheap reads a router uses to skip a candidate", () => {
  it.effect("RateLimit.exhausted: true once a key's requests are used up in the window, per key, without taking any", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const limit = yield* RateLimit.make({
        requests: { limit: 2, window: "1 minute" },
        onExceeded: "fail",
        key: (request) => request.metadata?.tenant ?? "anonymous"
      })
      const llm = RateLimit.wrap(test.service, limit)
      assert.isFalse(yield* limit.exhausted(ask("a")))
      yield* llm.generate(ask("a"))
      assert.isFalse(yield* limit.exhausted(ask("a")))
      // Reading does not take: still room for one.
      assert.isFalse(yield* limit.exhausted(ask("a")))
      yield* llm.generate(ask("a"))
      assert.isTrue(yield* limit.exhausted(ask("a")))
      assert.isFalse(yield* limit.exhausted(ask("b")))
      yield* TestClock.adjust("1 minute")
      assert.isFalse(yield* limit.exhausted(ask("a")))
    }))

  it.effect("RateLimit.exhausted: true while the provider said no requests remain, until its reset", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...gpt, steps: [{ text: "ok" }] })
      const withHeaders = LLM.of({
        generate: (request) =>
          Effect.map(test.service.generate(request), (response) => ({
            ...response,
            rateLimit: { requestsRemaining: 0, requestsReset: Duration.seconds(30) }
          })),
        stream: test.service.stream
      })
      const limit = yield* RateLimit.make({ requests: { limit: 100, window: "1 minute" }, onExceeded: "fail" })
      yield* limit.wrap(withHeaders).generate(ask("a"))
      assert.isTrue(yield* limit.exhausted(ask("a")))
      yield* TestClock.adjust("30 seconds")
      assert.isFalse(yield* limit.exhausted(ask("a")))
    }))
})

describe("CostLedger trusts nothing from a provider", () => {
  it.effect("negative, fractional and infinite usage and costs are clamped: totals never go down, never Infinity", () =>
    Effect.gen(function*() {
      const base = { provider: "openai", model: "gpt-4o", outcome: "ok", latencyMs: 1 }
      yield* CostLedger.record({ ...base, usage: LlmResponse.makeUsage({ inputTokens: 100, outputTokens: 10 }), costUsd: 0.5 })
      yield* CostLedger.record({ ...base, usage: LlmResponse.makeUsage({ inputTokens: -50, outputTokens: 2.5 }), costUsd: -1 })
      yield* CostLedger.record({ ...base, usage: LlmResponse.makeUsage({ inputTokens: 1e308, outputTokens: Number.NaN }), costUsd: Number.NaN })
      const snapshot = yield* CostLedger.snapshot
      assert.strictEqual(snapshot.total.attempts, 3)
      assert.strictEqual(snapshot.total.costUsd, 0.5)
      assert.strictEqual(snapshot.total.outputTokens, 12)
      assert.isTrue(Number.isSafeInteger(snapshot.total.inputTokens))
      assert.isAtLeast(snapshot.total.inputTokens, 100)
      assert.strictEqual(yield* CostLedger.sessionCost, 0.5)
    }).pipe(Effect.provide(CostLedger.layer)))
})
