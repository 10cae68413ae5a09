/**
 * OpenAI, and every server that speaks its Chat Completions API (Groq,
 * DeepSeek, OpenRouter, Together, Ollama, vLLM, …), as a Switchboard `LLM`
 * layer over the official `openai` SDK.
 *
 * Build a client layer once — {@link layerClient} from options,
 * {@link layerClientConfig} from the environment, or {@link compatible} for
 * another provider — and a model layer per model with {@link model}. The
 * SDK's own retries are off: retrying, fallback and limits are the job of
 * Switchboard's combinators stacked on top. Every SDK failure becomes a typed
 * `LlmError`; interrupting the calling fiber aborts the HTTP request; the API
 * key is held as `Redacted` and scrubbed from every error message.
 *
 * @since 0.1.0
 */
import {
  Deadline,
  LlmError,
  type LlmRequest,
  type LlmResponse,
  ProviderError,
  SwitchboardConfigError
} from "@switchboard/core"
import { Cancel, Provider, StreamAccumulator, UndiciFetch } from "@switchboard/core/provider"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Redacted, Schema, Stream } from "effect"
import OpenAISdk, { type ClientOptions as SdkClientOptions } from "openai"
import { chunks } from "./internal/chunks.ts"
import { type ErrorContext, fromSdkError } from "./internal/errors.ts"
import * as Mapping from "./internal/mapping.ts"

/**
 * Which request field carries `maxTokens`. `"auto"` (the default) sends
 * `max_completion_tokens` to OpenAI reasoning models (`o1`, `o3`, `o4-mini`,
 * `gpt-5*`, `codex-*`), which reject `max_tokens`, and `max_tokens` to every
 * other model, the field all OpenAI-compatible servers accept.
 *
 * @since 0.1.0
 * @category models
 */
export type MaxTokensParameter = Mapping.MaxTokensParameter

/**
 * The `"auto"` rule of {@link MaxTokensParameter}: true when a model needs
 * `max_completion_tokens` (a provider prefix such as `openai/` is ignored).
 *
 * @since 0.1.0
 * @category utils
 */
export const usesMaxCompletionTokens: (model: string) => boolean = Mapping.usesMaxCompletionTokens

/**
 * The client service: the SDK instance, the provider name reported in
 * responses and errors, the key (as `Redacted`), and how requests are shaped.
 *
 * @since 0.1.0
 * @category services
 */
export class OpenAIClient extends Context.Service<OpenAIClient, {
  readonly sdk: OpenAISdk
  readonly provider: string
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** The default per-request timeout, in milliseconds. */
  readonly timeoutMs: number
  readonly maxTokensParameter: MaxTokensParameter
  /** Ask for, and require, the final usage chunk of a stream (`stream_options.include_usage`). */
  readonly streamUsage: boolean
  /** True when the client was built without a key the provider needs: calls fail with `AuthenticationFailed`. */
  readonly missingKey: boolean
}>()("@switchboard/openai/OpenAIClient") {}

/**
 * Options of {@link layerClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The API key. */
  readonly apiKey: string | Redacted.Redacted<string>
  /** Default `https://api.openai.com/v1` (the `OPENAI_BASE_URL` variable is NOT read here). */
  readonly baseURL?: string | undefined
  /** Sent as `OpenAI-Organization`. */
  readonly organization?: string | undefined
  /** Sent as `OpenAI-Project`. */
  readonly project?: string | undefined
  /** Per-request timeout when the call has no shorter deadline. Default 10 minutes. */
  readonly timeout?: Duration.Input | undefined
  /** Headers sent with every request. */
  readonly headers?: Record<string, string> | undefined
  /** Default `"auto"`, see {@link MaxTokensParameter}. */
  readonly maxTokensParameter?: MaxTokensParameter | undefined
  /** A `fetch` to use instead of the default (`UndiciFetch.shared`): proxies, recording, tests. */
  readonly fetch?: typeof globalThis.fetch | undefined
}

/**
 * Options of {@link compatible}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompatibleOptions {
  /** The provider name reported in responses and errors (`"groq"`, `"ollama"`…). */
  readonly name: string
  /** The API root, e.g. `https://api.groq.com/openai/v1`, `http://localhost:11434/v1`. */
  readonly baseURL: string
  /** The key; leave it out for servers that need none (Ollama, a local vLLM). */
  readonly apiKey?: string | Redacted.Redacted<string> | undefined
  readonly headers?: Record<string, string> | undefined
  /** Per-request timeout when the call has no shorter deadline. Default 10 minutes. */
  readonly timeout?: Duration.Input | undefined
  /** Default `"auto"`, see {@link MaxTokensParameter}. */
  readonly maxTokensParameter?: MaxTokensParameter | undefined
  /**
   * Send `stream_options: { include_usage: true }` and fail a stream that ends
   * without its usage chunk (default true). Set false for a server that
   * rejects `stream_options`: streams then report zero usage.
   */
  readonly streamUsage?: boolean | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}

const defaultTimeout = Duration.minutes(10)

// The SDK refuses to start without a key; servers that need none get this.
const noKey = "no-key"

const makeClient = (options: {
  readonly provider: string
  readonly apiKey: Redacted.Redacted<string> | undefined
  readonly keyRequired: boolean
  readonly baseURL: string
  readonly organization?: string | undefined
  readonly project?: string | undefined
  readonly timeout?: Duration.Input | undefined
  readonly headers?: Record<string, string> | undefined
  readonly maxTokensParameter?: MaxTokensParameter | undefined
  readonly streamUsage?: boolean | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}): OpenAIClient["Service"] => {
  const key = options.apiKey === undefined ? "" : Redacted.value(options.apiKey)
  const timeoutMs = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(options.timeout ?? defaultTimeout)))
  const sdk = new OpenAISdk({
    apiKey: key.length > 0 ? key : noKey,
    baseURL: options.baseURL,
    // Explicit nulls: the SDK would otherwise read OPENAI_ORG_ID / OPENAI_PROJECT_ID
    // from the environment and send them to whatever server this is.
    organization: options.organization ?? null,
    project: options.project ?? null,
    maxRetries: 0,
    timeout: timeoutMs,
    // The SDK logs to the console (e.g. malformed SSE); failures reach the caller as typed errors instead.
    logLevel: "off",
    ...(options.headers !== undefined ? { defaultHeaders: options.headers } : {}),
    // Calls cancel through a handle in their fetchOptions, not a signal the SDK must tie to its own
    // (`Cancel`); by default over undici's request instead of Node's `fetch` (`UndiciFetch`).
    fetch: Cancel.cancellable(options.fetch ?? UndiciFetch.shared)
  })
  return OpenAIClient.of({
    sdk,
    provider: options.provider,
    apiKey: options.apiKey,
    timeoutMs,
    maxTokensParameter: options.maxTokensParameter ?? "auto",
    streamUsage: options.streamUsage ?? true,
    missingKey: options.keyRequired && key.length === 0
  })
}

const redactedOf = (key: string | Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined =>
  key === undefined ? undefined : Redacted.isRedacted(key) ? key : Redacted.make(key)

/**
 * The OpenAI client from options. SDK retries are off. An empty key builds,
 * but every call then fails with `AuthenticationFailed` without a request. A
 * `baseURL` that is not an absolute http(s) URL fails the layer at build with
 * `SwitchboardConfigError { path: "OpenAI.baseURL" }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: ClientOptions): Layer.Layer<OpenAIClient, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    OpenAIClient,
    Effect.suspend(() => {
      const baseURL = options.baseURL ?? "https://api.openai.com/v1"
      return Effect.as(
        checkBaseURL("OpenAI.baseURL", baseURL),
        makeClient({
          provider: "openai",
          apiKey: redactedOf(options.apiKey),
          keyRequired: true,
          baseURL,
          organization: options.organization,
          project: options.project,
          timeout: options.timeout,
          headers: options.headers,
          maxTokensParameter: options.maxTokensParameter,
          fetch: options.fetch
        })
      )
    })
  )

/** Fails the layer at build when `baseURL` is not an absolute http(s) URL, naming the option. */
const checkBaseURL = (path: string, baseURL: string): Effect.Effect<void, SwitchboardConfigError.SwitchboardConfigError> => {
  const problem = ProviderError.baseUrlProblem(baseURL)
  return problem === undefined ? Effect.void : Effect.fail(SwitchboardConfigError.fromIssues([{ path, message: problem }]))
}

const NonEmptyKey = Schema.Redacted(Schema.NonEmptyString)

/**
 * The OpenAI client from configuration: `OPENAI_API_KEY` (required, kept
 * `Redacted`), `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID`
 * (optional). A missing or empty key, or a base URL that is not a URL, fails
 * with a `ConfigError` naming the variable. `options` adds what the
 * environment does not carry.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientConfig = (
  options?: Omit<ClientOptions, "apiKey" | "baseURL" | "organization" | "project"> | undefined
): Layer.Layer<OpenAIClient, Config.ConfigError> =>
  Layer.effect(
    OpenAIClient,
    Effect.map(
      Config.all({
        apiKey: Config.schema(NonEmptyKey, "OPENAI_API_KEY"),
        baseURL: Config.option(Config.URL("OPENAI_BASE_URL")),
        organization: Config.option(Config.String("OPENAI_ORG_ID")),
        project: Config.option(Config.String("OPENAI_PROJECT_ID"))
      }),
      (config) =>
        makeClient({
          ...options,
          provider: "openai",
          apiKey: config.apiKey,
          keyRequired: true,
          baseURL: Option.match(config.baseURL, {
            onNone: () => "https://api.openai.com/v1",
            onSome: (url) => url.href.replace(/\/$/, "")
          }),
          organization: Option.getOrUndefined(config.organization),
          project: Option.getOrUndefined(config.project)
        })
    )
  )

/**
 * A client for any OpenAI-compatible server. `name` is the provider reported
 * in responses, errors and events (and used for pricing lookups).
 *
 * @example
 * ```ts
 * const key = Redacted.make(process.env["GROQ_API_KEY"] ?? "")
 * const Groq = OpenAI.compatible({ name: "groq", baseURL: "https://api.groq.com/openai/v1", apiKey: key })
 * const Ollama = OpenAI.compatible({ name: "ollama", baseURL: "http://localhost:11434/v1" })
 * const Llama = OpenAI.model("llama-3.3-70b-versatile").pipe(Layer.provide(Groq))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const compatible = (
  options: CompatibleOptions
): Layer.Layer<OpenAIClient, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    OpenAIClient,
    Effect.suspend(() =>
      Effect.as(
        checkBaseURL("OpenAI.compatible.baseURL", options.baseURL),
        makeClient({
          provider: options.name,
          apiKey: redactedOf(options.apiKey),
          keyRequired: false,
          baseURL: options.baseURL,
          timeout: options.timeout,
          headers: options.headers,
          maxTokensParameter: options.maxTokensParameter,
          streamUsage: options.streamUsage,
          fetch: options.fetch
        })
      )
    )
  )

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

const secretsOf = (client: OpenAIClient["Service"]): ReadonlyArray<string> =>
  client.apiKey === undefined ? [] : [Redacted.value(client.apiKey)]

/** The SDK timeout for a call at `now` under `deadline` (epoch ms): the client's, or the time left if sooner. */
const timeoutAt = (client: OpenAIClient["Service"], deadline: number | undefined, now: number): number =>
  Deadline.sdkTimeout(client.timeoutMs, deadline, now)

/** The SDK timeout for this call: the client's, or the time left before the deadline if sooner. */
const timeoutFor = (client: OpenAIClient["Service"]) =>
  Effect.withFiber((fiber) =>
    Effect.succeed(
      timeoutAt(client, fiber.getRef(Deadline.CurrentDeadline), fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
    )
  )

const missingKey = (client: OpenAIClient["Service"], model: string | undefined) =>
  new LlmError.AuthenticationFailed({
    provider: client.provider,
    model,
    detail: "no API key is configured for this client"
  })

/** What every call of `client` shares: its endpoint and its secrets, computed once per model layer. */
const fixedOf = (client: OpenAIClient["Service"]) => ({
  secrets: secretsOf(client),
  url: `${client.sdk.baseURL.replace(/\/+$/, "")}/chat/completions`
})

/**
 * The SDK's options for one call: the caller's signal, and a timeout only when
 * the call's deadline makes it shorter than the client's own (the SDK arms
 * the client's timeout itself; passing it again costs a header per call).
 */
const requestOptions = (client: OpenAIClient["Service"], handle: Cancel.FetchOptions, timeoutMs: number) => {
  // The SDK's `fetchOptions` type lists `RequestInit`'s fields; the handle rides under a symbol beside them.
  const fetchOptions = handle as unknown as NonNullable<SdkClientOptions["fetchOptions"]>
  return timeoutMs === client.timeoutMs ? { fetchOptions } : { fetchOptions, timeout: timeoutMs }
}

/** What every call needs before it goes out: the parameters, the timeout, the error context. */
const prepareWith = (
  client: OpenAIClient["Service"],
  fixed: { readonly secrets: ReadonlyArray<string>; readonly url: string },
  request: LlmRequest.LlmRequest,
  model: string,
  fiber: { readonly getRef: <A>(ref: Context.Reference<A>) => A }
): { readonly params: Exclude<ReturnType<typeof Mapping.toParams>, LlmError.InvalidRequest>; readonly context: ErrorContext; readonly now: number } | LlmError.LlmError => {
  if (client.missingKey) return missingKey(client, model)
  const params = Mapping.toParams(request, model, client, client.maxTokensParameter)
  if (params instanceof LlmError.InvalidRequest) return params
  const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
  const timeoutMs = timeoutAt(client, fiber.getRef(Deadline.CurrentDeadline), now)
  return {
    params,
    now,
    context: { provider: client.provider, model, secrets: fixed.secrets, timeoutMs, url: fixed.url }
  }
}

// The hot path: no generator, the client's fixed parts computed once, the fiber's refs read synchronously.
const generateWith = (client: OpenAIClient["Service"]) => {
  const fixed = fixedOf(client)
  return (request: LlmRequest.LlmRequest, model: string): Effect.Effect<LlmResponse.LlmResponse, LlmError.LlmError> =>
    Effect.withFiber((fiber) => {
      const prepared = prepareWith(client, fixed, request, model, fiber)
      if (!("params" in prepared)) return Effect.fail(prepared)
      const { context, now: start, params } = prepared
      return Effect.flatMap(
        Cancel.call(
          (fetchOptions) => client.sdk.chat.completions.create(params, requestOptions(client, fetchOptions, context.timeoutMs)).withResponse(),
          (error) => fromSdkError(error, context)
        ),
        ({ data, response }) => {
          const end = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
          const result = Mapping.toResponse(data, {
            provider: client.provider,
            model,
            latencyMs: end - start,
            rateLimit: ProviderError.rateLimitInfo(response.headers, end)
          })
          return result instanceof LlmError.MalformedResponse ? Effect.fail(result) : Effect.succeed(result)
        }
      )
    })
}

// Prepared on each run of the stream, in the accumulator's own layer (no `Stream.unwrap` around it).
const streamWith = (client: OpenAIClient["Service"]) => {
  const fixed = fixedOf(client)
  return (request: LlmRequest.LlmRequest, model: string): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> =>
    StreamAccumulator.stream((fiber) => {
      const prepared = prepareWith(client, fixed, request, model, fiber)
      if (!("params" in prepared)) return prepared
      const { context, params } = prepared
      const seen: Mapping.StreamSeen = { usage: false }
      return {
        provider: client.provider,
        model,
        // The SDK builds the request and throws its errors for the status; the events are read here
        // (`chunks`), without the SDK's stream reader (~100 µs to the first event over loopback).
        open: Cancel.call(
          (fetchOptions) =>
            client.sdk.chat.completions.create(
              {
                ...params,
                stream: true,
                ...(client.streamUsage ? { stream_options: { include_usage: true } } : {})
              },
              requestOptions(client, fetchOptions, context.timeoutMs)
            ).asResponse().then((response) => ({ response, fetchOptions })),
          (error) => fromSdkError(error, context)
        ).pipe(Effect.flatMap(({ fetchOptions, response }) =>
          StreamAccumulator.opened<unknown>(chunks(response), () => Cancel.abort(fetchOptions), response.headers)
        )),
        table: Mapping.chunkTable(seen),
        onError: (error) => fromSdkError(error, context),
        unfinished: "the stream ended before its finish_reason",
        // The SDK ends its iterator quietly when the socket closes without `[DONE]`;
        // with usage asked for, a stream is complete only once its usage chunk came.
        complete: () =>
          client.streamUsage && !seen.usage
            ? new LlmError.NetworkError({
              provider: client.provider,
              model,
              cause: "cut",
              detail: "the stream ended before its usage chunk"
            })
            : undefined,
        raw: (acc) => ({
          id: acc.id,
          object: "chat.completion.chunk",
          finish_reason: acc.finishRaw ?? null,
          usage: acc.usage
        })
      }
    })
}

/**
 * The `LLM` service for one model over the client in context. `defaults`
 * fill the fields a request leaves out (temperature, maxTokens, …); a
 * request's own `model` overrides `name`; `options.contentFilter` says
 * whether a content-filter finish fails with `ContentFiltered` (the default)
 * or is returned.
 *
 * @example
 * ```ts
 * const Gpt = OpenAI.model("gpt-4o-mini", { temperature: 0 }).pipe(
 *   Layer.provide(OpenAI.layerClientConfig())
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const model = Provider.model(OpenAIClient, { generate: generateWith, stream: streamWith })

/**
 * A model the server offers (`GET /models`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelInfo {
  readonly id: string
  /** Unix seconds, when the server says. */
  readonly created?: number | undefined
  readonly ownedBy?: string | undefined
}

/**
 * Lists the models the server offers (OpenAI `GET /v1/models`; most
 * compatible servers, Ollama included, implement it too).
 *
 * @since 0.1.0
 * @category accessors
 */
export const listModels: Effect.Effect<ReadonlyArray<ModelInfo>, LlmError.LlmError, OpenAIClient> = Effect.gen(
  function*() {
    const client = yield* OpenAIClient
    if (client.missingKey) return yield* Effect.fail(missingKey(client, undefined))
    const timeoutMs = yield* timeoutFor(client)
    const context: ErrorContext = { provider: client.provider, secrets: secretsOf(client), timeoutMs }
    const page = yield* Effect.tryPromise({
      try: (signal) => client.sdk.models.list({ signal, timeout: timeoutMs }),
      catch: (error) => fromSdkError(error, context)
    })
    const data: ReadonlyArray<unknown> = Array.isArray(page.data) ? page.data : []
    const out: Array<ModelInfo> = []
    for (const entry of data) {
      if (typeof entry !== "object" || entry === null) continue
      const record = entry as Record<string, unknown>
      if (typeof record["id"] !== "string") continue
      out.push({
        id: record["id"],
        ...(typeof record["created"] === "number" ? { created: record["created"] } : {}),
        ...(typeof record["owned_by"] === "string" ? { ownedBy: record["owned_by"] } : {})
      })
    }
    return out
  }
).pipe(Effect.withSpan("OpenAI.listModels"))
