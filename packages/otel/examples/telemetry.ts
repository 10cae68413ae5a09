import { Effect } from "effect"
import { Fallback, Llm, Telemetry } from "@switchboard/core"
import { Otel } from "@switchboard/otel"

const stack = Fallback.layer([
  Llm.layerTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "hi" }] }),
  Llm.layerTest({ provider: "anthropic", model: "claude-haiku-4-5", steps: [{ text: "hi" }] })
]).pipe(Telemetry.layer({ route: "default" })) // outermost: one span per call

const telemetry = Otel.layer({
  serviceName: "my-app",
  otlp: { endpoint: "http://localhost:4318" }, // traces to /v1/traces, metrics to /v1/metrics
  prometheus: { port: 9464 } // GET http://localhost:9464/metrics
})

export const program = Llm.generateText("hello").pipe(Effect.provide(stack), Effect.provide(telemetry))
// Or from the standard variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,
// OTEL_METRICS_EXPORTER=prometheus, OTEL_EXPORTER_PROMETHEUS_PORT, OTEL_METRIC_EXPORT_INTERVAL, OTEL_SDK_DISABLED):
export const fromEnv = Llm.generateText("hello").pipe(Effect.provide(stack), Effect.provide(Otel.layerFromEnv()))
