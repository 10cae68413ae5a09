/**
 * The chaos run behind `pnpm chaos` (and a short run in the test suite):
 * thousands of requests at high concurrency through the demo stack while the
 * simulator injects a seeded mix of faults — 429s with and without
 * Retry-After, 500s, 529s, stalls past the deadline, cut streams, malformed
 * bodies, an outage of one provider, then of all of them — and a check of the
 * invariants a user relies on when the providers misbehave.
 *
 * CPU contention is a fault too (`cpuHog`): busy processes beside the run for
 * part of it. The stack must degrade, not collapse, and recover when they stop.
 *
 * The success floor (25 % of the requests that overlap no all-providers
 * outage, budget refusals aside): on a quiet machine about 96 % succeed (what
 * retries and fallbacks cannot cure: the ~1 % of calls stalled past the
 * deadline, streams cut after their first part under the `fail` policy). When
 * the process has less CPU than the load needs — 128 callers with a 2 s
 * deadline need at least 64 answers a second; a shared 2-core machine with
 * two hogs gives it about that — calls that finish late time out, so the rate
 * falls with the CPU share (measured here: 30–60 %). The collapse this guards
 * against answered 0.9–7 %, and never came back within the run.
 */
import { CostLedger, Events, Llm, LlmError, type LlmRequest, type LlmResponse } from "@switchboard/core"
import { Anthropic } from "@switchboard/anthropic"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Clock, Context, Effect, Fiber, Layer, Logger, References, Schedule, Stream } from "effect"
import { makeStack } from "../../examples/switchboard.ts"
import { type Hogs, startHogs } from "./hog.ts"
import { Timeline } from "./timeline.ts"

/** How big and how hard the run is. */
export interface ChaosOptions {
  readonly requests: number
  readonly concurrency: number
  readonly seed: number
  /** Each request's deadline. */
  readonly deadlineMs: number
  /** Progress lines (never a key, never a prompt). */
  readonly progress?: ((line: string) => void) | undefined
  /** Busy worker processes to run beside the stack for part of the run (default none). */
  readonly cpuHog?: number | undefined
  /**
   * When the hogs run: `requests` — from request `start × requests` for `duration × requests`
   * requests (fractions); `ms` — from `start` ms after the clock starts, for `duration` ms.
   * Default `{ unit: "requests", start: 0.1, duration: 0.35 }`.
   */
  readonly hogWindow?: HogWindow | undefined
  /** The interval of the timeline, in ms (default 1000). */
  readonly bucketMs?: number | undefined
}

/** When the CPU hogs run. */
export interface HogWindow {
  readonly unit: "requests" | "ms"
  readonly start: number
  readonly duration: number
}

/** One checked invariant. */
export interface Invariant {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

/** What the run saw and whether every invariant held. */
export interface ChaosReport {
  readonly requests: number
  readonly succeeded: number
  readonly failures: Readonly<Record<string, number>>
  readonly durationMs: number
  readonly invariants: ReadonlyArray<Invariant>
  readonly ok: boolean
  /** The run, interval by interval. */
  readonly timeline: ReadonlyArray<string>
}

// Distinctive keys: the run fails if any of them shows up in a log line or an error.
const keys = {
  openai: "sk-chaos-openai-Zq81vT0pLx3Nw7Rb",
  anthropic: "sk-ant-chaos-Hc4Ty9Kd2Mf6Qp1S",
  groq: "gsk_chaos_Vn5Jw8Ea3Gx0Lr7Uo"
} as const

const openaiMix = [
  { rate: 0.04, status: 429, retryAfterMs: 150 },
  { rate: 0.03, status: 429 },
  { rate: 0.04, status: 500 },
  { rate: 0.01, stallMs: 20_000 },
  { rate: 0.03, cutAfter: 3 },
  { rate: 0.02, malformed: true }
]
const anthropicMix = [
  { rate: 0.03, status: 529 },
  { rate: 0.02, status: 429, retryAfter: 1 },
  { rate: 0.02, streamErrorAfter: 2 },
  { rate: 0.02, cutAfter: 2 },
  { rate: 0.01, malformed: true },
  { rate: 0.01, stallMs: 20_000 }
]
const groqMix = [
  { rate: 0.03, status: 500 },
  { rate: 0.02, malformed: true },
  { rate: 0.02, cutAfter: 2 }
]

// The simulator starts clean (the warm-up runs without faults); the mixes are set when the clock starts.
const mixes = (seed: number) => ({
  openai: { seed, mix: openaiMix },
  anthropic: { seed: seed + 1, mix: anthropicMix },
  groq: { seed: seed + 2, mix: groqMix }
})

const simConfig = () => ({
  providers: {
    openai: {
      protocol: "openai" as const,
      apiKeys: [keys.openai],
      models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }],
      latency: { ttftMs: 2, perTokenMs: 0.05 }
    },
    anthropic: {
      protocol: "anthropic" as const,
      apiKeys: [keys.anthropic],
      models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }],
      latency: { ttftMs: 8, perTokenMs: 0.1 }
    },
    groq: {
      protocol: "openai" as const,
      apiKeys: [keys.groq],
      models: [{ id: "llama-3.1-8b-instant", contextWindow: 131_072, maxOutput: 32_768 }],
      latency: { ttftMs: 1, perTokenMs: 0.02 }
    }
  }
})

/** A small seeded PRNG (mulberry32), so a run's workload is reproducible. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Ended {
  readonly index: number
  readonly startMs: number
  readonly endMs: number
  readonly ok: boolean
  readonly tag: string
  readonly elapsedMs: number
  readonly response?: LlmResponse.LlmResponse | undefined
  readonly complete: boolean
  readonly leaked: string | undefined
}

const complete = (response: LlmResponse.LlmResponse): boolean =>
  (response.text.length > 0 || response.toolCalls.length > 0) &&
  response.usage.outputTokens > 0 &&
  response.attempts.length >= (response.cached ? 0 : 1)

/** p50, p99 and max of a sample (zeros when empty). */
const pcts = (xs: ReadonlyArray<number>): [number, number, number] => {
  if (xs.length === 0) return [0, 0, 0]
  const sorted = [...xs].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return [at(0.5), at(0.99), sorted[sorted.length - 1]!]
}

const leakIn = (text: string): string | undefined => Object.values(keys).find((key) => text.includes(key))

/**
 * Runs the chaos workload and checks the invariants. Never fails: a broken
 * invariant is reported in the result (`ok: false`).
 */
export const runChaos = (options: ChaosOptions): Effect.Effect<ChaosReport> =>
  Effect.suspend(() => {
    // Every log line of the run is captured here and searched for keys.
    const captured: Array<string> = []
    const sink = Logger.make((entry) => {
      captured.push(`${JSON.stringify(entry.message)} ${String(entry.cause ?? "")}`)
    })
    return run(options, captured).pipe(
      Effect.scoped,
      Effect.provide([Events.layer({ capacity: 65_536 }), CostLedger.layer, Logger.layer([sink])]),
      Effect.provideService(References.MinimumLogLevel, "Info")
    )
  })

const run = (options: ChaosOptions, captured: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const say = options.progress ?? (() => {})

    const sim = yield* Effect.orDie(Sim.start(simConfig()))
    // The budget must hold every in-flight reservation (each priced at the dearest model) and
    // binds late in the run: about what 90% of the requests cost, plus room for the reservations.
    const limitUsd = options.requests * 0.00009 + options.concurrency * 0.0008
    const endpoints = {
      openai: { apiKey: keys.openai, baseURL: `${sim.providerUrl("openai")}/v1`, model: "gpt-4o-mini" },
      anthropic: { apiKey: keys.anthropic, baseURL: sim.providerUrl("anthropic"), model: "claude-haiku-4-5" },
      cheap: { name: "groq", apiKey: keys.groq, baseURL: `${sim.providerUrl("groq")}/v1`, model: "llama-3.1-8b-instant" }
    }
    // the stack's options are constants: a build-time config error is a bug here
    const { budget, layer, legs } = yield* makeStack(endpoints, { budgetUsd: limitUsd, softAt: 0.8, requestsPerSecond: 100_000 }).pipe(
      Effect.orDie
    )
    // The providers behind the first one, bare, for the warm-up.
    const direct = [
      Anthropic.model(endpoints.anthropic.model).pipe(Layer.provide(Anthropic.layerClient(endpoints.anthropic))),
      OpenAI.model(endpoints.cheap.model).pipe(Layer.provide(OpenAI.compatible(endpoints.cheap)))
    ]
    const llm = yield* Effect.orDie(Layer.build(layer))

    const clock = yield* Clock.Clock
    const timeline = new Timeline(options.bucketMs ?? 1_000, () => clock.currentTimeMillisUnsafe())

    // Breaker transitions, attempts and limiter waits, from the events bus.
    const opened = new Map<string, number>()
    const closed = new Map<string, number>()
    const watcher = yield* Effect.forkChild(Stream.runForEach(Events.stream, (event) =>
      Effect.sync(() => {
        switch (event._tag) {
          case "AttemptStarted":
            return timeline.attemptStarted()
          case "AttemptFailed":
            return timeline.attemptFailed(event.provider, event.error)
          case "RateLimitWaited":
            return timeline.limiterWaited(event.waitedMs)
          case "CircuitStateChanged": {
            timeline.breaker(event.provider, event.to, event.reason)
            const bucket = event.to === "open" ? opened : event.to === "closed" ? closed : undefined
            bucket?.set(event.provider, (bucket.get(event.provider) ?? 0) + 1)
            return
          }
        }
      })))

    // The budget must never be passed: sample it all along the run.
    let budgetWorst = 0
    const sampler = yield* Effect.forkChild(
      Effect.repeat(
        Effect.map(budget.state(), (s) => {
          budgetWorst = Math.max(budgetWorst, (s.spentUsd + s.reservedUsd) / s.limitUsd)
        }),
        Schedule.spaced("20 millis")
      )
    )
    yield* Effect.yieldNow

    const random = prng(options.seed)
    const requests: Array<LlmRequest.LlmRequest> = Array.from({ length: options.requests }, (_, i) => ({
      messages: [{ role: "user", content: `chaos request ${i}: ${random().toString(36).slice(2, 10)}` }],
      maxTokens: 40 + Math.floor(random() * 60),
      deadline: options.deadlineMs,
      // A few repeats, so the cache is part of the run.
      ...(random() < 0.05 ? { temperature: 0, messages: [{ role: "user", content: `chaos repeat ${i % 7}` }] } : {})
    }))
    const streamed = requests.map(() => random() < 0.3)

    const ended: Array<Ended> = []
    // The shapes of the AllProvidersFailed chains: which child failed how.
    const chains = new Map<string, number>()
    // Every attempt's cost as the provider leaves report it, including attempts whose response
    // never reached its caller (a deadline that fired after the provider answered).
    let observedCost = 0
    const observe = Llm.observeAttempts((attempt) => {
      observedCost += attempt.costUsd
    })
    let done = 0
    const outageOne = Math.floor(options.requests * 0.25)
    const outageAll = Math.floor(options.requests * 0.6)

    // CPU contention: hogs started and stopped at request indices, or on the clock.
    const hogCount = options.cpuHog ?? 0
    const hogWindow = options.hogWindow ?? { unit: "requests", start: 0.1, duration: 0.35 }
    let hogs: Hogs | undefined
    let hogFrom = 0
    const hogOn = () => {
      if (hogCount === 0 || hogs !== undefined) return
      hogs = startHogs(hogCount)
      hogFrom = timeline.elapsed()
      say(`  cpu hog: ${hogCount} busy processes on (at ${(hogFrom / 1000).toFixed(1)} s)`)
    }
    const hogOff = () => {
      if (hogs === undefined) return
      hogs.stop()
      hogs = undefined
      const to = timeline.elapsed()
      timeline.window(`hog ${hogCount}`, hogFrom, to)
      say(`  cpu hog: off (at ${(to / 1000).toFixed(1)} s)`)
    }
    yield* Effect.addFinalizer(() => Effect.sync(hogOff))
    const hogStartIndex = hogWindow.unit === "requests" ? Math.floor(options.requests * hogWindow.start) : -1
    const hogStopIndex = hogWindow.unit === "requests"
      ? Math.min(options.requests, Math.floor(options.requests * (hogWindow.start + hogWindow.duration)))
      : -1

    const one = (index: number): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (index === hogStartIndex) hogOn()
        if (index === hogStopIndex) hogOff()
        if (index === outageOne) {
          say(`  outage: openai down for 1.5 s (at request ${index})`)
          const at = timeline.elapsed()
          timeline.window("openai down", at, at + 1_500)
          yield* Effect.orDie(sim.setFaults("openai", { outages: [{ durationMs: 1_500, status: 503 }] }, { mode: "add" }))
        }
        if (index === outageAll) {
          say(`  outage: every provider down for 0.6 s (at request ${index})`)
          const at = timeline.elapsed()
          timeline.window("all down", at, at + 600)
          for (const name of ["openai", "anthropic", "groq"]) {
            yield* Effect.orDie(sim.setFaults(name, { outages: [{ durationMs: 600, status: 503 }] }, { mode: "add" }))
          }
        }
        const request = requests[index]!
        timeline.requestStarted()
        const startMs = timeline.elapsed()
        const start = yield* Clock.currentTimeMillis
        const call = streamed[index]
          ? Effect.flatMap(Stream.runLast(Llm.stream(request)), (last) =>
            last._tag === "Some" && last.value.type === "finish"
              ? Effect.succeed(last.value.response)
              : Effect.die(new Error("a stream ended clean without its finish part")))
          : Llm.generate(request)
        const result = yield* call.pipe(
          Effect.map((response) => ({ ok: true as const, response })),
          Effect.catch((error: LlmError.LlmError) => Effect.succeed({ ok: false as const, error })),
          Effect.catchDefect((defect) => Effect.succeed({ ok: false as const, defect })),
          observe,
          Effect.provideContext(llm)
        )
        const elapsedMs = (yield* Clock.currentTimeMillis) - start
        const at = { index, startMs, endMs: timeline.elapsed() }
        if (result.ok) {
          ended.push({ ...at, ok: true, tag: "ok", elapsedMs, response: result.response, complete: complete(result.response), leaked: leakIn(JSON.stringify(result.response)) })
        } else if ("error" in result) {
          const typed = LlmError.isLlmError(result.error)
          if (typed && result.error._tag === "AllProvidersFailed") {
            const shape = result.error.attempts.map((a) => `${a.provider}:${a.outcome}`).join(" ")
            chains.set(shape, (chains.get(shape) ?? 0) + 1)
          }
          ended.push({
            ...at,
            ok: false,
            tag: typed ? result.error._tag : `untyped ${String(result.error)}`,
            elapsedMs,
            complete: true,
            leaked: leakIn(`${String(result.error)} ${JSON.stringify(result.error)} ${result.error.message}`)
          })
        } else {
          ended.push({ ...at, ok: false, tag: `DEFECT ${String(result.defect)}`, elapsedMs, complete: true, leaked: undefined })
        }
        timeline.requestEnded(ended[ended.length - 1]!.ok, ended[ended.length - 1]!.tag)
        done++
        if (done % Math.max(1, Math.floor(options.requests / 10)) === 0) say(`  ${done}/${options.requests}`)
      })

    // Warm-up, before the clock starts and before any fault: the tokenizer's encodings, the SDKs'
    // first calls and connections, the JIT. Through the stack (budget, ledger and observer see
    // it like any call), and straight to the two providers behind openai (a private ledger: no
    // budget sees those).
    const warm = (i: number, stream: boolean) => {
      const request: LlmRequest.LlmRequest = { messages: [{ role: "user", content: `warm-up ${i}` }], maxTokens: 20 }
      return stream ? Stream.runDrain(Llm.stream(request)) : Llm.generate(request)
    }
    const warmups = Array.from({ length: Math.min(64, options.concurrency * 2) }, (_, i) => i)
    yield* Effect.forEach(warmups, (i) =>
      warm(i, i % 3 === 0).pipe(Effect.ignore, observe, Effect.provideContext(llm)), { concurrency: 16, discard: true })
    // fresh: the run's own ledger layer is memoized, and would be handed back
    const privateLedger = yield* Layer.build(Layer.fresh(CostLedger.layer))
    for (const leaf of direct) {
      const context = yield* Effect.orDie(Layer.build(leaf))
      yield* Effect.forEach(warmups.slice(0, 16), (i) =>
        warm(i, i % 2 === 0).pipe(
          Effect.ignore,
          Effect.provideContext(Context.merge(context, privateLedger))
        ), { concurrency: 8, discard: true })
    }
    for (const [name, plan] of Object.entries(mixes(options.seed))) {
      yield* Effect.orDie(sim.setFaults(name, plan))
    }

    const t0 = yield* Clock.currentTimeMillis
    timeline.start()
    if (hogCount > 0 && hogWindow.unit === "ms") {
      yield* Effect.forkChild(
        Effect.andThen(
          Effect.sleep(hogWindow.start),
          Effect.andThen(Effect.sync(hogOn), Effect.andThen(Effect.sleep(hogWindow.duration), Effect.sync(hogOff)))
        )
      )
    }
    yield* Effect.forEach(requests, (_, index) => one(index), { concurrency: options.concurrency, discard: true })
    hogOff()
    const durationMs = (yield* Clock.currentTimeMillis) - t0
    timeline.stop()

    // Recovery: faults off, wait out every breaker's cooldown (they grow with each reopening;
    // bounded at 20 s), then send a little traffic so the breakers that get it can close. One
    // call at a time: a half-open breaker lets one probe through and refuses the calls beside it
    // (by design), so parallel calls fired while the probes are in flight would fail fast on
    // every provider and use up the recovery traffic before any probe could close a breaker — on
    // a loaded machine 37 of 40 did, and that measured the probes' latency, not recovery.
    for (const name of ["openai", "anthropic", "groq"]) yield* Effect.orDie(sim.clearFaults(name))
    const anyOpen = Effect.map(
      Effect.forEach(legs, (leg) => Effect.orDie(leg.breaker.state(leg.provider, leg.model))),
      (states) => states.some((state) => state._tag === "Open")
    )
    yield* Effect.repeat(anyOpen, { while: (open) => open, schedule: Schedule.spaced("100 millis"), times: 200 })
    let recoveredOk = 0
    const recoveryFailures: Record<string, number> = {}
    const recoveryCalls = 40
    yield* Effect.forEach(Array.from({ length: recoveryCalls }, (_, i) => i), (i) =>
      Llm.generate({ messages: [{ role: "user", content: `recovery ${i}` }], maxTokens: 20, deadline: options.deadlineMs }).pipe(
        Effect.tap(() => Effect.sync(() => recoveredOk++)),
        Effect.tapError((error) => Effect.sync(() => void (recoveryFailures[error._tag] = (recoveryFailures[error._tag] ?? 0) + 1))),
        Effect.ignore,
        observe,
        Effect.provideContext(llm)
      ), { discard: true })
    yield* Effect.sleep("50 millis")
    yield* Fiber.interrupt(sampler)
    yield* Fiber.interrupt(watcher)

    const ledger = yield* CostLedger.snapshot
    const finalBudget = yield* budget.state()
    const breakerStates = yield* Effect.forEach(legs, (leg) =>
      Effect.map(Effect.orDie(leg.breaker.state(leg.provider, leg.model)), (state) => ({ leg, state })))

    // ---------------------------------------------------------------------------
    // The invariants
    // ---------------------------------------------------------------------------
    const failures: Record<string, number> = {}
    for (const e of ended) if (!e.ok) failures[e.tag] = (failures[e.tag] ?? 0) + 1
    const defects = ended.filter((e) => e.tag.startsWith("DEFECT") || e.tag.startsWith("untyped"))
    // A caller hears back within the deadline plus a second of slack — plus the event-loop
    // delay measured when it ended: no library answers faster than the process's loop turns, and a
    // machine whose CPU is taken by others (a hog, other tenants) delays every timer by that much.
    const slack = 1_000
    // (Three turns of it: the late timer, the fiber resuming, the caller's continuation.)
    const slackAt = (e: Ended) => slack + 3 * timeline.eldMaxAround(e.endMs)
    const late = ended.filter((e) => e.elapsedMs > options.deadlineMs + slackAt(e))
    const worstLoop = Math.max(0, ...timeline.all().map((b) => b.eldMaxMs))

    // Success while at least one provider is healthy: every request, except those that overlapped
    // the all-providers outage (and the breakers' cooldown after it) and those the budget refused
    // (refusing once the budget is spent is its job). The hog windows are in: contention must
    // degrade the stack, not stop it.
    const windows = timeline.windows
    const allDown = windows.filter((w) => w.name === "all down")
    const outageGraceMs = 3_000
    const hogGraceMs = 2_000
    const healthy = ended.filter((e) =>
      e.tag !== "BudgetExceeded" && !allDown.some((w) => e.startMs < w.to + outageGraceMs && e.endMs > w.from)
    )
    const rate = (xs: ReadonlyArray<Ended>) => xs.length === 0 ? 0 : xs.filter((e) => e.ok).length / xs.length
    const healthyRate = rate(healthy)
    const inHog = healthy.filter((e) => windows.some((w) => w.name.startsWith("hog") && e.startMs >= w.from && e.startMs < w.to))
    const outsideHog = healthy.filter((e) => !windows.some((w) => w.name.startsWith("hog") && e.endMs > w.from && e.startMs < w.to + hogGraceMs))
    // The floor: see the module docs (why 25 %).
    const floor = 0.25

    // Recovery: after each outage or hog window (and a grace for breakers and the loop to settle),
    // the next requests succeed at the floor again. Too few requests after a window (a short run):
    // the recovery calls after the run stand in for them.
    const graceOf = (w: { readonly name: string }) => w.name.startsWith("hog") ? hogGraceMs : outageGraceMs
    const recovery = windows.map((w) => {
      // Recovery is judged once every fault window overlapping this one (and its grace) is over:
      // an outage inside a hog window recovers when the hog is gone too.
      let from = w.to + graceOf(w)
      for (let changed = true; changed;) {
        changed = false
        for (const other of windows) {
          if (other.from < from && other.to + graceOf(other) > from) {
            from = other.to + graceOf(other)
            changed = true
          }
        }
      }
      const after = ended.filter((e) => e.startMs >= from && e.startMs < from + 5_000 && e.tag !== "BudgetExceeded")
      const enough = after.length >= 20
      const r = enough ? rate(after) : recoveredOk / recoveryCalls
      const why = enough || Object.keys(recoveryFailures).length === 0
        ? ""
        : ` (failed: ${Object.entries(recoveryFailures).map(([tag, n]) => `${tag} ${n}`).join(", ")})`
      return {
        w,
        ok: r >= floor,
        detail: `${w.name}: ${(r * 100).toFixed(0)}% of ${enough ? after.length : `${recoveryCalls} recovery`} calls${why}`
      }
    })
    const latencies = ended.map((e) => e.elapsedMs)
    const [, p99] = pcts(latencies)
    // The loop term: the p99 of the per-second worst event-loop delays (one long stall of the
    // machine does not excuse the whole run).
    const loopP99 = pcts(timeline.all().map((b) => b.eldMaxMs))[1]
    const p99Bound = options.deadlineMs + slack + 3 * loopP99
    const lateness = pcts(ended.filter((e) => e.tag === "Timeout").map((e) => e.elapsedMs - options.deadlineMs))
    const latenessOf = (stream: boolean) =>
      pcts(ended.filter((e) => e.tag === "Timeout" && streamed[e.index] === stream).map((e) => e.elapsedMs - options.deadlineMs))
    const incomplete = ended.filter((e) => e.ok && !e.complete)
    // What callers saw is part of what the leaves reported (cache hits cost nothing; a timed-out
    // caller sees no attempts), never more.
    const visibleCost = ended.reduce(
      (sum, e) => sum + (e.response?.attempts.reduce((s, a) => s + a.costUsd, 0) ?? 0),
      0
    )
    const leaks = ended.filter((e) => e.leaked !== undefined).length + captured.filter((line) => leakIn(line) !== undefined).length
    const openedAny = [...opened.values()].reduce((a, b) => a + b, 0)
    const stillOpen = breakerStates.filter(({ state }) => state._tag === "Open")

    const invariants: Array<Invariant> = [
      {
        name: "every request ended",
        ok: ended.length === options.requests,
        detail: `${ended.length} of ${options.requests} ended`
      },
      { name: "no defects, every failure a typed LlmError", ok: defects.length === 0, detail: `${defects.length} defects${defects[0] ? `: ${defects[0].tag}` : ""}` },
      {
        name: "no hang past the deadline",
        ok: late.length === 0,
        detail: `slowest ${Math.round(Math.max(0, ...ended.map((e) => e.elapsedMs)))} ms (deadline ${options.deadlineMs} ms + ${slack} ms slack + 3 × the event-loop delay when it ended, at worst ${
          Math.round(worstLoop)
        } ms)${late.length > 0 ? `; ${late.length} late` : ""}`
      },
      {
        name: `p99 latency within the deadline (+ ${slack} ms + 3 × the p99 of the loop delay)`,
        ok: p99 <= p99Bound,
        detail: `p99 ${Math.round(p99)} ms, bound ${Math.round(p99Bound)} ms`
      },
      {
        name: `success rate while a provider is healthy at least ${floor * 100}%`,
        ok: healthy.length > 0 && healthyRate >= floor,
        detail: `${(healthyRate * 100).toFixed(1)}% of ${healthy.length} (outside CPU hogs ${(rate(outsideHog) * 100).toFixed(1)}% of ${outsideHog.length}${
          inHog.length > 0 ? `, during them ${(rate(inHog) * 100).toFixed(1)}% of ${inHog.length}` : ""
        })`
      },
      {
        name: "recovery after each outage and hog window",
        ok: recovery.length > 0 && recovery.every((r) => r.ok),
        detail: recovery.map((r) => r.detail).join("; ")
      },
      { name: "every success has a complete body", ok: incomplete.length === 0, detail: `${incomplete.length} incomplete` },
      {
        name: "the budget was never passed",
        ok: budgetWorst <= 1 + 1e-9 && finalBudget.spentUsd <= finalBudget.limitUsd + 1e-12,
        detail: `peak spent+reserved ${(budgetWorst * 100).toFixed(1)}% of $${limitUsd.toFixed(4)}; spent $${finalBudget.spentUsd.toFixed(6)}`
      },
      {
        // The first provider gets the recovery traffic, so its breaker must close; the others
        // must at least have left "open" (half-open: they admit the next call as a probe).
        name: "breakers opened during outages and closed after",
        ok: openedAny > 0 && (opened.get("openai") ?? 0) > 0 && (closed.get("openai") ?? 0) > 0 && stillOpen.length === 0,
        detail: `opened ${JSON.stringify(Object.fromEntries(opened))}, closed ${JSON.stringify(Object.fromEntries(closed))}, open at the end: ${
          stillOpen.map(({ leg }) => leg.name).join(", ") || "none"
        }`
      },
      {
        name: "the ledger's total equals the sum of the attempts' costs",
        ok: Math.abs(ledger.total.costUsd - observedCost) <= 1e-9 + 1e-9 * observedCost &&
          visibleCost <= observedCost + 1e-9,
        detail: `ledger $${ledger.total.costUsd.toFixed(8)} vs attempts $${observedCost.toFixed(8)} (of which callers saw $${
          visibleCost.toFixed(8)
        })`
      },
      {
        // Two accountings of the same spend: what the budget settled, and what the ledger recorded.
        name: "the budget charged exactly what the ledger recorded",
        ok: Math.abs(finalBudget.spentUsd - ledger.total.costUsd) <= 1e-9 + 1e-9 * ledger.total.costUsd,
        detail: `budget $${finalBudget.spentUsd.toFixed(8)} vs ledger $${ledger.total.costUsd.toFixed(8)}`
      },
      { name: "no API key in any log line or error", ok: leaks === 0, detail: `${leaks} leaks in ${captured.length} log lines and ${ended.length} results` }
    ]
    return {
      requests: options.requests,
      succeeded: ended.filter((e) => e.ok).length,
      failures,
      durationMs,
      invariants,
      ok: invariants.every((i) => i.ok),
      timeline: [
        ...timeline.render(),
        `Timeout lateness past the deadline (ms) p50/p99/max: ${lateness.map((x) => Math.round(x)).join("/")} (generate ${
          latenessOf(false).map((x) => Math.round(x)).join("/")
        }, stream ${latenessOf(true).map((x) => Math.round(x)).join("/")})`,
        `latency (ms) of every request p50/p99/max: ${pcts(ended.map((e) => e.elapsedMs)).map((x) => Math.round(x)).join("/")}`,
        "AllProvidersFailed chains (top 8):",
        ...[...chains.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([shape, n]) => `  ${n}  ${shape}`)
      ]
    } satisfies ChaosReport
  })
