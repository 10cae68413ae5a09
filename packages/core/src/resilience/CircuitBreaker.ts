/**
 * A circuit breaker per provider and model: after enough failures that say
 * "the provider is unwell" it stops calling that provider for a cooldown, and
 * fails fast with `CircuitOpen` instead — so a `Fallback` moves on at once
 * rather than waiting on a dead endpoint.
 *
 * - Closed → Open after `failureThreshold` counting failures (`ServerError`,
 *   `Timeout`, `NetworkError`, `Overloaded`, `MalformedResponse`, and
 *   `RateLimited` from the provider) — consecutive ones when no `window` is
 *   given (a success resets the count), or within the last `window` when it is.
 *   Other errors (`InvalidRequest`, `ContextLengthExceeded`, `ContentFiltered`,
 *   …, and a local limiter's `RateLimited`) do not count.
 * - `AuthenticationFailed` / `PermissionDenied` open it at once until the
 *   breaker is rebuilt (`until: Infinity`): fix the configuration, then
 *   rebuild the layer.
 * - A provider's 429 with `retryAfter` opens it at once for exactly that long.
 * - A `Timeout` does not count when this process was starved during the call
 *   (its event loop blocked for a quarter of the call's time or more, at
 *   least 50 ms: CPU contention, a blocking task): every provider would time
 *   out alike, and opening their circuits would turn a slow process into a
 *   dead one (all calls failing fast, the retries and probes starving it further).
 *   Nor when the call started with less than half of its deadline left
 *   (earlier tries or children took the rest): the provider was not given
 *   the time it is judged on.
 * - Open → HalfOpen once the cooldown is over, taken by the next call. A
 *   half-open circuit admits exactly `halfOpenProbes` concurrent probes; other
 *   calls fail fast. A probe's success closes the circuit; a probe's counting
 *   failure reopens it with a doubled cooldown (capped at `maxCooldown`). A
 *   probe that ends with a non-counting error, or is interrupted, frees its
 *   slot. Closing resets the cooldown growth.
 *
 * Keys are `provider/model` as reported by the responses and errors. Before a
 * route has answered once, its calls are admitted (there is nothing to know
 * yet); after that, a call for the same `request.model` is checked against the
 * key that answered it last.
 *
 * The state lives in a `BreakerStore` (`state/BreakerStore.ts`): by default
 * a private, bounded memory store per breaker (so a rebuilt breaker starts
 * closed), or the store in context (`BreakerStore.layerMemory`, a Redis
 * store) shared by every breaker with the same `name`. A store that fails
 * follows `onStoreError` (`"failOpen"`: admit the call; `"failClosed"`:
 * refuse it) and publishes `StoreDegraded`. A closed circuit on the memory
 * store is checked synchronously, with no store round trip on the hot path.
 * Routers ask {@link isOpen} to skip an open candidate without calling it.
 *
 * Options are checked when the layer is built: a bad one fails it with
 * `SwitchboardConfigError` naming it (`CircuitBreaker.failureThreshold:
 * expected an integer ≥ 1, got 0`).
 *
 * Effect's `effect/persistence` `CircuitBreaker` was not used:
 * it admits a single half-open probe, caps rather than honours `Retry-After`
 * exactly, and has no "open until rebuilt" state, which the rules above need.
 *
 * Order: `Fallback ─> CircuitBreaker ─> Retry ─> provider`. Inside a
 * `Fallback` the breaker lets the chain skip a failing provider immediately;
 * outside `Retry` it counts one failure per exhausted retry series (put it
 * inside `Retry` instead to count every try).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Exit, type Fiber, Layer, PubSub, Schema, Stream } from "effect"
import * as Streams from "../internal/streams.ts"
import * as Deadline from "../Deadline.ts"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { DurationInput, IntAtLeast, millisOf } from "../internal/optionSchemas.ts"
import { LLM, transform } from "../LLM.ts"
import { CircuitOpen, type LlmError, type Timeout } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse } from "../LlmResponse.ts"
import * as BreakerStore from "../state/BreakerStore.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import * as LoopLag from "./internal/loopLag.ts"

/**
 * Breaker options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `failureThreshold` | `5` | counting failures that open the circuit (an integer ≥ 1) |
 * | `window` | none | count failures within this sliding window (else consecutive failures) |
 * | `cooldown` | `"30 seconds"` | how long it stays open the first time |
 * | `halfOpenProbes` | `1` | concurrent probe calls admitted when half-open (an integer ≥ 1) |
 * | `maxCooldown` | `"10 minutes"` | cap on the doubled cooldown after failed probes |
 * | `name` | `"default"` | names this breaker's keys in a shared `BreakerStore` |
 * | `onStoreError` | `"failOpen"` | when the store fails: admit the call (`failOpen`) or refuse it (`failClosed`) |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly failureThreshold?: number | undefined
  readonly window?: Duration.Input | undefined
  readonly cooldown?: Duration.Input | undefined
  readonly halfOpenProbes?: number | undefined
  readonly maxCooldown?: Duration.Input | undefined
  readonly name?: string | undefined
  readonly onStoreError?: "failOpen" | "failClosed" | undefined
}

/**
 * The Schema of {@link Options}, decoded when a breaker is made.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Options = Schema.Struct({
  failureThreshold: Schema.optional(IntAtLeast(1)),
  window: Schema.optional(DurationInput),
  cooldown: Schema.optional(DurationInput),
  halfOpenProbes: Schema.optional(IntAtLeast(1)),
  maxCooldown: Schema.optional(DurationInput),
  name: Schema.optional(Schema.String),
  onStoreError: Schema.optional(Schema.Literals(["failOpen", "failClosed"]))
})

/**
 * The state of one circuit (see `BreakerStore.State`).
 *
 * @since 0.1.0
 * @category models
 */
export type State = BreakerStore.State

/**
 * A change of state of one circuit.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly provider: string
  readonly model: string
  readonly from: "closed" | "open" | "half-open"
  readonly to: "closed" | "open" | "half-open"
  readonly reason: string
  /** When an open circuit admits probes again (epoch ms), for transitions to `open`. */
  readonly until?: number | undefined
}

/**
 * A breaker: wrappers over `LLM` sharing this breaker's state, its state per
 * key, whether a key is open, and a stream of its transitions.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitBreaker {
  /** Guards the calls of an `LLM` layer with this breaker. */
  readonly layer: <E, R>(self: Layer.Layer<LLM, E, R>) => Layer.Layer<LLM, E, R>
  /** Guards an `LLM` service with this breaker. */
  readonly wrap: (inner: LLM["Service"]) => LLM["Service"]
  /** {@link CircuitBreaker.wrap} under its wave-1 name. */
  readonly service: (inner: LLM["Service"]) => LLM["Service"]
  /** The current state of the circuit for `provider` and `model` (an open circuit past its cooldown reads as half-open). */
  readonly state: (provider: string, model: string) => Effect.Effect<State, BreakerStore.BreakerStoreError>
  /** Whether a call for `provider` and `model` would be refused now (open, or half-open with every probe slot taken). */
  readonly isOpen: (provider: string, model: string) => Effect.Effect<boolean>
  /** Transitions from now on (a subscriber that falls behind by more than 1024 loses the oldest). */
  readonly transitions: Stream.Stream<Transition>
}

const counting: ReadonlySet<LlmError["_tag"]> = new Set<LlmError["_tag"]>([
  "ServerError",
  "Timeout",
  "NetworkError",
  "Overloaded",
  "RateLimited",
  "MalformedResponse"
])

const classify = (error: LlmError): BreakerStore.Outcome => {
  if (error._tag === "AuthenticationFailed" || error._tag === "PermissionDenied") {
    return { _tag: "Failure", reason: error._tag, openFor: Infinity }
  }
  if (error._tag === "RateLimited" && error.source === "local") return { _tag: "Ignored" }
  if (error._tag === "RateLimited" && error.retryAfter !== undefined) {
    return { _tag: "Failure", reason: "RateLimited", openFor: Duration.toMillis(error.retryAfter) }
  }
  return counting.has(error._tag) ? { _tag: "Failure", reason: error._tag } : { _tag: "Ignored" }
}

/** When a guarded call started, in real time (for the event-loop lag) and on the `Clock`. */
interface Since {
  readonly real: number
  readonly at: number
  readonly clock: Clock.Clock
  /** The call's deadline when it started (epoch ms), if it had one. */
  readonly deadline: number | undefined
}
const since = (fiber: Fiber.Fiber<unknown, unknown>, now: number): Since => ({
  real: LoopLag.enter(),
  at: now,
  clock: fiber.getRef(Clock.Clock),
  deadline: fiber.getRef(Deadline.CurrentDeadline)
})
// A call that started with less than half of its deadline left (earlier tries and children took
// the rest) did not have the time a provider is judged on: its Timeout is not the provider's.
const shortchanged = (s: Since, error: Timeout): boolean =>
  s.deadline !== undefined && s.deadline - s.at < Duration.toMillis(error.after) / 2
// A call was starved when the event loop was blocked for at least a quarter of its time (and at
// least 50 ms): its Timeout says this process could not keep up, not that the provider is unwell.
// Only on a `Clock` that moves with real time (a `TestClock` does not: nothing to judge there).
// Or when its Timeout came well after the deadline (by 100 ms and a tenth of the time it had): the
// timers of this process fired late, its loop was that far behind.
const starved = (s: Since): boolean => {
  const { blockedMs, elapsedMs } = LoopLag.blockedSince(s.real)
  const now = s.clock.currentTimeMillisUnsafe()
  const clockElapsed = now - s.at
  if (clockElapsed > 2 * elapsedMs + 50) return false
  if (blockedMs >= 50 && blockedMs >= 0.25 * elapsedMs) return true
  return s.deadline !== undefined && now - s.deadline > Math.max(100, 0.1 * (s.deadline - s.at))
}

const label = (state: State): Transition["from"] =>
  state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half-open"

interface Ticket {
  readonly key: string | undefined
  readonly probe: boolean
}

const unrouted: Ticket = { key: undefined, probe: false }
const success: BreakerStore.Outcome = { _tag: "Success" }
const ignored: BreakerStore.Outcome = { _tag: "Ignored" }

/**
 * Makes a breaker after checking `options` (a bad option fails with
 * `SwitchboardConfigError` naming it). Its state is shared by every layer
 * built from its `layer`; use it when you want to read the state, ask
 * {@link isOpen} or watch transitions — otherwise {@link layer} makes a
 * private one.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker, Llm } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({ failureThreshold: 3, cooldown: "10 seconds" })
 *   const Guarded = Llm.layerTest([{ text: "hi" }]).pipe(breaker.layer)
 *   const text = yield* Llm.generateText("hello").pipe(Effect.provide(Guarded))
 *   const state = yield* breaker.state("test", "test-model") // { _tag: "Closed", failures: [] }
 *   return { text, state }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<CircuitBreaker, SwitchboardConfigError.SwitchboardConfigError> =>
  Effect.gen(function*() {
    yield* SwitchboardConfigError.decode("CircuitBreaker", Options, options)
    const cooldownMs = millisOf(options.cooldown ?? "30 seconds")
    const policy: BreakerStore.Policy = {
      failureThreshold: options.failureThreshold ?? 5,
      halfOpenProbes: options.halfOpenProbes ?? 1,
      windowMs: options.window === undefined ? undefined : millisOf(options.window),
      cooldownMs,
      maxCooldownMs: Math.max(cooldownMs, millisOf(options.maxCooldown ?? "10 minutes"))
    }
    const failClosed = options.onStoreError === "failClosed"
    const shared = yield* BreakerStore.BreakerStore
    const store = shared ?? BreakerStore.makeMemory()
    const prefix = shared === undefined ? "" : `${options.name ?? "default"}:`
    const hub = yield* PubSub.sliding<Transition>(1024)
    // Two memos on the hot path, bounded first-in-first-out (a forgotten entry is only
    // re-learned, never wrong): request.model (or "" for the layer's default) → the key that
    // answered it last, and provider → model → key, so a success builds and hashes no new string.
    const routes = new Map<string, string>()
    const keys = new Map<string, Map<string, string>>()
    const remember = <V>(map: Map<string, V>, key: string, value: V, capacity: number) => {
      map.set(key, value)
      if (map.size > capacity) {
        const oldest = map.keys().next()
        if (oldest.done !== true) map.delete(oldest.value)
      }
    }
    const keyOf = (provider: string, model: string | undefined, request: LlmRequest) => {
      const name = model ?? request.model ?? "default"
      let byModel = keys.get(provider)
      if (byModel === undefined) remember(keys, provider, byModel = new Map(), 1024)
      let key = byModel.get(name)
      if (key === undefined) remember(byModel, name, key = `${provider}/${name}`, 1024)
      return key
    }
    // The store's key for a circuit key, built once: a fresh string would be hashed afresh on every lookup.
    const storeKeys = new Map<string, string>()
    const storeKeyOf = (key: string): string => {
      if (prefix === "") return key
      let stored = storeKeys.get(key)
      if (stored === undefined) remember(storeKeys, key, stored = prefix + key, 1024)
      return stored
    }
    const split = (key: string) => {
      const at = key.indexOf("/")
      return { provider: key.slice(0, at), model: key.slice(at + 1) }
    }

    const emit = (key: string, change: BreakerStore.Change | undefined): Effect.Effect<void> => {
      if (change === undefined) return Effect.void
      const { from, reason, to } = change
      const transition: Transition = {
        ...split(key),
        from: label(from),
        to: label(to),
        reason,
        ...(to._tag === "Open" ? { until: to.until } : {})
      }
      return Effect.andThen(
        PubSub.publish(hub, transition),
        Effect.andThen(
          Telemetry.recordBreakerState(transition.provider, transition.model, transition.to),
          Events.publish(() => ({ _tag: "CircuitStateChanged", ...transition }))
        )
      )
    }
    const degraded = (error: BreakerStore.BreakerStoreError) =>
      Events.publish(() => ({
        _tag: "StoreDegraded",
        store: "breaker",
        policy: failClosed ? "failClosed" : "failOpen",
        detail: error.detail
      }))

    const admit = (key: string): Effect.Effect<Ticket, CircuitOpen> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.admit(storeKeyOf(key), now, policy).pipe(
          Effect.matchEffect({
            onFailure: (error): Effect.Effect<BreakerStore.Admission> =>
              Effect.as(degraded(error), failClosed ? { _tag: "Refused", until: now } : { _tag: "Admitted", probe: false }),
            onSuccess: Effect.succeed
          }),
          Effect.flatMap((admission): Effect.Effect<Ticket, CircuitOpen> => {
            if (admission._tag === "Refused") {
              return Effect.fail(new CircuitOpen({ ...split(key), until: admission.until }))
            }
            return Effect.as(emit(key, admission.change), { key, probe: admission.probe })
          })
        ))

    /**
     * The ticket of a call that a quiet closed (or not yet known) circuit admits without a probe slot —
     * nothing to hand back if the call never starts, so settling on exit is enough — or, when the store
     * must admit it, the circuit's key.
     */
    const quietly = (key: string | undefined, now: number): Ticket | string =>
      key === undefined ? unrouted : store.isQuietUnsafe?.(storeKeyOf(key), now) === true ? { key, probe: false } : key

    const record = (
      ticket: Ticket,
      key: string,
      now: number,
      outcome: BreakerStore.Outcome
    ): Effect.Effect<void> | undefined =>
      // the success path of a quiet closed circuit: nothing to change, no store round trip, no effect to run
      outcome._tag === "Success" && !ticket.probe && store.isQuietUnsafe?.(storeKeyOf(key), now) === true
        ? undefined
        : store.record(storeKeyOf(key), now, policy, ticket.probe, outcome).pipe(
          Effect.matchEffect({ onFailure: degraded, onSuccess: (change) => emit(key, change) })
        )

    /** Remembers which key answered `request.model`, returning it. */
    const learn = (request: LlmRequest, provider: string, model: string | undefined): string => {
      const key = keyOf(provider, model, request)
      const route = request.model ?? ""
      if (routes.get(route) !== key) remember(routes, route, key, 10_000)
      return key
    }

    const settleExit = (
      ticket: Ticket,
      request: LlmRequest,
      exit: Exit.Exit<LlmResponse, LlmError>,
      since?: Since | undefined
    ): Effect.Effect<void> => Effect.withFiber((fiber) => settleOn(fiber, ticket, request, exit, since) ?? Effect.void)

    /**
     * {@link settleExit} on the running `fiber`: from a finalizer of the call it settles, no step of its own,
     * and no effect left to run (`undefined`) when the store need not be told.
     */
    const settleOn = (
      fiber: Fiber.Fiber<unknown, unknown>,
      ticket: Ticket,
      request: LlmRequest,
      exit: Exit.Exit<LlmResponse, LlmError>,
      since?: Since | undefined
    ): Effect.Effect<void> | undefined => {
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      if (Exit.isSuccess(exit)) {
        const key = learn(request, exit.value.provider, exit.value.model)
        return record(ticket, ticket.key ?? key, now, success)
      }
      const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
      const error = reason !== undefined && reason._tag === "Fail" ? reason.error : undefined
      if (error === undefined || error._tag === "CircuitOpen") {
        return ticket.key === undefined ? undefined : record(ticket, ticket.key, now, ignored)
      }
      const key = learn(request, error.provider, error.model)
      const outcome = error._tag === "Timeout" && since !== undefined && (starved(since) || shortchanged(since, error))
        ? ignored
        : classify(error)
      return record(ticket, ticket.key ?? key, now, outcome)
    }

    /** A stream that ended without its finish part: nothing learned, a probe slot freed. */
    const settleUnfinished = (ticket: Ticket): Effect.Effect<void> => {
      const key = ticket.key
      return key === undefined
        ? Effect.void
        : Effect.flatMap(Clock.currentTimeMillis, (now) => record(ticket, key, now, ignored) ?? Effect.void)
    }

    const wrap = (inner: LLM["Service"]): LLM["Service"] =>
      LLM.of({
        generate: (request) =>
          Effect.withFiber((fiber) => {
            const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
            const key = routes.get(request.model ?? "")
            const clock = fiber.getRef(Clock.Clock)
            const quiet = quietly(key, now)
            if (typeof quiet !== "string") {
              const at = since(fiber, now)
              return Effect.onExitPrimitive(inner.generate(request), (exit) => {
                LoopLag.exit()
                return settleOn(fiber, quiet, request, exit, at)
              })
            }
            return Effect.acquireUseRelease(
              Effect.map(admit(quiet), (ticket) => ({ ticket, at: since(fiber, clock.currentTimeMillisUnsafe()) })),
              () => inner.generate(request),
              ({ at, ticket }, exit) => {
                LoopLag.exit()
                return settleOn(fiber, ticket, request, exit, at) ?? Effect.void
              }
            )
          }),
        stream: (request) =>
          // One layer that looks for the finish part (no effect per part) and settles at the end; its
          // finalizer is on the run's scope before the admission (a probe slot) is taken.
          Streams.guarded((fiber) => {
            let admitted: { readonly ticket: Ticket; readonly at: Since } | undefined
            let finish: LlmResponse | undefined
            return {
              open: () => {
                const key = routes.get(request.model ?? "")
                const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
                const quiet = quietly(key, now)
                if (typeof quiet !== "string") {
                  admitted = { ticket: quiet, at: since(fiber, now) }
                  return inner.stream(request)
                }
                // Uninterruptible from the store's admission to the ticket kept here, as `generate`'s acquire is.
                return Effect.uninterruptible(Effect.map(admit(quiet), (ticket) => {
                  admitted = { ticket, at: since(fiber, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()) }
                  return inner.stream(request)
                }))
              },
              each: (part) => {
                if (part.type === "finish") finish = part.response
              },
              close: (exit) => {
                if (admitted === undefined) return Effect.void
                LoopLag.exit()
                const { at, ticket } = admitted
                return Exit.isSuccess(exit)
                  ? finish === undefined
                    ? settleUnfinished(ticket)
                    : settleExit(ticket, request, Exit.succeed(finish), at)
                  : settleExit(ticket, request, Exit.failCause(exit.cause), at)
              }
            }
          })
      })

    const state = (provider: string, model: string): Effect.Effect<State, BreakerStore.BreakerStoreError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(store.get(`${prefix}${provider}/${model}`, now), (s): State => {
          if (s._tag === "Open" && now >= s.until) return { _tag: "HalfOpen", probing: 0, openings: s.openings }
          const window = policy.windowMs
          if (s._tag === "Closed" && window !== undefined) {
            return { _tag: "Closed", failures: s.failures.filter((t) => t > now - window) }
          }
          return s
        }))

    const isOpen = (provider: string, model: string): Effect.Effect<boolean> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.get(`${prefix}${provider}/${model}`, now).pipe(
          Effect.map((s) =>
            s._tag === "Open" ? now < s.until : s._tag === "HalfOpen" ? s.probing >= policy.halfOpenProbes : false
          ),
          Effect.catch((error) => Effect.as(degraded(error), failClosed))
        ))

    return {
      wrap,
      service: wrap,
      layer: transform(wrap),
      state,
      isOpen,
      transitions: Stream.fromPubSub(hub)
    }
  })

/**
 * Whether `breaker` would refuse a call for `provider` and `model` now,
 * without calling anything — a `Router` skips such a candidate.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make()
 *   return yield* CircuitBreaker.isOpen(breaker, "openai", "gpt-4o-mini") // false
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const isOpen = (breaker: CircuitBreaker, provider: string, model: string): Effect.Effect<boolean> =>
  breaker.isOpen(provider, model)

/**
 * Guards the calls of the wrapped `LLM` layer with a breaker of its own
 * (fresh state each time the layer is built, unless a shared
 * `BreakerStore` is in context). A bad option fails the layer at build with
 * `SwitchboardConfigError`. Use {@link make} to read state and subscribe to
 * transitions.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, Llm, Retry } from "@switchboard/core"
 *
 * const Stack = Llm.layerTest([{ text: "hi" }]).pipe(
 *   Retry.layer({ times: 2 }),
 *   CircuitBreaker.layer({ failureThreshold: 5, window: "1 minute", cooldown: "30 seconds", halfOpenProbes: 1 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => transform(Effect.map(make(options), (breaker) => breaker.wrap))
