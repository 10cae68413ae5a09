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
 * Order: put `Retry` closest to the provider, inside `CircuitBreaker`, inside
 * `Fallback` — `Fallback ─> CircuitBreaker ─> Retry ─> provider` — so the
 * breaker sees one outcome per exhausted retry series and the fallback moves on
 * only once a provider's retries are spent. With `pipe`, the first
 * transformer is the innermost:
 *
 * ```ts
 * OpenAI.model("gpt-4o-mini").pipe(
 *   Retry.layer({ times: 3, base: "200 millis", max: "5 seconds" }),
 *   CircuitBreaker.layer({ failureThreshold: 5, cooldown: "30 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Layer, Random, Schedule, Stream } from "effect"
import * as Pull from "effect/Pull"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import {
  attemptsOfFailure,
  observed,
  observedStream,
  prepend,
  type ReportCell,
  report
} from "../internal/attempts.ts"
import { LLM } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"

/**
 * Retry options. Every field is optional:
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `times` | `3` | retries after the first try (so at most `times + 1` tries) |
 * | `base` | `"100 millis"` | the first delay |
 * | `factor` | `2` | growth of the delay per retry |
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

interface Config<E> {
  readonly times: number
  readonly schedule: Schedule.Schedule<Duration.Duration, unknown>
  readonly respectRetryAfter: boolean
  readonly shouldRetry: (error: E) => boolean
}

const invalid = (option: string, value: unknown, expected: string): never => {
  throw new RangeError(`Retry: option "${option}" must be ${expected}, got ${String(value)}`)
}

const durationOption = (name: string, input: Duration.Input | undefined, fallback: Duration.Input) => {
  const duration = Duration.fromInput(input ?? fallback)
  if (duration._tag === "None" || !Duration.isFinite(duration.value) || Duration.toMillis(duration.value) < 0) {
    return invalid(name, input, "a finite, non-negative duration")
  }
  return duration.value
}

const jitterOf = (jitter: boolean | number | undefined): number => {
  if (jitter === undefined || jitter === true) return 0.2
  if (jitter === false) return 0
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) return invalid("jitter", jitter, "a number in [0, 1]")
  return jitter
}

/**
 * The delay schedule {@link layer} uses: exponential from `base` by `factor`,
 * each delay scaled by a random factor in `[1 - jitter, 1 + jitter]`, rounded
 * to whole milliseconds and then capped at `max`, for at most `times` recurrences. Usable on its own with
 * `Effect.retry`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = (options: Omit<Options<never>, "while" | "respectRetryAfter"> = {}): Schedule.Schedule<
  Duration.Duration,
  unknown
> => {
  const times = options.times ?? 3
  if (!Number.isInteger(times) || times < 0) invalid("times", times, "a non-negative integer")
  const factor = options.factor ?? 2
  if (!Number.isFinite(factor) || factor < 1) invalid("factor", factor, "a number >= 1")
  const base = durationOption("base", options.base, "100 millis")
  const maxMillis = Duration.toMillis(durationOption("max", options.max, "10 seconds"))
  const jitter = jitterOf(options.jitter)
  return Schedule.exponential(base, factor).pipe(
    Schedule.modifyDelay(({ duration }) => {
      const millis = Duration.toMillis(duration)
      if (jitter === 0) return Effect.succeed(Duration.millis(Math.min(millis, maxMillis)))
      return Effect.map(
        Random.next,
        (r) => Duration.millis(Math.round(Math.min(millis * (1 - jitter + 2 * jitter * r), maxMillis)))
      )
    }),
    Schedule.upTo({ times })
  )
}

const configOf = <E extends Retryable>(options: Options<E>): Config<E> => {
  const predicate = options.while
  return {
    times: options.times ?? 3,
    schedule: schedule(options),
    respectRetryAfter: options.respectRetryAfter ?? true,
    shouldRetry: predicate ?? ((error) => error.retryable === true)
  }
}

const hintOf = (error: Retryable): Duration.Duration | undefined =>
  error.retryAfter !== undefined && Duration.isDuration(error.retryAfter) ? error.retryAfter : undefined

/**
 * One retry series: decides after each failure whether to wait and try again
 * (returns after the wait) or give up (fails with the error). The schedule's
 * step is built at the first failure, so a call that succeeds first time
 * pays nothing for it.
 */
const makeSeries = <E extends Retryable>(config: Config<E>) => {
  let retries = 0
  let step: ((now: number, input: unknown) => Pull.Pull<readonly [Duration.Duration, Duration.Duration], unknown>) | undefined
  const decide = (error: E) =>
    Effect.gen(function*() {
      step ??= yield* Schedule.toStep(config.schedule)
      const now = yield* Clock.currentTimeMillis
      const next = yield* step(now, error).pipe(
        Effect.map((out): Duration.Duration | undefined => out[1]),
        Pull.catchDone(() => Effect.succeed(undefined)),
        Effect.orElseSucceed(() => undefined)
      )
      if (next === undefined) return yield* Effect.fail(error)
      const hint = config.respectRetryAfter ? hintOf(error) : undefined
      const delay = hint === undefined ? next : Duration.max(next, hint)
      const left = yield* Deadline.remaining
      if (left !== undefined && Duration.toMillis(delay) >= Duration.toMillis(left)) return yield* Effect.fail(error)
      retries++
      const delayMs = Duration.toMillis(delay)
      yield* Events.publish(() => ({
        _tag: "RetryScheduled",
        provider: error.provider ?? "unknown",
        model: error.model ?? "unknown",
        attempt: retries,
        delayMs,
        error: (error as { readonly _tag?: string })._tag ?? "unknown"
      }))
      yield* Telemetry.recordWait(delayMs)
      yield* Effect.sleep(delay)
    })
  return (error: E): Effect.Effect<void, E> =>
    retries >= config.times || !config.shouldRetry(error) ? Effect.fail(error) : decide(error)
}

/**
 * Retries any effect whose errors carry a `retryable` flag (or that a `while`
 * predicate accepts), with the same schedule, `Retry-After` and deadline rules
 * as {@link layer}. The error type is kept as it is.
 *
 * @example
 * ```ts
 * const text = Llm.generateText("hi").pipe(Retry.retry({ times: 2, base: "50 millis" }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry = <E extends Retryable = LlmError>(options: Options<E> = {}) => {
  const config = configOf(options)
  return <A, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const next = makeSeries(config)
      const loop: Effect.Effect<A, E, R> = Effect.catch(self, (error) => Effect.andThen(next(error), loop))
      return loop
    })
}

/**
 * Retries an `LLM` service's calls, recording every attempt on the response
 * (failed attempts first) and reporting them to an enclosing `Fallback` or
 * `Hedge` when it gives up.
 *
 * @since 0.1.0
 * @category combinators
 */
export const service = (options: Options = {}) => {
  const config = configOf(options)
  return (inner: LLM["Service"]): LLM["Service"] => {
    const giveUp = (failed: ReadonlyArray<Attempt>, error: LlmError) => Effect.andThen(report(failed), Effect.fail(error))

    // No span of its own: each try is already an `Llm.attempt` span of the leaf.
    const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
      Effect.withFiber((fiber) => {
        const clock = fiber.getRef(Clock.Clock)
        const failed: Array<Attempt> = []
        let next: ((error: LlmError) => Effect.Effect<void, LlmError>) | undefined
        const attempt = (): Effect.Effect<LlmResponse, LlmError> => {
          const start = clock.currentTimeMillisUnsafe()
          const { cell, effect } = observed(inner.generate(request))
          return Effect.matchEffect(effect, {
            onSuccess: (response) => Effect.succeed(prepend(response, failed)),
            onFailure: (error) => {
              failed.push(...attemptsOfFailure(cell, error, request, clock.currentTimeMillisUnsafe() - start))
              next ??= makeSeries(config)
              return Effect.flatMap(
                Effect.catch(next(error), (error) => giveUp(failed, error)),
                attempt
              )
            }
          })
        }
        return attempt()
      })

    const failure = (failed: Array<Attempt>, request: LlmRequest, cell: ReportCell, error: LlmError, start: number) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        failed.push(...attemptsOfFailure(cell, error, request, now - start))
      })

    const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
      Stream.suspend(() => {
        const next = makeSeries(config)
        const failed: Array<Attempt> = []
        let emitted = false
        const go = (): Stream.Stream<StreamPart, LlmError> =>
          Stream.unwrap(Effect.map(Clock.currentTimeMillis, (start) => {
            const { cell, stream } = observedStream(inner.stream(request))
            return stream.pipe(
              Stream.map((part): StreamPart => {
                emitted = true
                return part.type === "finish" ? { type: "finish", response: prepend(part.response, failed) } : part
              }),
              Stream.catch((error) =>
                Stream.unwrap(
                  Effect.andThen(
                    failure(failed, request, cell, error, start),
                    emitted
                      ? giveUp(failed, error)
                      : Effect.as(Effect.catch(next(error), (error) => giveUp(failed, error)), go())
                  )
                )
              )
            )
          }))
        return go()
      })

    return LLM.of({ generate, stream })
  }
}

/**
 * Retries the calls of the wrapped `LLM` layer (see the module docs for the
 * rules and where to put it in a stack).
 *
 * @example
 * ```ts
 * const Stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   Retry.layer({ times: 3, base: "200 millis", max: "5 seconds", jitter: 0.2 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => {
  const wrap = service(options)
  return <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> =>
    Layer.effect(LLM, Effect.map(LLM, wrap)).pipe(Layer.provide(self))
}
