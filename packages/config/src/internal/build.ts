/**
 * From a checked config to services: a client per provider, a stack per
 * model (timeout, hedge, retry, breaker, innermost first), a stack per route
 * (a fallback chain, a router, or one model), then the limits and the cache
 * around every route:
 *
 *   ResponseCache ─> Budget (─> soft switch) ─> RateLimit ─> route
 *
 * The cache and the rate limit are one instance shared by every route. The
 * budget is one budget too: each route gets its own `Budget` instance (so a
 * reservation is priced by that route's own models), and every instance
 * shares spend through the `BudgetStore` in context under one name.
 *
 * @internal
 */
import {
  Budget,
  CircuitBreaker,
  Deadline,
  Fallback,
  Hedge,
  LLM,
  type LlmError,
  type LlmRequest,
  RateLimit,
  ResponseCache,
  Retry,
  Router,
  type SwitchboardConfigError,
  Telemetry
} from "@switchboard/core"
import type { Descriptor } from "@switchboard/core/provider"
import { Context, Duration, Effect, Layer, type Scope, Stream } from "effect"
import type { Route } from "./format.ts"
import type { Loaded } from "./load.ts"

type Stack = Layer.Layer<LLM, SwitchboardConfigError.SwitchboardConfigError>

/** What the builders produce for one config. */
export interface Built {
  readonly routes: ReadonlyMap<string, LLM["Service"]>
  /** Each provider as built (for `switchboard models` and health probes). */
  readonly providers: ReadonlyMap<string, Descriptor.BuiltProvider>
}

const tenantOf = (request: LlmRequest.LlmRequest): string => request.metadata?.tenant ?? "anonymous"

/** The model stack of `name`: leaf, then timeout, hedge, retry, breaker. */
const modelStack = (
  config: Loaded,
  providers: ReadonlyMap<string, Descriptor.BuiltProvider>,
  name: string
): Stack => {
  const model = config.models[name]!
  const provider = providers.get(model.provider)!
  const settings = {
    defaults: model.defaults,
    contentFilter: model.contentFilter
  }
  const leaf = () => provider.model(model.model, settings)
  let stack: Stack = leaf()
  if (model.timeout !== undefined) {
    stack = Deadline.layer(Duration.fromInputUnsafe(config.blocks.get(`models.${name}.timeout`) as Duration.Input))(stack)
  }
  if (model.hedge !== undefined) {
    const hedge = config.blocks.get(`models.${name}.hedge`) as { readonly after: Duration.Input }
    stack = Hedge.layer({ after: hedge.after, backup: leaf() })(stack)
  }
  if (model.retry !== undefined) stack = Retry.layer(config.blocks.get(`models.${name}.retry`) as Retry.Options)(stack)
  if (model.breaker !== undefined) {
    const options = config.blocks.get(`models.${name}.breaker`) as CircuitBreaker.Options
    // Named by the model and its client's settings: a reload keeps the state of an unchanged model, and a
    // changed client (a new key after an AuthenticationFailed lockout) starts closed.
    const fingerprint = config.providers.get(model.provider)?.fingerprint ?? ""
    stack = CircuitBreaker.layer({ ...options, name: options.name ?? `${name}@${fingerprint}` })(stack)
  }
  return stack
}

/** The provider name a model answers as (what prices it in the catalog). */
const priceTarget = (config: Loaded, providers: ReadonlyMap<string, Descriptor.BuiltProvider>, name: string) => {
  const model = config.models[name]!
  return { provider: providers.get(model.provider)?.provider ?? model.provider, model: model.model }
}

/** The models a route may call. */
export const modelsOf = (route: Route): ReadonlyArray<string> =>
  "model" in route
    ? [route.model]
    : "fallback" in route
    ? route.fallback
    : route.router.candidates.map((candidate) => typeof candidate === "string" ? candidate : candidate.name)

const routeStack = (
  config: Loaded,
  providers: ReadonlyMap<string, Descriptor.BuiltProvider>,
  models: (name: string) => Stack,
  route: Route
): Stack => {
  if ("model" in route) return models(route.model)
  if ("fallback" in route) {
    const on = route.on
    // Children named after their models: events and errors say `claude`, not `fallback#1`.
    return Fallback.layer(route.fallback.map((name) => ({ layer: models(name), name })), {
      ...(route.midStream !== undefined ? { midStream: route.midStream } : {}),
      ...(on !== undefined ? { on: (error: LlmError.LlmError) => on.includes(error._tag) } : {})
    })
  }
  const { candidates, ...options } = route.router
  return Router.layer(
    candidates.map((candidate) => {
      const name = typeof candidate === "string" ? candidate : candidate.name
      const weight = typeof candidate === "string" ? undefined : candidate.weight
      const provider = providers.get(config.models[name]!.provider)
      return {
        name,
        layer: models(name),
        ...priceTarget(config, providers, name),
        ...(weight !== undefined ? { weight } : {}),
        // A client that cannot be built already failed the build: its listing cannot fail that way here.
        ...(provider !== undefined
          ? { probe: provider.listModels.pipe(Effect.catchTag("SwitchboardConfigError", (error) => Effect.die(error))) }
          : {})
      }
    }),
    options
  )
}

/** The `maxTokens` a route's models fill in when every one of them sets it (the largest), for reservations. */
const routeMaxTokens = (config: Loaded, route: Route): number | undefined => {
  let most = 0
  for (const name of modelsOf(route)) {
    const maxTokens = config.models[name]?.defaults?.["maxTokens"]
    if (typeof maxTokens !== "number") return undefined
    most = Math.max(most, maxTokens)
  }
  return most > 0 ? most : undefined
}

export const build = (
  config: Loaded
): Effect.Effect<Built, SwitchboardConfigError.SwitchboardConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const providers = new Map<string, Descriptor.BuiltProvider>()
    for (const [name, entry] of config.providers) providers.set(name, entry.descriptor.build(entry.type, name, entry.options))
    const modelLayers = new Map<string, Stack>()
    const models = (name: string): Stack => {
      let stack = modelLayers.get(name)
      if (stack === undefined) {
        stack = modelStack(config, providers, name)
        modelLayers.set(name, stack)
      }
      return stack
    }
    // One memo map for the whole config: a model used by two routes is one stack (one breaker, one client).
    const memo = yield* Layer.makeMemoMap
    const scope = yield* Effect.scope
    const inner = new Map<string, LLM["Service"]>()
    for (const [name, route] of Object.entries(config.raw.routes)) {
      const context = yield* Layer.buildWithMemoMap(routeStack(config, providers, models, route), memo, scope)
      inner.set(name, Context.get(context, LLM))
    }

    const limits = config.raw.limits
    const rateLimitOptions = config.blocks.get("limits.rateLimit") as RateLimit.Options | undefined
    const rateLimit = rateLimitOptions === undefined ? undefined : yield* RateLimit.make(
      rateLimitOptions.key === "tenant" ? { ...rateLimitOptions, key: tenantOf } : rateLimitOptions
    )
    const cacheOptions = config.blocks.get("cache") as ResponseCache.Options | undefined
    const cache = cacheOptions === undefined ? undefined : yield* ResponseCache.make(cacheOptions)
    const budgetBlock = config.blocks.get("limits.budget") as
      | (Omit<Budget.Options, "scope" | "onSoft"> & { readonly scope?: "global" | "tenant"; readonly onSoft?: string })
      | undefined

    const telemetryBlock = config.blocks.get("telemetry") as
      | { readonly captureContent?: boolean | undefined; readonly maxContentLength?: number | undefined }
      | undefined
    const telemetry = {
      ...(telemetryBlock?.captureContent !== undefined ? { captureContent: telemetryBlock.captureContent } : {}),
      ...(telemetryBlock?.maxContentLength !== undefined ? { maxContentLength: telemetryBlock.maxContentLength } : {})
    }
    const routes = new Map<string, LLM["Service"]>()
    for (const [name, route] of Object.entries(config.raw.routes)) {
      let service = inner.get(name)!
      if (rateLimit !== undefined) service = rateLimit.wrap(service)
      if (budgetBlock !== undefined) {
        const { onSoft, scope, ...options } = budgetBlock
        const maxTokens = options.maxTokens ?? routeMaxTokens(config, route)
        const budgetFor = (routeName: string) =>
          Budget.make({
            ...options,
            name: options.name ?? "switchboard",
            models: modelsOf(config.raw.routes[routeName]!).map((model) => priceTarget(config, providers, model)),
            ...(maxTokens !== undefined ? { maxTokens } : {}),
            ...(scope === "tenant" ? { scope: tenantOf } : {})
          })
        const budget = yield* budgetFor(name)
        const soft = onSoft !== undefined && onSoft !== name ? inner.get(onSoft) : undefined
        if (soft === undefined || limits?.budget?.["softAt"] === undefined) {
          service = budget.wrap(service)
        } else {
          // Past `softAt × limitUsd` the route's calls go to the `onSoft` route, reserved at its own prices.
          const cheap = yield* budgetFor(onSoft!)
          const softAt = budget.options.softAt ?? 0.8
          const primary = budget.wrap(service)
          const fallback = cheap.wrap(rateLimit === undefined ? soft : rateLimit.wrap(soft))
          const scopeOf = scope === "tenant" ? tenantOf : () => undefined
          const pick = (request: LlmRequest.LlmRequest) =>
            Effect.map(
              budget.state(scopeOf(request)),
              (state) => state.spentUsd >= softAt * state.limitUsd ? fallback : primary
            )
          service = LLM.of({
            generate: (request) => Effect.flatMap(pick(request), (llm) => llm.generate(request)),
            stream: (request) => Stream.unwrap(Effect.map(pick(request), (llm) => llm.stream(request)))
          })
        }
      }
      if (cache !== undefined) service = cache.wrap(service)
      // Outermost: one `chat {route}` span per call, cache hits and budget refusals included.
      service = Telemetry.wrap({ route: name, ...telemetry })(service)
      routes.set(name, service)
    }
    return { routes, providers }
  })
