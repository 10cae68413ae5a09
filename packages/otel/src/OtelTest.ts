/**
 * Test support: the real OpenTelemetry SDK with an in-memory span exporter
 * and a metric reader pulled on demand, installed through {@link Otel.layer},
 * so a test can assert the spans and metrics its calls produced.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm, Telemetry } from "@switchboard/core"
 * import { OtelTest } from "@switchboard/otel"
 *
 * const program = Effect.gen(function*() {
 *   const otel = yield* OtelTest.make()
 *   yield* Llm.generateText("hi").pipe(
 *     Effect.provide(Llm.layerTest([{ text: "hello" }]).pipe(Telemetry.layer({ route: "default" }))),
 *     Effect.provide(otel.layer)
 *   )
 *   return otel.spans().map((span) => span.name) // ["Llm.attempt", "chat default"]
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Resource from "@effect/opentelemetry/Resource"
import { MetricReader, type MetricData } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import type { SwitchboardConfigError } from "@switchboard/core"
import { Effect, type Layer } from "effect"
import * as Otel from "./Otel.ts"

/**
 * A metric reader that exports nowhere: {@link Harness.metrics} pulls from it.
 *
 * @since 0.1.0
 * @category models
 */
export class PullMetricReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/**
 * What {@link make} returns: the layer to provide, and the spans and metrics
 * recorded while it is open.
 *
 * @since 0.1.0
 * @category models
 */
export interface Harness {
  readonly layer: Layer.Layer<Otel.Prometheus | Resource.Resource, SwitchboardConfigError.SwitchboardConfigError>
  /** The spans ended so far (read them while the layer is open: closing it clears them). */
  readonly spans: () => ReadonlyArray<ReadableSpan>
  /** The metrics now, as the SDK exports them. */
  readonly metrics: Effect.Effect<ReadonlyArray<MetricData>>
  /** Forgets the spans recorded so far. */
  readonly reset: () => void
}

/**
 * A fresh harness (see the module docs).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: {
  readonly serviceName?: string | undefined
  /** As in `Otel.layer` (default `true`). */
  readonly callSpans?: boolean | undefined
}): Effect.Effect<Harness> =>
  Effect.sync(() => {
    const exporter = new InMemorySpanExporter()
    const reader = new PullMetricReader()
    return {
      layer: Otel.layer({
        serviceName: options?.serviceName ?? "switchboard-test",
        spanProcessors: [new SimpleSpanProcessor(exporter)],
        metricReaders: [reader],
        callSpans: options?.callSpans ?? true
      }),
      spans: () => exporter.getFinishedSpans(),
      metrics: Effect.map(
        Effect.promise(() => reader.collect()),
        ({ resourceMetrics }) => resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics)
      ),
      reset: () => exporter.reset()
    }
  })

/**
 * The OpenTelemetry span kinds and status codes, for assertions.
 *
 * @since 0.1.0
 * @category re-exports
 */
export { SpanKind, SpanStatusCode } from "@opentelemetry/api"

/**
 * Metric data point kinds, for assertions.
 *
 * @since 0.1.0
 * @category re-exports
 */
export { DataPointType } from "@opentelemetry/sdk-metrics"

/**
 * The SDK's span and metric shapes.
 *
 * @since 0.1.0
 * @category re-exports
 */
export type { Histogram, MetricData } from "@opentelemetry/sdk-metrics"

/**
 * The SDK's finished span.
 *
 * @since 0.1.0
 * @category re-exports
 */
export type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
