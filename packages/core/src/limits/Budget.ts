/**
 * A spending limit in dollars per window, enforced before any provider is
 * called.
 *
 * Each call first reserves its worst case: the counted input tokens at the
 * input (or cache-write, if dearer) price plus `maxTokens` of output at the
 * output price — `maxTokens` defaulting to the model's max output from
 * `Pricing` — times `attempts`. The reservation is made atomically; if it
 * does not fit next to what is already spent and reserved, the call fails
 * with `BudgetExceeded` and no provider is called. After the call the
 * reservation is settled to the real cost: the sum of every attempt the
 * provider leaves under it reported (`Llm.observeAttempts`) — also attempts
 * whose response never came back up, say because a deadline fired after the
 * provider had answered, so money spent is never released as if unspent. What
 * was reserved beyond that is released, on success, failure or interruption.
 * Over a hand-written `LLM` service that reports no attempts, the response's
 * `attempts[].costUsd` (or an `AllProvidersFailed`'s) are charged instead.
 * Streams reserve when they start and settle the same way when they end.
 *
 * With `count: "bound"` the input is not counted but bounded: its UTF-8
 * length (`Tokenizer.boundRequest`; a token is at least one byte), which
 * spares every call the BPE. Only when that bound does not fit is the input
 * counted, and the call reserved (or refused) on the count, so a call is
 * never refused that the exact count would admit; calls in flight hold
 * larger reservations until they settle (up to ~4× the input's cost for
 * English text), and the settled spend is the same.
 *
 * Which price reserves: `request.model` when set; else the `price` option;
 * else the dearest of `models`; else the unknown-model rule of `Pricing`
 * (deliberately expensive). Set `price` or `models` to the models behind the
 * budget so reservations are realistic.
 *
 * Invariant: spent + reserved ≤ limit, under any concurrency, as long as no
 * call costs more than it reserved (a call through a `Retry` can: reserve
 * for several attempts with `attempts`). A call that does cost more — the
 * provider reported usage beyond the worst case — is an overrun: the real
 * cost is recorded (it is what the provider bills) and a `BudgetOverrun`
 * event is published. A gross overrun (more than twice the worst case: a
 * provider reporting usage no request could produce) closes the window at
 * once: every later call in the scope is refused until the window rolls. A
 * small one — the provider counting a few prompt tokens more than the local
 * tokenizer — keeps the window open. Spend never goes down: a negative
 * or non-finite cost is clamped before it is charged.
 *
 * Thinking: a request without `maxTokens` reserves the model's whole
 * `maxOutput`, reasoning included. OpenAI, Anthropic, Gemini and Bedrock
 * count thinking inside `maxTokens`; for a provider that bills thinking on
 * top, set `thinkingTokens` and reasoning-capable models (per the catalog)
 * reserve that much more.
 *
 * State lives in a `BudgetStore`: the one in context when provided (shared
 * by every budget with the same `name`, e.g. on Redis), else a bounded
 * memory store of this budget's own (`maxScopes` scopes, each dropped once
 * idle for a whole window).
 *
 * Windows roll on the `Clock`: `"day"` is the UTC calendar day, `"month"` the
 * UTC calendar month, a `Duration` fixed windows counted from the first call.
 * Reservations in flight when a window rolls are carried into the new one.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Exit, type Fiber, Function, Layer, Option, Schema } from "effect"
import * as Events from "../Events.ts"
import { readyValue } from "../internal/ready.ts"
import * as Streams from "../internal/streams.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { AttemptObservers, choose, LLM, observeAttempts, transform } from "../LLM.ts"
import { BudgetExceeded, type LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse } from "../LlmResponse.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"
import { boundRequest, encodingFor, Tokenizer } from "../prompt/Tokenizer.ts"
import * as BudgetStore from "../state/BudgetStore.ts"
import { fn, Fraction, NonNegativeFinite, NonNegativeInt, PositiveDuration, PositiveInt } from "../state/options.ts"
import { decode, type SwitchboardConfigError } from "../SwitchboardConfigError.ts"

/**
 * A model that prices reservations.
 *
 * @since 0.1.0
 * @category models
 */
export interface PriceTarget {
  readonly provider: string
  readonly model: string
}

/**
 * A budget's state for one scope.
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  readonly scope: string
  readonly spentUsd: number
  readonly reservedUsd: number
  readonly limitUsd: number
  /** Epoch ms of the window's start, and of its end. */
  readonly windowStart: number
  readonly windowEnd: number
  /** True once an overrun closed the window (every call refused until it rolls). */
  readonly closed?: boolean | undefined
}

const PriceTargetSchema = Schema.Struct({ provider: Schema.String, model: Schema.String })

/**
 * Budget options, checked when the budget is built: a bad one fails with a
 * `SwitchboardConfigError` naming it (`Budget.limitUsd: expected a finite
 * number ≥ 0, got NaN`).
 *
 * | option | type | default |
 * |---|---|---|
 * | `limitUsd` | finite number ≥ 0 | required |
 * | `window` | `"day"` \| `"month"` \| finite `Duration` > 0 | required |
 * | `scope` | `(request) => string` | one `"global"` budget |
 * | `softAt` | fraction in (0, 1] | none |
 * | `onSoft` | `(state) => Effect<void>` | none |
 * | `price` / `models` | `{ provider, model }` / array of them | the unknown-model rule |
 * | `attempts` | integer ≥ 1 | 1 |
 * | `thinkingTokens` | integer ≥ 0 | 0 |
 * | `maxTokens` | integer ≥ 1 (output reserved when a request has none) | the model's max output |
 * | `name` | string (the store key prefix) | `"budget"` |
 * | `reservationTtl` | finite `Duration` > 0 | `"1 hour"` |
 * | `maxScopes` | integer ≥ 1 (memory store) | 10,000 |
 * | `onStoreError` | `"failOpen"` \| `"failClosed"` | `"failClosed"` |
 * | `count` | `"exact"` \| `"bound"` | `"exact"` |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  /** The most that may be spent in one window, in USD. */
  limitUsd: NonNegativeFinite,
  /** `"day"` (UTC), `"month"` (UTC) or a fixed `Duration` counted from the first call. */
  window: Schema.Union([Schema.Literals(["day", "month"]), PositiveDuration]),
  /** The budget a request counts against (default: one shared budget, `"global"`). */
  scope: Schema.optional(fn<(request: LlmRequest) => string>()),
  /** Fraction of the limit (e.g. `0.8`) at which `onSoft` runs, once per window and scope. */
  softAt: Schema.optional(Fraction),
  /** Runs once per window when settled spend reaches `softAt × limitUsd`. */
  onSoft: Schema.optional(fn<(state: State) => Effect.Effect<void>>()),
  /** The model that prices a request without `model`. */
  price: Schema.optional(PriceTargetSchema),
  /** The models behind the budget: a request without `model` is priced at the dearest. */
  models: Schema.optional(Schema.Array(PriceTargetSchema)),
  /** How many attempts one call may make below the budget (default 1); multiplies the reservation. */
  attempts: Schema.optional(PositiveInt),
  /** Thinking tokens a reasoning-capable model may bill beyond `maxTokens` (default 0, see the module docs). */
  thinkingTokens: Schema.optional(NonNegativeInt),
  /** Output tokens reserved for a request without `maxTokens` (default: the model's max output from `Pricing`). Set it to the `maxTokens` the models behind fill in, so reservations are realistic. */
  maxTokens: Schema.optional(PositiveInt),
  /** The key prefix in the store: budgets with one name share spend in a shared store (default `"budget"`). */
  name: Schema.optional(Schema.String),
  /** How long a reservation may be held before the store may reclaim it (default 1 hour). */
  reservationTtl: Schema.optional(PositiveDuration),
  /** Scopes the budget's own memory store keeps (default 10,000; least recently used first out). */
  maxScopes: Schema.optional(PositiveInt),
  /** When the store fails: refuse the call (`"failClosed"`, default) or let it through unbudgeted. */
  onStoreError: Schema.optional(Schema.Literals(["failOpen", "failClosed"])),
  /**
   * How the input of the worst case is reckoned: `"exact"` (default) counts it with the tokenizer;
   * `"bound"` takes its UTF-8 length (`Tokenizer.boundRequest`: no BPE on the hot path) and counts
   * only when that bound does not fit.
   */
  count: Schema.optional(Schema.Literals(["exact", "bound"]))
})

/**
 * Budget options (the type of {@link Options}).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * A budget: its wrapper, its layer transformer and its live state, so a
 * caller can look at the spend (and route to a cheaper stack, see
 * {@link switchAt}).
 *
 * @since 0.1.0
 * @category models
 */
export interface Budget {
  readonly layer: <E, R>(self: Layer.Layer<LLM, E, R>) => Layer.Layer<LLM, E, R>
  /** Wraps a service directly. */
  readonly wrap: (inner: LLM["Service"]) => LLM["Service"]
  /** The state of `scope` (default `"global"`), window rolled to now. */
  readonly state: (scope?: string | undefined) => Effect.Effect<State>
  /** Every scope the store holds now. */
  readonly states: Effect.Effect<ReadonlyArray<State>>
  /**
   * Whether the request's scope refuses every call now (its window closed by
   * an overrun, or nothing left of the limit), without counting tokens or
   * reserving: a cheap check a router uses to skip a candidate. `false` does
   * not promise the call fits.
   */
  readonly refusesNow: (request: LlmRequest) => Effect.Effect<boolean>
  readonly options: Options
}

interface Reservation {
  readonly scope: string
  readonly key: string
  /** `undefined` when the store failed and the call went through unbudgeted (`failOpen`). */
  readonly id: string | undefined
  readonly amount: number
}

const dayMillis = 86_400_000

/** The window holding `now`: [start, end). `anchor` is the first call, for fixed windows. */
const windowAt = (window: Options["window"], now: number, anchor: number): readonly [number, number] => {
  if (window === "day") {
    const start = Math.floor(now / dayMillis) * dayMillis
    return [start, start + dayMillis]
  }
  if (window === "month") {
    const date = new Date(now)
    const year = date.getUTCFullYear()
    const month = date.getUTCMonth()
    return [Date.UTC(year, month, 1), Date.UTC(year, month + 1, 1)]
  }
  const length = Math.max(1, Duration.toMillis(Duration.fromInputUnsafe(window)))
  const start = anchor + Math.floor((now - anchor) / length) * length
  return [start, start + length]
}

/** The longest a window of this kind lasts, in ms. */
const windowLength = (window: Options["window"]): number =>
  window === "day" ? dayMillis : window === "month" ? 31 * dayMillis : Duration.toMillis(Duration.fromInputUnsafe(window))

const globalScope = "global"

const unpriced: ReadonlyArray<PriceTarget> = [{ provider: "", model: "" }]

/** A cost as it may be charged: spend never goes down, and never becomes NaN. */
const chargeable = (cost: number): number => Number.isNaN(cost) || cost <= 0 ? 0 : cost

/**
 * Builds a budget with its own state (or on the `BudgetStore` in context).
 * Fails with `SwitchboardConfigError` naming a bad option. Apply it with
 * `.layer` or `.wrap`; read it with `.state`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Budget, Llm } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const budget = yield* Budget.make({ limitUsd: 5, window: "day", price: { provider: "openai", model: "gpt-4o-mini" } })
 *   const stack = budget.layer(Llm.layerTest([{ text: "hi" }]))
 *   yield* Llm.generateText("hello").pipe(Effect.provide(stack))
 *   return yield* budget.state()
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Budget, SwitchboardConfigError> =>
  Effect.flatMap(decode("Budget", Options, options), (decoded) =>
    Effect.map(Effect.serviceOption(BudgetStore.BudgetStore), (provided) =>
      makeWith(
        decoded,
        Option.getOrElse(provided, () =>
          BudgetStore.makeMemory({
            capacity: decoded.maxScopes ?? 10_000,
            idleTtlMs: windowLength(decoded.window)
          }))
      )))

/**
 * Every read-modify-write of a scope's money is one store operation, atomic
 * in the store (the memory store runs it synchronously in one effect step;
 * a Redis store runs one Lua script), which keeps spent + reserved ≤ limit
 * under any concurrency.
 */
const makeWith = (options: Options, store: BudgetStore.BudgetStoreService): Budget => {
  const { limitUsd } = options
  const attempts = options.attempts ?? 1
  const softAtUsd = options.softAt === undefined ? undefined : options.softAt * limitUsd
  const scopeOf = options.scope ?? (() => globalScope)
  const name = options.name ?? "budget"
  const failOpen = options.onStoreError === "failOpen"
  const thinkingTokens = options.thinkingTokens ?? 0
  const defaultMaxTokens = options.maxTokens
  const reservationTtlMs = options.reservationTtl === undefined
    ? 3_600_000
    : Duration.toMillis(Duration.fromInputUnsafe(options.reservationTtl))
  const prefix = `${name}:`
  // The last scope's key kept: one key object for the common case of one scope, so the store's map
  // finds it by its cached hash instead of hashing a fresh string on every call.
  let lastScope: string | undefined
  let lastKey = ""
  const keyOf = (scope: string) => {
    if (scope !== lastScope) {
      lastScope = scope
      lastKey = prefix + scope
    }
    return lastKey
  }
  const fixedTargets: ReadonlyArray<PriceTarget> = options.price !== undefined
    ? [options.price]
    : options.models !== undefined && options.models.length > 0
    ? options.models
    : unpriced
  const memory = BudgetStore.isMemoryStore(store) ? store : undefined
  const bounded = options.count === "bound"
  let anchor: number | undefined
  let nextId = 0

  // The current window and its id, computed once per window rather than per call.
  let current: readonly [number, number] = [0, 0]
  let currentId = "0"
  const windowOf = (now: number): readonly [number, number] => {
    if (now >= current[0] && now < current[1]) return current
    const window = windowAt(options.window, now, anchor ??= now)
    if (now >= window[0] && now < window[1] && window[0] >= current[1]) {
      current = window
      currentId = String(window[0])
    }
    return window
  }
  const windowIdOf = (window: readonly [number, number]): string =>
    window === current ? currentId : String(window[0])

  const toState = (scope: string, window: readonly [number, number], s: BudgetStore.WindowState): State => ({
    scope,
    spentUsd: s.spentUsd,
    reservedUsd: s.reservedUsd,
    limitUsd,
    windowStart: window[0],
    windowEnd: window[1],
    ...(s.closed ? { closed: true } : {})
  })

  const degraded = (error: BudgetStore.BudgetStoreError) =>
    Events.publish(() => ({
      _tag: "StoreDegraded",
      store: "budget",
      policy: failOpen ? "failOpen" : "failClosed",
      detail: error.message
    }))

  /** What a failed read reports: nothing spent (`failOpen`) or the limit spent (`failClosed`). */
  const unknownState: BudgetStore.WindowState = failOpen
    ? { spentUsd: 0, reservedUsd: 0, closed: false }
    : { spentUsd: limitUsd, reservedUsd: 0, closed: false }

  const readAt = (scope: string, now: number): Effect.Effect<State> => {
    const window = windowOf(now)
    return store.read({ key: keyOf(scope), windowId: windowIdOf(window), now }).pipe(
      Effect.catch((error) => Effect.as(degraded(error), unknownState)),
      Effect.map((s) => toState(scope, window, s))
    )
  }

  const state = (scope: string = globalScope): Effect.Effect<State> => {
    // The budget's own memory store answers in one step.
    if (memory !== undefined) {
      return Effect.withFiberSucceed((fiber) => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const window = windowOf(now)
        return toState(scope, window, memory.readSync({ key: keyOf(scope), windowId: windowIdOf(window), now }))
      })
    }
    return Effect.flatMap(Clock.currentTimeMillis, (now) => readAt(scope, now))
  }

  const states = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    store.keys(now).pipe(
      Effect.catch((error) => Effect.as(degraded(error), [] as ReadonlyArray<string>)),
      Effect.flatMap((keys) =>
        Effect.forEach(
          keys.filter((key) => key.startsWith(prefix)),
          (key) => readAt(key.slice(prefix.length), now)
        )
      )
    ))

  const refusesNow = (request: LlmRequest): Effect.Effect<boolean> =>
    Effect.map(state(scopeOf(request)), (s) => s.closed === true || s.spentUsd + s.reservedUsd >= limitUsd)

  /**
   * What the worst case of one target is made of: `Pricing.worstCase` is linear in the input
   * and output counts, so its USD per input token and per output token, the model's output
   * limit, and whether thinking tokens add to the output.
   */
  interface Rates {
    readonly perInput: number
    readonly perOutput: number
    readonly maxOutput: number
    readonly thinks: boolean
  }
  const ratesOf = (pricing: PricingService, target: PriceTarget): Rates => ({
    perInput: pricing.worstCase(target.provider, target.model, 1, 0).costUsd,
    perOutput: pricing.worstCase(target.provider, target.model, 0, 1).costUsd,
    maxOutput: pricing.limits(target.provider, target.model).maxOutput,
    thinks: thinkingTokens > 0 && pricing.lookup(target.provider, target.model)?.capabilities.reasoning === true
  })
  // Rates for the last pricing seen (one per program, in practice): the fixed targets', and those of
  // the models requests named (a request's own model is priced alone), up to 1,000 of them.
  let ratedBy: PricingService | undefined
  let fixedRates: ReadonlyArray<Rates> = []
  const modelRates = new Map<string, ReadonlyArray<Rates>>()
  const ratesFor = (pricing: PricingService, targets: ReadonlyArray<PriceTarget>): ReadonlyArray<Rates> => {
    if (pricing !== ratedBy) {
      fixedRates = fixedTargets.map((target) => ratesOf(pricing, target))
      modelRates.clear()
      ratedBy = pricing
    }
    if (targets === fixedTargets) return fixedRates
    const target = targets[0]!
    let rates = modelRates.get(target.model)
    if (rates === undefined) {
      if (modelRates.size >= 1_000) modelRates.clear()
      modelRates.set(target.model, rates = [ratesOf(pricing, target)])
    }
    return rates
  }

  /** The worst case of all attempts of `request`, in USD, given its input count for each target. */
  const worstOf = (
    pricing: PricingService,
    request: LlmRequest,
    targets: ReadonlyArray<PriceTarget>,
    inputTokens: (index: number) => number
  ): { readonly requestedUsd: number; readonly target: PriceTarget } => {
    const rates = ratesFor(pricing, targets)
    let worst = 0
    let priced = targets[0]!
    for (let index = 0; index < targets.length; index++) {
      const rate = rates[index]!
      let maxOutput = request.maxTokens ?? defaultMaxTokens ?? rate.maxOutput
      if (rate.thinks) maxOutput += thinkingTokens
      const costUsd = inputTokens(index) * rate.perInput + maxOutput * rate.perOutput
      if (costUsd >= worst) {
        worst = costUsd
        priced = targets[index]!
      }
    }
    return { requestedUsd: worst * attempts, target: priced }
  }

  const exceeded = (
    scope: string,
    requestedUsd: number,
    target: PriceTarget,
    spentUsd: number,
    reservedUsd: number
  ): Effect.Effect<never, BudgetExceeded> => {
    const error = new BudgetExceeded({
      provider: target.provider === "" ? "switchboard" : target.provider,
      ...(target.model === "" ? {} : { model: target.model }),
      scope,
      limitUsd,
      spentUsd,
      reservedUsd,
      requestedUsd
    })
    return Effect.andThen(
      Events.publish(() => ({ _tag: "BudgetExceeded", scope, requestedUsd, spentUsd, reservedUsd, limitUsd })),
      Effect.fail(error)
    )
  }

  /**
   * What a reserve answered, as the call's outcome: a reservation, or (when
   * it did not fit) `orElse` — the exact count after a bound — else
   * `BudgetExceeded`.
   */
  const reserved = (
    fiber: Fiber.Fiber<unknown, unknown>,
    scope: string,
    key: string,
    id: string,
    worst: { readonly requestedUsd: number; readonly target: PriceTarget },
    result: BudgetStore.ReserveResult,
    orElse: (() => Effect.Effect<Reservation, BudgetExceeded>) | undefined
  ): Effect.Effect<Reservation, BudgetExceeded> => {
    const { requestedUsd } = worst
    if (Telemetry.metricsOnFiber(fiber)) {
      Telemetry.recordBudgetUnsafe(fiber.context, scope, result.state.spentUsd, result.state.reservedUsd)
    }
    if (!result.reserved) {
      if (orElse !== undefined) return orElse()
      return exceeded(scope, requestedUsd, worst.target, result.state.spentUsd, result.state.reservedUsd)
    }
    const reservation: Reservation = { scope, key, id, amount: requestedUsd }
    const bus = fiber.getRef(Events.LlmEvents)
    if (!bus.enabled) return Effect.succeed(reservation)
    return Effect.as(
      bus.publish({ _tag: "BudgetReserved", scope, reservedUsd: requestedUsd, spentUsd: result.state.spentUsd, limitUsd }),
      reservation
    )
  }

  /** Who a request is priced as: its own model, else the budget's `price` or `models`. */
  const targetsOf = (request: LlmRequest): ReadonlyArray<PriceTarget> =>
    request.model !== undefined ? [{ provider: options.price?.provider ?? "", model: request.model }] : fixedTargets

  /**
   * The input bound of `request` for each of `targets` ({@link Tokenizer.boundRequest}): the
   * same for every target priced alike, so computed at most once for exact and once for
   * estimated encodings.
   */
  const boundsOf = (request: LlmRequest, targets: ReadonlyArray<PriceTarget>): (index: number) => number => {
    let exact: number | undefined
    let estimated: number | undefined
    return (index) => {
      const target = targets[index]!
      return encodingFor(target) === undefined
        ? estimated ??= boundRequest(request, target).tokens
        : exact ??= boundRequest(request, target).tokens
    }
  }

  /** The store operation that reserves `amountUsd` in `scope` now, under a fresh reservation id. */
  const reserveInput = (fiber: Fiber.Fiber<unknown, unknown>, scope: string, amountUsd: number): BudgetStore.ReserveInput => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    return {
      key: keyOf(scope),
      windowId: windowIdOf(windowOf(now)),
      reservationId: String(nextId++),
      amountUsd,
      limitUsd,
      expiresAt: now + reservationTtlMs,
      now
    }
  }

  /**
   * Reserves `worst` in `scope` if it fits next to what is spent and reserved (one store
   * operation); when it does not, `orElse` if given, else `BudgetExceeded`.
   */
  const take = (
    scope: string,
    worst: { readonly requestedUsd: number; readonly target: PriceTarget },
    orElse?: () => Effect.Effect<Reservation, BudgetExceeded>
  ): Effect.Effect<Reservation, BudgetExceeded> =>
    Effect.withFiber((fiber) => {
      const input = reserveInput(fiber, scope, worst.requestedUsd)
      const { key, reservationId: id } = input
      // The budget's own memory store answers in this same step (no store effects on the hot path).
      if (memory !== undefined) return reserved(fiber, scope, key, id, worst, memory.reserveSync(input), orElse)
      return Effect.matchEffect(store.reserve(input), {
        onFailure: (error) =>
          Effect.andThen(
            degraded(error),
            failOpen
              ? Effect.succeed<Reservation>({ scope, key, id: undefined, amount: 0 })
              : exceeded(scope, worst.requestedUsd, worst.target, 0, 0)
          ),
        onSuccess: (result) => reserved(fiber, scope, key, id, worst, result, orElse)
      })
    })

  const reserve = (request: LlmRequest): Effect.Effect<Reservation, BudgetExceeded> =>
    Effect.withFiber((fiber) => {
      const scope = scopeOf(request)
      const pricing = fiber.getRef(Pricing)
      const tokenizer = fiber.getRef(Tokenizer)
      const targets = targetsOf(request)
      const counted = (): Effect.Effect<Reservation, BudgetExceeded> => {
        if (targets.length === 1) {
          return Effect.flatMap(
            tokenizer.countRequest(request, targets[0]!),
            (input) => take(scope, worstOf(pricing, request, targets, () => input.tokens))
          )
        }
        return Effect.flatMap(
          Effect.forEach(targets, (target) => tokenizer.countRequest(request, target)),
          (inputs) => take(scope, worstOf(pricing, request, targets, (index) => inputs[index]!.tokens))
        )
      }
      return bounded ? take(scope, worstOf(pricing, request, targets, boundsOf(request, targets)), counted) : counted()
    })

  const softReached = (crossed: State): Effect.Effect<void> =>
    Effect.andThen(
      Events.publish(() => ({
        _tag: "BudgetSoftLimitReached",
        scope: crossed.scope,
        spentUsd: crossed.spentUsd,
        limitUsd
      })),
      options.onSoft === undefined ? Effect.void : Effect.ignore(options.onSoft(crossed))
    )

  /** Publishes what a settle found: an overrun, the soft limit crossed. */
  const settled = (
    reservation: Reservation,
    window: readonly [number, number],
    result: BudgetStore.SettleResult
  ): Effect.Effect<void> | undefined => {
    if (!result.overrun && !result.softCrossed) return undefined
    const overrun = result.overrun
      ? Events.publish(() => ({
        _tag: "BudgetOverrun",
        scope: reservation.scope,
        reservedUsd: result.heldUsd,
        actualUsd: result.chargedUsd,
        spentUsd: result.state.spentUsd,
        limitUsd
      }))
      : Effect.void
    if (!result.softCrossed) return overrun
    return Effect.andThen(overrun, softReached(toState(reservation.scope, window, result.state)))
  }

  /**
   * Settles a reservation to `costUsd` (0 releases it): an overrun is
   * recorded as billed, published, and closes the window; the soft limit
   * fires once per window.
   */
  const settle = (reservation: Reservation, costUsd: number): Effect.Effect<void> =>
    Effect.withFiber((fiber) => settleOn(fiber, reservation, costUsd) ?? Effect.void)

  /**
   * {@link settle} on the running `fiber`, for a finalizer of the call it
   * settles: the memory store settles here and then, with nothing to publish,
   * there is no effect left to run (`undefined`).
   */
  const settleOn = (
    fiber: Fiber.Fiber<unknown, unknown>,
    reservation: Reservation,
    costUsd: number
  ): Effect.Effect<void> | undefined => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    const window = windowOf(now)
    const input: BudgetStore.SettleInput = {
      key: reservation.key,
      windowId: windowIdOf(window),
      reservationId: reservation.id ?? "",
      costUsd: chargeable(costUsd),
      softAtUsd,
      now
    }
    if (memory !== undefined) {
      const result = memory.settleSync(input)
      recordSettled(fiber, reservation, result)
      return settled(reservation, window, result)
    }
    return Effect.matchEffect(store.settle(input), {
      onFailure: degraded,
      onSuccess: (result) => {
        recordSettled(fiber, reservation, result)
        return settled(reservation, window, result) ?? Effect.void
      }
    })
  }

  /** The budget's gauges after a settle, when metrics are on. */
  const recordSettled = (
    fiber: Fiber.Fiber<unknown, unknown>,
    reservation: Reservation,
    result: BudgetStore.SettleResult
  ): void => {
    if (!Telemetry.metricsOnFiber(fiber)) return
    Telemetry.recordBudgetUnsafe(fiber.context, reservation.scope, result.state.spentUsd, result.state.reservedUsd)
  }

  /** What the leaves under one call reported spending (each attempt clamped: never a credit). */
  const newTally = () => {
    const tally = {
      costUsd: 0,
      seen: false,
      observe: (attempt: Attempt) => {
        tally.costUsd += chargeable(attempt.costUsd)
        tally.seen = true
      }
    }
    return tally
  }

  const spentBy = (response: LlmResponse): number => {
    let total = 0
    for (const attempt of response.attempts) total += chargeable(attempt.costUsd)
    return response.attempts.length === 0 ? chargeable(response.costUsd) : total
  }

  const spentOnFailure = (error: LlmError): number => {
    if (error._tag !== "AllProvidersFailed") return 0
    let total = 0
    for (const attempt of error.attempts) total += chargeable(attempt.costUsd)
    return total
  }

  /** What a call's exit spent, when no attempt reported its cost (see {@link newTally}). */
  const spentByExit = (exit: Exit.Exit<LlmResponse, LlmError>): number => {
    if (Exit.isSuccess(exit)) return spentBy(exit.value)
    const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    return error === undefined ? 0 : spentOnFailure(error.error)
  }

  /** Reserves `amountUsd` in `scope` in the memory store now: the reservation, or the store's refusal. */
  const takeSync = (
    fiber: Fiber.Fiber<unknown, unknown>,
    memory: BudgetStore.MemoryStore,
    scope: string,
    amountUsd: number
  ): Reservation | BudgetStore.ReserveResult => {
    const input = reserveInput(fiber, scope, amountUsd)
    const result = memory.reserveSync(input)
    if (Telemetry.metricsOnFiber(fiber)) {
      Telemetry.recordBudgetUnsafe(fiber.context, scope, result.state.spentUsd, result.state.reservedUsd)
    }
    return result.reserved ? { scope, key: input.key, id: input.reservationId, amount: amountUsd } : result
  }

  /**
   * The reservation taken in this very step when nothing in it needs to wait
   * (the memory store, the tokenizer loaded, no event subscriber): a
   * reservation, the refusal, or `undefined` when {@link reserve} must run.
   */
  const reserveNow = (
    fiber: Fiber.Fiber<unknown, unknown>,
    request: LlmRequest
  ): Reservation | Effect.Effect<never, BudgetExceeded> | undefined => {
    if (memory === undefined || fiber.getRef(Events.LlmEvents).enabled) return undefined
    const targets = targetsOf(request)
    const pricing = fiber.getRef(Pricing)
    const scope = scopeOf(request)
    if (bounded) {
      const bound = worstOf(pricing, request, targets, boundsOf(request, targets))
      const taken = takeSync(fiber, memory, scope, bound.requestedUsd)
      if (!("reserved" in taken)) return taken
      // The bound does not fit: the exact count decides, as without `count: "bound"`.
    }
    const tokenizer = fiber.getRef(Tokenizer)
    const tokens: Array<number> = []
    for (const target of targets) {
      const count = readyValue(tokenizer.countRequest(request, target))
      if (count === undefined) return undefined
      tokens.push(count.tokens)
    }
    const worst = worstOf(pricing, request, targets, (index) => tokens[index]!)
    const taken = takeSync(fiber, memory, scope, worst.requestedUsd)
    if (!("reserved" in taken)) return taken
    return exceeded(scope, worst.requestedUsd, worst.target, taken.state.spentUsd, taken.state.reservedUsd)
  }

  const wrap = (inner: LLM["Service"]): LLM["Service"] =>
    LLM.of({
      generate: (request) =>
        Effect.withFiber((fiber) => {
          const tally = newTally()
          const now = reserveNow(fiber, request)
          if (now === undefined) {
            return Effect.acquireUseRelease(
              reserve(request),
              () => observeAttempts(tally.observe)(inner.generate(request)),
              (reservation, exit) => settle(reservation, tally.seen ? tally.costUsd : spentByExit(exit))
            )
          }
          if (Effect.isEffect(now)) return now
          // Reserved in this same step, so nothing can interrupt between the reservation and
          // the finalizer that settles it: no `acquireUseRelease` needed. The tally joins the
          // call's observers here too, and the same finalizer takes it off (`observeAttempts`
          // written out: one finalizer instead of two, no effect of its own). The finalizer settles
          // on this fiber and, with nothing to publish, leaves no effect to run after it.
          const context = fiber.context
          fiber.setContext(Context.add(context, AttemptObservers, [...fiber.getRef(AttemptObservers), tally.observe]))
          return Effect.onExitPrimitive(inner.generate(request), (exit) => {
            fiber.setContext(context)
            return settleOn(fiber, now, tally.seen ? tally.costUsd : spentByExit(exit))
          })
        }),
      stream: (request) =>
        // One layer: the settling finalizer is on the run's scope before the reservation is taken.
        Streams.guarded((fiber) => {
          const tally = newTally()
          let reservation: Reservation | undefined
          let finish: LlmResponse | undefined
          const parts = inner.stream(request)
          const run = (taken: Reservation) => {
            reservation = taken
            return parts
          }
          return {
            open: () => {
              // Reserved in this step when the store can answer at once, as `generate` does.
              const now = reserveNow(fiber, request)
              // Uninterruptible from the store's reservation to the one kept here, as `generate`'s acquire is.
              if (now === undefined) return Effect.uninterruptible(Effect.map(reserve(request), run))
              return Effect.isEffect(now) ? now : run(now)
            },
            // The inner stream's attempts are tallied here as they settle.
            service: { key: AttemptObservers, value: [...fiber.getRef(AttemptObservers), tally.observe] },
            each: (part) => {
              if (part.type === "finish") finish = part.response
            },
            close: (exit) => {
              if (reservation === undefined) return Effect.void
              if (tally.seen) return settle(reservation, tally.costUsd)
              if (Exit.isSuccess(exit) && finish !== undefined) return settle(reservation, spentBy(finish))
              const error = Exit.isFailure(exit)
                ? exit.cause.reasons.find((reason) => reason._tag === "Fail")
                : undefined
              // A stream that fails after its finish part still cost what the finish part says.
              const partial = finish !== undefined ? spentBy(finish) : 0
              return settle(reservation, partial + (error === undefined ? 0 : spentOnFailure(error.error)))
            }
          }
        })
    })

  const layer = <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> => transform(wrap)(self)

  return { layer, wrap, state, states, refusesNow, options }
}

/**
 * Wraps a service with a built budget; data-first or data-last.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Budget, Llm } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const test = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "hi" }] })
 *   const budget = yield* Budget.make({ limitUsd: 1, window: "day" })
 *   const llm = Budget.wrap(test.service, budget)
 *   return yield* llm.generate({ messages: [{ role: "user", content: "q" }], maxTokens: 10 })
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap: {
  (budget: Budget): (inner: LLM["Service"]) => LLM["Service"]
  (inner: LLM["Service"], budget: Budget): LLM["Service"]
} = Function.dual(2, (inner: LLM["Service"], budget: Budget): LLM["Service"] => budget.wrap(inner))

/**
 * Limits spending through a layer to `limitUsd` per `window` (see the module
 * docs). Each build of the layer has its own budget; use {@link make} to
 * read the state from outside. A bad option fails the layer at build with
 * `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Budget, Llm } from "@switchboard/core"
 *
 * const stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   Budget.layer({ limitUsd: 50, window: "day", scope: (r) => r.metadata?.tenant ?? "anonymous" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | SwitchboardConfigError, R> =>
  transform(Effect.map(make(options), (budget) => budget.wrap))(self)

/**
 * Routes to `cheap` once the budget's settled spend for the
 * request's scope reaches `soft × limitUsd` (default: the budget's `softAt`,
 * else 0.8), and to `primary` before; both are behind the budget, so it still
 * caps the total.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Budget, Llm } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const budget = yield* Budget.make({ limitUsd: 100, window: "month", price: { provider: "openai", model: "gpt-4o" } })
 *   return Budget.switchAt({ budget, soft: 0.8, primary: Llm.layerTest([{ text: "a" }]), cheap: Llm.layerTest([{ text: "b" }]) })
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const switchAt = <E1, R1, E2, R2>(options: {
  readonly budget: Budget
  readonly soft?: number | undefined
  readonly primary: Layer.Layer<LLM, E1, R1>
  readonly cheap: Layer.Layer<LLM, E2, R2>
}): Layer.Layer<LLM, E1 | E2, R1 | R2> => {
  const { budget } = options
  const soft = options.soft ?? budget.options.softAt ?? 0.8
  const scopeOf = budget.options.scope ?? (() => globalScope)
  const router = Layer.effect(
    LLM,
    Effect.gen(function*() {
      const primary = Context.get(yield* Layer.build(options.primary), LLM)
      const cheap = Context.get(yield* Layer.build(options.cheap), LLM)
      return choose((request) =>
        Effect.map(budget.state(scopeOf(request)), (s) => s.spentUsd >= soft * s.limitUsd ? cheap : primary)
      )
    })
  )
  return budget.layer(router)
}
