import { assert, describe, it, layer } from "@effect/vitest"
import { Llm, LLM } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { ConfigProvider, Effect, Layer, Stream } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Google } from "../src/index.ts"
import { client, goodKey, llm, simConfig, user } from "./helpers.ts"

const withEnv = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromUnknown(env))

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google.layerClientConfig", (it) => {
  const keyed = (sim: Sim.SimHandle) => sim.providerUrl("gemini-keyed")

  it.effect("reads GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("hi")).pipe(
        Effect.provide(Google.model("gemini-2.5-flash").pipe(
          Layer.provide(Google.layerClientConfig()),
          Layer.provide(withEnv({ GEMINI_API_KEY: goodKey, GOOGLE_GEMINI_BASE_URL: keyed(sim) }))
        ))
      )
      assert.isAbove(response.text.length, 0)
    }))

  it.effect("falls back to GOOGLE_API_KEY, and prefers GEMINI_API_KEY when both are set", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const run = (env: Record<string, string>) =>
        Llm.generate(user("hi")).pipe(
          Effect.provide(Google.model("gemini-2.5-flash").pipe(
            Layer.provide(Google.layerClientConfig({ baseURL: keyed(sim) })),
            Layer.provide(withEnv(env))
          ))
        )
      assert.isAbove((yield* run({ GOOGLE_API_KEY: goodKey })).text.length, 0)
      assert.isAbove((yield* run({ GEMINI_API_KEY: goodKey, GOOGLE_API_KEY: "AIza-wrong" })).text.length, 0)
      const error = yield* Effect.flip(run({ GEMINI_API_KEY: "AIza-wrong", GOOGLE_API_KEY: goodKey }))
      assert.strictEqual(error._tag, "AuthenticationFailed")
    }))

  it.effect("fails with a ConfigError naming both variables when neither is set", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.map(Google.GoogleClient, (c) => c).pipe(Effect.provide(Google.layerClientConfig()), Effect.provide(withEnv({})))
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "GEMINI_API_KEY")
      assert.include(error.message, "GOOGLE_API_KEY")
    }))

  it.effect("holds the configured key as Redacted", () =>
    Effect.gen(function*() {
      const c = yield* Google.GoogleClient
      assert.strictEqual(String(c.apiKey), "<redacted>")
    }).pipe(Effect.provide(Google.layerClientConfig()), Effect.provide(withEnv({ GEMINI_API_KEY: "AIza-from-env" }))))
})

describe("Google.layerVertex", () => {
  const fakeKey = "-----BEGIN PRIVATE KEY-----\nNOT-A-REAL-KEY-4242\n-----END PRIVATE KEY-----\n"

  it.effect("layerVertexConfig reads GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION into a Vertex client", () =>
    Effect.gen(function*() {
      const c = yield* Google.GoogleClient
      assert.strictEqual(c.backend, "vertex")
      assert.isTrue(c.sdk.vertexai)
      assert.strictEqual(c.sdk.models !== undefined, true)
      assert.isUndefined(c.apiKey)
    }).pipe(
      Effect.provide(Google.layerVertexConfig()),
      Effect.provide(withEnv({ GOOGLE_CLOUD_PROJECT: "my-project", GOOGLE_CLOUD_LOCATION: "europe-west4" }))
    ))

  it.effect("layerVertexConfig without GOOGLE_CLOUD_PROJECT fails with a ConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.map(Google.GoogleClient, (c) => c).pipe(
          Effect.provide(Google.layerVertexConfig()),
          Effect.provide(withEnv({ GOOGLE_CLOUD_LOCATION: "us-central1" }))
        )
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "GOOGLE_CLOUD_PROJECT")
    }))

  it.effect("credentials that cannot sign a token → AuthenticationFailed, without the private key", () =>
    Effect.gen(function*() {
      const vertex = Google.model("gemini-2.5-flash").pipe(
        Layer.provide(Google.layerVertex({
          project: "my-project",
          location: "us-central1",
          credentials: { client_email: "bot@my-project.iam.gserviceaccount.com", private_key: fakeKey },
          // Never reached: the token cannot be made.
          baseURL: "http://127.0.0.1:9/vertex"
        }))
      )
      const error = yield* Effect.flip(Llm.generate(user("hi")).pipe(Effect.provide(vertex)))
      assert.strictEqual(error._tag, "AuthenticationFailed")
      assert.include(error.message, "credentials")
      assert.notInclude(JSON.stringify(error), "NOT-A-REAL-KEY-4242")
      assert.notInclude(String(error), "NOT-A-REAL-KEY-4242")
      const streamed = yield* Effect.flip(Stream.runCollect(Llm.stream(user("hi"))).pipe(Effect.provide(vertex)))
      assert.strictEqual(streamed._tag, "AuthenticationFailed")
    }))
})

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google.listModels", (it) => {
  it.effect("lists the API's models with ids usable in Google.model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const models = yield* Google.listModels.pipe(Effect.provide(client(sim)))
      assert.deepStrictEqual(models.map((m) => m.id), ["gemini-2.5-flash", "gemini-3-pro-preview", "gemini-tiny"])
      assert.strictEqual(models[0]!.name, "models/gemini-2.5-flash")
      assert.strictEqual(models[2]!.inputTokenLimit, 40)
      assert.strictEqual(models[2]!.outputTokenLimit, 64)
      assert.include(models[0]!.supportedActions ?? [], "generateContent")
      const response = yield* Llm.generate(user("hi")).pipe(Effect.provide(llm(sim, { model: models[1]!.id })))
      assert.strictEqual(response.model, "gemini-3-pro-preview")
    }))

  it.effect("a rejected key → AuthenticationFailed", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(
        Google.listModels.pipe(Effect.provide(client(sim, { provider: "gemini-keyed", apiKey: "AIza-list-wrong" })))
      )
      assert.strictEqual(error._tag, "AuthenticationFailed")
      assert.notInclude(JSON.stringify(error), "AIza-list-wrong")
    }))
})

// Responses the simulator has no fixture for, served from our own fixtures directory.
const ownFixtures = (() => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "switchboard-google-"))
  Fs.mkdirSync(Path.join(dir, "google"))
  const write = (name: string, value: unknown) =>
    Fs.writeFileSync(
      Path.join(dir, "google", name),
      typeof value === "string" ? value : JSON.stringify(value)
    )
  const usage = { promptTokenCount: 8, candidatesTokenCount: 2, totalTokenCount: 10 }
  const blocked = {
    promptFeedback: { blockReason: "PROHIBITED_CONTENT", blockReasonMessage: "The prompt was blocked." },
    usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 },
    responseId: "blocked-1"
  }
  const finishing = (finishReason: string) => ({
    candidates: [{ content: { role: "model", parts: [{ text: "Partial" }] }, finishReason, index: 0 }],
    usageMetadata: usage,
    responseId: `r-${finishReason}`
  })
  write("blocked.json", blocked)
  write("blocked.chunks.jsonl", JSON.stringify(blocked) + "\n")
  for (const reason of ["RECITATION", "BLOCKLIST", "SPII", "MALFORMED_FUNCTION_CALL", "OTHER"]) {
    write(`finish-${reason}.json`, finishing(reason))
  }
  const chunk = (text: string) => ({ candidates: [{ content: { role: "model", parts: [{ text }] }, index: 0 }], responseId: "nf" })
  write("no-finish.chunks.jsonl", [chunk("Hello"), chunk(" there")].map((c) => JSON.stringify(c)).join("\n") + "\n")
  write("nameless-call.json", {
    candidates: [{ content: { role: "model", parts: [{ functionCall: { args: {} } }] }, finishReason: "STOP", index: 0 }],
    responseId: "bad"
  })
  write("parallel-calls.json", {
    candidates: [{
      content: {
        role: "model",
        parts: [
          { text: "Checking both." },
          { functionCall: { name: "weather", args: { city: "Paris" } } },
          { functionCall: { name: "weather", args: { city: "Rome" }, id: "vertex-given-id" } }
        ]
      },
      finishReason: "STOP",
      index: 0
    }],
    usageMetadata: { ...usage, cachedContentTokenCount: 5, thoughtsTokenCount: 3 },
    responseId: "par"
  })
  return dir
})()

layer(Sim.layer(simConfig(ownFixtures)), { excludeTestServices: true })("Google edge responses", (it) => {
  const replay = (sim: Sim.SimHandle, file: string): Layer.Layer<LLM> =>
    llm(sim, { headers: { "x-sim-replay": `google/${file}` }, contentFilter: "return" })

  it.effect("a blocked prompt (promptFeedback.blockReason, no candidates) → ContentFiltered", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(replay(sim, "blocked.json"))))
      assert.strictEqual(error._tag, "ContentFiltered")
      assert.include(error.message, "PROHIBITED_CONTENT")
      const streamed = yield* Effect.flip(
        Stream.runCollect(Llm.stream(user("x"))).pipe(Effect.provide(replay(sim, "blocked.chunks.jsonl")))
      )
      assert.strictEqual(streamed._tag, "ContentFiltered")
    }))

  it.effect("RECITATION, BLOCKLIST and SPII → content-filter; MALFORMED_FUNCTION_CALL and OTHER → other", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const reasons: Record<string, string> = {
        RECITATION: "content-filter",
        BLOCKLIST: "content-filter",
        SPII: "content-filter",
        MALFORMED_FUNCTION_CALL: "other",
        OTHER: "other"
      }
      for (const [reason, want] of Object.entries(reasons)) {
        const response = yield* Llm.generate(user("x")).pipe(Effect.provide(replay(sim, `finish-${reason}.json`)))
        assert.strictEqual(response.finishReason, want, reason)
      }
    }))

  it.effect("a stream that ends without a finish reason fails with NetworkError after its deltas", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen: Array<string> = []
      const error = yield* Effect.flip(
        Llm.stream(user("x")).pipe(
          Stream.runForEach((p) => Effect.sync(() => p.type === "text-delta" && seen.push(p.text))),
          Effect.provide(replay(sim, "no-finish.chunks.jsonl"))
        )
      )
      assert.deepStrictEqual(seen, ["Hello", " there"])
      assert.strictEqual(error._tag, "NetworkError")
    }))

  it.effect("a function call without a name → MalformedResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(replay(sim, "nameless-call.json"))))
      assert.strictEqual(error._tag, "MalformedResponse")
    }))

  it.effect("parallel calls keep Gemini's ids where given, get stable made-up ids otherwise; cached tokens are counted", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("x")).pipe(Effect.provide(replay(sim, "parallel-calls.json")))
      assert.deepStrictEqual(response.toolCalls.map((c) => c.id), ["gemini-call-par-0", "vertex-given-id"])
      assert.strictEqual(response.finishReason, "tool-calls")
      assert.strictEqual(response.text, "Checking both.")
      assert.deepStrictEqual(response.content.map((p) => p.type), ["text", "tool-call", "tool-call"])
      assert.deepStrictEqual(response.usage, {
        inputTokens: 8,
        outputTokens: 5,
        cachedInputTokens: 5,
        cacheWriteTokens: 0,
        reasoningTokens: 3,
        totalTokens: 13
      })
      const again = yield* Llm.generate(user("x")).pipe(Effect.provide(replay(sim, "parallel-calls.json")))
      assert.deepStrictEqual(again.toolCalls.map((c) => c.id), response.toolCalls.map((c) => c.id))
    }))
})
