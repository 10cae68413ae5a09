/**
 * Shared test helpers: a simulator config with the providers the tests need,
 * an `LLM` layer for the Anthropic layer pointed at it, and a `fetch` that
 * records the JSON bodies the SDK sends.
 */
import type { LLM } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import type { LlmRequest } from "@switchboard/core"
import { Anthropic } from "../src/index.ts"

export const GOOD_KEY = "sk-ant-api03-GOOD-distinctive-key-0123456789"

export const simConfig = {
  providers: {
    anthropic: Sim.defaultConfig.providers.anthropic!,
    // Calls need a key here, for the authentication tests.
    "anthropic-keyed": { ...Sim.defaultConfig.providers.anthropic!, apiKeys: [GOOD_KEY] },
    // A tiny context window (context-length errors) and rate limits (ratelimit headers).
    "anthropic-small": {
      protocol: "anthropic" as const,
      models: [{ id: "claude-haiku-4-5", contextWindow: 60, maxOutput: 64_000 }],
      rateLimits: { requestsPerMinute: 1000, tokensPerMinute: 1_000_000 }
    },
    // Answers after 5 s (time to first token), for cancellation tests.
    "anthropic-slow": { ...Sim.defaultConfig.providers.anthropic!, latency: { ttftMs: 5000, perTokenMs: 0 } }
  }
}

export interface Setup {
  readonly provider?: string | undefined
  readonly model?: string | undefined
  readonly apiKey?: string | undefined
  readonly headers?: Record<string, string> | undefined
  readonly defaults?: Partial<LlmRequest.LlmRequest> | undefined
  readonly timeout?: number | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
  readonly contentFilter?: "fail" | "return" | undefined
}

/** The Anthropic `LLM` over the simulator at `url`. */
export const llm = (url: string, setup: Setup = {}): Layer.Layer<LLM> =>
  Anthropic.model(setup.model ?? "claude-haiku-4-5", setup.defaults, { contentFilter: setup.contentFilter }).pipe(
    Layer.provide(Layer.orDie(Anthropic.layerClient({
      apiKey: setup.apiKey ?? "sk-ant-test",
      baseURL: `${url}/${setup.provider ?? "anthropic"}`,
      headers: setup.headers,
      timeout: setup.timeout,
      fetch: setup.fetch
    })))
  )

/** A `fetch` that records each JSON request body before sending it on. */
export const recorder = () => {
  const bodies: Array<Record<string, any>> = []
  const fetch: typeof globalThis.fetch = (input, init) => {
    if (typeof init?.body === "string") bodies.push(JSON.parse(init.body))
    return globalThis.fetch(input, init)
  }
  return { bodies, fetch, last: () => bodies[bodies.length - 1]! }
}

/** Outcome counts the simulator recorded for one provider and model. */
export const outcomes = (provider: string, model: string) =>
  Effect.flatMap(Sim.SimServer, (s) => s.stats).pipe(
    Effect.map((stats) => stats.providers[provider]?.models[model]?.outcomes ?? {})
  )

export const user = (content: string): LlmRequest.LlmRequest => ({ messages: [{ role: "user", content }] })

/** Polls (real time) until `check` holds, for at most `ms`. */
export const eventually = <A, R>(probe: Effect.Effect<A, never, R>, check: (a: A) => boolean, ms = 3000): Effect.Effect<A, never, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    for (;;) {
      const value = yield* probe
      if (check(value) || Date.now() > deadline) return value
      yield* Effect.sleep("20 millis")
    }
  })
