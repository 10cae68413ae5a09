/**
 * Telemetry conventions: the span names, attribute names and metrics every
 * Switchboard layer reports, following the OpenTelemetry GenAI semantic
 * conventions (`gen_ai.*`) plus `switchboard.*` for what is ours (route,
 * cost, cache, breaker, budget, prompt).
 *
 * - Every provider attempt (each retry, fallback leg and hedge leg) is an
 *   `Llm.attempt` span of kind `client` carrying `gen_ai.provider.name`,
 *   `gen_ai.request.model`, and when it ends `gen_ai.response.model`,
 *   `gen_ai.response.id`, `gen_ai.usage.*`, `gen_ai.response.finish_reasons`,
 *   `switchboard.cost.usd`, or `error.type`.
 * - {@link layer} (outermost in a stack) makes each call one span named
 *   `chat {route or model}` of kind `client`; the attempts are its children,
 *   and the combinators that decide (router, fallback, hedge, budget, rate
 *   limit, cache, breaker) annotate it and add their events to it.
 * - Metrics are Effect `Metric`s (exported by `@switchboard/otel`), recorded
 *   when something reads them: with `Otel.layer`, a real tracer, inside a
 *   {@link layer} call, or with {@link layerMetrics}. Attribute sets are
 *   bounded (provider, model, outcome, route, budget scope — never request
 *   ids or tenants).
 * - Without {@link layer}, `Llm.generate` / `Llm.stream` make the call span
 *   themselves when {@link CallSpans} is on (`Otel.layer` turns it on).
 * - No prompt, completion or secret is ever recorded, unless content capture
 *   is turned on in {@link layer}; then prompts and completions are span
 *   events, cut at `maxContentLength` characters. Keys never reach telemetry:
 *   only the fields named here are read from requests and responses.
 *
 * Nothing installed, nothing paid: with Effect's native tracer and metrics
 * off, no call span is made, no attribute computed and no metric updated; a
 * provider attempt keeps only its `Llm.attempt` span, as before telemetry.
 *
 * @since 0.1.0
 */
import { type Cause, Clock, Context, Effect, Exit, Fiber, Layer, Metric, References, Schema, Stream, Tracer } from "effect"
import * as Streams from "../internal/streams.ts"
import * as Events from "../Events.ts"
import { isTraced } from "../internal/attempts.ts"
import { LLM, transform } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse, StreamPart, Usage } from "../LlmResponse.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/**
 * The attribute names used on spans and metrics.
 *
 * @since 0.1.0
 * @category names
 */
export const Attributes = {
  operationName: "gen_ai.operation.name",
  providerName: "gen_ai.provider.name",
  requestModel: "gen_ai.request.model",
  requestMaxTokens: "gen_ai.request.max_tokens",
  requestTemperature: "gen_ai.request.temperature",
  requestTopP: "gen_ai.request.top_p",
  requestStream: "gen_ai.request.stream",
  responseModel: "gen_ai.response.model",
  responseId: "gen_ai.response.id",
  responseFinishReasons: "gen_ai.response.finish_reasons",
  responseTimeToFirstChunk: "gen_ai.response.time_to_first_chunk",
  usageInputTokens: "gen_ai.usage.input_tokens",
  usageOutputTokens: "gen_ai.usage.output_tokens",
  usageCacheReadInputTokens: "gen_ai.usage.cache_read.input_tokens",
  usageCacheCreationInputTokens: "gen_ai.usage.cache_creation.input_tokens",
  usageReasoningOutputTokens: "gen_ai.usage.reasoning.output_tokens",
  tokenType: "gen_ai.token.type",
  errorType: "error.type",
  prompt: "gen_ai.prompt",
  completion: "gen_ai.completion",
  route: "switchboard.route",
  routeStrategy: "switchboard.route.strategy",
  routeCandidate: "switchboard.route.candidate",
  routeDecision: "switchboard.route.decision",
  routeSkipped: "switchboard.route.skipped",
  fallbacks: "switchboard.fallbacks",
  retries: "switchboard.retries",
  hedged: "switchboard.hedged",
  attempts: "switchboard.attempts",
  attemptOutcome: "switchboard.attempt.outcome",
  cacheHit: "switchboard.cache.hit",
  cacheResult: "switchboard.cache.result",
  costUsd: "switchboard.cost.usd",
  priceUnknown: "switchboard.price_unknown",
  breakerState: "switchboard.breaker.state",
  budgetScope: "switchboard.budget.scope",
  budgetReservedUsd: "switchboard.budget.reserved.usd",
  budgetSpentUsd: "switchboard.budget.spent.usd",
  budgetLimitUsd: "switchboard.budget.limit.usd",
  rateLimitWaitMs: "switchboard.ratelimit.wait_ms",
  promptId: "switchboard.prompt.id",
  promptVersion: "switchboard.prompt.version",
  overheadMs: "switchboard.overhead_ms",
  outcome: "switchboard.outcome",
  // Kept for callers of the first release.
  legacyProvider: "llm.provider",
  legacyModel: "llm.model"
} as const

/**
 * The `gen_ai.operation.name` of every Switchboard call.
 *
 * @since 0.1.0
 * @category names
 */
export const operationName = "chat"

/**
 * The name of each provider attempt's span.
 *
 * @since 0.1.0
 * @category names
 */
export const attemptSpanName = "Llm.attempt"

/**
 * The name of a call's span: `chat {route}`, else `chat {model}`, else `chat`.
 *
 * @since 0.1.0
 * @category names
 */
export const callSpanName = (route: string | undefined, request: LlmRequest): string =>
  route !== undefined ? `${operationName} ${route}` : request.model !== undefined ? `${operationName} ${request.model}` : operationName

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/**
 * The semconv bucket boundaries of `gen_ai.client.operation.duration` (seconds).
 *
 * @since 0.1.0
 * @category metrics
 */
export const durationBoundaries: ReadonlyArray<number> = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
]

/**
 * The semconv bucket boundaries of `gen_ai.client.token.usage` (tokens).
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenBoundaries: ReadonlyArray<number> = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864
]

/**
 * The semconv bucket boundaries of time-to-first-chunk histograms (seconds).
 *
 * @since 0.1.0
 * @category metrics
 */
export const firstChunkBoundaries: ReadonlyArray<number> = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
]

/**
 * Bucket boundaries for the library's own time per call (seconds, 10 µs to 1 s).
 *
 * @since 0.1.0
 * @category metrics
 */
export const overheadBoundaries: ReadonlyArray<number> = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1
]

// Each metric keeps how to make one of its series: a metric with the
// series' attributes built in (Effect's `withAttributes` would instead change
// the context on every update).
type Series = Metric.Metric<number, unknown>
const makers = new Map<Series, (attributes: Record<string, string>) => Series>()
const histogramOf = (
  name: string,
  options: { readonly description: string; readonly boundaries: ReadonlyArray<number> }
): Metric.Histogram<number> => {
  const made = Metric.histogram(name, options)
  makers.set(made, (attributes) => Metric.histogram(name, { ...options, attributes }))
  return made
}
const counterOf = (name: string, options: { readonly description: string; readonly incremental: true }): Metric.Counter<number> => {
  const made = Metric.counter(name, options)
  makers.set(made, (attributes) => Metric.counter(name, { ...options, attributes }))
  return made
}
const gaugeOf = (name: string, options: { readonly description: string }): Metric.Gauge<number> => {
  const made = Metric.gauge(name, options)
  makers.set(made, (attributes) => Metric.gauge(name, { ...options, attributes }))
  return made
}

/**
 * `gen_ai.client.operation.duration` (seconds): one observation per provider
 * attempt, by `gen_ai.operation.name`, `gen_ai.provider.name`,
 * `gen_ai.request.model` and, for a failed attempt, `error.type`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationDuration = histogramOf("gen_ai.client.operation.duration", {
  description: "GenAI operation duration (seconds), one per provider attempt",
  boundaries: durationBoundaries
})

/**
 * `gen_ai.client.token.usage` (tokens): per attempt and `gen_ai.token.type`
 * (`input` | `output`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenUsage = histogramOf("gen_ai.client.token.usage", {
  description: "Tokens used per provider attempt, by gen_ai.token.type",
  boundaries: tokenBoundaries
})

/**
 * `switchboard.cost.usd`: money spent, by provider and model (every attempt
 * billed, failed and hedge-lost ones included).
 *
 * @since 0.1.0
 * @category metrics
 */
export const costUsd = counterOf("switchboard.cost.usd", {
  description: "USD spent on provider calls",
  incremental: true
})

/**
 * `switchboard.attempts`: provider attempts by provider, model and
 * `switchboard.outcome` (`ok`, or the error tag, or `Interrupted`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const attempts = counterOf("switchboard.attempts", {
  description: "Provider attempts by outcome",
  incremental: true
})

/**
 * `switchboard.cache.requests`: cacheable requests by `switchboard.cache.result`
 * (`hit` | `miss`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const cacheRequests = counterOf("switchboard.cache.requests", {
  description: "Response cache lookups by result",
  incremental: true
})

/**
 * `switchboard.breaker.state`: per provider and model, 0 closed, 1 half-open,
 * 2 open.
 *
 * @since 0.1.0
 * @category metrics
 */
export const breakerState = gaugeOf("switchboard.breaker.state", {
  description: "Circuit breaker state (0 closed, 1 half-open, 2 open)"
})

/**
 * `switchboard.budget.spent.usd`: money settled in the current window, per
 * `switchboard.budget.scope`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const budgetSpentUsd = gaugeOf("switchboard.budget.spent.usd", {
  description: "USD spent in the budget's current window"
})

/**
 * `switchboard.budget.reserved.usd`: money reserved by calls in flight, per
 * `switchboard.budget.scope`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const budgetReservedUsd = gaugeOf("switchboard.budget.reserved.usd", {
  description: "USD reserved by calls in flight"
})

/**
 * `switchboard.ratelimit.wait` (seconds): how long calls waited for a local
 * rate limit.
 *
 * @since 0.1.0
 * @category metrics
 */
export const rateLimitWait = histogramOf("switchboard.ratelimit.wait", {
  description: "Time a call waited for a local rate limit (seconds)",
  boundaries: durationBoundaries
})

/**
 * `gen_ai.client.operation.time_to_first_chunk` (seconds): from the start of a
 * streamed attempt to its first part, by provider and model.
 *
 * @since 0.1.0
 * @category metrics
 */
export const timeToFirstChunk = histogramOf("gen_ai.client.operation.time_to_first_chunk", {
  description: "Time from a streamed attempt's start to its first part (seconds)",
  boundaries: firstChunkBoundaries
})

/**
 * `switchboard.overhead` (seconds): the time a call spent outside provider
 * waits and deliberate waits (retry backoff, rate-limit waits) — the
 * library's own cost — by `switchboard.route`. Recorded by {@link layer}.
 *
 * @since 0.1.0
 * @category metrics
 */
export const overhead = histogramOf("switchboard.overhead", {
  description: "Time a call spent outside provider waits (seconds)",
  boundaries: overheadBoundaries
})

// Metrics with their attributes, built once per attribute set (the set is
// bounded by provider, model and outcome; past `maxSeries` they are rebuilt).
const maxSeries = 2048
const series = new Map<string, Series>()
const seriesOf = <S>(
  metric: Metric.Metric<number, S>,
  key: string,
  attributes: () => Record<string, string>
): Metric.Metric<number, S> => {
  const id = `${metric.id}\u0000${key}`
  const found = series.get(id)
  if (found !== undefined) return found as Metric.Metric<number, S>
  const maker = makers.get(metric as Series)
  const made = (maker === undefined ? Metric.withAttributes(metric, attributes()) : maker(attributes())) as Metric.Metric<
    number,
    S
  >
  if (series.size < maxSeries) series.set(id, made as Series)
  return made
}

/**
 * Whether metrics are recorded outside a {@link layer} call and without a
 * tracer: `false` by default, so a stack with no telemetry installed pays
 * nothing for it; `Otel.layer` (or {@link layerMetrics}) turns it on.
 * Metrics are always recorded inside a {@link layer} call and whenever a real
 * tracer is installed.
 *
 * @since 0.1.0
 * @category references
 */
export const MetricsEnabled = Context.Reference<boolean>("@switchboard/core/Telemetry/MetricsEnabled", {
  defaultValue: () => false
})

/**
 * Turns metric recording on everywhere (see {@link MetricsEnabled}): for a
 * program that exports Effect's metrics without `Otel.layer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMetrics: Layer.Layer<never> = Layer.succeed(MetricsEnabled, true)

/**
 * Whether metrics are recorded in `context` (see {@link MetricsEnabled}).
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const metricsOn = (context: Context.Context<never>): boolean =>
  Context.get(context, MetricsEnabled) || Context.get(context, CurrentCall) !== undefined ||
  Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer

/**
 * {@link metricsOn} for a running fiber: its tracer is read from the fiber's
 * own cache, so a stack with no telemetry pays two lookups, not three.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const metricsOnFiber = (fiber: Fiber.Fiber<unknown, unknown>): boolean => {
  const tracer = fiber.cache.tracer
  return (tracer !== undefined && tracer !== Tracer.nativeTracer) || fiber.getRef(MetricsEnabled) ||
    fiber.getRef(CurrentCall) !== undefined
}

/**
 * What a provider leaf reports of each attempt it finished.
 *
 * @since 0.1.0
 * @category models
 */
export interface AttemptRecord {
  readonly provider: string
  readonly model: string
  /** `ok`, an error tag, or `Interrupted`. */
  readonly outcome: string
  readonly latencyMs: number
  readonly usage?: Usage | undefined
  readonly costUsd: number
}

/**
 * Records an attempt's metrics (duration, tokens, cost, outcome) in the
 * registry of `context`.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordAttemptUnsafe = (context: Context.Context<never>, attempt: AttemptRecord): void => {
  if (!metricsOn(context)) return
  recorderOf(attempt.provider, attempt.model)(context, attempt.outcome, attempt.latencyMs, attempt.usage, attempt.costUsd)
}

type Recorder = (
  context: Context.Context<never>,
  outcome: string,
  latencyMs: number,
  usage: Usage | undefined,
  costUsd: number
) => void
const recorders = new Map<string, Recorder>()

/** The metric series of one provider and model, built once; failures look theirs up by outcome. */
const recorderOf = (provider: string, model: string): Recorder => {
  const where = `${provider}\u0000${model}`
  const found = recorders.get(where)
  if (found !== undefined) return found
  const base = { [Attributes.providerName]: provider, [Attributes.requestModel]: model }
  const gen = { [Attributes.operationName]: operationName, ...base }
  const okDuration = seriesOf(operationDuration, where, () => gen)
  const okAttempts = seriesOf(attempts, `${where}\u0000ok`, () => ({ ...base, [Attributes.outcome]: "ok" }))
  const input = seriesOf(tokenUsage, `${where}\u0000input`, () => ({ ...gen, [Attributes.tokenType]: "input" }))
  const output = seriesOf(tokenUsage, `${where}\u0000output`, () => ({ ...gen, [Attributes.tokenType]: "output" }))
  const cost = seriesOf(costUsd, where, () => base)
  const recorder: Recorder = (context, outcome, latencyMs, usage, spent) => {
    if (outcome === "ok") {
      okDuration.updateUnsafe(latencyMs / 1000, context)
      okAttempts.updateUnsafe(1, context)
    } else {
      seriesOf(operationDuration, `${where}\u0000${outcome}`, () => ({ ...gen, [Attributes.errorType]: outcome }))
        .updateUnsafe(latencyMs / 1000, context)
      seriesOf(attempts, `${where}\u0000${outcome}`, () => ({ ...base, [Attributes.outcome]: outcome }))
        .updateUnsafe(1, context)
    }
    if (usage !== undefined) {
      input.updateUnsafe(usage.inputTokens, context)
      output.updateUnsafe(usage.outputTokens, context)
    }
    if (spent > 0) cost.updateUnsafe(spent, context)
  }
  if (recorders.size < maxSeries) recorders.set(where, recorder)
  return recorder
}

/**
 * Records the time from a streamed attempt's start to its first part.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordFirstChunkUnsafe = (
  context: Context.Context<never>,
  provider: string,
  model: string,
  seconds: number
): void =>
  seriesOf(timeToFirstChunk, `${provider}\u0000${model}`, () => ({
    [Attributes.providerName]: provider,
    [Attributes.requestModel]: model
  })).updateUnsafe(seconds, context)

/**
 * Counts a cacheable request as a cache `hit` or `miss`.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordCacheUnsafe = (context: Context.Context<never>, result: "hit" | "miss"): void => {
  if (!metricsOn(context)) return
  seriesOf(cacheRequests, result, () => ({ [Attributes.cacheResult]: result })).updateUnsafe(1, context)
}

/**
 * {@link recordCacheUnsafe} as an effect.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordCache = (result: "hit" | "miss"): Effect.Effect<void> =>
  Effect.withFiber((fiber) => Effect.succeed(recordCacheUnsafe(fiber.context, result)))

/**
 * The gauge value of a breaker state: 0 closed, 1 half-open, 2 open.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const breakerStateValue = (state: "closed" | "half-open" | "open"): number =>
  state === "closed" ? 0 : state === "half-open" ? 1 : 2

/**
 * Sets the breaker state gauge of a provider and model, and annotates the
 * current call's span.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordBreakerState = (
  provider: string,
  model: string,
  state: "closed" | "half-open" | "open"
): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!metricsOnFiber(fiber)) return Effect.void
    seriesOf(breakerState, `${provider}\u0000${model}`, () => ({
      [Attributes.providerName]: provider,
      [Attributes.requestModel]: model
    })).updateUnsafe(breakerStateValue(state), fiber.context)
    return Effect.void
  })

/**
 * Sets the budget gauges of a scope (spent and reserved USD) in the registry
 * of `context`.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordBudgetUnsafe = (
  context: Context.Context<never>,
  scope: string,
  spentUsd: number,
  reservedUsd: number
): void => {
  if (!metricsOn(context)) return
  seriesOf(budgetSpentUsd, scope, () => ({ [Attributes.budgetScope]: scope })).updateUnsafe(spentUsd, context)
  seriesOf(budgetReservedUsd, scope, () => ({ [Attributes.budgetScope]: scope })).updateUnsafe(reservedUsd, context)
}

/**
 * Sets the budget gauges of a scope (spent and reserved USD).
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordBudget = (scope: string, spentUsd: number, reservedUsd: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (!metricsOnFiber(fiber)) return Effect.void
    seriesOf(budgetSpentUsd, scope, () => ({ [Attributes.budgetScope]: scope })).updateUnsafe(spentUsd, fiber.context)
    seriesOf(budgetReservedUsd, scope, () => ({ [Attributes.budgetScope]: scope })).updateUnsafe(
      reservedUsd,
      fiber.context
    )
    return Effect.void
  })

/**
 * Records a rate-limit wait: the histogram, and the current call's span and
 * overhead (a wait is not the library's own time).
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordRateLimitWait = (waitedMs: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    if (metricsOnFiber(fiber)) rateLimitWait.updateUnsafe(waitedMs / 1000, fiber.context)
    const call = fiber.getRef(CurrentCall)
    if (call !== undefined) call.waited(waitedMs)
    return Effect.void
  })

/**
 * Tells the current call (if any) of a deliberate wait, such as a retry's
 * backoff, so it does not count as the library's overhead.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const recordWait = (waitedMs: number): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const call = fiber.getRef(CurrentCall)
    if (call !== undefined) call.waited(waitedMs)
    return Effect.void
  })

// ---------------------------------------------------------------------------
// Spans
// ---------------------------------------------------------------------------

/**
 * Whether a real tracer (not Effect's native, exporting-nowhere one) is
 * installed and enabled for the fiber.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean => isTraced(fiber)

/**
 * The attributes an attempt span starts with.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const attemptAttributes = (provider: string, model: string): Record<string, unknown> => ({
  [Attributes.operationName]: operationName,
  [Attributes.providerName]: provider,
  [Attributes.requestModel]: model,
  [Attributes.legacyProvider]: provider,
  [Attributes.legacyModel]: model
})

const setUsage = (span: Tracer.Span, usage: Usage): void => {
  span.attribute(Attributes.usageInputTokens, usage.inputTokens)
  span.attribute(Attributes.usageOutputTokens, usage.outputTokens)
  if (usage.cachedInputTokens > 0) span.attribute(Attributes.usageCacheReadInputTokens, usage.cachedInputTokens)
  if (usage.cacheWriteTokens > 0) span.attribute(Attributes.usageCacheCreationInputTokens, usage.cacheWriteTokens)
  if (usage.reasoningTokens > 0) span.attribute(Attributes.usageReasoningOutputTokens, usage.reasoningTokens)
}

const setResponse = (span: Tracer.Span, response: LlmResponse): void => {
  span.attribute(Attributes.providerName, response.provider)
  span.attribute(Attributes.responseModel, response.model)
  span.attribute(Attributes.responseId, response.id)
  span.attribute(Attributes.responseFinishReasons, [response.finishReason])
  setUsage(span, response.usage)
  span.attribute(Attributes.costUsd, response.costUsd)
  if (response.priceUnknown === true) span.attribute(Attributes.priceUnknown, true)
}

/**
 * Annotates an attempt's span with the response it produced.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const annotateAttemptResponse = (span: Tracer.Span, response: LlmResponse): void => {
  setResponse(span, response)
  span.attribute(Attributes.attemptOutcome, "ok")
}

/**
 * Annotates a span with the way its attempt or call failed (`error.type`).
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const annotateFailure = (span: Tracer.Span, outcome: string): void => {
  span.attribute(Attributes.errorType, outcome)
  span.attribute(Attributes.attemptOutcome, outcome)
}

/**
 * Annotates a span with the time to its stream's first part.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const annotateFirstChunk = (span: Tracer.Span, seconds: number): void => {
  span.attribute(Attributes.responseTimeToFirstChunk, seconds)
}

const outcomeOfCause = (cause: Cause.Cause<LlmError>): string => {
  for (const reason of cause.reasons) if (reason._tag === "Fail") return reason.error._tag
  return cause.reasons.some((reason) => reason._tag === "Interrupt") ? "Interrupted" : "Defect"
}

type Wrapper = <A extends LlmResponse, E extends LlmError, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
// provider → model → wrapper: looked up with the leaf's own strings, no key built per call.
const attemptWrappers = new Map<string, Map<string, Wrapper>>()
let attemptWrapperCount = 0

/**
 * Instruments one provider attempt (a leaf's `generate`): runs it in an
 * `Llm.attempt` span of kind `client` (a child of the call's span), records
 * its metrics (duration, tokens, cost, outcome) when it ends, tells the
 * current call of the provider wait, and — only when a real tracer is
 * installed — sets the response's GenAI attributes or `error.type` on the
 * span. Built once per provider and model.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const attempt = (provider: string, model: string): Wrapper => {
  const found = attemptWrappers.get(provider)?.get(model)
  if (found !== undefined) return found
  // The span starts with the first release's two attributes; the GenAI ones
  // are added only when a real tracer will export them.
  const options = {
    kind: "client" as const,
    attributes: { [Attributes.legacyProvider]: provider, [Attributes.legacyModel]: model }
  }
  const record = recorderOf(provider, model)
  // The stack trace that locates the span is captured once, here, not per call.
  const trace = new Error()
  let where: string | undefined
  const stack = () => where ??= trace.stack?.split("\n")[2]?.trim()
  const wrapper: Wrapper = <A extends LlmResponse, E extends LlmError, R>(
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const wrapped = Effect.useSpan(attemptSpanName, options, (span) => {
      // `useSpan` calls this on the running fiber: read it directly rather than through one more effect.
      const current = Fiber.getCurrent()
      return current === undefined ? Effect.withFiber((fiber) => run(fiber, span)) : run(current, span)
    })
    const run = (fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span): Effect.Effect<A, E, R> => {
      const inner = Effect.updateContext(self, (context: Context.Context<R>) =>
        Context.add(
          Context.add(context, Tracer.ParentSpan, span),
          References.CurrentStackFrame,
          { name: attemptSpanName, stack, parent: Context.get(context, References.CurrentStackFrame) }
        ))
      const call = fiber.getRef(CurrentCall)
      const traced = isTraced(fiber)
      // Nothing installed: the attempt costs what its span costs, nothing more.
      if (!traced && call === undefined && !fiber.getRef(MetricsEnabled)) return inner
      if (traced) {
        span.attribute(Attributes.operationName, operationName)
        span.attribute(Attributes.providerName, provider)
        span.attribute(Attributes.requestModel, model)
      }
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeNanosUnsafe()
      call?.attemptStarted(Number(start) / 1e6)
      return Effect.onExit(inner, (exit) => {
        const now = clock.currentTimeNanosUnsafe()
        call?.attemptEnded(Number(now) / 1e6)
        const latencyMs = Number(now - start) / 1e6
        if (exit._tag === "Success") {
          const response = exit.value
          record(fiber.context, "ok", latencyMs, response.usage, response.costUsd)
          if (traced) annotateAttemptResponse(span, response)
        } else {
          const outcome = outcomeOfCause(exit.cause)
          record(fiber.context, outcome, latencyMs, undefined, 0)
          if (traced) annotateFailure(span, outcome)
        }
        return Effect.void
      })
    }
    return wrapped
  }
  if (attemptWrapperCount < maxSeries) {
    attemptWrapperCount++
    let models = attemptWrappers.get(provider)
    if (models === undefined) attemptWrappers.set(provider, models = new Map())
    models.set(model, wrapper)
  }
  return wrapper
}

/**
 * {@link attempt} for a leaf's `stream`: the span (made only when a real
 * tracer is installed), the metrics when the stream ends (tokens and cost
 * from its `finish` part), and the time to its first part — an attribute on
 * the span and `gen_ai.client.operation.time_to_first_chunk`.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const attemptStream = (provider: string, model: string) =>
<E extends LlmError, R>(self: Stream.Stream<StreamPart, E, R>): Stream.Stream<StreamPart, E, R> =>
  // Picked per run: with nothing to record, the leaf's own stream runs as it is, its pull unwrapped.
  Streams.withFiber((fiber) => {
    const traced = isTraced(fiber)
    if (!traced && fiber.getRef(CurrentCall) === undefined && !fiber.getRef(MetricsEnabled)) return self
    const begin = traced
      ? Effect.makeSpan(attemptSpanName, { kind: "client", attributes: attemptAttributes(provider, model) })
      : Effect.succeed(undefined)
    return Stream.unwrap(Effect.map(begin, (span) => {
      const clock = fiber.getRef(Clock.Clock)
      const start = clock.currentTimeNanosUnsafe()
      const call = fiber.getRef(CurrentCall)
      call?.attemptStarted(Number(start) / 1e6)
      let first = true
      let response: LlmResponse | undefined
      const parts = self.pipe(
        Stream.mapArray((batch) => {
          if (first) {
            first = false
            const seconds = Number(clock.currentTimeNanosUnsafe() - start) / 1e9
            recordFirstChunkUnsafe(fiber.context, provider, model, seconds)
            if (span !== undefined) annotateFirstChunk(span, seconds)
          }
          for (const part of batch) if (part.type === "finish") response = part.response
          return batch
        }),
        Streams.onExit((exit) => {
          const now = clock.currentTimeNanosUnsafe()
          call?.attemptEnded(Number(now) / 1e6)
          const latencyMs = Number(now - start) / 1e6
          if (exit._tag === "Success" && response !== undefined) {
            recordAttemptUnsafe(fiber.context, {
              provider,
              model,
              outcome: "ok",
              latencyMs,
              usage: response.usage,
              costUsd: response.costUsd
            })
            if (span !== undefined) annotateAttemptResponse(span, response)
          } else {
            const outcome = exit._tag === "Success" ? "Incomplete" : outcomeOfCause(exit.cause as Cause.Cause<LlmError>)
            recordAttemptUnsafe(fiber.context, { provider, model, outcome, latencyMs, costUsd: 0 })
            if (span !== undefined) annotateFailure(span, outcome)
          }
          if (span !== undefined) span.end(now, exit)
          return Effect.void
        })
      )
      return span === undefined
        ? parts
        : Stream.updateContext(parts, (context: Context.Context<R>) => Context.add(context, Tracer.ParentSpan, span))
    }))
  })

/**
 * The state of one call made through {@link layer}: its span (when traced)
 * and the clocks from which its overhead is computed. Provider leaves and
 * deciding combinators find it in {@link CurrentCall}.
 *
 * @since 0.1.0
 * @category models
 */
export class Call {
  /** The call's span; `undefined` when no tracer is installed. */
  readonly span: Tracer.Span | undefined
  private inFlight = 0
  private since = 0
  /** Milliseconds with at least one provider attempt in flight. */
  providerMs = 0
  /** Milliseconds of deliberate waits (backoff, rate limits). */
  waitedMs = 0
  /** Provider attempts started. */
  attemptCount = 0
  /** Fallbacks taken, retries scheduled. */
  fallbackCount = 0
  retryCount = 0

  constructor(span: Tracer.Span | undefined) {
    this.span = span
  }

  /** A provider attempt starts at `nowMs`. */
  attemptStarted(nowMs: number): void {
    this.attemptCount++
    if (this.inFlight++ === 0) this.since = nowMs
  }

  /** A provider attempt ends at `nowMs`. */
  attemptEnded(nowMs: number): void {
    if (this.inFlight > 0 && --this.inFlight === 0) this.providerMs += nowMs - this.since
  }

  /** A deliberate wait of `ms` milliseconds. */
  waited(ms: number): void {
    this.waitedMs += ms
  }

  /** Annotates the call span (a no-op untraced). */
  annotate(key: string, value: unknown): void {
    this.span?.attribute(key, value)
  }
}

/**
 * The call in progress, set by {@link layer}; `undefined` outside one.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentCall = Context.Reference<Call | undefined>("@switchboard/core/Telemetry/CurrentCall", {
  defaultValue: () => undefined
})

/**
 * Whether the fiber runs inside a traced call of {@link layer}: a combinator
 * then annotates the call's span instead of opening its own, so the
 * attempts stay the call span's children.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const inTracedCall = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(CurrentCall)?.span !== undefined

/**
 * Annotates the current call's span, when there is one and it is traced.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const annotateCall = (attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const span = fiber.getRef(CurrentCall)?.span
    if (span !== undefined) for (const key in attributes) span.attribute(key, attributes[key])
    return Effect.void
  })

/** What a deciding combinator's event says on the call span. */
const observe = (call: Call, span: Tracer.Span, event: Events.LlmEvent, nanos: bigint): void => {
  switch (event._tag) {
    case "RouteChosen":
      span.attribute(Attributes.routeStrategy, event.strategy)
      span.attribute(Attributes.routeCandidate, event.candidate)
      span.attribute(Attributes.routeSkipped, event.skipped.map((s) => `${s.name}: ${s.reason}`))
      break
    case "FallbackTaken":
      span.attribute(Attributes.fallbacks, ++call.fallbackCount)
      break
    case "RetryScheduled":
      span.attribute(Attributes.retries, ++call.retryCount)
      break
    case "HedgeStarted":
      span.attribute(Attributes.hedged, true)
      break
    case "CacheHit":
      span.attribute(Attributes.cacheHit, true)
      break
    case "CircuitStateChanged":
      span.attribute(Attributes.breakerState, event.to)
      break
    case "RateLimitWaited":
      span.attribute(Attributes.rateLimitWaitMs, event.waitedMs)
      break
    case "BudgetReserved":
      span.attribute(Attributes.budgetScope, event.scope)
      span.attribute(Attributes.budgetReservedUsd, event.reservedUsd)
      span.attribute(Attributes.budgetSpentUsd, event.spentUsd)
      span.attribute(Attributes.budgetLimitUsd, event.limitUsd)
      break
    case "BudgetExceeded":
      span.attribute(Attributes.budgetScope, event.scope)
      span.attribute(Attributes.budgetSpentUsd, event.spentUsd)
      span.attribute(Attributes.budgetLimitUsd, event.limitUsd)
      break
    default:
      break
  }
  // Every event of the call is also a span event: the decisions, in order.
  const { _tag, ...fields } = event
  const attributes: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    attributes[key] = typeof value === "object" && value !== null ? JSON.stringify(value) : value
  }
  span.event(_tag, nanos, attributes)
}

// ---------------------------------------------------------------------------
// The call layer
// ---------------------------------------------------------------------------

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category options
 */
export const Options = Schema.Struct({
  /** The route's name: the span is `chat {route}` and metrics carry `switchboard.route`. */
  route: Schema.optional(Schema.String.check(Schema.isNonEmpty())),
  /** Record prompts and completions as span events (default `false`). */
  captureContent: Schema.optional(Schema.Boolean),
  /** Characters kept of each captured prompt or completion (default 4096). */
  maxContentLength: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0)))
})

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  readonly route?: string | undefined
  readonly captureContent?: boolean | undefined
  readonly maxContentLength?: number | undefined
}

const truncate = (text: string, max: number): string => text.length <= max ? text : `${text.slice(0, max)}…`

/** The prompt as recorded under content capture: system and messages, nothing else. */
const promptText = (request: LlmRequest): string =>
  JSON.stringify(
    request.system === undefined ? request.messages : [{ role: "system", content: request.system }, ...request.messages]
  )

const startAttributes = (route: string | undefined, request: LlmRequest, stream: boolean): Record<string, unknown> => {
  const attributes: Record<string, unknown> = { [Attributes.operationName]: operationName }
  if (route !== undefined) attributes[Attributes.route] = route
  if (request.model !== undefined) attributes[Attributes.requestModel] = request.model
  if (request.maxTokens !== undefined) attributes[Attributes.requestMaxTokens] = request.maxTokens
  if (request.temperature !== undefined) attributes[Attributes.requestTemperature] = request.temperature
  if (request.topP !== undefined) attributes[Attributes.requestTopP] = request.topP
  if (stream) attributes[Attributes.requestStream] = true
  const prompt = request.metadata?.prompt
  if (prompt !== undefined) {
    attributes[Attributes.promptId] = prompt.id
    attributes[Attributes.promptVersion] = prompt.version
  }
  return attributes
}

const outcomeOfExit = (exit: Exit.Exit<unknown, LlmError>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  for (const reason of exit.cause.reasons) if (reason._tag === "Fail") return reason.error._tag
  return exit.cause.reasons.some((reason) => reason._tag === "Interrupt") ? "Interrupted" : "Defect"
}

const nanosToMs = (nanos: bigint): number => Number(nanos) / 1e6

/**
 * Wraps a service so each call is one span (`chat {route or model}`, kind
 * `client`) with the attempts as its children, and records the call's
 * `switchboard.overhead`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap = (options: Options = {}) => (llm: LLM["Service"]): LLM["Service"] => {
  const route = options.route
  const capture = options.captureContent === true
  const max = options.maxContentLength ?? 4096
  const overheadSeries = route === undefined ? overhead : seriesOf(overhead, route, () => ({ [Attributes.route]: route }))

  /** The call's state, how to put it in context, and how to end it (with its span, when traced). */
  const begin = (fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span | undefined, request: LlmRequest) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeNanosUnsafe()
    if (span !== undefined && capture) {
      span.event("gen_ai.content.prompt", start, { [Attributes.prompt]: truncate(promptText(request), max) })
    }
    const call = new Call(span)
    const bus = fiber.getRef(Events.LlmEvents)
    const tee: Events.EventBus | undefined = span === undefined ? undefined : {
      enabled: true,
      publish: (event) => {
        observe(call, span, event, clock.currentTimeNanosUnsafe())
        return bus.enabled ? bus.publish(event) : Effect.void
      },
      events: bus.events
    }
    const update = <R>(context: Context.Context<R>): Context.Context<R> => {
      const withCall = Context.add(context, CurrentCall, call)
      return span === undefined || tee === undefined
        ? withCall
        : Context.add(Context.add(withCall, Tracer.ParentSpan, span), Events.LlmEvents, tee)
    }
    const end = (exit: Exit.Exit<unknown, LlmError>, context: Context.Context<never>): void => {
      const now = clock.currentTimeNanosUnsafe()
      const totalMs = nanosToMs(now - start)
      const own = Math.max(0, totalMs - call.providerMs - call.waitedMs)
      overheadSeries.updateUnsafe(own / 1000, context)
      if (span === undefined) return
      span.attribute(Attributes.attempts, call.attemptCount)
      span.attribute(Attributes.overheadMs, own)
      if (Exit.isSuccess(exit)) {
        const response = exit.value as LlmResponse | undefined
        if (response !== undefined) {
          setResponse(span, response)
          span.attribute(Attributes.cacheHit, response.cached)
          if (capture) {
            span.event("gen_ai.content.completion", now, { [Attributes.completion]: truncate(response.text, max) })
          }
        }
      } else {
        span.attribute(Attributes.errorType, outcomeOfExit(exit))
      }
      span.end(now, exit)
    }
    const firstPart = (): void => {
      if (span !== undefined) annotateFirstChunk(span, Number(clock.currentTimeNanosUnsafe() - start) / 1e9)
    }
    return { update, end, firstPart }
  }

  /** Runs `f` with the call's span: made only when a real tracer is installed. */
  const withCallSpan = <A, E>(
    request: LlmRequest,
    stream: boolean,
    f: (fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span | undefined) => Effect.Effect<A, E>
  ): Effect.Effect<A, E> =>
    Effect.withFiber((fiber) =>
      isTraced(fiber)
        ? Effect.flatMap(
          Effect.makeSpan(callSpanName(route, request), {
            kind: "client",
            attributes: startAttributes(route, request, stream)
          }),
          (span) => f(fiber, span)
        )
        : f(fiber, undefined)
    )

  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    withCallSpan(request, false, (fiber, span) => {
      const { end, update } = begin(fiber, span, request)
      return Effect.onExit(
        Effect.updateContext(llm.generate(request), update),
        (exit) => Effect.sync(() => end(exit, fiber.context))
      )
    })

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    Stream.unwrap(withCallSpan(request, true, (fiber, span) => {
      const { end, firstPart, update } = begin(fiber, span, request)
      let first = true
      let response: LlmResponse | undefined
      return Effect.succeed(llm.stream(request).pipe(
        Stream.mapArray((batch) => {
          if (first) {
            first = false
            firstPart()
          }
          for (const part of batch) if (part.type === "finish") response = part.response
          return batch
        }),
        Streams.onExit((exit) =>
          Effect.sync(() => end(Exit.isSuccess(exit) ? Exit.succeed(response) : exit, fiber.context))
        ),
        Stream.updateContext(update)
      ))
    }))

  const service = LLM.of({ generate, stream })
  instrumented.add(service)
  return service
}

const instrumented = new WeakSet<LLM["Service"]>()
const automatic = new WeakMap<LLM["Service"], LLM["Service"]>()

/**
 * Whether `Llm.generate` and `Llm.stream` make a call span themselves when
 * the service has none (no {@link layer} outermost): `false` by default;
 * `Otel.layer` turns it on. Only with a real tracer installed, and never
 * inside another call.
 *
 * @since 0.1.0
 * @category references
 */
export const CallSpans = Context.Reference<boolean>("@switchboard/core/Telemetry/CallSpans", {
  defaultValue: () => false
})

/**
 * The service `Llm.generate` / `Llm.stream` call: `llm` itself, or — with
 * {@link CallSpans} on, a real tracer, no call in progress and no
 * {@link layer} on `llm` — `llm` wrapped so the call is one `chat {model}`
 * span over its attempts.
 *
 * @since 0.1.0
 * @category instrumentation
 */
export const callService = (fiber: Fiber.Fiber<unknown, unknown>, llm: LLM["Service"]): LLM["Service"] => {
  // Cheapest first: with no tracer installed (the common case) nothing else is read.
  if (!isTraced(fiber) || !fiber.getRef(CallSpans) || instrumented.has(llm) || fiber.getRef(CurrentCall) !== undefined) {
    return llm
  }
  let wrapped = automatic.get(llm)
  if (wrapped === undefined) {
    wrapped = wrap({})(llm)
    automatic.set(llm, wrapped)
  }
  return wrapped
}

/**
 * Makes each call through the layer one `chat {route or model}` span (kind
 * `client`) whose children are the provider attempts, annotated by every
 * deciding combinator underneath; records `switchboard.overhead`; with
 * `captureContent`, adds the prompt and completion as span events. Put it
 * outermost. A bad option fails the layer with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Fallback, Llm, Telemetry } from "@switchboard/core"
 *
 * const stack = Fallback.layer([Llm.layerTest([{ text: "a" }]), Llm.layerTest([{ text: "b" }])]).pipe(
 *   Telemetry.layer({ route: "default" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | SwitchboardConfigError.SwitchboardConfigError, R> =>
  transform(make(options))(self)

/**
 * Checks `options` and builds the wrapper of {@link layer}; a bad option fails
 * with `SwitchboardConfigError` (`Telemetry.maxContentLength`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<(llm: LLM["Service"]) => LLM["Service"], SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.map(SwitchboardConfigError.decode("Telemetry", Options, options), (decoded) => wrap(decoded))
