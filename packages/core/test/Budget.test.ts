import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Effect, Fiber, Layer, Ref, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import { Budget, Events, Hedge, Llm, LlmError, Pricing, Tokenizer } from "../src/index.ts"

const mini = { provider: "openai", model: "gpt-4o-mini" }
const ask = (content = "q", maxTokens = 200) => ({ messages: [{ role: "user" as const, content }], maxTokens })
const pricing = Pricing.make(Pricing.shippedCatalog)
// "q" counts 3 + 1 + 1 + 3 = 8 tokens on o200k; 200 tokens of output at most.
const worst = pricing.worstCase("openai", "gpt-4o-mini", 8, 200).costUsd
const costOf = (input: number, output: number) => input * 0.15 / 1e6 + output * 0.6 / 1e6

/** mulberry32: a tiny seeded PRNG. */
const randomPlan = (seed: number, n: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return Array.from({ length: n }, () => ({
    latency: Math.floor(next() * 41),
    fails: next() < 0.3,
    output: Math.floor(next() * 201)
  }))
}

describe("Budget", () => {
  it.effect("refuses with BudgetExceeded before any provider call when the worst case does not fit", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi" }] })
      const budget = yield* Budget.make({ limitUsd: worst * 0.5, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      const error = yield* Effect.flip(llm.generate(ask()))
      assert.strictEqual(error._tag, "BudgetExceeded")
      if (error._tag === "BudgetExceeded") {
        assert.strictEqual(error.scope, "global")
        assert.closeTo(error.requestedUsd!, worst, 1e-15)
        assert.strictEqual(error.spentUsd, 0)
        assert.strictEqual(error.reservedUsd, 0)
        assert.strictEqual(error.provider, "openai")
      }
      assert.strictEqual((yield* test.requests).length, 0)
    }))

  it.effect("settles to the real cost of the attempts and keeps nothing reserved", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", usage: { inputTokens: 8, outputTokens: 50 } }] })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const response = yield* budget.wrap(test.service).generate(ask())
      const state = yield* budget.state()
      assert.closeTo(state.spentUsd, costOf(8, 50), 1e-15)
      assert.strictEqual(state.spentUsd, response.costUsd)
      assert.strictEqual(state.reservedUsd, 0)
    }))

  it.effect("prices a request without model at the dearest of models, and by default at the unknown-model rule", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", delay: "1 second" }] })
      const dearest = yield* Budget.make({ limitUsd: 10, window: "day", models: [mini, { provider: "openai", model: "gpt-4o" }] })
      const fiber = yield* Effect.forkChild(dearest.wrap(test.service).generate(ask()))
      yield* TestClock.adjust("10 millis")
      assert.closeTo((yield* dearest.state()).reservedUsd, pricing.worstCase("openai", "gpt-4o", 8, 200).costUsd, 1e-12)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const conservative = yield* Budget.make({ limitUsd: 0.01, window: "day" })
      const error = yield* Effect.flip(conservative.wrap(test.service).generate({ messages: [{ role: "user", content: "q" }] }))
      // Unknown rule: 15 / 75 per million and 8192 tokens of output: about $0.61.
      assert.strictEqual(error._tag, "BudgetExceeded")
    }))

  it.effect("reserves a request that names its model at that model's price, model by model", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", delay: "1 second" }] })
      const budget = yield* Budget.make({ limitUsd: 10, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      for (const model of ["gpt-4o", "gpt-4o-mini", "gpt-4o", "o1"]) {
        const fiber = yield* Effect.forkChild(llm.generate({ ...ask(), model }))
        yield* TestClock.adjust("10 millis")
        assert.closeTo((yield* budget.state()).reservedUsd, pricing.worstCase("openai", model, 8, 200).costUsd, 1e-12, model)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
      }
    }))

  it.effect("charges an attempt the provider answered even when the caller's deadline fired before the answer came back", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "paid", usage: { inputTokens: 1000, outputTokens: 100 } }] })
      // A layer between the budget and the provider that holds the answer up.
      const slowAfterAnswer = Llm.LLM.of({
        generate: (request) => Effect.tap(test.service.generate(request), () => Effect.sleep("2 seconds")),
        stream: test.service.stream
      })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const llm = budget.wrap(slowAfterAnswer)
      const fiber = yield* Effect.forkChild(Effect.flip(llm.generate(ask()).pipe(Llm.withDeadline("1 second"))))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "Timeout")
      const state = yield* budget.state()
      assert.closeTo(state.spentUsd, costOf(1000, 100), 1e-15)
      assert.strictEqual(state.reservedUsd, 0)
    }))

  it.effect("releases the reservation when the call fails or is interrupted", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...mini,
        steps: [
          { error: new LlmError.ServerError({ provider: "openai", model: "gpt-4o-mini", status: 500 }) },
          { text: "slow", delay: "10 seconds" }
        ]
      })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      yield* Effect.flip(llm.generate(ask()))
      assert.deepStrictEqual([(yield* budget.state()).spentUsd, (yield* budget.state()).reservedUsd], [0, 0])
      const fiber = yield* Effect.forkChild(llm.generate(ask()))
      yield* TestClock.adjust("1 second")
      assert.closeTo((yield* budget.state()).reservedUsd, worst, 1e-15)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* budget.state()).reservedUsd, 0)
      assert.strictEqual(yield* test.interrupted, 1)
    }))

  it.effect("tallies only its own call: the caller's attempt observers are as they were after it, on success and failure", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...mini,
        steps: [
          { text: "hi", usage: { inputTokens: 10, outputTokens: 5 } },
          { error: new LlmError.ServerError({ provider: "openai", model: "gpt-4o-mini", status: 500 }) },
          { text: "unbudgeted", usage: { inputTokens: 1000, outputTokens: 100 } }
        ]
      })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      const seen: Array<string> = []
      yield* Effect.gen(function*() {
        const before = yield* Llm.AttemptObservers
        yield* llm.generate(ask())
        assert.strictEqual(yield* Llm.AttemptObservers, before)
        yield* Effect.flip(llm.generate(ask()))
        assert.strictEqual(yield* Llm.AttemptObservers, before)
        // A call made after the budgeted ones, outside the budget, is not charged to it.
        yield* test.service.generate(ask())
      }).pipe(Llm.observeAttempts((attempt) => seen.push(attempt.outcome)))
      assert.deepStrictEqual(seen, ["ok", "ServerError", "ok"])
      assert.closeTo((yield* budget.state()).spentUsd, costOf(10, 5), 1e-15)
      assert.strictEqual((yield* budget.state()).reservedUsd, 0)
    }))

  it.effect.prop(
    "spent + reserved never passes the limit under 1,000 concurrent calls with random latencies and failures",
    // One seed per run drives a PRNG for the 1,000 latencies, failures and output sizes (generating
    // 1,000-element arrays through Schema arbitraries costs seconds per run).
    [Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 31 - 1 })))],
    ([seed]) =>
      Effect.gen(function*() {
        const plan = randomPlan(seed, 1000)
        const test = yield* Llm.makeTest({
          ...mini,
          respond: (_request, index) => {
            const step = plan[index % plan.length]!
            return step.fails
              ? { error: new LlmError.ServerError({ provider: "openai", model: "gpt-4o-mini", status: 500 }), delay: `${step.latency} millis` }
              : { text: "a", usage: { inputTokens: 8, outputTokens: step.output }, delay: `${step.latency} millis` }
          }
        })
        const limitUsd = worst * 150
        const budget = yield* Budget.make({ limitUsd, window: "day", price: mini })
        const llm = budget.wrap(test.service)
        const fiber = yield* Effect.forkChild(
          Effect.forEach(plan, () => Effect.result(llm.generate(ask())), { concurrency: "unbounded" })
        )
        for (let t = 0; t <= 45; t++) {
          const state = yield* budget.state()
          assert.isAtMost(state.spentUsd + state.reservedUsd, limitUsd + 1e-12)
          yield* TestClock.adjust("1 millis")
        }
        const results = yield* Fiber.join(fiber)
        const state = yield* budget.state()
        let paid = 0
        let refused = 0
        for (const result of results) {
          if (result._tag === "Success") paid += result.success.costUsd
          else if (result.failure._tag === "BudgetExceeded") refused++
        }
        assert.strictEqual(state.reservedUsd, 0)
        assert.closeTo(state.spentUsd, paid, 1e-12)
        assert.isAtMost(state.spentUsd, limitUsd)
        assert.isAbove(refused, 0)
      }),
    { arbitrary: { runs: 5 } }
  )

  it.effect("a day window rolls over at UTC midnight on the Clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2025, 0, 1, 23, 0))
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", usage: { inputTokens: 8, outputTokens: 200 } }] })
      const budget = yield* Budget.make({ limitUsd: worst * 1.5, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      yield* llm.generate(ask())
      assert.strictEqual((yield* Effect.flip(llm.generate(ask())))._tag, "BudgetExceeded")
      yield* TestClock.adjust("1 hour")
      const state = yield* budget.state()
      assert.deepStrictEqual([state.spentUsd, state.windowStart], [0, Date.UTC(2025, 0, 2)])
      yield* llm.generate(ask())
    }))

  it.effect("a month window is the UTC calendar month; a Duration window counts from the first call", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2025, 1, 10, 12))
      const monthly = yield* Budget.make({ limitUsd: 1, window: "month" })
      const m = yield* monthly.state()
      assert.deepStrictEqual([m.windowStart, m.windowEnd], [Date.UTC(2025, 1, 1), Date.UTC(2025, 2, 1)])
      const hourly = yield* Budget.make({ limitUsd: 1, window: "1 hour" })
      const first = yield* hourly.state()
      assert.strictEqual(first.windowStart, Date.UTC(2025, 1, 10, 12))
      yield* TestClock.adjust("90 minutes")
      assert.strictEqual((yield* hourly.state()).windowStart, Date.UTC(2025, 1, 10, 13))
    }))

  it.effect("calls onSoft once per window when settled spend crosses softAt", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", usage: { inputTokens: 8, outputTokens: 200 } }] })
      const calls = yield* Ref.make<Array<number>>([])
      const budget = yield* Budget.make({
        limitUsd: worst * 10,
        window: "day",
        price: mini,
        softAt: 0.25,
        onSoft: (state) => Ref.update(calls, (xs) => [...xs, state.spentUsd])
      })
      const llm = budget.wrap(test.service)
      for (let i = 0; i < 2; i++) yield* llm.generate(ask())
      assert.strictEqual((yield* Ref.get(calls)).length, 0)
      for (let i = 0; i < 4; i++) yield* llm.generate(ask())
      const fired = yield* Ref.get(calls)
      assert.strictEqual(fired.length, 1)
      assert.closeTo(fired[0]!, 3 * worst, 1e-12)
      yield* TestClock.adjust("1 day")
      for (let i = 0; i < 3; i++) yield* llm.generate(ask())
      assert.strictEqual((yield* Ref.get(calls)).length, 2)
    }))

  it.effect("a stream reserves at start, settles from its finish part, and releases when it fails", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        ...mini,
        steps: [
          { text: "hello", chunks: ["he", "llo"], chunkDelay: "10 millis", usage: { inputTokens: 8, outputTokens: 100 } },
          { cut: ["he"] }
        ]
      })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const llm = budget.wrap(test.service)
      const fiber = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask())))
      yield* TestClock.adjust("5 millis")
      assert.closeTo((yield* budget.state()).reservedUsd, worst, 1e-15)
      yield* TestClock.adjust("20 millis")
      yield* Fiber.join(fiber)
      const settled = yield* budget.state()
      assert.deepStrictEqual([settled.reservedUsd], [0])
      assert.closeTo(settled.spentUsd, costOf(8, 100), 1e-15)
      assert.strictEqual((yield* Effect.flip(Stream.runCollect(llm.stream(ask()))))._tag, "NetworkError")
      const after = yield* budget.state()
      assert.strictEqual(after.reservedUsd, 0)
      assert.closeTo(after.spentUsd, costOf(8, 100), 1e-15)
    }))

  it.effect("switchAt routes to the cheap stack once spend reaches the soft share", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o", steps: [{ text: "primary", usage: { inputTokens: 8, outputTokens: 200 } }] })
      const cheap = yield* Llm.makeTest({ ...mini, steps: [{ text: "cheap", usage: { inputTokens: 8, outputTokens: 200 } }] })
      const dear = pricing.worstCase("openai", "gpt-4o", 8, 200).costUsd
      const budget = yield* Budget.make({ limitUsd: dear * 5, window: "day", price: { provider: "openai", model: "gpt-4o" } })
      const stack = Budget.switchAt({ budget, soft: 0.5, primary: primary.layer, cheap: cheap.layer })
      const texts = yield* Effect.forEach([1, 2, 3, 4], () => Effect.map(Llm.generate(ask()), (r) => r.text)).pipe(
        Effect.provide(stack)
      )
      assert.deepStrictEqual(texts, ["primary", "primary", "primary", "cheap"])
    }))
})

describe("Budget over attempts in other fibers", () => {
  it.effect("charges both attempts of a Hedge — the winner's cost, the interrupted loser's prompt (estimated) — and keeps nothing reserved", () =>
    Effect.gen(function*() {
      const slow = yield* Llm.makeTest({ ...mini, steps: [{ text: "slow", delay: "10 seconds", usage: { inputTokens: 1000, outputTokens: 100 } }] })
      const fast = yield* Llm.makeTest({ ...mini, steps: [{ text: "fast", delay: "1 second", usage: { inputTokens: 2000, outputTokens: 100 } }] })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      const stack = slow.layer.pipe(Hedge.layer({ after: "500 millis", backup: fast.layer }), budget.layer)
      const fiber = yield* Effect.forkChild(Llm.generate(ask()).pipe(Effect.provide(stack)))
      yield* TestClock.adjust("2 seconds")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "fast")
      assert.strictEqual(yield* slow.interrupted, 1)
      const state = yield* budget.state()
      // the loser's prompt, "q" = 8 tokens, is billed by a real provider: charged as an estimate
      assert.closeTo(state.spentUsd, costOf(2000, 100) + costOf(8, 0), 1e-15)
      assert.strictEqual(state.reservedUsd, 0)
    }))
})

describe("Budget with count: \"bound\"", () => {
  const tokenizer = Tokenizer.make()
  /** The default tokenizer, counting how often a request is counted. */
  const counting = Effect.gen(function*() {
    const counted = yield* Ref.make(0)
    const layer = Tokenizer.layer({
      countText: tokenizer.countText,
      countRequest: (request, target) => Effect.andThen(Ref.update(counted, (n) => n + 1), tokenizer.countRequest(request, target))
    })
    return { counted, layer }
  })
  // About 1,000 bytes of English, about 200 tokens: the bound is well above the count.
  const long = ask("the quick brown fox jumps over the lazy dog ".repeat(23))
  const exactWorst = (tokens: number) => pricing.worstCase("openai", "gpt-4o-mini", tokens, 200).costUsd

  it.effect("reserves the UTF-8 bound without counting, and settles to the real cost", () =>
    Effect.gen(function*() {
      const { counted, layer } = yield* counting
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", delay: "1 second", usage: { inputTokens: 210, outputTokens: 50 } }] })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, count: "bound" })
      const fiber = yield* Effect.forkChild(budget.wrap(test.service).generate(long).pipe(Effect.provide(layer)))
      yield* TestClock.adjust("10 millis")
      const bound = Tokenizer.boundRequest(long, mini).tokens
      const exact = (yield* tokenizer.countRequest(long, mini)).tokens
      assert.isAbove(bound, exact * 4)
      assert.closeTo((yield* budget.state()).reservedUsd, exactWorst(bound), 1e-15)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const state = yield* budget.state()
      assert.deepStrictEqual([state.reservedUsd, yield* Ref.get(counted)], [0, 0])
      assert.closeTo(state.spentUsd, costOf(210, 50), 1e-15)
    }))

  // With an event subscriber the budget takes its general path (not the one-step one): both decide alike.
  for (const events of [false, true]) {
    it.effect(`when the bound does not fit, reserves or refuses on the exact count${events ? " (with events)" : ""}`, () =>
      Effect.gen(function*() {
        const { counted, layer } = yield* counting
        const exact = (yield* tokenizer.countRequest(long, mini)).tokens
        const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hi", delay: "1 second" }] })
        // Room for the counted worst case, not for the bound's.
        const fits = yield* Budget.make({ limitUsd: exactWorst(exact) * 1.01, window: "day", price: mini, count: "bound" })
        const fiber = yield* Effect.forkChild(fits.wrap(test.service).generate(long).pipe(Effect.provide(layer)))
        yield* TestClock.adjust("10 millis")
        assert.closeTo((yield* fits.state()).reservedUsd, exactWorst(exact), 1e-15)
        assert.strictEqual(yield* Ref.get(counted), 1)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)

        const tight = yield* Budget.make({ limitUsd: exactWorst(exact) * 0.99, window: "day", price: mini, count: "bound" })
        const error = yield* Effect.flip(tight.wrap(test.service).generate(long).pipe(Effect.provide(layer)))
        assert.strictEqual(error._tag, "BudgetExceeded")
        if (error._tag === "BudgetExceeded") assert.closeTo(error.requestedUsd!, exactWorst(exact), 1e-15)
        assert.strictEqual((yield* test.requests).length, 1)
        assert.strictEqual((yield* tight.state()).reservedUsd, 0)
      }).pipe(Effect.provide(events ? Events.layer() : Layer.empty)))
  }

  it.effect("a stream reserves the bound at start and settles from its finish part", () =>
    Effect.gen(function*() {
      const { counted, layer } = yield* counting
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "hello", chunks: ["hel", "lo"], usage: { inputTokens: 210, outputTokens: 2 } }] })
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, count: "bound" })
      let reserved = 0
      yield* budget.wrap(test.service).stream(long).pipe(
        Stream.tap(() => Effect.map(budget.state(), (s) => void (reserved = Math.max(reserved, s.reservedUsd)))),
        Stream.runDrain,
        Effect.provide(layer)
      )
      assert.closeTo(reserved, exactWorst(Tokenizer.boundRequest(long, mini).tokens), 1e-15)
      const state = yield* budget.state()
      assert.deepStrictEqual([state.reservedUsd, yield* Ref.get(counted)], [0, 0])
      assert.closeTo(state.spentUsd, costOf(210, 2), 1e-15)
    }))
})

describe("Tokenizer.boundRequest", () => {
  const tokenizer = Tokenizer.make()
  const anthropic = { provider: "anthropic", model: "claude-haiku-4-5" }
  // Any UTF-16 code units, lone surrogates included.
  const text = fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 300 }),
    fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 200 }).map((units) => String.fromCharCode(...units)),
    fc.array(fc.constantFrom("a", " ", "1", ".", "é", "中", "👋", "\n", "<|endoftext|>"), { maxLength: 200 }).map((parts) => parts.join(""))
  )

  it.effect("is never below the tokenizer's count, exact or estimated, for any text", () =>
    Effect.gen(function*() {
      yield* Tokenizer.preload
      const samples = fc.sample(fc.tuple(text, text), { numRuns: 2000, seed: 7 })
      for (const [system, content] of samples) {
        const request = { system, messages: [{ role: "user" as const, content }, { role: "assistant" as const, content: system }] }
        for (const target of [mini, { provider: "openai", model: "gpt-4" }, anthropic]) {
          const counted = (yield* tokenizer.countRequest(request, target)).tokens
          const bound = Tokenizer.boundRequest(request, target)
          assert.isAtLeast(bound.tokens, counted, JSON.stringify({ system, content, target }))
          assert.isTrue(bound.estimated)
        }
      }
      assert.deepStrictEqual(Tokenizer.boundRequest({ messages: [{ role: "user", content: "hello world" }] }, mini), {
        tokens: 18,
        estimated: true
      })
    }))
})
