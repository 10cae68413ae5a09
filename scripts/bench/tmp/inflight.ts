// Bytes retained per in-flight call: N calls started, held in the leaf, GC, heap delta / N.
import { Effect, Fiber, Layer, ManagedRuntime } from "effect"
import { Budget, CircuitBreaker, Fallback, Llm, RateLimit, ResponseCache, Retry, Router } from "@switchboard/core"
import { makeStackFrom } from "../../../examples/switchboard.ts"
const which = process.argv[2] ?? "bare"
const n = Number(process.argv[3] ?? 5000)
const leaf = (model = "gpt-4o-mini") => Llm.layerTest({ provider: "openai", model, record: false, steps: [{ text: "hello there", delay: "60 seconds" }] })
const target = { provider: "openai", model: "gpt-4o-mini" }
const layers: Record<string, () => Layer.Layer<any, any>> = {
  bare: () => leaf(),
  retry: () => Retry.layer({ times: 2 })(leaf()),
  breaker: () => CircuitBreaker.layer({})(leaf()),
  budget: () => Budget.layer({ limitUsd: 1e9, window: "day", price: target })(leaf()),
  rate: () => RateLimit.layer({ requests: { limit: 1e12, window: "1 second" }, onExceeded: "wait" })(leaf()),
  cache: () => ResponseCache.layer({ capacity: 1000, ttl: "10 minutes" })(leaf()),
  fallback: () => Fallback.layer([leaf(), leaf("gpt-4o")]),
  router: () => Router.layer([{ name: "a", provider: "openai", model: "gpt-4o-mini", layer: leaf() }, { name: "b", provider: "openai", model: "gpt-4o", layer: leaf("gpt-4o") }], { strategy: "priority" }),
  stack: () => Layer.unwrap(Effect.map(makeStackFrom({
    openai: { model: "gpt-4o-mini", layer: leaf() },
    anthropic: { model: "claude-haiku-4-5", layer: leaf("claude-haiku-4-5") },
    cheap: { name: "groq", model: "llama-3.1-8b-instant", layer: leaf("llama-3.1-8b-instant") }
  }, { budgetUsd: 1e9, softAt: 0.99, requestsPerSecond: 1e9 }), (s) => s.layer))
}
const runtime = ManagedRuntime.make(layers[which]!())
const req = (i: number) => ({ messages: [{ role: "user" as const, content: `Benchmark request ${i}: say hello.` }], maxTokens: 64 })
// warm
await runtime.runPromise(Effect.void)
const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
const start = async (k: number) => { for (let i = 0; i < k; i++) fibers.push(runtime.runFork(Llm.generate(req(i)))) ; await new Promise((r) => setTimeout(r, 200)) }
await start(500)
globalThis.gc!(); globalThis.gc!()
const h0 = process.memoryUsage().heapUsed
await start(n)
globalThis.gc!(); globalThis.gc!()
const h1 = process.memoryUsage().heapUsed
console.log(which.padEnd(9), ((h1 - h0) / n).toFixed(0), "bytes per in-flight call")
process.exit(0)
