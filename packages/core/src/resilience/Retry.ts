/**
 * Retries failed calls on a jittered exponential `Schedule`, capped at `max`.
 *
 * - Only errors whose `retryable` flag is true are retried (rate limits,
 *   overload, 5xx, timeouts, network and malformed-response errors), unless a
 *   `while` predicate says otherwise.
 * - A `Retry-After` the provider sent (`LlmError.retryAfter`) is honoured: the
 *   wait is at least that long (`respectRetryAfter`, on by default), even past
 *   `max`.
 * - It never waits past the call's deadline (`Llm.withDeadline`, a request's
 *   `deadline`): when the next wait would end at or after the deadline it
 *   gives up at once with the last error, so an outer `Fallback` still has the
 *   time that is left.
 * - Every try is an `Attempt` on the response (`attempts`: the failed ones
 *   first, the successful one last), and every scheduled retry publishes a
 *   `RetryScheduled` event.
 * - Streams are retried only until their first part is emitted; a stream that
 *   fails after output was sent fails with its error (an outer `Fallback`
 *   decides what happens next, see its `midStream` policy).
 *
 * Options are checked when the layer is built: a bad one fails the layer
 * with `SwitchboardConfigError` naming it (`Retry.times: expected an integer
 * ≥ 0, got -1`). The retry itself is `Effect.retry` over a `Schedule`
 * ({@link policy}): the error is the schedule's input, so `Retry-After` and
 * the deadline are fitted in `Schedule.modifyDelay` / `Schedule.while`.
 *
 * Order: put `Retry` closest to the provider, inside `CircuitBreaker`, inside
 * `Fallback` — `Fallback ─> CircuitBreaker ─> Retry ─> provider` — so the
 * breaker sees one outcome per exhausted retry series and the fallback moves on
 * only once a provider's retries are spent. With `pipe`, the first
 * transformer is the innermost:
 *
 * ```ts
 * import { CircuitBreaker, Llm, Retry } from "@switchboard/core"
 *
 * const Provider = Llm.layerTest([{ text: "hi" }]) // e.g. OpenAI.model("gpt-4o-mini")
 * const Stack = Provider.pipe(
 *   Retry.layer({ times: 3, base: "200 millis", max: "5 seconds" }),
 *   CircuitBreaker.layer({ failureThreshold: 5, cooldown: "30 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Random, Result, Schedule, Schema, Stream } from "effect"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import * as Streams from "../internal/streams.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { attemptsOfFailure, type ChildFailure, catchChild, failWith, prepend, tryStreamWith } from "../internal/attempts.ts"
import { DurationInput, FiniteAtLeast, FiniteBetween, Fn, IntAtLeast, millisOf, orThrow } from "../internal/optionSchemas.ts"
import { LLM, transform } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"

/**
 * Retry options. Every field is optional:
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `times` | `3` | retries after the first try (so at most `times + 1` tries); an integer ≥ 0 |
 * | `base` | `"100 millis"` | the first delay (`Duration.Input`) |
 * | `factor` | `2` | growth of the delay per retry (≥ 1) |
 * | `max` | `"10 seconds"` | cap on the computed delay (after jitter) |
 * | `jitter` | `0.2` | each delay is scaled by a random factor in `[1 - jitter, 1 + jitter]`; `true` = 0.2, `false` = none |
 * | `respectRetryAfter` | `true` | wait at least the error's `retryAfter` |
 * | `while` | `error.retryable` | which errors to retry |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = LlmError> {
  readonly times?: number | undefined
  readonly base?: Duration.Input | undefined
  readonly factor?: number | undefined
  readonly max?: Duration.Input | undefined
  readonly jitter?: boolean | number | undefined
  readonly respectRetryAfter?: boolean | undefined
  readonly while?: ((error: E) => boolean) | undefined
}

/**
 * The Schema of {@link Options}, decoded when a layer is built (the config
 * file loader reuses it).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  times: Schema.optional(IntAtLeast(0)),
  base: Schema.optional(DurationInput),
  factor: Schema.optional(FiniteAtLeast(1)),
  max: Schema.optional(DurationInput),
  jitter: Schema.optional(Schema.Union([Schema.Boolean, FiniteBetween(0, 1)])),
  respectRetryAfter: Schema.optional(Schema.Boolean),
  while: Schema.optional(Fn<(error: never) => boolean>("a predicate function"))
})

/**
 * What the value-level {@link retry} needs of an error: a `retryable` flag
 * (unless a `while` predicate is given), and optionally where it came from and
 * a `retryAfter` hint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Retryable {
  readonly retryable?: boolean | undefined
  readonly provider?: string | undefined
  readonly model?: string | undefined
  readonly retryAfter?: Duration.Duration | undefined
}

interface Settings<E> {
  readonly times: number
  readonly baseMillis: number
  readonly factor: number
  readonly maxMillis: number
  readonly jitter: number
  readonly respectRetryAfter: boolean
  readonly shouldRetry: (error: E) => boolean
}

const settingsOf = <E extends Retryable>(options: Options<E>): Settings<E> => ({
  times: options.times ?? 3,
  baseMillis: millisOf(options.base ?? "100 millis"),
  factor: options.factor ?? 2,
  maxMillis: millisOf(options.max ?? "10 seconds"),
  jitter: options.jitter === undefined || options.jitter === true ? 0.2 : options.jitter === false ? 0 : options.jitter,
  respectRetryAfter: options.respectRetryAfter ?? true,
  shouldRetry: options.while ?? ((error) => error.retryable === true)
})

const decodeResult = <E extends Retryable>(options: Options<E>) =>
  Result.map(SwitchboardConfigError.decodeSync("Retry", Options, options), () => settingsOf(options))

/** The synchronous constructors have no error channel: a bad option is thrown as the typed error. */
const decodeOrThrow = <E extends Retryable>(options: Options<E>): Settings<E> => orThrow(decodeResult(options))

const delays = (settings: Omit<Settings<never>, "shouldRetry" | "respectRetryAfter">): Schedule.Schedule<Duration.Duration, unknown> => {
  const { jitter, maxMillis } = settings
  return Schedule.exponential(Duration.millis(settings.baseMillis), settings.factor).pipe(
    Schedule.modifyDelay(({ duration }) => {
      const millis = Duration.toMillis(duration)
      if (jitter === 0) return Effect.succeed(Duration.millis(Math.min(millis, maxMillis)))
      return Effect.map(
        Random.next,
        (r) => Duration.millis(Math.round(Math.min(millis * (1 - jitter + 2 * jitter * r), maxMillis)))
      )
    }),
    Schedule.upTo({ times: settings.times })
  )
}

/**
 * The delay schedule {@link layer} uses: exponential from `base` by `factor`,
 * each delay scaled by a random factor in `[1 - jitter, 1 + jitter]`, rounded
 * to whole milliseconds and then capped at `max`, for at most `times`
 * recurrences. Usable on its own with `Effect.retry`. A bad option throws
 * `SwitchboardConfigError` (prefer {@link layer}, which fails at build).
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = (
  options: Omit<Options<never>, "while" | "respectRetryAfter"> = {}
): Schedule.Schedule<Duration.Duration, unknown> => delays(decodeOrThrow(options))

const hintOf = (error: Retryable): Duration.Duration | undefined =>
  error.retryAfter !== undefined && Duration.isDuration(error.retryAfter) ? error.retryAfter : undefined

const tagOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string" ? error._tag : "unknown"

/**
 * The whole retry policy as one `Schedule` whose input is the error:
 * {@link schedule}'s delays, only while `while` accepts the error, each delay
 * raised to the error's `Retry-After` (`Schedule.modifyDelay`), never a wait
 * that would end at or after the deadline (`Schedule.while` on the final
 * delay), and a `RetryScheduled` event for each retry (`Schedule.tap`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm, Retry } from "@switchboard/core"
 *
 * const text = Llm.generateText("hi").pipe(Effect.retry(Retry.policy({ times: 2 })))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const policy = <E extends Retryable = LlmError>(
  options: Options<E> = {}
): Schedule.Schedule<Duration.Duration, E> => policyOf(decodeOrThrow(options))

const policyOf = <E extends Retryable>(settings: Settings<E>): Schedule.Schedule<Duration.Duration, E> =>
  delays(settings).pipe(
    Schedule.setInputType<E>(),
    Schedule.while(({ input }) => settings.shouldRetry(input)),
    Schedule.modifyDelay(({ duration, input }) => {
      const hint = settings.respectRetryAfter ? hintOf(input) : undefined
      return Effect.succeed(hint === undefined ? duration : Duration.max(duration, hint))
    }),
    Schedule.while(({ duration }) =>
      Effect.map(Deadline.remaining, (left) => left === undefined || Duration.toMillis(duration) < Duration.toMillis(left))
    ),
    Schedule.tap(({ attempt, duration, input }) =>
      Effect.andThen(
        Telemetry.recordWait(Duration.toMillis(duration)),
        Events.publish(() => ({
          _tag: "RetryScheduled",
          provider: input.provider ?? "unknown",
          model: input.model ?? "unknown",
          attempt,
          delayMs: Duration.toMillis(duration),
          error: tagOf(input)
        }))
      )
    )
  )

/**
 * Retries any effect whose errors carry a `retryable` flag (or that a `while`
 * predicate accepts), with the same schedule, `Retry-After` and deadline rules
 * as {@link layer}. The error type is kept as it is. Data-first or data-last.
 * A bad option throws `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Llm, Retry } from "@switchboard/core"
 *
 * const text = Llm.generateText("hi").pipe(Retry.retry({ times: 2, base: "50 millis" }))
 * const same = Retry.retry(Llm.generateText("hi"), { times: 2 })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export function retry<E extends Retryable = LlmError>(
  options?: Options<E>
): <A, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
export function retry<A, E extends Retryable, R>(self: Effect.Effect<A, E, R>, options?: Options<E>): Effect.Effect<A, E, R>
export function retry<A, E extends Retryable, R>(
  selfOrOptions?: Effect.Effect<A, E, R> | Options<E>,
  options?: Options<E>
): Effect.Effect<A, E, R> | (<A2, R2>(self: Effect.Effect<A2, E, R2>) => Effect.Effect<A2, E, R2>) {
  if (Effect.isEffect(selfOrOptions)) return retryWith(selfOrOptions, policyOf(decodeOrThrow(options ?? {})))
  // data-last: the options are checked now, where they are written
  const retrying = policyOf(decodeOrThrow(selfOrOptions ?? {}))
  return <A2, R2>(self: Effect.Effect<A2, E, R2>) => retryWith(self, retrying)
}

/** `Effect.retry`, entered only after a first failure (a first success builds no schedule). */
const retryWith = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  retrying: Schedule.Schedule<Duration.Duration, E>
): Effect.Effect<A, E, R> => Effect.catch(self, (first) => Effect.retry(replaying(first, self), retrying))

/** An effect that fails with `first` on its first run and is `self` after: the retry series starts from a failure already seen. */
const replaying = <A, E, R>(first: E, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  let replayed = false
  return Effect.suspend(() => {
    if (replayed) return self
    replayed = true
    return Effect.fail(first)
  })
}

/** A stream that fails with `first` on its first run and is `self` after (see {@link replaying}). */
const replayingStream = <A, E, R>(first: E, self: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> => {
  let replayed = false
  return Streams.lazy(() => {
    if (replayed) return self
    replayed = true
    return Stream.fail(first)
  })
}

const wrapWith = (settings: Settings<LlmError>) => (inner: LLM["Service"]): LLM["Service"] => {
  const retrying = policyOf(settings)
  // No span of its own: each try is already an `Llm.attempt` span of the leaf.
  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeMillisUnsafe()
      // The first try runs bare, so a call that succeeds first time builds no schedule at all;
      // its error is then handed to `Effect.retry` as the series' first input, without a new call.
      return catchChild(inner.generate(request), (first, reported) => {
        const failed = [...attemptsOfFailure(reported, first, request, clock.currentTimeMillisUnsafe() - start)]
        const once = Effect.suspend(() => {
          const begun = clock.currentTimeMillisUnsafe()
          return catchChild(inner.generate(request), (error, reported) => {
            failed.push(...attemptsOfFailure(reported, error, request, clock.currentTimeMillisUnsafe() - begun))
            return Effect.fail(error)
          })
        })
        return Effect.matchEffect(Effect.retry(replaying(first, once), retrying), {
          onSuccess: (response) => Effect.succeed(prepend(response, failed)),
          onFailure: (error) => failWith(error, failed)
        })
      })
    })

  // One layer per try (`tryStreamWith`): it marks the output as emitted, puts earlier failed
  // tries in front of the finish part's attempts, and records this try's failure.
  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> => {
    const parts = inner.stream(request)
    return tryStreamWith(() => {
      const failed: Array<Attempt> = []
      let emitted = false
      const map = (part: StreamPart): StreamPart => {
        emitted = true
        return part.type === "finish" && failed.length > 0
          ? { type: "finish", response: prepend(part.response, failed) }
          : part
      }
      const exhausted = (error: LlmError) => Stream.fromEffect(failWith(error, failed))
      const again = tryStreamWith(() => ({
        stream: parts,
        request,
        map,
        recover: ({ attempts, error }: ChildFailure) => {
          failed.push(...attempts)
          return Stream.fail(error)
        }
      }))
      // As for `generate`: the first try runs bare, and only a failure builds the retry series
      // (its first input the failure already seen). Once output reached the caller a retry
      // would repeat it, so a failure after the first part ends the call.
      return {
        stream: parts,
        request,
        map,
        recover: ({ attempts, error }: ChildFailure) => {
          failed.push(...attempts)
          return emitted
            ? exhausted(error)
            : Stream.retry(replayingStream(error, again), Schedule.while(retrying, () => !emitted)).pipe(
              Stream.catch(exhausted)
            )
        }
      }
    })
  }

  return LLM.of({ generate, stream })
}

/**
 * Builds the retry wrapper after checking `options`: a bad option fails with
 * `SwitchboardConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<(llm: LLM["Service"]) => LLM["Service"], SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.map(SwitchboardConfigError.decode("Retry", Options, options), () => wrapWith(settingsOf(options)))

/**
 * Retries an `LLM` service's calls, recording every attempt on the response
 * (failed attempts first) and reporting them to an enclosing `Fallback` or
 * `Hedge` when it gives up. Data-first (`wrap(llm, options)`) or data-last
 * (`wrap(options)(llm)`); a bad option throws `SwitchboardConfigError`
 * (prefer {@link make} / {@link layer}, which fail in the error channel).
 *
 * @since 0.1.0
 * @category combinators
 */
export function wrap(options?: Options): (self: LLM["Service"]) => LLM["Service"]
export function wrap(self: LLM["Service"], options?: Options): LLM["Service"]
export function wrap(
  selfOrOptions?: LLM["Service"] | Options,
  options?: Options
): LLM["Service"] | ((self: LLM["Service"]) => LLM["Service"]) {
  if (isService(selfOrOptions)) return wrapWith(decodeOrThrow(options ?? {}))(selfOrOptions)
  return wrapWith(decodeOrThrow(selfOrOptions ?? {}))
}

const isService = (u: unknown): u is LLM["Service"] =>
  typeof u === "object" && u !== null && "generate" in u && "stream" in u && typeof u.generate === "function"

/**
 * {@link wrap}, data-last, under its wave-1 name.
 *
 * @since 0.1.0
 * @category combinators
 */
export const service = (options: Options = {}): (inner: LLM["Service"]) => LLM["Service"] => wrap(options)

/**
 * Retries the calls of the wrapped `LLM` layer (see the module docs for the
 * rules and where to put it in a stack). A bad option fails the layer at
 * build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Llm, Retry } from "@switchboard/core"
 *
 * const Stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   Retry.layer({ times: 3, base: "200 millis", max: "5 seconds", jitter: 0.2 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => transform(make(options))
