/**
 * Typed events from every combinator: attempts, retries, fallbacks, breaker
 * transitions, hedges, limiter waits, budget reservations and cache hits.
 *
 * `LlmEvents` is a `Context.Reference`: with nothing provided, publishing is
 * a no-op that costs nothing on the hot path. Provide {@link layer} to get a
 * bounded `PubSub` (a slow subscriber loses the oldest events, never blocks a
 * call) and subscribe with {@link stream}.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Stream } from "effect"

interface Where {
  readonly provider: string
  readonly model: string
}

/** @since 0.1.0 @category models */
export interface AttemptStarted extends Where {
  readonly _tag: "AttemptStarted"
}
/** @since 0.1.0 @category models */
export interface AttemptFailed extends Where {
  readonly _tag: "AttemptFailed"
  readonly error: string
  readonly latencyMs: number
}
/** @since 0.1.0 @category models */
export interface RetryScheduled extends Where {
  readonly _tag: "RetryScheduled"
  readonly attempt: number
  readonly delayMs: number
  readonly error: string
}
/** @since 0.1.0 @category models */
export interface FallbackTaken {
  readonly _tag: "FallbackTaken"
  readonly from: Where
  readonly to: Where
  readonly reason: string
}
/** @since 0.1.0 @category models */
export interface CircuitStateChanged extends Where {
  readonly _tag: "CircuitStateChanged"
  readonly from: "closed" | "open" | "half-open"
  readonly to: "closed" | "open" | "half-open"
  readonly reason: string
  /** For a transition to open: the epoch ms at which it admits a probe (`Infinity` until rebuilt). */
  readonly until?: number | undefined
}
/** @since 0.1.0 @category models */
export interface HedgeStarted extends Where {
  readonly _tag: "HedgeStarted"
  readonly afterMs: number
}
/** @since 0.1.0 @category models */
export interface RateLimitWaited {
  readonly _tag: "RateLimitWaited"
  readonly key: string
  readonly waitedMs: number
}
/** @since 0.1.0 @category models */
export interface BudgetReserved {
  readonly _tag: "BudgetReserved"
  readonly scope: string
  readonly reservedUsd: number
  readonly spentUsd: number
  readonly limitUsd: number
}
/** @since 0.1.0 @category models */
export interface BudgetExceeded {
  readonly _tag: "BudgetExceeded"
  readonly scope: string
  readonly requestedUsd: number
  readonly spentUsd: number
  readonly reservedUsd: number
  readonly limitUsd: number
}
/** @since 0.1.0 @category models */
export interface BudgetSoftLimitReached {
  readonly _tag: "BudgetSoftLimitReached"
  readonly scope: string
  readonly spentUsd: number
  readonly limitUsd: number
}
/** @since 0.1.0 @category models */
export interface CacheHit {
  readonly _tag: "CacheHit"
  readonly key: string
  readonly provider?: string | undefined
  readonly model?: string | undefined
}

/** @since 0.1.0 @category models */
export interface BudgetOverrun {
  readonly _tag: "BudgetOverrun"
  readonly scope: string
  /** What was reserved for the call (its worst case). */
  readonly reservedUsd: number
  /** What the provider reported, and will bill. */
  readonly actualUsd: number
  readonly spentUsd: number
  readonly limitUsd: number
}
/** @since 0.1.0 @category models */
export interface RouteChosen {
  readonly _tag: "RouteChosen"
  readonly strategy: string
  /** The candidate chosen (by name). */
  readonly candidate: string
  /** Every candidate not taken before it, and why. */
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>
}
/** @since 0.1.0 @category models */
export interface HealthChanged {
  readonly _tag: "HealthChanged"
  readonly name: string
  readonly from: "healthy" | "degraded" | "down"
  readonly to: "healthy" | "degraded" | "down"
  readonly reason: string
}
/** @since 0.1.0 @category models */
export interface StoreDegraded {
  readonly _tag: "StoreDegraded"
  /** Which store: `budget`, `breaker`, `ratelimit`, `cache`. */
  readonly store: string
  readonly policy: "failOpen" | "failClosed"
  readonly detail: string
}
/** @since 0.1.0 @category models */
export interface BatchProgress {
  readonly _tag: "BatchProgress"
  readonly done: number
  readonly failed: number
  readonly total: number
}

/** @since 0.1.0 @category models */
export interface ConfigReloaded {
  readonly _tag: "ConfigReloaded"
  readonly file: string
  /** False when the new file did not load or build: the previous stack keeps serving. */
  readonly ok: boolean
  /** What was wrong, path by path (no secret: config errors never hold one). */
  readonly error?: string | undefined
}

/**
 * Every event a combinator publishes.
 *
 * @since 0.1.0
 * @category models
 */
export type LlmEvent =
  | AttemptStarted
  | AttemptFailed
  | RetryScheduled
  | FallbackTaken
  | CircuitStateChanged
  | HedgeStarted
  | RateLimitWaited
  | BudgetReserved
  | BudgetExceeded
  | BudgetSoftLimitReached
  | BudgetOverrun
  | CacheHit
  | RouteChosen
  | HealthChanged
  | StoreDegraded
  | BatchProgress
  | ConfigReloaded

/**
 * The event bus. `enabled` is false for the default no-op bus, so
 * publishers skip building events nobody reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventBus {
  readonly enabled: boolean
  readonly publish: (event: LlmEvent) => Effect.Effect<void>
  readonly events: Stream.Stream<LlmEvent>
}

/**
 * The event bus in context; a silent no-op bus unless {@link layer} is provided.
 *
 * @since 0.1.0
 * @category services
 */
export const LlmEvents: Context.Reference<EventBus> = Context.Reference<EventBus>("@switchboard/core/LlmEvents", {
  defaultValue: () => ({ enabled: false, publish: () => Effect.void, events: Stream.empty })
})

/**
 * Publishes an event on the bus in context (a no-op when none is provided).
 * The event is built lazily, only when someone listens.
 *
 * @since 0.1.0
 * @category combinators
 */
export const publish = (event: () => LlmEvent): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const bus = fiber.getRef(LlmEvents)
    return bus.enabled ? bus.publish(event()) : Effect.void
  })

/**
 * A live event bus: a sliding `PubSub` holding at most `capacity` events per
 * slow subscriber (default 4096).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: { readonly capacity?: number | undefined }): Layer.Layer<never> =>
  Layer.effect(
    LlmEvents,
    Effect.map(
      Effect.acquireRelease(PubSub.sliding<LlmEvent>(options?.capacity ?? 4096), PubSub.shutdown),
      (pubsub) => ({
        enabled: true,
        publish: (event: LlmEvent) => Effect.asVoid(PubSub.publish(pubsub, event)),
        events: Stream.fromPubSub(pubsub)
      })
    )
  )

/**
 * The events published from now on, as a stream.
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream: Stream.Stream<LlmEvent> = Stream.unwrap(Effect.map(LlmEvents, (bus) => bus.events))
