import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { HealthMonitor, LLM, Llm, LlmError, Router } from "../src/index.ts"

const ask = { messages: [{ role: "user" as const, content: "hi" }] }
const server = (provider: string) => new LlmError.ServerError({ provider, model: "m", status: 500 })

describe("HealthMonitor", () => {
  it.effect("passive: a failing candidate goes down, is skipped, and comes back when its failures age out", () =>
    Effect.gen(function*() {
      let failing = true
      const a = yield* Llm.makeTest({
        provider: "a",
        model: "m",
        respond: () => failing ? { error: server("a") } : { text: "a" }
      })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const Monitor = HealthMonitor.layer({ interval: "10 seconds", window: "30 seconds", minCalls: 4 })
      const stack = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
        .pipe(Layer.provideMerge(Monitor))
      yield* Effect.gen(function*() {
        const llm = yield* LLM
        const changes = yield* Effect.forkChild(Stream.runCollect(Stream.take(HealthMonitor.changes, 2)))
        yield* Effect.yieldNow
        for (let i = 0; i < 4; i++) assert.strictEqual((yield* llm.generate(ask)).provider, "b")
        const down = (yield* HealthMonitor.snapshot).find((h) => h.name === "a")
        assert.strictEqual(down?.status, "down")
        assert.strictEqual(down?.calls, 4)
        assert.strictEqual(down?.errorRate, 1)
        yield* llm.generate(ask)
        assert.strictEqual((yield* a.requests).length, 4) // skipped without a call while down
        failing = false
        yield* TestClock.adjust("40 seconds")
        assert.strictEqual((yield* llm.generate(ask)).provider, "a")
        const seen = yield* Fiber.join(changes)
        assert.deepStrictEqual(seen.map((c) => `${c.name}:${c.from}->${c.to}`), ["a:healthy->down", "a:down->healthy"])
      }).pipe(Effect.provide(stack))
    }))

  it.effect("degraded between the two thresholds; local refusals and bad requests do not count", () =>
    Effect.gen(function*() {
      const monitor = yield* HealthMonitor.make({ interval: "1 minute", minCalls: 4, degradedAt: 0.25, downAt: 0.75 })
      monitor.record("x", { ok: true, latencyMs: 10 }, 0)
      monitor.record("x", { ok: true, latencyMs: 10 }, 1)
      monitor.record("x", { ok: true, latencyMs: 10 }, 2)
      const change = monitor.record("x", { ok: false, latencyMs: 10, error: "ServerError" }, 3)
      assert.deepStrictEqual(change?.to, "degraded")
      assert.isTrue(HealthMonitor.isHealthFailure(server("x")))
      assert.isFalse(HealthMonitor.isHealthFailure(new LlmError.InvalidRequest({ provider: "x", message: "bad" })))
      assert.isFalse(HealthMonitor.isHealthFailure(new LlmError.CircuitOpen({ provider: "x", until: 0 })))
      assert.isFalse(
        HealthMonitor.isHealthFailure(new LlmError.RateLimited({ provider: "x", scope: "requests", source: "local" }))
      )
    }))

  it.effect("slowMs: a slow but working candidate is degraded", () =>
    Effect.gen(function*() {
      const monitor = yield* HealthMonitor.make({ interval: "1 minute", minCalls: 2, slowMs: 500 })
      monitor.record("x", { ok: true, latencyMs: 900 }, 0)
      const change = monitor.record("x", { ok: true, latencyMs: 900 }, 1)
      assert.strictEqual(change?.to, "degraded")
      assert.match(change?.reason ?? "", /latency/)
    }))

  it.effect("probe \"models\": a down candidate is probed every interval and brought back by a success", () =>
    Effect.gen(function*() {
      let up = false
      let probes = 0
      const probe = Effect.suspend(() => {
        probes++
        return up ? Effect.succeed([]) : Effect.fail(server("a"))
      })
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ error: server("a") }] })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b" }] })
      const stack = Router.layer([{ name: "a", layer: a.layer, probe }, { name: "b", layer: b.layer }], {
        strategy: "priority"
      }).pipe(Layer.provideMerge(HealthMonitor.layer({ interval: "5 seconds", window: "10 minutes", minCalls: 2, probe: "models" })))
      yield* Effect.gen(function*() {
        const llm = yield* LLM
        yield* llm.generate(ask)
        yield* llm.generate(ask)
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(probes, 1)
        assert.strictEqual((yield* HealthMonitor.snapshot).find((h) => h.name === "a")?.status, "down")
        up = true
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(probes, 2)
        const health = (yield* HealthMonitor.snapshot).find((h) => h.name === "a")
        assert.strictEqual(health?.status, "healthy")
        assert.strictEqual(health?.reason, "probe succeeded")
      }).pipe(Effect.provide(stack))
    }))

  it.effect("probe \"generate\" sends a one-token request through the candidate", () =>
    Effect.gen(function*() {
      const a = yield* Llm.makeTest({ provider: "a", model: "m", steps: [{ text: "pong" }] })
      const stack = Router.layer([{ name: "a", layer: a.layer }], { strategy: "priority" })
        .pipe(Layer.provide(HealthMonitor.layer({ interval: "5 seconds", probe: "generate" })))
      yield* Effect.gen(function*() {
        yield* LLM
        yield* TestClock.adjust("5 seconds")
      }).pipe(Effect.provide(stack))
      const requests = yield* a.requests
      assert.strictEqual(requests.length, 1)
      assert.strictEqual(requests[0]?.maxTokens, 1)
    }))

  it.effect("bad options fail the layer with SwitchboardConfigError naming the option", () =>
    Effect.gen(function*() {
      const path = (options: HealthMonitor.Options) =>
        Effect.map(Effect.flip(Layer.build(HealthMonitor.layer(options))), (e) => e.path)
      assert.strictEqual(yield* path({ interval: "soon" as "1 second" }), "HealthMonitor.interval")
      assert.strictEqual(yield* path({ interval: "1 second", downAt: 2 }), "HealthMonitor.downAt")
      assert.strictEqual(yield* path({ interval: "1 second", degradedAt: 0.9, downAt: 0.5 }), "HealthMonitor.degradedAt")
      assert.strictEqual(
        yield* path({ interval: "1 second", probe: "ping" as "models" }),
        "HealthMonitor.probe"
      )
    }))
})
