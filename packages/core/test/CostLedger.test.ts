import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { CostLedger, Llm, LlmError, LlmResponse } from "../src/index.ts"

const attempt = (provider: string, model: string, costUsd: number, outcome = "ok"): LlmResponse.Attempt => ({
  provider,
  model,
  outcome,
  latencyMs: 10,
  usage: LlmResponse.makeUsage({ inputTokens: 100, outputTokens: 10 }),
  costUsd
})

describe("CostLedger", () => {
  it.effect("without a layer the ledger records nothing and costs nothing", () =>
    Effect.gen(function*() {
      yield* CostLedger.record(attempt("openai", "gpt-4o", 1))
      assert.strictEqual(yield* CostLedger.sessionCost, 0)
      assert.strictEqual((yield* CostLedger.snapshot).total.attempts, 0)
    }))

  it.effect("totals every attempt, failures included, by provider, model, tenant and tag", () =>
    Effect.gen(function*() {
      yield* CostLedger.record(attempt("openai", "gpt-4o", 0.25), { tenant: "acme", tags: ["chat", "beta"] })
      yield* CostLedger.record(attempt("openai", "gpt-4o", 0, "RateLimited"), { tenant: "acme", tags: ["chat"] })
      yield* CostLedger.record(attempt("anthropic", "claude-haiku-4-5", 0.5), { tenant: "globex" })
      yield* CostLedger.record(attempt("openai", "gpt-4o-mini", 0.125))
      const snapshot = yield* CostLedger.snapshot
      assert.strictEqual(snapshot.total.attempts, 4)
      assert.strictEqual(snapshot.total.failures, 1)
      assert.strictEqual(snapshot.total.costUsd, 0.875)
      assert.strictEqual(snapshot.byProvider["openai"]?.costUsd, 0.375)
      assert.strictEqual(snapshot.byProvider["openai"]?.attempts, 3)
      assert.strictEqual(snapshot.byModel["openai/gpt-4o"]?.failures, 1)
      assert.strictEqual(snapshot.byTenant["acme"]?.costUsd, 0.25)
      assert.strictEqual(snapshot.byTenant["globex"]?.costUsd, 0.5)
      assert.strictEqual(snapshot.byTag["chat"]?.attempts, 2)
      assert.strictEqual(snapshot.byTag["beta"]?.costUsd, 0.25)
      assert.strictEqual(yield* CostLedger.sessionCost, 0.875)
      const table = snapshot.format()
      assert.match(table.split("\n")[1]!, /^total\s+4\s+1\s+400\s+40\s+0\.8750$/)
      assert.include(table, "openai/gpt-4o-mini")
      assert.match(table, /^tenant\s+acme\s+2\s+1\s/m)
    }).pipe(Effect.provide(CostLedger.layer)))

  it.effect("every provider leaf records its attempts, failures and streams included", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        provider: "openai",
        model: "gpt-4o",
        steps: [
          { text: "hi", usage: { inputTokens: 1000, outputTokens: 100 } },
          { error: new LlmError.ServerError({ provider: "openai", model: "gpt-4o", status: 500 }) },
          { text: "streamed", usage: { inputTokens: 1000, outputTokens: 100 } }
        ]
      })
      const request = { messages: [{ role: "user" as const, content: "x" }], metadata: { tenant: "acme" } }
      const program = Effect.gen(function*() {
        yield* Llm.generate(request)
        yield* Effect.flip(Llm.generate(request))
        yield* Stream.runDrain(Llm.stream(request))
      })
      yield* program.pipe(Effect.provide(test.layer))
      const snapshot = yield* CostLedger.snapshot
      const each = 1000 * 2.5 / 1e6 + 100 * 10 / 1e6
      assert.strictEqual(snapshot.total.attempts, 3)
      assert.strictEqual(snapshot.total.failures, 1)
      assert.closeTo(snapshot.byTenant["acme"]!.costUsd, 2 * each, 1e-12)
    }).pipe(Effect.provide(CostLedger.layer)))

  it.effect("reset starts a new session", () =>
    Effect.gen(function*() {
      yield* CostLedger.record(attempt("openai", "gpt-4o", 1))
      const ledger = yield* CostLedger.CostLedger
      yield* ledger.reset
      assert.strictEqual(yield* CostLedger.sessionCost, 0)
    }).pipe(Effect.provide(Layer.fresh(CostLedger.layer))))
})

describe("CostLedger by prompt", () => {
  it.effect("an attempt of a request rendered from a template counts under its id@version", () =>
    Effect.gen(function*() {
      const ledger = yield* CostLedger.make
      const attempt = { provider: "openai", model: "gpt-4o-mini", outcome: "ok", latencyMs: 5, costUsd: 0.25 }
      yield* ledger.record(attempt, { prompt: { id: "summarise", version: "2" } })
      yield* ledger.record(attempt, { prompt: { id: "summarise", version: "2" } })
      yield* ledger.record(attempt, { tenant: "t" })
      const snapshot = yield* ledger.snapshot
      assert.strictEqual(snapshot.byPrompt["summarise@2"]?.attempts, 2)
      assert.closeTo(snapshot.byPrompt["summarise@2"]?.costUsd ?? 0, 0.5, 1e-12)
      assert.deepStrictEqual(Object.keys(snapshot.byPrompt), ["summarise@2"])
      assert.include(snapshot.format(), "summarise@2")
    }))
})
