import { assert, describe, it } from "@effect/vitest"
import { BreakerStore, BudgetStore, Events } from "@switchboard/core"
import { Config, ConfigProvider, Context, Effect, Exit, Layer, Schedule, Stream } from "effect"
import { RateLimiter } from "effect/persistence"
import { afterAll, beforeAll } from "vitest"
import { Redis, RedisBudgetStore } from "../src/index.ts"
import { type RedisServer, startRedis } from "./redisServer.ts"

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

let run = 0
const prefix = () => `t${process.pid}-${run++}:`

/** One "instance": its own connection and stores. */
const instance = (p: string, options: Partial<Redis.Options> = {}) => Redis.layer({ url: server.url, prefix: p, ...options })

/** Builds an instance in the test's scope and takes one of its services. */
const budgetOf = (p: string, options: Partial<Redis.Options> = {}) =>
  Effect.map(Layer.build(instance(p, options)), (ctx) => Context.get(ctx, BudgetStore.BudgetStore) as RedisBudgetStore.RedisBudgetStore)
const breakerOf = (p: string) =>
  Effect.flatMap(Layer.build(instance(p)), (ctx) => {
    const store = Context.get(ctx, BreakerStore.BreakerStore)
    return store === undefined ? Effect.die(new Error("no breaker store")) : Effect.succeed(store)
  })
const limiterOf = (p: string) =>
  Effect.flatMap(Layer.build(instance(p)), (ctx) => Effect.provide(RateLimiter.make, ctx))

const policy: BreakerStore.Policy = { failureThreshold: 3, windowMs: undefined, cooldownMs: 60_000, maxCooldownMs: 60_000, halfOpenProbes: 1 }

describe("Redis stores", () => {
  it.live("budget: 400 concurrent reserves from two instances never pass the limit; settles are exact and nothing stays reserved", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [a, b] = yield* Effect.all([
        budgetOf(p),
        budgetOf(p)
      ])
      const base = { key: "budget:t", windowId: "1", limitUsd: 1, now: 0, expiresAt: 60_000 }
      const results = yield* Effect.forEach(Array.from({ length: 400 }, (_, i) => i), (i) => {
        const store = i % 2 === 0 ? a : b
        return Effect.flatMap(
          store.reserve({ ...base, reservationId: String(i), amountUsd: 0.01 }),
          (r) => r.reserved
            ? Effect.as(store.settle({ key: base.key, windowId: "1", reservationId: String(i), costUsd: (i % 3) * 0.005, now: 0 }), (i % 3) * 0.005)
            : Effect.succeed(undefined)
        )
      }, { concurrency: "unbounded" })
      const charged = results.filter((x): x is number => x !== undefined)
      // 4 USD asked of a 1 USD limit: some refused, and at least the first 99 cents' worth admitted.
      assert.isBelow(charged.length, 400)
      assert.isAtLeast(charged.length, 99)
      const state = yield* a.read({ key: base.key, windowId: "1", now: 0 })
      assert.closeTo(state.spentUsd, charged.reduce((x, y) => x + y, 0), 1e-9)
      assert.isAtMost(state.spentUsd, 1)
      assert.strictEqual(state.reservedUsd, 0)
    }).pipe(Effect.scoped))

  it.live("budget: reserves alone (no settles) stop exactly at the limit across instances", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [a, b] = yield* Effect.all([budgetOf(p), budgetOf(p)])
      const base = { key: "budget:t", windowId: "1", limitUsd: 1, now: 0, expiresAt: 60_000, amountUsd: 0.03 }
      const results = yield* Effect.forEach(Array.from({ length: 100 }, (_, i) => i), (i) =>
        (i % 2 === 0 ? a : b).reserve({ ...base, reservationId: String(i) }), { concurrency: "unbounded" })
      assert.strictEqual(results.filter((r) => r.reserved).length, 33)
      const state = yield* b.read({ key: "budget:t", windowId: "1", now: 0 })
      assert.closeTo(state.reservedUsd, 0.99, 1e-9)
    }).pipe(Effect.scoped))

  it.live("budget: a dead instance's reservation is reclaimed on the Redis clock and written to the ledger; a late settle still charges once", () =>
    Effect.gen(function*() {
      const p = prefix()
      const store = yield* budgetOf(p)
      const ref = { key: "budget:t", windowId: "1", now: 0 }
      assert.isTrue((yield* store.reserve({ ...ref, reservationId: "dead", amountUsd: 0.9, limitUsd: 1, expiresAt: 30 })).reserved)
      assert.isFalse((yield* store.reserve({ ...ref, reservationId: "x", amountUsd: 0.5, limitUsd: 1, expiresAt: 60_000 })).reserved)
      // Poll (no fixed sleep) until Redis's clock passes the expiry.
      let state = yield* store.read(ref)
      while (state.reservedUsd > 0) {
        yield* Effect.sleep(10)
        state = yield* store.read(ref)
      }
      assert.isTrue((yield* store.reserve({ ...ref, reservationId: "y", amountUsd: 0.5, limitUsd: 1, expiresAt: 60_000 })).reserved)
      const ledger = yield* Effect.promise(() => server.command("XLEN", `${p}b:ledger`))
      assert.strictEqual(ledger.trim(), ":1")
      const late = yield* store.settle({ ...ref, reservationId: "dead", costUsd: 0.2 })
      assert.strictEqual(late.chargedUsd, 0.2)
      const again = yield* store.settle({ ...ref, reservationId: "dead", costUsd: 0.2 })
      assert.strictEqual(again.chargedUsd, 0)
      assert.closeTo((yield* store.read(ref)).spentUsd, 0.2, 1e-12)
    }).pipe(Effect.scoped))

  it.live("budget: a newer window rolls spend, an older (skewed) window id does not", () =>
    Effect.gen(function*() {
      const store = yield* budgetOf(prefix())
      const at = (windowId: string) => ({ key: "k", windowId, now: 0 })
      yield* store.reserve({ ...at("100"), reservationId: "a", amountUsd: 0.5, limitUsd: 1, expiresAt: 60_000 })
      yield* store.settle({ ...at("100"), reservationId: "a", costUsd: 0.5 })
      yield* store.reserve({ ...at("99"), reservationId: "b", amountUsd: 0.1, limitUsd: 1, expiresAt: 60_000 })
      yield* store.settle({ ...at("99"), reservationId: "b", costUsd: 0.1 })
      assert.closeTo((yield* store.read(at("100"))).spentUsd, 0.6, 1e-12)
      assert.strictEqual((yield* store.read(at("200"))).spentUsd, 0)
      yield* store.reserve({ ...at("200"), reservationId: "c", amountUsd: 0.1, limitUsd: 1, expiresAt: 60_000 })
      yield* store.settle({ ...at("200"), reservationId: "c", costUsd: 0.05 })
      assert.closeTo((yield* store.read(at("200"))).spentUsd, 0.05, 1e-12)
      assert.deepStrictEqual(yield* store.keys(0), ["k"])
    }).pipe(Effect.scoped))

  it.live("breaker: failures from two instances open one circuit; the other instance refuses; one probe across both; a lockout is shared", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [a, b] = yield* Effect.all([breakerOf(p), breakerOf(p)])
      const failure: BreakerStore.Outcome = { _tag: "Failure", reason: "503" }
      yield* a.record("openai:gpt", 1_000, policy, false, failure)
      yield* b.record("openai:gpt", 1_001, policy, false, failure)
      const change = yield* a.record("openai:gpt", 1_002, policy, false, failure)
      assert.strictEqual(change?.to._tag, "Open")
      const refused = yield* b.admit("openai:gpt", 1_003, policy)
      assert.strictEqual(refused._tag, "Refused")
      // After the cooldown both race for the half-open probe: exactly one wins.
      const after = 1_002 + 60_000
      const admissions = yield* Effect.all([a.admit("openai:gpt", after, policy), b.admit("openai:gpt", after, policy)], { concurrency: 2 })
      assert.strictEqual(admissions.filter((x) => x._tag === "Admitted").length, 1)
      // The probe's instance dies: its lease expires (10 s) and another instance may probe.
      assert.strictEqual((yield* b.admit("openai:gpt", after + 1_000, policy))._tag, "Refused")
      const next = yield* b.admit("openai:gpt", after + 10_001, policy)
      assert.deepStrictEqual(next._tag === "Admitted" && next.probe, true)
      const closed = yield* b.record("openai:gpt", after + 10_002, policy, true, { _tag: "Success" })
      assert.strictEqual(closed?.to._tag, "Closed")
      assert.strictEqual((yield* a.get("openai:gpt", after + 10_003))._tag, "Closed")
      // Rejected credentials: open until rebuilt, on every instance.
      yield* a.record("anthropic:claude", 5, policy, false, { _tag: "Failure", reason: "401", openFor: Infinity })
      const locked = yield* b.admit("anthropic:claude", 10 ** 12, policy)
      assert.deepStrictEqual(locked, { _tag: "Refused", until: Infinity })
    }).pipe(Effect.scoped))

  it.live("rate limiter: Effect's Redis store counts one limit across two instances", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [a, b] = yield* Effect.all([limiterOf(p), limiterOf(p)])
      const consume = (l: typeof a) =>
        Effect.exit(l.consume({ key: "openai:rpm", limit: 10, window: "1 minute" }))
      const exits = yield* Effect.forEach(Array.from({ length: 30 }, (_, i) => i), (i) => consume(i % 2 === 0 ? a : b), { concurrency: "unbounded" })
      assert.strictEqual(exits.filter((e) => e._tag === "Success").length, 10)
    }).pipe(Effect.scoped))

  it.live("faults: Redis killed: failClosed fails fast with BudgetStoreError, failOpen serves locally and publishes StoreDegraded; after restart the local charges are reconciled", () =>
    Effect.gen(function*() {
      const p = prefix()
      const events: Array<Events.LlmEvent> = []
      yield* Effect.forkScoped(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))))
      const closed = yield* budgetOf(p)
      const open = yield* budgetOf(p, { policy: "failOpen" })
      const ref = { key: "k", windowId: "1", now: 0 }
      yield* open.reserve({ ...ref, reservationId: "before", amountUsd: 0.1, limitUsd: 1, expiresAt: 60_000 })
      yield* Effect.promise(() => server.kill())
      const refused = yield* Effect.flip(closed.reserve({ ...ref, reservationId: "c", amountUsd: 0.1, limitUsd: 1, expiresAt: 60_000 }))
      assert.strictEqual(refused._tag, "BudgetStoreError")
      const local = yield* open.reserve({ ...ref, reservationId: "o", amountUsd: 0.1, limitUsd: 1, expiresAt: 60_000 })
      assert.isTrue(local.reserved)
      yield* open.settle({ ...ref, reservationId: "o", costUsd: 0.07 })
      // A reservation made on Redis and settled while it is down: journalled, replayed once.
      yield* open.settle({ ...ref, reservationId: "before", costUsd: 0.05 })
      assert.isTrue(events.some((e) => e._tag === "StoreDegraded" && e.store === "budget" && e.policy === "failOpen"))
      assert.isFalse(events.some((e) => e._tag === "StoreDegraded" && e.detail.includes("127.0.0.1:") && e.detail.includes("redis://")))
      yield* Effect.promise(() => server.restart())
      // Redis restarted empty: the replay re-creates what this instance owes.
      let reconciled = yield* open.reconcile
      while (reconciled.pending > 0) {
        yield* Effect.sleep(50)
        reconciled = yield* open.reconcile
      }
      assert.strictEqual(reconciled.localCharges, 1)
      assert.strictEqual(reconciled.settles, 1)
      assert.closeTo(reconciled.localUsd, 0.07, 1e-12)
      // Exact after recovery: both charges once, nothing left reserved.
      const after = yield* closed.read(ref).pipe(Effect.retry({ schedule: Schedule.spaced(50), times: 100 }))
      assert.closeTo(after.spentUsd, 0.12, 1e-12)
      assert.strictEqual(after.reservedUsd, 0)
    }).pipe(Effect.scoped, Effect.provide(Events.layer())))

  it.live("faults: a slow Redis (DEBUG SLEEP) cannot hold a call past the command deadline; the late reserve is given back", () =>
    Effect.gen(function*() {
      const p = prefix()
      const store = yield* budgetOf(p, { commandTimeout: "250 millis" })
      const ref = { key: "k", windowId: "1", now: 0 }
      yield* store.read(ref)
      yield* Effect.promise(() => server.sendNoWait("DEBUG", "SLEEP", "1.5"))
      const started = Date.now()
      const refused = yield* Effect.flip(store.reserve({ ...ref, reservationId: "slow", amountUsd: 0.4, limitUsd: 1, expiresAt: 3_600_000 }))
      const waited = Date.now() - started
      assert.strictEqual(refused._tag, "BudgetStoreError")
      // The deadline is 250 ms; Redis sleeps 1,500 ms.
      assert.isBelow(waited, 1_000)
      // Redis wakes up and runs the queued reserve; the journalled release gives it back.
      let reconciled = yield* store.reconcile
      while (reconciled.pending > 0) {
        yield* Effect.sleep(50)
        reconciled = yield* store.reconcile
      }
      assert.strictEqual(reconciled.releases, 1)
      const state = yield* store.read(ref)
      assert.deepStrictEqual(state, { spentUsd: 0, reservedUsd: 0, closed: false })
    }).pipe(Effect.scoped))

  it.live("layerConfig reads the options from Config; the connection answers PING and reports no degraded store", () =>
    Effect.gen(function*() {
      const ctx = yield* Layer.build(
        Redis.layerConfig({ url: Config.String("REDIS_URL"), prefix: Config.succeed(prefix()) }).pipe(
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: server.url })))
        )
      )
      const stores = Context.get(ctx, Redis.RedisStores)
      assert.isTrue(yield* stores.ping)
      assert.deepStrictEqual(yield* stores.degraded, [])
    }).pipe(Effect.scoped))

  it.live("breaker: a circuit read as quiet costs no round trip until another instance troubles it (pub/sub)", () =>
    Effect.gen(function*() {
      const p = prefix()
      const [a, b] = yield* Effect.all([breakerOf(p), breakerOf(p)])
      assert.isFalse(a.isQuietUnsafe?.("openai/gpt", 0))
      assert.strictEqual((yield* a.admit("openai/gpt", 1_000, policy))._tag, "Admitted")
      assert.isTrue(a.isQuietUnsafe?.("openai/gpt", 0))
      // B counts a failure: A hears of it and reads Redis again.
      yield* b.record("openai/gpt", 1_001, policy, false, { _tag: "Failure", reason: "503" })
      assert.isFalse(b.isQuietUnsafe?.("openai/gpt", 0))
      let polls = 0
      while (a.isQuietUnsafe?.("openai/gpt", 0) === true && polls++ < 200) yield* Effect.sleep(5)
      assert.isFalse(a.isQuietUnsafe?.("openai/gpt", 0))
      // Two more failures from A open it; B refuses at once.
      yield* a.record("openai/gpt", 1_002, policy, false, { _tag: "Failure", reason: "503" })
      yield* a.record("openai/gpt", 1_003, policy, false, { _tag: "Failure", reason: "503" })
      assert.strictEqual((yield* b.admit("openai/gpt", 1_004, policy))._tag, "Refused")
    }).pipe(Effect.scoped))

  it.live("faults: Redis killed: breaker and rate limiter follow their policies (failOpen serves locally, failClosed fails typed)", () =>
    Effect.gen(function*() {
      const p = prefix()
      const open = yield* Layer.build(instance(p, { policy: "failOpen", commandTimeout: "250 millis" }))
      const closed = yield* Layer.build(instance(p, { policy: "failClosed", commandTimeout: "250 millis" }))
      const breaker = (ctx: Context.Context<never>) => Context.get(ctx, BreakerStore.BreakerStore)!
      const [limitOpen, limitClosed] = yield* Effect.all([Effect.provide(RateLimiter.make, open), Effect.provide(RateLimiter.make, closed)])
      const consume = (limiter: typeof limitOpen) => Effect.exit(limiter.consume({ key: "k", limit: 5, window: "1 minute" }))
      yield* Effect.promise(() => server.kill())
      const started = Date.now()
      assert.strictEqual((yield* breaker(open).admit("k", 0, policy))._tag, "Admitted")
      const refused = yield* Effect.flip(breaker(closed).admit("k", 0, policy))
      assert.strictEqual(refused._tag, "BreakerStoreError")
      assert.isTrue(Exit.isSuccess(yield* consume(limitOpen)))
      const limited = yield* consume(limitClosed)
      const reason = Exit.isFailure(limited) ? limited.cause.reasons[0] : undefined
      assert.isTrue(reason?._tag === "Fail" && reason.error.reason._tag === "RateLimitStoreError")
      assert.isBelow(Date.now() - started, 2_000)
      yield* Effect.promise(() => server.restart())
    }).pipe(Effect.scoped))
})
