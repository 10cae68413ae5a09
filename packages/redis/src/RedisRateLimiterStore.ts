/**
 * Effect's own Redis rate limiter store (`RateLimiter.makeStoreRedis`, the
 * store behind `RateLimiter.layerStoreRedis`), under a failure policy: the
 * counters live in Redis, so every instance counts against one limit.
 *
 * When Redis does not answer within the command timeout: `failOpen` (the
 * default for limits) counts on a local bounded memory store (core's
 * `BoundedRateLimiterStore`) and publishes `StoreDegraded`; `failClosed`
 * fails with `RateLimiterError` / `RateLimitStoreError`, which `RateLimit`
 * turns into a refusal.
 *
 * @since 0.1.0
 */
import { BoundedRateLimiterStore } from "@switchboard/core"
import { Effect } from "effect"
import { RateLimiter } from "effect/persistence"
import type * as Guard from "./internal/guard.ts"

/**
 * Builds the guarded store over the `Redis` service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: { readonly prefix: string }, guard: Guard.Guard) {
  const remote = yield* RateLimiter.makeStoreRedis({ prefix: options.prefix })
  const local = BoundedRateLimiterStore.makeMemory({ capacity: 10_000 }).store
  const failOpen = guard.policy === "failOpen"
  const storeError = (detail: string) =>
    new RateLimiter.RateLimiterError({
      reason: new RateLimiter.RateLimitStoreError({ message: `rate limiter store unavailable: ${detail}` })
    })
  const guarded = <A>(
    op: Effect.Effect<A, RateLimiter.RateLimiterError>,
    fallback: Effect.Effect<A, RateLimiter.RateLimiterError>
  ): Effect.Effect<A, RateLimiter.RateLimiterError> =>
    Effect.catch(guard.run(op), (e) => failOpen ? fallback : Effect.fail(storeError(e.detail)))
  return RateLimiter.RateLimiterStore.of({
    fixedWindow: (o) => guarded(remote.fixedWindow(o), local.fixedWindow(o)),
    tokenBucket: (o) => guarded(remote.tokenBucket(o), local.tokenBucket(o)),
    adaptiveConsume: (o) => guarded(remote.adaptiveConsume(o), local.adaptiveConsume(o)),
    adaptiveFeedback: (o) => guarded(remote.adaptiveFeedback(o), local.adaptiveFeedback(o))
  })
})
