/**
 * Shared test wiring: a simulator config with the virtual providers the
 * tests need, client layers pointed at it, and a `fetch` that records what
 * the SDK sent.
 */
import { LLM, Llm, type LlmRequest } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { type Duration, Effect, Layer, Schedule } from "effect"
import { OpenAI } from "../src/index.ts"

const gpt4oMini = { id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }

export const simConfig = {
  providers: {
    openai: {
      protocol: "openai",
      models: [
        gpt4oMini,
        { id: "gpt-4o", contextWindow: 128_000, maxOutput: 16_384 },
        { id: "gpt-4.1", contextWindow: 1_047_576, maxOutput: 32_768 },
        { id: "o3-mini", contextWindow: 200_000, maxOutput: 100_000 },
        { id: "tiny", contextWindow: 40, maxOutput: 100 }
      ]
    },
    groq: { protocol: "openai", models: [{ id: "llama-3.3-70b-versatile", contextWindow: 131_072, maxOutput: 32_768 }] },
    slow: { protocol: "openai", latency: { ttftMs: 5_000 }, models: [gpt4oMini] },
    locked: { protocol: "openai", apiKeys: ["sk-right-key-000"], models: [gpt4oMini] },
    limited: { protocol: "openai", rateLimits: { requestsPerMinute: 1_000, tokensPerMinute: 1_000_000 }, models: [gpt4oMini] }
  }
} as const

export const SimLayer = Sim.layer(simConfig)

/** What the SDK sent: the JSON body and the headers of each request. */
export interface Seen {
  readonly bodies: Array<Record<string, unknown>>
  readonly headers: Array<Headers>
  readonly fetch: typeof globalThis.fetch
}

export const recorder = (): Seen => {
  const bodies: Array<Record<string, unknown>> = []
  const headers: Array<Headers> = []
  const fetch: typeof globalThis.fetch = (input, init) => {
    if (typeof init?.body === "string") bodies.push(JSON.parse(init.body) as Record<string, unknown>)
    headers.push(new Headers(init?.headers))
    return globalThis.fetch(input, init)
  }
  return { bodies, headers, fetch }
}

/** An OpenAI client on the simulator's `provider` mount. */
export const client = (
  sim: Sim.SimHandle,
  options: {
    readonly provider?: string
    readonly headers?: Record<string, string>
    readonly apiKey?: string
    readonly fetch?: typeof globalThis.fetch
    readonly timeout?: Duration.Input
  } = {}
) =>
  OpenAI.layerClient({
    apiKey: options.apiKey ?? "sk-test",
    baseURL: `${sim.url}/${options.provider ?? "openai"}/v1`,
    headers: options.headers,
    fetch: options.fetch,
    timeout: options.timeout
  })

/** `OpenAI.model(name)` over a client layer, as a provided `LLM`. */
export const llm = <E>(clientLayer: Layer.Layer<OpenAI.OpenAIClient, E>, name = "gpt-4o-mini") =>
  OpenAI.model(name).pipe(Layer.provide(Layer.orDie(clientLayer)))

export const generate = <E>(layer: Layer.Layer<LLM, E>, request: LlmRequest.LlmRequest) =>
  Llm.generate(request).pipe(Effect.provide(layer))

export const user = (content: string): LlmRequest.LlmRequest => ({ messages: [{ role: "user", content }] })

/** Polls the simulator's stats (real time: it is a real socket) until `check` holds. */
export const eventually = <A>(read: Effect.Effect<A>, check: (a: A) => boolean) =>
  read.pipe(
    Effect.flatMap((a) => check(a) ? Effect.succeed(a) : Effect.fail("not yet" as const)),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ times: 150 })))
  )

/** The outcome counts the simulator recorded for one provider and model. */
export const outcomes = (sim: Sim.SimHandle, provider: string, model: string) =>
  Effect.map(sim.stats, (stats) => stats.providers[provider]?.models[model]?.outcomes ?? {})
