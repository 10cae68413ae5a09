/**
 * What models exist right now, what they cost and what they can do: the
 * shipped `Pricing` catalog merged with each provider's `listModels`,
 * refreshed on an interval.
 *
 * - A listed model found in `Pricing` (dated snapshots included:
 *   `claude-haiku-4-5-20251001` prices as `claude-haiku-4-5`) gets its prices
 *   and capabilities from there; a context window or max output the
 *   provider's API states (Gemini's `inputTokenLimit` / `outputTokenLimit`)
 *   wins over the catalog's.
 * - A listed model missing from `Pricing` is kept with `priceUnknown: true`
 *   and no prices: nothing is guessed. A router never ranks it by a made-up
 *   price and refuses it under a `maxPriceUsd` ceiling.
 * - A failing source keeps its previous listing (and is reported in
 *   `errors`); the catalog entries still answer.
 *
 * A `Router` built in the scope of a `ModelCatalog` uses it for eligibility
 * and cost; without one, it reads `Pricing` alone.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Schema } from "effect"
import type { LlmError } from "../LlmError.ts"
import { type Capabilities, type ModelPrice, Pricing, type PricingService } from "../money/Pricing.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import { DurationInput } from "./internal/schemas.ts"

/**
 * One model as a provider lists it. Any provider package's `ModelInfo` fits
 * (`id`, and Gemini's `inputTokenLimit` / `outputTokenLimit`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListedModel {
  readonly id: string
  readonly contextWindow?: number | undefined
  readonly maxOutput?: number | undefined
  readonly inputTokenLimit?: number | undefined
  readonly outputTokenLimit?: number | undefined
  readonly capabilities?: Partial<Capabilities> | undefined
}

/**
 * A provider's listing: `{ provider: "openai", listModels: OpenAI.listModels }`
 * with its client provided.
 *
 * @since 0.1.0
 * @category models
 */
export interface Source<R = never> {
  readonly provider: string
  readonly listModels: Effect.Effect<ReadonlyArray<ListedModel>, LlmError, R>
}

/**
 * A model in the catalog. Prices are USD per million tokens, absent when
 * `priceUnknown`; `capabilities` absent when nobody says them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly provider: string
  readonly model: string
  readonly inputPerMillion?: number | undefined
  readonly outputPerMillion?: number | undefined
  readonly cachedInputPerMillion?: number | undefined
  readonly cacheWritePerMillion?: number | undefined
  readonly contextWindow?: number | undefined
  readonly maxOutput?: number | undefined
  readonly capabilities?: Capabilities | undefined
  /** Not in the pricing catalog: no price is known. */
  readonly priceUnknown: boolean
  /** The provider's `listModels` returned it at the last refresh. */
  readonly listed: boolean
}

/**
 * ModelCatalog options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `sources` | `[]` | providers' listings to merge |
 * | `interval` | `"1 hour"` | how often the listings are refreshed |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  sources: Schema.optional(Schema.Array(Schema.Struct({
    provider: Schema.String.check(Schema.isMinLength(1)),
    listModels: Schema.declare((u): u is Effect.Effect<ReadonlyArray<ListedModel>, LlmError, unknown> =>
      Effect.isEffect(u), { expected: "an Effect listing the provider's models" })
  }))),
  interval: Schema.optional(DurationInput)
})

/**
 * The catalog service.
 *
 * @since 0.1.0
 * @category services
 */
export class ModelCatalog extends Context.Service<ModelCatalog, {
  /** The entry for a model: listed or in `Pricing`; `undefined` when neither knows it. */
  readonly lookup: (provider: string, model: string) => Entry | undefined
  /** Every entry: the pricing catalog's and every listed model. */
  readonly entries: Effect.Effect<ReadonlyArray<Entry>>
  /** Re-reads every source now. */
  readonly refresh: Effect.Effect<void>
  /** The last refresh's failures, by provider. */
  readonly errors: Effect.Effect<ReadonlyArray<{ readonly provider: string; readonly error: LlmError }>>
}>()("@switchboard/core/ModelCatalog") {}

/**
 * A pricing catalog entry as a catalog entry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromPrice = (price: ModelPrice, listed = false, model = price.model): Entry => ({
  provider: price.provider,
  model,
  inputPerMillion: price.inputPerMillion,
  outputPerMillion: price.outputPerMillion,
  cachedInputPerMillion: price.cachedInputPerMillion,
  cacheWritePerMillion: price.cacheWritePerMillion,
  contextWindow: price.contextWindow,
  maxOutput: price.maxOutput,
  capabilities: price.capabilities,
  priceUnknown: false,
  listed
})

/**
 * Merges one listed model with the pricing catalog (see the module docs).
 *
 * @since 0.1.0
 * @category constructors
 */
export const merge = (provider: string, listed: ListedModel, pricing: PricingService): Entry => {
  const price = pricing.lookup(provider, listed.id)
  const contextWindow = listed.contextWindow ?? listed.inputTokenLimit
  const maxOutput = listed.maxOutput ?? listed.outputTokenLimit
  const base: Entry = price === undefined
    ? { provider, model: listed.id, priceUnknown: true, listed: true }
    : { ...fromPrice(price, true, listed.id), provider }
  const capabilities = listed.capabilities === undefined
    ? base.capabilities
    : base.capabilities === undefined
    ? (isComplete(listed.capabilities) ? listed.capabilities : undefined)
    : { ...base.capabilities, ...listed.capabilities }
  return {
    ...base,
    contextWindow: contextWindow ?? base.contextWindow,
    maxOutput: maxOutput ?? base.maxOutput,
    capabilities
  }
}

const isComplete = (c: Partial<Capabilities>): c is Capabilities =>
  c.tools !== undefined && c.vision !== undefined && c.jsonSchema !== undefined && c.prefill !== undefined &&
  c.reasoning !== undefined

/**
 * Builds a catalog over `sources`: reads them once now (a failing source is
 * reported in `errors`, not fatal), then every `interval` in a scoped fiber.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*<R = never>(options: {
  readonly sources?: ReadonlyArray<Source<R>> | undefined
  readonly interval?: Duration.Input | undefined
}) {
  const decoded = yield* SwitchboardConfigError.decode("ModelCatalog", Options, options)
  const sources = options.sources ?? []
  const interval = Duration.fromInputUnsafe(decoded.interval ?? "1 hour")
  const pricing = yield* Pricing
  const context = yield* Effect.context<R>()
  const listings = new Map<string, Map<string, Entry>>()
  let errors: ReadonlyArray<{ readonly provider: string; readonly error: LlmError }> = []
  const refresh = Effect.gen(function*() {
    const failures: Array<{ readonly provider: string; readonly error: LlmError }> = []
    yield* Effect.forEach(sources, (source) =>
      Effect.matchEffect(Effect.provideContext(source.listModels, context), {
        onFailure: (error) => Effect.sync(() => failures.push({ provider: source.provider, error })),
        onSuccess: (models) =>
          Effect.sync(() => {
            const entries = new Map<string, Entry>()
            for (const model of models) entries.set(model.id, merge(source.provider, model, pricing))
            listings.set(source.provider, entries)
          })
      }), { concurrency: "unbounded", discard: true })
    errors = failures
  })
  yield* refresh
  if (sources.length > 0) yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), refresh)))
  const lookup = (provider: string, model: string): Entry | undefined => {
    const listed = listings.get(provider)?.get(model)
    if (listed !== undefined) return listed
    const price = pricing.lookup(provider, model)
    return price === undefined ? undefined : { ...fromPrice(price, false, model), provider }
  }
  const entries = Effect.sync(() => {
    const out: Array<Entry> = []
    const seen = new Set<string>()
    for (const [provider, models] of listings) {
      for (const entry of models.values()) {
        out.push(entry)
        seen.add(`${provider}\u0000${entry.model}`)
      }
    }
    for (const price of pricing.catalog) {
      if (!seen.has(`${price.provider}\u0000${price.model}`)) out.push(fromPrice(price))
    }
    return out
  })
  return ModelCatalog.of({ lookup, entries, refresh, errors: Effect.sync(() => errors) })
})

/**
 * A catalog layer over providers' listings.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ModelCatalog } from "@switchboard/core"
 *
 * const Catalog = ModelCatalog.layer({
 *   sources: [{ provider: "local", listModels: Effect.succeed([{ id: "llama-3.1-8b", contextWindow: 8192 }]) }],
 *   interval: "1 hour"
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(options: {
  readonly sources?: ReadonlyArray<Source<R>> | undefined
  readonly interval?: Duration.Input | undefined
}): Layer.Layer<ModelCatalog, SwitchboardConfigError.SwitchboardConfigError, R> =>
  Layer.effect(ModelCatalog, make<R>(options))

/**
 * Every entry of the catalog in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const entries: Effect.Effect<ReadonlyArray<Entry>, never, ModelCatalog> = ModelCatalog.use((c) => c.entries)
