import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Logger, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Events, Fallback, Llm, LlmError, type LlmResponse, Retry, SwitchboardConfigError } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }
const server = (provider: string) => new LlmError.ServerError({ provider, model: "m", status: 500 })
const child = (provider: string, steps: ReadonlyArray<Llm.TestStep>) => Llm.makeTest({ provider, model: "m", steps })
const texts = (parts: ReadonlyArray<LlmResponse.StreamPart>) =>
  parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []).join("")

describe("Fallback.layer", () => {
  it.effect("tries children in order and lists the earlier failures on the response", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a") }])
      const b = yield* child("b", [{ error: new LlmError.Overloaded({ provider: "b", model: "m" }) }])
      const c = yield* child("c", [{ text: "from c" }])
      const response = yield* Llm.generate(ask).pipe(Effect.provide(Fallback.layer([a.layer, b.layer, c.layer])))
      assert.strictEqual(response.text, "from c")
      assert.deepStrictEqual(response.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "b:Overloaded", "c:ok"])
    }))

  it.effect("when all fail: AllProvidersFailed with every attempt of every child, retries included", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a") }])
      const b = yield* child("b", [{ error: new LlmError.QuotaExhausted({ provider: "b", model: "m" }) }])
      const stack = Fallback.layer([a.layer.pipe(Retry.layer({ times: 2, base: "10 millis", jitter: false })), b.layer])
      const fiber = yield* Effect.forkChild(Effect.flip(Llm.generate(ask).pipe(Effect.provide(stack))))
      yield* TestClock.adjust("30 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "AllProvidersFailed")
      if (error._tag === "AllProvidersFailed") {
        assert.strictEqual(error.provider, "fallback")
        assert.deepStrictEqual(error.attempts.map((x) => `${x.provider}:${x.outcome}`), [
          "a:ServerError",
          "a:ServerError",
          "a:ServerError",
          "b:QuotaExhausted"
        ])
      }
    }))

  it.effect("a stream that fails everywhere: AllProvidersFailed with every attempt, retries included", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a") }])
      const b = yield* child("b", [{ error: new LlmError.QuotaExhausted({ provider: "b", model: "m" }) }])
      const stack = Fallback.layer([a.layer.pipe(Retry.layer({ times: 2, base: "10 millis", jitter: false })), b.layer])
      const fiber = yield* Effect.forkChild(Effect.flip(Stream.runDrain(Llm.stream(ask)).pipe(Effect.provide(stack))))
      yield* TestClock.adjust("30 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "AllProvidersFailed")
      if (error._tag === "AllProvidersFailed") {
        assert.deepStrictEqual(error.attempts.map((x) => `${x.provider}:${x.outcome}`), [
          "a:ServerError",
          "a:ServerError",
          "a:ServerError",
          "b:QuotaExhausted"
        ])
      }
    }))

  it.effect("InvalidRequest and BudgetExceeded stop the chain at once with that error", () =>
    Effect.gen(function*() {
      for (
        const stop of [
          new LlmError.InvalidRequest({ provider: "a", message: "bad field" }),
          new LlmError.BudgetExceeded({ provider: "a", scope: "day", limitUsd: 1, spentUsd: 1, reservedUsd: 0 })
        ]
      ) {
        const a = yield* child("a", [{ error: stop }])
        const b = yield* child("b", [{ text: "never" }])
        const error = yield* Effect.flip(Llm.generate(ask).pipe(Effect.provide(Fallback.layer([a.layer, b.layer]))))
        assert.strictEqual(error._tag, stop._tag)
        assert.strictEqual((yield* b.requests).length, 0)
      }
    }))

  it.effect("`on` decides which errors fall back", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: new LlmError.ContentFiltered({ provider: "a", model: "m" }) }])
      const b = yield* child("b", [{ text: "b" }])
      const plain = yield* Effect.flip(Llm.generate(ask).pipe(Effect.provide(Fallback.layer([a.layer, b.layer]))))
      assert.strictEqual(plain._tag, "ContentFiltered")
      const configured = yield* Llm.generate(ask).pipe(
        Effect.provide(Fallback.layer([a.layer, b.layer], { on: (e) => e._tag === "ContentFiltered" }))
      )
      assert.strictEqual(configured.text, "b")
    }))

  it.effect("ContextLengthExceeded skips to the next child whose context window fits", () =>
    Effect.gen(function*() {
      const tooLong = new LlmError.ContextLengthExceeded({ provider: "a", model: "m", limit: 8_000, requested: 150_000 })
      const a = yield* child("a", [{ error: tooLong }])
      const small = yield* child("small", [{ text: "small" }])
      const unknown = yield* child("unknown", [{ text: "unknown" }])
      const large = yield* child("large", [{ text: "large" }])
      const response = yield* Llm.generate(ask).pipe(
        Effect.provide(Fallback.layer([a.layer, { layer: small.layer, contextWindow: 100_000 }, {
          layer: large.layer,
          contextWindow: 200_000
        }, unknown.layer]))
      )
      assert.strictEqual(response.text, "large")
      assert.strictEqual((yield* small.requests).length, 0)
    }))

  it.effect("without a contextWindow option, the window comes from Pricing for the model the child last reported", () =>
    Effect.gen(function*() {
      const tooLong = new LlmError.ContextLengthExceeded({ provider: "a", model: "m", requested: 1_000_000 })
      const a = yield* Llm.makeTest({
        provider: "a",
        respond: (_req, i) => i === 0 ? { error: server("a") } : { error: tooLong }
      })
      const b = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "b" }] })
      const c = yield* child("c", [{ text: "c" }])
      const context = yield* Layer.build(Fallback.layer([a.layer, b.layer, c.layer]))
      // the first call reaches b, which reports gpt-4o-mini (128k tokens in the catalog)
      assert.strictEqual((yield* Effect.provide(Llm.generate(ask), context)).text, "b")
      // 1M tokens cannot fit gpt-4o-mini: b is skipped
      assert.strictEqual((yield* Effect.provide(Llm.generate(ask), context)).text, "c")
      assert.strictEqual((yield* b.requests).length, 1)
    }))

  it.effect("logs every provider switch and publishes FallbackTaken", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const logger = Logger.make(({ message }) => lines.push(String(message)))
      const events: Array<Events.LlmEvent> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))))
      yield* Effect.yieldNow
      const a = yield* child("a", [{ error: server("a") }, { text: "a" }])
      const b = yield* child("b", [{ text: "b" }])
      yield* Llm.generate(ask).pipe(
        Effect.provide(Fallback.layer([a.layer, b.layer])),
        Effect.provide(Logger.layer([logger]))
      )
      yield* Effect.yieldNow
      assert.isTrue(lines.some((l) => l.includes("a/m → ") && l.includes("ServerError")), lines.join("\n"))
      const taken = events.filter((e) => e._tag === "FallbackTaken")
      assert.strictEqual(taken.length, 1)
      assert.deepStrictEqual(taken[0]!._tag === "FallbackTaken" && [taken[0]!.from.provider, taken[0]!.reason], ["a", "ServerError"])
    }).pipe(Effect.provide(Events.layer())))
})

describe("Fallback streams", () => {
  it.effect("fall over freely before the first part", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a") }])
      const b = yield* child("b", [{ text: "hello", chunks: ["he", "llo"] }])
      const parts = yield* Stream.runCollect(Llm.stream(ask)).pipe(Effect.provide(Fallback.layer([a.layer, b.layer])))
      assert.strictEqual(texts(parts), "hello")
      const last = parts[parts.length - 1]!
      assert.deepStrictEqual(last.type === "finish" && last.response.attempts.map((x) => x.outcome), ["ServerError", "ok"])
    }))

  it.effect("midStream \"fail\" (default): StreamInterrupted carries what the caller already received", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a"), chunks: ["Hel"] }])
      const b = yield* child("b", [{ text: "Hello" }])
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream(ask)).pipe(Effect.provide(Fallback.layer([a.layer, b.layer]))))
      assert.strictEqual(error._tag, "StreamInterrupted")
      if (error._tag === "StreamInterrupted") {
        assert.deepStrictEqual([error.emittedText, error.reason, error.provider], ["Hel", "ServerError", "a"])
      }
      assert.strictEqual((yield* b.requests).length, 0)
    }))

  it.effect("midStream \"restart\": reruns on the next child and hides the characters already sent", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a"), chunks: ["Hel"] }])
      const b = yield* child("b", [{ text: "Hello world", chunks: ["He", "llo", " world"] }])
      const parts = yield* Stream.runCollect(Llm.stream(ask)).pipe(
        Effect.provide(Fallback.layer([a.layer, b.layer], { midStream: "restart" }))
      )
      const deltas = parts.flatMap((p) => p.type === "text-delta" ? [p.text] : [])
      assert.deepStrictEqual(deltas, ["Hel", "lo", " world"])
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type === "finish" && last.response.text, "Hello world")
      assert.deepStrictEqual((yield* b.requests)[0]!.messages, ask.messages)
    }))

  it.effect("midStream \"continue\": sends the emitted text as an assistant prefill to a child that accepts it", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a"), chunks: ["Hel"] }])
      const noPrefill = yield* child("b", [{ text: "never" }])
      const c = yield* child("c", [{ text: "lo!", chunks: ["lo", "!"] }])
      const parts = yield* Stream.runCollect(Llm.stream(ask)).pipe(
        Effect.provide(Fallback.layer([a.layer, { layer: noPrefill.layer, prefill: false }, { layer: c.layer, prefill: true }], {
          midStream: "continue"
        }))
      )
      assert.strictEqual(texts(parts), "Hello!")
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type === "finish" && last.response.text, "Hello!")
      assert.strictEqual((yield* noPrefill.requests).length, 0)
      const sent = (yield* c.requests)[0]!.messages
      assert.deepStrictEqual(sent[sent.length - 1], { role: "assistant", content: "Hel" })
    }))

  it.effect("midStream \"continue\" with no child that accepts prefill behaves as \"fail\"", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a"), chunks: ["Hel"] }])
      const b = yield* child("b", [{ text: "x" }])
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream(ask)).pipe(
        Effect.provide(Fallback.layer([a.layer, b.layer], { midStream: "continue" }))
      ))
      assert.strictEqual(error._tag, "StreamInterrupted")
      assert.strictEqual((yield* b.requests).length, 0)
    }))

  it.effect("never restarts or continues while a tool call is open", () =>
    Effect.gen(function*() {
      const toolThenCut = Layer.succeed(
        Llm.LLM,
        Llm.LLM.of({
          generate: () => Effect.fail(server("a")),
          stream: () =>
            Stream.make({ type: "tool-call-delta" as const, id: "t1", name: "search", inputDelta: "{\"q\":" }).pipe(
              Stream.concat(Stream.fail(server("a")))
            )
        })
      )
      for (const midStream of ["restart", "continue"] as const) {
        const b = yield* child("b", [{ text: "x" }])
        const error = yield* Effect.flip(Stream.runCollect(Llm.stream(ask)).pipe(
          Effect.provide(Fallback.layer([toolThenCut, { layer: b.layer, prefill: true }], { midStream }))
        ))
        assert.strictEqual(error._tag, "StreamInterrupted")
        assert.strictEqual((yield* b.requests).length, 0)
      }
    }))

  it.effect("rejects an empty chain, an unknown policy and bad child options at build, naming each", () =>
    Effect.gen(function*() {
      const refused = <E, R>(layer: Layer.Layer<Llm.LLM, E, R>) => Effect.flip(Layer.build(layer))
      const empty = yield* refused(Fallback.layer([]))
      assert.strictEqual(empty._tag === "SwitchboardConfigError" && empty.path, "Fallback.children")
      assert.match(empty.message, /at least one child/)
      const policy = yield* refused(Fallback.layer([Llm.layerTest([])], { midStream: "resume" as Fallback.MidStream }))
      assert.strictEqual(policy._tag === "SwitchboardConfigError" && policy.path, "Fallback.midStream")
      const on = yield* refused(Fallback.layer([Llm.layerTest([])], { on: "always" as unknown as () => boolean }))
      assert.strictEqual(on._tag === "SwitchboardConfigError" && on.path, "Fallback.on")
      const window = yield* refused(Fallback.layer([Llm.layerTest([]), { layer: Llm.layerTest([]), contextWindow: -1 }]))
      assert.strictEqual(window._tag === "SwitchboardConfigError" && window.path, "Fallback.children[1].contextWindow")
      assert.match(window.message, /integer ≥ 1, got -1/)
      const notALayer = yield* refused(Fallback.layer([{ layer: "openai" as unknown as Layer.Layer<Llm.LLM> }]))
      assert.strictEqual(notALayer._tag === "SwitchboardConfigError" && notALayer.path, "Fallback.children[0]")
      // no child was built when the options are bad
      const a = yield* child("a", [{ text: "a" }])
      yield* refused(Fallback.layer([a.layer], { midStream: "resume" as Fallback.MidStream }))
      assert.strictEqual((yield* a.requests).length, 0)
      // the synchronous constructor throws the same typed error
      assert.throws(() => Fallback.service([]), /Fallback\.children: expected at least one child/)
    }))

  it("unions the error and requirement types of its children", () => {
    class Missing extends Context.Service<Missing, { readonly x: number }>()("test/Missing") {}
    const needs: Layer.Layer<Llm.LLM, "boom", Missing> = Layer.effect(Llm.LLM, Effect.andThen(Missing, Effect.fail("boom" as const)))
    const stack: Layer.Layer<Llm.LLM, "boom" | SwitchboardConfigError.SwitchboardConfigError, Missing> = Fallback.layer([
      Llm.layerTest([]),
      { layer: needs, name: "needs" }
    ])
    assert.isDefined(stack)
  })

  it.effect("Fallback.wrap puts fallbacks behind a service", () =>
    Effect.gen(function*() {
      const a = yield* child("a", [{ error: server("a") }])
      const b = yield* child("b", [{ text: "from b" }])
      const llm = Fallback.wrap([{ service: b.service }])(a.service)
      const response = yield* llm.generate(ask)
      assert.strictEqual(response.text, "from b")
      assert.deepStrictEqual(response.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "b:ok"])
      assert.throws(() => Fallback.wrap([], { midStream: "resume" as Fallback.MidStream }), /Fallback\.midStream: /)
    }))
})
