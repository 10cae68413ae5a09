/**
 * Attempt bookkeeping shared by the resilience combinators (not exported from
 * the package).
 *
 * A successful call carries its attempts on `response.attempts`. A failed call
 * has only its error, so a combinator that gives up after several attempts (a
 * `Retry` series, a `Fallback` chain) fails with {@link failWith}: the attempts
 * ride on the failure itself, as an annotation of its `Fail` reason, and the
 * enclosing combinator reads them where it handles that failure
 * ({@link matchChild}). A failure without them came from a plain leaf (or a
 * breaker that refused the call) and stands for one attempt. Nothing is set up
 * per call: a call that succeeds pays nothing for this, and the attempts follow
 * the failure across fibers as its cause does.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Effect, type Fiber, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import { type Attempt, type LlmResponse, makeUsage, type StreamPart } from "../LlmResponse.ts"
import { Pricing } from "../money/Pricing.ts"
import { Tokenizer } from "../prompt/Tokenizer.ts"
import * as Streams from "./streams.ts"

/** The annotation of a failure's `Fail` reason that holds the attempts behind it. */
const ReportedAttempts = Context.Service<ReadonlyArray<Attempt>>("@switchboard/core/internal/ReportedAttempts")

/**
 * Fails with `error`, reporting `attempts` (every attempt behind it) to the
 * enclosing combinator that handles the failure. @internal
 */
export const failWith = <E>(error: E, attempts: ReadonlyArray<Attempt>): Effect.Effect<never, E> =>
  Effect.failCause(Cause.annotate(Cause.fail(error), Context.make(ReportedAttempts, attempts)))

/** The attempts a failure's `Fail` reason was reported with, if any. @internal */
export const reportedIn = (reason: Cause.Fail<unknown>): ReadonlyArray<Attempt> | undefined =>
  reason.annotations.get(ReportedAttempts.key) as ReadonlyArray<Attempt> | undefined

/** What a child's failed call does next: a recoverable error goes to `onFailure`, anything else fails as it is. */
const onChildFailure = <E, C, E3, R3>(
  onFailure: (error: E, reported: ReadonlyArray<Attempt> | undefined) => Effect.Effect<C, E3, R3>
) =>
(cause: Cause.Cause<E>): Effect.Effect<C, E3, R3> => {
  const reason = Streams.recoverable(cause)
  return reason === undefined ? Effect.failCause(Streams.electDefects(cause)) : onFailure(reason.error, reportedIn(reason))
}

/**
 * `Effect.matchEffect` over one child call whose failure handler also gets
 * the attempts the failure was reported with ({@link failWith}), if any.
 * @internal
 */
export const matchChild = <A, E, R, B, E2, R2, C, E3, R3>(
  call: Effect.Effect<A, E, R>,
  options: {
    readonly onSuccess: (value: A) => Effect.Effect<B, E2, R2>
    readonly onFailure: (error: E, reported: ReadonlyArray<Attempt> | undefined) => Effect.Effect<C, E3, R3>
  }
): Effect.Effect<B | C, E2 | E3, R | R2 | R3> =>
  Effect.matchCauseEffect(call, { onSuccess: options.onSuccess, onFailure: onChildFailure(options.onFailure) })

/**
 * {@link matchChild} for a combinator that passes a success through as it
 * is: only a failure reaches `onFailure`, and a success takes no step here.
 * @internal
 */
export const catchChild = <A, E, R, C, E3, R3>(
  call: Effect.Effect<A, E, R>,
  onFailure: (error: E, reported: ReadonlyArray<Attempt> | undefined) => Effect.Effect<C, E3, R3>
): Effect.Effect<A | C, E3, R | R3> => Effect.catchCause(call, onChildFailure(onFailure))

/** The failed attempt an error stands for. @internal */
export const failedAttempt = (
  error: LlmError,
  request: LlmRequest,
  latencyMs: number
): Attempt => ({
  provider: error.provider,
  model: error.model ?? request.model ?? "unknown",
  outcome: error._tag,
  latencyMs,
  costUsd: 0,
  detail: error.message
})

/** The attempts behind a child's failure: what it reported, else what its error says. @internal */
export const attemptsOfFailure = (
  reported: ReadonlyArray<Attempt> | undefined,
  error: LlmError,
  request: LlmRequest,
  latencyMs: number
): ReadonlyArray<Attempt> =>
  reported ??
    (error._tag === "AllProvidersFailed" && error.attempts.length > 0
      ? error.attempts
      : [failedAttempt(error, request, latencyMs)])

/** Puts earlier failed attempts in front of a response's own. @internal */
export const prepend = (response: LlmResponse, before: ReadonlyArray<Attempt>): LlmResponse =>
  before.length === 0 ? response : { ...response, attempts: [...before, ...response.attempts] }

/** Milliseconds since `start` on the `Clock`. @internal */
export const since = (start: number): Effect.Effect<number> =>
  Effect.map(Clock.currentTimeMillis, (now) => now - start)

/** Who answered a child last time, so events and keys can name it before it answers again. @internal */
export interface Identity {
  readonly provider: string
  readonly model: string
}

/** A mutable memory of a child's identity, learned from its responses and errors. @internal */
export interface Learned {
  current: Identity | undefined
}

/** Records the identity a response or error reports. @internal */
export const learn = (learned: Learned, from: { readonly provider: string; readonly model?: string | undefined }) => {
  const current = learned.current
  if (from.model !== undefined) {
    // The same child answers as the same model call after call: nothing new to keep.
    if (current === undefined || current.provider !== from.provider || current.model !== from.model) {
      learned.current = { provider: from.provider, model: from.model }
    }
  } else if (learned.current === undefined || learned.current.provider !== from.provider) {
    learned.current = { provider: from.provider, model: "unknown" }
  }
}

/** A child's identity, or a stand-in naming its position when it never answered yet. @internal */
export const identityOf = (learned: Learned, fallbackName: string, request: LlmRequest): Identity =>
  learned.current ?? { provider: fallbackName, model: request.model ?? "unknown" }

/**
 * Whether spans made on this fiber go anywhere: a tracer was installed (and
 * tracing is on). Without one, a combinator's own span would only be built
 * and dropped, so combinators skip it. @internal
 */
export const isTraced = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.cache.tracer !== undefined && fiber.cache.tracerEnabled

// ---------------------------------------------------------------------------
// One child call, with every attempt it made when it failed (Fallback, Hedge)
// ---------------------------------------------------------------------------

/** A child call that failed: its error and every attempt it made. @internal */
export interface ChildFailure {
  readonly error: LlmError
  readonly attempts: ReadonlyArray<Attempt>
}

/**
 * Runs one child `generate` and, when it fails, collects the attempts behind
 * the failure (what the child reported, else what its error stands for, timed
 * from the start of this call). @internal
 */
export const tryGenerate = (
  call: Effect.Effect<LlmResponse, LlmError>,
  request: LlmRequest
): Effect.Effect<LlmResponse, ChildFailure> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeMillisUnsafe()
    return matchChild(call, {
      onSuccess: Effect.succeed,
      onFailure: (error, reported) =>
        Effect.fail<ChildFailure>({
          error,
          attempts: attemptsOfFailure(reported, error, request, clock.currentTimeMillisUnsafe() - start)
        })
    })
  })

/**
 * One try of a child's stream, as {@link tryStreamWith} runs it: `before`
 * it (an event), the child's `stream` (its `request`, for the attempt its
 * failure stands for), each part through `map` (`undefined` drops it) and
 * each batch through `batch`, and what follows a failure, given every
 * attempt behind it. @internal
 */
export interface StreamTry<E2> {
  readonly stream: Stream.Stream<StreamPart, LlmError>
  readonly request: LlmRequest
  readonly before?: Effect.Effect<void> | undefined
  readonly map?: ((part: StreamPart) => StreamPart | undefined) | undefined
  readonly batch?:
    | ((parts: NonEmptyReadonlyArray<StreamPart>) => Effect.Effect<NonEmptyReadonlyArray<StreamPart>>)
    | undefined
  readonly recover: (failure: ChildFailure) => Stream.Stream<StreamPart, E2>
}

/**
 * {@link tryGenerate} for a stream, in one channel layer: per run, `setup`
 * (given the running fiber) makes a {@link StreamTry}; its stream runs timed
 * from the start of the run, and a failure goes to `recover` with the
 * attempts behind it (the failed stream closed first).
 * @internal
 */
export const tryStreamWith = <E2>(
  setup: (fiber: Fiber.Fiber<unknown, unknown>) => StreamTry<E2>
): Stream.Stream<StreamPart, E2> =>
  Streams.recovering((fiber) => {
    const { batch, before, map, recover, request, stream } = setup(fiber)
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeMillisUnsafe()
    return {
      stream,
      before,
      map,
      batch,
      recover: (error: LlmError, reason: Cause.Fail<LlmError>) =>
        recover({
          error,
          attempts: attemptsOfFailure(reportedIn(reason), error, request, clock.currentTimeMillisUnsafe() - start)
        })
    }
  })

/** {@link tryStreamWith} of `parts` that fails with the {@link ChildFailure}. @internal */
export const tryStream = (
  parts: Stream.Stream<StreamPart, LlmError>,
  request: LlmRequest
): Stream.Stream<StreamPart, ChildFailure> => tryStreamWith(() => ({ stream: parts, request, recover: Stream.fail }))

// ---------------------------------------------------------------------------
// Charging an interrupted attempt (a hedge's loser)
// ---------------------------------------------------------------------------

/**
 * Set by `Hedge` around its sides: a provider leaf whose call under it is
 * interrupted (the hedge's loser) records the prompt it sent as spent — an
 * estimate from the token count, marked `usage.estimated` — instead of $0,
 * because a real provider bills a prompt it received. @internal
 */
export const ChargeInterrupted = Context.Reference<boolean>(
  "@switchboard/core/internal/ChargeInterrupted",
  { defaultValue: () => false }
)

/**
 * The prompt of `request` on `provider`/`model` as an estimated attempt:
 * input tokens counted by the `Tokenizer` in context, priced by `Pricing`.
 * @internal
 */
export const estimatedPromptAttempt = (
  base: Attempt,
  request: LlmRequest
): Effect.Effect<Attempt> =>
  Effect.withFiber((fiber) => estimateWith(fiber.getRef(Tokenizer), fiber.getRef(Pricing), base, request))

const estimateWith = (
  tokenizer: typeof Tokenizer.Service,
  pricing: typeof Pricing.Service,
  base: Attempt,
  request: LlmRequest
): Effect.Effect<Attempt> =>
  Effect.map(tokenizer.countRequest(request, { provider: base.provider, model: base.model }), (count) => {
    const usage = makeUsage({ inputTokens: count.tokens, estimated: true })
    return { ...base, usage, costUsd: pricing.cost(base.provider, base.model, usage).costUsd }
  })

/**
 * What a provider leaf calls on an attempt that did not finish: read the
 * context once when the attempt starts (`fiber`), then, for an
 * `"Interrupted"` attempt under {@link ChargeInterrupted}, the attempt with
 * its prompt estimated and priced; any other attempt as it is. @internal
 */
export const interruptCharge = (
  fiber: Fiber.Fiber<unknown, unknown>
): (attempt: Attempt, request: LlmRequest) => Effect.Effect<Attempt> => {
  if (!fiber.getRef(ChargeInterrupted)) return Effect.succeed
  const tokenizer = fiber.getRef(Tokenizer)
  const pricing = fiber.getRef(Pricing)
  return (attempt, request) =>
    attempt.outcome === "Interrupted" ? estimateWith(tokenizer, pricing, attempt, request) : Effect.succeed(attempt)
}
