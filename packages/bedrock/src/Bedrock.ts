/**
 * AWS Bedrock as an `LLM` layer, over the official
 * `@aws-sdk/client-bedrock-runtime` Converse and ConverseStream operations.
 * {@link layerClient} (or {@link layerClientConfig}, from the standard AWS
 * environment variables) builds one SDK client with its own retries off —
 * retrying is the combinators' job — and {@link model} turns it into an
 * `LLM` for one model id or inference profile. {@link listModels} reads the
 * control-plane `ListFoundationModels` with the same credentials.
 *
 * Every SDK failure becomes a typed `LlmError`; interrupting the calling
 * fiber aborts the request; the time left before a request's deadline
 * becomes the SDK's request timeout; the secret access key (and session
 * token, and API key) never appear in an error, a log line or `raw`.
 *
 * @since 0.1.0
 */
import {
  BedrockRuntimeClient,
  type BedrockRuntimeClientConfig,
  ConverseCommand,
  type ConverseCommandOutput,
  ConverseStreamCommand,
  type ConverseStreamOutput
} from "@aws-sdk/client-bedrock-runtime"
import {
  Deadline,
  LlmError,
  type LlmRequest,
  type LlmResponse,
  ProviderError,
  SwitchboardConfigError
} from "@switchboard/core"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Provider, StreamAccumulator } from "@switchboard/core/provider"
import { Clock, Config, Context, Duration, Effect, Layer, Option, Redacted, Stream } from "effect"
import type { ConfigError } from "effect/Config"
import * as Http from "node:http"
import * as Https from "node:https"
import { type ErrorContext, toLlmError } from "./internal/errors.ts"
import { fromConverseOutput, toConverseInput } from "./internal/mapping.ts"
import { table } from "./internal/stream.ts"

/**
 * Static AWS credentials. Secrets may be given as `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string | Redacted.Redacted
  readonly sessionToken?: string | Redacted.Redacted | undefined
}

/**
 * Options of {@link layerClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The AWS region, e.g. `"us-east-1"`. */
  readonly region: string
  /** Static credentials; when left out (and no `apiKey`), the SDK's default credential chain is used. */
  readonly credentials?: Credentials | undefined
  /** A Bedrock API key (bearer token) instead of SigV4 credentials. */
  readonly apiKey?: string | Redacted.Redacted | undefined
  /** A custom runtime endpoint (a VPC endpoint, a proxy, the simulator: `${url}/bedrock`). */
  readonly endpoint?: string | undefined
  /** The control-plane endpoint for {@link listModels}; default `endpoint`, else `https://bedrock.{region}.amazonaws.com`. */
  readonly controlPlaneEndpoint?: string | undefined
  /**
   * Request timeout: the longest wait for an answer's headers, and the longest silence of the connection after
   * them; a request deadline that leaves less time wins.
   */
  readonly timeout?: Duration.Input | undefined
  /**
   * The HTTP version of the runtime calls. `"1.1"` (default): kept-alive
   * connections that successive calls share, as the SDK used before it
   * switched Bedrock to HTTP/2 for bidirectional streams, which Converse and
   * ConverseStream do not use. `"2"`: the SDK's own HTTP/2 handler, which
   * opens a session for every request (a TLS handshake each over the
   * network; ~1.5× the client CPU of a call on loopback, `pnpm bench`).
   */
  readonly httpVersion?: "1.1" | "2" | undefined
  /** Headers added to every request (signed with it). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** The provider name reported in responses and errors (default `"bedrock"`). */
  readonly provider?: string | undefined
}

/**
 * The Bedrock runtime client: the SDK instance, the provider name, and the
 * secret (secret access key or API key) as `Redacted`.
 *
 * @since 0.1.0
 * @category services
 */
export class BedrockClient extends Context.Service<BedrockClient, {
  readonly sdk: BedrockRuntimeClient
  readonly provider: string
  readonly region: string
  readonly endpoint: string | undefined
  readonly controlPlaneEndpoint: string
  /** The secret access key, or the API key; `undefined` with the default credential chain. */
  readonly secret: Redacted.Redacted | undefined
  /** Every secret the client holds, scrubbed from error messages. */
  readonly secrets: ReadonlyArray<Redacted.Redacted>
  readonly apiKey: Redacted.Redacted | undefined
  readonly timeout: Duration.Duration | undefined
  readonly headers: Readonly<Record<string, string>>
}>()("@switchboard/bedrock/BedrockClient") {}

const redacted = (value: string | Redacted.Redacted): Redacted.Redacted =>
  typeof value === "string" ? Redacted.make(value) : value

const trimSlash = (url: string): string => url.replace(/\/+$/, "")

/**
 * Builds the client in the current scope (its connections close with the scope).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ClientOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const secret = options.credentials === undefined ? undefined : redacted(options.credentials.secretAccessKey)
      const session = options.credentials?.sessionToken === undefined
        ? undefined
        : redacted(options.credentials.sessionToken)
      const apiKey = options.apiKey === undefined ? undefined : redacted(options.apiKey)
      const endpoint = options.endpoint === undefined ? undefined : trimSlash(options.endpoint)
      const accessKeyId = options.credentials?.accessKeyId
      const timeout = options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout)
      const config: BedrockRuntimeClientConfig = {
        region: options.region,
        maxAttempts: 1,
        ...(endpoint !== undefined ? { endpoint } : {}),
        // A provider function keeps the plain secret out of the client's enumerable config.
        ...(secret !== undefined && accessKeyId !== undefined
          ? {
            credentials: () =>
              Promise.resolve({
                accessKeyId,
                secretAccessKey: Redacted.value(secret),
                ...(session !== undefined ? { sessionToken: Redacted.value(session) } : {})
              })
          }
          : {}),
        ...(apiKey !== undefined
          ? {
            token: () => Promise.resolve({ token: Redacted.value(apiKey) }),
            authSchemePreference: ["httpBearerAuth"]
          }
          : {})
      }
      const sdk = new BedrockRuntimeClient(
        options.httpVersion === "2" ? config : {
          ...config,
          // Unlimited sockets per host, as Node's agents (the SDK's own caps at 50 and queues the rest).
          requestHandler: new NodeHttpHandler({
            httpAgent: new Http.Agent({ keepAlive: true }),
            httpsAgent: new Https.Agent({ keepAlive: true }),
            // A call's timeout (to the answer's headers) fails it (`Timeout`), as the HTTP/2 handler's does,
            // instead of logging a warning; the client's timeout also bounds a silence of the connection after them.
            throwOnRequestTimeout: true,
            ...(timeout !== undefined ? { socketTimeout: Duration.toMillis(timeout) } : {})
          })
        }
      )
      const headers = { ...options.headers }
      if (Object.keys(headers).length > 0) {
        sdk.middlewareStack.add(
          (next) => (args) => {
            const request = args.request as { headers?: Record<string, string> }
            if (request.headers !== undefined) Object.assign(request.headers, headers)
            return next(args)
          },
          { step: "build", name: "switchboardDefaultHeaders" }
        )
      }
      return BedrockClient.of({
        sdk,
        provider: options.provider ?? "bedrock",
        region: options.region,
        endpoint,
        controlPlaneEndpoint: options.controlPlaneEndpoint !== undefined
          ? trimSlash(options.controlPlaneEndpoint)
          : endpoint ?? `https://bedrock.${options.region}.amazonaws.com`,
        secret: secret ?? apiKey,
        secrets: [secret, session, apiKey].filter((s): s is Redacted.Redacted => s !== undefined),
        apiKey,
        timeout,
        headers
      })
    }),
    (client) => Effect.sync(() => client.sdk.destroy())
  )

/**
 * A layer of the Bedrock client, SDK retries off. An `endpoint` that is not
 * an absolute http(s) URL fails the layer at build with
 * `SwitchboardConfigError { path: "Bedrock.endpoint" }`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: ClientOptions): Layer.Layer<BedrockClient, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(
    BedrockClient,
    Effect.suspend(() => {
      for (const [path, url] of [["Bedrock.endpoint", options.endpoint], ["Bedrock.controlPlaneEndpoint", options.controlPlaneEndpoint]] as const) {
        const problem = url === undefined ? undefined : ProviderError.baseUrlProblem(url)
        if (problem !== undefined) return Effect.fail(SwitchboardConfigError.fromIssues([{ path, message: problem }]))
      }
      return make(options)
    })
  )

/**
 * Options of {@link layerClientConfig} that are not read from the environment.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientConfigOptions {
  readonly timeout?: Duration.Input | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly provider?: string | undefined
}

/**
 * The client options read through `Config`:
 * - `AWS_REGION`, else `AWS_DEFAULT_REGION` (required: a missing region fails naming `AWS_REGION`);
 * - `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) when set, secrets as `Redacted`
 *   (one without the other fails naming the missing one); otherwise the SDK's default credential chain;
 * - `AWS_BEARER_TOKEN_BEDROCK`: a Bedrock API key, used when no access key is set;
 * - `BEDROCK_ENDPOINT` (optional URL), `BEDROCK_TIMEOUT` (optional duration, e.g. `"30 seconds"`).
 *
 * @since 0.1.0
 * @category config
 */
export const clientConfig = (options: ClientConfigOptions = {}): Effect.Effect<ClientOptions, ConfigError> =>
  Effect.gen(function*() {
    const region = Option.filter(yield* Config.option(Config.String("AWS_REGION")), (r) => r.length > 0)
    const fallbackRegion = yield* Config.option(Config.String("AWS_DEFAULT_REGION"))
    const resolvedRegion = Option.isSome(region)
      ? region.value
      : Option.isSome(fallbackRegion) && fallbackRegion.value.length > 0
      ? fallbackRegion.value
      : yield* Config.String("AWS_REGION")
    const accessKeyId = yield* Config.option(Config.String("AWS_ACCESS_KEY_ID"))
    const secretAccessKey = yield* Config.option(Config.Redacted("AWS_SECRET_ACCESS_KEY"))
    const sessionToken = yield* Config.option(Config.Redacted("AWS_SESSION_TOKEN"))
    const bearer = yield* Config.option(Config.Redacted("AWS_BEARER_TOKEN_BEDROCK"))
    const endpoint = yield* Config.option(Config.URL("BEDROCK_ENDPOINT"))
    const timeout = yield* Config.option(Config.Duration("BEDROCK_TIMEOUT"))
    let credentials: Credentials | undefined
    if (Option.isSome(accessKeyId) || Option.isSome(secretAccessKey)) {
      const id = Option.isSome(accessKeyId) ? accessKeyId.value : yield* Config.String("AWS_ACCESS_KEY_ID")
      const secret = Option.isSome(secretAccessKey)
        ? secretAccessKey.value
        : yield* Config.Redacted("AWS_SECRET_ACCESS_KEY")
      credentials = {
        accessKeyId: id,
        secretAccessKey: secret,
        ...(Option.isSome(sessionToken) ? { sessionToken: sessionToken.value } : {})
      }
    }
    const chosenTimeout = options.timeout ?? (Option.isSome(timeout) ? timeout.value : undefined)
    return {
      region: resolvedRegion,
      ...(credentials !== undefined ? { credentials } : {}),
      ...(credentials === undefined && Option.isSome(bearer) ? { apiKey: bearer.value } : {}),
      ...(Option.isSome(endpoint) ? { endpoint: trimSlash(endpoint.value.toString()) } : {}),
      ...(chosenTimeout !== undefined ? { timeout: chosenTimeout } : {}),
      ...(options.headers !== undefined ? { headers: options.headers } : {}),
      ...(options.provider !== undefined ? { provider: options.provider } : {})
    }
  })

/**
 * The client layer from the standard AWS environment variables (see
 * {@link clientConfig}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClientConfig = (options?: ClientConfigOptions): Layer.Layer<BedrockClient, ConfigError> =>
  Layer.effect(BedrockClient, Effect.flatMap(clientConfig(options), make))

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

const secretsOf = (client: BedrockClient["Service"]): ReadonlyArray<string> => client.secrets.map(Redacted.value)

/** The request timeout: the configured one, shortened to the deadline's time left. */
const requestTimeout = (client: BedrockClient["Service"]): Effect.Effect<number | undefined> =>
  Effect.withFiber((fiber) =>
    Effect.succeed(Deadline.sdkTimeout(
      client.timeout === undefined ? undefined : Duration.toMillis(client.timeout),
      fiber.getRef(Deadline.CurrentDeadline),
      fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    ))
  )

/** Adds a middleware capturing the raw response headers of one command. */
interface HeaderStack {
  readonly add: (
    middleware: (next: (args: unknown) => Promise<{ readonly response?: unknown }>) => (args: unknown) => Promise<unknown>,
    options: { readonly step: "deserialize"; readonly name: string }
  ) => void
}

const captureHeaders = (command: { readonly middlewareStack: unknown }) => {
  const box: { headers: Record<string, string> | undefined } = { headers: undefined }
  ;(command.middlewareStack as HeaderStack).add(
    (next) => async (args) => {
      const result = await next(args)
      box.headers = (result.response as { headers?: Record<string, string> } | undefined)?.headers
      return result
    },
    { step: "deserialize", name: "switchboardResponseHeaders" }
  )
  return box
}

const idOf = (metadata: { readonly requestId?: string | undefined } | undefined, now: number): string =>
  metadata?.requestId ?? `bedrock-${now.toString(36)}`

const generateWith = (client: BedrockClient["Service"]) =>
  Effect.fnUntraced(function*(request: LlmRequest.LlmRequest, model: string) {
    const origin = { provider: client.provider, model }
    const prepared = toConverseInput(request, origin)
    if (prepared instanceof LlmError.InvalidRequest) return yield* prepared
    const timeoutMs = yield* requestTimeout(client)
    const command = new ConverseCommand(prepared.input)
    const captured = captureHeaders(command)
    const start = yield* Clock.currentTimeMillis
    const output: ConverseCommandOutput = yield* Effect.tryPromise({
      try: (signal) =>
        client.sdk.send(command, {
          abortSignal: signal,
          ...(timeoutMs !== undefined ? { requestTimeout: timeoutMs } : {})
        }),
      // The secrets are read out of their `Redacted` only when a call fails.
      catch: (cause) => toLlmError(cause, { ...origin, timeoutMs, secrets: secretsOf(client) })
    })
    const now = yield* Clock.currentTimeMillis
    const response = fromConverseOutput(output, {
      ...origin,
      id: idOf(output?.$metadata, now),
      formatTool: prepared.formatTool,
      latencyMs: now - start,
      rateLimit: ProviderError.rateLimitInfo(captured.headers, now)
    })
    if (response instanceof LlmError.MalformedResponse) return yield* response
    return response
  })

const streamWith = (client: BedrockClient["Service"]) =>
(request: LlmRequest.LlmRequest, model: string): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> =>
  Stream.unwrap(Effect.gen(function*() {
    const origin = { provider: client.provider, model }
    const prepared = toConverseInput(request, origin)
    if (prepared instanceof LlmError.InvalidRequest) return yield* prepared
    const timeoutMs = yield* requestTimeout(client)
    // The secrets are read out of their `Redacted` only when the stream fails.
    const secrets = () => secretsOf(client)
    const context = (): ErrorContext => ({ ...origin, timeoutMs, secrets: secrets() })
    // The response stream outlives the promise of `send`: one controller aborts it
    // when the stream is dropped before its end.
    const controller = new AbortController()
    const command = new ConverseStreamCommand(prepared.input)
    const captured = captureHeaders(command)
    const open = Effect.gen(function*() {
      const output = yield* Effect.tryPromise({
        try: (signal) => {
          signal.addEventListener("abort", () => controller.abort(), { once: true })
          return client.sdk.send(command, {
            abortSignal: controller.signal,
            ...(timeoutMs !== undefined ? { requestTimeout: timeoutMs } : {})
          })
        },
        catch: (cause) => toLlmError(cause, context())
      })
      const events = output?.stream
      if (events === undefined) {
        return yield* new LlmError.MalformedResponse({ ...origin, detail: "ConverseStream answered without a stream" })
      }
      return yield* StreamAccumulator.opened<ConverseStreamOutput>(events, () => controller.abort(), captured.headers)
    })
    const start = yield* Clock.currentTimeMillis
    return StreamAccumulator.stream<ConverseStreamOutput, never>({
      ...origin,
      open,
      table: table({ formatTool: prepared.formatTool, secrets, timeoutMs }),
      onError: (cause) => toLlmError(cause, context()),
      unfinished: "the ConverseStream ended before its messageStop and metadata events",
      raw: (acc) => ({ stopReason: acc.finishRaw ?? null, usage: acc.usage })
    }).pipe(Stream.map((part) =>
      part.type === "finish" && part.response.id === ""
        ? { type: "finish" as const, response: { ...part.response, id: idOf(undefined, start) } }
        : part
    ))
  }))

const calls = { generate: generateWith, stream: streamWith }

/**
 * Builds the `LLM` service of a model on a client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeModel = Provider.leaf(calls)

/**
 * An `LLM` answering with a Bedrock model id or inference profile (e.g.
 * `"us.amazon.nova-micro-v1:0"`). `defaults` fill what a request leaves out
 * (temperature, maxTokens, system, …); `request.model` overrides `modelId`;
 * `options.contentFilter` says whether a guardrail or content-filter stop
 * fails with `ContentFiltered` (the default) or is returned.
 *
 * @since 0.1.0
 * @category layers
 */
export const model = Provider.model(BedrockClient, calls)

// ---------------------------------------------------------------------------
// Model listing (control plane)
// ---------------------------------------------------------------------------

/**
 * One foundation model from `ListFoundationModels`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelInfo {
  readonly id: string
  readonly name?: string | undefined
  readonly providerName?: string | undefined
  readonly arn?: string | undefined
  readonly inputModalities?: ReadonlyArray<string> | undefined
  readonly outputModalities?: ReadonlyArray<string> | undefined
  readonly streaming?: boolean | undefined
  readonly inferenceTypes?: ReadonlyArray<string> | undefined
  readonly lifecycle?: string | undefined
}

interface HttpRequestLike {
  readonly method: string
  readonly protocol: string
  readonly hostname: string
  readonly port?: number | undefined
  readonly path: string
  readonly query: Record<string, string>
  readonly headers: Record<string, string>
}

interface Signer {
  readonly sign: (request: HttpRequestLike) => Promise<HttpRequestLike>
}

interface Handler {
  readonly handle: (
    request: HttpRequestLike,
    options: { abortSignal?: AbortSignal; requestTimeout?: number }
  ) => Promise<{ response: { statusCode: number; headers: Record<string, string>; body: AsyncIterable<Uint8Array> } }>
}

const readBody = async (body: AsyncIterable<Uint8Array> | undefined): Promise<string> => {
  if (body === undefined) return ""
  const chunks: Array<Uint8Array> = []
  for await (const chunk of body) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks).toString("utf8")
}

const asStrings = (u: unknown): ReadonlyArray<string> | undefined =>
  Array.isArray(u) ? u.filter((x): x is string => typeof x === "string") : undefined

const toModelInfo = (summary: Record<string, unknown>): ModelInfo | undefined => {
  if (typeof summary.modelId !== "string") return undefined
  const str = (u: unknown) => (typeof u === "string" ? u : undefined)
  const info: Record<string, unknown> = { id: summary.modelId }
  const put = (key: string, value: unknown) => {
    if (value !== undefined) info[key] = value
  }
  put("name", str(summary.modelName))
  put("providerName", str(summary.providerName))
  put("arn", str(summary.modelArn))
  put("inputModalities", asStrings(summary.inputModalities))
  put("outputModalities", asStrings(summary.outputModalities))
  put("streaming", typeof summary.responseStreamingSupported === "boolean" ? summary.responseStreamingSupported : undefined)
  put("inferenceTypes", asStrings(summary.inferenceTypesSupported))
  const lifecycle = summary.modelLifecycle as { status?: unknown } | undefined
  put("lifecycle", str(lifecycle?.status))
  return info as unknown as ModelInfo
}

/**
 * The foundation models of the client's region: a SigV4-signed
 * `GET /foundation-models` (Bedrock's control-plane `ListFoundationModels`),
 * signed with the runtime client's own credentials and sent through its own
 * HTTP handler, so no second SDK is needed.
 *
 * @since 0.1.0
 * @category accessors
 */
export const listModels: Effect.Effect<ReadonlyArray<ModelInfo>, LlmError.LlmError, BedrockClient> = Effect.gen(
  function*() {
    const client = yield* BedrockClient
    const origin = { provider: client.provider }
    const timeoutMs = yield* requestTimeout(client)
    const context: ErrorContext = { ...origin, timeoutMs, secrets: secretsOf(client) }
    const url = new URL(`${client.controlPlaneEndpoint}/foundation-models`)
    const request: HttpRequestLike = {
      method: "GET",
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port !== "" ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: {},
      headers: { host: url.host, accept: "application/json", ...client.headers }
    }
    const config = client.sdk.config as unknown as {
      readonly signer: (scheme: unknown) => Promise<Signer>
      readonly requestHandler: Handler
      readonly region: () => Promise<string>
    }
    const { body, headers, status } = yield* Effect.tryPromise({
      try: async (signal) => {
        const signed = client.apiKey !== undefined
          ? { ...request, headers: { ...request.headers, authorization: `Bearer ${Redacted.value(client.apiKey)}` } }
          : await (await config.signer({
            name: "sigv4",
            signingName: "bedrock",
            signingRegion: client.region,
            properties: {}
          })).sign(request)
        const { response } = await config.requestHandler.handle(signed, {
          abortSignal: signal,
          ...(timeoutMs !== undefined ? { requestTimeout: timeoutMs } : {})
        })
        return { body: await readBody(response.body), headers: response.headers, status: response.statusCode }
      },
      catch: (cause) => toLlmError(cause, context)
    })
    let parsed: unknown
    try {
      parsed = body.length === 0 ? undefined : JSON.parse(body)
    } catch {
      parsed = undefined
      if (status < 400) {
        return yield* new LlmError.MalformedResponse({ ...origin, detail: "ListFoundationModels answered with invalid JSON" })
      }
    }
    if (status >= 400) {
      const errorType = ProviderError.header(headers, "x-amzn-errortype")?.split(":")[0]
      const record = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<string, unknown>
      const message = typeof record.message === "string"
        ? record.message
        : typeof record.Message === "string"
        ? record.Message
        : `ListFoundationModels failed with status ${status}`
      return yield* Effect.fail(toLlmError({
        name: errorType ?? (typeof record.__type === "string" ? record.__type : "Unknown"),
        message,
        $metadata: { httpStatusCode: status },
        $response: { statusCode: status, headers }
      }, context))
    }
    const summaries = (parsed as { modelSummaries?: unknown } | undefined)?.modelSummaries
    if (!Array.isArray(summaries)) {
      return yield* new LlmError.MalformedResponse({ ...origin, detail: "ListFoundationModels answered without modelSummaries" })
    }
    const out: Array<ModelInfo> = []
    for (const summary of summaries) {
      if (typeof summary === "object" && summary !== null) {
        const info = toModelInfo(summary as Record<string, unknown>)
        if (info !== undefined) out.push(info)
      }
    }
    return out
  }
).pipe(Effect.withSpan("Bedrock.listModels"))
