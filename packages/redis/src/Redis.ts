/**
 * Switchboard's shared state on Redis: budgets, circuit breakers, rate limits
 * and the response cache, shared by every instance that points at the same
 * Redis and `prefix`.
 *
 * `Redis.layer({ url, prefix?, policy? })` connects once (on
 * `@effect/platform-node`'s `NodeRedis`) and provides every store: core's
 * `BudgetStore` and `BreakerStore`, Effect's `RateLimiterStore`
 * (`RateLimiter.layerStoreRedis`, which `RateLimit` picks up from context)
 * and a Redis `Persistence` for {@link responseCache}. Each store can also be
 * chosen alone (`layerBudgetStore`, `layerBreakerStore`,
 * `layerRateLimiterStore`).
 *
 * Every Redis command has a deadline (`commandTimeout`, default 1 s), so
 * no call waits on a dead or slow Redis longer than that. A store that cannot
 * reach Redis follows its `policy`:
 *
 * | store | default | `failOpen` | `failClosed` |
 * |---|---|---|---|
 * | budget | `failClosed` | local state, reconciled when Redis is back | `BudgetStoreError` (the `Budget` refuses) |
 * | breaker | `failOpen` | local breaker state | `BreakerStoreError` (the breaker's `onStoreError` decides) |
 * | ratelimit | `failOpen` | local bounded counters | `RateLimitStoreError` (the call is refused) |
 * | cache | always open | a miss | — |
 *
 * Either way it publishes `StoreDegraded` once per episode and sets the gauge
 * `switchboard.store.degraded{store}` to 1 (0 once back), retries Redis after
 * a backoff (doubling from 100 ms to 5 s; the client itself reconnects with
 * backoff), and settles made while Redis was away are replayed when it
 * returns. Keys are `<prefix>b:…` (budgets, by budget name and scope),
 * `<prefix>cb:…` (breakers, by route), `<prefix>rl:…` (limits, by limit key)
 * and `<prefix>cache…` (by SHA-256 of the request): no key holds a prompt
 * or a secret, and the URL (which may hold a password) never appears in an
 * error or event.
 *
 * @since 0.1.0
 */
import { NodeRedis } from "@effect/platform-node"
import { BreakerStore, BudgetStore, SwitchboardConfigError } from "@switchboard/core"
import type { LLM } from "@switchboard/core"
import { Config, Context, Duration, Effect, Layer, Schema } from "effect"
import { Persistence, RateLimiter, Redis as EffectRedis } from "effect/persistence"
import * as Guard from "./internal/guard.ts"
import { PositiveDuration } from "./internal/schemas.ts"
import * as RedisBreakerStore from "./RedisBreakerStore.ts"
import * as RedisBudgetStore from "./RedisBudgetStore.ts"
import * as RedisRateLimiterStore from "./RedisRateLimiterStore.ts"
import * as RedisResponseCache from "./RedisResponseCache.ts"

const RedisUrl = Schema.String.check(
  Schema.makeFilter((s: string) =>
    /^rediss?:\/\/[^\s]+$/.test(s) ? undefined : "expected a redis:// or rediss:// URL"
  )
)

/**
 * A store's behaviour when Redis does not answer.
 *
 * @since 0.1.0
 * @category models
 */
export const Policy = Schema.Literals(["failOpen", "failClosed"])

/**
 * A policy per store (unnamed stores keep their defaults).
 *
 * @since 0.1.0
 * @category models
 */
export const Policies = Schema.Struct({
  budget: Schema.optional(Policy),
  breaker: Schema.optional(Policy),
  rateLimit: Schema.optional(Policy)
})

/**
 * Options, decoded at build (a bad one fails the layer with
 * `SwitchboardConfigError` naming it, e.g. `Redis.url`).
 *
 * | option | type | default |
 * |---|---|---|
 * | `url` | `redis://…` or `rediss://…` | required |
 * | `prefix` | string | `"switchboard:"` |
 * | `policy` | `"failOpen"` \| `"failClosed"` \| `{ budget?, breaker?, rateLimit? }` | budget `failClosed`, others `failOpen` |
 * | `commandTimeout` | `Duration` > 0 | `"1 second"` |
 * | `probeLease` | `Duration` > 0 (a half-open probe's slot) | `"10 seconds"` |
 * | `keyTtl` | `Duration` > 0 (budget scopes; ≥ the longest window) | `"40 days"` |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  url: RedisUrl,
  prefix: Schema.optional(Schema.String),
  policy: Schema.optional(Schema.Union([Policy, Policies])),
  commandTimeout: Schema.optional(PositiveDuration),
  probeLease: Schema.optional(PositiveDuration),
  keyTtl: Schema.optional(PositiveDuration)
})

/**
 * The options (the type of {@link Options}).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * The connection's settings and each store's guard: what the stores, the
 * response cache and health checks read.
 *
 * @since 0.1.0
 * @category services
 */
export class RedisStores extends Context.Service<RedisStores, {
  readonly prefix: string
  readonly options: Options
  readonly guard: (store: Guard.StoreName) => Guard.Guard
  /** The stores that cannot reach Redis now. */
  readonly degraded: Effect.Effect<ReadonlyArray<Guard.StoreName>>
  /** `PING` under the command deadline: what a readiness check asks. */
  readonly ping: Effect.Effect<boolean>
}>()("@switchboard/redis/RedisStores") {}

const stores$ = Effect.gen(function*() {
  return yield* RedisStores
})

const defaults = { budget: "failClosed", breaker: "failOpen", ratelimit: "failOpen", cache: "failOpen" } as const

const policyOf = (options: Options, store: Guard.StoreName): Guard.Policy => {
  if (store === "cache") return "failOpen"
  const policy = options.policy
  if (policy === undefined) return defaults[store]
  if (typeof policy === "string") return policy
  const named = store === "ratelimit" ? policy.rateLimit : policy[store]
  return named ?? defaults[store]
}

const millis = (input: Duration.Input | undefined, fallback: Duration.Input) =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

/**
 * The connection: decodes the options, connects `NodeRedis` (the client
 * reconnects with backoff, offline commands fail at once instead of
 * queueing), and provides {@link RedisStores} with Effect's `Redis`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConnection = (
  options: Options
): Layer.Layer<
  RedisStores | EffectRedis.Redis | NodeRedis.NodeRedis,
  EffectRedis.RedisError | SwitchboardConfigError.SwitchboardConfigError
> =>
  Layer.unwrap(Effect.map(SwitchboardConfigError.decode("Redis", Options, options), (decoded) => {
    let connected = false
    const client = NodeRedis.layer({
      url: decoded.url,
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 2_000,
        // The first connection fails the layer; after it, reconnect forever with capped backoff.
        reconnectStrategy: (retries, cause) =>
          connected ? Math.min(50 * 2 ** Math.min(retries, 10), 2_000) + Math.floor(Math.random() * 100) : cause
      }
    })
    const stores = Layer.effect(
      RedisStores,
      Effect.gen(function*() {
        connected = true
        const redis = yield* EffectRedis.Redis
        const timeoutMs = millis(decoded.commandTimeout, "1 second")
        const guards = new Map<Guard.StoreName, Guard.Guard>()
        const guard = (store: Guard.StoreName) => {
          let found = guards.get(store)
          if (found === undefined) {
            found = Guard.make({ store, policy: policyOf(decoded, store), timeoutMs, backoffMs: 100, maxBackoffMs: 5_000 })
            guards.set(store, found)
          }
          return found
        }
        return RedisStores.of({
          prefix: decoded.prefix ?? "switchboard:",
          options: decoded,
          guard,
          degraded: Effect.sync(() => [...guards.values()].filter((g) => g.isDegraded()).map((g) => g.store)),
          ping: Effect.match(Effect.timeout(redis.send("PING"), timeoutMs), {
            onFailure: () => false,
            onSuccess: () => true
          })
        })
      })
    )
    return Layer.provideMerge(stores, client)
  }))

/**
 * The budget store on the connection in context (see `RedisBudgetStore`).
 *
 * @since 0.1.0
 * @category layers
 */
export const budgetStore: Layer.Layer<BudgetStore.BudgetStore, never, RedisStores | EffectRedis.Redis> = Layer.effect(
  BudgetStore.BudgetStore,
  Effect.gen(function*() {
    const stores = yield* RedisStores
    return yield* RedisBudgetStore.make({
      prefix: stores.prefix,
      keyTtlMs: millis(stores.options.keyTtl, "40 days"),
      reconcileEveryMs: 1_000
    }, stores.guard("budget"))
  })
)

/**
 * The breaker store on the connection in context (see `RedisBreakerStore`).
 *
 * @since 0.1.0
 * @category layers
 */
export const breakerStore: Layer.Layer<never, never, RedisStores | EffectRedis.Redis | NodeRedis.NodeRedis> = Layer.effect(
  BreakerStore.BreakerStore,
  Effect.gen(function*() {
    const stores = yield* RedisStores
    return yield* RedisBreakerStore.make({
      prefix: stores.prefix,
      probeLeaseMs: millis(stores.options.probeLease, "10 seconds"),
      idleTtlMs: 3_600_000
    }, stores.guard("breaker"))
  })
)

/**
 * Effect's `RateLimiter.layerStoreRedis` on the connection in context, under
 * the rate-limit policy (see `RedisRateLimiterStore`).
 *
 * @since 0.1.0
 * @category layers
 */
export const rateLimiterStore: Layer.Layer<RateLimiter.RateLimiterStore, never, RedisStores | EffectRedis.Redis> =
  Layer.effect(
    RateLimiter.RateLimiterStore,
    Effect.gen(function*() {
      const stores = yield* RedisStores
      return yield* RedisRateLimiterStore.make({ prefix: `${stores.prefix}rl:` }, stores.guard("ratelimit"))
    })
  )

/**
 * The `Persistence` the response cache uses, on the connection in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const persistence: Layer.Layer<Persistence.Persistence, never, RedisStores | EffectRedis.Redis> = Layer.unwrap(
  Effect.map(stores$, (stores) => RedisResponseCache.layerPersistence(stores.guard("cache")))
)

/**
 * Every store on one connection (see the module docs).
 *
 * @example
 * ```ts
 * import { Redis } from "@switchboard/redis"
 * import { Budget, CircuitBreaker, Llm } from "@switchboard/core"
 * import { Layer } from "effect"
 *
 * const stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   CircuitBreaker.layer({ failureThreshold: 5 }),
 *   Budget.layer({ limitUsd: 100, window: "day" }),
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379", prefix: "myapp:" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<
  | BudgetStore.BudgetStore
  | RateLimiter.RateLimiterStore
  | Persistence.Persistence
  | RedisStores
  | EffectRedis.Redis
  | NodeRedis.NodeRedis,
  EffectRedis.RedisError | SwitchboardConfigError.SwitchboardConfigError
> =>
  Layer.mergeAll(budgetStore, breakerStore, rateLimiterStore, persistence).pipe(
    Layer.provideMerge(layerConnection(options))
  )

/**
 * {@link layer} from `Config` (e.g. `url: Config.String("REDIS_URL")`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: Config.Wrap<Options>) =>
  Layer.unwrap(Effect.map(Config.unwrap(options), layer))

/**
 * Only the budget store, on its own connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBudgetStore = (options: Options) => budgetStore.pipe(Layer.provide(layerConnection(options)))

/**
 * Only the breaker store, on its own connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBreakerStore = (options: Options) => breakerStore.pipe(Layer.provide(layerConnection(options)))

/**
 * Only the rate limiter store, on its own connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRateLimiterStore = (options: Options) =>
  rateLimiterStore.pipe(Layer.provide(layerConnection(options)))

/**
 * The shared response cache as a combinator (`Layer<LLM> → Layer<LLM>`):
 * needs {@link layer} (or {@link layerConnection} and {@link persistence})
 * below it. See `RedisResponseCache` for its behaviour.
 *
 * @example
 * ```ts
 * import { Redis } from "@switchboard/redis"
 * import { Llm } from "@switchboard/core"
 * import { Layer } from "effect"
 *
 * const stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   Redis.responseCache({ ttl: "1 hour" }),
 *   Layer.provide(Redis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const responseCache = (options: RedisResponseCache.Options) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<
  LLM,
  E | SwitchboardConfigError.SwitchboardConfigError,
  R | RedisStores | EffectRedis.Redis | Persistence.Persistence
> =>
  Layer.unwrap(Effect.map(
    stores$,
    (stores) => RedisResponseCache.layer(options, { prefix: stores.prefix, guard: stores.guard("cache") })(self)
  ))
