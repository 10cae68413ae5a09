/**
 * The Switchboard stack of `pnpm demo` — the file to copy into your own app.
 *
 * Three providers, each guarded by its own retry and circuit breaker, in a
 * fallback chain; over the chain a rate limit, a budget and a response cache:
 *
 * ```
 * ResponseCache ─> Budget ─> RateLimit ─> route by spend ─┬─ primary: Fallback [openai, anthropic, groq]
 *                                                          └─ cheap:   Fallback [groq, anthropic]
 * each provider:  CircuitBreaker ─> Retry ─> SDK over HTTP
 * ```
 *
 * Below 80 % of the budget calls go to the primary chain; past it, to the
 * cheap one ("monthly spend at 80 %? route to the cheaper provider").
 * Order matters: Retry sits next to the provider so a breaker counts one
 * failure per exhausted retry series, and the breaker sits inside the
 * fallback so an open circuit moves the chain on at once.
 */
import { Anthropic } from "@switchboard/anthropic"
import { Budget, CircuitBreaker, Fallback, LLM, RateLimit, ResponseCache, Retry } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Context, Effect, Layer, type Redacted, Stream } from "effect"

/** Where one provider is and which model it serves. */
export interface Endpoint {
  readonly apiKey: string | Redacted.Redacted<string>
  readonly baseURL?: string | undefined
  readonly model: string
}

/** The three providers of the stack. */
export interface Endpoints {
  readonly openai: Endpoint
  readonly anthropic: Endpoint
  /** The cheap one: any OpenAI-compatible API. */
  readonly cheap: Endpoint & { readonly name: string; readonly baseURL: string }
}

/** What the stack is allowed to spend and how fast it may call. */
export interface Limits {
  readonly budgetUsd: number
  readonly softAt: number
  readonly requestsPerSecond: number
}

/** One provider of the stack with its breaker, whose state a caller can read. */
export interface Leg {
  readonly name: string
  readonly provider: string
  readonly model: string
  readonly breaker: CircuitBreaker.CircuitBreaker
}

/**
 * Builds the stack. Returns the layer, the budget and each provider's
 * breaker, whose state the caller can read (the demo and the chaos run do).
 */
export const makeStack = (endpoints: Endpoints, limits: Limits) =>
  Effect.gen(function*() {
    const legs: Array<Leg> = []
    // A provider with its own retry series and circuit breaker.
    const guard = (name: string, provider: string, model: string) =>
      Effect.map(CircuitBreaker.make({ failureThreshold: 4, cooldown: "1 second", halfOpenProbes: 1 }), (breaker) => {
        legs.push({ name, provider, model, breaker })
        return <E, R>(layer: Layer.Layer<LLM, E, R>) =>
          layer.pipe(Retry.layer({ times: 2, base: "100 millis", max: "1 second" }), breaker.layer)
      })
    const guarded = {
      openai: yield* guard("openai", "openai", endpoints.openai.model),
      anthropic: yield* guard("anthropic", "anthropic", endpoints.anthropic.model),
      cheap: yield* guard(endpoints.cheap.name, endpoints.cheap.name, endpoints.cheap.model)
    }
    const openai = guarded.openai(
      OpenAI.model(endpoints.openai.model).pipe(
        Layer.provide(OpenAI.layerClient({ apiKey: endpoints.openai.apiKey, baseURL: endpoints.openai.baseURL }))
      )
    )
    const anthropic = guarded.anthropic(
      Anthropic.model(endpoints.anthropic.model).pipe(
        Layer.provide(Anthropic.layerClient({ apiKey: endpoints.anthropic.apiKey, baseURL: endpoints.anthropic.baseURL }))
      )
    )
    const cheap = guarded.cheap(
      OpenAI.model(endpoints.cheap.model).pipe(Layer.provide(OpenAI.compatible(endpoints.cheap)))
    )

    // Children say their context window, so a prompt too long for one skips to one that fits.
    const primary = Fallback.layer([
      { layer: openai, name: "openai", contextWindow: 128_000 },
      { layer: anthropic, name: "anthropic", contextWindow: 200_000, prefill: true },
      { layer: cheap, name: endpoints.cheap.name, contextWindow: 131_072 }
    ])
    const economy = Fallback.layer([
      { layer: cheap, name: endpoints.cheap.name, contextWindow: 131_072 },
      { layer: anthropic, name: "anthropic", contextWindow: 200_000, prefill: true }
    ])

    const budget = yield* Budget.make({
      limitUsd: limits.budgetUsd,
      window: "day",
      softAt: limits.softAt,
      // A request that names no model is reserved at the dearest model behind the budget.
      models: [
        { provider: "openai", model: endpoints.openai.model },
        { provider: "anthropic", model: endpoints.anthropic.model },
        { provider: endpoints.cheap.name, model: endpoints.cheap.model }
      ]
    })

    // Route by settled spend: the primary chain until the soft threshold, then the cheap one.
    const routed = Layer.effect(
      LLM,
      Effect.gen(function*() {
        const full = Context.get(yield* Layer.build(primary), LLM)
        const saving = Context.get(yield* Layer.build(economy), LLM)
        const pick = Effect.map(budget.state(), (s) => s.spentUsd >= limits.softAt * s.limitUsd ? saving : full)
        return LLM.of({
          generate: (request) => Effect.flatMap(pick, (llm) => llm.generate(request)),
          stream: (request) => Stream.unwrap(Effect.map(pick, (llm) => llm.stream(request)))
        })
      })
    )

    const layer = routed.pipe(
      RateLimit.layer({
        requests: { limit: limits.requestsPerSecond, window: "1 second" },
        onExceeded: "wait",
        maxWait: "5 seconds"
      }),
      budget.layer,
      ResponseCache.layer({ capacity: 1_000, ttl: "10 minutes" })
    )
    return { layer, budget, legs: legs as ReadonlyArray<Leg> }
  })
