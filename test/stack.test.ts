/**
 * The combinators over the real provider layers: real SDKs over HTTP to the
 * simulator, which injects the faults and counts what it saw — so these tests
 * prove what reached the wire, not just what the layers returned.
 */
import { assert, describe, it } from "@effect/vitest"
import { Anthropic } from "@switchboard/anthropic"
import { CircuitBreaker, Fallback, Hedge, Llm, type LLM, Retry } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, Layer, Schedule, Stream } from "effect"

const user = (content: string) => ({ messages: [{ role: "user" as const, content }], maxTokens: 30 })

const config = {
  providers: {
    openai: { protocol: "openai" as const, models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
    slow: {
      protocol: "openai" as const,
      models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }],
      latency: { ttftMs: 3_000 }
    },
    anthropic: {
      protocol: "anthropic" as const,
      models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }]
    }
  }
}

const openai = (sim: Sim.SimHandle, name = "openai", apiKey = "sk-test") =>
  OpenAI.model("gpt-4o-mini").pipe(
    Layer.provide(Layer.orDie(OpenAI.compatible({ name, baseURL: `${sim.providerUrl(name)}/v1`, apiKey })))
  )
const anthropic = (sim: Sim.SimHandle) =>
  Anthropic.model("claude-haiku-4-5").pipe(
    Layer.provide(Layer.orDie(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: sim.providerUrl("anthropic") })))
  )

const outcomes = (sim: Sim.SimHandle, provider: string) =>
  Effect.map(sim.stats, (stats) => stats.providers[provider]?.models["gpt-4o-mini"]?.outcomes ?? {})

/** Polls real time until `check` holds (a real socket takes a moment to report its close). */
const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  Effect.repeat(read, { until: check, schedule: Schedule.spaced("20 millis"), times: 100 })

const withLlm = <A, E, E2>(layer: Layer.Layer<LLM, E2, never>, effect: Effect.Effect<A, E, LLM>) =>
  Effect.provide(effect, layer)

describe("stacks over the real provider layers", () => {
  it.live("Retry then Fallback: OpenAI's 500s are retried, then Anthropic answers; every attempt is recorded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ status: 500, times: 2 }] })
      const stack = Fallback.layer([
        openai(sim).pipe(Retry.layer({ times: 1, base: "10 millis", jitter: false })),
        anthropic(sim)
      ])
      const response = yield* withLlm(stack, Llm.generate(user("hello")))
      assert.strictEqual(response.provider, "anthropic")
      assert.deepStrictEqual(response.attempts.map((a) => `${a.provider}:${a.outcome}`), [
        "openai:ServerError",
        "openai:ServerError",
        "anthropic:ok"
      ])
      assert.deepStrictEqual(yield* outcomes(sim, "openai"), { "500": 2 })
    }))

  it.live("Hedge: a slow primary is raced by the backup, and the loser's HTTP request is closed", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const stack = openai(sim, "slow").pipe(Hedge.layer({ after: "100 millis", backup: anthropic(sim) }))
      const response = yield* withLlm(stack, Llm.generate(user("race")))
      assert.strictEqual(response.provider, "anthropic")
      assert.deepStrictEqual(response.attempts.map((a) => a.outcome).sort(), ["Interrupted", "ok"])
      const slow = yield* eventually(outcomes(sim, "slow"), (o) => o["aborted"] === 1)
      assert.deepStrictEqual(slow, { aborted: 1 })
    }))

  it.live("CircuitBreaker: a rejected key opens the circuit until rebuilt; later calls never reach the provider", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start({
        providers: { locked: { ...config.providers.openai, apiKeys: ["sk-right"] } }
      })
      const stack = openai(sim, "locked", "sk-wrong").pipe(CircuitBreaker.layer({ failureThreshold: 5, cooldown: "1 second" }))
      const [first, second] = yield* withLlm(
        stack,
        Effect.all([Effect.flip(Llm.generate(user("a"))), Effect.flip(Llm.generate(user("b")))])
      )
      assert.strictEqual(first._tag, "AuthenticationFailed")
      assert.strictEqual(second._tag, "CircuitOpen")
      assert.notInclude(JSON.stringify([first, second, first.message]), "sk-wrong")
      const stats = yield* sim.stats
      assert.strictEqual(stats.providers["locked"]?.requests, 1)
    }))

  it.live("a stream falls over before its first part: OpenAI's 503 on open, Anthropic streams the answer", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ status: 503 }] })
      const stack = Fallback.layer([openai(sim), anthropic(sim)])
      const parts = yield* withLlm(stack, Stream.runCollect(Llm.stream(user("stream please"))))
      const finish = parts[parts.length - 1]
      assert.strictEqual(finish?.type, "finish")
      if (finish?.type === "finish") {
        assert.strictEqual(finish.response.provider, "anthropic")
        const text = parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []).join("")
        assert.strictEqual(text, finish.response.text)
        assert.isAbove(text.length, 0)
      }
    }))
})
