/**
 * A response cache shared by every instance: Effect's `PersistedCache` on
 * Redis (`Persistence` over the `Redis` service), entries checked by a Schema.
 *
 * - The key is a SHA-256 of the canonical request (messages, model, system,
 *   sampling, stop, seed, tools, tool choice, response format, tenant), so no
 *   Redis key holds a prompt. Requests are cached under the same rule as
 *   core's `ResponseCache` (`when: "deterministic"`: `temperature: 0` or a
 *   seed; `cache: false` bypasses).
 * - An entry is `{ response, parts? }` (`LlmResponse` without `raw`; a
 *   stream is stored as its parts), kept `ttl`; an entry whose JSON is larger
 *   than `maxEntryBytes` is not stored. Failures are never stored.
 * - Single flight: in one instance through `PersistedCache`'s in-memory
 *   cache; across instances for `generate` by a short lock (`SET NX PX
 *   lockTtl`): the instance holding it calls the provider, the others poll
 *   Redis for its answer until the lock expires, then call the provider
 *   themselves. Streams have no single flight: a stream miss streams live
 *   from the provider and stores its parts when it finishes (a later stream
 *   or generate on any instance is then a hit).
 * - A hit answers with `cached: true`, `costUsd: 0`, `latencyMs: 0`,
 *   `attempts: []` and publishes `CacheHit`.
 * - Redis failures: the cache is always fail-open (a cache that cannot be read
 *   is a miss; one that cannot be written is skipped) and publishes
 *   `StoreDegraded` once per episode.
 *
 * @since 0.1.0
 */
import { Events, LLM, LlmError, LlmResponse, SwitchboardConfigError } from "@switchboard/core"
import type { LlmRequest } from "@switchboard/core"
import { Duration, Effect, Exit, Layer, Schema, Stream } from "effect"
import { Persistable, PersistedCache, Persistence, Redis } from "effect/persistence"
import { createHash } from "node:crypto"
import * as Guard from "./internal/guard.ts"
import { PositiveDuration } from "./internal/schemas.ts"

const PositiveInt = Schema.Number.check(
  Schema.makeFilter((n: number) => Number.isSafeInteger(n) && n >= 1 ? undefined : `expected an integer ≥ 1, got ${n}`)
)

/**
 * Options, decoded at build.
 *
 * | option | type | default |
 * |---|---|---|
 * | `ttl` | `Duration` > 0 | required |
 * | `when` | `"deterministic"` \| `"always"` | `"deterministic"` |
 * | `maxEntryBytes` | integer ≥ 1 | 1,048,576 |
 * | `lockTtl` | `Duration` > 0 (cross-instance single flight) | `"10 seconds"` |
 * | `inMemoryCapacity` | integer ≥ 1 (local copies) | 1,000 |
 * | `inMemoryTtl` | `Duration` > 0 (how long a local copy is trusted) | `"10 seconds"` |
 *
 * @since 0.1.0
 * @category models
 */
export const Options = Schema.Struct({
  ttl: PositiveDuration,
  when: Schema.optional(Schema.Literals(["deterministic", "always"])),
  maxEntryBytes: Schema.optional(PositiveInt),
  lockTtl: Schema.optional(PositiveDuration),
  inMemoryCapacity: Schema.optional(PositiveInt),
  inMemoryTtl: Schema.optional(PositiveDuration)
})

/**
 * The cache options (the type of {@link Options}).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = typeof Options.Type

/**
 * What one entry holds: the answer (without the provider's raw body) and,
 * for a stream, its parts.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Entry = Schema.Struct({
  response: LlmResponse.LlmResponse,
  parts: Schema.optional(Schema.Array(LlmResponse.StreamPart))
})

/**
 * An entry (the type of {@link Entry}).
 *
 * @since 0.1.0
 * @category models
 */
export type Entry = typeof Entry.Type

/**
 * The persisted request: its key is the request digest.
 *
 * @since 0.1.0
 * @category models
 */
export class CachedAnswer extends Persistable.Class<{ payload: { readonly key: string } }>()("SwitchboardAnswer", {
  primaryKey: (payload) => payload.key,
  success: Entry,
  error: LlmError.LlmError
}) {}

const canonical = (value: unknown): string => {
  if (value === undefined) return "null"
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
}

/**
 * The digest of the parts of a request that decide its answer (base64url
 * SHA-256): what the cache is keyed by, never the prompt itself.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requestDigest = (request: LlmRequest.LlmRequest): string =>
  createHash("sha256").update(canonical({
    messages: request.messages,
    model: request.model,
    system: request.system,
    temperature: request.temperature,
    topP: request.topP,
    maxTokens: request.maxTokens,
    stop: request.stop,
    seed: request.seed,
    tools: request.tools,
    toolChoice: request.toolChoice,
    responseFormat: request.responseFormat,
    tenant: request.metadata?.tenant
  })).digest("base64url")

const isCacheable = (request: LlmRequest.LlmRequest, when: "deterministic" | "always"): boolean =>
  request.cache !== false && (when === "always" || request.temperature === 0 || request.seed !== undefined)

const stripRaw = (response: LlmResponse.LlmResponse): LlmResponse.LlmResponse => {
  if (response.raw === undefined) return response
  const { raw: _raw, ...rest } = response
  return rest
}

const asHit = (response: LlmResponse.LlmResponse): LlmResponse.LlmResponse => ({
  ...response,
  cached: true,
  costUsd: 0,
  latencyMs: 0,
  attempts: []
})

const hitParts = (entry: Entry): ReadonlyArray<LlmResponse.StreamPart> => {
  const finish: LlmResponse.StreamPart = { type: "finish", response: asHit(entry.response) }
  if (entry.parts !== undefined) return entry.parts.map((part) => (part.type === "finish" ? finish : part))
  const parts: Array<LlmResponse.StreamPart> = []
  if (entry.response.text.length > 0) parts.push({ type: "text-delta", text: entry.response.text })
  for (const call of entry.response.toolCalls) {
    parts.push({ type: "tool-call-delta", id: call.id, name: call.name, inputDelta: JSON.stringify(call.input) })
  }
  parts.push(finish)
  return parts
}

/**
 * A built Redis response cache.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisResponseCache {
  readonly wrap: (inner: LLM["Service"]) => LLM["Service"]
  readonly options: Options
}

const backing$ = Effect.gen(function*() {
  return yield* Persistence.BackingPersistence
})

/**
 * The `Persistence` the cache stores in, over the `Redis` service, with the
 * store's guard: a read that fails is a miss, a write that fails is skipped.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPersistence = (guard: Guard.Guard): Layer.Layer<Persistence.Persistence, never, Redis.Redis> =>
  Persistence.layer.pipe(
    Layer.provide(Layer.effect(
      Persistence.BackingPersistence,
      Effect.map(backing$, (backing) =>
        Persistence.BackingPersistence.of({
          make: (storeId) =>
            Effect.map(backing.make(storeId), (store): Persistence.BackingPersistenceStore => ({
              get: (key) => Effect.catch(guard.run(store.get(key)), () => Effect.succeed(undefined)),
              getMany: (keys) =>
                Effect.catch(guard.run(store.getMany(keys)), () => Effect.succeed(keys.map(() => undefined) as never)),
              set: (key, value, ttl) => Effect.ignore(guard.run(store.set(key, value, ttl))),
              setMany: (entries) => Effect.ignore(guard.run(store.setMany(entries))),
              remove: (key) => Effect.ignore(guard.run(store.remove(key))),
              clear: Effect.ignore(guard.run(store.clear))
            }))
        }))
    ).pipe(Layer.provide(Persistence.layerBackingRedis)))
  )

/**
 * Builds the cache (needs `Persistence`, `Redis` and a scope); fails with
 * `SwitchboardConfigError` naming a bad option.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options, settings: {
  readonly prefix: string
  readonly guard: Guard.Guard
}) {
  const decoded = yield* SwitchboardConfigError.decode("RedisResponseCache", Options, options)
  const when = decoded.when ?? "deterministic"
  const ttl = Duration.fromInputUnsafe(decoded.ttl)
  const maxEntryBytes = decoded.maxEntryBytes ?? 1_048_576
  const lockTtlMs = Duration.toMillis(Duration.fromInputUnsafe(decoded.lockTtl ?? "10 seconds"))
  const { guard, prefix } = settings
  const redis = yield* Redis.Redis
  const storeId = `${prefix}cache`
  const store = yield* (yield* Persistence.Persistence).make({ storeId, timeToLive: () => ttl })

  const fits = (entry: Entry) => JSON.stringify(entry).length <= maxEntryBytes
  const ttlOf = (exit: Exit.Exit<Entry, LlmError.LlmError>) =>
    Exit.isSuccess(exit) && fits(exit.value) ? ttl : Duration.zero

  /** Misses waiting for their lookup: the request and the service to send it to, and who pays. */
  const pending = new Map<string, { readonly request: LlmRequest.LlmRequest; readonly inner: LLM["Service"]; readonly token: object }>()
  const paidBy = new Map<string, object>()

  const readStored = (answer: CachedAnswer): Effect.Effect<Entry | undefined> =>
    Effect.map(Effect.orElseSucceed(store.get(answer), () => undefined), (exit) =>
      exit !== undefined && Exit.isSuccess(exit) ? exit.value : undefined)

  /** Polls Redis for an entry another instance is computing, until its lock goes. */
  const awaitOther = (answer: CachedAnswer, lockKey: string): Effect.Effect<Entry | undefined> =>
    Effect.gen(function*() {
      for (let i = 0; i < Math.ceil(lockTtlMs / 20); i++) {
        yield* Effect.sleep(20)
        const entry = yield* readStored(answer)
        if (entry !== undefined) return entry
        const held = yield* Effect.orElseSucceed(guard.run(redis.send<number>("EXISTS", lockKey)), () => 0)
        if (held === 0) return yield* readStored(answer)
      }
      return undefined
    })

  const cache = yield* PersistedCache.make((answer: CachedAnswer) =>
    Effect.suspend(() => {
      const miss = pending.get(answer.key)
      if (miss === undefined) return Effect.die(new Error("RedisResponseCache: no request for this key"))
      const call = Effect.map(miss.inner.generate(miss.request), (response): Entry => {
        paidBy.set(answer.key, miss.token)
        return { response: stripRaw(response) }
      })
      const lockKey = `${prefix}cache:lock:${answer.key}`
      return Effect.flatMap(
        Effect.orElseSucceed(guard.run(redis.send<string | null>("SET", lockKey, "1", "NX", "PX", String(lockTtlMs))), () => "OK"),
        (locked) =>
          locked === "OK"
            ? call.pipe(
              // The others wait for the entry while the lock stands: free them when none will come.
              Effect.tap((entry) => fits(entry) ? Effect.void : Effect.ignore(guard.run(redis.send("DEL", lockKey)))),
              Effect.tapError(() => Effect.ignore(guard.run(redis.send("DEL", lockKey))))
            )
            : Effect.flatMap(awaitOther(answer, lockKey), (entry) => (entry === undefined ? call : Effect.succeed(entry)))
      )
    }), {
    storeId,
    timeToLive: ttlOf,
    inMemoryCapacity: decoded.inMemoryCapacity ?? 1_000,
    inMemoryTTL: (exit) => Exit.isSuccess(exit) ? (decoded.inMemoryTtl ?? "10 seconds") : Duration.zero
  })

  const hit = (key: string, response: LlmResponse.LlmResponse) =>
    Events.publish(() => ({ _tag: "CacheHit", key, provider: response.provider, model: response.model }))

  const wrap = (inner: LLM["Service"]): LLM["Service"] => {
    const generate = (request: LlmRequest.LlmRequest): Effect.Effect<LlmResponse.LlmResponse, LlmError.LlmError> => {
      if (!isCacheable(request, when)) return inner.generate(request)
      const key = requestDigest(request)
      const token = {}
      const miss = { request, inner, token }
      return Effect.suspend(() => {
        pending.set(key, miss)
        return cache.get(new CachedAnswer({ key }))
      }).pipe(
        Effect.catchTags({
          // The guarded backing never fails; these are here for the types.
          PersistenceError: () => inner.generate(request),
          SchemaError: () => inner.generate(request)
        }),
        Effect.flatMap((entry) => {
          if ("response" in entry && paidBy.get(key) === token) {
            paidBy.delete(key)
            return Effect.succeed(entry.response)
          }
          const response = "response" in entry ? entry.response : entry
          return Effect.as(hit(key, response), asHit(response))
        }),
        Effect.ensuring(Effect.sync(() => {
          if (pending.get(key) === miss) pending.delete(key)
        }))
      )
    }

    const stream = (request: LlmRequest.LlmRequest): Stream.Stream<LlmResponse.StreamPart, LlmError.LlmError> => {
      if (!isCacheable(request, when)) return inner.stream(request)
      const key = requestDigest(request)
      const answer = new CachedAnswer({ key })
      return Stream.unwrap(Effect.map(readStored(answer), (found) => {
        if (found !== undefined) {
          return Stream.concat(Stream.drain(Stream.fromEffect(hit(key, found.response))), Stream.fromIterable(hitParts(found)))
        }
        const parts: Array<LlmResponse.StreamPart> = []
        return inner.stream(request).pipe(
          Stream.tap((part) => Effect.sync(() => parts.push(part))),
          Stream.onExit((exit) => {
            const last = parts[parts.length - 1]
            if (!Exit.isSuccess(exit) || last === undefined || last.type !== "finish") return Effect.void
            const response = stripRaw(last.response)
            const entry: Entry = {
              response,
              parts: parts.map((part) => part.type === "finish" ? { type: "finish", response } : part)
            }
            return Effect.ignore(store.set(answer, Exit.succeed(entry)))
          })
        )
      }))
    }

    return LLM.of({ generate, stream })
  }

  const self: RedisResponseCache = { wrap, options: decoded }
  return self
})

/**
 * The cache as a combinator over the `Redis` service in context (see
 * {@link make}); `Redis.layerResponseCache` builds it with the connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options, settings: { readonly prefix: string; readonly guard: Guard.Guard }) =>
<E, R>(self: Layer.Layer<LLM, E, R>): Layer.Layer<
  LLM,
  E | SwitchboardConfigError.SwitchboardConfigError,
  R | Redis.Redis | Persistence.Persistence
> =>
  Layer.effect(
    LLM,
    Effect.gen(function*() {
      const cache = yield* make(options, settings)
      return cache.wrap(yield* LLM)
    })
  ).pipe(Layer.provide(self))
