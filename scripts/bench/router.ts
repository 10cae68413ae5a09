/**
 * Micro-benchmark of what the `Router` adds to one call, in process, with
 * scripted test leaves as the candidates (no HTTP).
 *
 * Variants: the bare test leaf; a Router over three leaves for each
 * strategy (priority, roundRobin, weighted, leastLatency, leastCost with a
 * catalog key per candidate, and priority under a HealthMonitor). Each run
 * makes `calls` sequential calls through one `Effect.forEach` after a
 * warm-up, measuring process CPU time; a variant's overhead is its CPU µs
 * per call minus the bare leaf's in the same round, median of the rounds.
 * Every call sends a fresh request object with the same texts (as a chat
 * resends its history), so the tokenizer's per-text memory applies but its
 * per-request memory does not; by default the requests share one `messages`
 * array (which the router's own count memory recognises), with
 * `--fresh-messages` each gets a copy, so `leastCost` counts every call.
 *
 * Usage: `node scripts/bench/router.ts [--calls 100000] [--rounds 5] [--fresh-messages] [--only bare,priority]`
 */
import { Context, Effect, Layer } from "effect"
import { HealthMonitor, LLM, Llm, Router, Tokenizer } from "@switchboard/core"
import type { LlmRequest as Request } from "@switchboard/core"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
const calls = Number(flag("--calls") ?? 100_000)
const rounds = Number(flag("--rounds") ?? 5)
const warmup = Number(flag("--warmup") ?? Math.min(30_000, calls))
const only = flag("--only")?.split(",")
const freshMessages = args.includes("--fresh-messages")

const keys = [
  { provider: "openai", model: "gpt-4o-mini" },
  { provider: "anthropic", model: "claude-haiku-4-5" },
  { provider: "google", model: "gemini-2.5-flash" }
] as const

type Build = (leaves: ReadonlyArray<Layer.Layer<LLM>>) => Layer.Layer<LLM, unknown>

const routed = (strategy: Router.Strategy, monitor = false): Build => (leaves) => {
  const layer = Router.layer(
    leaves.map((leaf, i) => ({ name: `c${i}`, layer: leaf, ...keys[i]!, weight: i + 1 })),
    { strategy }
  )
  return monitor ? layer.pipe(Layer.provide(HealthMonitor.layer({ interval: "1 hour" }))) : layer
}

const allVariants: ReadonlyArray<{ readonly name: string; readonly build: Build }> = [
  { name: "bare", build: (leaves) => leaves[0]! },
  { name: "priority", build: routed("priority") },
  { name: "roundRobin", build: routed("roundRobin") },
  { name: "weighted", build: routed("weighted") },
  { name: "leastLatency", build: routed("leastLatency") },
  { name: "leastCost", build: routed("leastCost") },
  { name: "priority+health", build: routed("priority", true) }
]
const variants = allVariants.filter((v) => only === undefined || only.includes(v.name))

const template: Request.LlmRequest = {
  messages: [
    { role: "user", content: "Summarise the following paragraph in one sentence, please." },
    { role: "assistant", content: "Sure, send it over." },
    { role: "user", content: "Effect is a TypeScript library for building robust, composable programs." }
  ],
  maxTokens: 256
}

const measure = (service: LLM["Service"], count: number) =>
  Effect.suspend(() => {
    const indices = Array.from({ length: count }, (_, index) => index)
    const cpu = process.cpuUsage()
    const request = freshMessages
      ? () => ({ ...template, messages: template.messages.slice() })
      : () => ({ ...template })
    return Effect.forEach(indices, () => service.generate(request()), { discard: true }).pipe(
      Effect.map(() => {
        const used = process.cpuUsage(cpu)
        return (used.user + used.system) / count
      })
    )
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const round = (build: Build, warm: number) =>
  Effect.scoped(Effect.gen(function*() {
    const leaves = yield* Effect.forEach(keys, (key) =>
      Effect.map(
        Llm.makeTest({ ...key, steps: [{ text: "A short answer of a few words." }], record: false }),
        (test) => test.layer
      ))
    const service = Context.get(yield* Layer.build(build(leaves)), LLM)
    yield* measure(service, warm)
    return yield* measure(service, calls)
  }))

const program = Effect.gen(function*() {
  yield* Tokenizer.preload
  for (const variant of variants) yield* round(variant.build, warmup)
  const cpu = new Map<string, Array<number>>()
  const overhead = new Map<string, Array<number>>()
  for (let at = 0; at < rounds; at++) {
    let bare = 0
    for (const variant of variants) {
      const us = yield* round(variant.build, Math.min(warmup, 5_000))
      if (variant.name === "bare") bare = us
      cpu.set(variant.name, [...(cpu.get(variant.name) ?? []), us])
      overhead.set(variant.name, [...(overhead.get(variant.name) ?? []), us - bare])
    }
  }
  console.log(
    `${calls} sequential calls × ${rounds} rounds, a fresh request object per call${
      freshMessages ? " with a fresh messages array" : " sharing one messages array"
    }`
  )
  console.log("variant            cpu µs/call   router overhead µs/call (median, min–max)")
  for (const variant of variants) {
    const o = overhead.get(variant.name)!
    console.log(
      `${variant.name.padEnd(18)} ${median(cpu.get(variant.name)!).toFixed(2).padStart(11)}   ${
        variant.name === "bare"
          ? "-"
          : `${median(o).toFixed(2)} (${Math.min(...o).toFixed(2)}–${Math.max(...o).toFixed(2)})`
      }`
    )
  }
})

Effect.runPromise(program).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
