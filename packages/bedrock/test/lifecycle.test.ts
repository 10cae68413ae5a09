/**
 * Cancellation, credentials, configuration and transport: interrupting a
 * call closes the request the simulator is holding, the secret never leaks,
 * `layerClientConfig` reads the standard AWS variables, and calls share one
 * kept-alive HTTP/1.1 connection unless `httpVersion: "2"` asks for the SDK's
 * own handler.
 */
import { assert, describe, it } from "@effect/vitest"
import { Llm } from "@switchboard/core"
import { Crafted, Sim } from "@switchboard/sim"
import { ConfigProvider, Effect, Fiber, Layer, Redacted, Stream } from "effect"
import { Bedrock } from "../src/index.ts"
import { fault, modelLayer, NOVA, SECRET, user } from "./helpers.ts"

type Outcomes = Record<string, number>

const outcomesOf = (sim: Sim.SimHandle, model: string) =>
  Effect.map(sim.stats, (stats): Outcomes => stats.providers.bedrock?.models[model]?.outcomes ?? {})

const countOf = (outcomes: Outcomes) => Object.values(outcomes).reduce((a, b) => a + b, 0)

/** Polls (real time) until the simulator has counted one closed exchange for `model`. */
const closed = (sim: Sim.SimHandle, model: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      const outcomes = yield* outcomesOf(sim, model)
      if (countOf(outcomes) > 0) return outcomes
      yield* Effect.sleep("10 millis")
    }
    return yield* outcomesOf(sim, model)
  })

describe("cancellation", () => {
  // The simulator counts an exchange's outcome when its connection closes. With a
  // 5 s stall, a count within the first second can only come from the client
  // closing the request. (The sim labels it "stall" rather than "aborted"
  // over HTTP/2: node's compat layer emits 'finish' before 'close' on a peer
  // reset — see the package report.)
  it.live("interrupting generate aborts the HTTP request and the simulator sees the stream close", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const start = Date.now()
      const fiber = yield* Effect.forkChild(
        Llm.generate(user("x")).pipe(Effect.provide(modelLayer(sim, fault("stall-ms=5000"))))
      )
      yield* Effect.sleep("300 millis")
      assert.strictEqual(countOf(yield* outcomesOf(sim, NOVA)), 0)
      yield* Fiber.interrupt(fiber)
      const outcomes = yield* closed(sim, NOVA)
      assert.strictEqual(countOf(outcomes), 1)
      assert.isTrue((outcomes.aborted ?? 0) + (outcomes.stall ?? 0) === 1, JSON.stringify(outcomes))
      assert.isBelow(Date.now() - start, 2500)
    }))

  it.live("interrupting a stream mid-way closes its request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const start = Date.now()
      const received: Array<string> = []
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(Llm.stream(user("Tell me a story")), (part) => Effect.sync(() => received.push(part.type))).pipe(
          Effect.provide(modelLayer(sim, fault("stall-mid-ms=5000;stall-after=2")))
        )
      )
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(received, ["text-delta"])
      assert.strictEqual(countOf(yield* outcomesOf(sim, NOVA)), 0)
      yield* Fiber.interrupt(fiber)
      const outcomes = yield* closed(sim, NOVA)
      assert.strictEqual(countOf(outcomes), 1, JSON.stringify(outcomes))
      assert.isBelow(Date.now() - start, 2500)
    }))

  it.live("taking the first parts of a stream closes it too", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const parts = yield* Stream.runCollect(Stream.take(Llm.stream(user("Tell me a story")), 1)).pipe(
        Effect.provide(modelLayer(sim, fault("stall-mid-ms=5000;stall-after=2")))
      )
      assert.strictEqual(parts.length, 1)
      const outcomes = yield* closed(sim, NOVA)
      assert.strictEqual(countOf(outcomes), 1, JSON.stringify(outcomes))
    }))
})

const authConfig = {
  providers: {
    bedrock: {
      protocol: "bedrock",
      models: [{ id: NOVA, contextWindow: 128_000, maxOutput: 10_000 }],
      apiKeys: ["AKIDGOOD", "br-api-key-good"]
    }
  }
}

describe("credentials", () => {
  it.live("a rejected access key is AuthenticationFailed and the secret is in no error text", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(authConfig)
      const layer = modelLayer(sim, { credentials: { accessKeyId: "AKIDBAD", secretAccessKey: SECRET } })
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "AuthenticationFailed")
      for (const text of [error.message, String(error), JSON.stringify(error)]) assert.notInclude(text, SECRET)
      const listing = yield* Effect.flip(Bedrock.listModels.pipe(Effect.provide(layer)))
      assert.strictEqual(listing._tag, "AuthenticationFailed")
      assert.notInclude(JSON.stringify(listing), SECRET)
      const streamed = yield* Effect.flip(Stream.runCollect(Llm.stream(user("x"))).pipe(Effect.provide(layer)))
      assert.strictEqual(streamed._tag, "AuthenticationFailed")
    }))

  it.live("an accepted access key answers, and the client holds the secret only as Redacted", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(authConfig)
      const layer = modelLayer(sim, {
        credentials: { accessKeyId: "AKIDGOOD", secretAccessKey: Redacted.make(SECRET), sessionToken: "session-token-xyz" }
      })
      const response = yield* Llm.generate(user("x")).pipe(Effect.provide(layer))
      assert.strictEqual(response.finishReason, "stop")
      assert.notInclude(JSON.stringify(response), SECRET)
      const client = yield* Bedrock.BedrockClient.pipe(Effect.provide(layer))
      assert.strictEqual(String(client.secret), "<redacted>")
      assert.strictEqual(Redacted.value(client.secret!), SECRET)
    }))

  it.live("a Bedrock API key is sent as a bearer token, for calls and for the model list", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(authConfig)
      const good = modelLayer(sim, { credentials: undefined, apiKey: "br-api-key-good" })
      const response = yield* Llm.generate(user("x")).pipe(Effect.provide(good))
      assert.isAbove(response.text.length, 0)
      const models = yield* Bedrock.listModels.pipe(Effect.provide(good))
      assert.deepStrictEqual(models.map((m) => m.id), [NOVA])
      const bad = modelLayer(sim, { credentials: undefined, apiKey: Redacted.make("br-api-key-bad-123") })
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(bad)))
      assert.strictEqual(error._tag, "AuthenticationFailed")
      assert.notInclude(JSON.stringify(error), "br-api-key-bad-123")
    }))

  it.live("an unreachable endpoint is NetworkError, for calls and for the model list", () =>
    Effect.gen(function*() {
      const layer = Bedrock.model(NOVA).pipe(
        Layer.provideMerge(Bedrock.layerClient({
          region: "us-east-1",
          endpoint: "http://127.0.0.1:9",
          credentials: { accessKeyId: "AKID", secretAccessKey: SECRET }
        }))
      )
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "NetworkError")
      const listing = yield* Effect.flip(Bedrock.listModels.pipe(Effect.provide(layer)))
      assert.strictEqual(listing._tag, "NetworkError")
    }))
})

const fromEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(env))

describe("layerClientConfig", () => {
  it.live("reads AWS_REGION, the access key pair and BEDROCK_ENDPOINT", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const layer = Bedrock.model(NOVA).pipe(
        Layer.provideMerge(Bedrock.layerClientConfig()),
        Layer.provide(fromEnv({
          AWS_REGION: "eu-west-1",
          AWS_ACCESS_KEY_ID: "AKIDENV",
          AWS_SECRET_ACCESS_KEY: SECRET,
          BEDROCK_ENDPOINT: sim.providerUrl("bedrock")
        }))
      )
      const response = yield* Llm.generate(user("x")).pipe(Effect.provide(layer))
      assert.isAbove(response.text.length, 0)
      const client = yield* Bedrock.BedrockClient.pipe(Effect.provide(layer))
      assert.strictEqual(client.region, "eu-west-1")
      assert.strictEqual(client.endpoint, sim.providerUrl("bedrock"))
      assert.strictEqual(String(client.secret), "<redacted>")
    }))

  it.effect("falls back to AWS_DEFAULT_REGION and to the default credential chain", () =>
    Effect.gen(function*() {
      const options = yield* Bedrock.clientConfig().pipe(
        Effect.provide(fromEnv({ AWS_DEFAULT_REGION: "us-west-2", BEDROCK_TIMEOUT: "2 seconds" }))
      )
      assert.strictEqual(options.region, "us-west-2")
      assert.isUndefined(options.credentials)
      assert.isUndefined(options.apiKey)
      assert.isDefined(options.timeout)
    }))

  it.effect("reads a Bedrock API key from AWS_BEARER_TOKEN_BEDROCK as Redacted", () =>
    Effect.gen(function*() {
      const options = yield* Bedrock.clientConfig().pipe(
        Effect.provide(fromEnv({ AWS_REGION: "us-east-1", AWS_BEARER_TOKEN_BEDROCK: "br-key" }))
      )
      assert.isTrue(Redacted.isRedacted(options.apiKey))
    }))

  it.effect("a missing region fails with a ConfigError naming AWS_REGION", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(Bedrock.layerClientConfig()).pipe(Effect.provide(fromEnv({ AWS_ACCESS_KEY_ID: "AKID" })))
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(String(error), "AWS_REGION")
    }))

  it.effect("an access key id without its secret fails naming AWS_SECRET_ACCESS_KEY, and the reverse names AWS_ACCESS_KEY_ID", () =>
    Effect.gen(function*() {
      const noSecret = yield* Effect.flip(
        Bedrock.clientConfig().pipe(Effect.provide(fromEnv({ AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "AKID" })))
      )
      assert.include(String(noSecret), "AWS_SECRET_ACCESS_KEY")
      const noId = yield* Effect.flip(
        Bedrock.clientConfig().pipe(Effect.provide(fromEnv({ AWS_REGION: "us-east-1", AWS_SECRET_ACCESS_KEY: SECRET })))
      )
      assert.include(String(noId), "AWS_ACCESS_KEY_ID")
      assert.notInclude(String(noId), SECRET)
    }))

  it.effect("a BEDROCK_ENDPOINT that is not a URL fails naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Bedrock.clientConfig().pipe(Effect.provide(fromEnv({ AWS_REGION: "us-east-1", BEDROCK_ENDPOINT: "not a url" })))
      )
      assert.include(String(error), "BEDROCK_ENDPOINT")
    }))
})

describe("transport", () => {
  const converse = {
    output: { message: { role: "assistant", content: [{ text: "Hello." }] } },
    stopReason: "end_turn",
    usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5 },
    metrics: { latencyMs: 1 }
  }
  const modelAt = (url: string, httpVersion?: "1.1" | "2") =>
    Bedrock.model(NOVA).pipe(Layer.provide(Layer.orDie(Bedrock.layerClient({
      region: "us-east-1",
      endpoint: url,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: SECRET },
      ...(httpVersion !== undefined ? { httpVersion } : {})
    }))))

  it.live("calls one after another share one kept-alive HTTP/1.1 connection; httpVersion \"2\" is the SDK's HTTP/2", () =>
    Effect.gen(function*() {
      for (const httpVersion of [undefined, "2"] as const) {
        const server = yield* Crafted.serve(() => ({ json: converse }))
        const answers = yield* Effect.scoped(Effect.gen(function*() {
          const texts: Array<string> = []
          for (let i = 0; i < 3; i++) texts.push((yield* Llm.generate(user("Hi"))).text)
          return texts
        }).pipe(Effect.provide(modelAt(server.url, httpVersion))))
        assert.deepStrictEqual(answers, ["Hello.", "Hello.", "Hello."])
        assert.deepStrictEqual(server.received.map((r) => r.httpVersion), httpVersion === "2" ? ["2.0", "2.0", "2.0"] : ["1.1", "1.1", "1.1"])
        if (httpVersion === undefined) {
          assert.strictEqual(new Set(server.received.map((r) => r.remotePort)).size, 1, "one connection for the three calls")
        }
      }
    }).pipe(Effect.scoped))
})
