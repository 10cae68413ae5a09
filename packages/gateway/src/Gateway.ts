/**
 * The Switchboard gateway: an OpenAI- and Anthropic-compatible HTTP server in
 * front of named routes (each a `Layer<LLM>` or an `LLM` service), so any
 * client with an OpenAI or Anthropic SDK (any language, curl) can use a
 * Switchboard stack.
 *
 * Endpoints: `POST /v1/chat/completions` (OpenAI JSON and SSE),
 * `POST /v1/messages` (Anthropic JSON and SSE), `GET /v1/models` (the routes
 * the caller's key may use), `GET /health`, `GET /ready`, `GET /metrics`
 * (Prometheus text). Callers name a route as `model`.
 *
 * Keys (`Authorization: Bearer <key>` or `x-api-key`) are compared in constant
 * time and never logged; each is a tenant (`metadata.tenant`) with its own
 * budget, rate limit and allowed routes. Every `LlmError` becomes the
 * protocol's status and error body; a failure after a stream started ends it
 * with the protocol's in-band error event. A client that disconnects
 * interrupts the call, which cancels the provider request. Closing the layer
 * (SIGTERM in `switchboard serve`) stops accepting and drains in-flight calls
 * and streams up to `drainTimeout`.
 *
 * @since 0.1.0
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Budget, LLM, LlmError, LlmRequest, type LlmResponse, RateLimit, SwitchboardConfigError } from "@switchboard/core"
import {
  ByteSize,
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  Pull,
  Redacted,
  Schema,
  type Scope,
  Stream
} from "effect"
import type { ServeError } from "effect/http/HttpServerError"
import { HttpIncomingMessage, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { createHash, randomUUID, timingSafeEqual } from "node:crypto"
import { createServer, type Server } from "node:http"
import * as AnthropicWire from "./internal/anthropic.ts"
import * as OpenAiWire from "./internal/openai.ts"
import { fromLlmError, headersOf, type Problem, problem } from "./internal/problem.ts"
import { BadField } from "./internal/read.ts"

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const isDuration = Schema.makeFilter<string | number>((input) =>
  Option.isSome(Duration.fromInput(input as Duration.Input)) || `must be a duration such as "30 seconds", got ${JSON.stringify(input)}`
)

/**
 * A duration written as in config files: `"30 seconds"`, or milliseconds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput = Schema.Union([Schema.Finite, Schema.String]).check(isDuration)

const Positive = Schema.Finite.check(Schema.isGreaterThan(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

/**
 * A window limit: `limit` per `window`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Limit = Schema.Struct({ limit: PositiveInt, window: DurationInput })

/**
 * A key's budget: at most `limitUsd` per `window` (`"day"`, `"month"` or a duration).
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyBudget = Schema.Struct({
  limitUsd: Positive,
  window: Schema.Union([Schema.Literals(["day", "month"]), DurationInput]),
  softAt: Schema.optional(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  /** The model that prices reservations (default: the catalog's unknown-model rule, the cautious worst case). */
  price: Schema.optional(Schema.Struct({ provider: Schema.String, model: Schema.String }))
})

/**
 * A key's rate limit: requests and/or tokens per window; `onExceeded` defaults to `"fail"` (a 429).
 *
 * @since 0.1.0
 * @category schemas
 */
export const KeyRateLimit = Schema.Struct({
  requests: Schema.optional(Limit),
  tokens: Schema.optional(Limit),
  onExceeded: Schema.optional(Schema.Literals(["wait", "fail"])),
  maxWait: Schema.optional(DurationInput)
})

/**
 * One virtual key: the secret (plain or `Redacted`), its tenant, the routes it
 * may use (default: all), and its own budget and rate limit.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Key = Schema.Struct({
  key: Schema.Union([Schema.NonEmptyString, Schema.Redacted(Schema.NonEmptyString)]),
  tenant: Schema.NonEmptyString,
  routes: Schema.optional(Schema.Array(Schema.String)),
  budget: Schema.optional(KeyBudget),
  rateLimit: Schema.optional(KeyRateLimit)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Key = typeof Key.Type

/**
 * The serialisable gateway options: exactly the `gateway:` block of a config
 * file (the config package decodes that block with this schema and hands it
 * to {@link layer} with its routes).
 *
 * - `port` (default 8080; 0 picks a free port), `host` (default `"127.0.0.1"`)
 * - `keys`: virtual keys; without keys the gateway is open (tenant `"anonymous"`)
 * - `maxBodyBytes` (default 10 MB), `drainTimeout` (default `"30 seconds"`)
 * - `accessLog` (default true): one structured log line per call
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  port: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))),
  host: Schema.optional(Schema.NonEmptyString),
  keys: Schema.optional(Schema.Array(Key)),
  maxBodyBytes: Schema.optional(PositiveInt),
  drainTimeout: Schema.optional(DurationInput),
  accessLog: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * A route: a `Layer<LLM>` (built once, when the gateway starts) or a built `LLM` service.
 *
 * @since 0.1.0
 * @category models
 */
export type Route<E = SwitchboardConfigError.SwitchboardConfigError, R = never> = Layer.Layer<LLM, E, R> | LLM["Service"]

/**
 * What {@link make} and {@link layer} take: the `gateway:` options plus the
 * routes by name, and optional hooks for readiness and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export interface GatewayOptions<E = SwitchboardConfigError.SwitchboardConfigError, R = never> extends Options {
  readonly routes: Readonly<Record<string, Route<E, R>>>
  /** Extra readiness check for `GET /ready` (e.g. a Redis ping); default: always ready once built. */
  readonly ready?: Effect.Effect<boolean> | undefined
  /** The `GET /metrics` body; default: Effect's metric registry in Prometheus text. */
  readonly metrics?: Effect.Effect<string> | undefined
}

// ---------------------------------------------------------------------------
// The running gateway
// ---------------------------------------------------------------------------

/**
 * A built gateway: its HTTP app and what it serves.
 *
 * @since 0.1.0
 * @category models
 */
export interface Gateway {
  /** The HTTP application (serve it with `HttpServer.serve`, or call it in tests). */
  readonly app: Effect.Effect<
    HttpServerResponse.HttpServerResponse,
    never,
    HttpServerRequest.HttpServerRequest | Scope.Scope
  >
  readonly routes: ReadonlyArray<string>
  /** Calls and streams in flight right now. */
  readonly inFlight: Effect.Effect<number>
  /** Marks the gateway as draining: `GET /ready` answers 503 from now on. */
  readonly drain: () => void
  readonly options: Options
}

/**
 * The address a served gateway listens on (from {@link layer}).
 *
 * @since 0.1.0
 * @category services
 */
export class GatewayServer extends Context.Service<GatewayServer, {
  readonly url: string
  readonly port: number
  readonly gateway: Gateway
}>()("@switchboard/gateway/GatewayServer") {}

interface Tenant {
  readonly tenant: string
  readonly routes: ReadonlySet<string> | undefined
  readonly service: LLM["Service"]
  readonly hash: Buffer | undefined
}

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest()

const secretOf = (key: Key["key"]): string => (typeof key === "string" ? key : Redacted.value(key))

/**
 * The route of the call in flight. The request itself carries no `model` (the
 * route's own models answer, and a key's budget prices it as it would any
 * call without a model), so the route travels in the fiber's context.
 */
const CurrentRoute = Context.Reference<string>("@switchboard/gateway/CurrentRoute", { defaultValue: () => "" })

/** Sends each call to the route in {@link CurrentRoute}. */
const dispatcher = (routes: ReadonlyMap<string, LLM["Service"]>): LLM["Service"] =>
  LLM.of({
    generate: (request) => Effect.withFiber((fiber) => routes.get(fiber.getRef(CurrentRoute))!.generate(request)),
    stream: (request) =>
      Stream.unwrap(Effect.withFiber((fiber) => Effect.succeed(routes.get(fiber.getRef(CurrentRoute))!.stream(request))))
  })

type Protocol = "openai" | "anthropic"

const requests = Metric.counter("switchboard_gateway_requests", {
  description: "Gateway HTTP calls by endpoint, route and status",
  incremental: true
})
const duration = Metric.histogram("switchboard_gateway_duration_ms", {
  description: "Gateway call latency in milliseconds (to the last byte)",
  boundaries: Metric.exponentialBoundaries({ start: 5, factor: 2, count: 14 })
})

/**
 * Builds a gateway in the current scope: decodes the options (a bad one fails
 * with `SwitchboardConfigError` naming it, e.g. `Gateway.keys[0].tenant`),
 * builds every route layer once, and a budget and rate limit per key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*<E, R>(options: GatewayOptions<E, R>) {
  const { routes: routeInputs, ready, metrics, ...plain } = options
  const decoded = yield* SwitchboardConfigError.decode("Gateway", Options, plain)
  if (Object.keys(routeInputs).length === 0) {
    return yield* new SwitchboardConfigError.SwitchboardConfigError({ path: "Gateway.routes", message: "at least one route is required" })
  }
  for (const [i, key] of (decoded.keys ?? []).entries()) {
    for (const [j, route] of (key.routes ?? []).entries()) {
      if (!(route in routeInputs)) {
        return yield* new SwitchboardConfigError.SwitchboardConfigError({
          path: `Gateway.keys[${i}].routes[${j}]`,
          message: `no route named ${JSON.stringify(route)} (routes: ${Object.keys(routeInputs).join(", ")})`
        })
      }
    }
  }
  const scope = yield* Effect.scope
  const memoMap = yield* Layer.makeMemoMap
  const routes = new Map<string, LLM["Service"]>()
  for (const [name, route] of Object.entries(routeInputs)) {
    if (Layer.isLayer(route)) {
      const context = yield* Layer.buildWithMemoMap(route as Layer.Layer<LLM, E, R>, memoMap, scope)
      routes.set(name, Context.get(context, LLM))
    } else {
      routes.set(name, route as LLM["Service"])
    }
  }
  const routeNames = Array.from(routes.keys())
  const dispatch = dispatcher(routes)

  const tenants: Array<Tenant> = []
  for (const key of decoded.keys ?? []) {
    let service = dispatch
    if (key.rateLimit !== undefined && (key.rateLimit.requests !== undefined || key.rateLimit.tokens !== undefined)) {
      const limited = RateLimit.layer({
        ...(key.rateLimit.requests !== undefined ? { requests: key.rateLimit.requests as RateLimit.Limit } : {}),
        ...(key.rateLimit.tokens !== undefined ? { tokens: key.rateLimit.tokens as RateLimit.Limit } : {}),
        onExceeded: key.rateLimit.onExceeded ?? "fail",
        ...(key.rateLimit.maxWait !== undefined ? { maxWait: key.rateLimit.maxWait as Duration.Input } : {}),
        key: key.tenant,
        adaptive: false
      })(Layer.succeed(LLM, service))
      service = Context.get(yield* Layer.buildWithMemoMap(limited, memoMap, scope), LLM)
    }
    if (key.budget !== undefined) {
      const tenant = key.tenant
      const budget = yield* Budget.make({
        limitUsd: key.budget.limitUsd,
        window: key.budget.window as Budget.Options["window"],
        scope: () => tenant,
        ...(key.budget.softAt !== undefined ? { softAt: key.budget.softAt } : {}),
        ...(key.budget.price !== undefined ? { price: key.budget.price } : {})
      })
      service = budget.wrap(service)
    }
    tenants.push({
      tenant: key.tenant,
      routes: key.routes === undefined ? undefined : new Set(key.routes),
      service,
      hash: sha256(secretOf(key.key))
    })
  }
  const open: Tenant | undefined = tenants.length === 0
    ? { tenant: "anonymous", routes: undefined, service: dispatch, hash: undefined }
    : undefined

  /** Constant time: hashes the presented key and compares it with every configured key. */
  const authenticate = (presented: string | undefined): Tenant | undefined => {
    if (open !== undefined) return open
    if (presented === undefined || presented.length === 0) return undefined
    const hash = sha256(presented)
    let found: Tenant | undefined
    for (const tenant of tenants) {
      if (timingSafeEqual(hash, tenant.hash!) && found === undefined) found = tenant
    }
    return found
  }

  const maxBodyBytes = decoded.maxBodyBytes ?? 10 * 1024 * 1024
  const accessLog = decoded.accessLog ?? true
  let inFlight = 0
  let draining = false

  const app = handler({
    routes,
    routeNames,
    authenticate,
    maxBodyBytes,
    accessLog,
    ready: Effect.suspend(() => (draining ? Effect.succeed(false) : ready ?? Effect.succeed(true))),
    metrics: metrics ?? PrometheusMetrics.format(),
    track: (delta) => {
      inFlight += delta
    }
  })

  return {
    app,
    routes: routeNames,
    inFlight: Effect.sync(() => inFlight),
    drain: () => {
      draining = true
    },
    options: decoded
  } satisfies Gateway as Gateway
})

// ---------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------

interface Handler {
  readonly routes: ReadonlyMap<string, LLM["Service"]>
  readonly routeNames: ReadonlyArray<string>
  readonly authenticate: (presented: string | undefined) => Tenant | undefined
  readonly maxBodyBytes: number
  readonly accessLog: boolean
  readonly ready: Effect.Effect<boolean>
  readonly metrics: Effect.Effect<string>
  readonly track: (delta: number) => void
}

/** What one call did, for the access log and the metrics. */
interface Outcome {
  status: number
  route?: string | undefined
  tenant?: string | undefined
  provider?: string | undefined
  model?: string | undefined
  inputTokens?: number | undefined
  outputTokens?: number | undefined
  costUsd?: number | undefined
  attempts?: number | undefined
  stream?: boolean | undefined
  error?: string | undefined
}

const presentedKey = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const auth = request.headers["authorization"]
  if (auth !== undefined) {
    const match = /^\s*bearer\s+(.+?)\s*$/i.exec(auth)
    if (match !== null) return match[1]
  }
  const apiKey = request.headers["x-api-key"]
  return apiKey === undefined ? undefined : apiKey.trim()
}

/** The endpoint decides; elsewhere (models, unknown paths) Anthropic's SDK is known by its version header. */
const protocolOf = (request: HttpServerRequest.HttpServerRequest, path: string): Protocol =>
  path === "/v1/messages"
    ? "anthropic"
    : path === "/v1/chat/completions"
    ? "openai"
    : request.headers["anthropic-version"] !== undefined
    ? "anthropic"
    : "openai"

/** The status a protocol answers a problem with (OpenAI: an oversized body is a 400; Anthropic: overload is 529). */
const statusOf = (protocol: Protocol, p: Problem): number =>
  protocol === "openai" ? OpenAiWire.statusOf(p) : AnthropicWire.statusOf(p)

const errorResponse = (protocol: Protocol, p: Problem, extra?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe(protocol === "openai" ? OpenAiWire.errorBody(p) : AnthropicWire.errorBody(p), {
    status: statusOf(protocol, p),
    headers: { ...headersOf(p), ...extra }
  })

const switchboardHeaders = (response: LlmResponse.LlmResponse, route: string, id: string): Record<string, string> => ({
  "x-switchboard-route": route,
  "x-switchboard-provider": response.provider,
  "x-switchboard-model": response.model,
  "x-switchboard-cost-usd": response.costUsd.toFixed(8),
  "x-switchboard-attempts": String(Math.max(1, response.attempts.length)),
  "x-request-id": id
})

const settle = (outcome: Outcome, response: LlmResponse.LlmResponse) => {
  outcome.provider = response.provider
  outcome.model = response.model
  outcome.inputTokens = response.usage.inputTokens
  outcome.outputTokens = response.usage.outputTokens
  outcome.costUsd = response.costUsd
  outcome.attempts = Math.max(1, response.attempts.length)
}

const encoder = new TextEncoder()

const handler = (ctx: Handler): Gateway["app"] => {
  const maxBodySize = ByteSize.bytes(ctx.maxBodyBytes)
  const record = (method: string, path: string, start: number, outcome: Outcome): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const latencyMs = now - start
      const endpoint = path.startsWith("/v1/") ? path : "other"
      const attributes = { endpoint, route: outcome.route ?? "", status: String(outcome.status) }
      const metrics = Effect.andThen(
        Metric.update(Metric.withAttributes(requests, attributes), 1),
        Metric.update(Metric.withAttributes(duration, { endpoint }), latencyMs)
      )
      if (!ctx.accessLog || !path.startsWith("/v1/")) return metrics
      // Never the prompt, the completion or the key: only what identifies and measures the call.
      const fields: Record<string, unknown> = { method, path, status: outcome.status, latencyMs }
      for (const [k, v] of Object.entries(outcome)) if (v !== undefined && k !== "status") fields[k] = v
      return Effect.andThen(metrics, Effect.logInfo("gateway access").pipe(Effect.annotateLogs(fields)))
    })

  const readJson = (
    request: HttpServerRequest.HttpServerRequest
  ): Effect.Effect<{ readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly problem: Problem }> =>
    request.text.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, maxBodySize),
      Effect.map((text) => {
        try {
          return { ok: true as const, body: JSON.parse(text) as unknown }
        } catch {
          return {
            ok: false as const,
            problem: problem("invalid_request", 400, "body: is not valid JSON", { param: "body", code: "invalid_json" })
          }
        }
      }),
      Effect.catch((error) => {
        const tooLarge = error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"
        return Effect.succeed({
          ok: false as const,
          problem: tooLarge
            ? problem("too_large", 413, `body: larger than the limit of ${ctx.maxBodyBytes} bytes`, {
              param: "body",
              code: "request_too_large"
            })
            : problem("invalid_request", 400, "body: could not be read", { param: "body" })
        })
      })
    )

  const completion = (
    protocol: Protocol,
    request: HttpServerRequest.HttpServerRequest,
    tenant: Tenant,
    outcome: Outcome,
    done: (outcome: Outcome) => Effect.Effect<void>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse, never, Scope.Scope> =>
    Effect.gen(function*() {
      const fail = (p: Problem, extra?: Record<string, string>) => {
        outcome.status = statusOf(protocol, p)
        if (p.error !== undefined) outcome.error = p.error
        return errorResponse(protocol, p, extra)
      }
      const read = yield* readJson(request)
      if (!read.ok) return fail(read.problem)
      let decoded: { readonly route: string; readonly request: LlmRequest.LlmRequest; readonly stream: boolean; readonly includeUsage: boolean }
      try {
        decoded = protocol === "openai"
          ? OpenAiWire.decode(read.body)
          : { ...AnthropicWire.decode(read.body), includeUsage: true }
      } catch (error) {
        if (!(error instanceof BadField)) throw error
        return fail(problem("invalid_request", 400, error.message, { param: error.param }))
      }
      const route = decoded.route
      outcome.route = route
      outcome.stream = decoded.stream
      if (!ctx.routes.has(route)) {
        return fail(
          problem("not_found", 404, `model: no route named ${JSON.stringify(route)}`, { param: "model", code: "model_not_found" })
        )
      }
      if (tenant.routes !== undefined && !tenant.routes.has(route)) {
        return fail(
          problem("permission", 403, `model: this key may not use route ${JSON.stringify(route)}`, {
            param: "model",
            code: "model_not_allowed"
          })
        )
      }
      const id = protocol === "openai" ? `chatcmpl-${randomUUID()}` : `msg_${randomUUID().replaceAll("-", "")}`
      const llmRequest: LlmRequest.LlmRequest = {
        ...decoded.request,
        metadata: { ...decoded.request.metadata, tenant: tenant.tenant, requestId: id }
      }
      const problemOf = (error: LlmError.LlmError) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const p = fromLlmError(error, now)
          const param = p.param === undefined
            ? undefined
            : protocol === "openai"
            ? OpenAiWire.fieldName(p.param)
            : AnthropicWire.fieldName(p.param)
          return { ...p, param }
        })
      const invalid = LlmRequest.check(llmRequest, { provider: "gateway", model: route })
      if (invalid !== undefined) return fail(yield* problemOf(invalid))
      const now = yield* Clock.currentTimeMillis

      if (!decoded.stream) {
        const result = yield* Effect.exit(
          tenant.service.generate(llmRequest).pipe(Effect.provideService(CurrentRoute, route))
        )
        if (Exit.isFailure(result)) {
          const error = Cause.findErrorOption(result.cause)
          if (Option.isNone(error)) return yield* Effect.failCause(result.cause as Cause.Cause<never>)
          return fail(yield* problemOf(error.value), { "x-switchboard-route": route, "x-request-id": id })
        }
        const response = result.value
        settle(outcome, response)
        outcome.status = 200
        const body = protocol === "openai" ? OpenAiWire.encode(response, id, now) : AnthropicWire.encode(response, id)
        return HttpServerResponse.jsonUnsafe(body, { status: 200, headers: switchboardHeaders(response, route, id) })
      }

      // Streaming: pull the first parts before answering, so a call that fails
      // before any output still gets its real status (429, 503, …).
      const pull = yield* Stream.toPull(
        tenant.service.stream(llmRequest).pipe(Stream.provideService(CurrentRoute, route))
      )
      const first = yield* Effect.exit(pull)
      if (Exit.isFailure(first)) {
        const error = Cause.findErrorOption(first.cause)
        if (Pull.isDoneCause(first.cause) || Option.isNone(error)) {
          // A stream that ended with no part at all: the provider broke the protocol.
          return fail(problem("upstream", 502, "the stream ended before any output", { code: "upstream_error" }))
        }
        return fail(yield* problemOf(error.value as LlmError.LlmError), { "x-switchboard-route": route, "x-request-id": id })
      }
      outcome.status = 200
      const writer = protocol === "openai"
        ? new OpenAiWire.ChunkWriter(id, route, Math.floor(now / 1000), decoded.includeUsage)
        : new AnthropicWire.EventWriter(id, route)
      const render = (parts: ReadonlyArray<LlmResponse.StreamPart>): Uint8Array => {
        let text = ""
        for (const part of parts) {
          if (part.type === "finish") settle(outcome, part.response)
          text += writer.part(part)
        }
        return encoder.encode(text)
      }
      const rest = Stream.fromPull(Effect.succeed(pull)) as Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError>
      const body = Stream.concat(Stream.make(render(first.value)), rest.pipe(Stream.mapArray((parts) => [render(parts)]))).pipe(
        Stream.catchCause((cause) =>
          Stream.unwrap(Effect.gen(function*() {
            const error = Cause.findErrorOption(cause)
            if (Option.isNone(error)) return yield* Effect.failCause(cause as Cause.Cause<never>)
            outcome.error = error.value._tag
            const p = yield* problemOf(error.value)
            return Stream.make(encoder.encode(writer.error(p)))
          }))
        ),
        Stream.onExit((exit) => {
          if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) outcome.error ??= "ClientDisconnected"
          return done(outcome)
        })
      )
      return HttpServerResponse.stream(body, {
        status: 200,
        contentType: "text/event-stream",
        headers: { "cache-control": "no-cache", "x-accel-buffering": "no", "x-switchboard-route": route, "x-request-id": id }
      })
    })

  const models = (tenant: Tenant) => {
    const names = ctx.routeNames.filter((name) => tenant.routes === undefined || tenant.routes.has(name))
    // One body that both SDKs read: OpenAI's list shape with Anthropic's fields beside it.
    const data = names.map((id) => ({
      id,
      object: "model",
      created: 0,
      owned_by: "switchboard",
      type: "model",
      display_name: id,
      created_at: "1970-01-01T00:00:00Z"
    }))
    return HttpServerResponse.jsonUnsafe({
      object: "list",
      data,
      has_more: false,
      first_id: names[0] ?? null,
      last_id: names[names.length - 1] ?? null
    })
  }

  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const start = yield* Clock.currentTimeMillis
    const path = request.url.split("?")[0] ?? "/"
    const method = request.method
    const protocol = protocolOf(request, path)
    const outcome: Outcome = { status: 200 }

    if (method === "GET" && path === "/health") return HttpServerResponse.jsonUnsafe({ status: "ok" })
    if (method === "GET" && path === "/ready") {
      const ok = yield* ctx.ready.pipe(Effect.catchCause(() => Effect.succeed(false)))
      return HttpServerResponse.jsonUnsafe({ status: ok ? "ready" : "not ready", routes: ctx.routeNames.length }, {
        status: ok ? 200 : 503
      })
    }
    if (method === "GET" && path === "/metrics") {
      return HttpServerResponse.text(yield* ctx.metrics, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
    }

    const known = path === "/v1/chat/completions" || path === "/v1/messages" || path === "/v1/models"
    if (!known) {
      outcome.status = 404
      yield* record(method, path, start, outcome)
      return errorResponse(protocol, problem("not_found", 404, `no endpoint ${method} ${path}`, { code: "unknown_url" }))
    }
    const expected = path === "/v1/models" ? "GET" : "POST"
    if (method !== expected) {
      outcome.status = 405
      yield* record(method, path, start, outcome)
      return errorResponse(protocol, problem("invalid_request", 405, `${path} takes ${expected}`), { allow: expected })
    }
    const tenant = ctx.authenticate(presentedKey(request))
    if (tenant === undefined) {
      outcome.status = 401
      yield* record(method, path, start, outcome)
      return errorResponse(
        protocol,
        problem("authentication", 401, "missing or unknown API key (send Authorization: Bearer <key> or x-api-key)", {
          code: "invalid_api_key"
        })
      )
    }
    outcome.tenant = tenant.tenant
    if (path === "/v1/models") {
      yield* record(method, path, start, outcome)
      return models(tenant)
    }
    ctx.track(1)
    let streaming = false
    const done = (o: Outcome) =>
      Effect.suspend(() => {
        ctx.track(-1)
        return record(method, path, start, o)
      })
    return yield* completion(protocol, request, tenant, outcome, done).pipe(
      Effect.tap((response) =>
        Effect.sync(() => {
          streaming = response.body._tag === "Stream"
        })
      ),
      Effect.onExit((exit) => {
        if (streaming) return Effect.void
        if (Exit.isFailure(exit)) {
          outcome.status = Cause.hasInterruptsOnly(exit.cause) ? 499 : 500
          outcome.error ??= Cause.hasInterruptsOnly(exit.cause) ? "ClientDisconnected" : "Defect"
        }
        return done(outcome)
      })
    )
  }).pipe(Effect.interruptible)
}

// ---------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------

/**
 * Serves a gateway on Node's HTTP server at `port`/`host`, as a layer
 * providing {@link GatewayServer} (its URL, for `port: 0`). Closing the layer
 * stops accepting, lets in-flight calls and streams finish for up to
 * `drainTimeout`, then interrupts what is left.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Llm } from "@switchboard/core"
 * import { Gateway } from "@switchboard/gateway"
 *
 * const main = Gateway.layer({
 *   port: 8080,
 *   keys: [{ key: "sk-team-a", tenant: "team-a", budget: { limitUsd: 5, window: "day" } }],
 *   routes: { default: Llm.layerTest([{ text: "hello" }]) }
 * })
 * // Layer.launch(main).pipe(NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(
  options: GatewayOptions<E, R>
): Layer.Layer<GatewayServer, E | SwitchboardConfigError.SwitchboardConfigError | ServeError, Exclude<R, Scope.Scope>> =>
  Layer.effect(
    GatewayServer,
    Effect.gen(function*() {
      const gateway = yield* make(options)
      const drain = Duration.fromInputUnsafe((gateway.options.drainTimeout ?? "30 seconds") as Duration.Input)
      let http: Server | undefined
      const serverLayer = NodeHttpServer.layer(() => (http = createServer({ keepAliveTimeout: 5_000 })), {
        port: gateway.options.port ?? 8080,
        host: gateway.options.host ?? "127.0.0.1",
        gracefulShutdownTimeout: drain
      })
      const scope = yield* Effect.scope
      const context = yield* Layer.buildWithScope(
        HttpServer.serve(gateway.app).pipe(Layer.provideMerge(serverLayer)),
        scope
      )
      // Runs first on close (finalizers run in reverse): while Node's `close` waits for the
      // calls in flight, keep-alive connections that turn idle are closed at once instead of
      // holding the drain open until their keep-alive timeout.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          gateway.drain()
          const server = http
          if (server === undefined) return
          const timer = setInterval(() => server.closeIdleConnections(), 25)
          timer.unref()
          server.once("close", () => clearInterval(timer))
        })
      )
      const server = Context.get(context, HttpServer.HttpServer)
      const address = server.address
      const port = address._tag === "UnixPathAddress" ? 0 : address.port
      const url = HttpServer.formatAddress(address)
      return GatewayServer.of({ url, port, gateway })
    })
  ) as Layer.Layer<GatewayServer, E | SwitchboardConfigError.SwitchboardConfigError | ServeError, Exclude<R, Scope.Scope>>

/**
 * Runs a gateway until interrupted (SIGTERM/SIGINT under `NodeRuntime.runMain`),
 * logging its address once it listens.
 *
 * @since 0.1.0
 * @category running
 */
export const serve = <E, R>(
  options: GatewayOptions<E, R>
): Effect.Effect<never, E | SwitchboardConfigError.SwitchboardConfigError | ServeError, Exclude<R, Scope.Scope>> =>
  Layer.launch(
    Layer.effectDiscard(Effect.gen(function*() {
      const server = yield* GatewayServer
      yield* Effect.logInfo("gateway listening").pipe(
        Effect.annotateLogs({ url: server.url, routes: server.gateway.routes.join(",") })
      )
    })).pipe(Layer.provide(layer(options)))
  )
