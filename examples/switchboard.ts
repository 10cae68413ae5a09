/**
 * The Switchboard stack of `pnpm demo`, in code — the file to copy into your own app.
 * `pnpm demo` builds the same stack from its config file,
 * `examples/switchboard.yaml`; `pnpm chaos` and `pnpm bench` build it from here.
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
import { Budget, CircuitBreaker, Fallback, LLM, Llm, RateLimit, ResponseCache, Retry } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Context, Effect, Layer, type Redacted } from "effect"

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

/** The three provider layers of the stack, before any combinator, with their names. */
export interface Providers<E, R> {
  readonly openai: { readonly layer: Layer.Layer<LLM, E, R>; readonly model: string }
  readonly anthropic: { readonly layer: Layer.Layer<LLM, E, R>; readonly model: string }
  readonly cheap: { readonly layer: Layer.Layer<LLM, E, R>; readonly model: string; readonly name: string }
}

/**
 * Builds the stack from its endpoints (real APIs or the simulator), through
 * the official SDKs.
 */
export const makeStack = (endpoints: Endpoints, limits: Limits) =>
  makeStackFrom({
    openai: {
      model: endpoints.openai.model,
      layer: OpenAI.model(endpoints.openai.model).pipe(
        Layer.provide(Layer.orDie(OpenAI.layerClient({ apiKey: endpoints.openai.apiKey, baseURL: endpoints.openai.baseURL })))
      )
    },
    anthropic: {
      model: endpoints.anthropic.model,
      layer: Anthropic.model(endpoints.anthropic.model).pipe(
        Layer.provide(Layer.orDie(Anthropic.layerClient({ apiKey: endpoints.anthropic.apiKey, baseURL: endpoints.anthropic.baseURL })))
      )
    },
    cheap: {
      name: endpoints.cheap.name,
      model: endpoints.cheap.model,
      layer: OpenAI.model(endpoints.cheap.model).pipe(Layer.provide(Layer.orDie(OpenAI.compatible(endpoints.cheap))))
    }
  }, limits)

/**
 * Builds the stack over any three provider layers (the benchmark uses
 * in-process test providers to measure the combinators alone). Returns the
 * layer, the budget and each provider's breaker, whose state the caller can
 * read (the demo and the chaos run do).
 */
export const makeStackFrom = <E, R>(providers: Providers<E, R>, limits: Limits) =>
  Effect.gen(function*() {
    const legs: Array<Leg> = []
    // A provider with its own retry series and circuit breaker.
    const guard = (name: string, provider: string, model: string) =>
      Effect.map(CircuitBreaker.make({ failureThreshold: 4, cooldown: "1 second", halfOpenProbes: 1 }), (breaker) => {
        legs.push({ name, provider, model, breaker })
        return (layer: Layer.Layer<LLM, E, R>) =>
          layer.pipe(Retry.layer({ times: 2, base: "100 millis", max: "1 second" }), breaker.layer)
      })
    const openai = (yield* guard("openai", "openai", providers.openai.model))(providers.openai.layer)
    const anthropic = (yield* guard("anthropic", "anthropic", providers.anthropic.model))(providers.anthropic.layer)
    const cheap = (yield* guard(providers.cheap.name, providers.cheap.name, providers.cheap.model))(providers.cheap.layer)
    // Children say their context window, so a prompt too long for one skips to one that fits.
    const primary = Fallback.layer([
      { layer: openai, name: "openai", contextWindow: 128_000 },
      { layer: anthropic, name: "anthropic", contextWindow: 200_000, prefill: true },
      { layer: cheap, name: providers.cheap.name, contextWindow: 131_072 }
    ])
    const economy = Fallback.layer([
      { layer: cheap, name: providers.cheap.name, contextWindow: 131_072 },
      { layer: anthropic, name: "anthropic", contextWindow: 200_000, prefill: true }
    ])

    const budget = yield* Budget.make({
      limitUsd: limits.budgetUsd,
      window: "day",
      softAt: limits.softAt,
      // The day's budget is large next to one call: reserve each prompt at its byte length, and
      // count its tokens only when that bound does not fit (no tokenizer pass on the hot path).
      count: "bound",
      // A request that names no model is reserved at the dearest model behind the budget.
      models: [
        { provider: "openai", model: providers.openai.model },
        { provider: "anthropic", model: providers.anthropic.model },
        { provider: providers.cheap.name, model: providers.cheap.model }
      ]
    }).pipe(Effect.orDie) // constant options: a bad one is a bug here

    // Route by settled spend: the primary chain until the soft threshold, then the cheap one.
    const routed = Layer.effect(
      LLM,
      Effect.gen(function*() {
        const full = Context.get(yield* Layer.build(primary), LLM)
        const saving = Context.get(yield* Layer.build(economy), LLM)
        return Llm.choose(() =>
          Effect.map(budget.state(), (s) => s.spentUsd >= limits.softAt * s.limitUsd ? saving : full)
        )
      })
    )

    const layer = routed.pipe(
      RateLimit.layer({
        requests: { limit: limits.requestsPerSecond, window: "1 second" },
        onExceeded: "wait",
        maxWait: "5 seconds"
      }),
      budget.layer,
      ResponseCache.layer({ capacity: 1_000, ttl: "10 minutes" }),
      // The options above are constants: a SwitchboardConfigError from them is a bug in this file.
      Layer.catchTag("SwitchboardConfigError", (error) => Layer.effect(LLM, Effect.die(error)))
    )
    return { layer, budget, legs: legs as ReadonlyArray<Leg> }
  })
