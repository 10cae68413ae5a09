/**
 * Micro-benchmark of what the money and limit combinators add to one call,
 * in-process, with the scripted test leaf as the provider (no HTTP).
 *
 * Variants: the bare test leaf; leaf + Budget; leaf + RateLimit (requests and
 * tokens, `onExceeded: "wait"`, limits too high ever to wait); leaf + Budget
 * + RateLimit; leaf + ResponseCache answering from the cache. Each run makes
 * `calls` sequential calls through one `Effect.forEach` after a warm-up and
 * measures the process CPU time; a variant's overhead is its CPU µs per call
 * minus the bare leaf's in the same round, and the median of the rounds is
 * reported. A cache hit never reaches the leaf, so its whole CPU µs per call
 * is what it costs. Each round builds every stack afresh (the test leaf keeps
 * every request it saw, which would otherwise grow the heap round by round).
 *
 * Every call sends a fresh request object (as real callers do), so per-request
 * caches such as the tokenizer's count do not carry over between calls;
 * `--same-request` reuses one object instead. The texts repeat from call to
 * call, as a chat's system prompt and history do; `--unique-text` makes the
 * last message new on every call, so its tokens are counted afresh.
 *
 * Usage: `node scripts/bench/overhead.ts [--calls 200000] [--rounds 5] [--same-request | --unique-text] [--only bare,budget]`
 */
import { Context, Effect, Layer } from "effect"
import { Budget, LLM, Llm, RateLimit, ResponseCache, type SwitchboardConfigError, Tokenizer } from "@switchboard/core"
import type { LlmRequest as Request } from "@switchboard/core"

type LlmRequest = Request.LlmRequest

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
const calls = Number(flag("--calls") ?? 200_000)
const rounds = Number(flag("--rounds") ?? 5)
const warmup = Number(flag("--warmup") ?? Math.min(50_000, calls))
const sameRequest = args.includes("--same-request")
const uniqueText = args.includes("--unique-text")
const only = flag("--only")?.split(",")

const provider = "openai"
const model = "gpt-4o-mini"
const target = { provider, model }

// A combinator may refuse its options at build (SwitchboardConfigError).
type Wrap = <E>(self: Layer.Layer<LLM, E>) => Layer.Layer<LLM, E | SwitchboardConfigError.SwitchboardConfigError>

interface Variant {
  readonly name: string
  readonly wrap: Wrap
  /** The request template; the cache-hit variant sends a cacheable one. */
  readonly cacheable: boolean
}

const budget: Wrap = Budget.layer({ limitUsd: 1e12, window: "day", price: target })
const rateLimit: Wrap = RateLimit.layer({
  requests: { limit: 1e12, window: "1 minute" },
  tokens: { limit: 1e15, window: "1 minute" },
  onExceeded: "wait",
  model: target
})

const allVariants: ReadonlyArray<Variant> = [
  { name: "bare", wrap: (self) => self, cacheable: false },
  { name: "budget", wrap: budget, cacheable: false },
  { name: "rate", wrap: rateLimit, cacheable: false },
  { name: "budget+rate", wrap: (self) => budget(rateLimit(self)), cacheable: false },
  { name: "cache-hit", wrap: ResponseCache.layer({ capacity: 1_000, ttl: "1 hour" }), cacheable: true }
]
const variants = allVariants.filter((variant) => only === undefined || only.includes(variant.name))

const template: LlmRequest = {
  messages: [
    { role: "user", content: "Summarise the following paragraph in one sentence, please." },
    { role: "assistant", content: "Sure, send it over." },
    { role: "user", content: "Effect is a TypeScript library for building robust, composable programs." }
  ],
  maxTokens: 256
}
const cacheableTemplate: LlmRequest = { ...template, temperature: 0 }

/** CPU µs per call of `calls` sequential calls through `service`. */
const measure = (service: LLM["Service"], cacheable: boolean, count: number) =>
  Effect.suspend(() => {
    const base = cacheable ? cacheableTemplate : template
    const last = base.messages.length - 1
    const request = (index: number): LlmRequest =>
      sameRequest
        ? base
        : uniqueText
        ? {
          ...base,
          messages: base.messages.map((message, at) =>
            at === last ? { ...message, content: `${String(message.content)} (${index})` } : message
          )
        }
        : { ...base }
    const indices = Array.from({ length: count }, (_, index) => index)
    const cpu = process.cpuUsage()
    const wall = performance.now()
    return Effect.forEach(indices, (index) => service.generate(request(index)), { discard: true }).pipe(
      Effect.map(() => {
        const used = process.cpuUsage(cpu)
        return {
          cpuUs: (used.user + used.system) / count,
          wallUs: ((performance.now() - wall) * 1000) / count
        }
      })
    )
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * Builds a variant's stack afresh (the test leaf keeps every request it saw,
 * so a stack lives for one round only), warms it up and measures it.
 */
const round = (variant: Variant, warm: number) =>
  Effect.scoped(Effect.gen(function*() {
    const test = yield* Llm.makeTest({ provider, model, steps: [{ text: "A short answer of a few words." }] })
    const service = Context.get(yield* Layer.build(variant.wrap(test.layer)), LLM)
    yield* measure(service, variant.cacheable, warm)
    return yield* measure(service, variant.cacheable, calls)
  }))

const program = Effect.gen(function*() {
  yield* Tokenizer.preload
  // JIT warm-up of every path before anything is measured.
  for (const variant of variants) yield* round(variant, warmup)
  const cpu = new Map<string, Array<number>>()
  const wall = new Map<string, Array<number>>()
  const overhead = new Map<string, Array<number>>()
  for (let at = 0; at < rounds; at++) {
    let bare = 0
    for (const variant of variants) {
      const result = yield* round(variant, Math.min(warmup, 5_000))
      if (variant.name === "bare") bare = result.cpuUs
      cpu.set(variant.name, [...(cpu.get(variant.name) ?? []), result.cpuUs])
      wall.set(variant.name, [...(wall.get(variant.name) ?? []), result.wallUs])
      overhead.set(variant.name, [...(overhead.get(variant.name) ?? []), result.cpuUs - bare])
    }
  }
  console.log(
    `${calls} sequential calls × ${rounds} rounds, ${
      sameRequest ? "one request object" : uniqueText ? "a new last message per call" : "a fresh request object per call"
    }`
  )
  console.log("variant        cpu µs/call   wall µs/call   overhead µs/call (median, min–max)")
  for (const variant of variants) {
    const o = overhead.get(variant.name)!
    console.log(
      `${variant.name.padEnd(14)} ${median(cpu.get(variant.name)!).toFixed(2).padStart(11)}   ${
        median(wall.get(variant.name)!).toFixed(2).padStart(12)
      }   ${
        variant.name === "bare" || variant.name === "cache-hit"
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
