/**
 * One time bound for a whole call. A deadline is an absolute instant on the
 * `Clock`, carried in a fiber-local reference, so every layer below — retry,
 * fallback, hedge, the provider's SDK timeout — sees how much time is left
 * and no inner bound can outlive an outer one. Expiry fails with `Timeout`
 * at the deadline: the call is interrupted then, and winds down in the
 * background rather than on the caller's time.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Exit, Fiber, Option, Schema, Stream } from "effect"
import { dual } from "effect/Function"
import { DurationInput } from "./internal/optionSchemas.ts"
import { LLM, transform } from "./LLM.ts"
import { Timeout } from "./LlmError.ts"
import { deadlineOf, type LlmRequest } from "./LlmRequest.ts"
import * as SwitchboardConfigError from "./SwitchboardConfigError.ts"

/**
 * The current deadline as epoch milliseconds, or `undefined` for none.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentDeadline = Context.Reference<number | undefined>("@switchboard/core/Deadline/CurrentDeadline", {
  defaultValue: () => undefined
})

/**
 * Time left before the current deadline (zero once passed), or `undefined`
 * when the call has no deadline.
 *
 * @since 0.1.0
 * @category accessors
 */
export const remaining: Effect.Effect<Duration.Duration | undefined> = Effect.withFiber((fiber) => {
  const deadline = fiber.getRef(CurrentDeadline)
  if (deadline === undefined) return Effect.succeed(undefined)
  const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
  return Effect.succeed(Duration.millis(Math.max(0, deadline - now)))
})

/**
 * The timeout a provider hands its SDK for a call at `now` (epoch ms): the
 * client's own `clientMs`, or the time left before `deadline` when that is
 * sooner, in whole milliseconds and at least 1 (several SDKs read 0 as "no
 * timeout"); `undefined` when there is neither.
 *
 * @example
 * ```ts
 * import { Deadline } from "@switchboard/core"
 *
 * Deadline.sdkTimeout(600_000, 1_000_250, 1_000_000) // 250: the deadline is sooner
 * Deadline.sdkTimeout(600_000, undefined, 1_000_000) // 600_000: the client's own
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const sdkTimeout: {
  (clientMs: number, deadline: number | undefined, now: number): number
  (clientMs: number | undefined, deadline: number | undefined, now: number): number | undefined
} = (clientMs: number | undefined, deadline: number | undefined, now: number): number => {
  const left = deadline === undefined ? undefined : Math.max(0, deadline - now)
  const ms = clientMs === undefined ? left : left === undefined ? clientMs : Math.min(clientMs, left)
  return (ms === undefined || !Number.isFinite(ms) ? undefined : Math.max(1, Math.ceil(ms))) as number
}

interface Origin {
  readonly provider?: string | undefined
  readonly model?: string | undefined
}

const bound = (duration: Duration.Duration) =>
  Effect.withFiber((fiber) => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    const outer = fiber.getRef(CurrentDeadline)
    const own = now + Duration.toMillis(duration)
    const end = outer === undefined ? own : Math.min(outer, own)
    return Effect.succeed({ end, left: Math.max(0, end - now) })
  })

/**
 * Bounds an effect by `duration` from now (or by an enclosing deadline, if
 * sooner). On expiry the effect is interrupted and fails with `Timeout`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const within = (duration: Duration.Input, origin?: Origin) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Timeout, R> => {
  const total = Duration.fromInputUnsafe(duration)
  return Effect.flatMap(bound(total), ({ end, left }) =>
    expireAt(
      Effect.provideService(self, CurrentDeadline, end),
      left,
      () => new Timeout({ provider: origin?.provider ?? "switchboard", model: origin?.model, after: total })
    ))
}

/**
 * Runs `self` for at most `left` ms. On expiry it fails with the error at
 * once and interrupts `self` without waiting for it to wind down: under CPU
 * contention an interruption (aborting a request, closing a stream, settling
 * the combinators above it) takes several turns of a slow event loop, and
 * the caller's deadline must not pay for them.
 */
const expireAt = <A, E, R, E2>(self: Effect.Effect<A, E, R>, left: number, error: () => E2): Effect.Effect<A, E | E2, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(
      Effect.forkDetach(restore(self), { startImmediately: true }),
      (fiber: Fiber.Fiber<A, E>): Effect.Effect<A, E | E2, R> =>
        restore(
          Effect.raceFirst(
            Effect.map(Fiber.await(fiber), Option.some),
            Effect.as(Effect.sleep(left), Option.none<Exit.Exit<A, E>>())
          )
        ).pipe(
          Effect.onExit((exit) => {
            // Interrupted from outside, or expired: the work is interrupted, not awaited.
            if (exit._tag === "Failure" || exit.value._tag === "None") fiber.interruptUnsafe()
            return Effect.void
          }),
          Effect.flatMap((done): Effect.Effect<A, E | E2> => done._tag === "Some" ? done.value : Effect.fail(error()))
        )
    )
  )

/**
 * Bounds a whole stream by `duration` from now (or an enclosing deadline): on
 * expiry the stream fails with `Timeout`, wherever it is.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withinStream = (duration: Duration.Input, origin?: Origin) =>
<A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | Timeout, R> => {
  const total = Duration.fromInputUnsafe(duration)
  return Stream.unwrap(Effect.map(bound(total), ({ end, left }) =>
    self.pipe(
      Stream.provideService(CurrentDeadline, end),
      Stream.interruptWhen(
        Effect.flatMap(
          Effect.sleep(left),
          () =>
            Effect.fail(
              new Timeout({ provider: origin?.provider ?? "switchboard", model: origin?.model, after: total })
            )
        )
      )
    )))
}

/**
 * Applies a request's own `deadline` field, if it has one.
 *
 * @since 0.1.0
 * @category combinators
 */
export const forRequest = (request: LlmRequest, origin?: Origin) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Timeout, R> => {
  const deadline = deadlineOf(request)
  return deadline === undefined ? self : within(deadline, origin)(self)
}

/**
 * Applies a request's own `deadline` field to a stream, if it has one.
 *
 * @since 0.1.0
 * @category combinators
 */
export const forRequestStream = (request: LlmRequest, origin?: Origin) =>
<A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E | Timeout, R> => {
  const deadline = deadlineOf(request)
  return deadline === undefined ? self : withinStream(deadline, origin)(self)
}

/**
 * The Schema of {@link layer}'s argument: a finite `Duration.Input` ≥ 0,
 * reported as `Deadline.duration`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({ duration: DurationInput })

const bounded = (inner: LLM["Service"], duration: Duration.Input): LLM["Service"] =>
  LLM.of({
    generate: (request) => within(duration)(inner.generate(request)),
    stream: (request) => withinStream(duration)(inner.stream(request))
  })

/**
 * Gives every call of an `LLM` service a deadline of `duration` (a
 * request's own, shorter `deadline` still wins). Data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap: {
  (duration: Duration.Input): (self: LLM["Service"]) => LLM["Service"]
  (self: LLM["Service"], duration: Duration.Input): LLM["Service"]
} = dual(2, bounded)

/**
 * Checks `duration` and builds the wrapper; a bad one fails with
 * `SwitchboardConfigError { path: "Deadline.duration" }`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  duration: Duration.Input
): Effect.Effect<(llm: LLM["Service"]) => LLM["Service"], SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.map(SwitchboardConfigError.decode("Deadline", Options, { duration }), () => wrap(duration))

/**
 * A layer transformer that gives every call through it a deadline of
 * `duration` (a request's own, shorter `deadline` still wins). A bad
 * duration fails the layer at build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Deadline, Llm } from "@switchboard/core"
 *
 * const Stack = Llm.layerTest([{ text: "hi" }]).pipe(Deadline.layer("30 seconds"))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (duration: Duration.Input) => transform(make(duration))
