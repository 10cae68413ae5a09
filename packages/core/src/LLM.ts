/**
 * The `LLM` service: one tag every provider implements and every combinator
 * wraps. Programs call {@link generate}, {@link stream} or
 * {@link generateText}; which provider answers, with what retries, limits and
 * fallbacks, is decided by the layer provided — so tests swap in
 * {@link layerTest} and production wires a stack of combinators.
 *
 * Provider packages build their service with `Provider.make` (from
 * `@switchboard/core/provider`, also here as {@link make}), which gives every
 * leaf the same guarantees: the request is validated before any network call,
 * its `deadline` is enforced, the answer is checked for sanity and priced, a
 * stream that ends without its `finish` part fails, and each attempt gets a
 * span and events.
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, type Fiber, Layer, type Scope, Stream } from "effect"
import * as Deadline from "./Deadline.ts"
import * as Streams from "./internal/streams.ts"
import type { LlmError, Timeout } from "./LlmError.ts"
import type { LlmRequest } from "./LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "./LlmResponse.ts"
import * as Telemetry from "./telemetry/Telemetry.ts"

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

/** The `LLM` in the fiber's context (the accessors' types require it). */
const serviceOf = (fiber: Fiber.Fiber<unknown, unknown>): LLM["Service"] =>
  Context.getUnsafe(fiber.context as Context.Context<LLM>, LLM)

/**
 * Asks the `LLM` in context for a whole response. A request `deadline` bounds
 * the whole call, every retry and fallback included.
 *
 * @since 0.1.0
 * @category accessors
 */
export const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError, LLM> =>
  // One step: the service read from the fiber's context (`LLM.use` would be a second).
  Effect.withFiber((fiber) =>
    Deadline.forRequest(request)(Telemetry.callService(fiber, serviceOf(fiber)).generate(request))
  )

/**
 * Asks the `LLM` in context for a streamed response, ending in a `finish`
 * part.
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError, LLM> =>
  Streams.withFiber((fiber) =>
    Deadline.forRequestStream(request)(
      Telemetry.callService(fiber, serviceOf(fiber)).stream(request)
    )
  )

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
  Effect.updateService(self, AttemptObservers, (observers) => [...observers, observer])

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

// ---------------------------------------------------------------------------
// Provider leaves (the machinery lives in `provider/Provider.ts`)
// ---------------------------------------------------------------------------

export {
  /**
   * Builds an `LLM` service from a provider's raw calls: `Provider.make`
   * under the name callers used before the provider subpath existed.
   *
   * @since 0.1.0
   * @category constructors
   */
  make,
  /** @since 0.1.0 */
  type ProviderImplementation,
  /** @since 0.1.0 */
  requireFinish
} from "./provider/Provider.ts"

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

/**
 * A service that hands each call to the service `pick` chooses for it (by
 * tenant, by spend, an A/B split). `pick` runs once per call, when the call
 * runs, and may fail the call with an `LlmError`; a stream's parts then
 * come straight from the chosen service's stream, with no step of the
 * chooser's own on each pull.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const small = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "small" }] })
 *   const large = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o", steps: [{ text: "large" }] })
 *   const llm = Llm.choose((request) => Effect.succeed(request.metadata?.tenant === "pro" ? large.service : small.service))
 *   return yield* llm.generate({ messages: [{ role: "user", content: "hi" }], metadata: { tenant: "pro" } })
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const choose = (pick: (request: LlmRequest) => Effect.Effect<LLM["Service"], LlmError>): LLM["Service"] =>
  LLM.of({
    generate: (request) => Effect.flatMap(pick(request), (llm) => llm.generate(request)),
    stream: (request) => Streams.unwrapped(Effect.map(pick(request), (llm) => llm.stream(request)))
  })

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
