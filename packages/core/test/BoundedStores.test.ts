import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { BoundedRateLimiterStore, Budget, BudgetStore, Llm, RateLimit } from "../src/index.ts"

v8.setFlagsFromString("--expose-gc")
const gc: () => void = vm.runInNewContext("gc")
const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const mini = { provider: "openai", model: "gpt-4o-mini" }
const tenantAsk = (tenant: string) => ({ messages: [{ role: "user" as const, content: "q" }], maxTokens: 5, metadata: { tenant } })

describe("memory stores stay bounded", () => {
  it("BudgetStore: 1,000,000 distinct tenants keep at most capacity scopes, and memory flat after GC", () => {
    const capacity = 1000
    const store = BudgetStore.makeMemory({ capacity, idleTtlMs: 3_600_000 })
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const key = `budget:tenant-${i}`
        store.reserveSync({ key, windowId: "0", reservationId: String(i), amountUsd: 0.001, limitUsd: 1, expiresAt: 60_000, now: 0 })
        store.settleSync({ key, windowId: "0", reservationId: String(i), costUsd: 0.0005, now: 0 })
      }
    }
    run(0, 20_000)
    const before = heapAfterGc()
    run(20_000, 1_000_000)
    const after = heapAfterGc()
    assert.isAtMost(Effect.runSync(store.size(0)), capacity)
    // A Map of a million scope records would hold well over 100 MB; bounded, the heap does not grow.
    assert.isBelow(after - before, 8 * 1024 * 1024, `heap grew by ${after - before} bytes`)
  }, 120_000)

  it("RateLimiterStore: 1,000,000 distinct keys keep at most capacity counters, and memory flat after GC", () => {
    const capacity = 1000
    const memory = BoundedRateLimiterStore.makeMemory({ capacity, idleTtlMs: 60_000 })
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) memory.fixedWindowSync(`tenant-${i}:requests`, 1, 100, 10, 0)
    }
    run(0, 20_000)
    const before = heapAfterGc()
    run(20_000, 1_000_000)
    const after = heapAfterGc()
    assert.isAtMost(memory.size(0), capacity)
    assert.isBelow(after - before, 8 * 1024 * 1024, `heap grew by ${after - before} bytes`)
  }, 120_000)

  it.effect("a Budget keyed per tenant keeps at most maxScopes scopes, however many tenants call", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok", usage: { inputTokens: 8, outputTokens: 1 } }] })
      const budget = yield* Budget.make({
        limitUsd: 1,
        window: "day",
        price: mini,
        maxScopes: 100,
        scope: (request) => request.metadata?.tenant ?? "anonymous"
      })
      const llm = budget.wrap(test.service)
      for (let i = 0; i < 5_000; i++) yield* llm.generate(tenantAsk(`t${i}`))
      const states = yield* budget.states
      assert.strictEqual(states.length, 100)
      // The most recent tenants are the ones kept.
      assert.isTrue(states.some((s) => s.scope === "t4999"))
      assert.isFalse(states.some((s) => s.scope === "t0"))
    }))

  it.effect("idle expiry is honoured on the Clock: a scope idle for a whole window is dropped, an active one kept", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok", usage: { inputTokens: 8, outputTokens: 1 } }] })
      const budget = yield* Budget.make({
        limitUsd: 1,
        window: "1 hour",
        price: mini,
        scope: (request) => request.metadata?.tenant ?? "anonymous"
      })
      const llm = budget.wrap(test.service)
      yield* llm.generate(tenantAsk("idle"))
      yield* llm.generate(tenantAsk("active"))
      yield* TestClock.adjust("50 minutes")
      yield* llm.generate(tenantAsk("active"))
      assert.deepStrictEqual((yield* budget.states).map((s) => s.scope).sort(), ["active", "idle"])
      yield* TestClock.adjust("20 minutes") // "idle" untouched for 70 minutes > the 1-hour window
      assert.deepStrictEqual((yield* budget.states).map((s) => s.scope), ["active"])
      yield* TestClock.adjust("61 minutes")
      assert.deepStrictEqual((yield* budget.states).map((s) => s.scope), [])
    }))

  it.effect("RateLimiterStore idle expiry on the Clock, and a RateLimit over it counts like Effect's store", () =>
    Effect.gen(function*() {
      const memory = BoundedRateLimiterStore.makeMemory({ capacity: 10, idleTtlMs: 1_000 })
      memory.fixedWindowSync("a", 1, 100, 10, 0)
      memory.fixedWindowSync("b", 1, 100, 10, 500)
      assert.strictEqual(memory.size(999), 2)
      assert.strictEqual(memory.size(1_000), 1)
      assert.strictEqual(memory.size(1_500), 0)
      // Used as a RateLimiterStore layer behind RateLimit (store path), it limits.
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok" }] })
      const limit = yield* RateLimit.make({ requests: { limit: 2, window: "1 minute" }, onExceeded: "fail" }).pipe(
        Effect.provide(BoundedRateLimiterStore.layerMemory({ capacity: 10 }))
      )
      const llm = limit.wrap(test.service)
      yield* llm.generate(tenantAsk("x"))
      yield* llm.generate(tenantAsk("x"))
      assert.strictEqual((yield* Effect.flip(llm.generate(tenantAsk("x"))))._tag, "RateLimited")
      yield* TestClock.adjust("1 minute")
      yield* llm.generate(tenantAsk("x"))
    }))
})
