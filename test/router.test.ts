/**
 * The Router over the real provider layers: OpenAI, Anthropic and Gemini
 * through their official SDKs over HTTP to the simulator, which injects the
 * outage and counts what reached the wire.
 */
import { assert, describe, it } from "@effect/vitest"
import { Anthropic } from "@switchboard/anthropic"
import { CircuitBreaker, Events, HealthMonitor, LLM, type LlmResponse, ModelCatalog, Router } from "@switchboard/core"
import { Google } from "@switchboard/google"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"

const user = (content: string) => ({ messages: [{ role: "user" as const, content }], maxTokens: 30 })

const candidates = (sim: Sim.SimHandle) => {
  const breaker = CircuitBreaker.layer({ failureThreshold: 2, cooldown: "30 seconds" })
  return [
    {
      name: "openai",
      provider: "openai",
      model: "gpt-4o-mini",
      layer: OpenAI.model("gpt-4o-mini").pipe(
        breaker,
        Layer.provide(OpenAI.layerClient({ apiKey: "sk-test", baseURL: `${sim.providerUrl("openai")}/v1` }))
      )
    },
    {
      name: "anthropic",
      provider: "anthropic",
      model: "claude-haiku-4-5",
      layer: Anthropic.model("claude-haiku-4-5").pipe(
        breaker,
        Layer.provide(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: sim.providerUrl("anthropic") }))
      )
    },
    {
      name: "gemini",
      provider: "google",
      model: "gemini-2.5-flash",
      layer: Google.model("gemini-2.5-flash").pipe(
        breaker,
        Layer.provide(Google.layerClient({ apiKey: "AIza-test", baseURL: sim.providerUrl("gemini") }))
      )
    }
  ] as const
}

const requests = (sim: Sim.SimHandle) =>
  Effect.map(sim.stats, (stats) => ({
    openai: stats.providers["openai"]?.requests ?? 0,
    anthropic: stats.providers["anthropic"]?.requests ?? 0,
    gemini: stats.providers["gemini"]?.requests ?? 0
  }))

describe("Router over OpenAI, Anthropic and Gemini (real SDKs, simulator)", () => {
  it.effect("leastCost: the cheapest provider for the request answers, and only it is called", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const stack = Router.layer(candidates(sim), { strategy: "leastCost" })
      const [short, long] = yield* Effect.provide(
        LLM.use((llm) =>
          Effect.all([
            llm.generate(user("hello")),
            // ~140k tokens: over gpt-4o-mini's 128k window; Gemini is cheaper than Claude for it
            llm.generate(user("word ".repeat(140_000)))
          ])
        ),
        stack
      )
      assert.strictEqual(short.provider, "openai")
      assert.strictEqual(long.provider, "google")
      assert.deepStrictEqual(yield* requests(sim), { openai: 1, anthropic: 0, gemini: 1 })
    }))

  it.effect("an outage: moves away (fallback, breaker, health), skips the provider without calls, and returns after recovery", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      yield* sim.setFaults("openai", { outages: [{ durationMs: 3_600_000, status: 503 }] })
      const stack = Router.layer(candidates(sim), { strategy: "leastCost" }).pipe(
        Layer.provideMerge(HealthMonitor.layer({ interval: "10 seconds", window: "20 seconds", minCalls: 2 }))
      )
      const events: Array<Events.LlmEvent> = []
      yield* Effect.gen(function*() {
        const llm = yield* LLM
        const bus = yield* Events.LlmEvents
        yield* Effect.forkChild(Stream.runForEach(bus.events, (e) => Effect.sync(() => events.push(e))))
        yield* Effect.yieldNow
        const during: Array<LlmResponse.LlmResponse> = []
        for (let i = 0; i < 5; i++) during.push(yield* llm.generate(user(`during ${i}`)))
        // the next cheapest answers every call; OpenAI saw only the two calls that opened its breaker
        assert.deepStrictEqual(during.map((r) => r.provider), ["google", "google", "google", "google", "google"])
        assert.deepStrictEqual(during[0]!.attempts.map((a) => `${a.provider}:${a.outcome}`), ["openai:Overloaded", "google:ok"])
        assert.deepStrictEqual(yield* requests(sim), { openai: 2, anthropic: 0, gemini: 5 })
        const health = yield* HealthMonitor.snapshot
        assert.strictEqual(health.find((h) => h.name === "openai")?.status, "down")
        const last = events.filter((e): e is Events.RouteChosen => e._tag === "RouteChosen").at(-1)
        assert.strictEqual(last?.candidate, "gemini")
        assert.deepInclude(last?.skipped ?? [], { name: "openai", reason: "down (HealthMonitor)" })

        // recovery: the outage ends, the window and the breaker's cooldown pass
        yield* sim.clearFaults("openai")
        yield* TestClock.adjust("31 seconds")
        const after = yield* llm.generate(user("after"))
        assert.strictEqual(after.provider, "openai")
        assert.deepStrictEqual(yield* requests(sim), { openai: 3, anthropic: 0, gemini: 5 })
        assert.isTrue(
          events.some((e) => e._tag === "HealthChanged" && e.name === "openai" && e.to === "healthy")
        )
      }).pipe(Effect.provide(stack), Effect.provide(Events.layer()))
    }))
})

describe("ModelCatalog over the real SDKs' listModels (simulator)", () => {
  it.effect("merges OpenAI's and Gemini's listings with the pricing catalog", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const openai = OpenAI.listModels.pipe(
        Effect.provide(OpenAI.layerClient({ apiKey: "sk-test", baseURL: `${sim.providerUrl("openai")}/v1` }).pipe(Layer.orDie))
      )
      const gemini = Google.listModels.pipe(
        Effect.provide(Google.layerClient({ apiKey: "AIza-test", baseURL: sim.providerUrl("gemini") }).pipe(Layer.orDie))
      )
      const catalog = yield* ModelCatalog.make({
        sources: [{ provider: "openai", listModels: openai }, { provider: "google", listModels: gemini }]
      })
      assert.deepStrictEqual(yield* catalog.errors, [])
      const mini = catalog.lookup("openai", "gpt-4o-mini")
      assert.strictEqual(mini?.listed, true)
      assert.strictEqual(mini?.priceUnknown, false)
      assert.strictEqual(mini?.inputPerMillion, 0.15)
      const flash = catalog.lookup("google", "gemini-2.5-flash")
      assert.strictEqual(flash?.listed, true)
      assert.strictEqual(flash?.contextWindow, 1_048_576)
    }))
})
