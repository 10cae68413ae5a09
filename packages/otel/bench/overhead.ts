/**
 * In-process cost of telemetry per call, with the scripted test leaf as the
 * provider (no HTTP): CPU µs per call of sequential calls, median of rounds.
 *
 * Variants: the bare leaf; the leaf under `Telemetry.layer` with no tracer;
 * the same with the OpenTelemetry SDK installed through `Otel.layer` (tracer
 * with a batch span processor exporting nowhere, and the metric producer).
 *
 * Usage: `node packages/otel/bench/overhead.ts [--calls 100000] [--rounds 5] [--only 0,1,2,3]`
 */
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import { LLM, Llm, Telemetry, Tokenizer } from "@switchboard/core"
import { Otel } from "@switchboard/otel"
import { Context, Effect, Layer } from "effect"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}
const calls = Number(flag("--calls") ?? 100_000)
const rounds = Number(flag("--rounds") ?? 5)
const only = flag("--only")?.split(",")

/** Spans are batched and dropped: the cost measured is making and ending them. */
class Discard implements SpanExporter {
  export(_spans: Array<ReadableSpan>, done: (result: { code: number }) => void): void {
    done({ code: 0 })
  }
  async shutdown(): Promise<void> {}
}

const request = {
  messages: [
    { role: "user" as const, content: "Summarise the following paragraph in one sentence, please." },
    { role: "assistant" as const, content: "Sure, send it over." },
    { role: "user" as const, content: "Effect is a TypeScript library for building robust, composable programs." }
  ],
  maxTokens: 256
}

type Wrap = (self: Layer.Layer<LLM>) => Layer.Layer<LLM, unknown>
interface Variant {
  readonly name: string
  readonly wrap: Wrap
  readonly otel: boolean
}
const allVariants: ReadonlyArray<Variant> = [
  { name: "bare leaf", wrap: (self) => self, otel: false },
  { name: "bare leaf, SDK installed", wrap: (self) => self, otel: true },
  { name: "Telemetry.layer, no tracer", wrap: Telemetry.layer({ route: "default" }), otel: false },
  { name: "Telemetry.layer, SDK installed", wrap: Telemetry.layer({ route: "default" }), otel: true }
]
const variants = allVariants.filter((_, index) => only === undefined || only.includes(String(index)))

const measure = (service: LLM["Service"], count: number) =>
  Effect.suspend(() => {
    const cpu = process.cpuUsage()
    return Effect.forEach(Array.from({ length: count }), () => service.generate({ ...request }), { discard: true }).pipe(
      Effect.map(() => {
        const used = process.cpuUsage(cpu)
        return (used.user + used.system) / count
      })
    )
  })

const round = (variant: Variant, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const test = yield* Llm.makeTest({
      provider: "openai",
      model: "gpt-4o-mini",
      steps: [{ text: "A short answer of a few words." }],
      record: false
    })
    const service = Context.get(yield* Layer.build(variant.wrap(test.layer)), LLM)
    const run = Effect.gen(function*() {
      yield* measure(service, Math.min(count, 5_000))
      return yield* measure(service, count)
    })
    if (!variant.otel) return yield* run
    return yield* run.pipe(
      Effect.provide(Otel.layer({ serviceName: "bench", spanProcessors: [new BatchSpanProcessor(new Discard())] }))
    )
  }))

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const program = Effect.gen(function*() {
  yield* Tokenizer.preload
  for (const variant of variants) yield* round(variant, Math.min(calls, 20_000))
  const results = new Map<string, Array<number>>()
  for (let at = 0; at < rounds; at++) {
    for (const variant of variants) {
      const us = yield* round(variant, calls)
      results.set(variant.name, [...(results.get(variant.name) ?? []), us])
    }
  }
  console.log(`${calls} sequential calls × ${rounds} rounds (CPU µs per call, median)`)
  const bare = median(results.get(variants[0]!.name)!)
  for (const variant of variants) {
    const us = median(results.get(variant.name)!)
    console.log(`${variant.name.padEnd(34)} ${us.toFixed(2).padStart(8)} µs   (+${(us - bare).toFixed(2)} µs vs first)`)
  }
})

Effect.runPromise(program).catch((error) => {
  console.error(error)
  process.exit(1)
})
