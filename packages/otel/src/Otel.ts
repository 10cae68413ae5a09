/**
 * Exports Switchboard's spans and metrics (see `Telemetry` in
 * `@switchboard/core`) through OpenTelemetry: OTLP over HTTP to a collector,
 * and a Prometheus endpoint serving the text format. Built on
 * `@effect/opentelemetry`'s `NodeSdk` and the OpenTelemetry SDK.
 *
 * - {@link layer} takes `{ serviceName, otlp?, prometheus? }`; {@link layerFromEnv}
 *   reads the standard `OTEL_*` variables.
 * - Either layer also provides {@link Prometheus}: {@link prometheusText}
 *   renders the metrics as Prometheus text in-process (a gateway serves
 *   `GET /metrics` from it), whether or not the HTTP endpoint is on.
 * - With no `otlp` (and no extra span processor), no tracer is installed and
 *   spans cost nothing.
 *
 * @since 0.1.0
 */
import * as http from "node:http"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as Resource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { SwitchboardConfigError, Telemetry } from "@switchboard/core"
import { Config, Context, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"

/**
 * Where and how to send OTLP (HTTP, JSON): traces to `{endpoint}/v1/traces`,
 * metrics to `{endpoint}/v1/metrics`, every `exportInterval` (default 60 s).
 *
 * @since 0.1.0
 * @category models
 */
export interface OtlpOptions {
  /** The collector's base URL, e.g. `http://localhost:4318`. */
  readonly endpoint: string
  /** Sent with every export (e.g. an API key header); never logged. */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  /** How often metrics are pushed (default 60 seconds). */
  readonly exportInterval?: Duration.Input | undefined
  /** Send traces (default `true`). */
  readonly traces?: boolean | undefined
  /** Send metrics (default `true`). */
  readonly metrics?: boolean | undefined
}

/**
 * The Prometheus endpoint: `GET /metrics` on `port` (default 9464; 0 picks a
 * free one, see {@link Prometheus}) and `host` (default all interfaces).
 *
 * @since 0.1.0
 * @category models
 */
export interface PrometheusOptions {
  readonly port?: number | undefined
  readonly host?: string | undefined
}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `service.name` of the resource. */
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  readonly otlp?: OtlpOptions | undefined
  /** `true` serves on the default port. */
  readonly prometheus?: PrometheusOptions | true | undefined
  /** More span processors (an in-memory exporter in tests); any installs the tracer. */
  readonly spanProcessors?: ReadonlyArray<SpanProcessor> | undefined
  /** More metric readers. */
  readonly metricReaders?: ReadonlyArray<MetricReader> | undefined
  /**
   * `Llm.generate` / `Llm.stream` make a `chat {model}` call span when the
   * stack has no `Telemetry.layer` (default `true`).
   */
  readonly callSpans?: boolean | undefined
}

const Port = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(65535))
const Url = Schema.String.check(
  Schema.makeFilter((s: string) => /^https?:\/\/[^\s]+$/.test(s) || "an http(s) URL")
)

/**
 * The options Schema of {@link layer}, checked when the layer is built (the
 * config package reuses it).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OptionsSchema = Schema.Struct({
  serviceName: Schema.String.check(Schema.isNonEmpty()),
  serviceVersion: Schema.optional(Schema.String),
  otlp: Schema.optional(Schema.Struct({
    endpoint: Url,
    headers: Schema.optional(Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Redacted(Schema.String)]))),
    exportInterval: Schema.optional(Schema.Any),
    traces: Schema.optional(Schema.Boolean),
    metrics: Schema.optional(Schema.Boolean)
  })),
  prometheus: Schema.optional(Schema.Union([
    Schema.Literal(true),
    Schema.Struct({ port: Schema.optional(Port), host: Schema.optional(Schema.String) })
  ])),
  spanProcessors: Schema.optional(Schema.Array(Schema.Any)),
  metricReaders: Schema.optional(Schema.Array(Schema.Any)),
  callSpans: Schema.optional(Schema.Boolean)
})

/**
 * The metrics as Prometheus text, rendered in-process; `port` is the bound
 * port of the `GET /metrics` endpoint when it is on.
 *
 * @since 0.1.0
 * @category services
 */
export class Prometheus extends Context.Service<Prometheus, {
  readonly text: Effect.Effect<string>
  readonly port: number | undefined
}>()("@switchboard/otel/Prometheus") {}

/**
 * The current metrics in Prometheus text format.
 *
 * @since 0.1.0
 * @category accessors
 */
export const prometheusText: Effect.Effect<string, never, Prometheus> = Prometheus.use((p) => p.text)

/**
 * The metrics of the registry in context as Prometheus text, in the same
 * names and shape as {@link layer}'s endpoint (`_total` on counters), with no
 * OpenTelemetry layer needed: for a server that serves `GET /metrics` itself.
 *
 * @since 0.1.0
 * @category accessors
 */
export const renderPrometheus = (options?: { readonly serviceName?: string | undefined }): Effect.Effect<string> =>
  Effect.gen(function*() {
    const producer = yield* OtelMetrics.makeProducer().pipe(
      Effect.provide(Resource.layer({ serviceName: options?.serviceName ?? "switchboard" }))
    )
    const exporter = new PrometheusExporter({ preventServerStart: true })
    exporter.setMetricProducer(producer)
    const { resourceMetrics } = yield* Effect.promise(() => exporter.collect())
    return new PrometheusSerializer(undefined, false).serialize(resourceMetrics)
  })

const headersOf = (
  headers: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
): Record<string, string> | undefined => {
  if (headers === undefined) return undefined
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers)) out[key] = Redacted.isRedacted(value) ? Redacted.value(value) : value
  return out
}

const trimSlash = (url: string): string => url.replace(/\/+$/, "")

/** Serves `GET /metrics` from the exporter; resolves with the bound port. */
const serve = (exporter: PrometheusExporter, options: PrometheusOptions) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: http.Server; readonly port: number }, SwitchboardConfigError.SwitchboardConfigError>(
      (resume) => {
        const server = http.createServer((request, response) => {
          const path = (request.url ?? "/").split("?")[0]
          if (request.method === "GET" && path === "/metrics") {
            exporter.getMetricsRequestHandler(request, response)
          } else {
            response.statusCode = 404
            response.end("not found\n")
          }
        })
        server.once("error", (error) =>
          resume(Effect.fail(
            new SwitchboardConfigError.SwitchboardConfigError({
              path: "Otel.prometheus.port",
              message: `cannot serve Prometheus metrics: ${error.message}`
            })
          )))
        server.listen(options.port ?? 9464, options.host, () => {
          const address = server.address()
          resume(Effect.succeed({ server, port: typeof address === "object" && address !== null ? address.port : 0 }))
        })
      }
    ),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/**
 * Installs OpenTelemetry for Switchboard's spans and metrics: OTLP over HTTP
 * when `otlp` is given (traces batched, metrics pushed periodically),
 * Prometheus' `GET /metrics` when `prometheus` is given, and always the
 * in-process {@link Prometheus} text. Bad options fail the layer with
 * `SwitchboardConfigError` naming the option (`Otel.otlp.endpoint`).
 *
 * @example
 * ```ts
 * import { Otel } from "@switchboard/otel"
 *
 * const telemetry = Otel.layer({
 *   serviceName: "my-app",
 *   otlp: { endpoint: "http://localhost:4318" },
 *   prometheus: { port: 9464 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<Prometheus | Resource.Resource, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    yield* SwitchboardConfigError.decode("Otel", OptionsSchema, options)
    const interval = options.otlp?.exportInterval === undefined
      ? Duration.minutes(1)
      : yield* Effect.fromOption(Duration.fromInput(options.otlp.exportInterval)).pipe(
        Effect.mapError(() =>
          new SwitchboardConfigError.SwitchboardConfigError({
            path: "Otel.otlp.exportInterval",
            message: "Expected a duration"
          })
        )
      )
    const prometheus = new PrometheusExporter({ preventServerStart: true })
    const serializer = new PrometheusSerializer(undefined, false)
    const spanProcessors: Array<SpanProcessor> = [...(options.spanProcessors ?? [])]
    // The exporters were built against a sibling patch release of sdk-metrics:
    // the same class at runtime, a different declaration to the compiler.
    const metricReaders: Array<MetricReader> = [prometheus as unknown as MetricReader, ...(options.metricReaders ?? [])]
    const otlp = options.otlp
    if (otlp !== undefined) {
      const base = trimSlash(otlp.endpoint)
      const headers = headersOf(otlp.headers)
      if (otlp.traces !== false) {
        spanProcessors.push(
          new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, ...(headers ? { headers } : {}) }))
        )
      }
      if (otlp.metrics !== false) {
        metricReaders.push(
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics`, ...(headers ? { headers } : {}) }),
            exportIntervalMillis: Math.max(1, Duration.toMillis(interval))
          })
        )
      }
    }
    const sdk = NodeSdk.layer(() => ({
      resource: {
        serviceName: options.serviceName,
        ...(options.serviceVersion !== undefined ? { serviceVersion: options.serviceVersion } : {})
      },
      spanProcessor: spanProcessors,
      metricReader: metricReaders
    }))
    const promOptions = options.prometheus === true ? {} : options.prometheus
    const service = Layer.effect(
      Prometheus,
      Effect.gen(function*() {
        const bound = promOptions === undefined ? undefined : yield* serve(prometheus, promOptions)
        return Prometheus.of({
          port: bound?.port,
          text: Effect.promise(() => prometheus.collect()).pipe(
            Effect.map(({ resourceMetrics }) => serializer.serialize(resourceMetrics))
          )
        })
      })
    )
    const callSpans = Layer.succeed(Telemetry.CallSpans, options.callSpans ?? true)
    return Layer.mergeAll(sdk, service, callSpans, Telemetry.layerMetrics)
  }))

const list = (name: string) =>
  Config.String(name).pipe(
    Config.option,
    Config.map(Option.match({
      onNone: () => undefined,
      onSome: (value) => value.split(",").map((item) => item.trim().toLowerCase()).filter((item) => item !== "")
    }))
  )

/**
 * Parses `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values URL-encoded) into
 * redacted header values.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseHeaders = (text: string): Record<string, Redacted.Redacted<string>> => {
  const headers: Record<string, Redacted.Redacted<string>> = {}
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=")
    if (at <= 0) continue
    const key = decodeURIComponent(pair.slice(0, at).trim())
    headers[key] = Redacted.make(decodeURIComponent(pair.slice(at + 1).trim()))
  }
  return headers
}

/**
 * {@link layer} from the standard OpenTelemetry variables: `OTEL_SERVICE_NAME`
 * (default `switchboard`), `OTEL_EXPORTER_OTLP_ENDPOINT` and
 * `OTEL_EXPORTER_OTLP_HEADERS` (OTLP on when the endpoint is set),
 * `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER` (`otlp`, `prometheus`,
 * `none`), `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT`, `OTEL_METRIC_EXPORT_INTERVAL`
 * (ms) and `OTEL_SDK_DISABLED`. `overrides` win over the environment.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (
  overrides?: Partial<Options> | undefined
): Layer.Layer<Prometheus | Resource.Resource, SwitchboardConfigError.SwitchboardConfigError | Config.ConfigError> =>
  Layer.unwrap(Effect.gen(function*() {
    const env = yield* Config.all({
      disabled: Config.Boolean("OTEL_SDK_DISABLED").pipe(Config.withDefault(false)),
      serviceName: Config.String("OTEL_SERVICE_NAME").pipe(Config.withDefault("switchboard")),
      endpoint: Config.option(Config.String("OTEL_EXPORTER_OTLP_ENDPOINT")),
      headers: Config.option(Config.Redacted("OTEL_EXPORTER_OTLP_HEADERS")),
      traces: list("OTEL_TRACES_EXPORTER"),
      metrics: list("OTEL_METRICS_EXPORTER"),
      promHost: Config.option(Config.String("OTEL_EXPORTER_PROMETHEUS_HOST")),
      promPort: Config.option(Config.Port("OTEL_EXPORTER_PROMETHEUS_PORT")),
      interval: Config.option(Config.Int("OTEL_METRIC_EXPORT_INTERVAL"))
    })
    const endpoint = Option.getOrUndefined(env.endpoint)
    // Unset means `otlp` (the specification's default); `none` (or another exporter alone) turns OTLP off.
    const otlpTraces = env.traces === undefined || env.traces.includes("otlp")
    const otlpMetrics = env.metrics === undefined || env.metrics.includes("otlp")
    const wantsOtlp = !env.disabled && endpoint !== undefined && endpoint !== "" && (otlpTraces || otlpMetrics)
    const wantsPrometheus = !env.disabled && env.metrics?.includes("prometheus") === true
    const options: Options = {
      serviceName: env.serviceName,
      ...(wantsOtlp
        ? {
          otlp: {
            endpoint,
            traces: otlpTraces,
            metrics: otlpMetrics,
            ...(Option.isSome(env.headers) ? { headers: parseHeaders(Redacted.value(env.headers.value)) } : {}),
            ...(Option.isSome(env.interval) ? { exportInterval: Duration.millis(env.interval.value) } : {})
          }
        }
        : {}),
      ...(wantsPrometheus
        ? {
          prometheus: {
            ...(Option.isSome(env.promPort) ? { port: env.promPort.value } : {}),
            ...(Option.isSome(env.promHost) ? { host: env.promHost.value } : {})
          }
        }
        : {}),
      ...overrides
    }
    return layer(options)
  }))
