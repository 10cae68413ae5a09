import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { Budget, BudgetStore, Events, Llm } from "../src/index.ts"

const mini = { provider: "openai", model: "gpt-4o-mini" }
const ask = { messages: [{ role: "user" as const, content: "q" }], maxTokens: 10 }

const down = (operation: string) => Effect.fail(new BudgetStore.BudgetStoreError({ operation, detail: "connection refused" }))
const failing: Layer.Layer<BudgetStore.BudgetStore> = Layer.succeed(BudgetStore.BudgetStore, {
  reserve: () => down("reserve"),
  settle: () => down("settle"),
  release: () => down("release"),
  read: () => down("read"),
  keys: () => down("keys"),
  size: () => down("size")
})

describe("BudgetStore", () => {
  it.effect("budgets with one name share a store in context: spend is counted once across them", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok", usage: { inputTokens: 8, outputTokens: 5 } }] })
      const a = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, name: "shared" })
      const b = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, name: "shared" })
      const other = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, name: "other" })
      const paid = (yield* a.wrap(test.service).generate(ask)).costUsd
      yield* b.wrap(test.service).generate(ask)
      assert.closeTo((yield* a.state()).spentUsd, 2 * paid, 1e-15)
      assert.closeTo((yield* b.state()).spentUsd, 2 * paid, 1e-15)
      assert.strictEqual((yield* other.state()).spentUsd, 0)
    }).pipe(Effect.provide(BudgetStore.layerMemory())))

  it.effect("a failing store: failClosed refuses the call with BudgetExceeded and publishes StoreDegraded; failOpen lets it through", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      yield* Effect.forkChild(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e._tag))))
      yield* Effect.yieldNow
      const test = yield* Llm.makeTest({ ...mini, steps: [{ text: "ok" }] })
      const closed = yield* Budget.make({ limitUsd: 1, window: "day", price: mini })
      assert.strictEqual((yield* Effect.flip(closed.wrap(test.service).generate(ask)))._tag, "BudgetExceeded")
      assert.strictEqual((yield* test.requests).length, 0)
      const open = yield* Budget.make({ limitUsd: 1, window: "day", price: mini, onStoreError: "failOpen" })
      assert.strictEqual((yield* open.wrap(test.service).generate(ask)).text, "ok")
      yield* Effect.yieldNow
      assert.include(events, "StoreDegraded")
      // Reads degrade too: failClosed reports the limit as spent (a router skips it), failOpen nothing spent.
      assert.isTrue(yield* closed.refusesNow(ask))
      assert.isFalse(yield* open.refusesNow(ask))
    }).pipe(Effect.provide(Layer.merge(failing, Events.layer()))))

  it("an expired reservation is reclaimed: what a dead caller held goes back", () => {
    const store = BudgetStore.makeMemory()
    const base = { key: "b:s", windowId: "0", limitUsd: 1, now: 0 }
    assert.isTrue(store.reserveSync({ ...base, reservationId: "dead", amountUsd: 0.9, expiresAt: 1_000 }).reserved)
    assert.isFalse(store.reserveSync({ ...base, reservationId: "x", amountUsd: 0.5, expiresAt: 5_000 }).reserved)
    assert.isTrue(store.reserveSync({ ...base, now: 1_000, reservationId: "y", amountUsd: 0.5, expiresAt: 5_000 }).reserved)
    assert.strictEqual(store.readSync({ key: "b:s", windowId: "0", now: 1_000 }).reservedUsd, 0.5)
  })

  it("a newer window id rolls the scope: spend restarts, reservations in flight carry over", () => {
    const store = BudgetStore.makeMemory()
    store.reserveSync({ key: "b:s", windowId: "1", limitUsd: 1, now: 0, reservationId: "a", amountUsd: 0.25, expiresAt: 9_999 })
    store.reserveSync({ key: "b:s", windowId: "1", limitUsd: 1, now: 0, reservationId: "b", amountUsd: 0.25, expiresAt: 9_999 })
    store.settleSync({ key: "b:s", windowId: "1", reservationId: "a", costUsd: 0.2, now: 0 })
    const rolled = store.readSync({ key: "b:s", windowId: "2", now: 10 })
    assert.deepStrictEqual(rolled, { spentUsd: 0, reservedUsd: 0.25, closed: false })
    const settled = store.settleSync({ key: "b:s", windowId: "2", reservationId: "b", costUsd: 0.1, now: 10 })
    assert.deepStrictEqual(settled.state, { spentUsd: 0.1, reservedUsd: 0, closed: false })
  })
})

describe("BudgetStore overruns", () => {
  const reserve = (store: BudgetStore.MemoryStore, id: string) =>
    store.reserveSync({ key: "k", windowId: "w", reservationId: id, amountUsd: 1, limitUsd: 100, expiresAt: 60_000, now: 0 })

  it("a small overrun (a few prompt tokens the local count missed) is recorded and keeps the window open", () => {
    const store = BudgetStore.makeMemory()
    reserve(store, "r1")
    const settled = store.settleSync({ key: "k", windowId: "w", reservationId: "r1", costUsd: 1.3, now: 1 })
    assert.isTrue(settled.overrun)
    assert.isFalse(settled.closed ?? false)
    assert.closeTo(settled.state.spentUsd, 1.3, 1e-12)
    assert.isTrue(reserve(store, "r2").reserved)
  })

  it("a gross overrun (beyond twice the worst case) is recorded and closes the window", () => {
    const store = BudgetStore.makeMemory()
    reserve(store, "r1")
    const settled = store.settleSync({
      key: "k",
      windowId: "w",
      reservationId: "r1",
      costUsd: BudgetStore.overrunFactor + 0.01,
      now: 1
    })
    assert.isTrue(settled.overrun)
    assert.isTrue(settled.closed ?? false)
    assert.closeTo(settled.state.spentUsd, 2.01, 1e-12)
    assert.isFalse(reserve(store, "r2").reserved)
  })
})
