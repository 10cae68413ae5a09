/**
 * Core's `BreakerStore` on Redis: one circuit per key shared by every
 * instance.
 *
 * Each circuit is one Redis string (`<prefix>cb:<key>`, JSON). Every
 * admission and every recorded outcome reads it, runs core's own state
 * machine (`BreakerStore.admitState` / `recordState`), and writes the result
 * back with a compare-and-set Lua script (retried on a lost race), so:
 * - failures from all instances count toward one threshold;
 * - a transition made by one instance is seen by every instance through
 *   pub/sub: each write of a troubled state publishes the circuit's key on
 *   `<prefix>cb:changed`. A circuit this instance read as quiet (closed, no
 *   failures: the absence of its key) stays quiet locally until such a
 *   message, so the breaker's hot path makes no round trip for it; every
 *   other circuit is read from Redis on every call (polling at call rate).
 *   While the subscription is down (or reconnecting) nothing is trusted as
 *   quiet, so a missed message can never hide an open circuit;
 * - half-open probes are limited across instances by leases: each probe
 *   slot is a lease that expires after `probeLease`, so a probe whose
 *   instance died frees its slot;
 * - a lockout (rejected credentials, open "until rebuilt") is stored without
 *   expiry and refuses on every instance until the key is deleted.
 *
 * Times (`until`, failure times, leases) are the callers' `Clock` readings,
 * as the store interface passes them; keep instance clocks in sync (NTP).
 *
 * When Redis does not answer within the command timeout: `failOpen` (the
 * default for breakers) serves from a local memory store (failures still
 * trip, on this instance) and publishes `StoreDegraded`; `failClosed` fails
 * with `BreakerStoreError` and the breaker's own `onStoreError` decides.
 *
 * @since 0.1.0
 */
import { NodeRedis } from "@effect/platform-node"
import { BreakerStore } from "@switchboard/core"
import { Effect } from "effect"
import { Redis } from "effect/persistence"
import type * as Guard from "./internal/guard.ts"

/**
 * Options of the Redis breaker store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly prefix: string
  /** How long a half-open probe holds its slot before another instance may probe (ms). */
  readonly probeLeaseMs: number
  /** How long a circuit's key lives after its last change (ms); a lockout never expires. */
  readonly idleTtlMs: number
}

/** The stored form: core's state, with the probe leases of a half-open circuit. */
type Stored =
  | { readonly t: "C"; readonly f: ReadonlyArray<number> }
  | { readonly t: "O"; readonly u: number | null; readonly o: number }
  | { readonly t: "H"; readonly l: ReadonlyArray<number>; readonly o: number }

const cas = Redis.script(
  (key: string, expected: string, next: string, ttlMs: number | undefined, channel: string, name: string) => [
    key,
    expected,
    next,
    ttlMs === undefined ? "" : Math.max(1, Math.ceil(ttlMs)),
    channel,
    name
  ],
  {
    numberOfKeys: 1,
    lua: `
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return { 0, cur } end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
elseif ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return { 1, '' }
`
  }
).withReturnType<[number, string]>()

const decode = (raw: string, now: number): { readonly state: BreakerStore.State; readonly leases: ReadonlyArray<number> } => {
  if (raw === "") return { state: BreakerStore.closed, leases: [] }
  let stored: Stored
  try {
    stored = JSON.parse(raw) as Stored
  } catch {
    return { state: BreakerStore.closed, leases: [] }
  }
  switch (stored.t) {
    case "C":
      return { state: { _tag: "Closed", failures: stored.f }, leases: [] }
    case "O":
      return {
        state: { _tag: "Open", until: stored.u === null ? Number.POSITIVE_INFINITY : stored.u, openings: stored.o },
        leases: []
      }
    case "H": {
      const leases = stored.l.filter((expiry) => expiry > now)
      return { state: { _tag: "HalfOpen", probing: leases.length, openings: stored.o }, leases }
    }
    default:
      return { state: BreakerStore.closed, leases: [] }
  }
}

/** The stored form of `next` ('' for a quiet closed circuit) and its time to live. */
const encode = (
  previous: { readonly state: BreakerStore.State; readonly leases: ReadonlyArray<number> },
  next: BreakerStore.State,
  now: number,
  options: Options,
  windowMs: number | undefined
): { readonly raw: string; readonly ttlMs: number | undefined } => {
  switch (next._tag) {
    case "Closed":
      if (next.failures.length === 0) return { raw: "", ttlMs: undefined }
      return { raw: JSON.stringify({ t: "C", f: next.failures }), ttlMs: windowMs ?? options.idleTtlMs }
    case "Open":
      if (next.until === Number.POSITIVE_INFINITY) return { raw: JSON.stringify({ t: "O", u: null, o: next.openings }), ttlMs: undefined }
      return {
        raw: JSON.stringify({ t: "O", u: next.until, o: next.openings }),
        ttlMs: Math.max(0, next.until - now) + options.idleTtlMs
      }
    case "HalfOpen": {
      const held = previous.state._tag === "HalfOpen" ? [...previous.leases].sort((a, b) => a - b) : []
      while (held.length > next.probing) held.shift()
      while (held.length < next.probing) held.push(now + options.probeLeaseMs)
      return {
        raw: JSON.stringify({ t: "H", l: held, o: next.openings }),
        ttlMs: options.probeLeaseMs + options.idleTtlMs
      }
    }
  }
}

const sameState = (a: BreakerStore.State, b: BreakerStore.State): boolean => {
  if (a === b) return true
  if (a._tag !== b._tag) return false
  switch (a._tag) {
    case "Closed":
      return b._tag === "Closed" && a.failures.length === b.failures.length && a.failures.every((t, i) => t === b.failures[i])
    case "Open":
      return b._tag === "Open" && a.until === b.until && a.openings === b.openings
    case "HalfOpen":
      return b._tag === "HalfOpen" && a.probing === b.probing && a.openings === b.openings
  }
}

const maxRaces = 16

/**
 * Builds the store over the `Redis` service (see the module docs).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(options: Options, guard: Guard.Guard) {
  const redis = yield* Redis.Redis
  const node = yield* NodeRedis.NodeRedis
  const casLua = redis.eval(cas)
  const local = BreakerStore.makeMemory({ idleTtl: options.idleTtlMs })
  const keyOf = (key: string) => `${options.prefix}cb:${key}`
  const channel = `${options.prefix}cb:changed`

  // Circuits known quiet (absent in Redis) since the last change message; `epoch` counts messages
  // and reconnections, so a read that raced with one is not trusted.
  const quiet = new Set<string>()
  let epoch = 0
  let listening = false
  const forget = () => {
    listening = false
    epoch++
    quiet.clear()
  }
  yield* Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const subscriber = node.client.duplicate()
      subscriber.on("error", forget)
      subscriber.on("end", forget)
      subscriber.on("reconnecting", forget)
      subscriber.on("ready", () => {
        // Re-subscribed on reconnection before it is ready: messages flow again from here.
        epoch++
        listening = true
      })
      await subscriber.connect()
      await subscriber.subscribe(channel, (message) => {
        epoch++
        quiet.delete(message)
      })
      listening = true
      return subscriber
    }).pipe(Effect.orElseSucceed(() => undefined)),
    (subscriber) =>
      Effect.sync(() => {
        forget()
        if (subscriber?.isOpen === true) subscriber.destroy()
      })
  )
  const markQuiet = (key: string, since: number) => {
    if (!listening || since !== epoch) return
    if (quiet.size >= 10_000) quiet.clear()
    quiet.add(key)
  }

  /**
   * Reads the circuit, applies `step` and writes the result back unless
   * another instance changed the circuit in between (then applies `step` to
   * what it wrote, up to `maxRaces` times).
   */
  const update = <A>(
    key: string,
    now: number,
    windowMs: number | undefined,
    step: (state: BreakerStore.State) => { readonly next: BreakerStore.State; readonly result: A }
  ): Effect.Effect<A, unknown> =>
    Effect.gen(function*() {
      const redisKey = keyOf(key)
      const since = epoch
      let raw = (yield* redis.send<string | null>("GET", redisKey)) ?? ""
      for (let race = 0; race < maxRaces; race++) {
        const current = decode(raw, now)
        const { next, result } = step(current.state)
        // Nothing to write (expired leases are simply not counted until the next change).
        if (sameState(next, current.state)) {
          if (raw === "") markQuiet(key, since)
          else quiet.delete(key)
          return result
        }
        const encoded = encode(current, next, now, options, windowMs)
        if (encoded.raw !== "") quiet.delete(key)
        const [ok, seen] = yield* casLua(redisKey, raw, encoded.raw, encoded.ttlMs, channel, key)
        if (ok === 1) {
          if (encoded.raw === "") markQuiet(key, since)
          return result
        }
        raw = seen
      }
      return yield* Effect.fail(new Error(`circuit ${key} changed ${maxRaces} times during one update`))
    })

  const storeError = (detail: string) => new BreakerStore.BreakerStoreError({ detail })
  const failOpen = guard.policy === "failOpen"

  const store: BreakerStore.BreakerStoreService = {
    admit: (key, now, policy) =>
      Effect.catch(
        guard.run(update(key, now, policy.windowMs, (state) => {
          const { admission, next } = BreakerStore.admitState(state, now, policy)
          return { next, result: admission }
        })),
        (e) => failOpen ? local.admit(key, now, policy) : Effect.fail(storeError(e.detail))
      ),
    record: (key, now, policy, probe, outcome) =>
      Effect.catch(
        guard.run(update(key, now, policy.windowMs, (state) => {
          const { change, next } = BreakerStore.recordState(state, now, policy, probe, outcome)
          return { next, result: change }
        })),
        (e) => failOpen ? local.record(key, now, policy, probe, outcome) : Effect.fail(storeError(e.detail))
      ),
    get: (key, now) =>
      Effect.catch(
        guard.run(Effect.map(redis.send<string | null>("GET", keyOf(key)), (raw) => decode(raw ?? "", now).state)),
        (e) => failOpen ? local.get(key, now) : Effect.fail(storeError(e.detail))
      ),
    // Known quiet since the last change message, with the subscription up: no round trip.
    isQuietUnsafe: (key) => listening && !guard.isDegraded() && quiet.has(key)
  }
  return store
})
