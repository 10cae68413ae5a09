import { assert, describe, it, layer } from "@effect/vitest"
import { Llm, type LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Duration, Effect, Fiber, Layer, Stream } from "effect"
import * as Net from "node:net"
import { Google } from "../src/index.ts"
import { fault, goodKey, llm, user } from "./helpers.ts"
import { simConfig } from "./helpers.ts"

const failWith = (layer: Layer.Layer<Llm.LLM>, request = user("hello")) =>
  Effect.flip(Llm.generate(request).pipe(Effect.provide(layer)))

const streamFailWith = (layer: Layer.Layer<Llm.LLM>, request = user("hello")) =>
  Effect.flip(Stream.runCollect(Llm.stream(request)).pipe(Effect.provide(layer)))

const retryMs = (error: LlmError.LlmError): number | undefined =>
  "retryAfter" in error && error.retryAfter !== undefined ? Duration.toMillis(error.retryAfter) : undefined

interface Case {
  readonly fault: string
  readonly tag: LlmError.LlmError["_tag"]
  readonly retryAfterMs?: number
  readonly check?: (error: LlmError.LlmError) => void
}

const cases: ReadonlyArray<Case> = [
  {
    fault: "status=429;retry-after=2",
    tag: "RateLimited",
    retryAfterMs: 2000,
    check: (e) => {
      // The sim's QuotaFailure names a requests-per-minute quota.
      if (e._tag === "RateLimited") {
        assert.strictEqual(e.scope, "requests")
        assert.strictEqual(e.source, "provider")
      }
    }
  },
  { fault: "status=429;retry-after-ms=1500", tag: "RateLimited", retryAfterMs: 1500 },
  { fault: "status=429", tag: "RateLimited" },
  { fault: "status=503", tag: "Overloaded" },
  { fault: "status=500", tag: "ServerError", check: (e) => e._tag === "ServerError" && assert.strictEqual(e.status, 500) },
  { fault: "status=502", tag: "ServerError" },
  { fault: "status=504", tag: "Timeout" },
  { fault: "status=401", tag: "AuthenticationFailed" },
  { fault: "status=403", tag: "PermissionDenied" },
  { fault: "status=412", tag: "PermissionDenied" },
  { fault: "status=404", tag: "ModelNotFound" },
  {
    fault: "status=400",
    tag: "InvalidRequest",
    check: (e) => e._tag === "InvalidRequest" && assert.include(e.message, "invalid argument")
  },
  {
    fault: "status=400;message=The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).",
    tag: "ContextLengthExceeded",
    check: (e) => {
      if (e._tag === "ContextLengthExceeded") {
        assert.strictEqual(e.requested, 2_000_000)
        assert.strictEqual(e.limit, 1_048_576)
      }
    }
  },
  { fault: "malformed", tag: "MalformedResponse" },
  { fault: "cut-after=1", tag: "NetworkError" }
]

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google error mapping", (it) => {
  for (const c of cases) {
    it.effect(`${c.fault} → ${c.tag}${c.retryAfterMs === undefined ? "" : ` (retry after ${c.retryAfterMs} ms)`}`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const error = yield* failWith(llm(sim, fault(c.fault)))
        assert.strictEqual(error._tag, c.tag)
        assert.strictEqual(retryMs(error), c.retryAfterMs)
        assert.strictEqual((error as { provider?: string }).provider, "google")
        assert.strictEqual((error as { model?: string }).model, "gemini-2.5-flash")
        c.check?.(error)
      }))
  }

  it.effect("a prompt longer than the model's context window → ContextLengthExceeded with limit and requested", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* failWith(llm(sim, { model: "gemini-tiny" }), user("word ".repeat(200)))
      assert.strictEqual(error._tag, "ContextLengthExceeded")
      if (error._tag === "ContextLengthExceeded") {
        assert.strictEqual(error.limit, 40)
        assert.isAbove(error.requested!, 40)
      }
    }))

  it.effect("maxTokens above the model's output limit → InvalidRequest naming maxOutputTokens", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* failWith(llm(sim, { model: "gemini-tiny" }), { ...user("hi"), maxTokens: 100 })
      assert.strictEqual(error._tag, "InvalidRequest")
      if (error._tag === "InvalidRequest") assert.include(error.message, "maxOutputTokens")
    }))

  it.effect("an unknown model → ModelNotFound", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* failWith(llm(sim, { model: "gemini-nope" }))
      assert.strictEqual(error._tag, "ModelNotFound")
      assert.strictEqual((error as { model?: string }).model, "gemini-nope")
    }))

  it.effect("an invalid request fails before any network call, naming the field", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const before = (yield* sim.stats).providers.gemini?.requests ?? 0
      const error = yield* failWith(llm(sim), { ...user("hi"), temperature: 3 })
      assert.strictEqual(error._tag, "InvalidRequest")
      if (error._tag === "InvalidRequest") assert.strictEqual(error.field, "temperature")
      assert.strictEqual((yield* sim.stats).providers.gemini?.requests ?? 0, before)
    }))

  it.effect("the SDK request timeout → Timeout after that long", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* failWith(llm(sim, { timeout: "200 millis", ...fault("stall-ms=3000") }))
      assert.strictEqual(error._tag, "Timeout")
      if (error._tag === "Timeout") assert.strictEqual(Duration.toMillis(error.after), 200)
      const streamed = yield* streamFailWith(llm(sim, { timeout: 200, ...fault("stall-mid-ms=3000;stall-after=1") }))
      assert.strictEqual(streamed._tag, "Timeout")
    }))

  it.effect("a request deadline bounds the call → Timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const start = Date.now()
      const error = yield* failWith(llm(sim, fault("stall-ms=3000")), { ...user("hi"), deadline: 250 })
      assert.strictEqual(error._tag, "Timeout")
      assert.isBelow(Date.now() - start, 2_000)
    }))

  it.effect("a refused connection → NetworkError", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const server = Net.createServer()
          server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as Net.AddressInfo
            server.close(() => resolve(port))
          })
        })
      )
      const layer = Google.model("gemini-2.5-flash").pipe(
        Layer.provide(Layer.orDie(Google.layerClient({ apiKey: goodKey, baseURL: `http://127.0.0.1:${port}/gemini` })))
      )
      const error = yield* failWith(layer)
      assert.strictEqual(error._tag, "NetworkError")
      const streamed = yield* streamFailWith(layer)
      assert.strictEqual(streamed._tag, "NetworkError")
    }))
})

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google never leaks the API key", (it) => {
  const key = "AIza-LEAK-Zq9x7distinctive"
  const assertClean = (error: LlmError.LlmError) => {
    assert.notInclude(String(error), key)
    assert.notInclude(JSON.stringify(error), key)
    assert.notInclude(error.message, key)
  }

  it.effect("a rejected key → AuthenticationFailed without the key in the error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const layer = llm(sim, { provider: "gemini-keyed", apiKey: key })
      const error = yield* failWith(layer)
      assert.strictEqual(error._tag, "AuthenticationFailed")
      assertClean(error)
      const streamed = yield* streamFailWith(layer)
      assert.strictEqual(streamed._tag, "AuthenticationFailed")
      assertClean(streamed)
    }))

  it.effect("a provider message that echoes the key is scrubbed", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* failWith(
        llm(sim, { apiKey: key, ...fault(`status=400;message=API key ${key} not valid. Please pass a valid API key.`) })
      )
      assert.include(error.message, "<redacted>")
      assertClean(error)
    }))

  it.effect("the right key is accepted by a provider that checks keys", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(llm(sim, { provider: "gemini-keyed" })))
      assert.isAbove(response.text.length, 0)
    }))
})

describe("Google cancellation", () => {
  const waitFor = <A>(probe: Effect.Effect<A>, ok: (a: A) => boolean) =>
    Effect.gen(function*() {
      for (let i = 0; i < 200; i++) {
        const a = yield* probe
        if (ok(a)) return a
        yield* Effect.sleep("10 millis")
      }
      return yield* Effect.die(new Error("condition not reached in 2 s"))
    })

  const outcomes = (sim: Sim.SimHandle, provider: string) =>
    Effect.map(sim.stats, (s) => s.providers[provider]?.models["gemini-2.5-flash"] ?? { requests: 0, outcomes: {} })

  it.live("interrupting a call aborts its HTTP request (the sim sees the client go away)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig())
      const fiber = yield* Effect.forkChild(Llm.generate(user("hi")).pipe(Effect.provide(llm(sim, { provider: "gemini-slow" }))))
      yield* waitFor(outcomes(sim, "gemini-slow"), (m) => m.requests === 1)
      yield* Fiber.interrupt(fiber)
      const after = yield* waitFor(outcomes(sim, "gemini-slow"), (m) => (m.outcomes.aborted ?? 0) === 1)
      assert.deepStrictEqual(after.outcomes, { aborted: 1 })
    }))

  it.live("interrupting a call the sim stalls (x-sim-fault stall-ms) aborts its HTTP request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig())
      const fiber = yield* Effect.forkChild(Llm.generate(user("hi")).pipe(Effect.provide(llm(sim, fault("stall-ms=5000")))))
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(fiber)
      const after = yield* waitFor(outcomes(sim, "gemini"), (m) => (m.outcomes.aborted ?? 0) === 1)
      assert.deepStrictEqual(after, { requests: 1, outcomes: { aborted: 1 } })
    }))

  it.live("interrupting a stream mid-way aborts its HTTP request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig())
      const layer = llm(sim, fault("stall-mid-ms=5000;stall-after=1"))
      let received = 0
      const fiber = yield* Effect.forkChild(
        Llm.stream(user("Stream a sentence please")).pipe(
          Stream.runForEach(() => Effect.sync(() => received++)),
          Effect.provide(layer)
        )
      )
      yield* waitFor(Effect.sync(() => received), (n) => n >= 1)
      yield* Fiber.interrupt(fiber)
      const after = yield* waitFor(outcomes(sim, "gemini"), (m) => (m.outcomes.aborted ?? 0) === 1)
      assert.deepStrictEqual(after.outcomes, { aborted: 1 })
    }))

  it.live("taking the first parts of a stream closes the connection", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(simConfig())
      const layer = llm(sim, fault("stall-mid-ms=5000;stall-after=1"))
      const first = yield* Stream.runCollect(Stream.take(Llm.stream(user("Stream a sentence please")), 1)).pipe(
        Effect.provide(layer)
      )
      assert.strictEqual(first.length, 1)
      const after = yield* waitFor(outcomes(sim, "gemini"), (m) => (m.outcomes.aborted ?? 0) === 1)
      assert.deepStrictEqual(after.outcomes, { aborted: 1 })
    }))
})
