import { assert, layer } from "@effect/vitest"
import { Deadline, Llm, LlmError } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Clock, Duration, Effect, Stream } from "effect"
import { OpenAI } from "../src/index.ts"
import { client, generate, llm, recorder, SimLayer, user } from "./support.ts"

const fault = (sim: Sim.SimHandle, value: string) =>
  Effect.flip(generate(llm(client(sim, { headers: { "x-sim-fault": value } })), user("hi")))

const jsonFetch = (status: number, body: unknown, headers: Record<string, string> = {}): typeof globalThis.fetch => () =>
  Promise.resolve(
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })
  )

const fake = (fetch: typeof globalThis.fetch, apiKey = "sk-test") =>
  llm(OpenAI.layerClient({ apiKey, baseURL: "http://fake.invalid/v1", fetch }))

const statusTable: ReadonlyArray<readonly [number, LlmError.LlmError["_tag"]]> = [
  [400, "InvalidRequest"],
  [401, "AuthenticationFailed"],
  [402, "QuotaExhausted"],
  [403, "PermissionDenied"],
  [404, "ModelNotFound"],
  [408, "Timeout"],
  [409, "InvalidRequest"],
  [413, "InvalidRequest"],
  [422, "InvalidRequest"],
  [429, "RateLimited"],
  [500, "ServerError"],
  [502, "ServerError"],
  [503, "Overloaded"],
  [504, "Timeout"],
  [529, "Overloaded"]
]

layer(SimLayer, { excludeTestServices: true })("OpenAI errors", (it) => {
  it.effect("maps every HTTP error status to its LlmError tag", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      for (const [status, tag] of statusTable) {
        const error = yield* fault(sim, `status=${status}`)
        assert.strictEqual(error._tag, tag, `status ${status}`)
        assert.strictEqual((error as { provider: string }).provider, "openai")
        assert.strictEqual((error as { model?: string }).model, "gpt-4o-mini")
        if (error._tag === "ServerError") assert.strictEqual(error.status, status)
      }
    }))

  it.effect("reads retry-after (seconds) and retry-after-ms into retryAfter of 429 and 503", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seconds = yield* fault(sim, "status=429;retry-after=2")
      assert.instanceOf(seconds, LlmError.RateLimited)
      assert.strictEqual(Duration.toMillis(seconds.retryAfter!), 2_000)
      assert.strictEqual(seconds.source, "provider")
      assert.strictEqual(seconds.scope, "requests")
      const millis = yield* fault(sim, "status=429;retry-after-ms=1500")
      assert.instanceOf(millis, LlmError.RateLimited)
      assert.strictEqual(Duration.toMillis(millis.retryAfter!), 1_500)
      const overloaded = yield* fault(sim, "status=503;retry-after=4")
      assert.instanceOf(overloaded, LlmError.Overloaded)
      assert.strictEqual(Duration.toMillis(overloaded.retryAfter!), 4_000)
      const none = yield* fault(sim, "status=429")
      assert.instanceOf(none, LlmError.RateLimited)
      assert.isUndefined(none.retryAfter)
    }))

  it.effect("an unknown model is ModelNotFound naming the model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(generate(llm(client(sim), "gpt-nope"), user("hi")))
      assert.instanceOf(error, LlmError.ModelNotFound)
      assert.strictEqual(error.model, "gpt-nope")
      assert.include(error.message, "gpt-nope")
    }))

  it.effect("a prompt over the context window is ContextLengthExceeded with the limit and the size", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(generate(llm(client(sim), "tiny"), user("word ".repeat(200))))
      assert.instanceOf(error, LlmError.ContextLengthExceeded)
      assert.strictEqual(error.limit, 40)
      assert.isTrue(error.requested! > 40)
    }))

  it.effect("insufficient_quota is QuotaExhausted, not a retryable rate limit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(generate(
        fake(jsonFetch(429, {
          error: {
            message: "You exceeded your current quota, please check your plan and billing details.",
            type: "insufficient_quota",
            param: null,
            code: "insufficient_quota"
          }
        })),
        user("hi")
      ))
      assert.instanceOf(error, LlmError.QuotaExhausted)
      assert.isFalse(LlmError.isRetryable(error))
    }))

  it.effect("a body that is not JSON is MalformedResponse; a body cut mid-way is NetworkError", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      assert.instanceOf(yield* fault(sim, "malformed"), LlmError.MalformedResponse)
      assert.instanceOf(yield* fault(sim, "cut-after=1"), LlmError.NetworkError)
      const html = yield* Effect.flip(generate(
        fake(() => Promise.resolve(new Response("<html>gateway</html>", { status: 200, headers: { "content-type": "text/html" } }))),
        user("hi")
      ))
      assert.instanceOf(html, LlmError.MalformedResponse)
    }))

  it.effect("tool-call arguments that are not JSON are MalformedResponse", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(generate(
        fake(jsonFetch(200, {
          id: "chatcmpl-1",
          object: "chat.completion",
          choices: [{
            index: 0,
            finish_reason: "tool_calls",
            message: { role: "assistant", content: null, tool_calls: [{ id: "call_9", type: "function", function: { name: "f", arguments: "not json" } }] }
          }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 }
        })),
        user("hi")
      ))
      assert.instanceOf(error, LlmError.MalformedResponse)
      assert.include(error.detail, "call_9")
    }))

  it.effect("a refused connection is NetworkError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(generate(
        llm(OpenAI.layerClient({ apiKey: "sk-test", baseURL: "http://127.0.0.1:1/v1" })),
        user("hi")
      ))
      assert.instanceOf(error, LlmError.NetworkError)
    }))

  it.effect("the SDK timeout is Timeout with the time it waited", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(generate(
        llm(client(sim, { headers: { "x-sim-fault": "stall-ms=3000" }, timeout: "200 millis" })),
        user("hi")
      ))
      assert.instanceOf(error, LlmError.Timeout)
      assert.strictEqual(Duration.toMillis(error.after), 200)
      assert.strictEqual(error.provider, "openai")
    }))

  it.effect("the time left before the deadline is the SDK's request timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const now = yield* Clock.currentTimeMillis
      // Only the SDK can time out here: the deadline is set but nothing else enforces it.
      const error = yield* Effect.flip(
        generate(llm(client(sim, { headers: { "x-sim-fault": "stall-ms=3000" } })), user("hi")).pipe(
          Effect.provideService(Deadline.CurrentDeadline, now + 300)
        )
      )
      const elapsed = (yield* Clock.currentTimeMillis) - now
      assert.instanceOf(error, LlmError.Timeout)
      assert.isTrue(Duration.toMillis(error.after) <= 300 && Duration.toMillis(error.after) > 200)
      assert.isTrue(elapsed < 2_000, `timed out after ${elapsed}ms`)
    }))

  it.effect("a request deadline bounds a generate and a stream with Timeout", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const model = llm(client(sim, { headers: { "x-sim-fault": "stall-ms=3000" } }))
      const start = yield* Clock.currentTimeMillis
      const error = yield* Effect.flip(generate(model, { ...user("hi"), deadline: Duration.millis(250) }))
      assert.instanceOf(error, LlmError.Timeout)
      const streamed = yield* Effect.flip(
        Stream.runCollect(Llm.stream({ ...user("hi"), deadline: Duration.millis(250) })).pipe(Effect.provide(model))
      )
      assert.instanceOf(streamed, LlmError.Timeout)
      assert.isTrue((yield* Clock.currentTimeMillis) - start < 2_500)
    }))

  it.effect("the API key never appears in an error, its message or its JSON", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const key = "sk-leak-9f8e7d6c5b4a3210"
      const check = (error: unknown) => {
        assert.notInclude(String(error), key)
        assert.notInclude(JSON.stringify(error), key)
        assert.notInclude((error as Error).message, key)
        assert.notInclude(String((error as { detail?: unknown }).detail ?? ""), key)
        assert.notInclude(JSON.stringify((error as { raw?: unknown }).raw ?? null), key)
      }
      const rejected = yield* Effect.flip(generate(llm(client(sim, { provider: "locked", apiKey: key })), user("hi")))
      assert.instanceOf(rejected, LlmError.AuthenticationFailed)
      check(rejected)
      const streamed = yield* Effect.flip(
        Stream.runCollect(Llm.stream(user("hi"))).pipe(Effect.provide(llm(client(sim, { provider: "locked", apiKey: key }))))
      )
      assert.instanceOf(streamed, LlmError.AuthenticationFailed)
      check(streamed)
      // A server that echoes the key, whole or masked, in its message.
      const echoed = yield* Effect.flip(generate(
        fake(jsonFetch(401, {
          error: {
            message: `Incorrect API key provided: ${key}. Also: ${key.slice(0, 8)}****${key.slice(-4)}. Key was ${key}`,
            type: "invalid_request_error",
            code: "invalid_api_key"
          }
        }), key),
        user("hi")
      ))
      assert.instanceOf(echoed, LlmError.AuthenticationFailed)
      check(echoed)
      assert.notInclude(echoed.message, `${key.slice(0, 8)}****`)
      // Connection errors too.
      const network = yield* Effect.flip(generate(
        fake(() => Promise.reject(new Error(`connect failed for Bearer ${key}`)), key),
        user("hi")
      ))
      assert.instanceOf(network, LlmError.NetworkError)
      check(network)
      // And the client service shows only "<redacted>".
      const shown = yield* Effect.map(OpenAI.OpenAIClient, (c) => `${String(c.apiKey)} ${JSON.stringify(c.apiKey)}`).pipe(
        Effect.provide(OpenAI.layerClient({ apiKey: key }))
      )
      assert.notInclude(shown, key)
    }))

  it.effect("a client built without a key fails every call with AuthenticationFailed, sending nothing", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      const model = llm(OpenAI.layerClient({ apiKey: "", baseURL: `${sim.url}/openai/v1`, fetch: seen.fetch }))
      const error = yield* Effect.flip(generate(model, user("hi")))
      assert.instanceOf(error, LlmError.AuthenticationFailed)
      const models = yield* Effect.flip(OpenAI.listModels.pipe(
        Effect.provide(OpenAI.layerClient({ apiKey: "", baseURL: `${sim.url}/openai/v1`, fetch: seen.fetch }))
      ))
      assert.instanceOf(models, LlmError.AuthenticationFailed)
      assert.strictEqual(seen.headers.length, 0)
    }))

  it.effect("never dies: every failure above is a typed error in the error channel", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const faults = ["status=500", "malformed", "cut-after=1", "truncate=1", "stream-error=1", "cut-after=0"]
      for (const value of faults) {
        const model = llm(client(sim, { headers: { "x-sim-fault": value } }))
        const whole = yield* Effect.exit(generate(model, user("hi")))
        const streamed = yield* Effect.exit(Stream.runCollect(Llm.stream(user("hi"))).pipe(Effect.provide(model)))
        for (const exit of [whole, streamed]) {
          if (exit._tag === "Failure") {
            assert.isTrue(exit.cause.reasons.every((reason) => reason._tag === "Fail"), `${value}: ${String(exit.cause)}`)
          }
        }
      }
    }))
})

