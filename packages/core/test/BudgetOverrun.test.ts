import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Budget, BudgetStore, Events, Llm, Pricing } from "../src/index.ts"

const mini = { provider: "openai", model: "gpt-4o-mini" }
const ask = (maxTokens = 10) => ({ messages: [{ role: "user" as const, content: "q" }], maxTokens })
const pricing = Pricing.make(Pricing.shippedCatalog)

describe("Budget money (issue 14)", () => {
  it.effect("usage far above maxTokens under 20 concurrent calls: recorded as billed, BudgetOverrun published, the window closed", () =>
    Effect.gen(function*() {
      const events: Array<Events.LlmEvent> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))))
      yield* Effect.yieldNow
      const test = yield* Llm.makeTest({
        ...mini,
        respond: () => ({ text: "a lot", delay: "100 millis", usage: { inputTokens: 8, outputTokens: 1_000_000 } })
      })
      const budget = yield* Budget.make({ limitUsd: 0.01, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      const fiber = yield* Effect.forkChild(
        Effect.forEach(Array.from({ length: 20 }), () => llm.generate(ask()), { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("100 millis")
      const responses = yield* Fiber.join(fiber)
      const billed = responses.reduce((sum, r) => sum + r.costUsd, 0)
      assert.isAbove(billed, 10) // 20 × $0.6: what the provider will bill
      const state = yield* budget.state()
      // Recorded truthfully, not capped at what was reserved.
      assert.closeTo(state.spentUsd, billed, 1e-9)
      assert.strictEqual(state.reservedUsd, 0)
      assert.isTrue(state.closed)
      yield* Effect.yieldNow
      const overruns = events.filter((e): e is Events.BudgetOverrun => e._tag === "BudgetOverrun")
      assert.strictEqual(overruns.length, 20)
      const worst = pricing.worstCase("openai", "gpt-4o-mini", 8, 10).costUsd
      assert.closeTo(overruns[0]!.reservedUsd, worst, 1e-12)
      assert.isAbove(overruns[0]!.actualUsd, 0.5)
      assert.strictEqual(overruns[0]!.limitUsd, 0.01)
      // Later calls are refused, before any provider call.
      const before = (yield* test.requests).length
      const refused = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(refused._tag, "BudgetExceeded")
      assert.strictEqual((yield* test.requests).length, before)
      assert.isTrue(yield* budget.refusesNow(ask()))
      // The next window opens again.
      yield* TestClock.adjust("1 day")
      assert.isFalse(yield* budget.refusesNow(ask()))
    }).pipe(Effect.provide(Events.layer())))

  it.effect("a stream whose finish reports usage beyond its reservation closes the window too", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...mini,
        steps: [{ text: "hi", chunks: ["h", "i"], usage: { inputTokens: 8, outputTokens: 1_000_000 } }]
      })
      const budget = yield* Budget.make({ limitUsd: 0.01, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      yield* Stream.runCollect(llm.stream(ask()))
      const state = yield* budget.state()
      assert.isAbove(state.spentUsd, 0.5)
      assert.isTrue(state.closed)
      assert.strictEqual((yield* Effect.flip(Stream.runCollect(llm.stream(ask()))))._tag, "BudgetExceeded")
    }))

  it.effect("negative usage cannot credit the budget: the answer is MalformedResponse and spend never goes down", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...mini,
        steps: [
          { text: "paid", usage: { inputTokens: 8, outputTokens: 10 } },
          { text: "credit?", usage: { inputTokens: -50_000, outputTokens: -50_000 } }
        ]
      })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      yield* llm.generate(ask())
      const paid = (yield* budget.state()).spentUsd
      assert.isAbove(paid, 0)
      // The leaf refuses the insane usage (MalformedResponse), and the budget is not credited.
      const refused = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(refused._tag, "MalformedResponse")
      const after = yield* budget.state()
      assert.strictEqual(after.spentUsd, paid)
      assert.strictEqual(after.reservedUsd, 0)
    }))

  it("the store clamps a negative, NaN or infinite cost: never a credit, never NaN", () => {
    const store = BudgetStore.makeMemory()
    const base = { key: "b:s", windowId: "0", limitUsd: 10, expiresAt: 1000, now: 0 }
    store.reserveSync({ ...base, reservationId: "a", amountUsd: 1 })
    store.settleSync({ key: "b:s", windowId: "0", reservationId: "a", costUsd: 0.5, now: 0 })
    for (const [id, cost] of [["b", -3], ["c", Number.NaN]] as const) {
      store.reserveSync({ ...base, reservationId: id, amountUsd: 1 })
      const settled = store.settleSync({ key: "b:s", windowId: "0", reservationId: id, costUsd: cost, now: 0 })
      assert.strictEqual(settled.chargedUsd, 0)
      assert.strictEqual(settled.state.spentUsd, 0.5)
    }
    store.reserveSync({ ...base, reservationId: "d", amountUsd: 1 })
    const infinite = store.settleSync({ key: "b:s", windowId: "0", reservationId: "d", costUsd: Infinity, now: 0 })
    assert.isTrue(Number.isFinite(infinite.state.spentUsd))
    assert.isTrue(infinite.overrun && infinite.state.closed)
  })

  it.effect("a reasoning-capable model reserves thinkingTokens on top of maxTokens; others do not", () =>
    Effect.gen(function*() {
      const o3 = { provider: "openai", model: "o3" }
      const test = yield* Llm.makeTest({ ...o3, steps: [{ text: "ok", delay: "1 second" }] })
      const budget = yield* Budget.make({ limitUsd: 100, window: "day", price: o3, thinkingTokens: 5000 })
      const fiber = yield* Effect.forkChild(budget.wrap(test.service).generate(ask(100)))
      yield* TestClock.adjust("10 millis")
      const reserved = (yield* budget.state()).reservedUsd
      const input = reserved - pricing.worstCase("openai", "o3", 0, 5100).costUsd
      // What is left is the input's share: small, and not negative (the 5,000 thinking tokens were reserved).
      assert.isAtLeast(input, 0)
      assert.isBelow(input, pricing.worstCase("openai", "o3", 100, 0).costUsd)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const plain = yield* Budget.make({ limitUsd: 100, window: "day", price: mini, thinkingTokens: 5000 })
      const miniTest = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok", delay: "1 second" }] })
      const other = yield* Effect.forkChild(plain.wrap(miniTest.service).generate(ask(100)))
      yield* TestClock.adjust("10 millis")
      assert.isBelow((yield* plain.state()).reservedUsd, pricing.worstCase("openai", "gpt-4o-mini", 100, 200).costUsd)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(other)
    }))
})
