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
 * State lives in a `RateLimiterStore`: a fresh in-memory store per layer by
 * default, or the `store` you pass (e.g. Redis, to share limits across
 * instances).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Exit, Layer, Stream } from "effect"
import { RateLimiter } from "effect/persistence"
import * as Events from "./Events.ts"
import { LLM } from "./LLM.ts"
import { type LlmError, RateLimited } from "./LlmError.ts"
import type { LlmRequest } from "./LlmRequest.ts"
import type { LlmResponse, RateLimitInfo } from "./LlmResponse.ts"
import { Tokenizer } from "./Tokenizer.ts"

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
  /** The limiter's store (default: a fresh in-memory store for this layer). */
  readonly store?: Layer.Layer<RateLimiter.RateLimiterStore, SE, SR> | undefined
}

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

/**
 * Limits the requests and tokens going through a layer (see the module docs).
 *
 * @example
 * ```ts
 * const stack = OpenAI.model("gpt-4o-mini").pipe(
 *   RateLimit.layer({ requests: { limit: 500, window: "1 minute" }, tokens: { limit: 200_000, window: "1 minute" }, onExceeded: "wait", maxWait: "10 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <SE = never, SR = never>(options: Options<SE, SR>) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | SE, R | SR> => {
  const store: Layer.Layer<RateLimiter.RateLimiterStore, SE, SR> = options.store ??
    (Layer.fresh(RateLimiter.layerStoreMemory) as Layer.Layer<RateLimiter.RateLimiterStore, SE, SR>)
  return Layer.effect(
    LLM,
    Effect.gen(function*() {
      const inner = yield* LLM
      const limiter = yield* RateLimiter.make
      return make(limiter, options)(inner)
    })
  ).pipe(Layer.provide(self), Layer.provide(store))
}

/**
 * Wraps a service with a limiter you built (see {@link layer}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (limiter: RateLimiter.RateLimiter, options: Options<unknown, unknown>) => {
  const wait = options.onExceeded === "wait"
  const maxWaitMillis = options.maxWait === undefined
    ? Infinity
    : Duration.toMillis(Duration.fromInputUnsafe(options.maxWait))
  const outputReserve = options.outputReserve ?? 1024
  const adaptive = options.adaptive ?? true
  const keyOf = typeof options.key === "function"
    ? options.key
    : ((key: string) => () => key)(options.key ?? defaultKey)
  const hints = new Map<string, Hints>()
  const requests = options.requests
  const tokens = options.tokens

  const take = (key: string, limit: Limit, amount: number, onExceeded: "delay" | "fail") =>
    limiter.consume({ key, limit: limit.limit, window: limit.window, tokens: amount, onExceeded })

  // Giving back is consuming a negative amount; it never waits and never fails.
  const giveBack = (key: string, limit: Limit, amount: number) =>
    amount === 0 ? Effect.void : Effect.ignore(take(key, limit, -amount, "delay"))

  const refused = (scope: "requests" | "tokens", retryAfterMillis: number, detail: string) =>
    new RateLimited({
      provider: local,
      scope,
      source: "local",
      retryAfter: Duration.millis(Math.max(0, Math.ceil(retryAfterMillis))),
      detail
    })

  const toRefused = (scope: "requests" | "tokens") => (error: RateLimiter.RateLimiterError) =>
    error.reason._tag === "RateLimitExceeded"
      ? refused(scope, Duration.toMillis(error.reason.retryAfter), `local ${scope} limit reached`)
      : refused(scope, 0, `rate limiter store failed: ${error.reason.message}`)

  /** How long the provider's last word says to hold this call, counting it against the hint. */
  const hinted = (key: string, amount: number, now: number): { delay: number; scope: "requests" | "tokens" } => {
    const state = hints.get(key)
    if (state === undefined) return { delay: 0, scope: "requests" }
    let delay = 0
    let scope: "requests" | "tokens" = "requests"
    const check = (hint: Hint | undefined, units: number, which: "requests" | "tokens") => {
      if (hint === undefined || now >= hint.resetAt) return
      if (hint.remaining < units) {
        if (hint.resetAt - now > delay) {
          delay = hint.resetAt - now
          scope = which
        }
      } else {
        hint.remaining -= units
      }
    }
    check(state.requests, 1, "requests")
    if (amount > 0) check(state.tokens, amount, "tokens")
    return { delay, scope }
  }

  const learn = (key: string, info: RateLimitInfo | undefined, now: number) => {
    if (!adaptive || info === undefined) return
    const state = hints.get(key) ?? {}
    if (info.requestsRemaining !== undefined && info.requestsReset !== undefined) {
      state.requests = { remaining: info.requestsRemaining, resetAt: now + Duration.toMillis(info.requestsReset) }
    }
    if (info.tokensRemaining !== undefined && info.tokensReset !== undefined) {
      state.tokens = { remaining: info.tokensRemaining, resetAt: now + Duration.toMillis(info.tokensReset) }
    }
    hints.set(key, state)
  }

  const pause = (key: string, error: LlmError, now: number) => {
    if (!adaptive || error._tag !== "RateLimited" || error.source !== "provider" || error.retryAfter === undefined) {
      return
    }
    const resetAt = now + Duration.toMillis(error.retryAfter)
    const state = hints.get(key) ?? {}
    const hint = { remaining: 0, resetAt }
    if (error.scope === "tokens") state.tokens = hint
    else state.requests = hint
    hints.set(key, state)
  }

  interface Permit {
    readonly key: string
    readonly reserved: number
    readonly delay: number
  }

  const acquire = Effect.fnUntraced(function*(request: LlmRequest) {
    const key = keyOf(request)
    let reserved = 0
    if (tokens !== undefined) {
      const target = request.model !== undefined
        ? { provider: options.model?.provider ?? "", model: request.model }
        : options.model ?? { provider: "", model: "" }
      const tokenizer = yield* Tokenizer
      const input = yield* tokenizer.countRequest(request, target)
      reserved = input.tokens + (request.maxTokens ?? outputReserve)
    }
    const now = yield* Clock.currentTimeMillis
    const hint = hinted(key, reserved, now)
    if (hint.delay > 0 && (!wait || hint.delay > maxWaitMillis)) {
      return yield* refused(hint.scope, hint.delay, `provider reported no ${hint.scope} left`)
    }
    let delay = hint.delay
    let scope = hint.scope
    if (wait) {
      if (requests !== undefined) {
        const result = yield* Effect.mapError(take(`${key}:requests`, requests, 1, "delay"), toRefused("requests"))
        const millis = Duration.toMillis(result.delay)
        if (millis > delay) {
          delay = millis
          scope = "requests"
        }
      }
      if (tokens !== undefined) {
        const result = yield* Effect.mapError(take(`${key}:tokens`, tokens, reserved, "delay"), toRefused("tokens"))
        const millis = Duration.toMillis(result.delay)
        if (millis > delay) {
          delay = millis
          scope = "tokens"
        }
      }
      if (delay > maxWaitMillis) {
        if (requests !== undefined) yield* giveBack(`${key}:requests`, requests, 1)
        if (tokens !== undefined) yield* giveBack(`${key}:tokens`, tokens, reserved)
        return yield* refused(scope, delay, `a wait of ${Math.ceil(delay)}ms exceeds maxWait`)
      }
    } else {
      if (requests !== undefined) {
        yield* Effect.mapError(take(`${key}:requests`, requests, 1, "fail"), toRefused("requests"))
      }
      if (tokens !== undefined) {
        const taken = yield* Effect.result(take(`${key}:tokens`, tokens, reserved, "fail"))
        if (taken._tag === "Failure") {
          if (requests !== undefined) yield* giveBack(`${key}:requests`, requests, 1)
          return yield* toRefused("tokens")(taken.failure)
        }
      }
    }
    return { key, reserved, delay } satisfies Permit
  })

  // The wait runs interruptibly, after the permit is held, so an interrupted waiter gives its tokens back.
  const waitFor = (permit: Permit): Effect.Effect<void> =>
    permit.delay <= 0 ? Effect.void : Effect.andThen(
      Effect.sleep(Duration.millis(permit.delay)),
      Events.publish(() => ({ _tag: "RateLimitWaited", key: permit.key, waitedMs: permit.delay }))
    )

  const used = (response: LlmResponse): number => {
    if (response.attempts.length === 0) return response.usage.inputTokens + response.usage.outputTokens
    let total = 0
    for (const attempt of response.attempts) {
      if (attempt.usage !== undefined) total += attempt.usage.inputTokens + attempt.usage.outputTokens
    }
    return total
  }

  const release = (permit: Permit, exit: Exit.Exit<LlmResponse | undefined, LlmError>) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (Exit.isSuccess(exit) && exit.value !== undefined) learn(permit.key, exit.value.rateLimit, now)
      if (Exit.isFailure(exit)) {
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
        if (failure !== undefined) pause(permit.key, failure.error, now)
      }
      if (tokens === undefined) return Effect.void
      const key = `${permit.key}:tokens`
      if (!Exit.isSuccess(exit) || exit.value === undefined) return giveBack(key, tokens, permit.reserved)
      const diff = used(exit.value) - permit.reserved
      return diff < 0 ? giveBack(key, tokens, -diff) : diff > 0 ? Effect.ignore(take(key, tokens, diff, "delay")) : Effect.void
    })

  return (inner: LLM["Service"]): LLM["Service"] =>
    LLM.of({
      generate: (request) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(acquire(request), (permit) =>
            restore(Effect.andThen(waitFor(permit), inner.generate(request))).pipe(
              Effect.onExit((exit) => release(permit, exit))
            ))
        ),
      stream: (request) =>
        Stream.suspend(() => {
          let permit: Permit | undefined
          let finish: LlmResponse | undefined
          return Stream.fromEffect(Effect.tap(acquire(request), (p) => Effect.sync(() => (permit = p)))).pipe(
            Stream.flatMap((p) => Stream.unwrap(Effect.as(waitFor(p), inner.stream(request)))),
            Stream.tap((part) => {
              if (part.type === "finish") finish = part.response
              return Effect.void
            }),
            Stream.onExit((exit) =>
              permit === undefined
                ? Effect.void
                : release(permit, Exit.isSuccess(exit) ? Exit.succeed(finish) : exit as Exit.Exit<never, LlmError>)
            )
          )
        })
    })
}
