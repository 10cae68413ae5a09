/**
 * `pnpm demo` — the main job. Starts the provider simulator in process with
 * three virtual providers (a fast but flaky OpenAI, a reliable but slower
 * Anthropic, a cheap OpenAI-compatible "groq"), builds the stack of
 * `examples/switchboard.yaml` through the real SDKs, runs a few hundred
 * mixed requests and prints what happened.
 *
 *   pnpm demo [--requests 300] [--env dev|prod] [--live]
 *
 * The file reads its base URLs and keys from variables (`${OPENAI_BASE_URL:-…}`);
 * the demo sets them to the simulator. `--live` runs the same workload
 * against the real APIs with the keys in `OPENAI_API_KEY` and
 * `ANTHROPIC_API_KEY` (and `GROQ_API_KEY` for the cheap provider, else
 * OpenAI's cheapest model stands in).
 */
import { SwitchboardConfig } from "@switchboard/config"
import { CostLedger, Events, LLM, LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Context, Effect, Fiber, Layer, References, Stream } from "effect"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import * as Display from "./demo/display.ts"
import * as Report from "./demo/report.ts"
import * as Workload from "./demo/workload.ts"

const { values: args } = parseArgs({
  options: {
    live: { type: "boolean", default: false },
    requests: { type: "string", default: "300" },
    env: { type: "string" }
  }
})
const total = Math.max(50, Math.min(5_000, Number(args.requests) || 300))
const file = fileURLToPath(new URL("../examples/switchboard.yaml", import.meta.url))

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

/** The variables the file reads, for the real APIs: a message when a key is missing. */
const liveVariables = (): Record<string, string> | string => {
  const missing = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"].filter((name) => !process.env[name])
  if (missing.length > 0) return `--live needs ${missing.join(" and ")} in the environment`
  // Without a Groq key, OpenAI's cheapest model stands in for the cheap provider.
  return process.env["GROQ_API_KEY"] ? {} : {
    GROQ_NAME: "openai",
    GROQ_API_KEY: process.env["OPENAI_API_KEY"]!,
    GROQ_BASE_URL: "https://api.openai.com/v1",
    GROQ_MODEL: "gpt-4.1-nano"
  }
}

/** The provider name a config's provider answers as (what events, responses and the ledger say). */
const reportedAs = (config: SwitchboardConfig.SwitchboardConfig, providerKey: string): string => {
  const entry = config.providers.get(providerKey)
  if (entry === undefined) return providerKey
  const options = entry.options as { readonly name?: string | undefined }
  return entry.type === "openai-compatible" ? options.name ?? providerKey : entry.type === "vertex" ? "google" : entry.type
}

/**
 * A fallback names a child it has not heard answer yet `fallback#<index>`:
 * the provider that is, when the file's chains agree on it.
 */
const nextOf = (config: SwitchboardConfig.SwitchboardConfig, from: string, to: string): string => {
  const index = /^fallback#(\d+)$/.exec(to)?.[1]
  if (index === undefined) return to
  const i = Number(index)
  const providerOf = (model: string) => reportedAs(config, config.models[model]?.provider ?? model)
  const found = new Set<string>()
  for (const route of Object.values(config.raw.routes)) {
    if ("fallback" in route && route.fallback.length > i && route.fallback.slice(0, i).some((m) => providerOf(m) === from)) {
      found.add(providerOf(route.fallback[i]!))
    }
  }
  return found.size === 1 ? [...found][0]! : "the next model"
}

/** What the report needs to know about the stack the file builds. */
const describe = (config: SwitchboardConfig.SwitchboardConfig): Report.Stack & { readonly lines: ReadonlyArray<string> } => {
  const providerOf = (providerKey: string) => reportedAs(config, providerKey)
  const models = new Map<string, string>()
  const named = (model: string) => {
    const m = config.models[model]!
    models.set(providerOf(m.provider), m.model)
    return `${model} (${providerOf(m.provider)} ${m.model})`
  }
  const lines: Array<string> = []
  for (const [name, route] of Object.entries(config.raw.routes)) {
    const body = "fallback" in route
      ? `fallback ${route.fallback.map(named).join(" → ")}`
      : "model" in route
      ? named(route.model)
      : `router (${route.router.strategy ?? "default"}) over ${route.router.candidates.length} models`
    lines.push(`  route ${name}: ${body}`)
  }
  const block = config.blocks.get("limits.budget") as
    | { readonly limitUsd: number; readonly window?: string | undefined; readonly softAt?: number | undefined; readonly onSoft?: string | undefined }
    | undefined
  const onSoft = block?.onSoft !== undefined ? config.raw.routes[block.onSoft] : undefined
  const cheapModel = onSoft === undefined ? undefined : "fallback" in onSoft ? onSoft.fallback[0] : "model" in onSoft ? onSoft.model : undefined
  const budget = block === undefined || block.onSoft === undefined || cheapModel === undefined ? undefined : {
    limitUsd: block.limitUsd,
    window: typeof block.window === "string" ? block.window : "window",
    softAt: block.softAt ?? 0.8,
    route: "default",
    onSoft: block.onSoft,
    cheapProvider: providerOf(config.models[cheapModel]!.provider)
  }
  if (budget !== undefined) {
    lines.push(
      `  budget: $${budget.limitUsd} a ${budget.window}; past ${Math.round(budget.softAt * 100)}% of it, route default → route ${budget.onSoft}`
    )
  }
  if (config.raw.limits?.rateLimit !== undefined) lines.push("  rate limit: calls over it wait for a slot")
  if (config.raw.cache !== undefined) lines.push("  cache: a repeated request (temperature 0) is answered without a provider")
  return { models, budget, lines }
}

const program = Effect.gen(function*() {
  // Loading the file once first imports the provider packages it names, so the simulator's clock
  // (its outage is timed from its start) starts with the workload, not with module loading.
  yield* Effect.ignore(SwitchboardConfig.load(file, { env: {} }))
  let variables: Record<string, string>
  if (args.live) {
    const live = liveVariables()
    if (typeof live === "string") {
      console.error(`demo: ${live}`)
      return yield* Effect.sync(() => process.exit(2))
    }
    variables = live
    console.log("Switchboard demo — live providers")
  } else {
    const sim = yield* Sim.start(simConfig)
    variables = {
      OPENAI_API_KEY: "sk-sim",
      OPENAI_BASE_URL: `${sim.providerUrl("openai")}/v1`,
      ANTHROPIC_API_KEY: "sk-ant-sim",
      ANTHROPIC_BASE_URL: sim.providerUrl("anthropic"),
      GROQ_API_KEY: "gsk-sim",
      GROQ_BASE_URL: `${sim.providerUrl("groq")}/v1`
    }
    console.log(`Switchboard demo — simulator at ${sim.url}`)
    console.log("  openai: fast, flaky (429s with Retry-After, 500s, a 2 s outage)   anthropic: reliable, slower   groq: cheap")
  }

  // The whole stack comes from the file: `${VAR}` reads these variables over the environment.
  const context = yield* Layer.build(SwitchboardConfig.layerRoutes(file, {
    env: { ...process.env, ...variables },
    ...(args.env !== undefined ? { environment: args.env } : {})
  }))
  const routes = Context.get(context, SwitchboardConfig.Routes)
  const config = routes.config()
  const stack = describe(config)
  console.log(`\nStack from examples/switchboard.yaml${config.environment !== undefined ? ` (environment ${config.environment})` : ""}:`)
  for (const line of stack.lines) console.log(line)
  const llm = routes.get("default")!

  // The log of what the stack does, folded, and what the report counts.
  const tty = process.stdout.isTTY === true
  const phases = Workload.plan(total)
  const all = phases.reduce((n, p) => n + p.jobs.length, 0)
  const display = Display.make(all, tty)
  const fallbacksFrom = new Map<string, number>()
  const breakerChanges = new Map<string, number>()
  const attemptFailures = new Map<string, Map<string, number>>()
  const refusals: Array<{ readonly requestedUsd: number; readonly leftUsd: number }> = []
  let cacheHits = 0
  let softSwitch: Report.Observed["softSwitch"] = undefined
  // `provider/model`, the model from the file when the event does not know it yet.
  const named = (who: { readonly provider: string; readonly model: string }) => {
    const model = who.model !== "unknown" ? who.model : stack.models.get(who.provider)
    return model === undefined ? who.provider : `${who.provider}/${model}`
  }
  const bump = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1)
  console.log("\nWhat the stack did (a line repeated within a stretch of the run is printed once, ×N)")
  const watcher = yield* Effect.forkChild(Stream.runForEach(Events.stream, (event) =>
    Effect.sync(() => {
      switch (event._tag) {
        case "AttemptFailed": {
          const byTag = attemptFailures.get(event.provider) ?? attemptFailures.set(event.provider, new Map()).get(event.provider)!
          bump(byTag, event.error)
          break
        }
        case "RetryScheduled":
          display.event(`    ↻ retry ${event.provider} after ${event.error}`)
          break
        case "FallbackTaken":
          bump(fallbacksFrom, event.from.provider)
          display.event(`    ↪ switch ${named(event.from)} → ${named({ ...event.to, provider: nextOf(config, event.from.provider, event.to.provider) })} (${event.reason})`)
          break
        case "CircuitStateChanged":
          bump(breakerChanges, event.provider)
          display.event(`    ⚡ breaker ${event.provider}: ${event.from} → ${event.to} (${event.reason})`)
          break
        case "RateLimitWaited":
          display.event("    ⏳ rate limit: a call waited for its slot")
          break
        case "CacheHit":
          cacheHits++
          break
        case "BudgetSoftLimitReached":
          if (softSwitch === undefined) {
            softSwitch = { at: performance.now(), spentUsd: event.spentUsd }
            display.event(
              `    $ budget at ${Math.round((event.spentUsd / event.limitUsd) * 100)}% ($${event.spentUsd.toFixed(4)} of $${event.limitUsd}): route default now sends calls to route ${
                stack.budget?.onSoft ?? "?"
              }`
            )
          }
          break
        case "BudgetExceeded":
          refusals.push({ requestedUsd: event.requestedUsd, leftUsd: event.limitUsd - event.spentUsd - event.reservedUsd })
          display.event("    ✗ budget: a call refused, its worst case no longer fits in what is left")
          break
      }
    })))
  yield* Effect.yieldNow

  const outcomes: Array<Workload.Outcome> = []
  for (const phase of phases) {
    display.phase(phase.name, phase.jobs.length)
    yield* Effect.forEach(phase.jobs, (job) =>
      Effect.tap(Workload.run(job), (outcome) =>
        Effect.sync(() => {
          outcomes.push(outcome)
          display.tick()
        })), { concurrency: phase.concurrency, discard: true }).pipe(Effect.provideService(LLM, llm))
  }
  // Let the last events reach the watcher before it stops.
  yield* Effect.sleep("20 millis")
  yield* Fiber.interrupt(watcher)
  display.stop()

  const ledger = yield* CostLedger.snapshot
  const observed: Report.Observed = { fallbacksFrom, breakerChanges, attemptFailures, cacheHits, softSwitch, refusals }
  for (const line of Report.render(outcomes, ledger, observed, stack)) console.log(line)

  const failed = outcomes.filter((o) => !o.ok)
  const defects = failed.filter((o) => o.tag.startsWith("DEFECT"))
  const verdict = defects.length === 0 && outcomes.length === all
    ? `VERDICT: all ${all} requests ended — ${all - failed.length} answered, ${failed.length} failed with a typed LlmError, 0 lost`
    : `VERDICT: FAILED — ${defects.length} defects, ${all - outcomes.length} requests lost`
  console.log(`\n${verdict}`)
  if (defects.length > 0 || outcomes.length !== all) {
    for (const d of defects.slice(0, 5)) console.error(`  ${d.tag}`)
    return yield* Effect.sync(() => process.exit(1))
  }
})

// The demo prints its own log; Effect's own log lines are kept for warnings.
Effect.runPromise(program.pipe(
  Effect.scoped,
  Effect.provide([Events.layer({ capacity: 65_536 }), CostLedger.layer]),
  Effect.provideService(References.MinimumLogLevel, "Warn")
)).then(
  () => process.exit(0),
  (error) => {
    console.error(LlmError.isLlmError(error) || (typeof error === "object" && error !== null && "message" in error) ? String(error.message) : error)
    process.exit(1)
  }
)
