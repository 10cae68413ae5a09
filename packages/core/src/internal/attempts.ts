/**
 * Attempt bookkeeping shared by the resilience combinators (not exported from
 * the package).
 *
 * A successful call carries its attempts on `response.attempts`. A failed call
 * has only its error, so a combinator that wants to know every attempt a child
 * made before failing (a `Fallback` over a `Retry`, a `Retry` over a nested
 * `Fallback`) provides a fresh {@link AttemptReport} cell around that one child
 * call; the outermost combinator inside the child that gave up writes the
 * attempts it made into the cell. When nothing was written, the child was a
 * plain leaf (or a breaker that refused it) and its error stands for one
 * attempt.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, type Fiber, Stream } from "effect"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse } from "../LlmResponse.ts"

/** @internal */
export interface ReportCell {
  attempts: ReadonlyArray<Attempt> | undefined
}

/** @internal */
export const AttemptReport = Context.Reference<ReportCell | undefined>(
  "@switchboard/core/internal/AttemptReport",
  { defaultValue: () => undefined }
)

/** Reports the attempts of a call that is about to fail to the enclosing combinator, if any. @internal */
export const report = (attempts: ReadonlyArray<Attempt>): Effect.Effect<void> =>
  Effect.flatMap(AttemptReport, (cell) =>
    Effect.sync(() => {
      if (cell !== undefined) cell.attempts = attempts
    }))

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
  cell: ReportCell,
  error: LlmError,
  request: LlmRequest,
  latencyMs: number
): ReadonlyArray<Attempt> =>
  cell.attempts ??
    (error._tag === "AllProvidersFailed" && error.attempts.length > 0
      ? error.attempts
      : [failedAttempt(error, request, latencyMs)])

/** Runs one child call with a fresh report cell, returning the cell. @internal */
export const observed = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): { readonly cell: ReportCell; readonly effect: Effect.Effect<A, E, R> } => {
  const cell: ReportCell = { attempts: undefined }
  return { cell, effect: Effect.provideService(effect, AttemptReport, cell) }
}

/** The same for a stream. @internal */
export const observedStream = <A, E, R>(
  stream: Stream.Stream<A, E, R>
): { readonly cell: ReportCell; readonly stream: Stream.Stream<A, E, R> } => {
  const cell: ReportCell = { attempts: undefined }
  return { cell, stream: Stream.provideService(stream, AttemptReport, cell) }
}

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
  if (from.model !== undefined) learned.current = { provider: from.provider, model: from.model }
  else if (learned.current === undefined || learned.current.provider !== from.provider) {
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
