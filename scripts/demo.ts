/**
 * `pnpm demo` — the main job. Starts the provider simulator in process with
 * three virtual providers (a fast but flaky OpenAI, a reliable but slower
 * Anthropic, a cheap OpenAI-compatible "groq"), builds the stack of
 * `examples/switchboard.ts` through the real SDKs, runs a few hundred mixed
 * requests and prints what happened.
 *
 *   pnpm demo [--requests 300] [--live]
 *
 * `--live` runs the same workload against the real APIs with the keys in
 * `OPENAI_API_KEY` and `ANTHROPIC_API_KEY` (and `GROQ_API_KEY` for the cheap
 * provider, else OpenAI's cheapest model stands in).
 */
import { CostLedger, Events, Llm, LlmError, type LlmRequest } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect, Fiber, Layer, References, Stream } from "effect"
import { parseArgs } from "node:util"
import { type Endpoints, makeStack } from "../examples/switchboard.ts"

const { values: args } = parseArgs({
  options: { live: { type: "boolean", default: false }, requests: { type: "string", default: "300" } }
})
const total = Math.max(50, Math.min(5_000, Number(args.requests) || 300))

// ---------------------------------------------------------------------------
// Where the providers are: the embedded simulator, or the real APIs.
// ---------------------------------------------------------------------------

const simConfig = {
  providers: {
    openai: {
      protocol: "openai" as const,
      models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }],
      latency: { ttftMs: 15, perTokenMs: 0.5 },
      faults: {
        seed: 7,
        mix: [
          { rate: 0.08, status: 429, retryAfterMs: 200 },
          { rate: 0.05, status: 500 }
        ],
        outages: [{ startMs: 2_500, durationMs: 2_000, status: 503 }]
      }
    },
    anthropic: {
      protocol: "anthropic" as const,
      models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }],
      latency: { ttftMs: 120, perTokenMs: 2 }
    },
    groq: {
      protocol: "openai" as const,
      models: [{ id: "llama-3.1-8b-instant", contextWindow: 131_072, maxOutput: 32_768 }],
      latency: { ttftMs: 10, perTokenMs: 0.2 }
    }
  }
}

const liveEndpoints = (): Endpoints | string => {
  const missing = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"].filter((name) => !process.env[name])
  if (missing.length > 0) return `--live needs ${missing.join(" and ")} in the environment (missing: ${missing.join(", ")})`
  const groq = process.env["GROQ_API_KEY"]
  return {
    openai: { apiKey: process.env["OPENAI_API_KEY"]!, model: "gpt-4o-mini" },
    anthropic: { apiKey: process.env["ANTHROPIC_API_KEY"]!, model: "claude-haiku-4-5" },
    cheap: groq
      ? { name: "groq", apiKey: groq, baseURL: "https://api.groq.com/openai/v1", model: "llama-3.1-8b-instant" }
      : { name: "openai", apiKey: process.env["OPENAI_API_KEY"]!, baseURL: "https://api.openai.com/v1", model: "gpt-4.1-nano" }
  }
}

// ---------------------------------------------------------------------------
// The workload: short chats, cache repeats, streams, one prompt too long for
// the first provider, a burst against the rate limit, and enough spend to
// cross the soft budget threshold.
// ---------------------------------------------------------------------------

type Job = { readonly kind: "chat" | "repeat" | "stream" | "long" | "burst" | "spend"; readonly request: LlmRequest.LlmRequest }

const topics = ["tides", "volcanoes", "bees", "compilers", "glaciers", "lighthouses", "orbits", "rivers", "ferns", "radar"]
const ask = (text: string, extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content: text }],
  maxTokens: 120,
  deadline: 15_000,
  ...extra
})

const plan = (n: number): ReadonlyArray<ReadonlyArray<Job>> => {
  const share = (f: number) => Math.max(5, Math.round(n * f))
  const chats = Array.from({ length: share(0.3) }, (_, i): Job => ({ kind: "chat", request: ask(`Tell me one fact about ${topics[i % 10]} (#${i}).`) }))
  const repeats = Array.from({ length: share(0.15) }, (_, i): Job => ({
    kind: "repeat",
    request: ask(`Define ${topics[i % 5]} in one line.`, { temperature: 0 })
  }))
  const streams = Array.from({ length: share(0.15) }, (_, i): Job => ({ kind: "stream", request: ask(`Stream a haiku about ${topics[i % 10]} (#${i}).`) }))
  const long: Job = { kind: "long", request: ask(`Summarise this log:\n${"error timeout retry ok ".repeat(32_500)}`, { deadline: 30_000 }) }
  const burst = Array.from({ length: share(0.2) }, (_, i): Job => ({ kind: "burst", request: ask(`Quick answer ${i}: 2+2?`) }))
  const spend = Array.from({ length: share(0.2) }, (_, i): Job => ({
    kind: "spend",
    request: ask(`Write a long report on ${topics[i % 10]} (#${i}). ${"Context line. ".repeat(5_000)}`, { maxTokens: 400 })
  }))
  // Phases run one after another; jobs within a phase run concurrently.
  return [chats, repeats, streams, burst, [long], spend]
}

// ---------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------

interface Outcome {
  readonly kind: Job["kind"]
  readonly ok: boolean
  readonly tag: string
  readonly provider: string
  readonly latencyMs: number
  readonly cached: boolean
}

const run = (job: Job): Effect.Effect<Outcome> => {
  const started = performance.now()
  const call = job.kind === "stream"
    ? Effect.flatMap(
      Stream.runLast(Llm.stream(job.request)),
      (last) =>
        last._tag === "Some" && last.value.type === "finish"
          ? Effect.succeed(last.value.response)
          : Effect.die(new Error("a stream ended without its finish part"))
    )
    : Llm.generate(job.request)
  return call.pipe(
    Effect.map((response): Outcome => ({
      kind: job.kind,
      ok: response.text.length > 0 || response.toolCalls.length > 0,
      tag: "ok",
      provider: response.provider,
      latencyMs: performance.now() - started,
      cached: response.cached
    })),
    Effect.catch((error: LlmError.LlmError) =>
      Effect.succeed<Outcome>({
        kind: job.kind,
        ok: false,
        tag: error._tag,
        provider: error.provider,
        latencyMs: performance.now() - started,
        cached: false
      })
    ),
    Effect.catchDefect((defect) =>
      Effect.succeed<Outcome>({
        kind: job.kind,
        ok: false,
        tag: `DEFECT: ${String(defect)}`,
        provider: "?",
        latencyMs: performance.now() - started,
        cached: false
      })
    )
  ) as Effect.Effect<Outcome>
}

// The burst meets the rate limit; the spend phase runs few at a time because each call
// reserves its worst case (priced at the dearest model) against the budget.
const concurrencyOf = (kind: Job["kind"] | undefined) => kind === "burst" ? 64 : kind === "spend" ? 2 : 8

const tty = process.stdout.isTTY === true
const progress = (done: number, all: number) => {
  if (tty) {
    const width = 30
    const filled = Math.round((done / all) * width)
    process.stdout.write(`\r  [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${all}`)
    if (done === all) process.stdout.write("\n")
  } else if (done === all || done % Math.max(1, Math.round(all / 10)) === 0) {
    console.log(`  progress: ${done}/${all}`)
  }
}
let lastLine = ""
let repeats = 0
const flushRepeats = () => {
  if (repeats > 0) console.log(`    (and ${repeats} more like it)`)
  repeats = 0
}
/** Prints a log line, folding runs of the same line into one. */
const say = (line: string) => {
  if (line === lastLine) {
    repeats++
    return
  }
  if (tty) process.stdout.write("\r\x1b[2K")
  flushRepeats()
  lastLine = line
  console.log(line)
}

const name = (who: { readonly provider: string; readonly model: string }) =>
  who.model === "unknown" ? who.provider : `${who.provider}/${who.model}`
const pct = (sorted: ReadonlyArray<number>, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
const usd = (n: number) => `$${n.toFixed(5)}`

const program = Effect.gen(function*() {
  let endpoints: Endpoints
  if (args.live) {
    const live = liveEndpoints()
    if (typeof live === "string") {
      console.error(`demo: ${live}`)
      return yield* Effect.sync(() => process.exit(2))
    }
    endpoints = live
    console.log("Switchboard demo — live providers")
  } else {
    const sim = yield* Sim.start(simConfig)
    endpoints = {
      openai: { apiKey: "sk-sim", baseURL: `${sim.providerUrl("openai")}/v1`, model: "gpt-4o-mini" },
      anthropic: { apiKey: "sk-ant-sim", baseURL: sim.providerUrl("anthropic"), model: "claude-haiku-4-5" },
      cheap: { name: "groq", apiKey: "gsk-sim", baseURL: `${sim.providerUrl("groq")}/v1`, model: "llama-3.1-8b-instant" }
    }
    console.log(`Switchboard demo — simulator at ${sim.url}`)
    console.log("  openai: fast, flaky (429s with Retry-After, 500s, an outage)   anthropic: reliable, slower   groq: cheap")
  }

  const limits = { budgetUsd: 0.3, softAt: 0.8, requestsPerSecond: 40 }
  const { budget, layer } = yield* makeStack(endpoints, limits)
  const llm = yield* Layer.build(layer)

  // The provider-switch log, breaker transitions and cache hits, as they happen.
  const fallbacks = new Map<string, number>()
  const transitions = new Map<string, number>()
  let cacheHits = 0
  let softAnnounced = false
  const watcher = yield* Effect.forkChild(Stream.runForEach(Events.stream, (event) =>
    Effect.sync(() => {
      switch (event._tag) {
        case "FallbackTaken":
          fallbacks.set(event.from.provider, (fallbacks.get(event.from.provider) ?? 0) + 1)
          say(`  ↪ switch ${name(event.from)} → ${name(event.to)} (${event.reason})`)
          break
        case "CircuitStateChanged":
          transitions.set(event.provider, (transitions.get(event.provider) ?? 0) + 1)
          say(`  ⚡ breaker ${event.provider}/${event.model}: ${event.from} → ${event.to} (${event.reason})`)
          break
        case "CacheHit":
          cacheHits++
          break
        case "BudgetReserved":
          if (!softAnnounced && event.spentUsd >= limits.softAt * event.limitUsd) {
            softAnnounced = true
            say(`  $ budget at ${Math.round((event.spentUsd / event.limitUsd) * 100)}%: routing to the cheap provider`)
          }
          break
      }
    })))
  yield* Effect.yieldNow

  const phases = plan(total)
  const all = phases.reduce((n, p) => n + p.length, 0)
  const outcomes: Array<Outcome> = []
  for (const phase of phases) {
    yield* Effect.forEach(phase, (job) =>
      Effect.tap(run(job), (outcome) =>
        Effect.sync(() => {
          outcomes.push(outcome)
          progress(outcomes.length, all)
        })), { concurrency: concurrencyOf(phase[0]?.kind), discard: true }).pipe(
        Effect.provideContext(llm)
      )
  }
  yield* Fiber.interrupt(watcher)
  flushRepeats()

  // ---------------------------------------------------------------------------
  // The report
  // ---------------------------------------------------------------------------
  const ledger = yield* CostLedger.snapshot
  const state = yield* budget.state()
  const latencies = outcomes.map((o) => o.latencyMs).sort((a, b) => a - b)
  const failed = outcomes.filter((o) => !o.ok)
  const defects = failed.filter((o) => o.tag.startsWith("DEFECT"))
  const typed = failed.filter((o) => !o.tag.startsWith("DEFECT") && o.tag !== "ok")

  console.log("\nPer provider (attempts, including retries and fallbacks)")
  console.log("  provider    attempts  ok   failed  fallbacks  breaker  tokens in/out    cost")
  for (const [provider, totals] of Object.entries(ledger.byProvider).sort()) {
    console.log(
      `  ${provider.padEnd(10)}  ${String(totals.attempts).padStart(8)}  ${String(totals.attempts - totals.failures).padStart(3)}  ${
        String(totals.failures).padStart(6)
      }  ${String(fallbacks.get(provider) ?? 0).padStart(9)}  ${String(transitions.get(provider) ?? 0).padStart(7)}  ${
        `${totals.inputTokens}/${totals.outputTokens}`.padStart(14)
      }  ${usd(totals.costUsd)}`
    )
  }
  const answeredBy = new Map<string, number>()
  for (const o of outcomes) if (o.ok && !o.cached) answeredBy.set(o.provider, (answeredBy.get(o.provider) ?? 0) + 1)
  console.log(`\nAnswered by: ${[...answeredBy].map(([p, n]) => `${p} ${n}`).join(", ")}; from cache: ${cacheHits}`)
  console.log(
    `Budget: ${usd(state.spentUsd)} spent of ${usd(state.limitUsd)} (${Math.round((state.spentUsd / state.limitUsd) * 100)}%), ${
      usd(state.reservedUsd)
    } still reserved; ledger total ${usd(ledger.total.costUsd)}`
  )
  console.log(`Latency: p50 ${pct(latencies, 0.5).toFixed(1)} ms, p95 ${pct(latencies, 0.95).toFixed(1)} ms`)
  if (typed.length > 0) {
    const byTag = new Map<string, number>()
    for (const o of typed) byTag.set(o.tag, (byTag.get(o.tag) ?? 0) + 1)
    console.log(`Typed failures: ${[...byTag].map(([t, n]) => `${t} ${n}`).join(", ")}`)
  }
  const verdict = defects.length === 0 && outcomes.length === all
    ? `VERDICT: all ${all} requests ended — ${all - failed.length} answered, ${typed.length} failed with a typed LlmError, 0 lost`
    : `VERDICT: FAILED — ${defects.length} defects, ${all - outcomes.length} requests lost`
  console.log(`\n${verdict}`)
  if (defects.length > 0 || outcomes.length !== all) {
    for (const d of defects.slice(0, 5)) console.error(`  ${d.tag}`)
    return yield* Effect.sync(() => process.exit(1))
  }
})

// The demo prints its own switch log; Effect's own log lines are kept for warnings.
Effect.runPromise(program.pipe(
  Effect.scoped,
  Effect.provide([Events.layer(), CostLedger.layer]),
  Effect.provideService(References.MinimumLogLevel, "Warn")
)).then(
  () => process.exit(0),
  (error) => {
    console.error(LlmError.isLlmError(error) ? error.message : error)
    process.exit(1)
  }
)
