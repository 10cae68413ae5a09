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
 * - The loser is charged: a provider bills a prompt it received, so the
 *   interrupted loser's attempt carries its prompt's tokens, counted by the
 *   `Tokenizer` and priced by `Pricing`, marked `usage.estimated` — on the
 *   response's `attempts`, in the `CostLedger`, and to a `Budget` outside.
 * - `attempts` lists both: the loser's (outcome `"Interrupted"`, estimated
 *   prompt cost), or a failed side's attempts, before the winner's.
 * - `HedgeStarted` is published when the backup starts.
 * - Streams hedge on the time to the first part: the stream whose first part
 *   arrives first is the one the caller reads; the other is interrupted.
 *
 * Options are checked when the layer is built (`Hedge.after: expected a
 * finite duration ≥ 0 …` in `SwitchboardConfigError`).
 *
 * Order: hedge a whole provider stack, e.g. put `Hedge` outside each side's
 * `Retry` (`Hedge ─> Retry ─> provider`, with the backup given its own
 * `Retry`), and inside `Fallback` and `Budget` — a budget outside sees both
 * attempts' real cost.
 *
 * @since 0.1.0
 */
import { Clock, Context, type Duration, Effect, Exit, Fiber, Layer, Result, Schema, Scope, Stream } from "effect"
import * as Pull from "effect/Pull"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import {
  ChargeInterrupted,
  type ChildFailure,
  estimatedPromptAttempt,
  failWith,
  identityOf,
  isTraced,
  type Learned,
  learn,
  prepend,
  tryGenerate,
  tryStream
} from "../internal/attempts.ts"
import { DurationInput, millisOf, orThrow } from "../internal/optionSchemas.ts"
import { LLM, observeAttempts, observeAttemptsStream, transform } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"

/**
 * Hedge options.
 *
 * | option | meaning |
 * |---|---|
 * | `after` | how long the primary may take before the backup starts (`Duration.Input`, finite, ≥ 0) |
 * | `backup` | the `LLM` layer of the second attempt |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = never, R = never> {
  readonly after: Duration.Input
  readonly backup: Layer.Layer<LLM, E, R>
}

/**
 * The Schema of {@link Options}, decoded when the layer is built.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  after: DurationInput,
  backup: Schema.declare(
    (input: unknown): input is Layer.Layer<LLM, unknown, unknown> => Layer.isLayer(input),
    { expected: "an LLM layer" }
  )
})

const interruptedAttempt = (who: { readonly provider: string; readonly model: string }, latencyMs: number): Attempt => ({
  provider: who.provider,
  model: who.model,
  outcome: "Interrupted",
  latencyMs,
  costUsd: 0
})

/** One side of the race: its start, the attempts its leaves finished, and its fiber. */
interface Side<A> {
  readonly side: 0 | 1
  readonly start: number
  readonly finished: Array<Attempt>
  readonly fiber: Fiber.Fiber<Result.Result<A, ChildFailure>>
  /** A stream side's scope (its pull lives there). */
  readonly scope: Scope.Closeable | undefined
}

const closeScope = (side: Side<unknown>, exit: Exit.Exit<unknown>) =>
  side.scope === undefined ? Effect.void : Scope.close(side.scope, exit)

const hedged = (primary: LLM["Service"], backup: LLM["Service"], afterMs: number): LLM["Service"] => {
  const learned: readonly [Learned, Learned] = [{ current: undefined }, { current: undefined }]
  const who = (side: 0 | 1, request: LlmRequest) =>
    identityOf(learned[side], side === 0 ? "hedge-primary" : "hedge-backup", request)
  const started = (request: LlmRequest) =>
    Events.publish(() => ({ _tag: "HedgeStarted", ...who(0, request), afterMs }))
  const serviceOf = (side: 0 | 1) => side === 0 ? primary : backup

  /**
   * The loser's attempts: what its provider leaves recorded — the one cut
   * short charged its prompt by the leaf, one cut between retries charged
   * nothing, as billed — else (a side that is not a `Llm.make` leaf, or never
   * reported) one interrupted attempt estimated here.
   */
  const loserAttempts = (loser: Side<unknown>, request: LlmRequest) =>
    Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<ReadonlyArray<Attempt>> =>
      loser.finished.length > 0
        ? Effect.succeed([...loser.finished])
        : Effect.map(
          estimatedPromptAttempt(interruptedAttempt(who(loser.side, request), now - loser.start), request),
          (estimate) => [estimate]
        ))

  /** The shared shape of generate and stream: wait `after` for the primary, then race both. */
  const race = <A, B>(
    request: LlmRequest,
    launch: (side: 0 | 1) => Effect.Effect<Side<A>>,
    succeeded: (side: Side<A>, value: A, before: ReadonlyArray<Attempt>) => Effect.Effect<B>,
    cancel: (side: Side<A>) => Effect.Effect<void>,
    release: (side: Side<A>) => Effect.Effect<void>
  ): Effect.Effect<B, LlmError> =>
    Effect.gen(function*() {
      const failed = (side: Side<A>, failure: ChildFailure) => {
        learn(learned[side.side], failure.error)
        return failure.attempts
      }
      const p = yield* launch(0)
      const early = yield* Effect.raceFirst(Fiber.join(p.fiber), Effect.as(Effect.sleep(afterMs), undefined))
      if (early !== undefined) {
        if (Result.isSuccess(early)) return yield* succeeded(p, early.success, [])
        return yield* failWith(early.failure.error, failed(p, early.failure))
      }
      yield* started(request)
      const b = yield* launch(1)
      const [first, firstResult] = yield* Effect.raceFirst(
        Effect.map(Fiber.join(p.fiber), (r) => [p, r] as const),
        Effect.map(Fiber.join(b.fiber), (r) => [b, r] as const)
      )
      const other = first === p ? b : p
      if (Result.isSuccess(firstResult)) {
        yield* cancel(other)
        return yield* succeeded(first, firstResult.success, yield* loserAttempts(other, request))
      }
      const failedFirst = failed(first, firstResult.failure)
      yield* release(first)
      const second = yield* Fiber.join(other.fiber)
      if (Result.isSuccess(second)) return yield* succeeded(other, second.success, failedFirst)
      return yield* failWith(second.failure.error, [...failedFirst, ...failed(other, second.failure)])
    })

  const span = Effect.withSpan("Hedge.generate")
  const generateRace = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    race<LlmResponse, LlmResponse>(
      request,
      (side) =>
        Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const finished: Array<Attempt> = []
          const call = serviceOf(side).generate(request).pipe(
            observeAttempts((attempt) => void finished.push(attempt)),
            Effect.provideService(ChargeInterrupted, true)
          )
          const fiber = yield* Effect.forkChild(Effect.result(tryGenerate(call, request)))
          return { side, start, finished, fiber, scope: undefined }
        }),
      (side, response, before) =>
        Effect.sync(() => {
          learn(learned[side.side], response)
          return prepend(response, before)
        }),
      (side) => Fiber.interrupt(side.fiber),
      () => Effect.void
    )
  // The hedge's span only when a tracer is installed: without one it would go nowhere.
  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) =>
      isTraced(fiber) && !Telemetry.inTracedCall(fiber) ? span(generateRace(request)) : generateRace(request)
    )

  interface Head {
    readonly parts: ReadonlyArray<StreamPart>
    readonly rest: Stream.Stream<StreamPart, ChildFailure>
  }

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    Stream.unwrap(Effect.gen(function*() {
      const parent = yield* Effect.scope
      const output = (side: Side<Head>, head: Head, before: ReadonlyArray<Attempt>): Stream.Stream<StreamPart, LlmError> =>
        Stream.concat(Stream.fromArray(head.parts), head.rest).pipe(
          Stream.map((part): StreamPart => {
            if (part.type !== "finish") return part
            learn(learned[side.side], part.response)
            return { type: "finish", response: prepend(part.response, before) }
          }),
          Stream.catch((failure) =>
            Stream.fromEffect(failWith(failure.error, failure.attempts))
          )
        )
      return yield* race<Head, Stream.Stream<StreamPart, LlmError>>(
        request,
        (side) =>
          Effect.gen(function*() {
            const scope = yield* Scope.fork(parent)
            const start = yield* Clock.currentTimeMillis
            const finished: Array<Attempt> = []
            const parts = tryStream(
              serviceOf(side).stream(request).pipe(
                observeAttemptsStream((attempt) => void finished.push(attempt)),
                Stream.provideService(ChargeInterrupted, true)
              ),
              request
            )
            const pull = yield* Scope.provide(Stream.toPull(parts), scope)
            const first = pull.pipe(
              Effect.map((chunk): Head => ({ parts: chunk, rest: Stream.fromPull(Effect.succeed(pull)) })),
              Pull.catchDone(() => Effect.succeed<Head>({ parts: [], rest: Stream.empty })),
              Effect.result
            )
            const fiber = yield* Scope.provide(Effect.forkScoped(first), scope)
            return { side, start, finished, fiber, scope }
          }),
        (side, value, before) => Effect.succeed(output(side, value, before)),
        (side) =>
          Effect.andThen(Fiber.interrupt(side.fiber), closeScope(side, Exit.interrupt())),
        (side) => closeScope(side, Exit.void)
      )
    }))

  return LLM.of({ generate, stream })
}

/**
 * Hedges the `primary` service with the `backup` service after `after`
 * (see the module docs). A bad `after` throws `SwitchboardConfigError`
 * (prefer {@link layer}, which fails at build).
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap = (
  primary: LLM["Service"],
  options: { readonly after: Duration.Input; readonly backup: LLM["Service"] }
): LLM["Service"] => {
  orThrow(SwitchboardConfigError.decodeSync("Hedge", Schema.Struct({ after: DurationInput }), { after: options.after }))
  return hedged(primary, options.backup, millisOf(options.after))
}

/**
 * {@link wrap} under its wave-1 name and argument order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const service = (primary: LLM["Service"], backup: LLM["Service"], after: Duration.Input): LLM["Service"] =>
  wrap(primary, { after, backup })

/**
 * Checks `options` and builds the backup layer (in the scope of the layer
 * being built), returning the wrapper of a primary.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(
  options: Options<E, R>
): Effect.Effect<
  (primary: LLM["Service"]) => LLM["Service"],
  E | SwitchboardConfigError.SwitchboardConfigError,
  R | Scope.Scope
> =>
  Effect.gen(function*() {
    yield* SwitchboardConfigError.decode("Hedge", Options, options)
    const backup = Context.get(yield* Layer.build(options.backup), LLM)
    const afterMs = millisOf(options.after)
    return (primary: LLM["Service"]) => hedged(primary, backup, afterMs)
  })

/**
 * Hedges the wrapped `LLM` layer with `backup` after `after`. A bad option
 * fails the layer at build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Hedge, Llm } from "@switchboard/core"
 *
 * const Stack = Llm.layerTest([{ text: "primary" }]).pipe(
 *   Hedge.layer({ after: "2 seconds", backup: Llm.layerTest([{ text: "backup" }]) })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E = never, R = never>(options: Options<E, R>) => transform(make(options))
