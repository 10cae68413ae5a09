/**
 * `@switchboard/redis`: budgets, circuit breakers, rate limits and the
 * response cache shared across instances through Redis.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Redis from "./Redis.ts"
/** @since 0.1.0 */
export * as RedisBudgetStore from "./RedisBudgetStore.ts"
/** @since 0.1.0 */
export * as RedisBreakerStore from "./RedisBreakerStore.ts"
/** @since 0.1.0 */
export * as RedisRateLimiterStore from "./RedisRateLimiterStore.ts"
/** @since 0.1.0 */
export * as RedisResponseCache from "./RedisResponseCache.ts"
