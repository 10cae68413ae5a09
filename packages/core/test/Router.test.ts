import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import {
  Budget,
  CircuitBreaker,
  Events,
  HealthMonitor,
  LLM,
  Llm,
  LlmError,
  type LlmRequest,
  type LlmResponse,
  Pricing,
  RateLimit,
  Router
} from "../src/index.ts"

const ask = (content = "hi", extra: Partial<LlmRequest.LlmRequest> = {}): LlmRequest.LlmRequest => ({
  messages: [{ role: "user", content }],
  ...extra
})
const server = (provider: string) => new LlmError.ServerError({ provider, model: "m", status: 500 })
const leaf = (provider: string, steps: ReadonlyArray<Llm.TestStep> = [{ text: provider }]) =>
  Llm.makeTest({ provider, model: "m", steps })

const caps = { tools: true, vision: true, jsonSchema: true, prefill: false, reasoning: false }
/** A small catalog of made-up models with round prices, so costs are easy to read. */
const Lab = Pricing.layer({
  replace: true,
  entries: [
    // cheap input, dear output
    { provider: "lab", model: "reader", inputPerMillion: 0.1, outputPerMillion: 10, contextWindow: 100_000, maxOutput: 8_000, capabilities: caps },
    // dear input, cheap output
    { provider: "lab", model: "writer", inputPerMillion: 5, outputPerMillion: 0.5, contextWindow: 100_000, maxOutput: 8_000, capabilities: caps },
    // dear input that caches very cheaply
    { provider: "lab", model: "cacher", inputPerMillion: 6, outputPerMillion: 5, cachedInputPerMillion: 0.01, contextWindow: 100_000, maxOutput: 8_000, capabilities: caps },
    { provider: "lab", model: "tiny", inputPerMillion: 0.01, outputPerMillion: 0.01, contextWindow: 60, maxOutput: 50, capabilities: caps },
    { provider: "lab", model: "plain", inputPerMillion: 0.01, outputPerMillion: 0.01, contextWindow: 100_000, maxOutput: 8_000, capabilities: { tools: false, vision: false, jsonSchema: false, prefill: false, reasoning: false } },
    { provider: "lab", model: "thinker", inputPerMillion: 20, outputPerMillion: 80, contextWindow: 100_000, maxOutput: 8_000, capabilities: { ...caps, reasoning: true } }
  ]
})

/** Runs `body` with one router built once (its state lives across the calls). */
const withRouter = <A, E, LE>(layer: Layer.Layer<LLM, LE>, body: (llm: LLM["Service"]) => Effect.Effect<A, E>) =>
  LLM.use(body).pipe(Effect.provide(layer))

const providers = (responses: ReadonlyArray<LlmResponse.LlmResponse>) => responses.map((r) => r.provider)

describe("Router strategies", () => {
  it.effect("priority: the first candidate answers; on a fallbackable error the next one does", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }, { text: "a" }])
      const b = yield* leaf("b")
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
      const [first, second] = yield* withRouter(layer, (llm) => Effect.all([llm.generate(ask()), llm.generate(ask())]))
      assert.strictEqual(first.provider, "b")
      assert.deepStrictEqual(first.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "b:ok"])
      assert.strictEqual(second.provider, "a")
    }))

  it.effect("roundRobin: call k goes to candidate k mod n, exactly", () =>
    Effect.gen(function*() {
      const leaves = yield* Effect.forEach(["a", "b", "c"], (p) => leaf(p))
      const layer = Router.layer(leaves.map((l, i) => ({ name: `c${i}`, layer: l.layer })), { strategy: "roundRobin" })
      const out = yield* withRouter(layer, (llm) => Effect.forEach(Array.from({ length: 9 }), () => llm.generate(ask())))
      assert.deepStrictEqual(providers(out), ["a", "b", "c", "a", "b", "c", "a", "b", "c"])
    }))

  it.effect("weighted: shares follow the weights over 10,000 calls, without bursts", () =>
    Effect.gen(function*() {
      const leaves = yield* Effect.forEach(["a", "b", "c"], (p) =>
        Llm.makeTest({ provider: p, model: "m", steps: [{ text: p }], record: false }))
      const layer = Router.layer(
        leaves.map((l, i) => ({ name: ["a", "b", "c"][i]!, layer: l.layer, weight: [5, 3, 2][i]! })),
        { strategy: "weighted" }
      )
      const out = yield* withRouter(layer, (llm) =>
        Effect.forEach(Array.from({ length: 10_000 }), () => llm.generate(ask())))
      const shares = { a: 0, b: 0, c: 0 } as Record<string, number>
      let run = 0
      let longest = 0
      for (let i = 0; i < out.length; i++) {
        shares[out[i]!.provider]!++
        run = i > 0 && out[i]!.provider === out[i - 1]!.provider ? run + 1 : 1
        longest = Math.max(longest, run)
      }
      assert.approximately(shares["a"]! / 10_000, 0.5, 0.01)
      assert.approximately(shares["b"]! / 10_000, 0.3, 0.01)
      assert.approximately(shares["c"]! / 10_000, 0.2, 0.01)
      // smooth: the heaviest candidate never gets more than 2 in a row at 5:3:2
      assert.isAtMost(longest, 2)
    }))

  it.effect("leastLatency: moves to the faster candidate, and back after the other recovers", () =>
    Effect.gen(function*() {
      let aDelay = 10
      const a = yield* Llm.makeTest({ provider: "a", model: "m", respond: () => ({ text: "a", delay: aDelay }) })
      const b = yield* Llm.makeTest({ provider: "b", model: "m", steps: [{ text: "b", delay: 100 }] })
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], {
        strategy: "leastLatency",
        latency: { halfLife: "2 seconds", explore: 0.1 }
      })
      yield* withRouter(layer, (llm) =>
        Effect.gen(function*() {
          const call = Effect.gen(function*() {
            const fiber = yield* Effect.forkChild(llm.generate(ask()))
            yield* TestClock.adjust("1 second")
            return (yield* Fiber.join(fiber)).provider
          })
          const calls = (n: number) => Effect.forEach(Array.from({ length: n }), () => call)
          const count = (xs: ReadonlyArray<string>, p: string) => xs.filter((x) => x === p).length
          const warm = yield* calls(20)
          assert.deepStrictEqual(warm.slice(0, 2), ["a", "b"]) // cold start: each measured once, no division by zero
          assert.isAtLeast(count(warm.slice(2), "a"), 16)
          aDelay = 500
          yield* calls(10)
          const slow = yield* calls(20)
          assert.isAtLeast(count(slow, "b"), 18)
          aDelay = 10
          yield* calls(20)
          const recovered = yield* calls(20)
          assert.isAtLeast(count(recovered, "a"), 18)
        }))
    }))

  it.effect("leastCost: the cheapest eligible for this request's size and shape", () =>
    Effect.gen(function*() {
      const reader = yield* leaf("reader")
      const writer = yield* leaf("writer")
      const tiny = yield* leaf("tiny")
      const layer = Router.layer([
        { name: "reader", provider: "lab", model: "reader", layer: reader.layer },
        { name: "writer", provider: "lab", model: "writer", layer: writer.layer },
        { name: "tiny", provider: "lab", model: "tiny", layer: tiny.layer }
      ], { strategy: "leastCost" })
      const [small, longRead, longWrite] = yield* withRouter(layer, (llm) =>
        Effect.all([
          llm.generate(ask("hi", { maxTokens: 5 })),
          llm.generate(ask("word ".repeat(4_000), { maxTokens: 50 })),
          llm.generate(ask("hello there", { maxTokens: 5_000 }))
        ]))
      assert.strictEqual(small.provider, "tiny") // fits its 60-token window and costs least
      assert.strictEqual(longRead.provider, "reader") // long prompt, short answer: cheap input wins
      assert.strictEqual(longWrite.provider, "writer") // short prompt, long answer: cheap output wins
      assert.strictEqual((yield* tiny.requests).length, 1)
    }).pipe(Effect.provide(Lab)))

  it.effect("leastCost: a cache breakpoint prices the cached prefix at the cached-input price", () =>
    Effect.gen(function*() {
      const reader = yield* leaf("reader")
      const cacher = yield* leaf("cacher")
      const layer = Router.layer([
        { name: "reader", provider: "lab", model: "reader", layer: reader.layer },
        { name: "cacher", provider: "lab", model: "cacher", layer: cacher.layer }
      ], { strategy: "leastCost" })
      const document = "lorem ipsum ".repeat(3_000)
      const uncached = ask(document, { maxTokens: 100 })
      const cached: LlmRequest.LlmRequest = {
        messages: [{ role: "user", content: [{ type: "text", text: document, cache: true }, { type: "text", text: "summarise" }] }],
        maxTokens: 100
      }
      const [a, b] = yield* withRouter(layer, (llm) => Effect.all([llm.generate(uncached), llm.generate(cached)]))
      assert.strictEqual(a.provider, "reader")
      assert.strictEqual(b.provider, "cacher")
    }).pipe(Effect.provide(Lab)))

  it.effect("byTask: metadata.task picks the candidates; unknown tasks use default", () =>
    Effect.gen(function*() {
      const claude = yield* leaf("claude")
      const fast = yield* leaf("fast")
      const cheap = yield* leaf("cheap")
      const layer = Router.layer([
        { name: "claude", layer: claude.layer },
        { name: "fast", layer: fast.layer },
        { name: "cheap", layer: cheap.layer }
      ], { strategy: "byTask", tasks: { code: ["claude", "fast"], summarise: ["cheap"], default: ["fast"] } })
      const task = (t: string | undefined) => ask("x", t === undefined ? {} : { metadata: { task: t } })
      const out = yield* withRouter(layer, (llm) =>
        Effect.forEach([task("code"), task("summarise"), task("poetry"), task(undefined)], (r) => llm.generate(r)))
      assert.deepStrictEqual(providers(out), ["claude", "cheap", "fast", "fast"])
    }))
})

describe("Router eligibility (no call reaches a skipped candidate)", () => {
  const pair = Effect.gen(function*() {
    const plain = yield* leaf("plain")
    const reader = yield* leaf("reader")
    const layer = Router.layer([
      { name: "plain", provider: "lab", model: "plain", layer: plain.layer },
      { name: "reader", provider: "lab", model: "reader", layer: reader.layer }
    ], { strategy: "priority" })
    return { plain, reader, layer }
  })
  const cases: ReadonlyArray<readonly [string, LlmRequest.LlmRequest, string]> = [
    [
      "tools need tools",
      ask("x", { tools: [{ name: "lookup", parameters: { type: "object" } }] }),
      "lacks tools"
    ],
    [
      "image parts need vision",
      { messages: [{ role: "user", content: [{ type: "image", url: "https://example.com/a.png" }] }] },
      "lacks vision"
    ],
    [
      "a json-schema response format needs jsonSchema",
      ask("x", { responseFormat: { type: "json-schema", name: "out", schema: { type: "object" } } }),
      "lacks jsonSchema"
    ],
    ["routing.require is honoured", ask("x", { routing: { require: ["tools"] } }), "lacks tools"]
  ]
  for (const [name, request, reason] of cases) {
    it.effect(name, () =>
      Effect.gen(function*() {
        const { layer, plain, reader } = yield* pair
        const events: Array<Events.LlmEvent> = []
        const response = yield* Effect.gen(function*() {
          const bus = yield* Events.LlmEvents
          const sub = yield* Effect.forkChild(Stream.runForEach(bus.events, (e) => Effect.sync(() => events.push(e))))
          yield* Effect.yieldNow
          const r = yield* Llm.generate(request)
          yield* Effect.yieldNow
          yield* Fiber.interrupt(sub)
          return r
        }).pipe(Effect.provide(layer), Effect.provide(Events.layer()))
        assert.strictEqual(response.provider, "reader")
        assert.strictEqual((yield* plain.requests).length, 0)
        assert.strictEqual((yield* reader.requests).length, 1)
        const chosen = events.find((e) => e._tag === "RouteChosen")
        assert.deepStrictEqual(chosen, {
          _tag: "RouteChosen",
          strategy: "priority",
          candidate: "reader",
          skipped: [{ name: "plain", reason }]
        })
      }).pipe(Effect.provide(Lab)))
  }

  it.effect("a prompt plus maxTokens over the context window is skipped", () =>
    Effect.gen(function*() {
      const tiny = yield* leaf("tiny")
      const reader = yield* leaf("reader")
      const layer = Router.layer([
        { name: "tiny", provider: "lab", model: "tiny", layer: tiny.layer },
        { name: "reader", provider: "lab", model: "reader", layer: reader.layer }
      ], { strategy: "priority" })
      const [fits, overflows] = yield* withRouter(layer, (llm) =>
        Effect.all([llm.generate(ask("hi", { maxTokens: 10 })), llm.generate(ask("hi", { maxTokens: 100 }))]))
      assert.strictEqual(fits.provider, "tiny")
      assert.strictEqual(overflows.provider, "reader")
      assert.strictEqual((yield* tiny.requests).length, 1)
    }).pipe(Effect.provide(Lab)))

  it.effect("maxPriceUsd skips candidates over the ceiling, and unknown prices", () =>
    Effect.gen(function*() {
      const thinker = yield* leaf("thinker")
      const mystery = yield* leaf("mystery")
      const reader = yield* leaf("reader")
      const layer = Router.layer([
        { name: "thinker", provider: "lab", model: "thinker", layer: thinker.layer },
        { name: "mystery", provider: "lab", model: "no-such-model", layer: mystery.layer },
        { name: "reader", provider: "lab", model: "reader", layer: reader.layer }
      ], { strategy: "priority" })
      const response = yield* Llm.generate(ask("hi", { maxTokens: 1_000, routing: { maxPriceUsd: 0.02 } })).pipe(
        Effect.provide(layer)
      )
      assert.strictEqual(response.provider, "reader")
      assert.strictEqual((yield* thinker.requests).length, 0)
      assert.strictEqual((yield* mystery.requests).length, 0)
    }).pipe(Effect.provide(Lab)))

  it.effect("routing.prefer moves an eligible candidate first", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a")
      const b = yield* leaf("b")
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
      const response = yield* Llm.generate(ask("x", { routing: { prefer: "b" } })).pipe(Effect.provide(layer))
      assert.strictEqual(response.provider, "b")
      assert.strictEqual((yield* a.requests).length, 0)
    }))

  it.effect("an open circuit is skipped without reaching the provider", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b")
      const layer = Router.layer([
        { name: "a", layer: a.layer.pipe(CircuitBreaker.layer({ failureThreshold: 1, cooldown: "1 minute" })) },
        { name: "b", layer: b.layer }
      ], { strategy: "priority" })
      const events: Array<Events.LlmEvent> = []
      const [first, second] = yield* Effect.gen(function*() {
        const bus = yield* Events.LlmEvents
        yield* Effect.forkChild(Stream.runForEach(bus.events, (e) => Effect.sync(() => events.push(e))))
        yield* Effect.yieldNow
        const llm = yield* LLM
        const out = yield* Effect.all([llm.generate(ask()), llm.generate(ask())])
        yield* Effect.yieldNow
        return out
      }).pipe(Effect.provide(layer), Effect.provide(Events.layer()))
      assert.strictEqual(first.provider, "b")
      assert.strictEqual(second.provider, "b")
      assert.strictEqual((yield* a.requests).length, 1) // only the call that opened it
      const routes = events.filter((e): e is Events.RouteChosen => e._tag === "RouteChosen")
      assert.deepInclude(routes[routes.length - 1]!.skipped, { name: "a", reason: "circuit open" })
    }))

  it.effect("an exhausted local rate limit is skipped without reaching the provider", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a")
      const b = yield* leaf("b")
      const layer = Router.layer([
        { name: "a", layer: a.layer.pipe(RateLimit.layer({ requests: { limit: 1, window: "1 minute" }, onExceeded: "fail" })) },
        { name: "b", layer: b.layer }
      ], { strategy: "priority" })
      const out = yield* withRouter(layer, (llm) => Effect.all([llm.generate(ask()), llm.generate(ask())]))
      assert.deepStrictEqual(providers(out), ["a", "b"])
      assert.strictEqual((yield* a.requests).length, 1)
    }))

  it.effect("an over-budget candidate is skipped without reaching the provider", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a")
      const b = yield* leaf("b")
      const layer = Router.layer([
        { name: "a", layer: a.layer.pipe(Budget.layer({ limitUsd: 0.000001, window: "day", price: { provider: "openai", model: "gpt-4o" } })) },
        { name: "b", layer: b.layer }
      ], { strategy: "priority" })
      const response = yield* Llm.generate(ask("x", { maxTokens: 1_000 })).pipe(Effect.provide(layer))
      assert.strictEqual(response.provider, "b")
      assert.strictEqual((yield* a.requests).length, 0)
    }))

  it.effect("a candidate the HealthMonitor judges down is skipped without a call", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b")
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
        .pipe(Layer.provide(HealthMonitor.layer({ interval: "1 hour", minCalls: 3 })))
      const out = yield* withRouter(layer, (llm) => Effect.forEach(Array.from({ length: 6 }), () => llm.generate(ask())))
      assert.deepStrictEqual(providers(out), ["b", "b", "b", "b", "b", "b"])
      assert.strictEqual((yield* a.requests).length, 3) // down after 3 failures: no more calls
    }))

  it.effect("nothing eligible: NoEligibleModel lists every candidate's reason", () =>
    Effect.gen(function*() {
      const plain = yield* leaf("plain")
      const tiny = yield* leaf("tiny")
      const layer = Router.layer([
        { name: "plain", provider: "lab", model: "plain", layer: plain.layer },
        { name: "tiny", provider: "lab", model: "tiny", layer: tiny.layer }
      ], { strategy: "priority" })
      const error = yield* Effect.flip(Llm.generate(ask("x", {
        tools: [{ name: "lookup", parameters: { type: "object" } }],
        maxTokens: 500
      })).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "NoEligibleModel")
      if (error._tag === "NoEligibleModel") {
        assert.deepStrictEqual(error.rejected.map((r) => r.name), ["plain", "tiny"])
        assert.strictEqual(error.rejected[0]!.reason, "lacks tools")
        assert.match(error.rejected[1]!.reason, /^context window 60 < \d+ tokens/)
      }
      assert.strictEqual((yield* plain.requests).length + (yield* tiny.requests).length, 0)
    }).pipe(Effect.provide(Lab)))
})

describe("Router failures and streams", () => {
  it.effect("every candidate failed: AllProvidersFailed with every attempt", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b", [{ error: new LlmError.Overloaded({ provider: "b", model: "m" }) }])
      const layer = Router.layer([a.layer, b.layer], { strategy: "priority" })
      const error = yield* Effect.flip(Llm.generate(ask()).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "AllProvidersFailed")
      if (error._tag === "AllProvidersFailed") {
        assert.deepStrictEqual(error.attempts.map((x) => `${x.provider}:${x.outcome}`), ["a:ServerError", "b:Overloaded"])
      }
    }))

  it.effect("fallback: false fails with the first candidate's error", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b")
      const layer = Router.layer([a.layer, b.layer], { strategy: "priority", fallback: false })
      const error = yield* Effect.flip(Llm.generate(ask()).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual((yield* b.requests).length, 0)
    }))

  it.effect("an InvalidRequest is not fallen over", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: new LlmError.InvalidRequest({ provider: "a", message: "bad" }) }])
      const b = yield* leaf("b")
      const layer = Router.layer([a.layer, b.layer], { strategy: "priority" })
      const error = yield* Effect.flip(Llm.generate(ask()).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual((yield* b.requests).length, 0)
    }))

  it.effect("a stream falls over before its first part, not after", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }, { error: server("a"), chunks: ["par", "tial"] }])
      const b = yield* leaf("b", [{ text: "from b", chunks: ["from ", "b"] }])
      const layer = Router.layer([a.layer, b.layer], { strategy: "priority" })
      const [parts, late] = yield* withRouter(layer, (llm) =>
        Effect.all([Stream.runCollect(llm.stream(ask())), Effect.flip(Stream.runCollect(llm.stream(ask())))]))
      const finish = parts[parts.length - 1]
      assert.strictEqual(finish?.type === "finish" ? finish.response.provider : undefined, "b")
      assert.strictEqual(late._tag, "ServerError")
      assert.strictEqual((yield* b.requests).length, 1)
    }))
})

describe("Router build errors", () => {
  const a = Llm.layerTest([{ text: "a" }])
  it.effect("require over a set that can never serve it fails the build, naming the candidates", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Router.layer([
        { name: "plain", provider: "lab", model: "plain", layer: a }
      ], { strategy: "priority", require: ["tools"] })))
      assert.strictEqual(error._tag, "SwitchboardConfigError")
      if (error._tag === "SwitchboardConfigError") {
        assert.strictEqual(error.path, "Router.require")
        assert.include(error.message, "plain")
        assert.include(error.message, "tools")
      }
    }).pipe(Effect.provide(Lab)))

  it.effect("a bad strategy, weight or task name is a SwitchboardConfigError naming the option", () =>
    Effect.gen(function*() {
      const path = (layer: Layer.Layer<LLM, unknown>) =>
        Effect.map(Effect.flip(Layer.build(layer)), (e) => (e as { path?: string }).path)
      assert.strictEqual(yield* path(Router.layer([a], { strategy: "fastest" as "priority" })), "Router.strategy")
      assert.strictEqual(
        yield* path(Router.layer([{ name: "x", layer: a }, { name: "y", layer: a, weight: -1 }], { strategy: "weighted" })),
        "Router.candidates[1].weight"
      )
      assert.strictEqual(
        yield* path(Router.layer([{ name: "x", layer: a }], { strategy: "byTask", tasks: { code: ["x", "nope"] } })),
        "Router.tasks.code[1]"
      )
      assert.strictEqual(yield* path(Router.layer([a], { strategy: "leastCost" })), "Router.candidates[0]")
      assert.strictEqual(yield* path(Router.layer([], { strategy: "priority" })), "Router.candidates")
    }))
})

describe("Router.switchAt", () => {
  it.effect("under a real Budget: primary while settled spend is below softAt, cheap from then on", () =>
    Effect.gen(function*() {
      const primary = yield* leaf("primary", [{ text: "a fairly long answer from the primary model" }])
      const cheap = yield* leaf("cheap", [{ text: "short" }])
      const budget = yield* Budget.make({ limitUsd: 0.05, window: "day", softAt: 0.5 })
      const stack = budget.layer(Router.switchAt({ budget, primary: primary.layer, cheap: cheap.layer }))
      const seen = yield* withRouter(stack, (llm) =>
        Effect.forEach(Array.from({ length: 30 }), () =>
          Effect.gen(function*() {
            const before = yield* budget.state()
            const response = yield* llm.generate(ask("a question of a few words", { maxTokens: 20 }))
            return { expected: before.spentUsd >= 0.5 * before.limitUsd ? "cheap" : "primary", got: response.provider }
          })))
      assert.deepStrictEqual(seen.map((s) => s.got), seen.map((s) => s.expected))
      assert.strictEqual(seen[0]!.got, "primary")
      assert.strictEqual(seen[seen.length - 1]!.got, "cheap")
    }))

  it.effect("routes to the cheap candidate once the budget passes its soft limit, and says why", () =>
    Effect.gen(function*() {
      const primary = yield* leaf("primary")
      const cheap = yield* leaf("cheap")
      const budget = yield* Budget.make({ limitUsd: 1, window: "day", softAt: 0.5 })
      let spent = 0
      const fake = {
        options: budget.options,
        state: () => Effect.map(budget.state(), (s) => ({ ...s, spentUsd: spent }))
      }
      const layer = Router.switchAt({ budget: fake, primary: primary.layer, cheap: cheap.layer })
      const out = yield* withRouter(layer, (llm) =>
        Effect.gen(function*() {
          const before = yield* llm.generate(ask())
          spent = 0.6
          const after = yield* llm.generate(ask())
          return [before, after]
        }))
      assert.deepStrictEqual(providers(out), ["primary", "cheap"])
      assert.strictEqual((yield* primary.requests).length, 1)
    }))
})

describe("Router observability and hints", () => {
  it.effect("annotates the caller's span with the candidate, the strategy and the decision", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b")
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
      const attributes = yield* Effect.gen(function*() {
        yield* Llm.generate(ask())
        const span = yield* Effect.currentSpan
        return span.attributes
      }).pipe(Effect.withSpan("caller"), Effect.provide(layer))
      assert.strictEqual(attributes.get("switchboard.route.candidate"), "b")
      assert.strictEqual(attributes.get("switchboard.route.strategy"), "priority")
      assert.strictEqual(attributes.get("switchboard.route.decision"), "b (skipped a: failed: ServerError)")
    }))

  it.effect("routing.maxLatencyMs skips a candidate whose observed latency is over it, without a call", () =>
    Effect.gen(function*() {
      const slow = yield* leaf("slow", [{ text: "slow", delay: "800 millis" }])
      const fast = yield* leaf("fast", [{ text: "fast", delay: "50 millis" }])
      const layer = Router.layer([{ name: "slow", layer: slow.layer }, { name: "fast", layer: fast.layer }], {
        strategy: "priority"
      })
      const out = yield* withRouter(layer, (llm) =>
        Effect.gen(function*() {
          const timed = (request: LlmRequest.LlmRequest) =>
            Effect.gen(function*() {
              const fiber = yield* Effect.forkChild(llm.generate(request))
              yield* TestClock.adjust("1 second")
              return yield* Fiber.join(fiber)
            })
          const first = yield* timed(ask())
          const capped = yield* timed(ask("x", { routing: { maxLatencyMs: 500 } }))
          return [first, capped]
        }))
      assert.deepStrictEqual(providers(out), ["slow", "fast"])
      assert.strictEqual((yield* slow.requests).length, 1)
    }))
})

describe("docs/routing.md example", () => {
  it.effect("leastCost over two candidates with breakers and a health monitor answers from the cheaper", () =>
    Effect.gen(function*() {
      const breaker = CircuitBreaker.layer({ failureThreshold: 5, cooldown: "30 seconds" })
      const stack = Router.layer([
        { name: "mini", provider: "openai", model: "gpt-4o-mini", layer: Llm.layerTest([{ text: "from mini" }]).pipe(breaker) },
        { name: "haiku", provider: "anthropic", model: "claude-haiku-4-5", layer: Llm.layerTest([{ text: "from haiku" }]).pipe(breaker) }
      ], { strategy: "leastCost" }).pipe(
        Layer.provide(HealthMonitor.layer({ interval: "10 seconds" }))
      )
      const program = Llm.generate({
        messages: [{ role: "user", content: "Summarise this in one line: …" }],
        maxTokens: 200,
        routing: { require: ["tools"], maxPriceUsd: 0.01 }
      }).pipe(Effect.provide(stack))
      assert.strictEqual((yield* program).text, "from mini")
    }))
})

describe("Router streams", () => {
  it.effect("leastLatency ranks streams by time to first part, not by total time", () =>
    Effect.gen(function*() {
      // a: first part after 30 ms, done after 410 ms; b: first (and only) part after 100 ms
      const a = yield* leaf("a", [{ text: "a".repeat(20), chunks: Array.from({ length: 20 }, () => "a"), delay: 10, chunkDelay: 20 }])
      const b = yield* leaf("b", [{ text: "b", delay: 100 }])
      const layer = Router.layer([{ name: "b", layer: b.layer }, { name: "a", layer: a.layer }], {
        strategy: "leastLatency",
        latency: { explore: 0 }
      })
      const winners = yield* withRouter(layer, (llm) =>
        Effect.forEach(Array.from({ length: 6 }), () =>
          Effect.gen(function*() {
            const fiber = yield* Effect.forkChild(Stream.runCollect(llm.stream(ask())))
            yield* TestClock.adjust("1 second")
            const parts = yield* Fiber.join(fiber)
            const finish = parts[parts.length - 1]
            return finish?.type === "finish" ? finish.response.provider : "none"
          })))
      assert.deepStrictEqual(winners, ["b", "a", "a", "a", "a", "a"])
    }))

  it.effect("a stream publishes RouteChosen and skips a down candidate without opening it", () =>
    Effect.gen(function*() {
      const a = yield* leaf("a", [{ error: server("a") }])
      const b = yield* leaf("b", [{ text: "b" }])
      const layer = Router.layer([{ name: "a", layer: a.layer }, { name: "b", layer: b.layer }], { strategy: "priority" })
        .pipe(Layer.provide(HealthMonitor.layer({ interval: "1 hour", minCalls: 1 })))
      const events: Array<Events.LlmEvent> = []
      yield* Effect.gen(function*() {
        const bus = yield* Events.LlmEvents
        yield* Effect.forkChild(Stream.runForEach(bus.events, (e) => Effect.sync(() => events.push(e))))
        yield* Effect.yieldNow
        const llm = yield* LLM
        yield* Stream.runCollect(llm.stream(ask()))
        yield* Stream.runCollect(llm.stream(ask()))
        yield* Effect.yieldNow
      }).pipe(Effect.provide(layer), Effect.provide(Events.layer()))
      assert.strictEqual((yield* a.requests).length, 1)
      const routes = events.filter((e): e is Events.RouteChosen => e._tag === "RouteChosen")
      assert.deepStrictEqual(routes.map((r) => r.candidate), ["a", "b", "b"])
      assert.deepStrictEqual(routes[2]!.skipped, [{ name: "a", reason: "down (HealthMonitor)" }])
    }))
})
