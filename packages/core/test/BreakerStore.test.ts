import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { BreakerStore, CircuitBreaker, Llm, LlmError } from "../src/index.ts"

const policy: BreakerStore.Policy = {
  failureThreshold: 5,
  windowMs: undefined,
  cooldownMs: 30_000,
  maxCooldownMs: 600_000,
  halfOpenProbes: 1
}
const failure: BreakerStore.Outcome = { _tag: "Failure", reason: "ServerError" }

const heapAfterGc = (): number | undefined => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return undefined
  gc()
  return process.memoryUsage().heapUsed
}

describe("BreakerStore.makeMemory", () => {
  it.effect("stays bounded: a million distinct keys never hold more than capacity entries", () =>
    Effect.gen(function*() {
      const store = BreakerStore.makeMemory({ capacity: 1_000, idleTtl: "1 hour" })
      const now = yield* Clock.currentTimeMillis
      const before = heapAfterGc()
      let largest = 0
      for (let i = 0; i < 1_000_000; i++) {
        yield* store.record(`tenant-${i}/m`, now, policy, false, failure)
        if (i % 50_000 === 0) largest = Math.max(largest, store.size!(now))
      }
      const size = store.size!(now)
      assert.isAtMost(size, 1_000)
      assert.isAtMost(largest, 1_000)
      assert.strictEqual(size, 1_000)
      // the most recent keys are the ones kept (LRU), the oldest are forgotten (closed)
      assert.deepStrictEqual(yield* store.get("tenant-999999/m", now), { _tag: "Closed", failures: [now] })
      assert.deepStrictEqual(yield* store.get("tenant-0/m", now), BreakerStore.closed)
      const after = heapAfterGc()
      // with --expose-gc, the heap after a million keys is what a thousand entries take (well under 16 MB)
      if (before !== undefined && after !== undefined) assert.isBelow(after - before, 16 * 1024 * 1024)
    }), 60_000)

  it.effect("drops a key idle for idleTtl (on the TestClock), keeps a touched one, and never expires a lockout", () =>
    Effect.gen(function*() {
      const store = BreakerStore.makeMemory({ capacity: 100, idleTtl: "1 minute" })
      const t0 = yield* Clock.currentTimeMillis
      yield* store.record("idle/m", t0, policy, false, failure)
      yield* store.record("busy/m", t0, policy, false, failure)
      yield* store.record("locked/m", t0, policy, false, { _tag: "Failure", reason: "AuthenticationFailed", openFor: Infinity })
      assert.strictEqual(store.size!(t0), 3)
      yield* TestClock.adjust("40 seconds")
      const t1 = yield* Clock.currentTimeMillis
      yield* store.record("busy/m", t1, policy, false, failure)
      yield* TestClock.adjust("30 seconds")
      const t2 = yield* Clock.currentTimeMillis
      assert.deepStrictEqual(yield* store.get("idle/m", t2), BreakerStore.closed)
      assert.deepStrictEqual(yield* store.get("busy/m", t2), { _tag: "Closed", failures: [t0, t1] })
      yield* TestClock.adjust("1 day")
      const t3 = yield* Clock.currentTimeMillis
      assert.deepStrictEqual(yield* store.get("locked/m", t3), { _tag: "Open", until: Infinity, openings: 1 })
      assert.deepStrictEqual(yield* store.get("busy/m", t3), BreakerStore.closed)
      assert.strictEqual(store.size!(t3), 1)
    }))

  it.effect("a closed circuit without failures takes no room", () =>
    Effect.gen(function*() {
      const store = BreakerStore.makeMemory()
      yield* store.record("a/m", 0, policy, false, failure)
      assert.strictEqual(store.size!(0), 1)
      yield* store.record("a/m", 1, policy, false, { _tag: "Success" })
      assert.strictEqual(store.size!(1), 0)
      assert.isTrue(store.isQuietUnsafe!("a/m", 1))
    }))

  it.effect("a breaker over many distinct tenants' models keeps its store within the store's capacity", () =>
    Effect.gen(function*() {
      const store = BreakerStore.makeMemory({ capacity: 100 })
      const test = yield* Llm.makeTest({
        provider: "p",
        respond: (request) => ({ error: new LlmError.ServerError({ provider: "p", model: request.model ?? "m", status: 500 }) })
      })
      const breaker = yield* CircuitBreaker.make({ failureThreshold: 3 }).pipe(
        Effect.provideService(BreakerStore.BreakerStore, store)
      )
      const llm = breaker.wrap(test.service)
      for (let i = 0; i < 5_000; i++) {
        yield* Effect.flip(llm.generate({ model: `tenant-${i}`, messages: [{ role: "user", content: "hi" }] }))
      }
      const now = yield* Clock.currentTimeMillis
      assert.strictEqual(store.size!(now), 100)
      assert.deepStrictEqual(yield* breaker.state("p", "tenant-4999"), { _tag: "Closed", failures: [now] })
    }), 30_000)
})
