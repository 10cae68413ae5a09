/**
 * Where circuit breakers keep their state: a store service, so the state of a
 * breaker can live in this process (the bounded memory store here) or be
 * shared by many processes (a Redis store in `@switchboard/redis`).
 *
 * Every operation is an `Effect` with a typed {@link BreakerStoreError}, and
 * takes the time (`now`, epoch ms, read from the `Clock` by the caller) and
 * the breaker's {@link Policy}, so a store holds only data and can run the
 * transition in one round trip (a Lua script on Redis). The state machine
 * itself is the pure {@link admitState} / {@link recordState} pair, which
 * every store implementation shares.
 *
 * The memory store is bounded two ways by `state/BoundedMap.ts`: at most
 * `capacity` keys (least recently used evicted first, default 10,000) and a
 * key untouched for `idleTtl` is dropped (default 1 hour). A closed circuit
 * without recent failures is not stored at all, so only troubled routes take
 * room; an evicted or expired key reads as closed. A lockout (rejected
 * credentials, open until rebuilt) is exempt from idle expiry and bounded by
 * `capacity` alone. A million distinct keys never hold more than `capacity`
 * entries of each kind.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Schema } from "effect"
import * as BoundedMap from "./BoundedMap.ts"

/**
 * The state of one circuit. `until` is an epoch millisecond (`Infinity` when
 * credentials were rejected); `openings` counts consecutive openings (the
 * cooldown doubles with each); `failures` are the times of counted failures.
 *
 * @since 0.1.0
 * @category models
 */
export type State =
  | { readonly _tag: "Closed"; readonly failures: ReadonlyArray<number> }
  | { readonly _tag: "Open"; readonly until: number; readonly openings: number }
  | { readonly _tag: "HalfOpen"; readonly probing: number; readonly openings: number }

/**
 * The rules of one breaker, in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Policy {
  readonly failureThreshold: number
  /** Sliding window for counting failures; `undefined`: consecutive failures. */
  readonly windowMs: number | undefined
  readonly cooldownMs: number
  readonly maxCooldownMs: number
  readonly halfOpenProbes: number
}

/**
 * What a finished call means to a circuit. `openFor` opens it at once for
 * that long (`Infinity`: until rebuilt).
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome =
  | { readonly _tag: "Success" }
  | { readonly _tag: "Failure"; readonly reason: string; readonly openFor?: number | undefined }
  | { readonly _tag: "Ignored" }

/**
 * A change of state, as the store made it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Change {
  readonly from: State
  readonly to: State
  readonly reason: string
}

/**
 * The answer to {@link BreakerStoreService.admit}: run the call (as a probe
 * of a half-open circuit or not), or refuse it until `until`.
 *
 * @since 0.1.0
 * @category models
 */
export type Admission =
  | { readonly _tag: "Admitted"; readonly probe: boolean; readonly change?: Change | undefined }
  | { readonly _tag: "Refused"; readonly until: number }

/**
 * A store that could not be read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class BreakerStoreError extends Schema.TaggedError<BreakerStoreError>()("BreakerStoreError", {
  detail: Schema.String
}) {}

/**
 * The store service.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerStoreService {
  /** Asks to run a call on `key` at `now`; may move an open circuit past its cooldown to half-open. */
  readonly admit: (key: string, now: number, policy: Policy) => Effect.Effect<Admission, BreakerStoreError>
  /** Records a finished call's outcome; returns the change it made, if any. */
  readonly record: (
    key: string,
    now: number,
    policy: Policy,
    probe: boolean,
    outcome: Outcome
  ) => Effect.Effect<Change | undefined, BreakerStoreError>
  /** The stored state of `key` (closed when absent), without changing it. */
  readonly get: (key: string, now: number) => Effect.Effect<State, BreakerStoreError>
  /**
   * Memory stores only: whether `key` is closed with nothing to record on a
   * success, read synchronously (the breaker's hot path skips the store).
   */
  readonly isQuietUnsafe?: ((key: string, now: number) => boolean) | undefined
  /** Keys held now (memory stores), for tests and metrics. */
  readonly size?: ((now: number) => number) | undefined
}

/**
 * The breaker store in context. When none is given (the default) every
 * breaker keeps a private {@link makeMemory} store, so a rebuilt breaker
 * starts closed; provide one ({@link layerMemory}, or a Redis store) to
 * share state between breakers built from the same `name`.
 *
 * @since 0.1.0
 * @category services
 */
export const BreakerStore = Context.Reference<BreakerStoreService | undefined>(
  "@switchboard/core/state/BreakerStore",
  { defaultValue: () => undefined }
)

/**
 * A closed circuit without failures.
 *
 * @since 0.1.0
 * @category constants
 */
export const closed: State = { _tag: "Closed", failures: [] }

const openFor = (policy: Policy, openings: number) =>
  Math.min(policy.cooldownMs * 2 ** Math.max(0, openings - 1), policy.maxCooldownMs)

/**
 * The admission rule: closed admits; open refuses until its cooldown is over
 * and then becomes half-open with this call as its first probe; half-open
 * admits up to `halfOpenProbes` concurrent probes.
 *
 * @since 0.1.0
 * @category state machine
 */
export const admitState = (
  state: State,
  now: number,
  policy: Policy
): { readonly admission: Admission; readonly next: State } => {
  switch (state._tag) {
    case "Closed":
      return { admission: { _tag: "Admitted", probe: false }, next: state }
    case "Open": {
      if (now < state.until) return { admission: { _tag: "Refused", until: state.until }, next: state }
      const next: State = { _tag: "HalfOpen", probing: 1, openings: state.openings }
      return { admission: { _tag: "Admitted", probe: true, change: { from: state, to: next, reason: "cooldown over" } }, next }
    }
    case "HalfOpen": {
      if (state.probing >= policy.halfOpenProbes) return { admission: { _tag: "Refused", until: now }, next: state }
      return { admission: { _tag: "Admitted", probe: true }, next: { ...state, probing: state.probing + 1 } }
    }
  }
}

/**
 * The recording rule: a success of a probe closes; counting failures open
 * a closed circuit at `failureThreshold` (consecutive, or within the
 * window); a probe's counting failure reopens with a doubled cooldown capped
 * at `maxCooldown`; an outcome with `openFor` opens at once for that long; a
 * probe that ended with a non-counting outcome frees its slot.
 *
 * @since 0.1.0
 * @category state machine
 */
export const recordState = (
  state: State,
  now: number,
  policy: Policy,
  probe: boolean,
  outcome: Outcome
): { readonly next: State; readonly change: Change | undefined } => {
  const stay = { next: state, change: undefined }
  const move = (next: State, reason: string) => ({ next, change: { from: state, to: next, reason } })
  if (outcome._tag === "Ignored") {
    if (probe && state._tag === "HalfOpen") {
      return { next: { ...state, probing: Math.max(0, state.probing - 1) }, change: undefined }
    }
    return stay
  }
  if (outcome._tag === "Success") {
    if (state._tag === "HalfOpen") return move(closed, "probe succeeded")
    if (state._tag === "Closed" && state.failures.length > 0 && policy.windowMs === undefined) {
      return { next: closed, change: undefined }
    }
    return stay
  }
  const reason = outcome.reason
  if (outcome.openFor !== undefined) {
    const openings = state._tag === "Closed" ? 1 : state.openings + (state._tag === "HalfOpen" ? 1 : 0)
    const until = now + outcome.openFor
    if (state._tag === "Open" && state.until >= until) return stay
    const next: State = { _tag: "Open", until, openings }
    if (state._tag === "Open") return { next, change: undefined }
    return move(next, outcome.openFor === Infinity ? `${reason}: open until rebuilt` : `${reason} with retry-after`)
  }
  switch (state._tag) {
    case "Open":
      return stay
    case "HalfOpen": {
      if (!probe) return stay
      const openings = state.openings + 1
      return move({ _tag: "Open", until: now + openFor(policy, openings), openings }, `probe failed: ${reason}`)
    }
    case "Closed": {
      const window = policy.windowMs
      const failures = [...(window === undefined ? state.failures : state.failures.filter((t) => t > now - window)), now]
      if (failures.length >= policy.failureThreshold) {
        return move({ _tag: "Open", until: now + openFor(policy, 1), openings: 1 }, `${failures.length} failures: ${reason}`)
      }
      return { next: { _tag: "Closed", failures }, change: undefined }
    }
  }
}

/**
 * Bounds of the memory store.
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `capacity` | `10_000` | most keys held; the least recently used is evicted first |
 * | `idleTtl` | `"1 hour"` | a key untouched this long is dropped (reads as closed) |
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  readonly capacity?: number | undefined
  readonly idleTtl?: Duration.Input | undefined
}

/**
 * A bounded in-memory store (see the module docs). Every operation runs
 * synchronously, so each read-modify-write is atomic across fibers.
 *
 * @example
 * ```ts
 * import { BreakerStore } from "@switchboard/core"
 *
 * const store = BreakerStore.makeMemory({ capacity: 1000, idleTtl: "10 minutes" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options: MemoryOptions = {}): BreakerStoreService => {
  const states = BoundedMap.make<State>({
    capacity: options.capacity ?? 10_000,
    idleTtlMs: Duration.toMillis(Duration.fromInputUnsafe(options.idleTtl ?? "1 hour"))
  })
  // Lockouts (`until: Infinity`, rejected credentials) last until the store is rebuilt: they are kept
  // apart from idle expiry, bounded by capacity alone.
  const locked = BoundedMap.make<State>({ capacity: options.capacity ?? 10_000 })
  const read = (key: string, now: number): State | undefined => locked.get(key, now) ?? states.get(key, now)
  // A closed circuit with no failures is the absence of an entry.
  const put = (key: string, next: State, now: number) => {
    if (next._tag === "Open" && next.until === Number.POSITIVE_INFINITY) {
      states.delete(key)
      locked.set(key, next, now)
    } else if (next._tag === "Closed" && next.failures.length === 0) states.delete(key)
    else states.set(key, next, now)
  }
  return {
    admit: (key, now, policy) =>
      Effect.sync(() => {
        const state = read(key, now) ?? closed
        const { admission, next } = admitState(state, now, policy)
        if (next !== state) put(key, next, now)
        return admission
      }),
    record: (key, now, policy, probe, outcome) =>
      Effect.sync(() => {
        const state = read(key, now) ?? closed
        const { change, next } = recordState(state, now, policy, probe, outcome)
        if (next !== state) put(key, next, now)
        return change
      }),
    get: (key, now) => Effect.sync(() => read(key, now) ?? closed),
    // No entry: closed without failures; nothing to admit or record on a success.
    isQuietUnsafe: (key, now) => read(key, now) === undefined,
    size: (now) => states.size(now) + locked.size(now)
  }
}

/**
 * Provides one shared memory store to every breaker built under it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options: MemoryOptions = {}): Layer.Layer<never> =>
  Layer.effect(BreakerStore, Effect.sync(() => makeMemory(options)))
