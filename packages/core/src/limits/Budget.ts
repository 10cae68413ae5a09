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
 * Which price reserves: `request.model` when set; else the `price` option;
 * else the dearest of `models`; else the unknown-model rule of `Pricing`
 * (deliberately expensive). Set `price` or `models` to the models behind the
 * budget so reservations are realistic.
 *
 * Invariant: spent + reserved ≤ limit, under any concurrency, as long as no
 * call costs more than it reserved (a call through a `Retry` can: reserve
 * for several attempts with `attempts`).
 *
 * Windows roll on the `Clock`: `"day"` is the UTC calendar day, `"month"` the
 * UTC calendar month, a `Duration` fixed windows counted from the first call.
 * Reservations in flight when a window rolls are carried into the new one.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Exit, type Fiber, Layer, Stream } from "effect"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { LLM, observeAttempts, observeAttemptsStream } from "../LLM.ts"
import { BudgetExceeded, type LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { Attempt, LlmResponse, StreamPart } from "../LlmResponse.ts"
import { Pricing, type PricingService } from "../money/Pricing.ts"
import { Tokenizer } from "../prompt/Tokenizer.ts"

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
 * Budget options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The most that may be spent in one window, in USD. */
  readonly limitUsd: number
  /** `"day"` (UTC), `"month"` (UTC) or a fixed `Duration` counted from the first call. */
  readonly window: "day" | "month" | Duration.Input
  /** The budget a request counts against (default: one shared budget, `"global"`). */
  readonly scope?: ((request: LlmRequest) => string) | undefined
  /** Fraction of the limit (e.g. `0.8`) at which `onSoft` runs, once per window and scope. */
  readonly softAt?: number | undefined
  /** Runs once per window when settled spend reaches `softAt × limitUsd`. */
  readonly onSoft?: ((state: State) => Effect.Effect<void>) | undefined
  /** The model that prices a request without `model`. */
  readonly price?: PriceTarget | undefined
  /** The models behind the budget: a request without `model` is priced at the dearest. */
  readonly models?: ReadonlyArray<PriceTarget> | undefined
  /** How many attempts one call may make below the budget (default 1); multiplies the reservation. */
  readonly attempts?: number | undefined
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
}

/**
 * A budget: its layer transformer and its live state, so a caller can look
 * at the spend (and route to a cheaper stack, see {@link switchAt}).
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
  /** Every scope seen so far. */
  readonly states: Effect.Effect<ReadonlyArray<State>>
  readonly options: Options
}

/** One scope's window. Mutated in place, only inside synchronous sections (see {@link makeWith}). */
interface Slot {
  windowStart: number
  windowEnd: number
  spent: number
  reserved: number
  softFired: boolean
}

interface Ledger {
  /** The first call's time, for fixed windows. */
  anchor: number | undefined
  readonly slots: Map<string, Slot>
}

interface Reservation {
  readonly scope: string
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

const globalScope = "global"

const unpriced: ReadonlyArray<PriceTarget> = [{ provider: "", model: "" }]

/**
 * Builds a budget with its own state. Apply it with `.layer`; read it with
 * `.state`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Budget> =>
  Effect.sync(() => makeWith(options, { anchor: undefined, slots: new Map() }))

/**
 * The ledger is one mutable structure. Effect fibers share one JS thread and
 * a fiber only yields between effects, so every read-modify-write of the
 * ledger is done synchronously inside a single effect step (a `withFiber` or
 * `sync` body, never across a `flatMap`): no other fiber can observe or
 * change a slot half-way, which keeps spent + reserved ≤ limit under any
 * concurrency.
 */
const makeWith = (options: Options, ledger: Ledger): Budget => {
  const { limitUsd } = options
  const attempts = Math.max(1, options.attempts ?? 1)
  const softAt = options.softAt
  const scopeOf = options.scope ?? (() => globalScope)
  const fixedTargets: ReadonlyArray<PriceTarget> = options.price !== undefined
    ? [options.price]
    : options.models !== undefined && options.models.length > 0
    ? options.models
    : unpriced

  /** `scope`'s slot, rolled to the window holding `now` (reservations in flight carry over). */
  const rolled = (scope: string, now: number): Slot => {
    const anchor = ledger.anchor ??= now
    const slot = ledger.slots.get(scope)
    if (slot !== undefined && now < slot.windowEnd && now >= slot.windowStart) return slot
    const [windowStart, windowEnd] = windowAt(options.window, now, anchor)
    const next: Slot = { windowStart, windowEnd, spent: 0, reserved: slot?.reserved ?? 0, softFired: false }
    ledger.slots.set(scope, next)
    return next
  }

  const stateOf = (scope: string, slot: Slot): State => ({
    scope,
    spentUsd: slot.spent,
    reservedUsd: slot.reserved,
    limitUsd,
    windowStart: slot.windowStart,
    windowEnd: slot.windowEnd
  })

  const state = (scope: string = globalScope): Effect.Effect<State> =>
    Effect.withFiber((fiber) =>
      Effect.succeed(stateOf(scope, rolled(scope, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())))
    )

  const states = Effect.withFiber((fiber) => {
    const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
    const out: Array<State> = []
    for (const scope of Array.from(ledger.slots.keys())) out.push(stateOf(scope, rolled(scope, now)))
    return Effect.succeed(out as ReadonlyArray<State>)
  })

  /** The worst case of all attempts of `request`, in USD, given its input count for each target. */
  const worstOf = (
    pricing: PricingService,
    request: LlmRequest,
    targets: ReadonlyArray<PriceTarget>,
    inputTokens: (index: number) => number
  ): { readonly requestedUsd: number; readonly target: PriceTarget } => {
    let worst = 0
    let priced = targets[0]!
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index]!
      const maxOutput = request.maxTokens ?? pricing.limits(target.provider, target.model).maxOutput
      const { costUsd } = pricing.worstCase(target.provider, target.model, inputTokens(index), maxOutput)
      if (costUsd >= worst) {
        worst = costUsd
        priced = target
      }
    }
    return { requestedUsd: worst * attempts, target: priced }
  }

  const exceeded = (
    fiber: Fiber.Fiber<unknown, unknown>,
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
    const bus = fiber.getRef(Events.LlmEvents)
    if (!bus.enabled) return Effect.fail(error)
    return Effect.andThen(
      bus.publish({ _tag: "BudgetExceeded", scope, requestedUsd, spentUsd, reservedUsd, limitUsd }),
      Effect.fail(error)
    )
  }

  /** Reserves `requestedUsd` in `scope` if it fits next to what is spent and reserved; all in one step. */
  const take = (
    fiber: Fiber.Fiber<unknown, unknown>,
    scope: string,
    worst: { readonly requestedUsd: number; readonly target: PriceTarget }
  ): Effect.Effect<Reservation, BudgetExceeded> => {
    const { requestedUsd } = worst
    const slot = rolled(scope, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
    // Compare in a form that cannot round a fitting reservation over the limit.
    if (slot.spent + slot.reserved + requestedUsd > limitUsd) {
      return exceeded(fiber, scope, requestedUsd, worst.target, slot.spent, slot.reserved)
    }
    slot.reserved = slot.reserved + requestedUsd
    Telemetry.recordBudgetUnsafe(fiber.context, scope, slot.spent, slot.reserved)
    const reservation: Reservation = { scope, amount: requestedUsd }
    const bus = fiber.getRef(Events.LlmEvents)
    if (!bus.enabled) return Effect.succeed(reservation)
    return Effect.as(
      bus.publish({ _tag: "BudgetReserved", scope, reservedUsd: requestedUsd, spentUsd: slot.spent, limitUsd }),
      reservation
    )
  }

  const reserve = (request: LlmRequest): Effect.Effect<Reservation, BudgetExceeded> =>
    Effect.withFiber((fiber) => {
      const scope = scopeOf(request)
      const pricing = fiber.getRef(Pricing)
      const tokenizer = fiber.getRef(Tokenizer)
      const targets: ReadonlyArray<PriceTarget> = request.model !== undefined
        ? [{ provider: options.price?.provider ?? "", model: request.model }]
        : fixedTargets
      if (targets.length === 1) {
        // The count is usually known already (a rate limit counted it, or the encoding is loaded):
        // then the whole reservation runs in this one step.
        return Effect.flatMap(
          tokenizer.countRequest(request, targets[0]!),
          (input) => take(fiber, scope, worstOf(pricing, request, targets, () => input.tokens))
        )
      }
      return Effect.flatMap(
        Effect.forEach(targets, (target) => tokenizer.countRequest(request, target)),
        (inputs) => take(fiber, scope, worstOf(pricing, request, targets, (index) => inputs[index]!.tokens))
      )
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

  /** Settles a reservation to `costUsd` (0 releases it) and fires the soft limit once per window. */
  const settle = (reservation: Reservation, costUsd: number): Effect.Effect<void> =>
    Effect.withFiber((fiber) => {
      const slot = rolled(reservation.scope, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
      const spent = slot.spent + costUsd
      const crossed = softAt !== undefined && !slot.softFired && costUsd > 0 && spent >= softAt * limitUsd
      slot.spent = spent
      slot.reserved = Math.max(0, slot.reserved - reservation.amount)
      Telemetry.recordBudgetUnsafe(fiber.context, reservation.scope, slot.spent, slot.reserved)
      if (!crossed) return Effect.void
      slot.softFired = true
      return softReached(stateOf(reservation.scope, slot))
    })

  /** What the leaves under one call reported spending. */
  const newTally = () => {
    const tally = {
      costUsd: 0,
      seen: false,
      observe: (attempt: Attempt) => {
        tally.costUsd += attempt.costUsd
        tally.seen = true
      }
    }
    return tally
  }

  const spentBy = (response: LlmResponse): number => {
    let total = 0
    for (const attempt of response.attempts) total += attempt.costUsd
    return response.attempts.length === 0 ? response.costUsd : total
  }

  const spentOnFailure = (error: LlmError): number => {
    if (error._tag !== "AllProvidersFailed") return 0
    let total = 0
    for (const attempt of error.attempts) total += attempt.costUsd
    return total
  }

  const settleExit = (reservation: Reservation, exit: Exit.Exit<LlmResponse, LlmError>) => {
    if (Exit.isSuccess(exit)) return settle(reservation, spentBy(exit.value))
    const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
    return settle(reservation, error === undefined ? 0 : spentOnFailure(error.error))
  }

  const wrap = (inner: LLM["Service"]): LLM["Service"] =>
    LLM.of({
      generate: (request) =>
        Effect.suspend(() => {
          const tally = newTally()
          return Effect.acquireUseRelease(
            reserve(request),
            () => observeAttempts(tally.observe)(inner.generate(request)),
            (reservation, exit) => tally.seen ? settle(reservation, tally.costUsd) : settleExit(reservation, exit)
          )
        }),
      stream: (request) =>
        Stream.suspend(() => {
          const tally = newTally()
          let reservation: Reservation | undefined
          let finish: LlmResponse | undefined
          return Stream.fromEffect(Effect.tap(reserve(request), (r) => Effect.sync(() => (reservation = r)))).pipe(
            Stream.flatMap(() => observeAttemptsStream(tally.observe)(inner.stream(request))),
            Stream.tap((part: StreamPart) => {
              if (part.type === "finish") finish = part.response
              return Effect.void
            }),
            Stream.onExit((exit) => {
              if (reservation === undefined) return Effect.void
              if (tally.seen) return settle(reservation, tally.costUsd)
              if (Exit.isSuccess(exit) && finish !== undefined) return settle(reservation, spentBy(finish))
              const error = Exit.isFailure(exit)
                ? exit.cause.reasons.find((reason) => reason._tag === "Fail")
                : undefined
              // A stream that fails after its finish part still cost what the finish part says.
              const partial = finish !== undefined ? spentBy(finish) : 0
              return settle(reservation, partial + (error === undefined ? 0 : spentOnFailure(error.error)))
            })
          )
        })
    })

  const layer = <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> =>
    Layer.effect(LLM, Effect.map(LLM, wrap)).pipe(Layer.provide(self))

  return { layer, wrap, state, states, options }
}

/**
 * Limits spending through a layer to `limitUsd` per `window` (see the module
 * docs). Each build of the layer has its own budget; use {@link make} to
 * read the state from outside.
 *
 * @example
 * ```ts
 * const stack = OpenAI.model("gpt-4o").pipe(
 *   Budget.layer({ limitUsd: 50, window: "day", scope: (r) => r.metadata?.tenant ?? "anonymous" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> =>
  Layer.unwrap(Effect.map(make(options), (budget) => budget.layer(self)))

/**
 * Routes to `cheap` once the budget's settled spend for the
 * request's scope reaches `soft × limitUsd` (default: the budget's `softAt`,
 * else 0.8), and to `primary` before; both are behind the budget, so it still
 * caps the total.
 *
 * @example
 * ```ts
 * const budget = yield* Budget.make({ limitUsd: 100, window: "month", price: { provider: "openai", model: "gpt-4o" } })
 * const stack = Budget.switchAt({ budget, soft: 0.8, primary: OpenAI.model("gpt-4o"), cheap: OpenAI.model("gpt-4o-mini") })
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
      const pick = (request: LlmRequest) =>
        Effect.map(budget.state(scopeOf(request)), (s) => s.spentUsd >= soft * s.limitUsd ? cheap : primary)
      return LLM.of({
        generate: (request) => Effect.flatMap(pick(request), (llm) => llm.generate(request)),
        stream: (request) => Stream.unwrap(Effect.map(pick(request), (llm) => llm.stream(request)))
      })
    })
  )
  return budget.layer(router)
}
