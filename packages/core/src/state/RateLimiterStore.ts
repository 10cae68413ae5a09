/**
 * A bounded in-process `RateLimiterStore` (the store interface of Effect's
 * `RateLimiter`, `effect/persistence`), and its synchronous core.
 *
 * Effect's own `RateLimiter.layerStoreMemory` keeps one counter per key for
 * ever; this store keeps them in a `BoundedMap`: at most `capacity` counters
 * (the least recently used goes first) and a counter untouched for
 * `idleTtlMs` is dropped. A fixed-window counter whose window has passed is
 * the same as no counter, so dropping it after it expired changes nothing;
 * a counter evicted by capacity while live forgets what it counted (size
 * `capacity` above the keys active in one window).
 *
 * `RateLimit` runs its default path on {@link MemoryStore.fixedWindowSync}
 * (the same arithmetic, answered in one synchronous step, so a call's checks
 * cost no effects); a property test holds it equal to Effect's
 * `RateLimiter` over its memory store.
 *
 * Adaptive limiting (`adaptiveConsume`/`adaptiveFeedback`) is not kept by
 * this store: it answers "inactive" (`RateLimit` tightens from provider
 * headers itself).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer } from "effect"
import { RateLimiter } from "effect/persistence"
import * as BoundedMap from "./BoundedMap.ts"

/**
 * Bounds of the memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryBounds {
  /** Most counters kept (default 10,000). */
  readonly capacity?: number | undefined
  /** Milliseconds a counter may stay untouched before it is dropped (default: never). */
  readonly idleTtlMs?: number | undefined
}

/**
 * The store, with its synchronous fixed-window core.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore {
  readonly store: RateLimiter.RateLimiterStore["Service"]
  /**
   * `RateLimiterStore.fixedWindow` answered synchronously at `now`: the count
   * after taking `tokens` and the time to live in ms.
   */
  readonly fixedWindowSync: (
    key: string,
    tokens: number,
    refillRateMillis: number,
    limit: number | undefined,
    now: number
  ) => readonly [count: number, ttl: number]
  /**
   * The count `key` holds at `now` without taking anything (0 when absent or
   * expired): what a cheap "is this key exhausted?" check reads.
   */
  readonly peek: (key: string, now: number) => number
  /** Counters held now. */
  readonly size: (now: number) => number
}

/**
 * Creates a bounded memory store (see the module docs).
 *
 * @example
 * ```ts
 * import { BoundedRateLimiterStore } from "@switchboard/core"
 *
 * const memory = BoundedRateLimiterStore.makeMemory({ capacity: 1000, idleTtlMs: 60_000 })
 * memory.fixedWindowSync("tenant-1:requests", 1, 100, 10, 0) // [1, 100]
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (bounds: MemoryBounds = {}): MemoryStore => {
  const counters = BoundedMap.make<{ count: number; expiresAt: number }>({
    capacity: bounds.capacity ?? BoundedMap.defaultBounds.capacity,
    idleTtlMs: bounds.idleTtlMs ?? BoundedMap.defaultBounds.idleTtlMs
  })
  const buckets = BoundedMap.make<{ tokens: number; lastRefill: number }>({
    capacity: bounds.capacity ?? BoundedMap.defaultBounds.capacity,
    idleTtlMs: bounds.idleTtlMs ?? BoundedMap.defaultBounds.idleTtlMs
  })

  // The arithmetic of `RateLimiter.layerStoreMemory`'s `fixedWindow`, on a bounded map.
  const fixedWindowSync = (
    key: string,
    tokens: number,
    refillRateMillis: number,
    limit: number | undefined,
    now: number
  ): readonly [number, number] => {
    let counter = counters.get(key, now)
    if (counter === undefined) {
      counter = { count: 0, expiresAt: now }
      counters.set(key, counter, now)
    } else if (counter.expiresAt <= now) {
      // An expired counter starts over in place (the lookup above already touched it).
      counter.count = 0
      counter.expiresAt = now
    }
    if (limit && counter.count + tokens > limit) {
      return [counter.count + tokens, counter.expiresAt - now]
    }
    counter.count += tokens
    counter.expiresAt += refillRateMillis * tokens
    return [counter.count, counter.expiresAt - now]
  }

  const store = RateLimiter.RateLimiterStore.of({
    fixedWindow: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() =>
          fixedWindowSync(
            options.key,
            options.tokens,
            Duration.toMillis(options.refillRate),
            options.limit,
            clock.currentTimeMillisUnsafe()
          )
        )
      ),
    // The arithmetic of `RateLimiter.layerStoreMemory`'s `tokenBucket`, on a bounded map.
    tokenBucket: (options) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const refillRateMillis = Duration.toMillis(options.refillRate)
          const now = clock.currentTimeMillisUnsafe()
          let bucket = buckets.get(options.key, now)
          if (bucket === undefined) {
            bucket = { tokens: options.limit, lastRefill: now }
            buckets.set(options.key, bucket, now)
          }
          const tokensToAdd = Math.floor((now - bucket.lastRefill) / refillRateMillis)
          if (tokensToAdd > 0) {
            bucket.tokens = Math.min(options.limit, bucket.tokens + tokensToAdd)
            bucket.lastRefill += tokensToAdd * refillRateMillis
          }
          if (bucket.tokens >= options.limit) bucket.lastRefill = now
          const next = bucket.tokens - options.tokens
          if (options.allowOverflow || next >= 0) bucket.tokens = next
          return [next, Math.max(0, now - bucket.lastRefill)] as const
        })
      ),
    adaptiveConsume: () => Effect.succeed({ delay: Duration.zero, epoch: 0, phase: "inactive" as const }),
    adaptiveFeedback: () => Effect.void
  })

  const peek = (key: string, now: number): number => {
    const counter = counters.peek(key, now)
    return counter === undefined || counter.expiresAt <= now ? 0 : counter.count
  }

  return { store, fixedWindowSync, peek, size: (now) => counters.size(now) + buckets.size(now) }
}

/**
 * A bounded memory store as a layer for Effect's `RateLimiter` (and
 * `RateLimit.layer({ store })`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (bounds: MemoryBounds = {}): Layer.Layer<RateLimiter.RateLimiterStore> =>
  Layer.sync(RateLimiter.RateLimiterStore, () => makeMemory(bounds).store)
