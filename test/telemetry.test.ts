import { assert, describe, it } from "@effect/vitest"
import { Budget, Fallback, Hedge, Llm, LlmError, Pricing, ResponseCache, Retry, Router, Telemetry } from "@switchboard/core"
import { OtelTest } from "@switchboard/otel"
import { Effect, Fiber, Layer, Metric, Stream } from "effect"
import { TestClock } from "effect/testing"

type ReadableSpan = OtelTest.ReadableSpan
type MetricData = OtelTest.MetricData
type Histogram = OtelTest.Histogram
const { DataPointType, SpanKind, SpanStatusCode } = OtelTest

const mini = { provider: "openai", model: "gpt-4o-mini" } as const
const haiku = { provider: "anthropic", model: "claude-haiku-4-5" } as const
const secretPrompt = "the launch code is hunter2-PROMPT"
const ask = (extra: Record<string, unknown> = {}) => ({
  messages: [{ role: "user" as const, content: secretPrompt }],
  ...extra
})
const serverError = (where: { provider: string; model: string }) =>
  new LlmError.ServerError({ ...where, status: 500 })

/**
 * Runs `program` with the real OpenTelemetry SDK installed through
 * `Otel.layer` (an in-memory span exporter, a pulled metric reader) and a
 * fresh metric registry; `program` gets the finished spans and the metrics.
 */
const withOtel = <A, E>(program: (probe: OtelTest.Harness) => Effect.Effect<A, E>) =>
  Effect.flatMap(OtelTest.make({ serviceName: "telemetry-test" }), (harness) =>
    program(harness).pipe(Effect.provide(harness.layer))).pipe(
      Effect.provideService(Metric.MetricRegistry, new Map())
    )

const childrenOf = (spans: ReadonlyArray<ReadableSpan>, parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId)

const callSpan = (spans: ReadonlyArray<ReadableSpan>, name: string) => {
  const found = spans.filter((s) => s.name === name)
  assert.strictEqual(found.length, 1, `one ${name} span in ${spans.map((s) => s.name).join(", ")}`)
  return found[0]!
}

const costOf = (where: { provider: string; model: string }, inputTokens: number, outputTokens: number) =>
  Effect.map(Pricing.Pricing, (pricing) =>
    pricing.cost(where.provider, where.model, {
      inputTokens,
      outputTokens,
      cachedInputTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      totalTokens: inputTokens + outputTokens
    }).costUsd)

const everything = (spans: ReadonlyArray<ReadableSpan>): string =>
  JSON.stringify(spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })))

/** The data points of metric `name` whose attributes include `where`. */
const points = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string> = {}) =>
  metrics.filter((m) => m.descriptor.name === name).flatMap((m) =>
    (m.dataPoints as ReadonlyArray<{ attributes: Record<string, unknown>; value: unknown }>).filter((p) =>
      Object.entries(where).every(([k, v]) => p.attributes[k] === v)
    )
  )
const sum = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string> = {}) =>
  points(metrics, name, where).reduce((total, p) => total + (p.value as number), 0)
const histogram = (metrics: ReadonlyArray<MetricData>, name: string, where: Record<string, string> = {}) => {
  const found = points(metrics, name, where).map((p) => p.value as Histogram)
  return {
    count: found.reduce((total, h) => total + h.count, 0),
    sum: found.reduce((total, h) => total + (h.sum ?? 0), 0)
  }
}

describe("Telemetry spans through the OpenTelemetry SDK", () => {
  it.effect("a fallback call is one `chat {route}` client span with one child per attempt, GenAI attributes asserted", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        const a = yield* Llm.makeTest({ ...mini, steps: [{ error: serverError(mini) }] })
        const b = yield* Llm.makeTest({
          ...haiku,
          steps: [{ text: "hello", usage: { inputTokens: 12, outputTokens: 5 }, finishReason: "length" }]
        })
        const response = yield* Llm.generate(ask({ maxTokens: 100, temperature: 0.5 })).pipe(
          Effect.provide(Fallback.layer([a.layer, b.layer]).pipe(Telemetry.layer({ route: "default" })))
        )
        const expectedCost = yield* costOf(haiku, 12, 5)
        assert.isAbove(expectedCost, 0)
        assert.strictEqual(response.costUsd, expectedCost)

        const all = spans()
        const call = callSpan(all, "chat default")
        assert.strictEqual(call.kind, SpanKind.CLIENT)
        assert.strictEqual(call.parentSpanContext, undefined)
        assert.deepInclude(call.attributes, {
          "gen_ai.operation.name": "chat",
          "switchboard.route": "default",
          "gen_ai.request.max_tokens": 100,
          "gen_ai.request.temperature": 0.5,
          "gen_ai.provider.name": "anthropic",
          "gen_ai.response.model": "claude-haiku-4-5",
          "gen_ai.response.id": response.id,
          "gen_ai.usage.input_tokens": 12,
          "gen_ai.usage.output_tokens": 5,
          "switchboard.cost.usd": expectedCost,
          "switchboard.attempts": 2,
          "switchboard.fallbacks": 1,
          "switchboard.cache.hit": false
        })
        assert.deepStrictEqual(call.attributes["gen_ai.response.finish_reasons"], ["length"])
        assert.include(call.events.map((e) => e.name), "FallbackTaken")

        const attempts = childrenOf(all, call)
        assert.strictEqual(attempts.length, 2)
        const [first, second] = attempts.sort((x, y) =>
          x.startTime[0] - y.startTime[0] || x.startTime[1] - y.startTime[1]
        )
        assert.strictEqual(first!.kind, SpanKind.CLIENT)
        assert.deepInclude(first!.attributes, {
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": "openai",
          "gen_ai.request.model": "gpt-4o-mini",
          "error.type": "ServerError"
        })
        assert.strictEqual(first!.status.code, SpanStatusCode.ERROR)
        assert.deepInclude(second!.attributes, {
          "gen_ai.provider.name": "anthropic",
          "gen_ai.request.model": "claude-haiku-4-5",
          "gen_ai.response.model": "claude-haiku-4-5",
          "gen_ai.response.id": response.id,
          "gen_ai.usage.input_tokens": 12,
          "gen_ai.usage.output_tokens": 5,
          "switchboard.cost.usd": expectedCost
        })
        assert.deepStrictEqual(second!.attributes["gen_ai.response.finish_reasons"], ["length"])
        assert.notProperty(second!.attributes, "error.type")
        // Content capture is off: the prompt and the completion appear nowhere.
        assert.notInclude(everything(all), "hunter2")
        assert.notInclude(everything(all), "hello")
      })
    ))

  it.effect("retries and hedge legs are attempts too: each is a child of the call span", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        // A retry: the first try fails, the second answers.
        const flaky = yield* Llm.makeTest({ ...mini, steps: [{ error: serverError(mini) }, { text: "second" }] })
        yield* Llm.generate(ask()).pipe(
          Effect.provide(flaky.layer.pipe(Retry.layer({ times: 1, base: "0 millis", jitter: false }), Telemetry.layer({ route: "retried" })))
        )
        const retried = callSpan(spans(), "chat retried")
        assert.deepStrictEqual(
          childrenOf(spans(), retried).map((s) => s.attributes["error.type"] ?? "ok").sort(),
          ["ServerError", "ok"]
        )
        assert.strictEqual(retried.attributes["switchboard.retries"], 1)
        // A hedge: the primary is slow, the backup answers first; the primary's leg is cut.
        const slow = Llm.layerTest({ ...mini, steps: [{ text: "slow", delay: "1 second" }] })
        const fast = Llm.layerTest({ ...haiku, steps: [{ text: "fast" }] })
        const fiber = yield* Effect.forkChild(
          Llm.generate(ask()).pipe(
            Effect.provide(slow.pipe(Hedge.layer({ after: "100 millis", backup: fast }), Telemetry.layer({ route: "hedged" })))
          )
        )
        yield* TestClock.adjust("100 millis")
        const response = yield* Fiber.join(fiber)
        assert.strictEqual(response.text, "fast")
        const hedged = callSpan(spans(), "chat hedged")
        assert.strictEqual(hedged.attributes["switchboard.hedged"], true)
        const legs = childrenOf(spans(), hedged)
        assert.deepStrictEqual(
          legs.map((s) => [s.attributes["gen_ai.request.model"], s.attributes["error.type"] ?? "ok"]).sort(),
          [["claude-haiku-4-5", "ok"], ["gpt-4o-mini", "Interrupted"]]
        )
        assert.isFalse(spans().some((s) => s.name === "Hedge.generate"))
      })
    ))

  it.effect("Otel.layer alone: Llm.generate over a Fallback is a `chat {model}` call span over its attempts", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        const a = yield* Llm.makeTest({ ...mini, steps: [{ error: serverError(mini) }] })
        const b = yield* Llm.makeTest({ ...mini, steps: [{ text: "fine", usage: { inputTokens: 2, outputTokens: 1 } }] })
        yield* Llm.generate(ask({ model: "gpt-4o-mini" })).pipe(Effect.provide(Fallback.layer([a.layer, b.layer])))
        const call = callSpan(spans(), "chat gpt-4o-mini")
        assert.strictEqual(call.parentSpanContext, undefined)
        assert.strictEqual(call.kind, SpanKind.CLIENT)
        assert.strictEqual(call.attributes["switchboard.attempts"], 2)
        assert.deepStrictEqual(
          childrenOf(spans(), call).map((s) => [s.name, s.attributes["error.type"] ?? "ok"]).sort(),
          [["Llm.attempt", "ServerError"], ["Llm.attempt", "ok"]]
        )
        assert.isFalse(spans().some((s) => s.name === "Fallback.generate"))
      })
    ))

  it.effect("Otel.layer({ callSpans: false }): Llm.generate makes no call span of its own", () =>
    Effect.gen(function*() {
      const harness = yield* OtelTest.make({ callSpans: false })
      yield* Llm.generate(ask()).pipe(
        Effect.provide(Llm.layerTest({ ...mini, steps: [{ text: "x" }] })),
        Effect.andThen(Effect.sync(() => assert.deepStrictEqual(harness.spans().map((s) => s.name), ["Llm.attempt"]))),
        Effect.provide(harness.layer)
      )
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("a cached call: the second call's span says cache hit and has no attempt under it", () =>
    withOtel(({ metrics, spans }) =>
      Effect.gen(function*() {
        const leaf = yield* Llm.makeTest({ ...mini, steps: [{ text: "once", usage: { inputTokens: 3, outputTokens: 1 } }] })
        const stack = leaf.layer.pipe(ResponseCache.layer({ capacity: 10, ttl: "1 hour" }), Telemetry.layer({ route: "cached" }))
        yield* Effect.gen(function*() {
          yield* Llm.generate(ask({ temperature: 0 }))
          yield* Llm.generate(ask({ temperature: 0 }))
        }).pipe(Effect.provide(stack))
        const calls = spans().filter((s) => s.name === "chat cached")
        assert.strictEqual(calls.length, 2)
        assert.strictEqual(calls[0]!.attributes["switchboard.cache.hit"], false)
        assert.strictEqual(childrenOf(spans(), calls[0]!).length, 1)
        assert.strictEqual(calls[1]!.attributes["switchboard.cache.hit"], true)
        assert.strictEqual(calls[1]!.attributes["switchboard.attempts"], 0)
        assert.strictEqual(childrenOf(spans(), calls[1]!).length, 0)
        const m = yield* metrics
        assert.strictEqual(sum(m, "switchboard.cache.requests", { "switchboard.cache.result": "hit" }), 1)
        assert.strictEqual(sum(m, "switchboard.cache.requests", { "switchboard.cache.result": "miss" }), 1)
        // Tokens are counted once: the hit spent nothing.
        assert.strictEqual(histogram(m, "gen_ai.client.token.usage", { "gen_ai.token.type": "input" }).sum, 3)
      })
    ))

  it.effect("a routed call: the call span carries the strategy and the candidate chosen", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        const stack = Router.layer([
          { name: "mini", ...mini, layer: Llm.layerTest({ ...mini, steps: [{ text: "mini" }] }) },
          { name: "haiku", ...haiku, layer: Llm.layerTest({ ...haiku, steps: [{ text: "haiku" }] }) }
        ], { strategy: "leastCost" }).pipe(Telemetry.layer({ route: "smart" }))
        const response = yield* Llm.generate(ask()).pipe(Effect.provide(stack))
        const call = callSpan(spans(), "chat smart")
        assert.strictEqual(call.attributes["switchboard.route.strategy"], "leastCost")
        assert.strictEqual(call.attributes["switchboard.route.candidate"], response.text)
        assert.include(String(call.attributes["switchboard.route.decision"]), response.text)
        assert.include(call.events.map((e) => e.name), "RouteChosen")
        const [attempt] = childrenOf(spans(), call)
        assert.strictEqual(attempt?.attributes["gen_ai.request.model"], response.model)
      })
    ))

  it.effect("a budget refusal: the call span fails with error.type BudgetExceeded and names the scope; no attempt", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        const stack = Llm.layerTest({ ...mini, steps: [{ text: "never" }] }).pipe(
          Budget.layer({ limitUsd: 1e-9, window: "day", price: mini }),
          Telemetry.layer({ route: "capped" })
        )
        const error = yield* Effect.flip(Llm.generate(ask({ maxTokens: 1000 })).pipe(Effect.provide(stack)))
        assert.strictEqual(error._tag, "BudgetExceeded")
        const call = callSpan(spans(), "chat capped")
        assert.strictEqual(call.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(call.attributes["error.type"], "BudgetExceeded")
        assert.strictEqual(call.attributes["switchboard.budget.scope"], "global")
        assert.include(call.events.map((e) => e.name), "BudgetExceeded")
        assert.strictEqual(childrenOf(spans(), call).length, 0)
      })
    ))

  it.effect("a stream: the call and attempt spans carry the time to first part; the finish part's usage", () =>
    withOtel(({ metrics, spans }) =>
      Effect.gen(function*() {
        const stack = Llm.layerTest({
          ...mini,
          steps: [{ text: "abc", chunks: ["a", "b", "c"], delay: "40 millis", usage: { inputTokens: 4, outputTokens: 3 } }]
        }).pipe(Telemetry.layer())
        const fiber = yield* Effect.forkChild(Stream.runCollect(Llm.stream(ask({ model: "gpt-4o-mini" }))).pipe(Effect.provide(stack)))
        yield* Effect.yieldNow
        yield* TestClock.adjust("40 millis")
        yield* Fiber.join(fiber)
        const call = callSpan(spans(), "chat gpt-4o-mini")
        assert.strictEqual(call.attributes["gen_ai.request.stream"], true)
        assert.strictEqual(call.attributes["gen_ai.response.time_to_first_chunk"], 0.04)
        assert.strictEqual(call.attributes["gen_ai.usage.output_tokens"], 3)
        const [attempt] = childrenOf(spans(), call)
        assert.strictEqual(attempt?.attributes["gen_ai.response.time_to_first_chunk"], 0.04)
        const ttft = histogram(yield* metrics, "gen_ai.client.operation.time_to_first_chunk", {
          "gen_ai.provider.name": "openai"
        })
        assert.deepStrictEqual(ttft, { count: 1, sum: 0.04 })
      })
    ))

  it.effect("content capture on: the prompt and completion are span events, cut at maxContentLength", () =>
    withOtel(({ spans }) =>
      Effect.gen(function*() {
        const long = "x".repeat(500)
        const stack = Llm.layerTest({ ...mini, steps: [{ text: `answer ${long}` }] }).pipe(
          Telemetry.layer({ route: "r", captureContent: true, maxContentLength: 100 })
        )
        yield* Llm.generate({ messages: [{ role: "user", content: `${secretPrompt} ${long}` }] }).pipe(Effect.provide(stack))
        const call = callSpan(spans(), "chat r")
        const prompt = call.events.find((e) => e.name === "gen_ai.content.prompt")
        const completion = call.events.find((e) => e.name === "gen_ai.content.completion")
        const promptText = String(prompt?.attributes?.["gen_ai.prompt"])
        assert.include(promptText, "hunter2")
        assert.isAtMost(promptText.length, 101)
        const completionText = String(completion?.attributes?.["gen_ai.completion"])
        assert.isTrue(completionText.startsWith("answer xxx"))
        assert.isAtMost(completionText.length, 101)
      })
    ))

  it.effect("no tracer installed: no call span is made (the attempt's span has no `chat` parent), the call answers", () =>
    Effect.gen(function*() {
      const parents: Array<string | undefined> = []
      const leaf = Llm.make({
        provider: "p",
        model: "m",
        generate: (_request, model) =>
          Effect.map(Effect.orDie(Effect.currentSpan), (span) => {
            const parent = span.parent._tag === "Some" && span.parent.value._tag === "Span" ? span.parent.value.name : undefined
            parents.push(`${span.name} < ${parent}`)
            return {
              id: "1",
              provider: "p",
              model,
              text: "ok",
              content: [{ type: "text" as const, text: "ok" }],
              toolCalls: [],
              finishReason: "stop" as const,
              usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, totalTokens: 2 },
              costUsd: 0,
              latencyMs: 0,
              cached: false,
              attempts: []
            }
          }),
        stream: () => Stream.die("not used")
      })
      const traced = Telemetry.wrap({ route: "quiet" })(leaf)
      const response = yield* traced.generate(ask()).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
      assert.strictEqual(response.text, "ok")
      assert.deepStrictEqual(parents, ["Llm.attempt < undefined"])
      // With the SDK installed, the same call is a `chat quiet` span over the attempt.
      yield* withOtel(() => traced.generate(ask()))
      assert.deepStrictEqual(parents, ["Llm.attempt < undefined", "Llm.attempt < chat quiet"])
    }))

  it.effect("a bad option fails the layer with SwitchboardConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(Llm.layerTest([{ text: "x" }]).pipe(Telemetry.layer({ maxContentLength: -1 })))
      )
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      assert.include((error as { path: string }).path, "Telemetry.maxContentLength")
    }))
})

describe("Telemetry metrics through the OpenTelemetry SDK", () => {
  it.effect("metrics match a scripted run exactly: attempts by outcome, token sums, cost sums, durations", () =>
    withOtel(({ metrics }) =>
      Effect.gen(function*() {
        const a = yield* Llm.makeTest({
          ...mini,
          steps: [
            { text: "one", usage: { inputTokens: 10, outputTokens: 2 } },
            { error: serverError(mini) },
            { text: "three", usage: { inputTokens: 30, outputTokens: 6 } },
            { error: new LlmError.RateLimited({ ...mini, scope: "requests", source: "provider" }) }
          ]
        })
        const b = yield* Llm.makeTest({ ...haiku, steps: [{ text: "two", usage: { inputTokens: 20, outputTokens: 4 } }] })
        const stack = Fallback.layer([a.layer, b.layer]).pipe(Telemetry.layer({ route: "default" }))
        yield* Effect.gen(function*() {
          yield* Llm.generate(ask()) // a ok
          yield* Llm.generate(ask()) // a ServerError → b ok
          yield* Llm.generate(ask()) // a ok
        }).pipe(Effect.provide(stack))
        const m = yield* metrics
        const at = (where: { provider: string; model: string }) => ({
          "gen_ai.provider.name": where.provider,
          "gen_ai.request.model": where.model
        })
        assert.strictEqual(sum(m, "switchboard.attempts", { ...at(mini), "switchboard.outcome": "ok" }), 2)
        assert.strictEqual(sum(m, "switchboard.attempts", { ...at(mini), "switchboard.outcome": "ServerError" }), 1)
        assert.strictEqual(sum(m, "switchboard.attempts", { ...at(haiku), "switchboard.outcome": "ok" }), 1)
        assert.strictEqual(sum(m, "switchboard.attempts"), 4)
        const input = { "gen_ai.token.type": "input" }
        const output = { "gen_ai.token.type": "output" }
        assert.deepStrictEqual(histogram(m, "gen_ai.client.token.usage", { ...at(mini), ...input }), { count: 2, sum: 40 })
        assert.deepStrictEqual(histogram(m, "gen_ai.client.token.usage", { ...at(mini), ...output }), { count: 2, sum: 8 })
        assert.deepStrictEqual(histogram(m, "gen_ai.client.token.usage", { ...at(haiku), ...input }), { count: 1, sum: 20 })
        assert.deepStrictEqual(histogram(m, "gen_ai.client.token.usage", { ...at(haiku), ...output }), { count: 1, sum: 4 })
        const miniCost = (yield* costOf(mini, 10, 2)) + (yield* costOf(mini, 30, 6))
        const haikuCost = yield* costOf(haiku, 20, 4)
        assert.closeTo(sum(m, "switchboard.cost.usd", at(mini)), miniCost, 1e-15)
        assert.closeTo(sum(m, "switchboard.cost.usd", at(haiku)), haikuCost, 1e-15)
        assert.strictEqual(histogram(m, "gen_ai.client.operation.duration").count, 4)
        assert.strictEqual(histogram(m, "gen_ai.client.operation.duration", { "error.type": "ServerError" }).count, 1)
        assert.strictEqual(histogram(m, "switchboard.overhead", { "switchboard.route": "default" }).count, 3)
        // The semconv buckets, and the kinds the SDK reports.
        const duration = m.find((x) => x.descriptor.name === "gen_ai.client.operation.duration")!
        assert.strictEqual(duration.dataPointType, DataPointType.HISTOGRAM)
        assert.deepStrictEqual(
          (duration.dataPoints[0]!.value as Histogram).buckets.boundaries,
          [...Telemetry.durationBoundaries]
        )
        // Bounded attribute sets: no request ids, tenants or prompt text on any series.
        assert.notInclude(JSON.stringify(m), "hunter2")
      })
    ))

  it.effect("breaker state, budget spent and reserved, rate-limit waits are recorded per key", () =>
    Effect.gen(function*() {
      yield* Telemetry.recordBreakerState("openai", "gpt-4o-mini", "open")
      yield* Telemetry.recordBudget("team-a", 1.5, 0.25)
      yield* Telemetry.recordRateLimitWait(250)
      const snapshot = yield* Metric.snapshot
      const find = (id: string) => snapshot.filter((s) => s.id === id)
      assert.deepStrictEqual(find("switchboard.breaker.state").map((s) => [s.attributes, (s.state as { value: number }).value]), [
        [{ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini" }, 2]
      ])
      assert.strictEqual((find("switchboard.budget.spent.usd")[0]!.state as { value: number }).value, 1.5)
      assert.strictEqual((find("switchboard.budget.reserved.usd")[0]!.state as { value: number }).value, 0.25)
      assert.strictEqual((find("switchboard.ratelimit.wait")[0]!.state as { sum: number }).sum, 0.25)
    }).pipe(Effect.provide(Telemetry.layerMetrics), Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("nothing installed (no Otel layer, no tracer, no Telemetry.layer): no metric is recorded", () =>
    Effect.gen(function*() {
      const leaf = Llm.layerTest({ ...mini, steps: [{ text: "ok", usage: { inputTokens: 3, outputTokens: 1 } }] })
      yield* Llm.generate(ask()).pipe(Effect.provide(leaf.pipe(ResponseCache.layer({ capacity: 10, ttl: "1 hour" }))))
      yield* Telemetry.recordBreakerState("openai", "gpt-4o-mini", "open")
      assert.deepStrictEqual(yield* Metric.snapshot, [])
      // With metrics turned on, the same call is counted.
      yield* Llm.generate(ask()).pipe(Effect.provide(leaf), Effect.provide(Telemetry.layerMetrics))
      const ids = (yield* Metric.snapshot).map((s) => s.id)
      assert.include(ids, "switchboard.attempts")
      assert.include(ids, "gen_ai.client.token.usage")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})
