/**
 * From a checked config to services: a client per provider, a stack per
 * model (timeout, hedge, retry, breaker, innermost first), a stack per route
 * (a fallback chain, a router, or one model), then the limits and the cache
 * around every route. Combinator options are handed over as written in the
 * file: each combinator decodes them with the same Schema the loader used.
 *
 * @internal
 */
import type { Descriptor } from "@switchboard/core/provider"
import {
  Budget,
  CircuitBreaker,
  Deadline,
  Fallback,
  Hedge,
  LLM,
  RateLimit,
  ResponseCache,
  Retry,
  Router,
  SwitchboardConfigError
} from "@switchboard/core"
import { Context, Effect, Layer, type Scope } from "effect"
import type { Loaded } from "./load.ts"
import type { Route } from "./format.ts"

type Stack = Layer.Layer<LLM, SwitchboardConfigError.SwitchboardConfigError>

/** What the builders produce for one config. */
export interface Built {
  readonly routes: ReadonlyMap<string, LLM["Service"]>
  /** Each provider as built (for `switchboard models` and health probes). */
  readonly providers: ReadonlyMap<string, Descriptor.BuiltProvider>
}

const raw = (config: Loaded, path: ReadonlyArray<string>): unknown => {
  let node: unknown = config.raw
  for (const key of path) node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined
  return node
}

/** The model stack of `name`: leaf, then timeout, hedge, retry, breaker. */
const modelStack = (config: Loaded, providers: ReadonlyMap<string, Descriptor.BuiltProvider>, name: string): Stack => {
  const model = config.models[name]!
  const provider = providers.get(model.provider)!
  const leaf = (): Layer.Layer<LLM> =>
    provider.model(model.model, {
      defaults: model.defaults,
      contentFilter: model.contentFilter
    })
  let stack: Stack = leaf()
  if (model.timeout !== undefined) stack = Deadline.layer(config.blocks.get(`models.${name}.timeout`) as never)(stack)
  if (model.hedge !== undefined) stack = Hedge.layer({ ...(model.hedge as object), backup: leaf() } as never)(stack)
  if (model.retry !== undefined) stack = Retry.layer(model.retry as never)(stack)
  if (model.breaker !== undefined) stack = CircuitBreaker.layer(model.breaker as never)(stack)
  return stack
}

const routeStack = (
  config: Loaded,
  models: (name: string) => Stack,
  route: Route
): Stack => {
  if ("model" in route) return models(route.model)
  if ("fallback" in route) {
    return Fallback.layer(route.fallback.map(models), {
      ...(route.midStream !== undefined ? { midStream: route.midStream } : {})
    })
  }
  const router = route.router
  const candidates = router.candidates.map((candidate) => {
    const name = typeof candidate === "string" ? candidate : candidate.name
    const model = config.models[name]!
    const weight = typeof candidate === "string" ? undefined : candidate.weight
    return {
      name,
      layer: models(name),
      provider: config.providers.get(model.provider)?.descriptor === undefined ? model.provider : model.provider,
      model: model.model,
      ...(weight !== undefined ? { weight } : {})
    }
  })
  return Router.layer(candidates, {
    strategy: router.strategy,
    ...(router.tasks !== undefined ? { tasks: router.tasks } : {}),
    ...(router.fallback !== undefined ? { fallback: router.fallback } : {}),
    ...(router.require !== undefined ? { require: router.require } : {}),
    ...(router.latency !== undefined ? { latency: router.latency } : {})
  } as never)
}

export const build = (config: Loaded): Effect.Effect<Built, SwitchboardConfigError.SwitchboardConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const providers = new Map<string, Descriptor.BuiltProvider>()
    for (const [name, entry] of config.providers) providers.set(name, entry.descriptor.build(entry.type, name, entry.options))
    const modelCache = new Map<string, Stack>()
    const models = (name: string): Stack => {
      let stack = modelCache.get(name)
      if (stack === undefined) {
        stack = modelStack(config, providers, name)
        modelCache.set(name, stack)
      }
      return stack
    }
    const routes = new Map<string, LLM["Service"]>()
    const built = new Map<string, LLM["Service"]>()
    for (const [name, route] of Object.entries(config.raw.routes)) {
      const context = yield* Layer.build(routeStack(config, models, route))
      built.set(name, Context.get(context, LLM))
    }
    // Limits and the cache are shared by every route: one instance each.
    const limits = config.raw.limits
    const budgetOptions = limits?.budget === undefined ? undefined : (() => {
      const { onSoft: _, ...rest } = limits.budget
      return rest
    })()
    const budget = budgetOptions === undefined ? undefined : yield* Budget.make(budgetOptions as never)
    const rateLimit = limits?.rateLimit === undefined
      ? undefined
      : yield* RateLimit.make(limits.rateLimit as never)
    const cache = config.raw.cache === undefined ? undefined : yield* ResponseCache.make(config.raw.cache as never)
    const onSoft = typeof limits?.budget?.["onSoft"] === "string" ? limits.budget["onSoft"] : undefined
    for (const [name, inner] of built) {
      let service = inner
      if (rateLimit !== undefined) service = rateLimit(service)
      if (budget !== undefined) {
        const soft = onSoft !== undefined && onSoft !== name ? built.get(onSoft) : undefined
        service = soft === undefined ? budget.wrap(service) : budget.wrapSwitch(service, soft)
      }
      if (cache !== undefined) service = cache(service)
      routes.set(name, service)
    }
    void raw
    return { routes, providers }
  })
