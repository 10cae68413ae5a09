/**
 * The health of routed candidates: `healthy`, `degraded` or `down`, judged
 * from what really happened to them (passive) and, optionally, from probes
 * sent every `interval` (active). A `Router` in the scope of a monitor
 * registers its candidates, reports every call's outcome and skips `down`
 * candidates without calling them.
 *
 * Passive health: the outcomes of the last `window` (default 60 s). With at
 * least `minCalls` (default 5) of them, an error rate ≥ `downAt` (default
 * 0.5) is `down`, ≥ `degradedAt` (default 0.2) is `degraded`, and so is a
 * mean success latency above `slowMs` (when set). Fewer calls than
 * `minCalls` is `healthy`: so a `down` candidate comes back on its own once
 * its failures age out of the window, and is tried again. Only failures that
 * say something about the provider count (server errors, overload, rate
 * limits from the provider, timeouts, network errors, malformed answers,
 * rejected credentials or quota); a bad request, a content filter, a context
 * overflow or a local refusal (open breaker, local limit, budget) does not.
 *
 * Active probes (`probe`): `"models"` runs each candidate's `probe` effect
 * (give it the provider's `listModels`, free on every provider);
 * `"generate"` sends a one-token request through the candidate (opt-in: it
 * costs money). A probe's outcome counts like a call's, and a successful
 * probe brings a `down` candidate straight back to `healthy`.
 *
 * Every change is a `HealthChanged` event (on `LlmEvents`) and an element of
 * {@link changes}; {@link snapshot} reads the current state.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, PubSub, Schema, Stream } from "effect"
import * as Events from "../Events.ts"
import type { LLM } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import * as SwitchboardConfigError from "../SwitchboardConfigError.ts"
import { DurationInput, Fraction, PositiveInt } from "./internal/schemas.ts"

/**
 * A candidate's health.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "healthy" | "degraded" | "down"

/**
 * What the monitor knows about one candidate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Health {
  readonly name: string
  readonly status: Status
  /** Why it has that status (the reason of its last change). */
  readonly reason: string
  /** Outcomes in the window. */
  readonly calls: number
  readonly errorRate: number
  /** Mean latency of the window's successes, in ms (0 when none). */
  readonly latencyMs: number
}

/**
 * One observed outcome: a call (or probe) that succeeded, or failed with an
 * error tag.
 *
 * @since 0.1.0
 * @category models
 */
export interface Outcome {
  readonly ok: boolean
  readonly latencyMs: number
  /** The error's tag, for a failure. */
  readonly error?: string | undefined
}

/**
 * What a router hands the monitor about a candidate, for active probes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Probes {
  /** A cheap health check (a provider's `listModels`); used by `probe: "models"`. */
  readonly probe?: Effect.Effect<unknown, LlmError> | undefined
  /** The candidate itself; used by `probe: "generate"`. */
  readonly service?: LLM["Service"] | undefined
}

/**
 * HealthMonitor options (durations accept `Duration.Input`).
 *
 * | option | default | meaning |
 * |---|---|---|
 * | `interval` | — | how often the window is re-judged and probes run |
 * | `probe` | none | `"models"` or `"generate"` active probes |
 * | `window` | `"60 seconds"` | how far back outcomes count |
 * | `minCalls` | 5 | outcomes needed before a candidate can be judged degraded or down |
 * | `degradedAt` | 0.2 | error rate at which it is `degraded` |
 * | `downAt` | 0.5 | error rate at which it is `down` |
 * | `slowMs` | none | mean success latency above which it is `degraded` |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  interval: DurationInput,
  probe: Schema.optional(Schema.Literals(["models", "generate"])),
  window: Schema.optional(DurationInput),
  minCalls: Schema.optional(PositiveInt),
  degradedAt: Schema.optional(Fraction),
  downAt: Schema.optional(Fraction),
  slowMs: Schema.optional(Schema.Finite.check(Schema.isGreaterThan(0)))
})
/** @since 0.1.0 @category models */
export type Options = typeof Options.Type

/**
 * The monitor service.
 *
 * @since 0.1.0
 * @category services
 */
export class HealthMonitor extends Context.Service<HealthMonitor, {
  /** Registers a candidate (idempotent), with what active probes use. */
  readonly register: (name: string, probes?: Probes | undefined) => void
  /** Records an outcome at `now` (epoch ms); returns the change it caused, if any. */
  readonly record: (name: string, outcome: Outcome, now: number) => Events.HealthChanged | undefined
  /** The status of a candidate at `now`, with expired outcomes aged out; unknown names are `healthy`. */
  readonly status: (name: string, now: number) => Status
  /** Publishes a change to {@link changes} and to `LlmEvents`. */
  readonly publish: (change: Events.HealthChanged) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<ReadonlyArray<Health>>
  readonly changes: Stream.Stream<Events.HealthChanged>
}>()("@switchboard/core/HealthMonitor") {}

const countsAgainst: ReadonlySet<string> = new Set([
  "RateLimited",
  "Overloaded",
  "ServerError",
  "Timeout",
  "NetworkError",
  "MalformedResponse",
  "AuthenticationFailed",
  "PermissionDenied",
  "QuotaExhausted",
  "ModelNotFound",
  "AllProvidersFailed"
])

/**
 * Whether an error says something about the provider's health (see the
 * module docs). A local rate limiter's refusal does not.
 *
 * @since 0.1.0
 * @category guards
 */
export const isHealthFailure = (error: LlmError): boolean =>
  countsAgainst.has(error._tag) && !(error._tag === "RateLimited" && error.source === "local")

interface Entry {
  readonly at: number
  readonly ok: boolean
  readonly latencyMs: number
}

interface Track {
  readonly name: string
  /** Outcomes in time order; those before `head` have left the window. */
  entries: Array<Entry>
  head: number
  /** Running totals over entries[head..], so judging a call is O(1) amortised. */
  failures: number
  oks: number
  okLatency: number
  status: Status
  reason: string
  probes: Probes
}

const maxEntries = 2048

/**
 * Builds a monitor; with `interval`, a scoped fiber re-judges every
 * candidate and runs probes on that period.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options) {
  const decoded = yield* SwitchboardConfigError.decode("HealthMonitor", Options, options)
  const windowMs = Duration.toMillis(Duration.fromInputUnsafe(decoded.window ?? "60 seconds"))
  const interval = Duration.fromInputUnsafe(decoded.interval)
  const minCalls = decoded.minCalls ?? 5
  const degradedAt = decoded.degradedAt ?? 0.2
  const downAt = decoded.downAt ?? 0.5
  if (degradedAt > downAt) {
    return yield* new SwitchboardConfigError.SwitchboardConfigError({
      path: "HealthMonitor.degradedAt",
      message: `must not exceed downAt (${downAt}), got ${degradedAt}`
    })
  }
  const slowMs = decoded.slowMs
  const bus = yield* Events.LlmEvents
  const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<Events.HealthChanged>(), PubSub.shutdown)
  const tracks = new Map<string, Track>()
  const trackOf = (name: string): Track => {
    let track = tracks.get(name)
    if (track === undefined) {
      track = {
        name,
        entries: [],
        head: 0,
        failures: 0,
        oks: 0,
        okLatency: 0,
        status: "healthy",
        reason: "no calls yet",
        probes: {}
      }
      tracks.set(name, track)
    }
    return track
  }
  const push = (track: Track, entry: Entry) => {
    track.entries.push(entry)
    if (entry.ok) {
      track.oks++
      track.okLatency += entry.latencyMs
    } else track.failures++
    if (track.entries.length - track.head > maxEntries) drop(track)
  }
  const drop = (track: Track) => {
    const entry = track.entries[track.head++]!
    if (entry.ok) {
      track.oks--
      track.okLatency -= entry.latencyMs
    } else track.failures--
  }
  const clear = (track: Track) => {
    track.entries = []
    track.head = 0
    track.failures = 0
    track.oks = 0
    track.okLatency = 0
  }
  const measure = (track: Track, now: number) => {
    const from = now - windowMs
    while (track.head < track.entries.length && track.entries[track.head]!.at < from) drop(track)
    if (track.head > 1024 && track.head * 2 > track.entries.length) {
      track.entries = track.entries.slice(track.head)
      track.head = 0
    }
    const calls = track.entries.length - track.head
    return {
      calls,
      errorRate: calls === 0 ? 0 : track.failures / calls,
      latencyMs: track.oks === 0 ? 0 : track.okLatency / track.oks
    }
  }
  const judge = (track: Track, now: number): Events.HealthChanged | undefined => {
    const { calls, errorRate, latencyMs } = measure(track, now)
    let status: Status = "healthy"
    let reason = calls < minCalls ? `${calls} calls in the window (fewer than ${minCalls})` : "error rate and latency normal"
    if (calls >= minCalls) {
      const rate = `${Math.round(errorRate * 100)}% errors over ${calls} calls`
      if (errorRate >= downAt) {
        status = "down"
        reason = rate
      } else if (errorRate >= degradedAt) {
        status = "degraded"
        reason = rate
      } else if (slowMs !== undefined && latencyMs > slowMs) {
        status = "degraded"
        reason = `mean latency ${Math.round(latencyMs)} ms over ${slowMs} ms`
      }
    }
    return change(track, status, reason)
  }
  const change = (track: Track, status: Status, reason: string): Events.HealthChanged | undefined => {
    const from = track.status
    // The reason explains the last change; re-judging the same status keeps it.
    if (from === status) return undefined
    track.reason = reason
    track.status = status
    return { _tag: "HealthChanged", name: track.name, from, to: status, reason }
  }
  const publish = (event: Events.HealthChanged): Effect.Effect<void> =>
    Effect.andThen(
      PubSub.publish(pubsub, event),
      Effect.withFiber((fiber) => {
        const local = fiber.getRef(Events.LlmEvents)
        return local.enabled ? local.publish(event) : bus.enabled ? bus.publish(event) : Effect.void
      })
    )
  const record = (name: string, outcome: Outcome, now: number): Events.HealthChanged | undefined => {
    const track = trackOf(name)
    push(track, { at: now, ok: outcome.ok, latencyMs: outcome.latencyMs })
    return judge(track, now)
  }
  const pending: Array<Events.HealthChanged> = []
  const status = (name: string, now: number): Status => {
    const track = tracks.get(name)
    if (track === undefined) return "healthy"
    if (track.status !== "healthy") {
      // Outcomes age out even when no call comes: a down candidate recovers on time.
      const moved = judge(track, now)
      if (moved !== undefined) pending.push(moved)
    }
    return track.status
  }
  const flush = Effect.suspend(() =>
    pending.length === 0 ? Effect.void : Effect.forEach(pending.splice(0), publish, { discard: true })
  )
  const register = (name: string, probes?: Probes | undefined) => {
    const track = trackOf(name)
    if (probes !== undefined) track.probes = probes
  }
  const probeOnce = (track: Track): Effect.Effect<void> => {
    const check: Effect.Effect<unknown, LlmError> | undefined = decoded.probe === "models"
      ? track.probes.probe
      : decoded.probe === "generate" && track.probes.service !== undefined
      ? track.probes.service.generate({ messages: [{ role: "user", content: "ping" }], maxTokens: 1 })
      : undefined
    if (check === undefined) return Effect.void
    return Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(check)
      const now = yield* Clock.currentTimeMillis
      let moved: Events.HealthChanged | undefined
      if (exit._tag === "Success") {
        if (track.status === "down") {
          clear(track)
          moved = change(track, "healthy", "probe succeeded")
        }
        push(track, { at: now, ok: true, latencyMs: now - start })
      } else {
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
        if (failure === undefined || isHealthFailure(failure.error)) {
          moved = record(track.name, { ok: false, latencyMs: now - start }, now)
        }
      }
      if (moved !== undefined) yield* publish(moved)
    })
  }
  const tick = Effect.gen(function*() {
    yield* flush
    const now = yield* Clock.currentTimeMillis
    for (const track of tracks.values()) {
      const moved = judge(track, now)
      if (moved !== undefined) yield* publish(moved)
    }
    if (decoded.probe !== undefined) {
      yield* Effect.forEach([...tracks.values()], probeOnce, { concurrency: "unbounded", discard: true })
    }
  })
  yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), tick)))
  const snapshot = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* flush
    const out: Array<Health> = []
    for (const track of tracks.values()) {
      const moved = judge(track, now)
      if (moved !== undefined) yield* publish(moved)
      const { calls, errorRate, latencyMs } = measure(track, now)
      out.push({ name: track.name, status: track.status, reason: track.reason, calls, errorRate, latencyMs })
    }
    return out
  })
  return HealthMonitor.of({
    register,
    record,
    status,
    publish: (event) => Effect.andThen(flush, publish(event)),
    snapshot,
    changes: Stream.fromPubSub(pubsub)
  })
})

/**
 * A health monitor for the routers built in its scope.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { HealthMonitor, Llm, Router } from "@switchboard/core"
 *
 * const stack = Router.layer([Llm.layerTest([{ text: "a" }]), Llm.layerTest([{ text: "b" }])], {
 *   strategy: "priority"
 * }).pipe(Layer.provide(HealthMonitor.layer({ interval: "10 seconds" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<HealthMonitor, SwitchboardConfigError.SwitchboardConfigError> =>
  Layer.effect(HealthMonitor, make(options))

/**
 * The current health of every candidate the monitor knows.
 *
 * @since 0.1.0
 * @category accessors
 */
export const snapshot: Effect.Effect<ReadonlyArray<Health>, never, HealthMonitor> = HealthMonitor.use((m) =>
  m.snapshot
)

/**
 * Every health change from now on.
 *
 * @since 0.1.0
 * @category accessors
 */
export const changes: Stream.Stream<Events.HealthChanged, never, HealthMonitor> = Stream.unwrap(
  HealthMonitor.useSync((m) => m.changes)
)
