/**
 * The variants `pnpm bench` compares, each as a function that makes one call
 * against the simulator (or in process) and resolves when it is done — with
 * the time to first part for streaming calls.
 */
import AnthropicSdk from "@anthropic-ai/sdk"
import { Anthropic } from "@switchboard/anthropic"
import { Bedrock } from "@switchboard/bedrock"
import { Llm, type LlmRequest, Router } from "@switchboard/core"
import { UndiciFetch } from "@switchboard/core/provider"
import { Google } from "@switchboard/google"
import { OpenAI } from "@switchboard/openai"
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { createRequire } from "node:module"
import OpenAISdk from "openai"
import { makeStack, makeStackFrom } from "../../examples/switchboard.ts"
import type { Call } from "./measure.ts"

/** Every variant's name, in table order. */
export const names = [
  "fetch",
  "sdk",
  "sdk-signal",
  "sdk-undicifetch",
  "layer",
  "router",
  "stack-miss",
  "stack-hit",
  "anthropic-sdk",
  "anthropic-layer",
  "google-sdk",
  "google-layer",
  "bedrock-sdk",
  "bedrock-layer"
] as const
/** A variant name. */
export type Name = typeof names[number]

const prompt = (index: number, unique: boolean) => unique ? `Benchmark request ${index}: say hello.` : "Benchmark: say hello."

const limits = { budgetUsd: 1e9, softAt: 0.99, requestsPerSecond: 1e9 }

/** A call that runs a Switchboard program on a runtime built once. */
const effectCall = (
  runtime: ManagedRuntime.ManagedRuntime<Llm.LLM, unknown>,
  stream: boolean,
  unique: boolean
): Call => {
  const request = (index: number): LlmRequest.LlmRequest => ({
    messages: [{ role: "user", content: prompt(index, unique) }],
    maxTokens: 64,
    ...(unique ? {} : { temperature: 0 })
  })
  if (!stream) return (index) => runtime.runPromise(Effect.asVoid(Llm.generate(request(index))))
  return (index) => {
    const start = performance.now()
    let first: number | undefined
    return runtime.runPromise(Stream.runForEach(Llm.stream(request(index)), (part) =>
      Effect.sync(() => {
        if (first === undefined && part.type === "text-delta") first = performance.now() - start
      }))).then(() => first ?? performance.now() - start)
  }
}

/**
 * A call through the raw SDK `client` (the time to first text part when streaming); with `signal`, each
 * call gets its own `AbortSignal`, as a caller that can cancel it must pass (the SDK then composes it with
 * its own controller's).
 */
const sdkCall = (client: OpenAISdk, stream: boolean, signal = false): Call => async (index) => {
  const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: prompt(index, true) }], max_tokens: 64 }
  if (!stream) {
    await client.chat.completions.create(body, signal ? { signal: new AbortController().signal } : undefined)
    return
  }
  const start = performance.now()
  let first: number | undefined
  const chunks = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })
  for await (const chunk of chunks) {
    if (first === undefined && chunk.choices[0]?.delta.content) first = performance.now() - start
  }
  return first ?? performance.now() - start
}

const anthropicModel = "claude-haiku-4-5"
const googleModel = "gemini-2.5-flash"
const bedrockModel = "us.amazon.nova-micro-v1:0"
const awsCredentials = { accessKeyId: "AKIDBENCH", secretAccessKey: "bench-secret-access-key" }

/** A call through the raw `@anthropic-ai/sdk` (retries off). */
const anthropicSdkCall = (baseURL: string, stream: boolean): Call => {
  const client = new AnthropicSdk({ apiKey: "sk-ant-bench", baseURL, maxRetries: 0 })
  return async (index) => {
    const body = { model: anthropicModel, max_tokens: 64, messages: [{ role: "user" as const, content: prompt(index, true) }] }
    if (!stream) {
      await client.messages.create(body)
      return
    }
    const start = performance.now()
    let first: number | undefined
    const events = await client.messages.create({ ...body, stream: true })
    for await (const event of events) {
      if (first === undefined && event.type === "content_block_delta" && event.delta.type === "text_delta") {
        first = performance.now() - start
      }
    }
    return first ?? performance.now() - start
  }
}

/** The part of `@google/genai` the raw variant uses. */
interface GoogleSdk {
  readonly GoogleGenAI: new(options: Record<string, unknown>) => ReturnType<typeof Google.makeClient>["sdk"]
}

/**
 * A call through the raw `@google/genai` SDK (`new GoogleGenAI({ apiKey, httpOptions: { baseUrl } })`, Node's
 * `fetch`, no retry options: one attempt), loaded from `@switchboard/google`'s own dependencies.
 */
const googleSdkCall = (baseURL: string, stream: boolean): Call => {
  const { GoogleGenAI } = createRequire(new URL("../../packages/google/package.json", import.meta.url))(
    "@google/genai"
  ) as GoogleSdk
  const sdk = new GoogleGenAI({ apiKey: "AIza-bench", httpOptions: { baseUrl: baseURL } })
  return async (index) => {
    const params = {
      model: googleModel,
      contents: [{ role: "user", parts: [{ text: prompt(index, true) }] }],
      config: { maxOutputTokens: 64 }
    }
    if (!stream) {
      await sdk.models.generateContent(params)
      return
    }
    const start = performance.now()
    let first: number | undefined
    for await (const chunk of await sdk.models.generateContentStream(params)) {
      if (first === undefined && chunk.candidates?.[0]?.content?.parts?.[0]?.text) first = performance.now() - start
    }
    return first ?? performance.now() - start
  }
}

/** The part of `@aws-sdk/client-bedrock-runtime` the raw variant uses. */
interface BedrockSdk {
  readonly BedrockRuntimeClient: new(config: Record<string, unknown>) => { send(command: unknown): Promise<unknown> }
  readonly ConverseCommand: new(input: Record<string, unknown>) => unknown
  readonly ConverseStreamCommand: new(input: Record<string, unknown>) => unknown
}

/**
 * A call through the raw `@aws-sdk/client-bedrock-runtime` (`maxAttempts: 1`, fixed dummy credentials),
 * loaded from `@switchboard/bedrock`'s own dependencies (it is not a dependency of the workspace root).
 */
const bedrockSdkCall = (endpoint: string, stream: boolean): Call => {
  const sdk = createRequire(new URL("../../packages/bedrock/package.json", import.meta.url))(
    "@aws-sdk/client-bedrock-runtime"
  ) as BedrockSdk
  const client = new sdk.BedrockRuntimeClient({ region: "us-east-1", endpoint, credentials: awsCredentials, maxAttempts: 1 })
  return async (index) => {
    const input = {
      modelId: bedrockModel,
      messages: [{ role: "user", content: [{ text: prompt(index, true) }] }],
      inferenceConfig: { maxTokens: 64 }
    }
    if (!stream) {
      await client.send(new sdk.ConverseCommand(input))
      return
    }
    const start = performance.now()
    let first: number | undefined
    const output = await client.send(new sdk.ConverseStreamCommand(input)) as {
      readonly stream: AsyncIterable<{ readonly contentBlockDelta?: { readonly delta?: { readonly text?: string } } }>
    }
    for await (const event of output.stream) {
      if (first === undefined && event.contentBlockDelta?.delta?.text) first = performance.now() - start
    }
    return first ?? performance.now() - start
  }
}

/** Builds one variant's call against the simulator at `url`. */
export const make = async (name: Name, url: string, stream: boolean): Promise<Call> => {
  const baseURL = `${url}/openai/v1`
  switch (name) {
    case "fetch": {
      const endpoint = `${baseURL}/chat/completions`
      return async (index) => {
        const start = performance.now()
        const response = await fetch(endpoint, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
          body: JSON.stringify({
            model: "gpt-4o-mini",
            messages: [{ role: "user", content: prompt(index, true) }],
            max_tokens: 64,
            ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
          })
        })
        if (!response.ok) throw new Error(`status ${response.status}`)
        if (!stream) {
          await response.json()
          return
        }
        const reader = response.body!.getReader()
        let first: number | undefined
        for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
          first ??= performance.now() - start
        }
        return first
      }
    }
    case "sdk": {
      const client = new OpenAISdk({ apiKey: "sk-bench", baseURL, maxRetries: 0 })
      return sdkCall(client, stream)
    }
    case "sdk-signal": {
      const client = new OpenAISdk({ apiKey: "sk-bench", baseURL, maxRetries: 0 })
      return sdkCall(client, stream, true)
    }
    case "sdk-undicifetch": {
      // The SDK's \`fetch\` option given the transport the leaf uses by default: the leaf's own cost beside it.
      const client = new OpenAISdk({ apiKey: "sk-bench", baseURL, maxRetries: 0, fetch: UndiciFetch.shared })
      return sdkCall(client, stream)
    }
    case "router": {
      // A Router (priority, fallback on) over two OpenAI-protocol leaves on the same upstream.
      const client = Layer.orDie(OpenAI.layerClient({ apiKey: "sk-bench", baseURL }))
      const groq = Layer.orDie(OpenAI.compatible({ name: "groq", apiKey: "sk-bench", baseURL }))
      const layer = Router.layer([
        { name: "openai", provider: "openai", model: "gpt-4o-mini", layer: OpenAI.model("gpt-4o-mini").pipe(Layer.provide(client)) },
        { name: "groq", provider: "groq", model: "llama-3.1-8b-instant", layer: OpenAI.model("llama-3.1-8b-instant").pipe(Layer.provide(groq)) }
      ], { strategy: "priority" }).pipe(Layer.orDie)
      return effectCall(ManagedRuntime.make(layer), stream, true)
    }
    case "layer": {
      const layer = OpenAI.model("gpt-4o-mini").pipe(Layer.provide(Layer.orDie(OpenAI.layerClient({ apiKey: "sk-bench", baseURL }))))
      return effectCall(ManagedRuntime.make(layer), stream, true)
    }
    case "anthropic-sdk":
      return anthropicSdkCall(`${url}/anthropic`, stream)
    case "anthropic-layer": {
      const client = Layer.orDie(Anthropic.layerClient({ apiKey: "sk-ant-bench", baseURL: `${url}/anthropic` }))
      return effectCall(ManagedRuntime.make(Anthropic.model(anthropicModel).pipe(Layer.provide(client))), stream, true)
    }
    case "google-sdk":
      return googleSdkCall(`${url}/gemini`, stream)
    case "google-layer": {
      const client = Layer.orDie(Google.layerClient({ apiKey: "AIza-bench", baseURL: `${url}/gemini` }))
      return effectCall(ManagedRuntime.make(Google.model(googleModel).pipe(Layer.provide(client))), stream, true)
    }
    case "bedrock-sdk":
      return bedrockSdkCall(`${url}/bedrock`, stream)
    case "bedrock-layer": {
      const client = Layer.orDie(
        Bedrock.layerClient({ region: "us-east-1", endpoint: `${url}/bedrock`, credentials: awsCredentials })
      )
      return effectCall(ManagedRuntime.make(Bedrock.model(bedrockModel).pipe(Layer.provide(client))), stream, true)
    }
    case "stack-miss":
    case "stack-hit": {
      const { layer } = await Effect.runPromise(makeStack({
        openai: { apiKey: "sk-bench", baseURL, model: "gpt-4o-mini" },
        anthropic: { apiKey: "sk-bench", baseURL: `${url}/anthropic`, model: "claude-haiku-4-5" },
        cheap: { name: "groq", apiKey: "sk-bench", baseURL, model: "gpt-4o-mini" }
      }, limits))
      return effectCall(ManagedRuntime.make(layer), stream, name === "stack-miss")
    }
  }
}

/** What the in-process variants measure: the combinators alone, no HTTP. */
export const inProcessNames = ["test-leaf", "test-stack-miss", "test-stack-hit"] as const
/** An in-process variant name. */
export type InProcessName = typeof inProcessNames[number]

/** The full demo stack over in-process test providers (or one bare test provider). */
export const makeInProcess = async (name: InProcessName) => {
  const leaf = (model: string) => Llm.layerTest({ provider: "openai", model, record: false, steps: [{ text: "hello there" }] })
  if (name === "test-leaf") return ManagedRuntime.make(leaf("gpt-4o-mini"))
  const { layer } = await Effect.runPromise(makeStackFrom({
    openai: { model: "gpt-4o-mini", layer: leaf("gpt-4o-mini") },
    anthropic: { model: "claude-haiku-4-5", layer: leaf("claude-haiku-4-5") },
    cheap: { name: "groq", model: "llama-3.1-8b-instant", layer: leaf("llama-3.1-8b-instant") }
  }, limits))
  return ManagedRuntime.make(layer)
}
