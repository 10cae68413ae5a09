/**
 * Gemini API and Vertex AI as a Switchboard `LLM`, over the official
 * `@google/genai` SDK. Build a {@link GoogleClient} with {@link layerClient}
 * (an API key; {@link layerClientConfig} reads `GEMINI_API_KEY` or
 * `GOOGLE_API_KEY`) or {@link layerVertex} (a Google Cloud project and
 * location; Application Default Credentials unless `credentials`, an
 * `authClient` or an `accessToken` are given),
 * then provide {@link model} layers on top of it.
 *
 * The SDK's own retries and continuation hops are off: retrying is the job of
 * Switchboard's combinators. Every SDK failure becomes a typed `LlmError`
 * (Gemini's `RetryInfo.retryDelay` is read into `retryAfter`), interrupting
 * the caller aborts the HTTP request, and the time left before a request's
 * deadline is passed to the SDK as its request timeout.
 *
 * @since 0.1.0
 */
import { GoogleGenAI, type GoogleGenAIOptions } from "@google/genai"
import {
  Deadline,
  type LlmError,
  LlmRequest,
  type LlmResponse,
  ProviderError,
  SwitchboardConfigError
} from "@switchboard/core"
import { Provider, StreamAccumulator, UndiciFetch } from "@switchboard/core/provider"
import { Clock, Config, ConfigProvider, Context, Duration, Effect, Layer, Option, Redacted, Stream } from "effect"
import { type ErrorContext, toLlmError } from "./internal/errors.ts"
import { SignatureStore, toConfig, toContents } from "./internal/mapping.ts"
import { type CallContext, streamOptions, toResponse } from "./internal/stream.ts"

/**
 * The `@google/genai` client a {@link model} layer calls, with the provider
 * name it reports and the secrets it must never print.
 *
 * @since 0.1.0
 * @category services
 */
export class GoogleClient extends Context.Service<GoogleClient, {
  /** The SDK instance (retries off). */
  readonly sdk: GoogleGenAI
  /** The provider name reported in responses and errors (default `"google"`). */
  readonly provider: string
  /** `"gemini"` (API key) or `"vertex"` (Google Cloud credentials). */
  readonly backend: "gemini" | "vertex"
  /** The API key, if the client uses one. */
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** Every secret to scrub from messages (API key, Vertex access token, service-account private key). */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** The default request timeout, if any. */
  readonly timeout: Duration.Duration | undefined
  /** Thought signatures of the function calls Gemini made, by tool call id. */
  readonly signatures: SignatureStore
}>()("@switchboard/google/GoogleClient") {}

/**
 * Options of {@link layerClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The Gemini API key. */
  readonly apiKey: string | Redacted.Redacted<string>
  /** The API root (default `https://generativelanguage.googleapis.com`); the simulator's is `${url}/gemini`. */
  readonly baseURL?: string | undefined
  /** The API version path segment (default the SDK's, `v1`). */
  readonly apiVersion?: string | undefined
  /** The request timeout (default none; a request's deadline still bounds it). */
  readonly timeout?: Duration.Input | undefined
  /** Headers sent with every request. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** The provider name reported in responses, errors and prices (default `"google"`). */
  readonly name?: string | undefined
  /** A `fetch` to use instead of the default (`UndiciFetch.shared`): proxies, recording, tests. */
  readonly fetch?: typeof globalThis.fetch | undefined
}

/** The credentials google-auth-library accepts (a service-account key, an external account…). */
type Credentials = NonNullable<NonNullable<GoogleGenAIOptions["googleAuthOptions"]>["credentials"]>

/**
 * A google-auth-library `AuthClient` (an `OAuth2Client`, `Impersonated`,
 * `ExternalAccountClient`, …), as `@google/genai`'s `googleAuthOptions.authClient`.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthClient = NonNullable<NonNullable<GoogleGenAIOptions["googleAuthOptions"]>["authClient"]>

/**
 * Options of {@link layerVertex}.
 *
 * @since 0.1.0
 * @category models
 */
export interface VertexOptions {
  /** The Google Cloud project id. */
  readonly project: string
  /** The region, e.g. `us-central1`, or `global`. */
  readonly location: string
  /**
   * Explicit credentials (a service-account key object). Default:
   * Application Default Credentials (`gcloud auth application-default login`,
   * `GOOGLE_APPLICATION_CREDENTIALS`, or the metadata server).
   */
  readonly credentials?: Credentials | undefined
  /**
   * An OAuth 2 access token you obtained yourself (workload identity
   * federation, a token broker, `gcloud auth print-access-token`…), sent as
   * `Authorization: Bearer` on every call. Nothing is fetched and it is never
   * refreshed: rebuild the layer (or use `authClient`) when it expires. It is
   * scrubbed from every error message. Takes precedence over `authClient`
   * and `credentials`.
   */
  readonly accessToken?: string | Redacted.Redacted<string> | undefined
  /**
   * A ready google-auth-library client that produces the `Authorization`
   * header (e.g. an `OAuth2Client` with a `refreshHandler`, or an
   * `Impersonated` client). Takes precedence over `credentials`.
   */
  readonly authClient?: AuthClient | undefined
  /** The API root (default `https://{location}-aiplatform.googleapis.com`). */
  readonly baseURL?: string | undefined
  /** The API version path segment (default the SDK's, `v1beta1`). */
  readonly apiVersion?: string | undefined
  /** The request timeout (default none; a request's deadline still bounds it). */
  readonly timeout?: Duration.Input | undefined
  /** Headers sent with every request. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** The provider name reported in responses, errors and prices (default `"google"`). */
  readonly name?: string | undefined
  /** A `fetch` to use instead of the default (`UndiciFetch.shared`): proxies, recording, tests. */
  readonly fetch?: typeof globalThis.fetch | undefined
}

const secret = (value: string | Redacted.Redacted<string>): Redacted.Redacted<string> =>
  typeof value === "string" ? Redacted.make(value) : value

const durationOf = (input: Duration.Input | undefined): Duration.Duration | undefined =>
  input === undefined ? undefined : Duration.fromInputUnsafe(input)

const httpOptions = (options: {
  readonly baseURL?: string | undefined
  readonly apiVersion?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly fetch?: typeof globalThis.fetch | undefined
}): NonNullable<GoogleGenAIOptions["httpOptions"]> => ({
  ...(options.baseURL !== undefined ? { baseUrl: options.baseURL } : {}),
  ...(options.apiVersion !== undefined ? { apiVersion: options.apiVersion } : {}),
  ...(options.headers !== undefined ? { headers: { ...options.headers } } : {}),
  // By default over undici's request instead of Node's `fetch` (`UndiciFetch`); like the SDK's own
  // default dispatcher, it sets no transport timeout, so a call's deadline alone bounds it.
  fetch: options.fetch ?? UndiciFetch.shared
  // No `retryOptions`: without them the SDK sends each request exactly once.
})

/**
 * Builds a Gemini API client from an API key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (options: ClientOptions): GoogleClient["Service"] => {
  const apiKey = secret(options.apiKey)
  return GoogleClient.of({
    sdk: new GoogleGenAI({ apiKey: Redacted.value(apiKey), httpOptions: httpOptions(options) }),
    provider: options.name ?? "google",
    backend: "gemini",
    apiKey,
    secrets: [apiKey],
    timeout: durationOf(options.timeout),
    signatures: new SignatureStore()
  })
}

/**
 * A {@link GoogleClient} for the Gemini API.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: ClientOptions): Layer.Layer<GoogleClient, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    GoogleClient,
    Effect.suspend(() => {
      const problem = options.baseURL === undefined ? undefined : ProviderError.baseUrlProblem(options.baseURL)
      return problem === undefined
        ? Effect.sync(() => makeClient(options))
        : Effect.fail(SwitchboardConfigError.fromIssues([{ path: "Google.baseURL", message: problem }]))
    })
  )

/**
 * Options of {@link layerClientConfig}: values that override the environment.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientConfigOptions = Partial<Omit<ClientOptions, "apiKey">>

const apiKeyConfig: Config.Config<Redacted.Redacted<string>> = Config.Redacted("GEMINI_API_KEY").pipe(
  Config.orElse(() => Config.Redacted("GOOGLE_API_KEY")),
  Config.orElse(() =>
    Config.fail(
      new ConfigProvider.SourceError({
        message: "Missing Gemini API key: set GEMINI_API_KEY or GOOGLE_API_KEY (from https://aistudio.google.com/apikey)"
      })
    )
  )
)

/**
 * A {@link GoogleClient} for the Gemini API configured from the environment
 * through `Config`: the key from `GEMINI_API_KEY`, else `GOOGLE_API_KEY`
 * (a `ConfigError` naming both when neither is set), the base URL from
 * `GOOGLE_GEMINI_BASE_URL` (optional). `options` override what is read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientConfig = (options: ClientConfigOptions = {}): Layer.Layer<GoogleClient, Config.ConfigError> =>
  Layer.effect(
    GoogleClient,
    Effect.gen(function*() {
      const apiKey = yield* apiKeyConfig
      const baseURL = options.baseURL ??
        Option.getOrUndefined(yield* Config.option(Config.String("GOOGLE_GEMINI_BASE_URL")))
      return makeClient({ ...options, apiKey, baseURL })
    })
  )

/**
 * A minimal google-auth-library client for a fixed access token. `GoogleAuth`
 * returns a given `authClient` as is and asks it only for request headers
 * (google-auth-library 10, `GoogleAuth.getRequestHeaders` → `getClient()` →
 * `client.getRequestHeaders(url)`), so no token endpoint is ever called.
 * google-auth-library is the SDK's dependency, not ours, hence no subclass of
 * its `AuthClient`.
 */
const tokenClient = (token: Redacted.Redacted<string>): AuthClient => {
  const client = {
    credentials: {},
    getRequestHeaders: async () => new Headers({ authorization: `Bearer ${Redacted.value(token)}` }),
    getAccessToken: async () => ({ token: Redacted.value(token) }),
    setCredentials: () => {}
  }
  return client as unknown as AuthClient
}

/**
 * Builds a Vertex AI client. Nothing is fetched until the first call; the
 * access token is then obtained by google-auth-library (a failure there is
 * `AuthenticationFailed`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeVertexClient = (options: VertexOptions): GoogleClient["Service"] => {
  const privateKey = (options.credentials as { private_key?: unknown } | undefined)?.private_key
  const accessToken = options.accessToken === undefined ? undefined : secret(options.accessToken)
  const authClient = accessToken !== undefined ? tokenClient(accessToken) : options.authClient
  const googleAuthOptions = authClient !== undefined
    ? { authClient }
    : options.credentials !== undefined
    ? { credentials: options.credentials }
    : undefined
  const secrets: Array<Redacted.Redacted<string>> = []
  if (accessToken !== undefined) secrets.push(accessToken)
  if (typeof privateKey === "string") secrets.push(Redacted.make(privateKey))
  return GoogleClient.of({
    sdk: new GoogleGenAI({
      vertexai: true,
      project: options.project,
      location: options.location,
      ...(googleAuthOptions !== undefined ? { googleAuthOptions } : {}),
      httpOptions: httpOptions(options)
    }),
    provider: options.name ?? "google",
    backend: "vertex",
    apiKey: undefined,
    secrets,
    timeout: durationOf(options.timeout),
    signatures: new SignatureStore()
  })
}

/**
 * A {@link GoogleClient} for Gemini on Vertex AI. Real calls need Google
 * Cloud credentials: Application Default Credentials, `credentials`, a ready
 * `authClient`, or an `accessToken` you minted yourself.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerVertex = (options: VertexOptions): Layer.Layer<GoogleClient> =>
  Layer.sync(GoogleClient, () => makeVertexClient(options))

/**
 * Options of {@link layerVertexConfig}: values that override the environment.
 *
 * @since 0.1.0
 * @category models
 */
export type VertexConfigOptions = Partial<VertexOptions>

/**
 * A Vertex AI {@link GoogleClient} from the environment: the project from
 * `GOOGLE_CLOUD_PROJECT` (required), the region from `GOOGLE_CLOUD_LOCATION`
 * (default `global`). Credentials are Application Default Credentials unless
 * `options.accessToken`, `options.authClient` or `options.credentials` are given.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerVertexConfig = (options: VertexConfigOptions = {}): Layer.Layer<GoogleClient, Config.ConfigError> =>
  Layer.effect(
    GoogleClient,
    Effect.gen(function*() {
      const project = options.project ?? (yield* Config.String("GOOGLE_CLOUD_PROJECT"))
      const location = options.location ??
        (yield* Config.String("GOOGLE_CLOUD_LOCATION").pipe(Config.withDefault("global")))
      return makeVertexClient({ ...options, project, location })
    })
  )

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

const secretsOf = (client: GoogleClient["Service"]): ReadonlyArray<string> => client.secrets.map(Redacted.value)

/** The SDK timeout for a call at `now` under `deadline` (epoch ms): the client's, bounded by the time left. */
const timeoutAt = (client: GoogleClient["Service"], deadline: number | undefined, now: number): number | undefined =>
  Deadline.sdkTimeout(client.timeout === undefined ? undefined : Duration.toMillis(client.timeout), deadline, now)

let counter = 0
const fallbackId = (now: number) => `gemini-${now.toString(36)}-${(counter++).toString(36)}`

const paramsOf = (client: GoogleClient["Service"], request: LlmRequest.LlmRequest, model: string, timeoutMs: number | undefined) => {
  const { contents, systemInstruction } = toContents(request, model, client.signatures)
  const config = toConfig(request, systemInstruction)
  if (timeoutMs !== undefined) config.httpOptions = { timeout: timeoutMs }
  return { model, contents, config }
}

// The hot path: no generator, the fiber's refs read synchronously (as the OpenAI leaf does).
const generateWith = (client: GoogleClient["Service"]) =>
(request: LlmRequest.LlmRequest, model: string): Effect.Effect<LlmResponse.LlmResponse, LlmError.LlmError> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeMillisUnsafe()
    const timeoutMs = timeoutAt(client, fiber.getRef(Deadline.CurrentDeadline), start)
    const params = paramsOf(client, request, model, timeoutMs)
    let signal: AbortSignal | undefined
    const context = (): ErrorContext => ({
      provider: client.provider,
      model,
      secrets: secretsOf(client),
      timeoutMs,
      aborted: signal?.aborted === true,
      vertex: client.backend === "vertex"
    })
    return Effect.flatMap(
      Effect.tryPromise({
        try: (abortSignal) => {
          signal = abortSignal
          return client.sdk.models.generateContent({ ...params, config: { ...params.config, abortSignal } })
        },
        catch: (cause) => toLlmError(cause, context())
      }),
      (response) => {
        const ctx: CallContext = {
          provider: client.provider,
          model,
          signatures: client.signatures,
          fallbackId: fallbackId(start)
        }
        const result = toResponse(response, ctx, start, clock.currentTimeMillisUnsafe())
        return "_tag" in result ? Effect.fail(result) : Effect.succeed(result)
      }
    )
  })

// Prepared on each run of the stream, in the accumulator's own layer (no `Stream.unwrap`, no generator).
const streamWith = (client: GoogleClient["Service"]) =>
(request: LlmRequest.LlmRequest, model: string): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> =>
  StreamAccumulator.stream((fiber) => {
    const start = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    const timeoutMs = timeoutAt(client, fiber.getRef(Deadline.CurrentDeadline), start)
    const params = paramsOf(client, request, model, timeoutMs)
    // One controller for the whole stream: aborting it cancels the HTTP body too. Only this leaf aborts it
    // (an interrupted open, a stream dropped before its end), so an abort error is a cancelled call; the
    // SDK's own timeout aborts a signal of its own.
    const controller = new AbortController()
    const context = (): ErrorContext => ({
      provider: client.provider,
      model,
      secrets: secretsOf(client),
      timeoutMs,
      aborted: controller.signal.aborted,
      vertex: client.backend === "vertex"
    })
    const ctx: CallContext = {
      provider: client.provider,
      model,
      signatures: client.signatures,
      fallbackId: fallbackId(start)
    }
    const open = Effect.tryPromise({
      try: () =>
        client.sdk.models.generateContentStream({
          ...params,
          config: { ...params.config, abortSignal: controller.signal }
        }),
      catch: (cause) => toLlmError(cause, context())
    })
    return streamOptions(open, () => controller.abort(), ctx, (cause) => toLlmError(cause, context()))
  })

const calls = { generate: generateWith, stream: streamWith }

/**
 * Builds the `LLM` service of one model on a client (see {@link model}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Provider.leaf(calls)

/**
 * The `LLM` of one Gemini model, e.g. `Google.model("gemini-2.5-flash")`.
 * `defaults` (temperature, maxTokens, system, …) fill what a request leaves
 * out; a request's `model` overrides `name`; `options.contentFilter` says
 * whether a SAFETY-style finish fails with `ContentFiltered` (the default) or
 * is returned.
 *
 * @since 0.1.0
 * @category layers
 */
export const model = Provider.model(GoogleClient, calls)

/**
 * A model the API offers.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelInfo {
  /** The id to pass to {@link model} (`gemini-2.5-flash`, without `models/`). */
  readonly id: string
  /** The full resource name (`models/gemini-2.5-flash`; on Vertex `publishers/google/models/gemini-2.5-flash`). */
  readonly name: string
  readonly displayName?: string | undefined
  readonly description?: string | undefined
  readonly inputTokenLimit?: number | undefined
  readonly outputTokenLimit?: number | undefined
  /** Methods the model supports (`generateContent`, `countTokens`, …). */
  readonly supportedActions?: ReadonlyArray<string> | undefined
}

const idOf = (name: string): string => name.replace(/^(publishers\/[^/]+\/)?models\//, "")

/**
 * Lists the models the client's API offers (every page).
 *
 * @since 0.1.0
 * @category accessors
 */
export const listModels: Effect.Effect<ReadonlyArray<ModelInfo>, LlmError.LlmError, GoogleClient> = Effect.gen(
  function*() {
    const client = yield* GoogleClient
    let signal: AbortSignal | undefined
    return yield* Effect.tryPromise({
      try: async (abortSignal) => {
        signal = abortSignal
        const pager = await client.sdk.models.list({ config: { abortSignal } })
        const out: Array<ModelInfo> = []
        for await (const m of pager) {
          const name = m.name ?? ""
          out.push({
            id: idOf(name),
            name,
            ...(m.displayName !== undefined ? { displayName: m.displayName } : {}),
            ...(m.description !== undefined ? { description: m.description } : {}),
            ...(m.inputTokenLimit !== undefined ? { inputTokenLimit: m.inputTokenLimit } : {}),
            ...(m.outputTokenLimit !== undefined ? { outputTokenLimit: m.outputTokenLimit } : {}),
            ...(m.supportedActions !== undefined ? { supportedActions: m.supportedActions } : {})
          })
        }
        return out
      },
      catch: (cause) =>
        toLlmError(cause, {
          provider: client.provider,
          secrets: secretsOf(client),
          aborted: signal?.aborted === true,
          vertex: client.backend === "vertex"
        })
    })
  }
).pipe(Effect.withSpan("Google.listModels"))
