/**
 * Local rate limits in front of a provider: requests per window and tokens
 * per window, on Effect's `RateLimiter` (`effect/persistence`).
 *
 * Tokens are reserved from a count of the request (its input, counted by the
 * `Tokenizer`, plus `maxTokens` — or `outputReserve` when the request sets
 * none) and reconciled from the usage the provider reports: unused tokens go
 * back, extra ones are charged. A failed or interrupted call gives its
 * tokens back.
 *
 * With `onExceeded: "wait"` callers queue in arrival order (the limiter
 * hands out delays first come, first served); a wait longer than `maxWait`
 * fails instead. With `"fail"` a call over the limit fails at once. Both fail
 * with `RateLimited { source: "local" }` and a `retryAfter`.
 *
 * Limits tighten from what providers say: when a response's rate-limit
 * headers report fewer requests or tokens remaining than the local limiter
 * would allow, calls past that number wait (or fail) until the provider's
 * reset; a provider `RateLimited` with a `retryAfter` pauses the key for that
 * long.
 *
 * State lives in a `RateLimiterStore` (Effect's `RateLimiter` store
 * interface): the `store` you pass (e.g. Redis, to share limits across
 * instances), else the one in context, else a fresh bounded memory store per
 * layer (`state/RateLimiterStore.ts`: at most `maxKeys` keys, each dropped
 * once idle past its window and `maxWait`), answered in process with no
 * store round trips; a property test holds that path equal to Effect's
 * `RateLimiter` over its memory store. The providers' hints are bounded the
 * same way.
 *
 * Options are checked when the layer is built: a bad one fails with a
 * `SwitchboardConfigError` naming it (`RateLimit.requests.limit: expected an
 * integer ≥ 1, got 0`).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Exit, type Fiber, Function, Layer, Option, Schema } from "effect"
import { RateLimiter } from "effect/persistence"
import * as Events from "../Events.ts"
import { readyValue } from "../internal/ready.ts"
import * as Streams from "../internal/streams.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { LLM, transform } from "../LLM.ts"
import { type LlmError, RateLimited } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse, RateLimitInfo } from "../LlmResponse.ts"
import { Tokenizer } from "../prompt/Tokenizer.ts"
import * as BoundedMap from "../state/BoundedMap.ts"
import {
  fn,
  millisOf,
  NonNegativeDuration,
  NonNegativeInt,
  PositiveDuration,
  PositiveInt
} from "../state/options.ts"
import * as RateLimiterStore from "../state/RateLimiterStore.ts"
import { decode, type SwitchboardConfigError } from "../SwitchboardConfigError.ts"

/**
 * A limit: `limit` units per `window`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limit {
  readonly limit: number
  readonly window: Duration.Input
}

/**
 * Rate limit options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<SE = never, SR = never> {
  /** Requests per window. */
  readonly requests?: Limit | undefined
  /** Tokens (input + output) per window. */
  readonly tokens?: Limit | undefined
  /** Queue until there is room (`"wait"`), or fail at once (`"fail"`). */
  readonly onExceeded: "wait" | "fail"
  /** With `"wait"`: the longest a call may wait before failing instead (default: no bound). */
  readonly maxWait?: Duration.Input | undefined
  /** The limiter key, fixed or per request (default `"switchboard"`); keys are limited separately. */
  readonly key?: string | ((request: LlmRequest) => string) | undefined
  /** Output tokens reserved for a request without `maxTokens` (default 1024). */
  readonly outputReserve?: number | undefined
  /** The model tokens are counted for when a request names none (default: an estimate). */
  readonly model?: { readonly provider: string; readonly model: string } | undefined
  /** Tighten from providers' rate-limit headers and 429s (default true). */
  readonly adaptive?: boolean | undefined
  /** The limiter's store (default: the one in context, else a fresh bounded memory store for this layer). */
  readonly store?: Layer.Layer<RateLimiter.RateLimiterStore, SE, SR> | undefined
  /** Keys the default memory store and the hints keep (default 10,000; least recently used first out). */
  readonly maxKeys?: number | undefined
}

const LimitSchema = Schema.Struct({ limit: PositiveInt, window: PositiveDuration })

/**
 * The options Schema, decoded at build (see {@link Options} for the type).
 *
 * | option | type | default |
 * |---|---|---|
 * | `requests` / `tokens` | `{ limit: integer ≥ 1, window: finite Duration > 0 }` | at least one required |
 * | `onExceeded` | `"wait"` \| `"fail"` | required |
 * | `maxWait` | `Duration` ≥ 0 | no bound |
 * | `key` | string \| `(request) => string` | `"switchboard"` |
 * | `outputReserve` | integer ≥ 0 | 1024 |
 * | `model` | `{ provider, model }` | an estimate |
 * | `adaptive` | boolean | `true` |
 * | `store` | `Layer<RateLimiterStore>` | bounded memory |
 * | `maxKeys` | integer ≥ 1 | 10,000 |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  requests: Schema.optional(LimitSchema),
  tokens: Schema.optional(LimitSchema),
  onExceeded: Schema.Literals(["wait", "fail"]),
  maxWait: Schema.optional(NonNegativeDuration),
  key: Schema.optional(Schema.Union([Schema.String, fn<(request: LlmRequest) => string>()])),
  outputReserve: Schema.optional(NonNegativeInt),
  model: Schema.optional(Schema.Struct({ provider: Schema.String, model: Schema.String })),
  adaptive: Schema.optional(Schema.Boolean),
  store: Schema.optional(
    Schema.declare((u: unknown): u is Layer.Layer<RateLimiter.RateLimiterStore, unknown, unknown> => Layer.isLayer(u), {
      expected: "a Layer providing RateLimiterStore"
    })
  ),
  maxKeys: Schema.optional(PositiveInt)
}).check(
  Schema.makeFilter((o) => o.requests !== undefined || o.tokens !== undefined ? undefined : "expected requests or tokens (a rate limit with neither limits nothing)")
)

interface Hint {
  remaining: number
  resetAt: number
}

interface Hints {
  requests?: Hint | undefined
  tokens?: Hint | undefined
}

const local = "switchboard"

const defaultKey = "switchboard"

/** A `Limit` with its durations resolved once, the way `RateLimiter.consume` resolves them per call. */
interface Compiled {
  readonly limit: number
  readonly window: Duration.Duration
  readonly windowMillis: number
  readonly refillRate: Duration.Duration
  readonly refillRateMillis: number
}

const compile = (limit: Limit): Compiled => {
  const window = Duration.max(Duration.fromInputUnsafe(limit.window), Duration.millis(1))
  const refillRate = Duration.divideUnsafe(window, limit.limit)
  return {
    limit: limit.limit,
    window,
    windowMillis: Duration.toMillis(window),
    refillRate,
    refillRateMillis: Duration.toMillis(refillRate)
  }
}

/** One fixed-window consume of `amount` units (negative gives units back). */
interface Consume {
  readonly key: string
  readonly limit: Compiled
  readonly amount: number
  readonly onExceeded: "delay" | "fail"
}

/** What a consume answered: a delay in ms, a refusal with its retry-after, or a store failure. */
type Consumed =
  | { readonly _tag: "Taken"; readonly delayMillis: number }
  | { readonly _tag: "Exceeded"; readonly retryAfterMillis: number }
  | { readonly _tag: "StoreFailed"; readonly message: string }

/**
 * A counter the limit logic consumes from, with the clock's `now` read once
 * per step: the in-process one answers synchronously, a `RateLimiter` (any
 * store) through its effect.
 */
type Steps<A> = Generator<Consume, A, Consumed>

const takenNow: Consumed = { _tag: "Taken", delayMillis: 0 }

/** Milliseconds the way a `Duration` of them reads back (non-integers are held as nanoseconds). */
const asDurationMillis = (millis: number): number =>
  Number.isInteger(millis) ? millis : Duration.toMillis(Duration.millis(millis))

/**
 * An in-process fixed-window consume with exactly the arithmetic of
 * `RateLimiter.consume`, over the bounded memory store's synchronous
 * `fixedWindow`, so a call's checks run in one step with no effects.
 */
const makeLocalCounter = (memory: RateLimiterStore.MemoryStore) => (step: Consume, now: number): Consumed => {
  const { amount, limit } = step
  const fail = step.onExceeded === "fail"
  if (fail && amount > limit.limit) {
    return { _tag: "Exceeded", retryAfterMillis: limit.windowMillis }
  }
  const [count, ttl] = memory.fixedWindowSync(step.key, amount, limit.refillRateMillis, fail ? limit.limit : undefined, now)
  if (fail) {
    return limit.limit - count < 0 ? { _tag: "Exceeded", retryAfterMillis: asDurationMillis(ttl) } : takenNow
  }
  const elapsed = count * limit.refillRateMillis - ttl
  const windowNumber = Math.floor((count - 1) / limit.limit)
  const remaining = windowNumber * limit.windowMillis - elapsed
  return remaining <= 0 ? takenNow : { _tag: "Taken", delayMillis: asDurationMillis(remaining) }
}

// Fixed-window sums of fractions on epoch milliseconds (~1.7e12) carry rounding noise of ~1e-4 ms:
// a "wait" that small is none (sleeping on it would cost a timer and an event-loop turn on about
// every call, which under CPU contention adds a starved loop's delay to each of them).
const noWait = 1e-3

/** What {@link hinted} answers when the provider left no hint: no delay (a shared object, only read). */
const noHint: { readonly delay: number; readonly scope: "requests" | "tokens" } = { delay: 0, scope: "requests" }

/**
 * How long `hint` holds a call of `units` (0 when it does not), counting the
 * call against the hint when it fits.
 */
const holdOf = (hint: Hint | undefined, units: number, now: number): number => {
  if (hint === undefined || now >= hint.resetAt) return 0
  if (hint.remaining < units) return hint.resetAt - now
  hint.remaining -= units
  return 0
}

/** `hint` set to what the provider says now (a new one when there was none). */
const renewed = (hint: Hint | undefined, remaining: number, resetAt: number): Hint => {
  if (hint === undefined) return { remaining, resetAt }
  hint.remaining = remaining
  hint.resetAt = resetAt
  return hint
}

/** Runs limit logic synchronously against the in-process counter. */
const runLocal = <A>(
  counter: (step: Consume, now: number) => Consumed,
  steps: Steps<A>,
  now: number
): A => {
  let next = steps.next()
  while (!next.done) next = steps.next(counter(next.value, now))
  return next.value
}

/** Runs limit logic against a `RateLimiter`, one consume effect per step. */
const runLimiter = <A>(limiter: RateLimiter.RateLimiter, steps: Steps<A>): Effect.Effect<A> => {
  const consume = (step: Consume): Effect.Effect<Consumed> =>
    Effect.match(
      limiter.consume({
        key: step.key,
        limit: step.limit.limit,
        window: step.limit.window,
        tokens: step.amount,
        onExceeded: step.onExceeded
      }),
      {
        onFailure: (error): Consumed =>
          error.reason._tag === "RateLimitExceeded"
            ? { _tag: "Exceeded", retryAfterMillis: Duration.toMillis(error.reason.retryAfter) }
            : { _tag: "StoreFailed", message: error.reason.message },
        onSuccess: (result): Consumed => ({ _tag: "Taken", delayMillis: Duration.toMillis(result.delay) })
      }
    )
  const loop = (next: IteratorResult<Consume, A>): Effect.Effect<A> =>
    next.done ? Effect.succeed(next.value) : Effect.flatMap(consume(next.value), (answer) => loop(steps.next(answer)))
  return Effect.suspend(() => loop(steps.next()))
}

/** Where a limiter's counts live. */
type Counter =
  | {
    readonly _tag: "Local"
    readonly consume: (step: Consume, now: number) => Consumed
    readonly memory: RateLimiterStore.MemoryStore
  }
  | { readonly _tag: "Limiter"; readonly limiter: RateLimiter.RateLimiter }

/**
 * A built rate limit: its wrapper, its layer transformer, and a cheap read a
 * router uses to skip a candidate.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimit {
  /** Wraps a service; every service wrapped by one `RateLimit` shares its counts. */
  readonly wrap: (inner: LLM["Service"]) => LLM["Service"]
  readonly layer: <E, R>(self: Layer.Layer<LLM, E, R>) => Layer.Layer<LLM, E, R>
  /**
   * Whether a call for `request` would be held now — its key's request limit
   * used up in this window, or the provider said none are left until a reset
   * — without taking anything. Over a shared store only the providers' hints
   * are read (no store round trip); `false` does not promise the call passes.
   */
  readonly exhausted: (request: LlmRequest) => Effect.Effect<boolean>
  readonly options: Options<unknown, unknown>
}

/** How long an idle key must be kept: its longest window plus the longest wait (unbounded: never dropped by age). */
const idleTtlOf = (options: Options<unknown, unknown>): number => {
  const windows = [options.requests, options.tokens].flatMap((limit) =>
    limit === undefined ? [] : [millisOf(limit.window) ?? 0]
  )
  const maxWait = options.onExceeded === "fail" ? 0 : options.maxWait === undefined ? Infinity : millisOf(options.maxWait) ?? Infinity
  return Math.max(0, ...windows) + maxWait
}

/**
 * Builds a rate limit: decodes the options (a bad one fails with
 * `SwitchboardConfigError` naming it) and counts in the `RateLimiterStore`
 * in context, else in a fresh bounded memory store of its own.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm, RateLimit } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const limit = yield* RateLimit.make({ requests: { limit: 10, window: "1 second" }, onExceeded: "fail" })
 *   const llm = limit.wrap((yield* Llm.makeTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "hi" }] })).service)
 *   return yield* llm.generate({ messages: [{ role: "user", content: "q" }], maxTokens: 10 })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options<unknown, unknown>): Effect.Effect<RateLimit, SwitchboardConfigError> =>
  Effect.andThen(
    decode("RateLimit", Options, options),
    Effect.flatMap(Effect.serviceOption(RateLimiter.RateLimiterStore), (store) => {
      if (Option.isSome(store)) {
        return Effect.map(
          Effect.provideService(RateLimiter.make, RateLimiter.RateLimiterStore, store.value),
          (limiter) => makeWith({ _tag: "Limiter", limiter }, options)
        )
      }
      // The default store is this limit's own bounded memory: count in process, with no store round trips.
      const memory = RateLimiterStore.makeMemory({
        capacity: 2 * (options.maxKeys ?? 10_000),
        idleTtlMs: idleTtlOf(options)
      })
      return Effect.succeed(makeWith({ _tag: "Local", consume: makeLocalCounter(memory), memory }, options))
    })
  )

/**
 * Wraps a service with a built rate limit; data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap: {
  (limit: RateLimit): (inner: LLM["Service"]) => LLM["Service"]
  (inner: LLM["Service"], limit: RateLimit): LLM["Service"]
} = Function.dual(2, (inner: LLM["Service"], limit: RateLimit): LLM["Service"] => limit.wrap(inner))

/**
 * Limits the requests and tokens going through a layer (see the module
 * docs). A bad option fails the layer at build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Llm, RateLimit } from "@switchboard/core"
 *
 * const stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   RateLimit.layer({ requests: { limit: 500, window: "1 minute" }, tokens: { limit: 200_000, window: "1 minute" }, onExceeded: "wait", maxWait: "10 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <SE = never, SR = never>(options: Options<SE, SR>) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | SE | SwitchboardConfigError, R | SR> => {
  const limited = transform(Effect.map(make(options), (limit) => limit.wrap))(self)
  return options.store === undefined ? limited : limited.pipe(Layer.provide(options.store))
}

const makeWith = (counter: Counter, options: Options<unknown, unknown>) => {
  const wait = options.onExceeded === "wait"
  const maxWaitMillis = options.maxWait === undefined
    ? Infinity
    : Duration.toMillis(Duration.fromInputUnsafe(options.maxWait))
  const outputReserve = options.outputReserve ?? 1024
  const adaptive = options.adaptive ?? true
  const hints = BoundedMap.make<Hints>({ capacity: options.maxKeys ?? 10_000, idleTtlMs: idleTtlOf(options) })
  const requests = options.requests === undefined ? undefined : compile(options.requests)
  const tokens = options.tokens === undefined ? undefined : compile(options.tokens)

  interface Keys {
    readonly key: string
    readonly requests: string
    readonly tokens: string
  }
  const keysOf = (key: string): Keys => ({ key, requests: `${key}:requests`, tokens: `${key}:tokens` })
  const fixedKeys = typeof options.key === "function" ? undefined : keysOf(options.key ?? defaultKey)
  const keyOf = options.key
  const keysFor = (request: LlmRequest): Keys =>
    fixedKeys ?? keysOf((keyOf as (request: LlmRequest) => string)(request))

  const refused = (scope: "requests" | "tokens", retryAfterMillis: number, detail: string) =>
    new RateLimited({
      provider: local,
      scope,
      source: "local",
      retryAfter: Duration.millis(Math.max(0, Math.ceil(retryAfterMillis))),
      detail
    })

  const toRefused = (scope: "requests" | "tokens", answer: Exclude<Consumed, { _tag: "Taken" }>) =>
    answer._tag === "Exceeded"
      ? refused(scope, answer.retryAfterMillis, `local ${scope} limit reached`)
      : refused(scope, 0, `rate limiter store failed: ${answer.message}`)

  /** How long the provider's last word says to hold this call, counting it against the hint. */
  const hinted = (key: string, amount: number, now: number): { readonly delay: number; readonly scope: "requests" | "tokens" } => {
    const state = hints.get(key, now)
    if (state === undefined) return noHint
    const requestsHold = holdOf(state.requests, 1, now)
    const tokensHold = amount > 0 ? holdOf(state.tokens, amount, now) : 0
    if (requestsHold === 0 && tokensHold === 0) return noHint
    return tokensHold > requestsHold ? { delay: tokensHold, scope: "tokens" } : { delay: requestsHold, scope: "requests" }
  }

  const learn = (key: string, info: RateLimitInfo | undefined, now: number) => {
    if (!adaptive || info === undefined) return
    // A key already held was touched by the read, and its hints are updated in place: only a new one is set.
    const known = hints.get(key, now)
    const state = known ?? {}
    if (info.requestsRemaining !== undefined && info.requestsReset !== undefined) {
      state.requests = renewed(state.requests, info.requestsRemaining, now + Duration.toMillis(info.requestsReset))
    }
    if (info.tokensRemaining !== undefined && info.tokensReset !== undefined) {
      state.tokens = renewed(state.tokens, info.tokensRemaining, now + Duration.toMillis(info.tokensReset))
    }
    if (known === undefined) hints.set(key, state, now)
  }

  const pause = (key: string, error: LlmError, now: number) => {
    if (!adaptive || error._tag !== "RateLimited" || error.source !== "provider" || error.retryAfter === undefined) {
      return
    }
    const resetAt = now + Duration.toMillis(error.retryAfter)
    const state = hints.get(key, now) ?? {}
    const hint = { remaining: 0, resetAt }
    if (error.scope === "tokens") state.tokens = hint
    else state.requests = hint
    hints.set(key, state, now)
  }

  interface Permit {
    readonly keys: Keys
    readonly reserved: number
    readonly delay: number
  }

  // Giving back is consuming a negative amount; it never waits, and its answer is ignored.
  function* giveBack(key: string, limit: Compiled, amount: number): Steps<void> {
    if (amount !== 0) yield { key, limit, amount: -amount, onExceeded: "delay" }
  }

  /** Takes a request slot and `reserved` tokens, or refuses; every consume is a step. */
  function* admit(keys: Keys, reserved: number, now: number): Steps<Permit | RateLimited> {
    const hint = hinted(keys.key, reserved, now)
    if (hint.delay > 0 && (!wait || hint.delay > maxWaitMillis)) {
      return refused(hint.scope, hint.delay, `provider reported no ${hint.scope} left`)
    }
    let delay = hint.delay
    let scope = hint.scope
    if (wait) {
      if (requests !== undefined) {
        const answer = yield { key: keys.requests, limit: requests, amount: 1, onExceeded: "delay" }
        if (answer._tag !== "Taken") return toRefused("requests", answer)
        if (answer.delayMillis > delay) {
          delay = answer.delayMillis
          scope = "requests"
        }
      }
      if (tokens !== undefined) {
        const answer = yield { key: keys.tokens, limit: tokens, amount: reserved, onExceeded: "delay" }
        if (answer._tag !== "Taken") return toRefused("tokens", answer)
        if (answer.delayMillis > delay) {
          delay = answer.delayMillis
          scope = "tokens"
        }
      }
      if (delay > maxWaitMillis) {
        if (requests !== undefined) yield* giveBack(keys.requests, requests, 1)
        if (tokens !== undefined) yield* giveBack(keys.tokens, tokens, reserved)
        return refused(scope, delay, `a wait of ${Math.ceil(delay)}ms exceeds maxWait`)
      }
    } else {
      if (requests !== undefined) {
        const answer = yield { key: keys.requests, limit: requests, amount: 1, onExceeded: "fail" }
        if (answer._tag !== "Taken") return toRefused("requests", answer)
      }
      if (tokens !== undefined) {
        const answer = yield { key: keys.tokens, limit: tokens, amount: reserved, onExceeded: "fail" }
        if (answer._tag !== "Taken") {
          if (requests !== undefined) yield* giveBack(keys.requests, requests, 1)
          return toRefused("tokens", answer)
        }
      }
    }
    return { keys, reserved, delay } satisfies Permit
  }

  const used = (response: LlmResponse): number => {
    if (response.attempts.length === 0) return response.usage.inputTokens + response.usage.outputTokens
    let total = 0
    for (const attempt of response.attempts) {
      if (attempt.usage !== undefined) total += attempt.usage.inputTokens + attempt.usage.outputTokens
    }
    return total
  }

  /** Learns from the outcome: the provider's rate-limit headers, or its `RateLimited` answer. */
  const heed = (permit: Permit, exit: Exit.Exit<LlmResponse | undefined, LlmError>, now: number): void => {
    if (!adaptive) return
    if (Exit.isSuccess(exit)) {
      if (exit.value !== undefined) learn(permit.keys.key, exit.value.rateLimit, now)
      return
    }
    const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    if (failure !== undefined) pause(permit.keys.key, failure.error, now)
  }

  /** Learns from the outcome, then gives unused tokens back or charges extra ones. */
  function* reconcile(permit: Permit, exit: Exit.Exit<LlmResponse | undefined, LlmError>, now: number): Steps<void> {
    heed(permit, exit, now)
    if (tokens === undefined) return
    const key = permit.keys.tokens
    if (!Exit.isSuccess(exit) || exit.value === undefined) return yield* giveBack(key, tokens, permit.reserved)
    const diff = used(exit.value) - permit.reserved
    if (diff < 0) return yield* giveBack(key, tokens, -diff)
    if (diff > 0) yield { key, limit: tokens, amount: diff, onExceeded: "delay" }
  }

  const run = <A>(fiber: Fiber.Fiber<unknown, unknown>, steps: (now: number) => Steps<A>): Effect.Effect<A> => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return counter._tag === "Local"
      ? Effect.succeed(runLocal(counter.consume, steps(now), now))
      : runLimiter(counter.limiter, steps(now))
  }

  const permitOf = (result: Permit | RateLimited): Effect.Effect<Permit, RateLimited> =>
    result instanceof RateLimited ? Effect.fail(result) : Effect.succeed(result)

  const admitted = (
    fiber: Fiber.Fiber<unknown, unknown>,
    keys: Keys,
    reserved: number
  ): Effect.Effect<Permit, RateLimited> => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return counter._tag === "Local"
      ? permitOf(runLocal(counter.consume, admit(keys, reserved, now), now))
      : Effect.flatMap(runLimiter(counter.limiter, admit(keys, reserved, now)), permitOf)
  }

  /** Who a request's tokens are counted as: its own model, else the `model` option. */
  const targetOf = (request: LlmRequest): { readonly provider: string; readonly model: string } =>
    request.model !== undefined
      ? { provider: options.model?.provider ?? "", model: request.model }
      : options.model ?? { provider: "", model: "" }

  const acquire = (request: LlmRequest): Effect.Effect<Permit, RateLimited> =>
    Effect.withFiber((fiber) => {
      const keys = keysFor(request)
      if (tokens === undefined) return admitted(fiber, keys, 0)
      return Effect.flatMap(
        fiber.getRef(Tokenizer).countRequest(request, targetOf(request)),
        (input) => admitted(fiber, keys, input.tokens + (request.maxTokens ?? outputReserve))
      )
    })

  // The wait runs interruptibly, after the permit is held, so an interrupted waiter gives its tokens back.
  const waitFor = (permit: Permit): Effect.Effect<void> =>
    permit.delay <= noWait ? Effect.void : Effect.andThen(
      Effect.sleep(Duration.millis(permit.delay)),
      Effect.andThen(
        Telemetry.recordRateLimitWait(permit.delay),
        Events.publish(() => ({ _tag: "RateLimitWaited", key: permit.keys.key, waitedMs: permit.delay }))
      )
    )

  const release = (permit: Permit, exit: Exit.Exit<LlmResponse | undefined, LlmError>): Effect.Effect<void> =>
    Effect.withFiber((fiber) => releaseOn(fiber, permit, exit) ?? Effect.void)

  /**
   * {@link release} on the running `fiber`, for a finalizer of the call: with no token limit there is nothing
   * to give back, only the outcome to heed, and no effect left to run (`undefined`).
   */
  const releaseOn = (
    fiber: Fiber.Fiber<unknown, unknown>,
    permit: Permit,
    exit: Exit.Exit<LlmResponse | undefined, LlmError>
  ): Effect.Effect<void> | undefined => {
    if (tokens !== undefined) return run(fiber, (now) => reconcile(permit, exit, now))
    heed(permit, exit, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
    return undefined
  }

  const exhausted = (request: LlmRequest): Effect.Effect<boolean> =>
    Effect.clockWith((clock) =>
      Effect.sync(() => {
        const now = clock.currentTimeMillisUnsafe()
        const keys = keysFor(request)
        const state = hints.get(keys.key, now)
        const hint = state?.requests
        if (hint !== undefined && now < hint.resetAt && hint.remaining < 1) return true
        if (counter._tag !== "Local" || requests === undefined) return false
        return counter.memory.peek(keys.requests, now) + 1 > requests.limit
      })
    )

  /**
   * The permit taken in this very step when nothing in it needs to wait (the
   * in-memory counter, the tokenizer loaded): a permit, the refusal, or
   * `undefined` when {@link acquire} must run.
   */
  const acquireNow = (fiber: Fiber.Fiber<unknown, unknown>, request: LlmRequest): Permit | RateLimited | undefined => {
    if (counter._tag !== "Local") return undefined
    let reserved = 0
    if (tokens !== undefined) {
      const count = readyValue(fiber.getRef(Tokenizer).countRequest(request, targetOf(request)))
      if (count === undefined) return undefined
      reserved = count.tokens + (request.maxTokens ?? outputReserve)
    }
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return runLocal(counter.consume, admit(keysFor(request), reserved, now), now)
  }

  const wrap = (inner: LLM["Service"]): LLM["Service"] =>
    LLM.of({
      generate: (request) =>
        Effect.withFiber((fiber) => {
          const now = acquireNow(fiber, request)
          if (now === undefined) {
            return Effect.acquireUseRelease(
              acquire(request),
              (permit) => permit.delay <= noWait ? inner.generate(request) : Effect.andThen(waitFor(permit), inner.generate(request)),
              release
            )
          }
          if (now instanceof RateLimited) return Effect.fail(now)
          // Taken in this same step, so nothing can interrupt between the permit and the
          // finalizer that releases it: no `acquireUseRelease` needed.
          const call = now.delay <= noWait ? inner.generate(request) : Effect.andThen(waitFor(now), inner.generate(request))
          return Effect.onExitPrimitive(call, (exit) => releaseOn(fiber, now, exit))
        }),
      stream: (request) =>
        // One layer: the releasing finalizer is on the run's scope before the permit is taken.
        Streams.guarded((fiber) => {
          let permit: Permit | undefined
          let finish: LlmResponse | undefined
          const parts = () => inner.stream(request)
          return {
            open: () => {
              // Taken in this step when the in-memory counter can answer at once, as `generate` does; else
              // uninterruptible from the counter's answer to the permit kept here, as `generate`'s acquire is.
              const now = acquireNow(fiber, request)
              if (now instanceof RateLimited) return Effect.fail(now)
              // Taken now with nothing to wait for (the common case): the stream, in this same step.
              if (now !== undefined && now.delay <= noWait) {
                permit = now
                return parts()
              }
              const taken = now !== undefined
                ? Effect.succeed(permit = now)
                : Effect.uninterruptible(Effect.map(acquire(request), (p) => (permit = p)))
              // The wait for the permit's delay stays interruptible.
              return Effect.flatMap(taken, (p) => p.delay <= noWait ? Effect.sync(parts) : Effect.map(waitFor(p), parts))
            },
            each: (part) => {
              if (part.type === "finish") finish = part.response
            },
            close: (exit) =>
              permit === undefined
                ? Effect.void
                : release(permit, Exit.isSuccess(exit) ? Exit.succeed(finish) : exit as Exit.Exit<never, LlmError>)
          }
        })
    })

  const layer = <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> => transform(wrap)(self)

  return { wrap, layer, exhausted, options } satisfies RateLimit
}
