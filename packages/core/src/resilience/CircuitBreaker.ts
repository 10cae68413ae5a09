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
 * The state lives in memory in one map per breaker, each read-modify-write
 * done synchronously so it is atomic across fibers (no I/O, no lock and, for
 * a closed circuit, no clock read on the hot path). Effect's `effect/persistence` `CircuitBreaker` was not used:
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
import { Clock, Duration, Effect, Exit, Layer, PubSub, Stream } from "effect"
import * as Events from "../Events.ts"
import * as LoopLag from "./internal/loopLag.ts"
import { LLM } from "../LLM.ts"
import { CircuitOpen, type LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse, StreamPart } from "../LlmResponse.ts"

/**
 * Breaker options.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `failureThreshold` | `5` | counting failures that open the circuit |
 * | `window` | none | count failures within this sliding window (else consecutive failures) |
 * | `cooldown` | `"30 seconds"` | how long it stays open the first time |
 * | `halfOpenProbes` | `1` | concurrent probe calls admitted when half-open |
 * | `maxCooldown` | `"10 minutes"` | cap on the doubled cooldown after failed probes |
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
}

/**
 * The state of one circuit. `until` is an epoch millisecond (`Infinity` when
 * credentials were rejected); `openings` counts consecutive openings (the
 * cooldown doubles with each).
 *
 * @since 0.1.0
 * @category models
 */
export type State =
  | { readonly _tag: "Closed"; readonly failures: ReadonlyArray<number> }
  | { readonly _tag: "Open"; readonly until: number; readonly openings: number }
  | { readonly _tag: "HalfOpen"; readonly probing: number; readonly openings: number }

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
 * A breaker: a layer transformer over `LLM` sharing this breaker's state, its
 * state per key, and a stream of its transitions.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitBreaker {
  /** Guards the calls of an `LLM` layer with this breaker. */
  readonly layer: <E, R>(self: Layer.Layer<LLM, E, R>) => Layer.Layer<LLM, E, R>
  /** Guards an `LLM` service with this breaker. */
  readonly service: (inner: LLM["Service"]) => LLM["Service"]
  /** The current state of the circuit for `provider` and `model` (an open circuit past its cooldown reads as half-open). */
  readonly state: (provider: string, model: string) => Effect.Effect<State>
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

type Outcome =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Failure"; readonly reason: string; readonly openFor?: number | undefined }
  | { readonly _tag: "Ignored" }

const classify = (error: LlmError): Outcome => {
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
  readonly clock: number
  readonly clockNow: () => number
}
const since = (clockNow: () => number): Since => ({ real: LoopLag.enter(), clock: clockNow(), clockNow })
// A call was starved when the event loop was blocked for at least a quarter of its time (and at
// least 50 ms): its Timeout says this process could not keep up, not that the provider is unwell.
// Only on a `Clock` that moves with real time (a `TestClock` does not: nothing to judge there).
const starved = (s: Since): boolean => {
  const { blockedMs, elapsedMs } = LoopLag.blockedSince(s.real)
  const clockElapsed = s.clockNow() - s.clock
  return blockedMs >= 50 && blockedMs >= 0.25 * elapsedMs && clockElapsed <= 2 * elapsedMs + 50
}

const label = (state: State): Transition["from"] =>
  state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half-open"

interface Ticket {
  readonly key: string | undefined
  readonly probe: boolean
}

const closed: State = { _tag: "Closed", failures: [] }

const positive = (name: string, n: number, integer: boolean): number => {
  if (!Number.isFinite(n) || n < 1 || (integer && !Number.isInteger(n))) {
    throw new RangeError(`CircuitBreaker: option "${name}" must be a positive ${integer ? "integer" : "number"}, got ${n}`)
  }
  return n
}

const millisOption = (name: string, input: Duration.Input | undefined, fallback: Duration.Input): number => {
  const d = Duration.fromInput(input ?? fallback)
  if (d._tag === "None" || Duration.toMillis(d.value) < 0) {
    throw new RangeError(`CircuitBreaker: option "${name}" must be a non-negative duration, got ${String(input)}`)
  }
  return Duration.toMillis(d.value)
}

/**
 * Makes a breaker whose state is shared by every layer built from its
 * `layer`. Use it when you want to read the state or watch transitions;
 * otherwise {@link layer} makes a private one.
 *
 * @example
 * ```ts
 * const breaker = yield* CircuitBreaker.make({ failureThreshold: 3, cooldown: "10 seconds" })
 * const Guarded = OpenAI.model("gpt-4o-mini").pipe(breaker.layer)
 * yield* breaker.state("openai", "gpt-4o-mini") // { _tag: "Closed", failures: [] }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<CircuitBreaker> =>
  Effect.gen(function*() {
    const threshold = positive("failureThreshold", options.failureThreshold ?? 5, true)
    const probes = positive("halfOpenProbes", options.halfOpenProbes ?? 1, true)
    const window = options.window === undefined ? undefined : millisOption("window", options.window, 0)
    const cooldown = millisOption("cooldown", options.cooldown, "30 seconds")
    const maxCooldown = Math.max(cooldown, millisOption("maxCooldown", options.maxCooldown, "10 minutes"))
    // Every read-modify-write of this map runs synchronously (no yield
    // between the read and the write), so it is atomic across fibers.
    const states = new Map<string, State>()
    const hub = yield* PubSub.sliding<Transition>(1024)
    // request.model (or "" for the layer's default) → the key that answered it last
    const routes = new Map<string, string>()
    // provider → model → key, so the success path builds no key string
    const keys = new Map<string, Map<string, string>>()

    const keyOf = (provider: string, model: string | undefined, request: LlmRequest) => {
      const name = model ?? request.model ?? "default"
      let byModel = keys.get(provider)
      if (byModel === undefined) {
        if (keys.size >= 1024) keys.clear()
        keys.set(provider, byModel = new Map())
      }
      let key = byModel.get(name)
      if (key === undefined) {
        if (byModel.size >= 1024) byModel.clear()
        byModel.set(name, key = `${provider}/${name}`)
      }
      return key
    }
    const split = (key: string) => {
      const at = key.indexOf("/")
      return { provider: key.slice(0, at), model: key.slice(at + 1) }
    }

    const emit = (key: string, from: State, to: State, reason: string) =>
      Effect.gen(function*() {
        const where = split(key)
        const transition: Transition = {
          ...where,
          from: label(from),
          to: label(to),
          reason,
          ...(to._tag === "Open" ? { until: to.until } : {})
        }
        yield* PubSub.publish(hub, transition)
        yield* Events.publish(() => ({ _tag: "CircuitStateChanged", ...transition }))
      })

    const unrouted: Ticket = { key: undefined, probe: false }

    const admit = (request: LlmRequest): Effect.Effect<Ticket, CircuitOpen> => {
      const key = routes.get(request.model ?? "")
      if (key === undefined) return Effect.succeed(unrouted)
      return Effect.withFiber((fiber): Effect.Effect<Ticket, CircuitOpen> => {
        const state = states.get(key) ?? closed
        if (state._tag === "Closed") return Effect.succeed({ key, probe: false })
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const refuse = (until: number) => {
          const { provider, model } = split(key)
          return Effect.fail(new CircuitOpen({ provider, model, until }))
        }
        if (state._tag === "Open") {
          if (now < state.until) return refuse(state.until)
          const next: State = { _tag: "HalfOpen", probing: 1, openings: state.openings }
          states.set(key, next)
          return Effect.as(emit(key, state, next, "cooldown over"), { key, probe: true })
        }
        if (state.probing >= probes) return refuse(now)
        states.set(key, { ...state, probing: state.probing + 1 })
        return Effect.succeed({ key, probe: true })
      })
    }

    const openFor = (openings: number) => Math.min(cooldown * 2 ** Math.max(0, openings - 1), maxCooldown)

    const settle = (ticket: Ticket, actual: string | undefined, outcome: Outcome): Effect.Effect<void> => {
      const key = ticket.key ?? actual
      if (key === undefined) return Effect.void
      const state = states.get(key) ?? closed
      // the success path of a closed circuit: nothing to change, no clock to read
      if (outcome._tag === "Success" && state._tag === "Closed" && (state.failures.length === 0 || window !== undefined)) {
        return Effect.void
      }
      return Effect.withFiber((fiber) => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const state = states.get(key) ?? closed
        const set = (next: State, reason: string) => {
          states.set(key, next)
          return emit(key, state, next, reason)
        }
        if (outcome._tag === "Ignored") {
          if (ticket.probe && state._tag === "HalfOpen") {
            states.set(key, { ...state, probing: Math.max(0, state.probing - 1) })
          }
          return Effect.void
        }
        if (outcome._tag === "Success") {
          if (state._tag === "HalfOpen") return set(closed, "probe succeeded")
          if (state._tag === "Closed" && state.failures.length > 0 && window === undefined) states.set(key, closed)
          return Effect.void
        }
        // a counting failure
        const reason = outcome.reason
        if (outcome.openFor !== undefined) {
          const openings = state._tag === "Closed" ? 1 : state.openings + (state._tag === "HalfOpen" ? 1 : 0)
          const until = now + outcome.openFor
          if (state._tag === "Open" && state.until >= until) return Effect.void
          const next: State = { _tag: "Open", until, openings }
          if (state._tag === "Open") {
            states.set(key, next)
            return Effect.void
          }
          return set(next, outcome.openFor === Infinity ? `${reason}: open until rebuilt` : `${reason} with retry-after`)
        }
        switch (state._tag) {
          case "Open":
            return Effect.void
          case "HalfOpen": {
            if (!ticket.probe) return Effect.void
            const openings = state.openings + 1
            return set({ _tag: "Open", until: now + openFor(openings), openings }, `probe failed: ${reason}`)
          }
          case "Closed": {
            const failures = [...(window === undefined ? state.failures : state.failures.filter((t) => t > now - window)), now]
            if (failures.length >= threshold) {
              return set({ _tag: "Open", until: now + openFor(1), openings: 1 }, `${failures.length} failures: ${reason}`)
            }
            states.set(key, { _tag: "Closed", failures })
            return Effect.void
          }
        }
      })
    }

    const learn = (request: LlmRequest, provider: string, model: string | undefined) => {
      const key = keyOf(provider, model, request)
      routes.set(request.model ?? "", key)
      return key
    }

    const settleExit = (
      ticket: Ticket,
      request: LlmRequest,
      exit: Exit.Exit<LlmResponse, LlmError>,
      since?: Since
    ): Effect.Effect<void> => {
      if (Exit.isSuccess(exit)) {
        return settle(ticket, learn(request, exit.value.provider, exit.value.model), { _tag: "Success" })
      }
      const error = exit.cause.reasons.find((r) => r._tag === "Fail")
      if (error === undefined || error._tag !== "Fail") return settle(ticket, undefined, { _tag: "Ignored" })
      const e = error.error
      if (e._tag === "CircuitOpen") return settle(ticket, undefined, { _tag: "Ignored" })
      if (e._tag === "Timeout" && since !== undefined && starved(since)) {
        return settle(ticket, learn(request, e.provider, e.model), { _tag: "Ignored" })
      }
      return settle(ticket, learn(request, e.provider, e.model), classify(e))
    }

    const service = (inner: LLM["Service"]): LLM["Service"] =>
      LLM.of({
        generate: (request) =>
          Effect.withFiber((fiber) => {
            const key = routes.get(request.model ?? "")
            const clock = fiber.getRef(Clock.Clock)
            if (key === undefined || (states.get(key) ?? closed)._tag === "Closed") {
              // A closed (or unknown) circuit admits without a probe slot, so there is
              // nothing to hand back if the call never starts: settling on exit is enough.
              const ticket: Ticket = key === undefined ? unrouted : { key, probe: false }
              const at = since(() => clock.currentTimeMillisUnsafe())
              return Effect.onExit(inner.generate(request), (exit) => {
                LoopLag.exit()
                return settleExit(ticket, request, exit, at)
              })
            }
            return Effect.acquireUseRelease(
              Effect.map(admit(request), (ticket) => ({ ticket, at: since(() => clock.currentTimeMillisUnsafe()) })),
              () => inner.generate(request),
              ({ at, ticket }, exit) => {
                LoopLag.exit()
                return settleExit(ticket, request, exit, at)
              }
            )
          }),
        stream: (request) =>
          Stream.unwrap(Effect.map(admit(request), (ticket) => {
            let finish: LlmResponse | undefined
            let at: Since | undefined
            return Stream.unwrap(Effect.withFiber((fiber) => {
              const clock = fiber.getRef(Clock.Clock)
              at = since(() => clock.currentTimeMillisUnsafe())
              return Effect.succeed(inner.stream(request))
            })).pipe(
              Stream.tap((part: StreamPart) => {
                if (part.type === "finish") finish = part.response
                return Effect.void
              }),
              Stream.onExit((exit) => {
                if (at !== undefined) LoopLag.exit()
                return Exit.isSuccess(exit)
                  ? finish === undefined
                    ? settle(ticket, undefined, { _tag: "Ignored" })
                    : settleExit(ticket, request, Exit.succeed(finish), at)
                  : settleExit(ticket, request, exit as Exit.Exit<never, LlmError>, at)
              })
            )
          }))
      })

    const state = (provider: string, model: string) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const s = states.get(`${provider}/${model}`) ?? closed
        if (s._tag === "Open" && now >= s.until) return { _tag: "HalfOpen", probing: 0, openings: s.openings } as const
        if (s._tag === "Closed" && window !== undefined) {
          return { _tag: "Closed", failures: s.failures.filter((t) => t > now - window) } as const
        }
        return s
      })

    return {
      service,
      layer: <E, R>(self: Layer.Layer<LLM, E, R>) =>
        Layer.effect(LLM, Effect.map(LLM, service)).pipe(Layer.provide(self)),
      state,
      transitions: Stream.fromPubSub(hub)
    }
  })

/**
 * Guards the calls of the wrapped `LLM` layer with a breaker of its own
 * (fresh state each time the layer is built). Use {@link make} to read state
 * and subscribe to transitions.
 *
 * @example
 * ```ts
 * const Stack = OpenAI.model("gpt-4o-mini").pipe(
 *   Retry.layer({ times: 2 }),
 *   CircuitBreaker.layer({ failureThreshold: 5, window: "1 minute", cooldown: "30 seconds", halfOpenProbes: 1 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => {
  // validate eagerly so a bad option fails where it is written
  Effect.runSync(Effect.asVoid(make(options)))
  return <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> =>
    Layer.effect(LLM, Effect.flatMap(make(options), (breaker) => Effect.map(LLM, breaker.service))).pipe(
      Layer.provide(self)
    )
}
