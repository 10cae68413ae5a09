/**
 * What each combinator adds to one call, in process: every combinator alone
 * over the scripted test leaf (and the demo's full stack), unique prompts,
 * CPU µs per call minus the bare leaf's in the same round, median of rounds.
 *
 * `--stream` measures `Llm.stream` run to its end instead of `Llm.generate`.
 *
 * Usage: `node scripts/bench/layers.ts [--calls 100000] [--rounds 3] [--only bare,budget] [--stream]`
 */
import { Effect, Layer, Stream } from "effect"
import {
  Budget,
  CircuitBreaker,
  Fallback,
  Llm,
  type LLM,
  RateLimit,
  ResponseCache,
  Retry,
  Router,
  type SwitchboardConfigError,
  Tokenizer
} from "@switchboard/core"
import { makeStackFrom } from "../../examples/switchboard.ts"
import { flag } from "./args.ts"

const args = process.argv.slice(2)
const calls = Number(flag("--calls") ?? 100_000)
const rounds = Number(flag("--rounds") ?? 3)
const only = flag("--only")?.split(",")
const streaming = args.includes("--stream")

type AnyLayer = Layer.Layer<LLM, SwitchboardConfigError.SwitchboardConfigError>
const leaf = (model = "gpt-4o-mini") =>
  Llm.layerTest({
    provider: "openai",
    model,
    record: false,
    steps: [{ text: "hello there", chunks: ["hel", "lo ", "there"] }]
  })
const target = { provider: "openai", model: "gpt-4o-mini" }

const variants: ReadonlyArray<readonly [string, () => AnyLayer]> = [
  ["bare", () => leaf()],
  ["retry", () => Retry.layer({ times: 2 })(leaf())],
  ["breaker", () => CircuitBreaker.layer({})(leaf())],
  ["budget", () => Budget.layer({ limitUsd: 1e9, window: "day", price: target })(leaf())],
  ["rate", () => RateLimit.layer({ requests: { limit: 1e12, window: "1 second" }, onExceeded: "wait" })(leaf())],
  ["cache-miss", () => ResponseCache.layer({ capacity: 1_000, ttl: "10 minutes" })(leaf())],
  ["fallback", () => Fallback.layer([leaf(), leaf("gpt-4o")])],
  ["router", () => Router.layer([
    { name: "a", provider: "openai", model: "gpt-4o-mini", layer: leaf() },
    { name: "b", provider: "openai", model: "gpt-4o", layer: leaf("gpt-4o") }
  ], { strategy: "priority" })],
  ["stack", () =>
    Layer.unwrap(Effect.map(
      makeStackFrom({
        openai: { model: "gpt-4o-mini", layer: leaf() },
        anthropic: { model: "claude-haiku-4-5", layer: leaf("claude-haiku-4-5") },
        cheap: { name: "groq", model: "llama-3.1-8b-instant", layer: leaf("llama-3.1-8b-instant") }
      }, { budgetUsd: 1e9, softAt: 0.99, requestsPerSecond: 1e9 }),
      (stack) => stack.layer
    ))]
]

const request = (index: number) => ({
  messages: [{ role: "user" as const, content: `In-process request ${index}` }],
  maxTokens: 64
})

const measure = (layer: AnyLayer, from: number, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(layer)
    const run = (start: number, n: number) =>
      Effect.provideContext(
        Effect.gen(function*() {
          for (let i = start; i < start + n; i++) {
            if (streaming) yield* Stream.runDrain(Llm.stream(request(i)))
            else yield* Llm.generate(request(i))
          }
        }),
        context
      )
    yield* run(from, Math.min(20_000, count))
    const cpu = process.cpuUsage()
    yield* run(from + count, count)
    const used = process.cpuUsage(cpu)
    return (used.user + used.system) / count
  }))

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

Effect.runPromise(Effect.gen(function*() {
  yield* Tokenizer.preload
  const results = new Map<string, Array<number>>()
  let offset = 0
  for (let round = 0; round < rounds; round++) {
    let bare = 0
    for (const [name, make] of variants) {
      if (only !== undefined && name !== "bare" && !only.includes(name)) continue
      const us = yield* measure(make(), offset, calls)
      offset += 3 * calls
      if (name === "bare") bare = us
      results.set(name, [...(results.get(name) ?? []), name === "bare" ? us : us - bare])
    }
  }
  console.log(
    `${calls} ${streaming ? "streams" : "calls"} × ${rounds} rounds, unique prompts; CPU µs per call (bare) or added over bare`
  )
  for (const [name, xs] of results) {
    console.log(`${name.padEnd(12)} ${median(xs).toFixed(2).padStart(7)}   [${xs.map((x) => x.toFixed(2)).join(", ")}]`)
  }
})).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
