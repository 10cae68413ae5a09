/**
 * Chooses, for each request, which of several `LLM` candidates answers it —
 * by a strategy, among the candidates that can serve it — and falls over to
 * the next-ranked one on a failure another provider may cure.
 *
 * Each call:
 * 1. **Eligibility**, from the request and the catalog (`ModelCatalog` when one
 *    is in scope, else `Pricing`), before any ranking: tools need `tools`,
 *    image parts `vision`, a `json-schema` response format `jsonSchema`;
 *    `routing.require` and the router's `require` add to them; the prompt's
 *    tokens plus `maxTokens` must fit the context window; the estimated price
 *    must be ≤ `routing.maxPriceUsd` (an unknown price is refused under a
 *    ceiling); the observed latency must be ≤ `routing.maxLatencyMs`. A
 *    candidate with no catalog entry is assumed able (its own errors will
 *    say otherwise), but has no price. Candidates a `HealthMonitor` in scope
 *    judges `down` are skipped without a call, as are candidates whose
 *    `skipWhen` gives a reason.
 * 2. **Ranking** by the strategy: `priority` (in order), `weighted` (smooth
 *    weighted round robin: shares follow `weight`, never in bursts),
 *    `roundRobin`, `leastLatency` (a time-decayed average of observed latency
 *    with a `halfLife`, time to first part for streams; never-measured
 *    candidates first, and a small `explore` share of calls goes to the
 *    least recently measured candidate so a recovered one is seen again),
 *    `leastCost` (the estimated cost of this request: counted input tokens
 *    plus `maxTokens` — else 1,024 — of output at the catalog's prices, the
 *    tokens before a `cache: true` breakpoint at the cached-input price;
 *    unknown prices last), `byTask` (`tasks[metadata.task]`, else
 *    `tasks.default`, else every candidate, in the listed order).
 *    `routing.prefer` moves an eligible candidate first.
 * 3. **Calls** in that order. A candidate whose stack refuses without calling
 *    its provider — an open `CircuitBreaker` (`CircuitOpen`), a local
 *    `RateLimit` (`RateLimited` with `source: "local"`), an over-budget
 *    `Budget` (`BudgetExceeded`) — is skipped, and the next one runs. On a
 *    fallbackable error (`LlmError.isFallbackable`) the next one runs too,
 *    unless `fallback: false`; streams fall over only before their first part.
 *    Nothing eligible, or every candidate skipped: `NoEligibleModel { rejected }`
 *    with each one's reason. Every one tried failed: `AllProvidersFailed`.
 *
 * Every decision publishes `RouteChosen` (the candidate, the strategy and why
 * the others were skipped) and, with a tracer, annotates the current span with
 * `switchboard.route.candidate`, `switchboard.route.strategy` and
 * `switchboard.route.decision`.
 *
 * Order: `Router` goes where `Fallback` would, outside each candidate's
 * `CircuitBreaker` and `Retry`, inside `Budget`, `RateLimit` and `ResponseCache`.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, type Fiber, Layer, Schema, Stream } from "effect"
import * as Events from "../Events.ts"
import { attemptsOfFailure, type ChildFailure, failWith, matchChild, prepend, tryStreamWith } from "../internal/attempts.ts"
import type { Budget } from "../limits/Budget.ts"
import { LLM } from "../LLM.ts"
import { AllProvidersFailed, isFallbackable, type LlmError, NoEligibleModel } from "../LlmError.ts"
import { Capability, type LlmRequest, type Message } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"
import { encodingFor, Tokenizer, type TokenizerService } from "../prompt/Tokenizer.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import { HealthMonitor, isHealthFailure } from "./HealthMonitor.ts"
import { DurationInput, Fraction } from "./internal/schemas.ts"
import { type Entry, fromPrice, ModelCatalog } from "./ModelCatalog.ts"

/**
 * How candidates are ranked.
 *
 * @since 0.1.0
 * @category models
 */
export const Strategy = Schema.Literals(["priority", "weighted", "roundRobin", "leastLatency", "leastCost", "byTask"])
/** @since 0.1.0 @category models */
export type Strategy = typeof Strategy.Type

/**
 * Router options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `strategy` | — | see {@link Strategy} and the module docs |
 * | `tasks` | — | `byTask` only: `metadata.task` → candidate names, with an optional `default` |
 * | `fallback` | `true` | try the next-ranked candidate on a fallbackable error |
 * | `latency.halfLife` | `"30 seconds"` | how fast old latency observations fade |
 * | `latency.explore` | `0.05` | `leastLatency`: share of calls sent to the least recently measured candidate |
 * | `require` | `[]` | capabilities every request needs (checked against the catalog at build) |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  strategy: Strategy,
  tasks: Schema.optional(Schema.Record(Schema.String, Schema.Array(Schema.String))),
  fallback: Schema.optional(Schema.Boolean),
  latency: Schema.optional(Schema.Struct({
    halfLife: Schema.optional(DurationInput),
    explore: Schema.optional(Fraction)
  })),
  require: Schema.optional(Schema.Array(Capability))
})
/** @since 0.1.0 @category models */
export type Options = typeof Options.Type

/**
 * A candidate: its `LLM` layer with its name and catalog key.
 *
 * - `provider` / `model`: the key that prices it and says its capabilities
 *   and window (needed by `leastCost`).
 * - `weight`: its share under `weighted` (default 1).
 * - `probe`: a cheap health check (`OpenAI.listModels`) for a `HealthMonitor`
 *   with `probe: "models"`.
 * - `skipWhen`: a reason to skip it for this request, or `undefined`
 *   (see {@link budgetGate}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Candidate<E = never, R = never> {
  readonly name: string
  readonly layer: Layer.Layer<LLM, E, R>
  readonly provider?: string | undefined
  readonly model?: string | undefined
  readonly weight?: number | undefined
  readonly probe?: Effect.Effect<unknown, LlmError> | undefined
  readonly skipWhen?: ((request: LlmRequest) => Effect.Effect<string | undefined>) | undefined
}

/**
 * A candidate: a plain layer (named `router#<index>`, no catalog key) or a
 * {@link Candidate}.
 *
 * @since 0.1.0
 * @category models
 */
export type CandidateInput<E = never, R = never> = Layer.Layer<LLM, E, R> | Candidate<E, R>

/**
 * A candidate as a built service.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServiceCandidate extends Omit<Candidate, "layer"> {
  readonly service: LLM["Service"]
}

const CandidateMeta = Schema.Struct({
  name: Schema.String.check(Schema.isMinLength(1)),
  provider: Schema.optional(Schema.String.check(Schema.isMinLength(1))),
  model: Schema.optional(Schema.String.check(Schema.isMinLength(1))),
  weight: Schema.optional(Schema.Finite.check(Schema.isGreaterThan(0)))
})

/** Output tokens assumed by cost estimates for a request without `maxTokens`. */
const defaultOutputTokens = 1024

const configError = (path: string, message: string) => new SwitchboardConfigError.SwitchboardConfigError({ path, message })

/** Errors that mean a candidate's own stack refused without reaching its provider. */
const skipReason = (error: LlmError): string | undefined => {
  switch (error._tag) {
    case "CircuitOpen":
      return "circuit open"
    case "BudgetExceeded":
      return `budget exceeded (${error.scope})`
    case "RateLimited":
      return error.source === "local" ? "local rate limit exhausted" : undefined
    case "NoEligibleModel":
      return "no eligible model below"
    default:
      return undefined
  }
}

interface Rejection {
  readonly name: string
  readonly reason: string
}

/** What a request needs from a model. */
const needsOf = (request: LlmRequest, always: ReadonlyArray<Capability>): ReadonlyArray<Capability> => {
  let needs: Array<Capability> | undefined
  const add = (capability: Capability) => {
    if (needs === undefined) needs = [capability]
    else if (!needs.includes(capability)) needs.push(capability)
  }
  for (const capability of always) add(capability)
  if (request.tools !== undefined && request.tools.length > 0) add("tools")
  if (request.responseFormat?.type === "json-schema") add("jsonSchema")
  for (const message of request.messages) {
    if (typeof message.content === "string") continue
    for (const part of message.content) {
      if (part.type === "image") {
        add("vision")
        break
      }
    }
  }
  const required = request.routing?.require
  if (required !== undefined) for (const capability of required) add(capability)
  return needs ?? always
}

/** A cheap upper bound of a request's prompt tokens: no tokenizer estimate exceeds it. */
const tokenCeiling = (request: LlmRequest): number => {
  let chars = request.system?.length ?? 0
  let extra = 16
  for (const message of request.messages) {
    extra += 8
    if (typeof message.content === "string") chars += message.content.length
    else {
      for (const part of message.content) {
        if (part.type === "text") chars += part.text.length
        else if (part.type === "image") extra += 2_000
        else chars += JSON.stringify(part).length
      }
    }
  }
  if (request.tools !== undefined) chars += JSON.stringify(request.tools).length + 16 * request.tools.length
  // a BPE token is at least one character; estimates add 20 %
  return Math.ceil(chars * 1.25) + extra
}

/** The request up to its last `cache: true` breakpoint, or `undefined` when it has none. */
const cachedPrefix = (request: LlmRequest): LlmRequest | undefined => {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i]!
    if (typeof message.content === "string") continue
    for (let j = message.content.length - 1; j >= 0; j--) {
      const part = message.content[j]!
      if (part.type === "text" && part.cache === true) {
        const head: Message = { role: message.role, content: message.content.slice(0, j + 1) }
        const messages = [...request.messages.slice(0, i), head]
        return request.system === undefined
          ? { messages, ...(request.tools ? { tools: request.tools } : {}) }
          : { messages, system: request.system, ...(request.tools ? { tools: request.tools } : {}) }
      }
    }
  }
  return undefined
}

/** The estimated cost of a call on an entry, or `undefined` when its price is unknown. */
const costOf = (entry: Entry | undefined, input: number, cached: number, output: number): number | undefined => {
  if (entry === undefined || entry.priceUnknown || entry.inputPerMillion === undefined) return undefined
  const cachedPrice = entry.cachedInputPerMillion ?? entry.inputPerMillion
  const hit = Math.min(cached, input)
  return ((input - hit) * entry.inputPerMillion + hit * cachedPrice + output * (entry.outputPerMillion ?? 0)) /
    1_000_000
}

const formatUsd = (usd: number) => `$${usd.toPrecision(3)}`

interface LatencyTrack {
  /** Decayed sum of observations and of their weights. */
  sum: number
  weight: number
  /** When the last observation was made (epoch ms), -1 when never. */
  at: number
}

/**
 * Builds the router over already-built candidates. Options are decoded
 * first; a `HealthMonitor` and a `ModelCatalog` in context are used when
 * present.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  candidates: ReadonlyArray<ServiceCandidate>,
  options: Options
) {
  const decoded = yield* SwitchboardConfigError.decode("Router", Options, options)
  if (candidates.length === 0) return yield* configError("Router.candidates", "give at least one candidate")
  yield* SwitchboardConfigError.decode(
    "Router.candidates",
    Schema.Array(CandidateMeta),
    candidates.map((c) => ({
      name: c.name,
      ...(c.provider !== undefined ? { provider: c.provider } : {}),
      ...(c.model !== undefined ? { model: c.model } : {}),
      ...(c.weight !== undefined ? { weight: c.weight } : {})
    }))
  )
  const strategy = decoded.strategy
  const names = candidates.map((c) => c.name)
  const index = new Map<string, number>()
  for (let i = 0; i < names.length; i++) {
    if (index.has(names[i]!)) {
      return yield* configError(`Router.candidates[${i}].name`, `duplicate candidate name ${JSON.stringify(names[i])}`)
    }
    index.set(names[i]!, i)
  }
  if (strategy === "leastCost") {
    for (let i = 0; i < candidates.length; i++) {
      if (candidates[i]!.provider === undefined || candidates[i]!.model === undefined) {
        return yield* configError(
          `Router.candidates[${i}]`,
          `strategy "leastCost" prices every candidate: give ${JSON.stringify(names[i])} its provider and model`
        )
      }
    }
  }
  if (decoded.tasks !== undefined && strategy !== "byTask") {
    return yield* configError("Router.tasks", `only strategy "byTask" reads tasks, not ${JSON.stringify(strategy)}`)
  }
  const tasks = new Map<string, ReadonlyArray<number>>()
  if (strategy === "byTask") {
    if (decoded.tasks === undefined) {
      return yield* configError("Router.tasks", `strategy "byTask" needs tasks: { task: [candidate names], default: [...] }`)
    }
    for (const [task, list] of Object.entries(decoded.tasks)) {
      if (list.length === 0) return yield* configError(`Router.tasks.${task}`, "list at least one candidate")
      const out: Array<number> = []
      for (let j = 0; j < list.length; j++) {
        const at = index.get(list[j]!)
        if (at === undefined) {
          return yield* configError(
            `Router.tasks.${task}[${j}]`,
            `no candidate named ${JSON.stringify(list[j])} (candidates: ${names.join(", ")})`
          )
        }
        out.push(at)
      }
      tasks.set(task, out)
    }
  }
  const fallback = decoded.fallback ?? true
  const halfLifeMs = Duration.toMillis(Duration.fromInputUnsafe(decoded.latency?.halfLife ?? "30 seconds"))
  const explore = decoded.latency?.explore ?? 0.05
  const exploreEvery = explore <= 0 ? 0 : Math.max(1, Math.round(1 / explore))
  const always = decoded.require ?? []

  const catalog = yield* Effect.serviceOption(ModelCatalog)
  const monitor = yield* Effect.serviceOption(HealthMonitor)
  const health = monitor._tag === "Some" ? monitor.value : undefined

  // Catalog entries: from the ModelCatalog each call (it refreshes), else
  // from the Pricing in context, remembered per pricing service.
  const pricedEntries = new WeakMap<PricingService, ReadonlyArray<Entry | undefined>>()
  const entriesFrom = (pricing: PricingService): ReadonlyArray<Entry | undefined> => {
    let entries = pricedEntries.get(pricing)
    if (entries === undefined) {
      entries = candidates.map((c) => {
        if (c.provider === undefined || c.model === undefined) return undefined
        const price = pricing.lookup(c.provider, c.model)
        return price === undefined ? undefined : { ...fromPrice(price, false, c.model), provider: c.provider }
      })
      pricedEntries.set(pricing, entries)
    }
    return entries
  }
  const entriesOf = (pricing: PricingService): ReadonlyArray<Entry | undefined> =>
    catalog._tag === "Some"
      ? candidates.map((c) =>
        c.provider === undefined || c.model === undefined ? undefined : catalog.value.lookup(c.provider, c.model)
      )
      : entriesFrom(pricing)

  // A declared requirement no candidate can ever meet is a build error.
  if (always.length > 0) {
    const entries = entriesOf(yield* Pricing)
    const unable: Array<string> = []
    for (let i = 0; i < candidates.length; i++) {
      const capabilities = entries[i]?.capabilities
      const missing = capabilities === undefined ? [] : always.filter((c) => !capabilities[c])
      if (missing.length > 0) unable.push(`${names[i]} (${entries[i]!.model}) lacks ${missing.join(", ")}`)
    }
    if (unable.length === candidates.length) {
      return yield* configError("Router.require", `no candidate can serve ${always.join(", ")}: ${unable.join("; ")}`)
    }
  }

  if (health !== undefined) {
    for (const c of candidates) health.register(c.name, { probe: c.probe, service: c.service })
  }

  // ---- per-strategy state (mutated only in synchronous sections) ----
  const latency: Array<LatencyTrack> = candidates.map(() => ({ sum: 0, weight: 0, at: -1 }))
  const current = candidates.map(() => 0)
  const weights = candidates.map((c) => c.weight ?? 1)
  let turn = 0
  let calls = 0

  const observe = (i: number, ms: number, now: number) => {
    const track = latency[i]!
    const decay = track.at < 0 ? 0 : Math.pow(2, -Math.max(0, now - track.at) / halfLifeMs)
    track.sum = track.sum * decay + ms
    track.weight = track.weight * decay + 1
    track.at = now
  }
  const latencyOf = (i: number): number | undefined => {
    const track = latency[i]!
    return track.weight > 0 ? track.sum / track.weight : undefined
  }

  const all = candidates.map((_, i) => i)
  const poolOf = (request: LlmRequest): ReadonlyArray<number> => {
    if (strategy !== "byTask") return all
    const task = request.metadata?.task
    return (task === undefined ? undefined : tasks.get(task)) ?? tasks.get("default") ?? all
  }

  interface Plan {
    readonly order: ReadonlyArray<number>
    readonly rejected: Array<Rejection>
  }

  /** Ranks the eligible candidates (mutates the strategies' state). */
  const rank = (eligible: Array<number>, costs: ReadonlyArray<number | undefined> | undefined): Array<number> => {
    switch (strategy) {
      case "priority":
      case "byTask":
        return eligible
      case "roundRobin": {
        const n = candidates.length
        const start = turn++ % n
        return eligible.sort((a, b) => ((a - start + n) % n) - ((b - start + n) % n))
      }
      case "weighted": {
        let total = 0
        let best = eligible[0]!
        for (const i of eligible) {
          current[i]! += weights[i]!
          total += weights[i]!
          if (current[i]! > current[best]!) best = i
        }
        current[best]! -= total
        const rest = eligible.filter((i) => i !== best).sort((a, b) => weights[b]! - weights[a]!)
        return [best, ...rest]
      }
      case "leastLatency": {
        calls++
        const sorted = eligible.sort((a, b) => {
          const la = latencyOf(a)
          const lb = latencyOf(b)
          if (la === undefined || lb === undefined) return la === lb ? a - b : la === undefined ? -1 : 1
          return la - lb
        })
        if (exploreEvery > 0 && calls % exploreEvery === 0 && sorted.length > 1) {
          let stalest = sorted[0]!
          for (const i of sorted) if (latency[i]!.at < latency[stalest]!.at) stalest = i
          return [stalest, ...sorted.filter((i) => i !== stalest)]
        }
        return sorted
      }
      case "leastCost": {
        const cost = (i: number) => costs?.[i] ?? Number.POSITIVE_INFINITY
        return eligible.sort((a, b) => cost(a) - cost(b) || a - b)
      }
    }
  }

  /** Filters and ranks for one request; `tokens` is undefined when no rule needs them. */
  const planWith = (
    request: LlmRequest,
    entries: ReadonlyArray<Entry | undefined>,
    tokens: ReadonlyArray<number> | undefined,
    cached: ReadonlyArray<number> | undefined,
    now: number
  ): Plan => {
    const needs = needsOf(request, always)
    const pool = poolOf(request)
    const rejected: Array<Rejection> = []
    const eligible: Array<number> = []
    const maxPrice = request.routing?.maxPriceUsd
    const maxLatency = request.routing?.maxLatencyMs
    const output = request.maxTokens ?? defaultOutputTokens
    let costs: Array<number | undefined> | undefined
    if (tokens !== undefined && (strategy === "leastCost" || maxPrice !== undefined)) {
      costs = candidates.map((_, i) => costOf(entries[i], tokens[i]!, cached?.[i] ?? 0, output))
    }
    for (const i of pool) {
      const entry = entries[i]
      const reject = (reason: string) => rejected.push({ name: names[i]!, reason })
      const capabilities = entry?.capabilities
      if (capabilities !== undefined && needs.length > 0) {
        const missing = needs.filter((c) => !capabilities[c])
        if (missing.length > 0) {
          reject(`lacks ${missing.join(", ")}`)
          continue
        }
      }
      if (tokens !== undefined && entry?.contextWindow !== undefined) {
        const need = tokens[i]! + (request.maxTokens ?? 0)
        if (need > entry.contextWindow) {
          reject(`context window ${entry.contextWindow} < ${need} tokens (prompt + maxTokens)`)
          continue
        }
      }
      if (maxPrice !== undefined) {
        const cost = costs?.[i]
        if (cost === undefined) {
          reject(`price unknown (maxPriceUsd ${formatUsd(maxPrice)})`)
          continue
        }
        if (cost > maxPrice) {
          reject(`estimated ${formatUsd(cost)} over maxPriceUsd ${formatUsd(maxPrice)}`)
          continue
        }
      }
      if (maxLatency !== undefined) {
        const observed = latencyOf(i)
        if (observed !== undefined && observed > maxLatency) {
          reject(`observed latency ${Math.round(observed)} ms over maxLatencyMs ${maxLatency}`)
          continue
        }
      }
      if (health !== undefined && health.status(names[i]!, now) === "down") {
        reject("down (HealthMonitor)")
        continue
      }
      eligible.push(i)
    }
    if (eligible.length === 0) return { order: eligible, rejected }
    const order = rank(eligible, costs)
    const prefer = request.routing?.prefer
    if (prefer !== undefined) {
      const at = index.get(prefer)
      const pos = at === undefined ? -1 : order.indexOf(at)
      if (pos > 0) {
        order.splice(pos, 1)
        order.unshift(at!)
      }
    }
    return { order, rejected }
  }

  /** Whether the rules need token counts for this request. */
  const needsTokens = (request: LlmRequest, entries: ReadonlyArray<Entry | undefined>): boolean => {
    if (strategy === "leastCost" || request.routing?.maxPriceUsd !== undefined) return true
    let smallest = Number.POSITIVE_INFINITY
    for (const entry of entries) {
      if (entry?.contextWindow !== undefined && entry.contextWindow < smallest) smallest = entry.contextWindow
    }
    if (smallest === Number.POSITIVE_INFINITY) return false
    return tokenCeiling(request) + (request.maxTokens ?? 0) > smallest
  }

  // Candidates counted alike (same exact encoding, or both estimated) share one count.
  const groups: Array<{ readonly target: { provider: string; model: string }; readonly members: Array<number> }> = []
  {
    const byKey = new Map<string, Array<number>>()
    for (let i = 0; i < candidates.length; i++) {
      const target = { provider: candidates[i]!.provider ?? "unknown", model: candidates[i]!.model ?? "unknown" }
      const key = encodingFor(target) ?? "estimate"
      let members = byKey.get(key)
      if (members === undefined) {
        byKey.set(key, members = [])
        groups.push({ target, members })
      }
      members.push(i)
    }
  }

  interface Counted {
    readonly tokens: ReadonlyArray<number>
    readonly cached: ReadonlyArray<number> | undefined
    /** Counted for pricing and the request has no cache breakpoint. */
    readonly noPrefix: boolean
  }
  interface Remembered extends Counted {
    readonly tokenizer: TokenizerService
    readonly system: string | undefined
    readonly tools: LlmRequest["tools"]
  }
  const counted = new WeakMap<LlmRequest["messages"], Remembered>()
  const remember = (request: LlmRequest, tokenizer: TokenizerService, count: Counted): Counted => {
    counted.set(request.messages, { ...count, tokenizer, system: request.system, tools: request.tools })
    return count
  }

  const count = (
    tokenizer: TokenizerService,
    request: LlmRequest
  ): Effect.Effect<Counted> => {
    const priced = strategy === "leastCost" || request.routing?.maxPriceUsd !== undefined
    // Requests are immutable: a request that reuses the messages (and system
    // prompt and tools) of an earlier one has the same counts.
    const known = counted.get(request.messages)
    if (
      known !== undefined && known.tokenizer === tokenizer && known.system === request.system &&
      known.tools === request.tools && (!priced || known.cached !== undefined || known.noPrefix)
    ) {
      return Effect.succeed(known)
    }
    const prefix = priced ? cachedPrefix(request) : undefined
    const tokens: Array<number> = new Array(candidates.length).fill(0)
    const cached: Array<number> | undefined = prefix === undefined ? undefined : new Array(candidates.length).fill(0)
    return Effect.as(
      Effect.forEach(groups, ({ members, target }) => {
        const full = Effect.map(tokenizer.countRequest(request, target), (count) => {
          for (const i of members) tokens[i] = count.tokens
        })
        return prefix === undefined ? full : Effect.andThen(
          full,
          Effect.map(tokenizer.countRequest(prefix, target), (count) => {
            for (const i of members) cached![i] = count.tokens
          })
        )
      }, { discard: true }),
      remember(request, tokenizer, { tokens, cached, noPrefix: priced && prefix === undefined })
    )
  }

  /**
   * Plans a request and continues with `next`, or fails with NoEligibleModel.
   * Synchronous (no extra effect step) when no rule needs token counts.
   */
  const withPlan = <A>(
    request: LlmRequest,
    fiber: Fiber.Fiber<unknown, unknown>,
    now: number,
    next: (plan: Plan) => Effect.Effect<A, LlmError>
  ): Effect.Effect<A, LlmError> => {
    const entries = entriesOf(fiber.getRef(Pricing))
    const done = (plan: Plan): Effect.Effect<A, LlmError> =>
      plan.order.length === 0
        ? Effect.andThen(
          publishDecision(fiber, undefined, plan.rejected),
          Effect.fail(new NoEligibleModel({ provider: "router", rejected: plan.rejected }))
        )
        : next(plan)
    if (!needsTokens(request, entries)) return done(planWith(request, entries, undefined, undefined, now))
    return Effect.flatMap(
      count(fiber.getRef(Tokenizer), request),
      ({ cached, tokens }) => done(planWith(request, entries, tokens, cached, now))
    )
  }

  const publishDecision = (
    fiber: Fiber.Fiber<unknown, unknown>,
    chosen: string | undefined,
    skipped: ReadonlyArray<Rejection>
  ): Effect.Effect<void> => {
    const bus = fiber.getRef(Events.LlmEvents)
    // Annotate only a real span of the caller's (a native or OTel one), never build one.
    const span = fiber.cache.span
    const traced = span !== undefined && span._tag === "Span"
    if (!bus.enabled && !traced) return Effect.void
    const why = skipped.map((r) => `${r.name}: ${r.reason}`).join("; ")
    const decision = chosen === undefined
      ? `none eligible${why === "" ? "" : ` (${why})`}`
      : `${chosen}${why === "" ? "" : ` (skipped ${why})`}`
    const annotate = traced
      ? Effect.annotateCurrentSpan({
        "switchboard.route.candidate": chosen ?? "",
        "switchboard.route.strategy": strategy,
        "switchboard.route.decision": decision
      })
      : Effect.void
    if (!bus.enabled || chosen === undefined) return annotate
    return Effect.andThen(
      annotate,
      bus.publish({ _tag: "RouteChosen", strategy, candidate: chosen, skipped: skipped.slice() })
    )
  }

  const recordOutcome = (i: number, error: LlmError | undefined, ms: number, now: number): Effect.Effect<void> => {
    if (error === undefined || isHealthFailure(error)) observe(i, ms, now)
    if (health === undefined) return Effect.void
    if (error !== undefined && !isHealthFailure(error)) return Effect.void
    const moved = health.record(names[i]!, error === undefined ? { ok: true, latencyMs: ms } : {
      ok: false,
      latencyMs: ms,
      error: error._tag
    }, now)
    return moved === undefined ? Effect.void : health.publish(moved)
  }

  const gate = (i: number, request: LlmRequest): Effect.Effect<string | undefined> => {
    const skipWhen = candidates[i]!.skipWhen
    return skipWhen === undefined ? Effect.succeed(undefined) : skipWhen(request)
  }

  const noneLeft = (
    request: LlmRequest,
    failed: ReadonlyArray<Attempt>,
    rejected: ReadonlyArray<Rejection>
  ): Effect.Effect<never, LlmError> =>
    failed.length === 0
      ? Effect.fail(new NoEligibleModel({ provider: "router", rejected: rejected.slice() }))
      : failWith(
        new AllProvidersFailed({ provider: "router", ...(request.model ? { model: request.model } : {}), attempts: failed }),
        failed
      )

  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> =>
    Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      return withPlan(request, fiber, clock.currentTimeMillisUnsafe(), (plan) => {
        const failed: Array<Attempt> = []
        const rejected = plan.rejected
        const tryAt = (k: number): Effect.Effect<LlmResponse, LlmError> => {
          if (k >= plan.order.length) return noneLeft(request, failed, rejected)
          const i = plan.order[k]!
          const call = (): Effect.Effect<LlmResponse, LlmError> => {
            const start = clock.currentTimeMillisUnsafe()
            const decision = publishDecision(fiber, names[i], rejected)
            const body = matchChild(candidates[i]!.service.generate(request), {
                onSuccess: (response) => {
                  const now = clock.currentTimeMillisUnsafe()
                  const recorded = recordOutcome(i, undefined, now - start, now)
                  const out = prepend(response, failed)
                  return recorded === Effect.void ? Effect.succeed(out) : Effect.as(recorded, out)
                },
                onFailure: (error, reported) => {
                  const now = clock.currentTimeMillisUnsafe()
                  const skip = skipReason(error)
                  if (skip !== undefined) {
                    rejected.push({ name: names[i]!, reason: skip })
                    return tryAt(k + 1)
                  }
                  failed.push(...attemptsOfFailure(reported, error, request, now - start))
                  return Effect.andThen(recordOutcome(i, error, now - start, now), () => {
                    if (!fallback || !isFallbackable(error)) return failWith(error, failed)
                    rejected.push({ name: names[i]!, reason: `failed: ${error._tag}` })
                    return tryAt(k + 1)
                  })
                }
              })
            return decision === Effect.void ? body : Effect.andThen(decision, body)
          }
          if (candidates[i]!.skipWhen === undefined) return call()
          return Effect.flatMap(gate(i, request), (reason) => {
            if (reason === undefined) return call()
            rejected.push({ name: names[i]!, reason })
            return tryAt(k + 1)
          })
        }
        return tryAt(0)
      })
    })

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> =>
    Stream.unwrap(Effect.withFiber((fiber) => {
      const clock = fiber.getRef(Clock.Clock)
      return withPlan(request, fiber, clock.currentTimeMillisUnsafe(), (plan) => {
        const failed: Array<Attempt> = []
        const rejected = plan.rejected
        const run = (k: number): Stream.Stream<StreamPart, LlmError> => {
          if (k >= plan.order.length) return Stream.fromEffect(noneLeft(request, failed, rejected))
          const i = plan.order[k]!
          // One channel layer per candidate (`tryStreamWith`): the decision event, the candidate's
          // stream, the first part timed and a finish recorded (per batch, not an effect per part),
          // and on failure (with the attempts behind it) the next candidate or the end.
          const call = (): Stream.Stream<StreamPart, LlmError> =>
            tryStreamWith(() => {
              const start = clock.currentTimeMillisUnsafe()
              let emitted = false
              return {
                stream: candidates[i]!.service.stream(request),
                request,
                before: publishDecision(fiber, names[i], rejected),
                batch: (parts) => {
                  if (emitted && health === undefined) return Effect.succeed(parts)
                  const now = clock.currentTimeMillisUnsafe()
                  if (!emitted) {
                    emitted = true
                    observe(i, now - start, now)
                  }
                  if (health === undefined || !parts.some((part) => part.type === "finish")) return Effect.succeed(parts)
                  const moved = health.record(names[i]!, { ok: true, latencyMs: now - start }, now)
                  return moved === undefined ? Effect.succeed(parts) : Effect.as(health.publish(moved), parts)
                },
                recover: ({ attempts, error }: ChildFailure) =>
                  Stream.unwrap(Effect.suspend(() => {
                    const now = clock.currentTimeMillisUnsafe()
                    if (emitted) {
                      return Effect.as(recordOutcome(i, error, now - start, now), Stream.fail(error))
                    }
                    const skip = skipReason(error)
                    if (skip !== undefined) {
                      rejected.push({ name: names[i]!, reason: skip })
                      return Effect.succeed(run(k + 1))
                    }
                    failed.push(...attempts)
                    return Effect.andThen(recordOutcome(i, error, now - start, now), () => {
                      if (!fallback || !isFallbackable(error)) return failWith(error, failed)
                      rejected.push({ name: names[i]!, reason: `failed: ${error._tag}` })
                      return Effect.succeed(run(k + 1))
                    })
                  }))
              }
            })
          if (candidates[i]!.skipWhen === undefined) return call()
          return Stream.unwrap(Effect.map(gate(i, request), (reason) => {
            if (reason === undefined) return call()
            rejected.push({ name: names[i]!, reason })
            return run(k + 1)
          }))
        }
        return Effect.succeed(run(0))
      })
    }))

  return LLM.of({ generate, stream })
})

const isCandidate = <E, R>(input: CandidateInput<E, R>): input is Candidate<E, R> => !Layer.isLayer(input)

type ErrorOf<C> = C extends Layer.Layer<LLM, infer E, infer _R> ? E : C extends Candidate<infer E, infer _R> ? E : never
type ContextOf<C> = C extends Layer.Layer<LLM, infer _E, infer R> ? R : C extends Candidate<infer _E, infer R> ? R
  : never

/**
 * A router over `candidates` (see the module docs). Options are checked when
 * the layer is built: a bad option, an unknown task candidate, a `leastCost`
 * candidate without a catalog key or a `require` no candidate can meet fails
 * it with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm, Router } from "@switchboard/core"
 *
 * const stack = Router.layer([
 *   { name: "mini", provider: "openai", model: "gpt-4o-mini", layer: Llm.layerTest([{ text: "mini" }]) },
 *   { name: "haiku", provider: "anthropic", model: "claude-haiku-4-5", layer: Llm.layerTest([{ text: "haiku" }]) }
 * ], { strategy: "leastCost" })
 *
 * const program = Llm.generateText("hello").pipe(Effect.provide(stack))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Candidates extends ReadonlyArray<CandidateInput<unknown, unknown>>>(
  candidates: Candidates,
  options: Options
): Layer.Layer<
  LLM,
  ErrorOf<Candidates[number]> | SwitchboardConfigError.SwitchboardConfigError,
  ContextOf<Candidates[number]>
> => {
  const inputs = candidates.map((c: CandidateInput<unknown, unknown>, i): Candidate<unknown, unknown> =>
    isCandidate(c) ? c : { name: `router#${i}`, layer: c }
  )
  return Layer.effect(
    LLM,
    Effect.gen(function*() {
      const built: Array<ServiceCandidate> = []
      for (const { layer, ...rest } of inputs) {
        const context = yield* Layer.build(layer)
        built.push({ ...rest, service: Context.get(context, LLM) })
      }
      return yield* make(built, options)
    })
  ) as Layer.Layer<LLM, ErrorOf<Candidates[number]> | SwitchboardConfigError.SwitchboardConfigError, ContextOf<Candidates[number]>>
}

/**
 * A `skipWhen` that skips a candidate once `budget`'s settled spend for the
 * request's scope reaches `soft × limitUsd` (default: the budget's `softAt`,
 * else 0.8) — the building block of {@link switchAt}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const budgetGate = (budget: Pick<Budget, "state" | "options">, soft?: number | undefined) => {
  const at = soft ?? budget.options.softAt ?? 0.8
  const scopeOf = budget.options.scope
  return (request: LlmRequest): Effect.Effect<string | undefined> =>
    Effect.map(
      budget.state(scopeOf === undefined ? undefined : scopeOf(request)),
      (state) =>
        state.spentUsd >= at * state.limitUsd
          ? `budget ${state.scope} past its soft limit (${formatUsd(state.spentUsd)} of ${formatUsd(state.limitUsd)})`
          : undefined
    )
}

/**
 * `Budget.switchAt` as a route: `primary` until the budget's spend for the
 * request's scope reaches `soft × limitUsd`, then `cheap` (a `priority`
 * router whose primary is gated by {@link budgetGate}, without fallback).
 * Put the budget outside it (`budget.layer(Router.switchAt(...))`) so it
 * still caps the total; each switch is a `RouteChosen` event naming why.
 *
 * @since 0.1.0
 * @category layers
 */
export const switchAt = <E1, R1, E2, R2>(options: {
  readonly budget: Pick<Budget, "state" | "options">
  readonly soft?: number | undefined
  readonly primary: Layer.Layer<LLM, E1, R1>
  readonly cheap: Layer.Layer<LLM, E2, R2>
}): Layer.Layer<LLM, E1 | E2 | SwitchboardConfigError.SwitchboardConfigError, R1 | R2> => {
  const soft = options.soft
  if (soft !== undefined && !(soft >= 0 && soft <= 1)) {
    return Layer.effect(LLM, Effect.fail(configError("Router.switchAt.soft", `must be between 0 and 1, got ${soft}`)))
  }
  return layer([
    { name: "primary", layer: options.primary, skipWhen: budgetGate(options.budget, soft) },
    { name: "cheap", layer: options.cheap }
  ], { strategy: "priority", fallback: false })
}
