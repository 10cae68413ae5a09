/**
 * `@switchboard/otel`: OpenTelemetry exporters (OTLP over HTTP, Prometheus)
 * for Switchboard's spans and metrics.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Otel from "./Otel.ts"

/** @since 0.1.0 */
export * as OtelTest from "./OtelTest.ts"
