/**
 * The `LLM` service: one tag every provider implements and every combinator
 * wraps. Programs call {@link generate}, {@link stream} or
 * {@link generateText}; which provider answers, with what retries, limits and
 * fallbacks, is decided by the layer provided — so tests swap in
 * {@link layerTest} and production wires a stack of combinators.
 *
 * Provider packages build their service with {@link make}, which gives every
 * leaf the same guarantees: the request is validated before any network call,
 * its `deadline` is enforced, cost is priced from the catalog, a stream that
 * ends without its `finish` part fails, and each attempt gets a span and
 * events.
 *
 * @since 0.1.0
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import { type Cause, Clock, Context, Duration, Effect, Layer, References, type Scope, Stream, Tracer } from "effect"
import { CostLedger, type CostLedgerService } from "./money/CostLedger.ts"
import * as Deadline from "./Deadline.ts"
import * as Events from "./Events.ts"
import { interruptCharge } from "./internal/attempts.ts"
import { type LlmError, NetworkError, type Timeout } from "./LlmError.ts"
import { check, type Defaults, type LlmRequest, withDefaults } from "./LlmRequest.ts"
import { type Attempt, attemptOf, type LlmResponse, type StreamPart } from "./LlmResponse.ts"
import { Pricing, type PricingService } from "./money/Pricing.ts"

/**
 * The service tag: any provider, or any stack of combinators over providers.
 *
 * @since 0.1.0
 * @category services
 */
export class LLM extends Context.Service<LLM, {
  readonly generate: (request: LlmRequest) => Effect.Effect<LlmResponse, LlmError>
  readonly stream: (request: LlmRequest) => Stream.Stream<StreamPart, LlmError>
}>()("@switchboard/core/LLM") {}

/**
 * Asks the `LLM` in context for a whole response. A request `deadline` bounds
 * the whole call, every retry and fallback included.
 *
 * @since 0.1.0
 * @category accessors
 */
export const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError, LLM> =>
  LLM.use((llm) => Deadline.forRequest(request)(llm.generate(request)))

/**
 * Asks the `LLM` in context for a streamed response, ending in a `finish`
 * part.
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError, LLM> =>
  Stream.unwrap(LLM.useSync((llm) => Deadline.forRequestStream(request)(llm.stream(request))))

/**
 * Sends one user message and returns the text of the answer.
 *
 * @since 0.1.0
 * @category accessors
 */
export const generateText = (prompt: string): Effect.Effect<string, LlmError, LLM> =>
  Effect.map(generate({ messages: [{ role: "user", content: prompt }] }), (response) => response.text)

/**
 * Bounds an effect (a call, or a whole program of calls) by `duration`; every
 * layer underneath sees the time left. Expiry fails with `Timeout`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withDeadline = (duration: Duration.Input) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Timeout, R> => Deadline.within(duration)(self)

/**
 * What a provider implements for {@link make}: the raw call for a model, with
 * `costUsd` left at 0 (make prices it) and `attempts` left empty.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderImplementation {
  /** The provider's name, as reported in responses and errors. */
  readonly provider: string
  /** The model used when a request names none. */
  readonly model: string
  readonly generate: (request: LlmRequest, model: string) => Effect.Effect<LlmResponse, LlmError>
  readonly stream: (request: LlmRequest, model: string) => Stream.Stream<StreamPart, LlmError>
  /** Fields filled in when a request leaves them out (a provider's `model(name, defaults)`). */
  readonly defaults?: Defaults | undefined
}

const priced = (response: LlmResponse, pricing: PricingService): LlmResponse => {
  const { costUsd, priceUnknown } = pricing.cost(response.provider, response.model, response.usage)
  const attempts = response.attempts.length === 0
    ? [attemptOf({ provider: response.provider, model: response.model, latencyMs: response.latencyMs, usage: response.usage, costUsd })]
    : response.attempts
  return priceUnknown ? { ...response, costUsd, priceUnknown, attempts } : { ...response, costUsd, attempts }
}

/**
 * Ensures a stream ends with its `finish` part: a stream that completes
 * without one fails with `NetworkError` instead of ending clean.
 *
 * @since 0.1.0
 * @category combinators
 */
export const requireFinish = (origin: { readonly provider: string; readonly model: string }) =>
<E, R>(self: Stream.Stream<StreamPart, E, R>): Stream.Stream<StreamPart, E | NetworkError, R> =>
  Stream.suspend(() => {
    let finished = false
    return self.pipe(
      // Per array, not per part: a provider that hands over a batch of parts keeps it one batch.
      Stream.mapArray((parts) => {
        if (!finished) for (const part of parts) if (part.type === "finish") finished = true
        return parts
      }),
      Stream.concat(Stream.suspend(() =>
        finished
          ? Stream.empty
          : Stream.fail(new NetworkError({ ...origin, detail: "the stream ended before its finish part" }))
      ))
    )
  })

/**
 * Something told of every attempt a provider leaf finishes (priced, failed or
 * interrupted) within the calls it wraps.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptObserver = (attempt: Attempt) => void

/**
 * The observers of the current call, outermost first. Leaves built with
 * {@link make} tell each of them about every attempt they finish — also when
 * the response never reaches the caller (a deadline that fired after the
 * provider answered, a hedge's loser). A budget settles from them, so money
 * spent is never released as if it were not.
 *
 * @since 0.1.0
 * @category references
 */
export const AttemptObservers = Context.Reference<ReadonlyArray<AttemptObserver>>(
  "@switchboard/core/LLM/AttemptObservers",
  { defaultValue: () => [] }
)

/**
 * Runs an effect with `observer` told of every attempt the provider leaves
 * under it finish.
 *
 * @since 0.1.0
 * @category combinators
 */
export const observeAttempts = (observer: AttemptObserver) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(AttemptObservers, (observers) => Effect.provideService(self, AttemptObservers, [...observers, observer]))

/**
 * {@link observeAttempts} for a stream.
 *
 * @since 0.1.0
 * @category combinators
 */
export const observeAttemptsStream = (observer: AttemptObserver) =>
<A, E, R>(self: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.unwrap(
    Effect.map(AttemptObservers, (observers) => Stream.provideService(self, AttemptObservers, [...observers, observer]))
  )

/** Where a leaf's finished attempts go: the ledger and the call's observers. */
interface Sinks {
  readonly ledger: CostLedgerService
  readonly observers: ReadonlyArray<AttemptObserver>
}

const settle = (sinks: Sinks, attempts: ReadonlyArray<Attempt>, request: LlmRequest): Effect.Effect<void> => {
  for (const attempt of attempts) for (const observer of sinks.observers) observer(attempt)
  return sinks.ledger.enabled
    ? Effect.forEach(attempts, (attempt) => sinks.ledger.record(attempt, request.metadata), { discard: true })
    : Effect.void
}

const outcomeOf = (cause: Cause.Cause<LlmError>): string => {
  for (const reason of cause.reasons) if (reason._tag === "Fail") return reason.error._tag
  return cause.reasons.some((reason) => reason._tag === "Interrupt") ? "Interrupted" : "Defect"
}

const unfinished = (provider: string, model: string, outcome: string, latencyMs: number): Attempt => ({
  provider,
  model,
  outcome,
  latencyMs,
  costUsd: 0
})

/**
 * Builds an `LLM` service from a provider's raw calls, adding what every leaf
 * must do: fill the model's `defaults` into the request, validate it (`InvalidRequest` before any network call),
 * enforce its `deadline`, price the usage, record the attempt, fail a stream
 * that ends without `finish`, publish `AttemptStarted` / `AttemptFailed`,
 * record every attempt — failed, interrupted and partial ones included — in
 * the `CostLedger` in context and tell the call's {@link AttemptObservers},
 * and trace each attempt as an `Llm.attempt` span.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: ProviderImplementation): LLM["Service"] => {
  /** Publishes `AttemptFailed` for an attempt that started at `start`. */
  const failedEvent = (bus: Events.EventBus, clock: Clock.Clock, model: string, start: number) => (error: LlmError) =>
    Effect.suspend(() =>
      bus.publish({
        _tag: "AttemptFailed",
        provider: impl.provider,
        model,
        error: error._tag,
        latencyMs: clock.currentTimeMillisUnsafe() - start
      })
    )
  const { provider } = impl
  // One `Llm.attempt` span per model, built once. It is `Effect.withSpan`
  // without its per-call costs: the stack trace that locates the span is
  // captured when it is built (not on every call), and the span and its stack
  // frame enter the context in one change instead of two.
  const spans = new Map<string, <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>>()
  const attemptSpan = (model: string) => {
    let span = spans.get(model)
    if (span === undefined) {
      const options = { attributes: { "llm.provider": provider, "llm.model": model } }
      const trace = new Error()
      let where: string | undefined
      const stack = () => where ??= trace.stack?.split("\n")[2]?.trim()
      span = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
        Effect.useSpan("Llm.attempt", options, (span) =>
          Effect.updateContext(self, (context: Context.Context<R>) =>
            Context.add(
              Context.add(context, Tracer.ParentSpan, span),
              References.CurrentStackFrame,
              { name: "Llm.attempt", stack, parent: Context.get(context, References.CurrentStackFrame) }
            )))
      if (spans.size < 256) spans.set(model, span)
    }
    return span
  }
  const fill = withDefaults(impl.defaults)
  const generate = (given: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
    const request = fill(given)
    const model = request.model ?? impl.model
    const problem = check(request, { provider, model })
    if (problem !== undefined) return Effect.fail(problem)
    return attemptSpan(model)(Effect.withFiber((fiber) => {
      // Everything the attempt needs from its context, read once, synchronously.
      const pricing = fiber.getRef(Pricing)
      const ledger = fiber.getRef(CostLedger)
      const observers = fiber.getRef(AttemptObservers)
      const bus = fiber.getRef(Events.LlmEvents)
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeMillisUnsafe()
      const run = (): Effect.Effect<LlmResponse, LlmError> => {
        let call = Effect.map(
          Deadline.forRequest(request, { provider, model })(impl.generate(request, model)),
          (response) => priced(response, pricing)
        )
        if (bus.enabled) {
          call = Effect.tapError(call, failedEvent(bus, clock, model, start))
        }
        if (!ledger.enabled && observers.length === 0) return call
        const sinks: Sinks = { ledger, observers }
        const charge = interruptCharge(fiber)
        return Effect.onExit(call, (exit) =>
          exit._tag === "Success"
            ? settle(sinks, exit.value.attempts, request)
            : Effect.suspend(() =>
              Effect.flatMap(
                charge(unfinished(provider, model, outcomeOf(exit.cause), clock.currentTimeMillisUnsafe() - start), request),
                (attempt) => settle(sinks, [attempt], request)
              )
            ))
      }
      return bus.enabled ? Effect.flatMap(bus.publish({ _tag: "AttemptStarted", provider, model }), run) : run()
    }))
  }
  const stream = (given: LlmRequest): Stream.Stream<StreamPart, LlmError> => {
    const request = fill(given)
    const model = request.model ?? impl.model
    const problem = check(request, { provider, model })
    if (problem !== undefined) return Stream.fail(problem)
    return Stream.unwrap(Effect.withFiber((fiber) => {
      const pricing = fiber.getRef(Pricing)
      const ledger = fiber.getRef(CostLedger)
      const observers = fiber.getRef(AttemptObservers)
      const bus = fiber.getRef(Events.LlmEvents)
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeMillisUnsafe()
      const build = (): Stream.Stream<StreamPart, LlmError> => {
        const sinks: Sinks = { ledger, observers }
        let recorded = !ledger.enabled && observers.length === 0
        // Per array, not per part: the batches a provider hands over stay batches.
        const finishOf = (part: StreamPart): Effect.Effect<StreamPart> => {
          if (part.type !== "finish") return Effect.succeed(part)
          const response = priced(part.response, pricing)
          if (recorded) return Effect.succeed({ type: "finish", response })
          recorded = true
          return Effect.as(settle(sinks, response.attempts, request), { type: "finish", response })
        }
        let parts = impl.stream(request, model).pipe(
          Stream.mapArrayEffect((batch): Effect.Effect<NonEmptyReadonlyArray<StreamPart>> => {
            if (!batch.some((part) => part.type === "finish")) return Effect.succeed(batch)
            // One part out for each part in: the batch stays non-empty.
            return Effect.forEach(batch, finishOf) as unknown as Effect.Effect<NonEmptyReadonlyArray<StreamPart>>
          }),
          requireFinish({ provider, model }),
          Deadline.forRequestStream(request, { provider, model })
        )
        if (bus.enabled) {
          parts = Stream.tapError(parts, failedEvent(bus, clock, model, start))
        }
        if (recorded) return parts
        const charge = interruptCharge(fiber)
        return parts.pipe(
          Stream.onExit((exit) =>
            recorded || exit._tag === "Success"
              ? Effect.void
              : Effect.suspend(() =>
                Effect.flatMap(
                  charge(unfinished(provider, model, outcomeOf(exit.cause), clock.currentTimeMillisUnsafe() - start), request),
                  (attempt) => settle(sinks, [attempt], request)
                )
              )
          )
        )
      }
      return bus.enabled
        ? Effect.map(bus.publish({ _tag: "AttemptStarted", provider, model }), build)
        : Effect.sync(build)
    }))
  }
  return LLM.of({ generate, stream })
}

// ---------------------------------------------------------------------------
// Combinators
// ---------------------------------------------------------------------------

/**
 * The one way a combinator becomes a layer: lifts a function over the
 * service (`LLM["Service"] → LLM["Service"]`) into a function over layers
 * (`Layer<LLM> → Layer<LLM>`). The wrapper may be an `Effect` that builds it
 * (reading options, creating state); its errors and requirements join the
 * layer's.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { LLM, Llm } from "@switchboard/core"
 *
 * const shout = Llm.transform((llm: LLM["Service"]) =>
 *   LLM.of({
 *     generate: (request) => Effect.map(llm.generate(request), (r) => ({ ...r, text: r.text.toUpperCase() })),
 *     stream: llm.stream
 *   })
 * )
 * const layer: Layer.Layer<LLM> = shout(Llm.layerTest([{ text: "hi" }]))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const transform = <E2 = never, R2 = never>(
  wrap: ((llm: LLM["Service"]) => LLM["Service"]) | Effect.Effect<(llm: LLM["Service"]) => LLM["Service"], E2, R2>
) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | E2, R | Exclude<R2, Scope.Scope>> =>
  Layer.effect(
    LLM,
    Effect.isEffect(wrap) ? Effect.flatMap(wrap, (f) => Effect.map(LLM, f)) : Effect.map(LLM, wrap)
  ).pipe(Layer.provide(self))

// ---------------------------------------------------------------------------
// Test layer (in LlmTest.ts; re-exported here under the names callers use)
// ---------------------------------------------------------------------------

export {
  /** @since 0.1.0 */
  layerTest,
  /** @since 0.1.0 */
  LlmTest,
  /** @since 0.1.0 */
  makeTest,
  /** @since 0.1.0 */
  type TestLlm,
  /** @since 0.1.0 */
  type TestScript,
  /** @since 0.1.0 */
  type TestStep
} from "./LlmTest.ts"

// ---------------------------------------------------------------------------
// effect/ai interop (in interop/LanguageModel.ts; re-exported under the names of DESIGN §7)
// ---------------------------------------------------------------------------

export {
  /** @since 0.1.0 */
  fromLanguageModel,
  /** @since 0.1.0 */
  toLanguageModel
} from "./interop/LanguageModel.ts"

/** @since 0.1.0 */
export { generateAll } from "./routing/Batch.ts"
