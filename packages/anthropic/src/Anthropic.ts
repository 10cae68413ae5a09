/**
 * Anthropic's Messages API as a Switchboard `LLM`, over the official
 * `@anthropic-ai/sdk`. Provide a client with {@link layerClient} (or
 * {@link layerClientConfig} from `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL`),
 * then a model with {@link model}; the SDK's own retries are off, because
 * retrying belongs to Switchboard's combinators.
 *
 * What the layer does for every call:
 * - maps the request: a top-level `system` (the request's `system` and every
 *   role "system" message), text, image (base64 or URL), tool-use and
 *   tool-result blocks, tools and tool choice, stop sequences, temperature and
 *   top-p. Anthropic has no `seed`: it is not sent.
 * - `max_tokens` is required by Anthropic: `request.maxTokens`, else the
 *   model defaults, else the model's `maxOutput` from the `Pricing` catalog,
 *   else 4096.
 * - JSON output is emulated (Anthropic has no JSON mode): `json` adds a system
 *   instruction to answer with JSON only; `json-schema` adds a tool whose
 *   `input_schema` is the schema and forces it, and the tool's input becomes
 *   the response `text` (finish reason `stop`).
 * - maps the answer (thinking is streamed as `reasoning-delta` and left out
 *   of `text`), the stop reason, usage (cache reads and writes counted in
 *   `inputTokens`), the `anthropic-ratelimit-*` headers, and every error.
 * - passes the time left before the call's deadline as the SDK timeout, and
 *   aborts the HTTP request when the calling fiber is interrupted.
 *
 * @since 0.1.0
 */
import AnthropicSdk, { type ClientOptions as SdkClientOptions } from "@anthropic-ai/sdk"
import {
  Deadline,
  LlmError,
  type LlmRequest,
  Pricing,
  ProviderError,
  SwitchboardConfigError
} from "@switchboard/core"
import type { LlmResponse } from "@switchboard/core"
import { Cancel, Provider, StreamAccumulator, UndiciFetch } from "@switchboard/core/provider"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Redacted, Stream } from "effect"
import { type ErrorContext, toLlmError } from "./internal/errors.ts"
import { answerOf, checkMessage, JSON_INSTRUCTION, type Prepared, toParams, usageOf } from "./internal/mapping.ts"
import { rawOf, table } from "./internal/stream.ts"

/**
 * The configured SDK client, the provider name responses and errors report,
 * and the API key (kept `Redacted`; used only to scrub error texts).
 *
 * @since 0.1.0
 * @category services
 */
export class AnthropicClient extends Context.Service<AnthropicClient, {
  readonly sdk: AnthropicSdk
  readonly provider: string
  readonly apiKey: Redacted.Redacted<string>
  /** The per-request timeout (ms) when the call has no tighter deadline. */
  readonly timeoutMs: number
}>()("@switchboard/anthropic/AnthropicClient") {}

/**
 * Options of {@link layerClient}.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `apiKey` | (required) | the API key, plain or `Redacted` |
 * | `baseURL` | `https://api.anthropic.com` | API root (the simulator: `${url}/anthropic`) |
 * | `timeout` | `"10 minutes"` | per-request timeout; a call's deadline shortens it |
 * | `headers` | none | headers sent with every request |
 * | `provider` | `"anthropic"` | the name reported in responses, errors and pricing |
 * | `fetch` | `UndiciFetch.shared` | the `fetch` the SDK uses (proxies, recording; `globalThis.fetch` for Node's own) |
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  readonly apiKey: string | Redacted.Redacted<string>
  readonly baseURL?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly provider?: string | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}

/**
 * The default API root.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultBaseURL = "https://api.anthropic.com"

/**
 * The `max_tokens` sent when neither the request, the model defaults nor the
 * pricing catalog give one.
 *
 * @since 0.1.0
 * @category constants
 */
export const fallbackMaxTokens = 4096

/**
 * The system instruction added for `responseFormat: { type: "json" }`
 * (Anthropic has no JSON mode).
 *
 * @since 0.1.0
 * @category constants
 */
export const jsonInstruction: string = JSON_INSTRUCTION

const defaultTimeoutMs = 600_000

/**
 * Builds the client service from options (no I/O).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (options: ClientOptions): AnthropicClient["Service"] => {
  const apiKey: Redacted.Redacted<string> = Redacted.isRedacted(options.apiKey)
    ? options.apiKey as Redacted.Redacted<string>
    : Redacted.make(options.apiKey as string)
  const timeoutMs = options.timeout === undefined
    ? defaultTimeoutMs
    : Math.max(1, Math.round(Duration.toMillis(Duration.fromInputUnsafe(options.timeout))))
  const sdk = new AnthropicSdk({
    apiKey: Redacted.value(apiKey),
    baseURL: options.baseURL ?? defaultBaseURL,
    maxRetries: 0,
    timeout: timeoutMs,
    // Failures surface as typed errors; the SDK's own console logging stays off.
    logLevel: "off",
    ...(options.headers !== undefined ? { defaultHeaders: { ...options.headers } } : {}),
    // Calls cancel through a handle in their fetchOptions, not a signal the SDK must tie to its own
    // (`Cancel`); by default over undici's request instead of Node's `fetch` (`UndiciFetch`).
    fetch: Cancel.cancellable(options.fetch ?? UndiciFetch.shared)
  })
  return AnthropicClient.of({ sdk, provider: options.provider ?? "anthropic", apiKey, timeoutMs })
}

/**
 * A layer holding an Anthropic SDK client with retries off. A `baseURL` that
 * is not an absolute http(s) URL fails the layer at build with
 * `SwitchboardConfigError { path: "Anthropic.baseURL" }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: ClientOptions
): Layer.Layer<AnthropicClient, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    AnthropicClient,
    Effect.suspend(() => {
      const problem = ProviderError.baseUrlProblem(options.baseURL ?? defaultBaseURL)
      return problem === undefined
        ? Effect.sync(() => makeClient(options))
        : Effect.fail(SwitchboardConfigError.fromIssues([{ path: "Anthropic.baseURL", message: problem }]))
    })
  )

/**
 * {@link layerClient} configured from the environment through `Config`:
 * `ANTHROPIC_API_KEY` (required, read as `Redacted`) and `ANTHROPIC_BASE_URL`
 * (optional, must be an absolute URL). A missing key or a bad URL fails with
 * a `ConfigError` naming the variable.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientConfig = (
  options?: Omit<ClientOptions, "apiKey" | "baseURL"> | undefined
): Layer.Layer<AnthropicClient, Config.ConfigError> =>
  Layer.effect(
    AnthropicClient,
    Effect.map(
      Config.all({
        apiKey: Config.Redacted("ANTHROPIC_API_KEY"),
        baseURL: Config.option(Config.URL("ANTHROPIC_BASE_URL"))
      }),
      ({ apiKey, baseURL }) =>
        makeClient({
          ...options,
          apiKey,
          ...(Option.isSome(baseURL) ? { baseURL: baseURL.value.href.replace(/\/+$/, "") } : {})
        })
    )
  )

type Request = LlmRequest.LlmRequest

const errorContext = (client: AnthropicClient["Service"], model: string, timeoutMs: number, now: number): ErrorContext => ({
  provider: client.provider,
  model,
  secrets: [Redacted.value(client.apiKey)],
  timeoutMs,
  now,
  url: `${client.sdk.baseURL.replace(/\/+$/, "")}/v1/messages`
})

/** What a call needs before it goes out, read from its fiber in one step: the parameters, the timeout, the error context. */
const prepareWith = (
  client: AnthropicClient["Service"],
  request: Request,
  model: string,
  fiber: { readonly getRef: <A>(ref: Context.Reference<A>) => A }
) => {
  const pricing = fiber.getRef(Pricing.Pricing)
  const maxTokens = request.maxTokens ?? pricing.lookup(client.provider, model)?.maxOutput ??
    pricing.lookup("anthropic", model)?.maxOutput ?? fallbackMaxTokens
  const clock = fiber.getRef(Clock.Clock)
  const now = clock.currentTimeMillisUnsafe()
  const timeoutMs = Deadline.sdkTimeout(client.timeoutMs, fiber.getRef(Deadline.CurrentDeadline), now)
  const prepared: Prepared = toParams(request, model, maxTokens)
  // Errors are built when the call fails: read the Clock then (HTTP-date Retry-After).
  const context = (): ErrorContext => errorContext(client, model, timeoutMs, clock.currentTimeMillisUnsafe())
  return { prepared, timeoutMs, context, now }
}

/**
 * The SDK's options for one call: the cancel handle, and a timeout only when the call's deadline makes
 * it shorter than the client's own (the SDK arms the client's timeout itself).
 */
const requestOptions = (client: AnthropicClient["Service"], handle: Cancel.FetchOptions, timeoutMs: number) => {
  // The SDK's `fetchOptions` type lists `RequestInit`'s fields; the handle rides under a symbol beside them.
  const fetchOptions = handle as unknown as NonNullable<SdkClientOptions["fetchOptions"]>
  return timeoutMs === client.timeoutMs ? { fetchOptions } : { fetchOptions, timeout: timeoutMs }
}

// The hot path: no generator, the fiber's refs read synchronously (as the OpenAI leaf does).
const generateWith = (client: AnthropicClient["Service"]) =>
(request: Request, model: string): Effect.Effect<LlmResponse.LlmResponse, LlmError.LlmError> =>
  Effect.withFiber((fiber) => {
    const { context, now: start, prepared, timeoutMs } = prepareWith(client, request, model, fiber)
    return Effect.flatMap(
      Cancel.call(
        (handle) =>
          client.sdk.messages.create({ ...prepared.params, stream: false }, requestOptions(client, handle, timeoutMs))
            .withResponse(),
        (cause) => toLlmError(cause, context())
      ),
      ({ data, response }) => {
        const origin = { provider: client.provider, model }
        const message = checkMessage(data, origin)
        if (message instanceof LlmError.MalformedResponse) return Effect.fail(message)
        const end = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const answer = answerOf(message.content, message.stop_reason, prepared.jsonTool, origin)
        if (answer instanceof LlmError.MalformedResponse) return Effect.fail(answer)
        const rateLimit = ProviderError.rateLimitInfo(response.headers, end)
        const result: LlmResponse.LlmResponse = {
          id: message.id ?? "",
          provider: client.provider,
          model: typeof message.model === "string" && message.model.length > 0 ? message.model : model,
          ...answer,
          usage: usageOf(message.usage),
          costUsd: 0,
          latencyMs: Math.max(0, end - start),
          cached: false,
          attempts: [],
          ...(rateLimit !== undefined ? { rateLimit } : {}),
          raw: data
        }
        return Effect.succeed(result)
      }
    )
  })

// Prepared on each run of the stream, in the accumulator's own layer (no `Stream.unwrap` around it).
const streamWith = (client: AnthropicClient["Service"]) =>
(request: Request, model: string): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> =>
  StreamAccumulator.stream((fiber) => {
    const { context, prepared, timeoutMs } = prepareWith(client, request, model, fiber)
    return {
      provider: client.provider,
      model,
      open: Cancel.call(
        (handle) =>
          client.sdk.messages.create({ ...prepared.params, stream: true }, requestOptions(client, handle, timeoutMs))
            .withResponse(),
        (cause) => toLlmError(cause, context())
      ).pipe(Effect.flatMap(({ data, response }) =>
        StreamAccumulator.opened<unknown>(data, () => data.controller.abort(), response.headers)
      )),
      table: table({ jsonTool: prepared.jsonTool }),
      onError: (cause) => toLlmError(cause, context()),
      unfinished: "the stream ended before message_stop",
      raw: rawOf
    }
  })

/**
 * An `LLM` for one Anthropic model. `defaults` fill what a request leaves out
 * (temperature, maxTokens, system, …); `request.model` overrides `name`;
 * `options.contentFilter` says whether a refusal fails with
 * `ContentFiltered` (the default) or is returned.
 *
 * @since 0.1.0
 * @category layers
 */
export const model = Provider.model(AnthropicClient, { generate: generateWith, stream: streamWith })

/**
 * A model the API offers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelInfo {
  readonly id: string
  readonly displayName?: string | undefined
  readonly createdAt?: string | undefined
}

/**
 * Lists the models the API offers (`GET /v1/models`, every page).
 *
 * @since 0.1.0
 * @category accessors
 */
export const listModels: Effect.Effect<ReadonlyArray<ModelInfo>, LlmError.LlmError, AnthropicClient> = Effect.gen(
  function*() {
    const client = yield* AnthropicClient
    const clock = yield* Clock.Clock
    return yield* Effect.tryPromise({
      try: async (signal) => {
        const out: Array<ModelInfo> = []
        for await (const m of client.sdk.models.list({ limit: 1000 }, { signal, timeout: client.timeoutMs })) {
          out.push({
            id: m.id,
            ...(typeof m.display_name === "string" ? { displayName: m.display_name } : {}),
            ...(typeof m.created_at === "string" ? { createdAt: m.created_at } : {})
          })
        }
        return out
      },
      catch: (cause) => toLlmError(cause, {
          ...errorContext(client, "", client.timeoutMs, clock.currentTimeMillisUnsafe()),
          model: undefined
        })
    })
  }
).pipe(Effect.withSpan("Anthropic.listModels"))
