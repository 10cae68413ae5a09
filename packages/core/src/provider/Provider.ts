/**
 * The provider machinery: what turns a provider package's raw calls into an
 * `LLM` leaf. A provider implements a {@link ProviderImplementation} (its
 * calls for one model, answers priced at 0, no attempts) and builds its
 * `model(name, defaults?, options?)` layer with {@link model}; {@link make}
 * gives every leaf the same guarantees: defaults filled, the request checked
 * before any network call, the deadline enforced, the answer checked for
 * sanity (DESIGN §8), a content-filter finish turned into `ContentFiltered`
 * unless asked otherwise, the usage priced, every attempt recorded (failed
 * and interrupted ones too), a stream that ends without `finish` failed, and
 * an `Llm.attempt` span with `AttemptStarted` / `AttemptFailed` events.
 *
 * @example
 * ```ts
 * import { Context, Effect, Stream } from "effect"
 * import { Provider } from "@switchboard/core/provider"
 *
 * class EchoClient extends Context.Service<EchoClient, {
 *   readonly provider: string
 *   readonly prefix: string
 * }>()("example/EchoClient") {}
 *
 * export const model = Provider.model(EchoClient, {
 *   generate: (client) => () => Effect.die(client.prefix),
 *   stream: (client) => () => Stream.die(client.prefix)
 * })
 * // model("echo-1") : Layer<LLM, never, EchoClient>
 * ```
 *
 * @since 0.1.0
 */
import type { NonEmptyReadonlyArray } from "effect/Array"
import { type Cause, Clock, Effect, Layer, Stream } from "effect"
import type * as Context from "effect/Context"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import { interruptCharge } from "../internal/attempts.ts"
import * as Streams from "../internal/streams.ts"
import { type AttemptObserver, AttemptObservers, LLM } from "../LLM.ts"
import { ContentFiltered, type LlmError, MalformedResponse, NetworkError } from "../LlmError.ts"
import { check, type Defaults, type LlmRequest, withDefaults } from "../LlmRequest.ts"
import { type Attempt, attemptOf, type LlmResponse, type StreamPart } from "../LlmResponse.ts"
import { CostLedger, type CostLedgerService } from "../money/CostLedger.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import * as Decode from "./Decode.ts"

/**
 * The version of the {@link ProviderImplementation} contract this core
 * speaks. A provider states the version it was written against; a change to
 * the contract bumps it, so an old provider is refused by the compiler
 * instead of misbehaving.
 *
 * @since 0.1.0
 * @category constants
 */
export const specVersion = 1 as const

/**
 * What a leaf does when a model stops for its content filter: `"fail"` (the
 * default) fails with `ContentFiltered { text }` so a `Fallback({ on })` can
 * act on it; `"return"` returns the answer with `finishReason:
 * "content-filter"`.
 *
 * @since 0.1.0
 * @category models
 */
export type ContentFilterPolicy = "fail" | "return"

/**
 * Per-model options of every provider's `model(name, defaults?, options?)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelOptions {
  /** Default `"fail"`; see {@link ContentFilterPolicy}. */
  readonly contentFilter?: ContentFilterPolicy | undefined
}

/**
 * What a provider implements: the raw calls for a model, with `costUsd` left
 * at 0 ({@link make} prices it) and `attempts` left empty.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProviderImplementation {
  /** The contract version the provider was written against (absent means 1). */
  readonly specVersion?: typeof specVersion | undefined
  /** The provider's name, as reported in responses and errors. */
  readonly provider: string
  /** The model used when a request names none. */
  readonly model: string
  readonly generate: (request: LlmRequest, model: string) => Effect.Effect<LlmResponse, LlmError>
  readonly stream: (request: LlmRequest, model: string) => Stream.Stream<StreamPart, LlmError>
  /** Fields filled in when a request leaves them out (a provider's `model(name, defaults)`). */
  readonly defaults?: Defaults | undefined
  /** Default `"fail"`. */
  readonly contentFilter?: ContentFilterPolicy | undefined
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
 * without one fails with `NetworkError` (cause `cut`) instead of ending clean.
 *
 * @since 0.1.0
 * @category combinators
 */
export const requireFinish = (origin: { readonly provider: string; readonly model: string }) =>
<E, R>(self: Stream.Stream<StreamPart, E, R>): Stream.Stream<StreamPart, E | NetworkError, R> =>
  Streams.guarded(() => {
    let finished = false
    return {
      open: () => self,
      each: (part) => {
        if (part.type === "finish") finished = true
      },
      end: () => finished ? undefined : unfinished(origin),
      close: () => Effect.void
    }
  })

const unfinished = (origin: { readonly provider: string; readonly model: string }) =>
  new NetworkError({ ...origin, cause: "cut", detail: "the stream ended before its finish part" })

/** Where a leaf's finished attempts go: the ledger and the call's observers. */
interface Sinks {
  readonly ledger: CostLedgerService
  readonly observers: ReadonlyArray<AttemptObserver>
}

/**
 * Tells the observers of each attempt, and records them in the ledger: the
 * ledger's effect, or `undefined` when there is none (nothing left to run).
 */
const settle = (sinks: Sinks, attempts: ReadonlyArray<Attempt>, request: LlmRequest): Effect.Effect<void> | undefined => {
  for (const attempt of attempts) for (const observer of sinks.observers) observer(attempt)
  return sinks.ledger.enabled
    ? Effect.forEach(attempts, (attempt) => sinks.ledger.record(attempt, request.metadata), { discard: true })
    : undefined
}

const outcomeOf = (cause: Cause.Cause<LlmError>): string => {
  for (const reason of cause.reasons) if (reason._tag === "Fail") return reason.error._tag
  return cause.reasons.some((reason) => reason._tag === "Interrupt") ? "Interrupted" : "Defect"
}

/**
 * Records an attempt that did not end in an answer: the billed one when the
 * provider answered but the answer was refused (insane, filtered), else an
 * unpriced one named after how it ended.
 */
const settleFailure = (
  sinks: Sinks,
  billed: Attempt | undefined,
  at: {
    readonly provider: string
    readonly model: string
    readonly clock: Clock.Clock
    readonly start: number
    /** Prices an interrupted attempt's prompt where a combinator asked for it (a Hedge's loser). */
    readonly charge: (attempt: Attempt, request: LlmRequest) => Effect.Effect<Attempt>
  },
  cause: Cause.Cause<LlmError>,
  request: LlmRequest
): Effect.Effect<void> =>
  Effect.suspend(() =>
    billed !== undefined
      ? settle(sinks, [billed], request) ?? Effect.void
      : Effect.flatMap(
        at.charge({
          provider: at.provider,
          model: at.model,
          outcome: outcomeOf(cause),
          latencyMs: at.clock.currentTimeMillisUnsafe() - at.start,
          costUsd: 0
        }, request),
        (attempt) => settle(sinks, [attempt], request) ?? Effect.void
      )
  )

/** Everything an attempt needs from its fiber's context, read once, synchronously. */
const contextOf = (fiber: { readonly getRef: <A>(ref: Context.Reference<A>) => A }) => {
  const ledger = fiber.getRef(CostLedger)
  const observers = fiber.getRef(AttemptObservers)
  const clock = fiber.getRef(Clock.Clock)
  return {
    pricing: fiber.getRef(Pricing),
    ledger,
    observers,
    bus: fiber.getRef(Events.LlmEvents),
    clock,
    start: clock.currentTimeMillisUnsafe(),
    sinks: { ledger, observers } satisfies Sinks
  }
}

/**
 * Checks a provider's answer and applies the content-filter policy: the
 * priced response, or the error it ends in together with the attempt that
 * was billed (priced from what can be trusted).
 */
const judge = (
  raw: LlmResponse,
  pricing: PricingService,
  filter: ContentFilterPolicy
): LlmResponse | { readonly error: LlmError; readonly billed: Attempt } => {
  const origin = { provider: raw.provider, model: raw.model }
  const problem = Decode.insane(raw)
  if (problem !== undefined) {
    const usage = Decode.trustedUsage(raw.usage)
    const { costUsd } = pricing.cost(raw.provider, raw.model, usage)
    return {
      error: new MalformedResponse({ ...origin, detail: problem }),
      billed: { ...origin, outcome: "MalformedResponse", latencyMs: raw.latencyMs, usage, costUsd, detail: problem }
    }
  }
  const response = priced(raw, pricing)
  if (filter === "fail" && response.finishReason === "content-filter") {
    const last = response.attempts[response.attempts.length - 1]!
    return {
      error: new ContentFiltered({
        ...origin,
        ...(response.text.length > 0 ? { text: response.text } : {}),
        detail: "the model stopped for its content filter"
      }),
      billed: { ...last, outcome: "ContentFiltered" }
    }
  }
  return response
}

const isJudged = (u: LlmResponse | { readonly error: LlmError }): u is { readonly error: LlmError; readonly billed: Attempt } =>
  "error" in u

/**
 * Builds an `LLM` service from a provider's raw calls (see the module
 * documentation for what it adds).
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
  const filter = impl.contentFilter ?? "fail"
  const fill = withDefaults(impl.defaults)
  const generate = (given: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
    const request = fill(given)
    const model = request.model ?? impl.model
    const problem = check(request, { provider, model })
    if (problem !== undefined) return Effect.fail(problem)
    return Effect.withFiber<LlmResponse, LlmError>((fiber) => {
      const { bus, clock, ledger, observers, pricing, sinks, start } = contextOf(fiber)
      const run = (): Effect.Effect<LlmResponse, LlmError> => {
        let billed: Attempt | undefined
        let call = Effect.flatMap(
          Deadline.forRequest(request, { provider, model })(impl.generate(request, model)),
          (raw) => {
            const judged = judge(raw, pricing, filter)
            if (!isJudged(judged)) return Effect.succeed(judged)
            billed = judged.billed
            return Effect.fail(judged.error)
          }
        )
        if (bus.enabled) {
          call = Effect.tapError(call, failedEvent(bus, clock, model, start))
        }
        if (!ledger.enabled && observers.length === 0) return call
        // Observers told in the finalizer itself: with no ledger, a success leaves no effect to run.
        return Effect.onExitPrimitive(call, (exit) =>
          exit._tag === "Success"
            ? settle(sinks, exit.value.attempts, request)
            : settleFailure(sinks, billed, { provider, model, clock, start, charge: interruptCharge(fiber) }, exit.cause, request))
      }
      return bus.enabled ? Effect.flatMap(bus.publish({ _tag: "AttemptStarted", provider, model }), run) : run()
    }).pipe(Telemetry.attempt(provider, model))
  }
  const stream = (given: LlmRequest): Stream.Stream<StreamPart, LlmError> => {
    const request = fill(given)
    const model = request.model ?? impl.model
    const origin = { provider, model }
    const problem = check(request, origin)
    if (problem !== undefined) return Stream.fail(problem)
    // One channel layer for the attempt (`Streams.guarded`): its start event, the finish part judged
    // and settled, a stream that ends without one failed as cut, and a failure's event and charge.
    return Streams.guarded<StreamPart, LlmError, never, LlmError, never>((fiber) => {
      const { bus, clock, ledger, observers, pricing, sinks, start } = contextOf(fiber)
      const silent = !ledger.enabled && observers.length === 0
      let recorded = false
      let finished = false
      let billed: Attempt | undefined
      const finishOf = (part: StreamPart): Effect.Effect<StreamPart, LlmError> => {
        if (part.type !== "finish") return Effect.succeed(part)
        const judged = judge(part.response, pricing, filter)
        if (isJudged(judged)) {
          billed = judged.billed
          return Effect.fail(judged.error)
        }
        if (recorded || silent) return Effect.succeed({ type: "finish", response: judged })
        recorded = true
        const finish: StreamPart = { type: "finish", response: judged }
        const recording = settle(sinks, judged.attempts, request)
        return recording === undefined ? Effect.succeed(finish) : Effect.as(recording, finish)
      }
      const parts = Deadline.forRequestStream(request, origin)(impl.stream(request, model))
      return {
        open: () => bus.enabled ? Effect.as(bus.publish({ _tag: "AttemptStarted", provider, model }), parts) : parts,
        // Per batch, not per part: the batches a provider hands over stay batches.
        batch: (batch) => {
          if (!batch.some((part) => part.type === "finish")) return Effect.succeed(batch)
          finished = true
          // One part out for each part in: the batch stays non-empty.
          return Effect.map(Effect.forEach(batch, finishOf), (out) => out as unknown as NonEmptyReadonlyArray<StreamPart>)
        },
        // A stream that ends without its finish part was cut (what `requireFinish` does, in the same pass).
        end: () => finished ? undefined : unfinished(origin),
        close: (exit) => {
          if (exit._tag === "Success") return Effect.void
          const failure = bus.enabled ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
          const event = failure !== undefined && failure._tag === "Fail"
            ? failedEvent(bus, clock, model, start)(failure.error)
            : Effect.void
          if (silent || recorded) return event
          return Effect.andThen(
            event,
            settleFailure(sinks, billed, { provider, model, clock, start, charge: interruptCharge(fiber) }, exit.cause, request)
          )
        }
      }
    }).pipe(Telemetry.attemptStream(provider, model))
  }
  return LLM.of({ generate, stream })
}

/**
 * What a provider gives {@link model} and {@link leaf}: how to build its two
 * calls from a client. The client names the provider (`client.provider`);
 * the model name, defaults, policies and spec version are filled in here.
 *
 * @since 0.1.0
 * @category models
 */
export interface Calls<S extends { readonly provider: string }> {
  readonly generate: (client: S) => ProviderImplementation["generate"]
  readonly stream: (client: S) => ProviderImplementation["stream"]
}

/**
 * Builds a provider's service constructor: given a client, a model name,
 * `defaults` and {@link ModelOptions}, the `LLM` service through {@link make}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const leaf = <S extends { readonly provider: string }>(calls: Calls<S>) =>
(client: S, name: string, defaults?: Defaults | undefined, options?: ModelOptions | undefined): LLM["Service"] =>
  make({
    specVersion,
    provider: client.provider,
    model: name,
    generate: calls.generate(client),
    stream: calls.stream(client),
    defaults,
    contentFilter: options?.contentFilter
  })

/**
 * Builds a provider's `model(name, defaults?, options?)`: a layer that reads
 * the provider's client from context and serves `name` through {@link make}.
 * `defaults` fill the fields a request leaves out; a request's own `model`
 * overrides `name`; `options.contentFilter` is the {@link ContentFilterPolicy}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const model = <I, S extends { readonly provider: string }>(client: Context.Key<I, S>, calls: Calls<S>) => {
  const build = leaf(calls)
  return (name: string, defaults?: Defaults | undefined, options?: ModelOptions | undefined): Layer.Layer<LLM, never, I> =>
    Layer.effect(LLM, Effect.map(client, (service) => build(service, name, defaults, options)))
}
