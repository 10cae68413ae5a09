/**
 * Answers repeated requests from memory. Calls in flight are shared through
 * Effect's `Cache`; settled answers are kept in a least-recently-used map, so
 * a hit is a map read in the caller's step (about a microsecond in process).
 *
 * The key is a SHA-256 of the canonical request: messages, model, system,
 * sampling parameters, stop, seed, tools, tool choice, response format and
 * the tenant (`metadata.tenant`), with object keys in any order. The
 * deadline, `requestId`, `task` and `tags` are not part of it.
 *
 * - `when: "deterministic"` (the default) caches only requests with
 *   `temperature: 0` or a `seed`; `"always"` caches every request.
 * - `cache: false` on a request bypasses the cache both ways.
 * - Identical requests in flight share one provider call (single flight);
 *   failures are never kept.
 * - A hit answers with `cached: true`, `costUsd: 0`, `latencyMs: 0` and
 *   `attempts: []` (no provider was tried), and publishes `CacheHit`.
 *   Callers that join an in-flight call get the same shape: the call is paid
 *   for once, by the caller that started it.
 * - Streams are cached as their parts and replayed part by part. A miss
 *   streams live while it records; only a stream that completes with its
 *   `finish` part is stored. Identical streams in flight share one provider
 *   call too: the call runs in its own fiber and its parts are fanned out to
 *   every caller, each from the first part; a caller that disconnects does
 *   not cancel the others (the call is cancelled when the last one leaves),
 *   and a failure reaches them all. Joiners get the hit shape on their
 *   `finish` part (the starter pays). Whole responses and streams share entries: a
 *   stored stream answers a `generate`, and a stored response is replayed as
 *   a stream (its text as one delta, its tool calls, its finish part).
 *
 * Options are checked when the layer is built: a bad one fails with a
 * `SwitchboardConfigError` naming it (`ResponseCache.capacity: expected an
 * integer ≥ 1, got -1`).
 *
 * @since 0.1.0
 */
import { Array as Arr, Cache, Cause, Clock, Duration, Effect, Exit, Fiber, Function, Layer, Option, Schema, Stream } from "effect"
import * as Streams from "../internal/streams.ts"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { digestOf, memoryKey, requestKey } from "../internal/canonical.ts"
import { Lru } from "../internal/lru.ts"
import { LLM, transform } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse, StreamPart } from "../LlmResponse.ts"
import { millisOf, PositiveInt } from "../state/options.ts"
import { decode, type SwitchboardConfigError } from "../SwitchboardConfigError.ts"

const Ttl = Schema.declare((u: unknown): u is Duration.Input => true).check(
  Schema.makeFilter((u: Duration.Input) => {
    const millis = millisOf(u)
    return millis !== undefined && millis > 0 ? undefined : `expected a duration > 0, got ${typeof u === "string" ? JSON.stringify(u) : String(u)}`
  })
)

/**
 * Response cache options, decoded at build.
 *
 * | option | type | default |
 * |---|---|---|
 * | `capacity` | integer ≥ 1 (entries; least recently used first out) | required |
 * | `ttl` | `Duration` > 0 | required |
 * | `when` | `"deterministic"` \| `"always"` | `"deterministic"` |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  /** Entries kept; the least recently used goes first. */
  capacity: PositiveInt,
  /** How long an entry lives. */
  ttl: Ttl,
  /** `"deterministic"` (default): only `temperature: 0` or seeded requests; `"always"`: every request. */
  when: Schema.optional(Schema.Literals(["deterministic", "always"]))
})

/**
 * Response cache options (the type of {@link Options}).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * A built response cache: wrap services with it (all share its entries).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResponseCache {
  readonly wrap: (inner: LLM["Service"]) => LLM["Service"]
  readonly layer: <E, R>(self: Layer.Layer<LLM, E, R>) => Layer.Layer<LLM, E, R>
  /** Entries held now. */
  readonly size: Effect.Effect<number>
  /** Streams in flight now (each one provider call, whatever the number of callers). */
  readonly streamsInFlight: Effect.Effect<number>
  readonly options: Options
}

/** A settled answer and when it expires (milliseconds, by the `Clock`). */
interface Settled {
  readonly entry: Entry
  readonly expiresAt: number
}

interface Entry {
  readonly response: LlmResponse
  readonly parts: ReadonlyArray<StreamPart> | undefined
  /** The response as a hit returns it, built once. */
  hit: LlmResponse | undefined
  hitParts: ReadonlyArray<StreamPart> | undefined
}

const entryOf = (response: LlmResponse, parts?: ReadonlyArray<StreamPart>): Entry => ({
  response,
  parts,
  hit: undefined,
  hitParts: undefined
})

const asHit = (entry: Entry): LlmResponse =>
  entry.hit ??= { ...entry.response, cached: true, costUsd: 0, latencyMs: 0, attempts: [] }

const hitParts = (entry: Entry): ReadonlyArray<StreamPart> => {
  if (entry.hitParts !== undefined) return entry.hitParts
  const finish: StreamPart = { type: "finish", response: asHit(entry) }
  const recorded = entry.parts
  if (recorded !== undefined) {
    entry.hitParts = recorded.map((part) => part.type === "finish" ? finish : part)
  } else {
    const response = entry.response
    const parts: Array<StreamPart> = []
    if (response.text.length > 0) parts.push({ type: "text-delta", text: response.text })
    for (const call of response.toolCalls) {
      parts.push({ type: "tool-call-delta", id: call.id, name: call.name, inputDelta: JSON.stringify(call.input) })
    }
    parts.push(finish)
    entry.hitParts = parts
  }
  return entry.hitParts
}

/**
 * Whether a request may be answered from the cache under `when`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isCacheable = (request: LlmRequest, when: "deterministic" | "always" = "deterministic"): boolean =>
  request.cache !== false && (when === "always" || request.temperature === 0 || request.seed !== undefined)

/**
 * Caches the answers of a layer (see the module docs). A bad option fails the
 * layer at build with `SwitchboardConfigError`.
 *
 * @example
 * ```ts
 * import { Llm, ResponseCache } from "@switchboard/core"
 *
 * const stack = Llm.layerTest([{ text: "hi" }]).pipe(ResponseCache.layer({ capacity: 10_000, ttl: "1 hour" }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E | SwitchboardConfigError, R> =>
  transform(Effect.map(make(options), (cache) => cache.wrap))(self)

/**
 * Wraps a service with a built cache; data-first or data-last.
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrap: {
  (cache: ResponseCache): (inner: LLM["Service"]) => LLM["Service"]
  (inner: LLM["Service"], cache: ResponseCache): LLM["Service"]
} = Function.dual(2, (inner: LLM["Service"], cache: ResponseCache): LLM["Service"] => cache.wrap(inner))

/** A stream call in flight, shared by every identical caller. */
interface Flight {
  readonly parts: Array<StreamPart>
  exit: Exit.Exit<void, LlmError> | undefined
  waiters: number
  readonly listeners: Set<() => void>
  fiber: Fiber.Fiber<void> | undefined
}

/**
 * Builds a fresh cache (see {@link layer}); fails with
 * `SwitchboardConfigError` naming a bad option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Llm, ResponseCache } from "@switchboard/core"
 *
 * const program = Effect.gen(function*() {
 *   const cache = yield* ResponseCache.make({ capacity: 100, ttl: "10 minutes" })
 *   const test = yield* Llm.makeTest({ provider: "openai", model: "gpt-4o", steps: [{ text: "hi" }] })
 *   return cache.wrap(test.service)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<ResponseCache, SwitchboardConfigError> = Effect.fnUntraced(
  function*(options: Options) {
    const decoded = yield* decode("ResponseCache", Options, options)
    const when = decoded.when ?? "deterministic"
    const ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(decoded.ttl))
    // Settled answers, least recently used first out. A hit is read in the
    // caller's step: no fiber, no `Option`, no effect to run.
    const settled = new Lru<Settled>(decoded.capacity)
    const read = (key: string, now: number): Entry | undefined => {
      const found = settled.get(key)
      if (found === undefined) return undefined
      if (now < found.expiresAt) return found.entry
      settled.delete(key)
      return undefined
    }
    const store = (key: string, entry: Entry, now: number): void =>
      settled.set(key, { entry, expiresAt: now + ttlMillis })
    const storeEffect = (key: string, entry: Entry) =>
      Effect.withFiber((fiber) => {
        store(key, entry, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
        return Effect.void
      })
    // Calls in flight, on Effect's `Cache` (it keeps none once settled): one
    // provider call per key, every identical caller joins it, and it is
    // cancelled when the last caller leaves. Keys are the requests'
    // `memoryKey`s (events name a request by its digest); a miss leaves its request,
    // and the service to send it to, here for the lookup.
    const pending = new Map<string, { readonly request: LlmRequest; readonly inner: LLM["Service"] }>()
    const calls = yield* Cache.makeWith(
      (key: string) =>
        Effect.suspend(() => {
          const miss = pending.get(key)
          if (miss === undefined) return Effect.die(new Error(`ResponseCache: no request for key ${digestOf(key)}`))
          return miss.inner.generate(miss.request).pipe(
            Effect.map((response) => entryOf(response)),
            // Stored before the call settles, so a caller never finds neither.
            Effect.tap((entry) => storeEffect(key, entry)),
            Effect.ensuring(Effect.sync(() => {
              if (pending.get(key) === miss) pending.delete(key)
            }))
          )
        }),
      { capacity: Number.POSITIVE_INFINITY, timeToLive: () => Duration.zero }
    )
    const flights = new Map<string, Flight>()

    const hit = (request: LlmRequest, entry: Entry) =>
      Events.publish(() => ({
        _tag: "CacheHit",
        key: requestKey(request),
        provider: entry.response.provider,
        model: entry.response.model
      }))

    const wrapService = (inner: LLM["Service"]): LLM["Service"] => {
      const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
        if (!isCacheable(request, when)) return inner.generate(request)
        const key = memoryKey(request)
        const answer = (fiber: Fiber.Fiber<unknown, unknown>, entry: Entry) => {
          if (Telemetry.metricsOnFiber(fiber)) Telemetry.recordCacheUnsafe(fiber.context, "hit")
          const response = asHit(entry)
          const bus = fiber.getRef(Events.LlmEvents)
          if (!bus.enabled) return Effect.succeed(response)
          return Effect.as(
            bus.publish({ _tag: "CacheHit", key: requestKey(request), provider: entry.response.provider, model: entry.response.model }),
            response
          )
        }
        return Effect.withFiber((fiber) => {
          const entry = read(key, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
          if (entry !== undefined) return answer(fiber, entry)
          // Not settled: join the identical call in flight, or start it.
          return Effect.flatMap(Cache.getOption(calls, key), (found) => {
            if (Option.isSome(found)) return answer(fiber, found.value)
            const miss = { request, inner }
            pending.set(key, miss)
            return Effect.andThen(Telemetry.recordCache("miss"), Cache.get(calls, key)).pipe(
              Effect.map((entry) => entry.response),
              Effect.ensuring(Effect.sync(() => {
                if (pending.get(key) === miss) pending.delete(key)
              }))
            )
          })
        })
      }

      /** Starts the provider stream for `key` in its own fiber; its parts go to every waiter. */
      const start = (key: string, request: LlmRequest, flight: Flight): Effect.Effect<void> =>
        Effect.asVoid(Effect.tap(
          Effect.forkDetach(
            inner.stream(request).pipe(
              // A batch at a time: the followers wake once per batch the provider hands over, not per part.
              Stream.runForEachArray((parts) =>
                Effect.sync(() => {
                  for (let i = 0; i < parts.length; i++) flight.parts.push(parts[i]!)
                  notify(flight)
                })
              ),
              Effect.onExit((exit) =>
                Effect.suspend(() => {
                  flight.exit = Exit.asVoid(exit)
                  if (flights.get(key) === flight) flights.delete(key)
                  notify(flight)
                  const last = flight.parts[flight.parts.length - 1]
                  return Exit.isSuccess(exit) && last?.type === "finish"
                    ? storeEffect(key, entryOf(last.response, flight.parts))
                    : Effect.void
                })
              ),
              Effect.ignore
            ),
            { startImmediately: true }
          ),
          (fiber) => Effect.sync(() => (flight.fiber = fiber))
        ))

      /** One caller's view of a flight: every part from the first, then the flight's end. */
      const follow = (flight: Flight, joined: boolean): Stream.Stream<StreamPart, LlmError> =>
        Stream.fromPull(Effect.sync(() => {
          let index = 0
          const pull = (): Effect.Effect<Arr.NonEmptyReadonlyArray<StreamPart>, LlmError | Cause.Done> => {
            if (index < flight.parts.length) {
              const chunk = flight.parts.slice(index)
              index = flight.parts.length
              const out = joined ? chunk.map((part) => part.type === "finish" ? joinedFinish(part.response) : part) : chunk
              if (Arr.isReadonlyArrayNonEmpty(out)) return Effect.succeed(out)
            }
            const exit = flight.exit
            if (exit !== undefined) {
              return Exit.isSuccess(exit) ? Cause.done() : Effect.failCause(exit.cause)
            }
            return Effect.flatMap(
              Effect.callback<void>((resume) => {
                const listener = () => resume(Effect.void)
                flight.listeners.add(listener)
                return Effect.sync(() => flight.listeners.delete(listener))
              }),
              pull
            )
          }
          return Effect.suspend(pull)
        }))

      const leave = (key: string, flight: Flight): Effect.Effect<void> =>
        Effect.suspend(() => {
          flight.waiters--
          if (flight.waiters > 0 || flight.exit !== undefined) return Effect.void
          // The last caller left: nobody reads this call any more, so stop paying for it.
          if (flights.get(key) === flight) flights.delete(key)
          return flight.fiber === undefined ? Effect.void : Fiber.interrupt(flight.fiber)
        })

      const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> => {
        if (!isCacheable(request, when)) return inner.stream(request)
        const key = memoryKey(request)
        return Stream.unwrap(Effect.withFiber((fiber) => {
          const found = read(key, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
          if (found !== undefined) {
            return Effect.succeed(Stream.fromEffect(Effect.andThen(Telemetry.recordCache("hit"), hit(request, found))).pipe(
              Stream.drain,
              Stream.concat(Stream.fromIterable(hitParts(found)))
            ))
          }
          return Effect.andThen(Telemetry.recordCache("miss"), Effect.suspend(() => {
            const running = flights.get(key)
            if (running !== undefined) {
              running.waiters++
              return Effect.succeed(follow(running, true).pipe(Streams.onExit(() => leave(key, running))))
            }
            const flight: Flight = { parts: [], exit: undefined, waiters: 1, listeners: new Set(), fiber: undefined }
            flights.set(key, flight)
            return Effect.as(start(key, request, flight), follow(flight, false).pipe(Streams.onExit(() => leave(key, flight))))
          }))
        }))
      }

      return LLM.of({ generate, stream })
    }

    const self: ResponseCache = {
      wrap: wrapService,
      layer: (inner) => transform(wrapService)(inner),
      size: Effect.sync(() => settled.size),
      streamsInFlight: Effect.sync(() => flights.size),
      options: decoded
    }
    return self
  }
)

const notify = (flight: Flight) => {
  if (flight.listeners.size === 0) return
  const listeners = Array.from(flight.listeners)
  flight.listeners.clear()
  for (const listener of listeners) listener()
}

/** The finish part a caller who joined a stream in flight gets: the hit shape (the starter pays). */
const joinedFinish = (response: LlmResponse): StreamPart => ({
  type: "finish",
  response: { ...response, cached: true, costUsd: 0, latencyMs: 0, attempts: [] }
})
