/**
 * What models cost and what they can do: a catalog shipped as data
 * (`data/pricing.json`), checked by `Schema` when it is loaded, with prices
 * per million input, output, cached-input and cache-write tokens, the context
 * window, the max output and the capabilities of each model.
 *
 * `Pricing` is a `Context.Reference`: the shipped catalog is there with
 * nothing provided; {@link layer} replaces or extends it. A model that is not
 * in the catalog is priced by an explicit rule (`unknown`), and the response
 * says so (`priceUnknown: true`).
 *
 * Usage convention: `inputTokens` counts every prompt token; cached reads and
 * cache writes are the parts of it billed at their own prices.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema } from "effect"
import shipped from "./data/pricing.json" with { type: "json" }
import type { Usage } from "../LlmResponse.ts"

/**
 * What a model can do.
 *
 * @since 0.1.0
 * @category models
 */
export const Capabilities = Schema.Struct({
  tools: Schema.Boolean,
  vision: Schema.Boolean,
  jsonSchema: Schema.Boolean,
  prefill: Schema.Boolean,
  reasoning: Schema.Boolean
})
/** @since 0.1.0 @category models */
export type Capabilities = typeof Capabilities.Type

const nonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
const positiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * One catalog entry. Prices are USD per million tokens.
 *
 * @since 0.1.0
 * @category models
 */
export const ModelPrice = Schema.Struct({
  provider: Schema.String,
  model: Schema.String,
  aliases: Schema.optional(Schema.Array(Schema.String)),
  inputPerMillion: nonNegative,
  outputPerMillion: nonNegative,
  cachedInputPerMillion: Schema.optional(nonNegative),
  cacheWritePerMillion: Schema.optional(nonNegative),
  contextWindow: positiveInt,
  maxOutput: positiveInt,
  capabilities: Capabilities
})
/** @since 0.1.0 @category models */
export type ModelPrice = typeof ModelPrice.Type

/**
 * A pricing catalog.
 *
 * @since 0.1.0
 * @category models
 */
export const Catalog = Schema.Array(ModelPrice)
/** @since 0.1.0 @category models */
export type Catalog = typeof Catalog.Type

/**
 * A catalog entry failed to decode. `entry` is its index (and model, when it
 * has one); `message` says which field is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class CatalogError extends Schema.TaggedError<CatalogError>()("CatalogError", {
  entry: Schema.String,
  message: Schema.String
}) {}

const decodeEntry = Schema.decodeUnknownExit(ModelPrice)

/**
 * Decodes a catalog from untrusted data, failing with the first bad entry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeCatalog = (data: unknown): Effect.Effect<Catalog, CatalogError> =>
  Effect.suspend(() => {
    if (!Array.isArray(data)) {
      return Effect.fail(new CatalogError({ entry: "(root)", message: "a catalog is an array of model entries" }))
    }
    const out: Array<ModelPrice> = []
    for (let i = 0; i < data.length; i++) {
      const exit = decodeEntry(data[i])
      if (exit._tag === "Failure") {
        const model = (data[i] as { model?: unknown } | undefined)?.model
        const entry = typeof model === "string" ? `[${i}] ${model}` : `[${i}]`
        return Effect.fail(new CatalogError({ entry, message: `catalog entry ${entry}: ${String(exit.cause)}` }))
      }
      out.push(exit.value)
    }
    return Effect.succeed(out)
  })

/**
 * How a model missing from the catalog is priced. The default is
 * deliberately conservative (a frontier model's price), so budgets reserve
 * too much rather than too little.
 *
 * @since 0.1.0
 * @category models
 */
export interface UnknownModelRule {
  readonly inputPerMillion: number
  readonly outputPerMillion: number
  readonly contextWindow: number
  readonly maxOutput: number
}

/**
 * The default rule for unknown models.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultUnknownRule: UnknownModelRule = {
  inputPerMillion: 15,
  outputPerMillion: 75,
  contextWindow: 128_000,
  maxOutput: 8_192
}

/**
 * The priced cost of some usage.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cost {
  readonly costUsd: number
  readonly priceUnknown: boolean
}

/**
 * The pricing service.
 *
 * @since 0.1.0
 * @category models
 */
export interface PricingService {
  readonly catalog: Catalog
  /** The rule that prices models missing from the catalog. */
  readonly unknown: UnknownModelRule
  /**
   * The entry for a model: provider + model, then model alone, then without a
   * Bedrock region prefix (`us.`), then the part after the last `/`, then the
   * longest catalog id the model starts with at a `-`, `:` or `@` (dated
   * snapshots).
   */
  readonly lookup: (provider: string, model: string) => ModelPrice | undefined
  /** The cost of `usage` on a model. */
  readonly cost: (provider: string, model: string, usage: Usage) => Cost
  /** The most a call can cost: every input token uncached, `maxOutputTokens` of output. */
  readonly worstCase: (provider: string, model: string, inputTokens: number, maxOutputTokens: number) => Cost
  /** The entry used for a model, or the unknown-model rule as one. */
  readonly limits: (provider: string, model: string) => { readonly contextWindow: number; readonly maxOutput: number }
}

const perToken = (perMillion: number) => perMillion / 1_000_000

/**
 * Builds a pricing service from a decoded catalog.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (catalog: Catalog, unknown: UnknownModelRule = defaultUnknownRule): PricingService => {
  const byKey = new Map<string, ModelPrice>()
  const byModel = new Map<string, ModelPrice>()
  for (const entry of catalog) {
    for (const name of [entry.model, ...(entry.aliases ?? [])]) {
      byKey.set(`${entry.provider}\u0000${name}`, entry)
      if (!byModel.has(name)) byModel.set(name, entry)
    }
  }
  const ids = [...byModel.keys()].sort((a, b) => b.length - a.length)
  // provider → model → entry (null: not in the catalog); two levels, so a hit builds no key string
  const memo = new Map<string, Map<string, ModelPrice | null>>()
  let memoized = 0
  // A catalog id matches a longer model name only at a separator, so
  // "gpt-4o-2024-08-06" is priced as "gpt-4o" but "gpt-4.5" is not "gpt-4".
  const prefixOf = (name: string): ModelPrice | undefined => {
    for (const id of ids) {
      if (name.length > id.length && name.startsWith(id)) {
        const next = name.charCodeAt(id.length)
        if (next === 45 /* - */ || next === 58 /* : */ || next === 64 /* @ */) return byModel.get(id)
      }
    }
    return undefined
  }
  const resolve = (provider: string, model: string): ModelPrice | undefined => {
    const exact = byKey.get(`${provider}\u0000${model}`) ?? byModel.get(model)
    if (exact !== undefined) return exact
    // Bedrock cross-region inference profiles ("us.anthropic.claude-…") price as the base model.
    const regional = /^(?:us|eu|apac|us-gov|ca|jp|au|global)\.(.+)$/.exec(model)
    if (regional !== null) return resolve(provider, regional[1]!)
    const bare = model.includes("/") ? model.slice(model.lastIndexOf("/") + 1) : model
    return byModel.get(bare) ?? prefixOf(bare) ?? (bare === model ? undefined : prefixOf(model))
  }
  const lookup = (provider: string, model: string): ModelPrice | undefined => {
    let models = memo.get(provider)
    const cached = models?.get(model)
    if (cached !== undefined) return cached ?? undefined
    const found = resolve(provider, model)
    if (memoized >= 10_000) {
      memo.clear()
      memoized = 0
      models = undefined
    }
    if (models === undefined) memo.set(provider, models = new Map())
    models.set(model, found ?? null)
    memoized++
    return found
  }
  const cost = (provider: string, model: string, usage: Usage): Cost => {
    const entry = lookup(provider, model)
    if (entry === undefined) {
      return {
        costUsd: usage.inputTokens * perToken(unknown.inputPerMillion) +
          usage.outputTokens * perToken(unknown.outputPerMillion),
        priceUnknown: true
      }
    }
    const input = perToken(entry.inputPerMillion)
    const cached = Math.min(usage.cachedInputTokens, usage.inputTokens)
    const written = Math.min(usage.cacheWriteTokens, usage.inputTokens - cached)
    const plain = usage.inputTokens - cached - written
    return {
      costUsd: plain * input +
        cached * perToken(entry.cachedInputPerMillion ?? entry.inputPerMillion) +
        written * perToken(entry.cacheWritePerMillion ?? entry.inputPerMillion) +
        usage.outputTokens * perToken(entry.outputPerMillion),
      priceUnknown: false
    }
  }
  const worstCase = (provider: string, model: string, inputTokens: number, maxOutputTokens: number): Cost => {
    const entry = lookup(provider, model)
    const inPrice = entry?.inputPerMillion ?? unknown.inputPerMillion
    const writePrice = Math.max(inPrice, entry?.cacheWritePerMillion ?? 0)
    return {
      costUsd: inputTokens * perToken(writePrice) +
        maxOutputTokens * perToken(entry?.outputPerMillion ?? unknown.outputPerMillion),
      priceUnknown: entry === undefined
    }
  }
  const limits = (provider: string, model: string) => lookup(provider, model) ?? unknown
  return { catalog, unknown, lookup, cost, worstCase, limits }
}

/**
 * The catalog shipped with Switchboard, decoded at load.
 *
 * @since 0.1.0
 * @category constructors
 */
export const shippedCatalog: Catalog = Effect.runSync(decodeCatalog(shipped))

/**
 * The pricing in context: the shipped catalog unless a layer replaces it.
 *
 * @since 0.1.0
 * @category services
 */
export const Pricing: Context.Reference<PricingService> = Context.Reference<PricingService>(
  "@switchboard/core/Pricing",
  { defaultValue: () => make(shippedCatalog) }
)

/**
 * Provides pricing from the shipped catalog extended (or overridden, entry by
 * entry) with `entries`, or from `catalog` alone when `replace` is true.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: {
  readonly entries?: ReadonlyArray<unknown> | undefined
  readonly replace?: boolean | undefined
  readonly unknown?: UnknownModelRule | undefined
}): Layer.Layer<never, CatalogError> =>
  Layer.effect(
    Pricing,
    Effect.map(decodeCatalog(options.entries ?? []), (entries) => {
      if (options.replace === true) return make(entries, options.unknown)
      const overridden = new Set(entries.map((e) => `${e.provider}\u0000${e.model}`))
      const base = shippedCatalog.filter((e) => !overridden.has(`${e.provider}\u0000${e.model}`))
      return make([...entries, ...base], options.unknown)
    })
  )
