/**
 * Hedged requests: when the primary has not answered after `after`, a second
 * attempt starts on `backup`; the first success wins and the other attempt is
 * interrupted — which cancels its HTTP call. This trades a little extra spend
 * for a much lower tail latency.
 *
 * - If the primary answers (success or failure) before `after`, that is the
 *   answer; the backup never starts (compose with `Fallback` to fail over).
 * - Once both run, a failure of one waits for the other; when both fail the
 *   call fails with the error of the one that failed last.
 * - `attempts` lists both: the loser as outcome `"Interrupted"` (its usage is
 *   unknown, so none is recorded, `costUsd: 0`), or a failed side's attempts,
 *   before the winner's.
 * - `HedgeStarted` is published when the backup starts.
 * - Streams hedge on the time to the first part: the stream whose first part
 *   arrives first is the one the caller reads; the other is interrupted.
 *
 * Order: hedge a whole provider stack, e.g. put `Hedge` outside each side's
 * `Retry` (`Hedge ─> Retry ─> provider`, with the backup given its own
 * `Retry`), and inside `Fallback` and `Budget` — a budget outside sees both
 * attempts' real cost.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Exit, Fiber, Layer, Result, Scope, Stream } from "effect"
import * as Pull from "effect/Pull"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import {
  attemptsOfFailure,
  identityOf,
  isTraced,
  type Learned,
  learn,
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
 * Hedge options.
 *
 * | option | meaning |
 * |---|---|
 * | `after` | how long the primary may take before the backup starts (`Duration.Input`) |
 * | `backup` | the `LLM` layer of the second attempt |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never, R = never> {
  readonly after: Duration.Input
  readonly backup: Layer.Layer<LLM, E, R>
}

const afterMillis = (after: Duration.Input): number => {
  const d = Duration.fromInput(after)
  if (d._tag === "None" || !Duration.isFinite(d.value) || Duration.toMillis(d.value) < 0) {
    throw new RangeError(`Hedge: option "after" must be a finite, non-negative duration, got ${String(after)}`)
  }
  return Duration.toMillis(d.value)
}

const interruptedAttempt = (who: { readonly provider: string; readonly model: string }, latencyMs: number): Attempt => ({
  provider: who.provider,
  model: who.model,
  outcome: "Interrupted",
  latencyMs,
  costUsd: 0
})

/**
 * Hedges `primary` with `backup` after `after` (see the module docs).
 *
 * @since 0.1.0
 * @category constructors
 */
export const service = (
  primary: LLM["Service"],
  backup: LLM["Service"],
  after: Duration.Input
): LLM["Service"] => {
  const afterMs = afterMillis(after)
  const learned: readonly [Learned, Learned] = [{ current: undefined }, { current: undefined }]
  const who = (side: 0 | 1, request: LlmRequest) =>
    identityOf(learned[side], side === 0 ? "hedge-primary" : "hedge-backup", request)
  const started = (request: LlmRequest) =>
    Events.publish(() => ({ _tag: "HedgeStarted", ...who(0, request), afterMs }))

  const span = Effect.withSpan("Hedge.generate")
  // The hedge's span only when a tracer is installed: without one it would go nowhere.
  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) => isTraced(fiber) && !Telemetry.inTracedCall(fiber) ? span(race(request)) : race(request))

  const race = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.gen(function*() {
      const launch = (side: 0 | 1) =>
        Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const { cell, effect } = observed((side === 0 ? primary : backup).generate(request))
          const fiber = yield* Effect.forkChild(Effect.result(effect))
          return { side, start, cell, fiber }
        })
      type Side = Effect.Success<ReturnType<typeof launch>>
      const failedOf = (side: Side, error: LlmError) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          learn(learned[side.side], error)
          return attemptsOfFailure(side.cell, error, request, now - side.start)
        })
      const p = yield* launch(0)
      const early = yield* Effect.raceFirst(
        Fiber.join(p.fiber),
        Effect.as(Effect.sleep(afterMs), undefined)
      )
      if (early !== undefined) {
        if (Result.isSuccess(early)) {
          learn(learned[0], early.success)
          return early.success
        }
        yield* report(yield* failedOf(p, early.failure))
        return yield* Effect.fail(early.failure)
      }
      yield* started(request)
      const b = yield* launch(1)
      const [first, firstResult] = yield* Effect.raceFirst(
        Effect.map(Fiber.join(p.fiber), (r) => [p, r] as const),
        Effect.map(Fiber.join(b.fiber), (r) => [b, r] as const)
      )
      const other = first === p ? b : p
      if (Result.isSuccess(firstResult)) {
        yield* Fiber.interrupt(other.fiber)
        const now = yield* Clock.currentTimeMillis
        learn(learned[first.side], firstResult.success)
        return prepend(firstResult.success, [interruptedAttempt(who(other.side, request), now - other.start)])
      }
      const failedFirst = yield* failedOf(first, firstResult.failure)
      const second = yield* Fiber.join(other.fiber)
      if (Result.isSuccess(second)) {
        learn(learned[other.side], second.success)
        return prepend(second.success, failedFirst)
      }
      const failedSecond = yield* failedOf(other, second.failure)
      yield* report([...failedFirst, ...failedSecond])
      return yield* Effect.fail(second.failure)
    })

  interface StreamSide {
    readonly side: 0 | 1
    readonly start: number
    readonly cell: ReportCell
    readonly scope: Scope.Closeable
    readonly pull: Pull.Pull<readonly [StreamPart, ...Array<StreamPart>], LlmError>
    readonly fiber: Fiber.Fiber<Result.Result<ReadonlyArray<StreamPart>, LlmError>>
  }

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    Stream.unwrap(Effect.gen(function*() {
      const parent = yield* Effect.scope
      const launch = (side: 0 | 1) =>
        Effect.gen(function*() {
          const scope = yield* Scope.fork(parent)
          const start = yield* Clock.currentTimeMillis
          const { cell, stream } = observedStream((side === 0 ? primary : backup).stream(request))
          const pull = yield* Scope.provide(Stream.toPull(stream), scope)
          const first = pull.pipe(
            Effect.map((chunk): ReadonlyArray<StreamPart> => chunk),
            Pull.catchDone(() => Effect.succeed<ReadonlyArray<StreamPart>>([])),
            Effect.result
          )
          const fiber = yield* Scope.provide(Effect.forkScoped(first), scope)
          return { side, start, cell, scope, pull, fiber } satisfies StreamSide
        })
      const failedOf = (side: StreamSide, error: LlmError) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          learn(learned[side.side], error)
          return attemptsOfFailure(side.cell, error, request, now - side.start)
        })
      const output = (side: StreamSide, head: ReadonlyArray<StreamPart>, before: ReadonlyArray<Attempt>) => {
        const rest = head.length === 0 ? Stream.empty : Stream.fromPull(Effect.succeed(side.pull))
        return Stream.concat(Stream.fromArray(head), rest).pipe(
          Stream.map((part): StreamPart => {
            if (part.type !== "finish") return part
            learn(learned[side.side], part.response)
            return { type: "finish", response: prepend(part.response, before) }
          })
        )
      }
      const p = yield* launch(0)
      const early = yield* Effect.raceFirst(Fiber.join(p.fiber), Effect.as(Effect.sleep(afterMs), undefined))
      if (early !== undefined) {
        if (Result.isSuccess(early)) return output(p, early.success, [])
        yield* report(yield* failedOf(p, early.failure))
        return yield* Effect.fail(early.failure)
      }
      yield* started(request)
      const b = yield* launch(1)
      const [first, firstResult] = yield* Effect.raceFirst(
        Effect.map(Fiber.join(p.fiber), (r) => [p, r] as const),
        Effect.map(Fiber.join(b.fiber), (r) => [b, r] as const)
      )
      const other = first === p ? b : p
      if (Result.isSuccess(firstResult)) {
        yield* Fiber.interrupt(other.fiber)
        yield* Scope.close(other.scope, Exit.interrupt())
        const now = yield* Clock.currentTimeMillis
        return output(first, firstResult.success, [interruptedAttempt(who(other.side, request), now - other.start)])
      }
      const failedFirst = yield* failedOf(first, firstResult.failure)
      yield* Scope.close(first.scope, Exit.void)
      const second = yield* Fiber.join(other.fiber)
      if (Result.isSuccess(second)) return output(other, second.success, failedFirst)
      const failedSecond = yield* failedOf(other, second.failure)
      yield* report([...failedFirst, ...failedSecond])
      return yield* Effect.fail(second.failure)
    }))

  return LLM.of({ generate, stream })
}

/**
 * Hedges the wrapped `LLM` layer with `backup` after `after`.
 *
 * @example
 * ```ts
 * const Stack = OpenAI.model("gpt-4o-mini").pipe(
 *   Hedge.layer({ after: "2 seconds", backup: Anthropic.model("claude-3-5-haiku-latest") })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E2, R2>(options: Options<E2, R2>) => {
  afterMillis(options.after)
  return <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | E2, R | R2> =>
    Layer.effect(
      LLM,
      Effect.gen(function*() {
        const primary = yield* LLM
        const backup = Context.get(yield* Layer.build(options.backup), LLM)
        return service(primary, backup, options.after)
      })
    ).pipe(Layer.provide(self))
}
