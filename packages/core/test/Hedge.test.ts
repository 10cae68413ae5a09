import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CostLedger, Events, Hedge, Llm, LlmError, LlmResponse, Pricing, Tokenizer } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }

describe("Hedge.layer", () => {
  it.effect("a primary that answers before `after` is the answer; the backup never starts", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({ provider: "p", steps: [{ text: "p", delay: "500 millis" }] })
      const backup = yield* Llm.makeTest({ provider: "b", steps: [{ text: "b" }] })
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(primary.layer.pipe(Hedge.layer({ after: "1 second", backup: backup.layer }))))
      )
      yield* TestClock.adjust("2 seconds")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "p")
      assert.strictEqual((yield* backup.requests).length, 0)
      assert.deepStrictEqual(response.attempts.map((a) => a.outcome), ["ok"])
    }))

  it.effect("a slow primary is hedged: the first success wins and the loser's call is cancelled", () =>
    Effect.gen(function*() {
      const events: Array<Events.LlmEvent> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))))
      yield* Effect.yieldNow
      const primary = yield* Llm.makeTest({ provider: "p", steps: [{ text: "p", delay: "5 seconds" }] })
      const backup = yield* Llm.makeTest({ provider: "b", steps: [{ text: "b", delay: "200 millis" }] })
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(primary.layer.pipe(Hedge.layer({ after: "1 second", backup: backup.layer }))))
      )
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("200 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "b")
      assert.strictEqual(yield* primary.interrupted, 1)
      assert.strictEqual(yield* primary.completed, 0)
      assert.deepStrictEqual(response.attempts.map((a) => [a.outcome, a.latencyMs]), [["Interrupted", 1200], ["ok", 200]])
      assert.isDefined(response.attempts[1]!.usage)
      assert.isTrue(events.some((e) => e._tag === "HedgeStarted" && e.afterMs === 1000))
    }).pipe(Effect.provide(Events.layer())))

  it.effect("if one attempt fails the other is awaited", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({ provider: "p", steps: [{ text: "p", delay: "2 seconds" }] })
      const backup = yield* Llm.makeTest({
        provider: "b",
        model: "m",
        steps: [{ error: new LlmError.ServerError({ provider: "b", model: "m", status: 502 }), delay: "100 millis" }]
      })
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(primary.layer.pipe(Hedge.layer({ after: "1 second", backup: backup.layer }))))
      )
      yield* TestClock.adjust("1100 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("900 millis")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "p")
      assert.deepStrictEqual(response.attempts.map((a) => `${a.provider}:${a.outcome}`), ["b:ServerError", "p:ok"])
    }))

  it.effect("when both fail, the call fails with the last error", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({
        provider: "p",
        steps: [{ error: new LlmError.Overloaded({ provider: "p" }), delay: "3 seconds" }]
      })
      const backup = yield* Llm.makeTest({
        provider: "b",
        steps: [{ error: new LlmError.ServerError({ provider: "b", status: 500 }), delay: "100 millis" }]
      })
      const fiber = yield* Effect.forkChild(Effect.flip(
        Llm.generate(ask).pipe(Effect.provide(primary.layer.pipe(Hedge.layer({ after: "1 second", backup: backup.layer }))))
      ))
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "Overloaded")
    }))

  it.effect("streams hedge on time to first part and cancel the slower stream", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({ provider: "p", steps: [{ text: "slow", delay: "3 seconds" }] })
      const backup = yield* Llm.makeTest({ provider: "b", steps: [{ text: "fast", chunks: ["fa", "st"], delay: "100 millis" }] })
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(Llm.stream(ask)).pipe(
          Effect.provide(primary.layer.pipe(Hedge.layer({ after: "500 millis", backup: backup.layer })))
        )
      )
      yield* TestClock.adjust("500 millis")
      yield* TestClock.adjust("100 millis")
      const parts = yield* Fiber.join(fiber)
      assert.deepStrictEqual(parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []), ["fa", "st"])
      const last = parts[parts.length - 1]!
      assert.deepStrictEqual(last.type === "finish" && last.response.attempts.map((a) => a.outcome), ["Interrupted", "ok"])
      assert.strictEqual(yield* primary.interrupted, 1)
    }))

  it.effect("a stream whose first part comes in time is not hedged", () =>
    Effect.gen(function*() {
      const primary = yield* Llm.makeTest({ provider: "p", steps: [{ text: "abc", chunks: ["a", "bc"], chunkDelay: "1 second" }] })
      const backup = yield* Llm.makeTest({ provider: "b", steps: [{ text: "x" }] })
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(Llm.stream(ask)).pipe(
          Effect.provide(primary.layer.pipe(Hedge.layer({ after: "1500 millis", backup: backup.layer })))
        )
      )
      for (let i = 0; i < 4; i++) yield* TestClock.adjust("500 millis")
      const parts = yield* Fiber.join(fiber)
      assert.deepStrictEqual(parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []), ["a", "bc"])
      assert.strictEqual((yield* backup.requests).length, 0)
    }))

  it.effect("the cancelled loser is charged its prompt: an estimate from the token count, on the response and in the CostLedger", () =>
    Effect.gen(function*() {
      const mini = { provider: "openai", model: "gpt-4o-mini" }
      const slow = yield* Llm.makeTest({ ...mini, steps: [{ text: "slow", delay: "10 seconds" }] })
      const fast = yield* Llm.makeTest({ ...mini, steps: [{ text: "fast", delay: "1 second", usage: { inputTokens: 20, outputTokens: 5 } }] })
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(slow.layer.pipe(Hedge.layer({ after: "500 millis", backup: fast.layer }))))
      )
      yield* TestClock.adjust("2 seconds")
      const response = yield* Fiber.join(fiber)
      assert.strictEqual(response.text, "fast")
      assert.strictEqual(yield* slow.interrupted, 1)
      const loser = response.attempts[0]!
      const prompt = yield* Tokenizer.countRequest(ask, mini)
      const expected = Pricing.make(Pricing.shippedCatalog).cost("openai", "gpt-4o-mini", LlmResponse.makeUsage({ inputTokens: prompt.tokens })).costUsd
      assert.strictEqual(loser.outcome, "Interrupted")
      assert.strictEqual(loser.usage?.estimated, true)
      assert.strictEqual(loser.usage?.inputTokens, prompt.tokens)
      assert.strictEqual(loser.usage?.outputTokens, 0)
      assert.isAbove(loser.costUsd, 0)
      assert.closeTo(loser.costUsd, expected, 1e-15)
      const ledger = yield* CostLedger.snapshot
      assert.strictEqual(ledger.total.attempts, 2)
      assert.closeTo(ledger.total.costUsd, loser.costUsd + response.attempts[1]!.costUsd, 1e-15)
      assert.strictEqual(ledger.total.inputTokens, prompt.tokens + 20)
    }).pipe(Effect.provide(CostLedger.layer)))

  it.effect("a stream's cancelled loser is charged its prompt too", () =>
    Effect.gen(function*() {
      const mini = { provider: "openai", model: "gpt-4o-mini" }
      const slow = yield* Llm.makeTest({ ...mini, steps: [{ text: "slow", delay: "10 seconds" }] })
      const fast = yield* Llm.makeTest({ ...mini, steps: [{ text: "fast", chunks: ["fa", "st"], delay: "1 second" }] })
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(Llm.stream(ask)).pipe(
          Effect.provide(slow.layer.pipe(Hedge.layer({ after: "500 millis", backup: fast.layer })))
        )
      )
      yield* TestClock.adjust("2 seconds")
      const parts = yield* Fiber.join(fiber)
      const last = parts[parts.length - 1]!
      const loser = last.type === "finish" ? last.response.attempts[0] : undefined
      assert.strictEqual(loser?.outcome, "Interrupted")
      assert.strictEqual(loser?.usage?.estimated, true)
      assert.isAbove(loser?.costUsd ?? 0, 0)
      const ledger = yield* CostLedger.snapshot
      assert.closeTo(ledger.byProvider["openai"]!.costUsd, (loser?.costUsd ?? 0) + (last.type === "finish" ? last.response.costUsd : 0), 1e-15)
      assert.strictEqual(yield* slow.interrupted, 1)
    }).pipe(Effect.provide(CostLedger.layer)))

  it.effect("a loser that is not a provider leaf (nothing reported) still carries an estimated prompt charge", () =>
    Effect.gen(function*() {
      const stuck = Layer.succeed(Llm.LLM, Llm.LLM.of({ generate: () => Effect.never, stream: () => Stream.never }))
      const backup = yield* Llm.makeTest({ provider: "b", steps: [{ text: "b", delay: "100 millis" }] })
      const fiber = yield* Effect.forkChild(
        Llm.generate(ask).pipe(Effect.provide(stuck.pipe(Hedge.layer({ after: "1 second", backup: backup.layer }))))
      )
      yield* TestClock.adjust("1100 millis")
      const response = yield* Fiber.join(fiber)
      const loser = response.attempts[0]!
      assert.deepStrictEqual([loser.provider, loser.outcome, loser.latencyMs, loser.usage?.estimated], ["hedge-primary", "Interrupted", 1100, true])
      assert.isAbove(loser.usage?.inputTokens ?? 0, 0)
    }))

  it.effect("rejects a bad `after` or `backup` at build, in the layer's error channel, naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Hedge.Options, string]> = [
        [{ after: "later" as "1 second", backup: Llm.layerTest([]) }, "Hedge.after"],
        [{ after: -1, backup: Llm.layerTest([]) }, "Hedge.after"],
        [{ after: "1 second", backup: "openai" as unknown as Layer.Layer<Llm.LLM> }, "Hedge.backup"]
      ]
      for (const [options, path] of cases) {
        const error = yield* Effect.flip(Layer.build(Llm.layerTest([]).pipe(Hedge.layer(options))))
        assert.strictEqual(error._tag, "SwitchboardConfigError")
        assert.strictEqual(error._tag === "SwitchboardConfigError" && error.path, path)
      }
      const test = yield* Llm.makeTest([])
      assert.throws(() => Hedge.service(test.service, test.service, "later" as "1 second"), /Hedge\.after: expected a finite duration/)
    }))
})
