/**
 * What each of the other three provider leaves adds to its official SDK, in
 * process (the companion of `leaf.ts` for OpenAI): the raw SDK and the leaf
 * over the same SDK, both answered at once with the minimal upstream's
 * recorded bodies (`providerBodies.ts`) — a canned `fetch` for
 * `@anthropic-ai/sdk` and `@google/genai`, a canned request handler for
 * `@aws-sdk/client-bedrock-runtime` — so no socket, server or other process
 * blurs the difference. Sequential calls, CPU µs per call, the median of
 * interleaved rounds; the leaf's overhead is its CPU minus the SDK's in the
 * same round.
 *
 * Usage: `node scripts/bench/leaves.ts [--calls 5000] [--rounds 5] [--stream] [--only anthropic|google|bedrock]`
 */
import AnthropicSdk from "@anthropic-ai/sdk"
import { Anthropic } from "@switchboard/anthropic"
import { Bedrock } from "@switchboard/bedrock"
import { Llm } from "@switchboard/core"
import { Google } from "@switchboard/google"
import { Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import { createRequire } from "node:module"
import { Readable } from "node:stream"
import { flag } from "./args.ts"
import { streamMarker } from "./bodies.ts"
import * as bodies from "./providerBodies.ts"

const args = process.argv.slice(2)
const calls = Number(flag("--calls") ?? 5_000)
const rounds = Number(flag("--rounds") ?? 5)
const streaming = args.includes("--stream")
const only = flag("--only")

const prompt = (index: number) => `Benchmark request ${index}: say hello.`
const request = (index: number) => ({ messages: [{ role: "user" as const, content: prompt(index) }], maxTokens: 64 })

/** A `fetch` answering every call at once with the recorded Anthropic or Gemini body, no socket. */
const canned: typeof globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url
  const body = typeof init?.body === "string" ? init.body : ""
  const [text, type] = url.endsWith("/v1/messages")
    ? body.includes(streamMarker) ? [bodies.anthropicSse, "text/event-stream"] : [bodies.anthropicMessage, "application/json"]
    : url.includes(":streamGenerateContent")
    ? [bodies.googleSse, "text/event-stream"]
    : [bodies.googleResponse, "application/json"]
  return new Response(text, { status: 200, headers: { "content-type": type } })
}

/** The part of `@aws-sdk/client-bedrock-runtime` used here (loaded from `@switchboard/bedrock`'s dependencies). */
interface BedrockSdk {
  readonly BedrockRuntimeClient: new(config: Record<string, unknown>) => { send(command: unknown): Promise<unknown> }
  readonly ConverseCommand: new(input: Record<string, unknown>) => unknown
  readonly ConverseStreamCommand: new(input: Record<string, unknown>) => unknown
}
const aws = createRequire(new URL("../../packages/bedrock/package.json", import.meta.url))(
  "@aws-sdk/client-bedrock-runtime"
) as BedrockSdk
/** A request handler answering at once with the recorded Converse body or ConverseStream frames. */
const cannedHandler = {
  handle: async (req: { readonly path: string }) => {
    const stream = req.path.endsWith("/converse-stream")
    return {
      response: {
        statusCode: 200,
        reason: "OK",
        headers: { "content-type": stream ? "application/vnd.amazon.eventstream" : "application/json" },
        body: stream ? Readable.from([bodies.bedrockStream]) : Readable.from([Buffer.from(bodies.bedrockConverse)])
      }
    }
  },
  updateHttpClientConfig: () => {},
  httpHandlerConfigs: () => ({}),
  destroy: () => {}
}
const credentials = { accessKeyId: "AKIDBENCH", secretAccessKey: "bench-secret-access-key" }
const bedrockSdk = () =>
  new aws.BedrockRuntimeClient({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:1",
    credentials,
    maxAttempts: 1,
    requestHandler: cannedHandler
  })

type Call = (index: number) => Promise<void>

const layerCall = (layer: Layer.Layer<Llm.LLM>): Call => {
  const runtime = ManagedRuntime.make(layer)
  return (index) =>
    runtime.runPromise(streaming ? Stream.runDrain(Llm.stream(request(index))) : Effect.asVoid(Llm.generate(request(index))))
}

const anthropic = (): readonly [Call, Call] => {
  const sdk = new AnthropicSdk({ apiKey: "sk-ant-bench", baseURL: "http://127.0.0.1:1", maxRetries: 0, fetch: canned })
  const sdkCall: Call = async (index) => {
    const body = { model: "claude-haiku-4-5", max_tokens: 64, messages: [{ role: "user" as const, content: prompt(index) }] }
    if (!streaming) {
      await sdk.messages.create(body)
      return
    }
    for await (const _ of await sdk.messages.create({ ...body, stream: true })) {
      // drained
    }
  }
  const client = Layer.orDie(Anthropic.layerClient({ apiKey: "sk-ant-bench", baseURL: "http://127.0.0.1:1", fetch: canned }))
  return [sdkCall, layerCall(Anthropic.model("claude-haiku-4-5").pipe(Layer.provide(client)))]
}

const google = (): readonly [Call, Call] => {
  const { sdk } = Google.makeClient({ apiKey: "AIza-bench", baseURL: "http://127.0.0.1:1", fetch: canned })
  const sdkCall: Call = async (index) => {
    const params = {
      model: "gemini-2.5-flash",
      contents: [{ role: "user", parts: [{ text: prompt(index) }] }],
      config: { maxOutputTokens: 64 }
    }
    if (!streaming) {
      await sdk.models.generateContent(params)
      return
    }
    for await (const _ of await sdk.models.generateContentStream(params)) {
      // drained
    }
  }
  const client = Layer.orDie(Google.layerClient({ apiKey: "AIza-bench", baseURL: "http://127.0.0.1:1", fetch: canned }))
  return [sdkCall, layerCall(Google.model("gemini-2.5-flash").pipe(Layer.provide(client)))]
}

const bedrock = (): readonly [Call, Call] => {
  const raw = bedrockSdk()
  const sdkCall: Call = async (index) => {
    const input = {
      modelId: "us.amazon.nova-micro-v1:0",
      messages: [{ role: "user", content: [{ text: prompt(index) }] }],
      inferenceConfig: { maxTokens: 64 }
    }
    if (!streaming) {
      await raw.send(new aws.ConverseCommand(input))
      return
    }
    const output = await raw.send(new aws.ConverseStreamCommand(input)) as { readonly stream: AsyncIterable<unknown> }
    for await (const _ of output.stream) {
      // drained
    }
  }
  // The leaf over the same kind of client, built as `Bedrock.layerClient` builds it but with the canned handler.
  const service = Bedrock.BedrockClient.of({
    sdk: bedrockSdk() as never,
    provider: "bedrock",
    region: "us-east-1",
    endpoint: "http://127.0.0.1:1",
    controlPlaneEndpoint: "http://127.0.0.1:1",
    secret: Redacted.make(credentials.secretAccessKey),
    secrets: [Redacted.make(credentials.secretAccessKey)],
    apiKey: undefined,
    timeout: undefined,
    headers: {}
  })
  return [sdkCall, layerCall(Layer.succeed(Llm.LLM, Bedrock.makeModel(service, "us.amazon.nova-micro-v1:0")))]
}

const measure = async (call: Call, from: number) => {
  const cpu = process.cpuUsage()
  for (let i = from; i < from + calls; i++) await call(i)
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / calls
}
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const providers = { anthropic, google, bedrock }
console.log(`${calls} sequential ${streaming ? "streams" : "calls"} × ${rounds} rounds, canned transport, CPU µs per call`)
for (const [name, make] of Object.entries(providers)) {
  if (only !== undefined && only !== name) continue
  const [sdkCall, leafCall] = make()
  await measure(sdkCall, 0)
  await measure(leafCall, 0)
  const sdkUs: Array<number> = []
  const leafUs: Array<number> = []
  for (let round = 1; round <= rounds; round++) {
    sdkUs.push(await measure(sdkCall, round * calls))
    leafUs.push(await measure(leafCall, round * calls))
  }
  const added = leafUs.map((x, i) => x - sdkUs[i]!)
  console.log(
    `${name.padEnd(9)} sdk ${median(sdkUs).toFixed(1).padStart(7)}  leaf ${median(leafUs).toFixed(1).padStart(7)}  added ${
      median(added).toFixed(1).padStart(6)
    } [${Math.min(...added).toFixed(1)}–${Math.max(...added).toFixed(1)}]`
  )
}
process.exit(0)
