/**
 * The exporters end to end: real SDKs call the simulator through a
 * Telemetry-wrapped stack; `Otel.layer` serves Prometheus text over HTTP (the
 * test scrapes and parses it) and sends OTLP/HTTP to a collector stub on
 * 127.0.0.1 (the test decodes what arrived). The providers' API keys must
 * appear in none of it, even with content capture on.
 */
import { readFileSync } from "node:fs"
import * as http from "node:http"
import { assert, describe, it } from "@effect/vitest"
import { Anthropic } from "@switchboard/anthropic"
import { Budget, CircuitBreaker, Fallback, Llm, LlmError, RateLimit, ResponseCache, Telemetry } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Otel } from "@switchboard/otel"
import { Sim } from "@switchboard/sim"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Metric, Redacted, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"

const openaiKey = "sk-openai-SECRET-4242"
const anthropicKey = "sk-ant-SECRET-4343"

const config = {
  providers: {
    openai: { protocol: "openai" as const, models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
    anthropic: {
      protocol: "anthropic" as const,
      models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }]
    }
  }
}

const stackOver = (sim: Sim.SimHandle) =>
  Fallback.layer([
    OpenAI.model("gpt-4o-mini").pipe(
      Layer.provide(OpenAI.compatible({ name: "openai", baseURL: `${sim.providerUrl("openai")}/v1`, apiKey: openaiKey }))
    ),
    Anthropic.model("claude-haiku-4-5").pipe(
      Layer.provide(Anthropic.layerClient({ apiKey: anthropicKey, baseURL: sim.providerUrl("anthropic") }))
    )
  ]).pipe(Telemetry.layer({ route: "default", captureContent: true }))

const ask = (content: string) => ({ messages: [{ role: "user" as const, content }], maxTokens: 20 })

interface Received {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** An OTLP/HTTP collector stub on 127.0.0.1: keeps every request it gets. */
const collector = Effect.acquireRelease(
  Effect.callback<{ readonly url: string; readonly received: Array<Received>; readonly server: http.Server }>((resume) => {
    const received: Array<Received> = []
    const server = http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        received.push({ path: request.url ?? "", headers: request.headers, body: Buffer.concat(chunks).toString("utf8") })
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, received, server }))
    })
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

interface Sample {
  readonly name: string
  readonly labels: Record<string, string>
  readonly value: number
}

/** Parses Prometheus text exposition format into samples (comments skipped). */
const parsePrometheus = (text: string): ReadonlyArray<Sample> =>
  text.split("\n").flatMap((line) => {
    if (line.startsWith("#") || line.trim() === "") return []
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match === null) throw new Error(`not a Prometheus sample: ${line}`)
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => c === "n" ? "\n" : c)
    }
    return [{ name: match[1]!, labels, value: Number(match[3]) }]
  })

const sampleSum = (samples: ReadonlyArray<Sample>, name: string, where: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0)

/** OTLP JSON attribute list → plain record. */
const attributesOf = (list: ReadonlyArray<{ key: string; value: Record<string, unknown> }> | undefined) => {
  const out: Record<string, unknown> = {}
  for (const { key, value } of list ?? []) {
    const v = value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue ?? value.arrayValue
    out[key] = typeof v === "string" && value.intValue !== undefined ? Number(v) : v
  }
  return out
}

describe("Otel exporters", () => {
  it.live("Prometheus over HTTP: the endpoint serves parseable text with the run's counts; the in-process text agrees", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ status: 500, times: 1 }] })
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Otel.layer({ serviceName: "prom-test", prometheus: { port: 0, host: "127.0.0.1" } }),
        scope
      )
      const prometheus = Layer.succeedContext(context)
      const program = Effect.gen(function*() {
        yield* Llm.generate(ask("first question")) // openai 500 → anthropic
        yield* Llm.generate(ask("second question")) // openai
        const { port } = yield* Otel.Prometheus
        assert.isAbove(port ?? 0, 0)
        const scraped = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`))
        assert.strictEqual(scraped.status, 200)
        assert.include(scraped.headers.get("content-type") ?? "", "text/plain")
        const text = yield* Effect.promise(() => scraped.text())
        const missing = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/nope`))
        assert.strictEqual(missing.status, 404)
        return { text, inProcess: yield* Otel.prometheusText, standalone: yield* Otel.renderPrometheus() }
      })
      const { inProcess, standalone, text } = yield* program.pipe(Effect.provide(stackOver(sim)), Effect.provide(prometheus))
      yield* Scope.close(scope, Exit.void)
      const samples = parsePrometheus(text)
      const openai = { gen_ai_provider_name: "openai", gen_ai_request_model: "gpt-4o-mini" }
      const anthropic = { gen_ai_provider_name: "anthropic", gen_ai_request_model: "claude-haiku-4-5" }
      assert.strictEqual(sampleSum(samples, "switchboard_attempts_total", { ...openai, switchboard_outcome: "ok" }), 1)
      assert.strictEqual(
        sampleSum(samples, "switchboard_attempts_total", { ...openai, switchboard_outcome: "ServerError" }),
        1
      )
      assert.strictEqual(sampleSum(samples, "switchboard_attempts_total", { ...anthropic, switchboard_outcome: "ok" }), 1)
      assert.strictEqual(sampleSum(samples, "gen_ai_client_operation_duration_count"), 3)
      assert.strictEqual(sampleSum(samples, "gen_ai_client_token_usage_count", { gen_ai_token_type: "output" }), 2)
      assert.isAbove(sampleSum(samples, "gen_ai_client_token_usage_sum", { gen_ai_token_type: "input" }), 0)
      assert.isAbove(sampleSum(samples, "switchboard_cost_usd_total"), 0)
      assert.strictEqual(sampleSum(samples, "switchboard_overhead_count", { switchboard_route: "default" }), 2)
      // The semconv buckets of the duration histogram (plus +Inf).
      const buckets = samples.filter((s) => s.name === "gen_ai_client_operation_duration_bucket" && s.labels.error_type === undefined)
        .map((s) => s.labels.le)
      assert.includeMembers(buckets, ["0.01", "0.02", "81.92", "+Inf"])
      // The in-process text reads the same series.
      const again = parsePrometheus(inProcess)
      assert.strictEqual(sampleSum(again, "switchboard_attempts_total"), sampleSum(samples, "switchboard_attempts_total"))
      // So does the text rendered with no OpenTelemetry layer at all.
      const alone = parsePrometheus(standalone)
      assert.strictEqual(sampleSum(alone, "switchboard_attempts_total"), 3)
      assert.strictEqual(
        sampleSum(alone, "gen_ai_client_token_usage_sum", { gen_ai_token_type: "input" }),
        sampleSum(samples, "gen_ai_client_token_usage_sum", { gen_ai_token_type: "input" })
      )
      for (const secret of [openaiKey, anthropicKey, "SECRET"]) {
        assert.notInclude(text, secret)
        assert.notInclude(inProcess, secret)
        assert.notInclude(standalone, secret)
      }
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.live("OTLP over HTTP to a collector stub: the call and attempt spans and the metrics arrive, decodable; no key in them", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ status: 500, times: 1 }] })
      const stub = yield* collector
      const otel = Otel.layer({
        serviceName: "otlp-test",
        otlp: { endpoint: stub.url, headers: { "x-collector-token": Redacted.make("collector-token-1") } }
      })
      // The layer closes after the calls: closing flushes the batched spans and the last metrics.
      yield* Llm.generate(ask("what is the capital of France?")).pipe(
        Effect.provide(stackOver(sim)),
        Effect.provide(otel),
        Effect.scoped
      )
      const traces = stub.received.filter((r) => r.path === "/v1/traces")
      const metrics = stub.received.filter((r) => r.path === "/v1/metrics")
      assert.isAbove(traces.length, 0)
      assert.isAbove(metrics.length, 0)
      assert.strictEqual(traces[0]!.headers["x-collector-token"], "collector-token-1")
      assert.include(traces[0]!.headers["content-type"] ?? "", "application/json")

      type OtlpSpan = {
        name: string
        kind: number
        spanId: string
        parentSpanId?: string
        attributes: ReadonlyArray<{ key: string; value: Record<string, unknown> }>
        events?: ReadonlyArray<{ name: string; attributes?: ReadonlyArray<{ key: string; value: Record<string, unknown> }> }>
      }
      const spans: Array<OtlpSpan> = traces.flatMap((r) =>
        JSON.parse(r.body).resourceSpans.flatMap((rs: { scopeSpans: ReadonlyArray<{ spans: ReadonlyArray<OtlpSpan> }> }) =>
          rs.scopeSpans.flatMap((ss) => ss.spans)
        )
      )
      const resource = attributesOf(JSON.parse(traces[0]!.body).resourceSpans[0].resource.attributes)
      assert.strictEqual(resource["service.name"], "otlp-test")
      const call = spans.find((s) => s.name === "chat default")
      assert.isDefined(call)
      assert.strictEqual(call!.kind, 3) // SPAN_KIND_CLIENT in OTLP
      const callAttributes = attributesOf(call!.attributes)
      assert.strictEqual(callAttributes["gen_ai.operation.name"], "chat")
      assert.strictEqual(callAttributes["gen_ai.provider.name"], "anthropic")
      assert.strictEqual(callAttributes["switchboard.attempts"], 2)
      assert.isAbove(Number(callAttributes["gen_ai.usage.output_tokens"]), 0)
      const children = spans.filter((s) => s.parentSpanId === call!.spanId)
      assert.deepStrictEqual(
        children.map((s) => attributesOf(s.attributes)["error.type"] ?? "ok").sort(),
        ["ServerError", "ok"]
      )
      // Content capture is on: the prompt travels as a span event …
      const prompt = call!.events?.find((e) => e.name === "gen_ai.content.prompt")
      assert.include(String(attributesOf(prompt?.attributes)["gen_ai.prompt"]), "capital of France")

      const metricNames = metrics.flatMap((r) =>
        JSON.parse(r.body).resourceMetrics.flatMap((rm: { scopeMetrics: ReadonlyArray<{ metrics: ReadonlyArray<{ name: string }> }> }) =>
          rm.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.name))
        )
      )
      assert.includeMembers(metricNames, [
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "switchboard.cost.usd",
        "switchboard.attempts",
        "switchboard.overhead"
      ])
      // … but no API key is in anything that left the process.
      for (const body of stub.received.map((r) => r.body)) {
        assert.notInclude(body, openaiKey)
        assert.notInclude(body, anthropicKey)
      }
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.live("layerFromEnv: OTEL_* variables pick the service name, endpoint, headers and signals (traces off here)", () =>
    Effect.gen(function*() {
      const stub = yield* collector
      const env = ConfigProvider.layer(ConfigProvider.fromEnv({
        env: {
          OTEL_SERVICE_NAME: "env-service",
          OTEL_EXPORTER_OTLP_ENDPOINT: stub.url,
          OTEL_EXPORTER_OTLP_HEADERS: "x-token=abc%3D1",
          OTEL_TRACES_EXPORTER: "none"
        }
      }))
      yield* Llm.generate(ask("hi")).pipe(
        Effect.provide(Llm.layerTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "hello" }] }).pipe(
          Telemetry.layer({ route: "env" })
        )),
        Effect.provide(Otel.layerFromEnv().pipe(Layer.provide(env))),
        Effect.scoped
      )
      assert.deepStrictEqual(stub.received.filter((r) => r.path === "/v1/traces"), [])
      const metrics = stub.received.filter((r) => r.path === "/v1/metrics")
      assert.isAbove(metrics.length, 0)
      assert.strictEqual(metrics[0]!.headers["x-token"], "abc=1")
      const resource = attributesOf(JSON.parse(metrics[0]!.body).resourceMetrics[0].resource.attributes)
      assert.strictEqual(resource["service.name"], "env-service")
      assert.include(metrics[0]!.body, "switchboard.attempts")
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("the Grafana dashboard queries only metric names the exporter produces, every one of them", () =>
    Effect.gen(function*() {
      const dashboard = JSON.parse(readFileSync(new URL("../examples/grafana-dashboard.json", import.meta.url), "utf8")) as {
        panels: ReadonlyArray<{ targets: ReadonlyArray<{ expr: string }> }>
      }
      const queried = new Set(
        dashboard.panels.flatMap((p) =>
          p.targets.flatMap((t) =>
            // Metric names only: drop the label lists of `by (…)` and the matchers of `{…}` first.
            t.expr.replace(/by \([^)]*\)/g, "").replace(/\{[^}]*\}/g, "").match(/\b(?:gen_ai|switchboard)_[a-z_]+/g) ?? []
          )
        )
      )
      assert.isAtLeast(queried.size, 10)
      // A run that moves every metric: calls, a stream, cache hits, a breaker opening, a budget, a rate-limit wait.
      const mini = { provider: "openai", model: "gpt-4o-mini" }
      const healthy = Llm.layerTest({
        ...mini,
        steps: [{ text: "ok", chunks: ["o", "k"], usage: { inputTokens: 5, outputTokens: 2 } }]
      })
      const stack = healthy.pipe(
        Budget.layer({ limitUsd: 10, window: "day", price: mini }),
        RateLimit.layer({ requests: { limit: 1, window: "1 second" }, onExceeded: "wait", maxWait: "1 minute" }),
        ResponseCache.layer({ capacity: 10, ttl: "1 hour" }),
        Telemetry.layer({ route: "default" })
      )
      yield* Effect.gen(function*() {
        yield* Llm.generate({ messages: [{ role: "user", content: "a" }], temperature: 0 })
        yield* Llm.generate({ messages: [{ role: "user", content: "a" }], temperature: 0 }) // cache hit
        const waiting = yield* Effect.forkChild(Stream.runDrain(Llm.stream({ messages: [{ role: "user", content: "b" }] })))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(waiting)
      }).pipe(Effect.provide(stack))
      const broken = Llm.layerTest({ ...mini, steps: [{ error: new LlmError.ServerError({ ...mini, status: 500 }) }] }).pipe(
        CircuitBreaker.layer({ failureThreshold: 1, cooldown: "1 minute", halfOpenProbes: 1 })
      )
      yield* Effect.flip(Llm.generate({ messages: [{ role: "user", content: "c" }] }).pipe(Effect.provide(broken)))
      const present = new Set(parsePrometheus(yield* Otel.prometheusText).map((s) => s.name))
      for (const name of queried) assert.isTrue(present.has(name), `${name} is exported`)
    }).pipe(
      Effect.provide(Otel.layer({ serviceName: "dashboard" })),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("bad options fail the layer with SwitchboardConfigError naming the option", () =>
    Effect.gen(function*() {
      const endpoint = yield* Effect.flip(Layer.build(Otel.layer({ serviceName: "x", otlp: { endpoint: "localhost:4318" } })))
      assert.strictEqual(endpoint.path, "Otel.otlp.endpoint")
      const name = yield* Effect.flip(Layer.build(Otel.layer({ serviceName: "" })))
      assert.strictEqual(name.path, "Otel.serviceName")
      const port = yield* Effect.flip(Layer.build(Otel.layer({ serviceName: "x", prometheus: { port: 70_000 } })))
      assert.strictEqual(port.path, "Otel.prometheus.port")
    }))

  it.effect("layerFromEnv reads the standard OTEL_* variables; the headers stay redacted", () =>
    Effect.gen(function*() {
      const headers = Otel.parseHeaders("x-api-key=abc%3D1, other = two")
      assert.deepStrictEqual(Object.keys(headers), ["x-api-key", "other"])
      assert.strictEqual(Redacted.value(headers["x-api-key"]!), "abc=1")
      assert.strictEqual(String(headers["x-api-key"]), "<redacted>")
      const bad = yield* Effect.flip(
        Layer.build(Otel.layerFromEnv()).pipe(
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url", OTEL_SERVICE_NAME: "svc" } })))
        )
      )
      assert.strictEqual((bad as { path?: string }).path, "Otel.otlp.endpoint")
    }))
})
