/**
 * What a provider leaf adds to the official SDK, in process: the raw
 * `openai` SDK and `OpenAI.model` over the same SDK, both given a `fetch`
 * that answers at once with a canned `chat.completion` (or SSE stream, the
 * bodies of `scripts/bench/upstream.ts`), so no socket, no server and no
 * other process blurs the difference. Sequential calls, CPU µs per call, the
 * median of interleaved rounds; the leaf's overhead is its CPU minus the
 * SDK's in the same round.
 *
 * `--concurrency N` keeps N calls in flight (as the HTTP bench's c=64 does), and
 * `--latency MS` has the canned `fetch` answer after a timer, so they stay in flight.
 * `--stack` measures the demo's full stack over such leaves instead of one leaf
 * (what the combinators add under the same load, without a socket).
 *
 * Usage: `node scripts/bench/leaf.ts [--calls 20000] [--rounds 5] [--concurrency 1] [--stream] [--stack] [--only sdk|layer]`
 */
import { Llm } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import OpenAISdk from "openai"
import { makeStackFrom } from "../../examples/switchboard.ts"
import { flag } from "./args.ts"
import { completion, sse as sseText, streamMarker } from "./bodies.ts"

const args = process.argv.slice(2)
const calls = Number(flag("--calls") ?? 20_000)
const rounds = Number(flag("--rounds") ?? 5)
const streaming = args.includes("--stream")
// `--only sdk|layer` runs one side (for a profile of it alone).
const only = flag("--only")
const concurrency = Number(flag("--concurrency") ?? 1)
const latencyMs = Number(flag("--latency") ?? 0)

const sse = new TextEncoder().encode(sseText)

/** A `fetch` answering every call at once, as a keep-alive upstream would, with no socket. */
const canned: typeof globalThis.fetch = async (_input, init) => {
  if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs))
  const stream = typeof init?.body === "string" && init.body.includes(streamMarker)
  return stream
    ? new Response(sse, { status: 200, headers: { "content-type": "text/event-stream" } })
    : new Response(completion, { status: 200, headers: { "content-type": "application/json" } })
}

const baseURL = "http://127.0.0.1:1/v1"
const prompt = (index: number) => `Benchmark request ${index}: say hello.`

const sdk = new OpenAISdk({ apiKey: "sk-bench", baseURL, maxRetries: 0, fetch: canned })
const sdkCall = async (index: number) => {
  const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: prompt(index) }], max_tokens: 64 }
  if (!streaming) {
    await sdk.chat.completions.create(body)
    return
  }
  const chunks = await sdk.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } })
  for await (const _ of chunks) {
    // drained
  }
}

const leaf = (model: string) =>
  OpenAI.model(model).pipe(Layer.provide(Layer.orDie(OpenAI.layerClient({ apiKey: "sk-bench", baseURL, fetch: canned }))))
const stackLimits = { budgetUsd: 1e9, softAt: 0.99, requestsPerSecond: 1e9 }
const runtime = ManagedRuntime.make(
  args.includes("--stack")
    ? (await Effect.runPromise(makeStackFrom({
      openai: { model: "gpt-4o-mini", layer: leaf("gpt-4o-mini") },
      anthropic: { model: "gpt-4o-mini", layer: leaf("gpt-4o-mini") },
      cheap: { name: "groq", model: "gpt-4o-mini", layer: leaf("gpt-4o-mini") }
    }, stackLimits))).layer
    : leaf("gpt-4o-mini")
)
const request = (index: number) => ({ messages: [{ role: "user" as const, content: prompt(index) }], maxTokens: 64 })
const layerCall = (index: number) =>
  runtime.runPromise(
    streaming ? Stream.runDrain(Llm.stream(request(index))) : Effect.asVoid(Llm.generate(request(index)))
  )

const measure = async (call: (index: number) => Promise<void>, from: number) => {
  if (only !== undefined && only !== (call === sdkCall ? "sdk" : "layer")) return 0
  const cpu = process.cpuUsage()
  let next = from
  const worker = async () => {
    while (next < from + calls) await call(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / calls
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

await measure(sdkCall, 0)
await measure(layerCall, 0)
const sdkUs: Array<number> = []
const layerUs: Array<number> = []
for (let round = 1; round <= rounds; round++) {
  sdkUs.push(await measure(sdkCall, round * calls))
  layerUs.push(await measure(layerCall, round * calls))
}
console.log(
  `${calls} ${concurrency === 1 ? "sequential" : `(${concurrency} in flight)`} ${streaming ? "streams" : "calls"} × ${rounds} rounds, canned fetch, CPU µs per call`
)
console.log(`sdk    ${median(sdkUs).toFixed(1).padStart(7)}   [${sdkUs.map((x) => x.toFixed(1)).join(", ")}]`)
console.log(`layer  ${median(layerUs).toFixed(1).padStart(7)}   [${layerUs.map((x) => x.toFixed(1)).join(", ")}]`)
console.log(`added  ${median(layerUs.map((x, i) => x - sdkUs[i]!)).toFixed(1).padStart(7)}`)
await runtime.dispose()
