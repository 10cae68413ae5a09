/**
 * Answers repeated requests from memory, on Effect's `Cache`.
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
 *   `finish` part is stored. Whole responses and streams share entries: a
 *   stored stream answers a `generate`, and a stored response is replayed as
 *   a stream (its text as one delta, its tool calls, its finish part).
 *
 * @since 0.1.0
 */
import { Cache, Duration, Effect, Exit, Layer, Option, Stream } from "effect"
import * as Events from "../Events.ts"
import * as Telemetry from "../telemetry/Telemetry.ts"
import { requestKey } from "../internal/canonical.ts"
import { LLM } from "../LLM.ts"
import type { LlmError } from "../LlmError.ts"
import type { LlmRequest } from "../LlmRequest.ts"
import type { LlmResponse, StreamPart } from "../LlmResponse.ts"

/**
 * Response cache options.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Entries kept; the least recently used goes first. */
  readonly capacity: number
  /** How long an entry lives. */
  readonly ttl: Duration.Input
  /** `"deterministic"` (default): only `temperature: 0` or seeded requests; `"always"`: every request. */
  readonly when?: "deterministic" | "always" | undefined
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
 * Caches the answers of a layer (see the module docs).
 *
 * @example
 * ```ts
 * const stack = OpenAI.model("gpt-4o-mini").pipe(ResponseCache.layer({ capacity: 10_000, ttl: "1 hour" }))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options) => <E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<LLM, E, R> =>
  Layer.effect(LLM, Effect.flatMap(LLM, (inner) => make(inner, options))).pipe(Layer.provide(self))

/**
 * Wraps a service with a fresh cache (see {@link layer}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(inner: LLM["Service"], options: Options) {
  const when = options.when ?? "deterministic"
  const ttl = Duration.fromInputUnsafe(options.ttl)
  // Keys are the request digests (string keys are the fast path of Effect's
  // cache); a miss leaves its request here for the lookup to send.
  const pending = new Map<string, LlmRequest>()
  const cache = yield* Cache.makeWith(
    (key: string) =>
      Effect.suspend(() => {
        const request = pending.get(key)
        if (request === undefined) return Effect.die(new Error(`ResponseCache: no request for key ${key}`))
        return inner.generate(request).pipe(
          Effect.map((response) => entryOf(response)),
          Effect.ensuring(Effect.sync(() => {
            if (pending.get(key) === request) pending.delete(key)
          }))
        )
      }),
    {
      capacity: options.capacity,
      timeToLive: (exit: Exit.Exit<Entry, LlmError>) => Exit.isSuccess(exit) ? ttl : Duration.zero
    }
  )

  const hit = (key: string, entry: Entry) =>
    Events.publish(() => ({
      _tag: "CacheHit",
      key,
      provider: entry.response.provider,
      model: entry.response.model
    }))

  const generate = (request: LlmRequest): Effect.Effect<LlmResponse, LlmError> => {
    if (!isCacheable(request, when)) return inner.generate(request)
    const key = requestKey(request)
    return Effect.flatMap(Cache.getOption(cache, key), (found) => {
      if (Option.isSome(found)) {
        const entry = found.value
        return Effect.withFiber((fiber) => {
          Telemetry.recordCacheUnsafe(fiber.context, "hit")
          const response = asHit(entry)
          const bus = fiber.getRef(Events.LlmEvents)
          if (!bus.enabled) return Effect.succeed(response)
          return Effect.as(
            bus.publish({ _tag: "CacheHit", key, provider: entry.response.provider, model: entry.response.model }),
            response
          )
        })
      }
      pending.set(key, request)
      return Effect.andThen(Telemetry.recordCache("miss"), Cache.get(cache, key)).pipe(
        Effect.map((entry) => entry.response),
        Effect.ensuring(Effect.sync(() => {
          if (pending.get(key) === request) pending.delete(key)
        }))
      )
    })
  }

  const stream = (request: LlmRequest): Stream.Stream<StreamPart, LlmError> => {
    if (!isCacheable(request, when)) return inner.stream(request)
    const key = requestKey(request)
    return Stream.unwrap(Effect.map(Cache.getOption(cache, key), (found) => {
      if (Option.isSome(found)) {
        return Stream.fromEffect(Effect.andThen(Telemetry.recordCache("hit"), hit(key, found.value))).pipe(
          Stream.drain,
          Stream.concat(Stream.fromIterable(hitParts(found.value)))
        )
      }
      const recorded: Array<StreamPart> = []
      let finish: LlmResponse | undefined
      return Stream.fromEffect(Telemetry.recordCache("miss")).pipe(Stream.drain, Stream.concat(inner.stream(request))).pipe(
        Stream.tap((part) => {
          recorded.push(part)
          if (part.type === "finish") finish = part.response
          return Effect.void
        }),
        Stream.onExit((exit) =>
          Exit.isSuccess(exit) && finish !== undefined
            ? Cache.set(cache, key, entryOf(finish, recorded))
            : Effect.void
        )
      )
    }))
  }

  return LLM.of({ generate, stream })
})
