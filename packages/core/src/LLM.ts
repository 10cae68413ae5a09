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
import { type Cause, Clock, Context, Duration, Effect, Layer, References, Stream, Tracer } from "effect"
import { CostLedger, type CostLedgerService } from "./CostLedger.ts"
import * as Deadline from "./Deadline.ts"
import * as Events from "./Events.ts"
import { type LlmError, NetworkError, type Timeout } from "./LlmError.ts"
import { check, type Defaults, type LlmRequest, type ToolCallPart, withDefaults } from "./LlmRequest.ts"
import {
  type Attempt,
  attemptOf,
  type FinishReason,
  type LlmResponse,
  makeUsage,
  type StreamPart,
  type Usage
} from "./LlmResponse.ts"
import { Pricing, type PricingService } from "./Pricing.ts"

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
        return Effect.onExit(call, (exit) =>
          exit._tag === "Success"
            ? settle(sinks, exit.value.attempts, request)
            : Effect.suspend(() =>
              settle(
                sinks,
                [unfinished(provider, model, outcomeOf(exit.cause), clock.currentTimeMillisUnsafe() - start)],
                request
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
        return parts.pipe(
          Stream.onExit((exit) =>
            recorded || exit._tag === "Success"
              ? Effect.void
              : Effect.suspend(() =>
                settle(
                  sinks,
                  [unfinished(provider, model, outcomeOf(exit.cause), clock.currentTimeMillisUnsafe() - start)],
                  request
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
// Test layer
// ---------------------------------------------------------------------------

/**
 * One scripted answer of {@link layerTest}.
 *
 * - `{ text }`: a reply. Streamed as `chunks` (default: the whole text in one
 *   delta), each after `chunkDelay`, then a `finish` part.
 * - `{ error }`: a failure; when streamed, `chunks` are emitted first.
 * - `{ cut }`: streamed, these chunks then an end without `finish` (which the
 *   leaf turns into a `NetworkError`); as a whole call, a `NetworkError`.
 *
 * `delay` waits on the `Clock` before answering (so `TestClock` drives it);
 * `model` / `provider` override what the response reports.
 *
 * @since 0.1.0
 * @category models
 */
export type TestStep =
  | {
    readonly text: string
    readonly chunks?: ReadonlyArray<string> | undefined
    readonly toolCalls?: ReadonlyArray<Omit<ToolCallPart, "type">> | undefined
    readonly finishReason?: FinishReason | undefined
    readonly usage?: Partial<Usage> | undefined
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }
  | {
    readonly error: LlmError
    readonly chunks?: ReadonlyArray<string> | undefined
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }
  | {
    readonly cut: ReadonlyArray<string>
    readonly delay?: Duration.Input | undefined
    readonly chunkDelay?: Duration.Input | undefined
  }

/**
 * The script of a test layer: steps answered in order (the last repeats once
 * they run out), or a function of the request and its index.
 *
 * @since 0.1.0
 * @category models
 */
export type TestScript =
  | ReadonlyArray<TestStep>
  | {
    readonly provider?: string | undefined
    readonly model?: string | undefined
    readonly steps?: ReadonlyArray<TestStep> | undefined
    readonly respond?: ((request: LlmRequest, index: number) => TestStep) | undefined
    /** Keep every request for `requests` (default true); turn off for long-running benchmarks. */
    readonly record?: boolean | undefined
  }

/**
 * What a test layer saw: every request in order (unless the script says
 * `record: false`), how many calls were interrupted before they answered,
 * and how many completed.
 *
 * @since 0.1.0
 * @category services
 */
export class LlmTest extends Context.Service<LlmTest, {
  readonly requests: Effect.Effect<ReadonlyArray<LlmRequest>>
  readonly interrupted: Effect.Effect<number>
  readonly completed: Effect.Effect<number>
}>()("@switchboard/core/LlmTest") {}

/**
 * A scripted `LLM` with its record, for tests that need several of them (for
 * example as the children of a fallback).
 *
 * @since 0.1.0
 * @category models
 */
export interface TestLlm {
  readonly requests: Effect.Effect<ReadonlyArray<LlmRequest>>
  readonly interrupted: Effect.Effect<number>
  readonly completed: Effect.Effect<number>
  readonly service: LLM["Service"]
  readonly layer: Layer.Layer<LLM>
}

const countTokens = (text: string): number => text.length === 0 ? 0 : Math.ceil(text.length / 4)

const requestText = (request: LlmRequest): string => {
  let text = request.system ?? ""
  for (const message of request.messages) {
    if (typeof message.content === "string") text += message.content
    else for (const part of message.content) if (part.type === "text") text += part.text
  }
  return text
}

/**
 * Builds a scripted `LLM` and its record (see {@link TestStep}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTest = (script: TestScript): Effect.Effect<TestLlm> =>
  Effect.sync(() => {
    const options = Array.isArray(script) ? { steps: script as ReadonlyArray<TestStep> } : script as Exclude<
      TestScript,
      ReadonlyArray<TestStep>
    >
    const provider = options.provider ?? "test"
    const defaultModel = options.model ?? "test-model"
    const seen: Array<LlmRequest> = []
    const record = options.record ?? true
    let calls = 0
    let interrupted = 0
    let completed = 0
    const next = (request: LlmRequest): TestStep => {
      const index = calls++
      if (record) seen.push(request)
      if (options.respond !== undefined) return options.respond(request, index)
      const steps = options.steps ?? []
      const step = steps[Math.min(index, steps.length - 1)]
      return step ?? { text: "ok" }
    }
    const sleep = (delay: Duration.Input | undefined) => delay === undefined ? Effect.void : Effect.sleep(delay)
    const track = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.onExit(effect, (exit) => {
        if (exit._tag === "Success") completed++
        else if (exit.cause.reasons.some((reason) => reason._tag === "Interrupt")) interrupted++
        return Effect.void
      })
    const respond = (
      request: LlmRequest,
      model: string,
      step: Extract<TestStep, { text: string }>,
      latencyMs: number
    ): LlmResponse => {
      const toolCalls = (step.toolCalls ?? []).map((call): ToolCallPart => ({ type: "tool-call", ...call }))
      const inputTokens = countTokens(requestText(request))
      const outputTokens = countTokens(step.text) + toolCalls.length
      return {
        id: `test-${calls}`,
        provider,
        model,
        text: step.text,
        content: [...(step.text.length > 0 ? [{ type: "text" as const, text: step.text }] : []), ...toolCalls],
        toolCalls,
        finishReason: step.finishReason ?? (toolCalls.length > 0 ? "tool-calls" : "stop"),
        usage: makeUsage({ inputTokens, outputTokens, ...step.usage }),
        costUsd: 0,
        latencyMs,
        cached: false,
        attempts: []
      }
    }
    const service = make({
      provider,
      model: defaultModel,
      generate: (request, model) =>
        track(Effect.withFiber((fiber) => {
          const clock = fiber.getRef(Clock.Clock)
          const start = clock.currentTimeMillisUnsafe()
          const step = next(request)
          const answer = (): Effect.Effect<LlmResponse, LlmError> => {
            if ("error" in step) return Effect.fail(step.error)
            if ("cut" in step) return Effect.fail(new NetworkError({ provider, model, detail: "scripted cut" }))
            return Effect.succeed(respond(request, model, step, clock.currentTimeMillisUnsafe() - start))
          }
          return step.delay === undefined ? answer() : Effect.flatMap(Effect.sleep(step.delay), answer)
        })),
      stream: (request, model) =>
        Stream.unwrap(Effect.gen(function*() {
          const start = yield* Clock.currentTimeMillis
          const step = next(request)
          yield* sleep(step.delay)
          const chunks = "cut" in step ? step.cut : "error" in step ? step.chunks ?? [] : step.chunks ?? [step.text]
          const deltas = Stream.fromIterable(chunks).pipe(
            Stream.mapEffect((text) => Effect.as(sleep(step.chunkDelay), { type: "text-delta", text } as StreamPart))
          )
          if ("cut" in step) return deltas
          if ("error" in step) return Stream.concat(deltas, Stream.fail(step.error))
          const tools = Stream.fromIterable(
            (step.toolCalls ?? []).map((call): StreamPart => ({
              type: "tool-call-delta",
              id: call.id,
              name: call.name,
              inputDelta: JSON.stringify(call.input)
            }))
          )
          const finish = Stream.fromEffect(
            Effect.map(Clock.currentTimeMillis, (now): StreamPart => ({
              type: "finish",
              response: respond(request, model, step, now - start)
            }))
          )
          return deltas.pipe(Stream.concat(tools), Stream.concat(finish))
        })).pipe(
          Stream.onExit((exit) =>
            Effect.sync(() => {
              if (exit._tag === "Success") completed++
              else if (exit.cause.reasons.some((reason) => reason._tag === "Interrupt")) interrupted++
            })
          )
        )
    })
    return {
      service,
      layer: Layer.succeed(LLM, service),
      requests: Effect.sync(() => seen.slice()),
      interrupted: Effect.sync(() => interrupted),
      completed: Effect.sync(() => completed)
    }
  })

/**
 * A scripted `LLM` for tests, with an `LlmTest` record of what it saw. Users
 * swap it in for a provider layer; delays run on the `Clock`, so `TestClock`
 * drives them.
 *
 * @example
 * ```ts
 * const TestLlm = Llm.layerTest([
 *   { error: new LlmError.RateLimited({ provider: "test", scope: "requests", source: "provider" }) },
 *   { text: "hello", delay: "200 millis" }
 * ])
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (script: TestScript): Layer.Layer<LLM | LlmTest> =>
  Layer.unwrap(Effect.map(makeTest(script), (test) =>
    Layer.mergeAll(
      Layer.succeed(LLM, test.service),
      Layer.succeed(LlmTest, LlmTest.of({
        requests: test.requests,
        interrupted: test.interrupted,
        completed: test.completed
      }))
    )))
