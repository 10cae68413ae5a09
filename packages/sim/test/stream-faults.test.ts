import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Sim } from "../src/index.ts"
import { anthropicClient, bedrockClient, call, config, geminiClient } from "./helpers.ts"

const bedrockReq = { modelId: "us.amazon.nova-micro-v1:0", messages: [{ role: "user" as const, content: [{ text: "x" }] }] }

/** Events received before the stream ended, and the error it ended with (if any). */
const collect = <A>(open: () => Promise<AsyncIterable<A>>) =>
  call(async () => {
    const events: Array<A> = []
    try {
      for await (const e of await open()) events.push(e)
      return { events, error: undefined as any }
    } catch (error) {
      return { events, error: error as any }
    }
  })

const bedrockStream = (url: string, fault: string) =>
  collect(async () => (await bedrockClient(url, "bedrock", "AKIDTEST", { "x-sim-fault": fault }).send(new ConverseStreamCommand(bedrockReq))).stream!)

const geminiStream = (url: string, fault: string) =>
  collect(() => geminiClient(url, "gemini", "k", { "x-sim-fault": fault }).models.generateContentStream({ model: "gemini-2.5-flash", contents: "x" }))

const anthropicStream = (url: string, fault: string) =>
  collect(() =>
    anthropicClient(url).messages.create(
      { model: "claude-haiku-4-5", max_tokens: 50, messages: [{ role: "user", content: "x" }], stream: true },
      { headers: { "x-sim-fault": fault } }
    )
  )

const outcomesOf = (s: Sim.Stats, provider: string, model: string) => s.providers[provider]?.models[model]?.outcomes ?? {}

layer(Sim.layer(config()), { excludeTestServices: true })("stream faults on every protocol", (it) => {
  it.effect("bedrock (HTTP/2): cut resets the stream, truncate and malformed break the frame parser", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const cut = yield* bedrockStream(sim.url, "cut-after=3")
      assert.strictEqual(cut.events.length, 3)
      assert.match(String(cut.error?.message), /NGHTTP2|closed|terminated/i)
      const trunc = yield* bedrockStream(sim.url, "truncate=2")
      assert.strictEqual(trunc.events.length, 2)
      assert.isDefined(trunc.error)
      const bad = yield* bedrockStream(sim.url, "malformed")
      assert.isDefined(bad.error)
    }))

  it.effect("bedrock (HTTP/2): a client abort is counted as aborted", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const controller = new AbortController()
      const pending = bedrockClient(sim.url, "bedrock", "AKIDTEST", { "x-sim-fault": "stall-ms=5000" })
        .send(new ConverseCommand(bedrockReq), { abortSignal: controller.signal })
        .then(() => "resolved", (e: Error) => e.name)
      yield* Effect.sleep("100 millis")
      controller.abort()
      assert.strictEqual(yield* call(() => pending), "AbortError")
      let outcomes: Record<string, number> = {}
      for (let i = 0; i < 50 && outcomes.aborted === undefined; i++) {
        yield* Effect.sleep("20 millis")
        outcomes = outcomesOf(yield* sim.stats, "bedrock", bedrockReq.modelId)
      }
      assert.deepStrictEqual(outcomes, { aborted: 1 })
    }))

  it.effect("gemini: cut, truncated, malformed and in-band error streams fail in the SDK", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.reset
      const cut = yield* geminiStream(sim.url, "cut-after=2")
      assert.strictEqual(cut.events.length, 2)
      assert.isDefined(cut.error)
      const trunc = yield* geminiStream(sim.url, "truncate=2")
      assert.isDefined(trunc.error)
      const bad = yield* geminiStream(sim.url, "malformed")
      assert.isDefined(bad.error)
      const inband = yield* geminiStream(sim.url, "stream-error=2")
      assert.match(String(inband.error?.message), /UNAVAILABLE/)
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(outcomesOf(yield* sim.stats, "gemini", "gemini-2.5-flash"), {
        cut: 1,
        truncated: 1,
        malformed: 1,
        "stream-error": 1
      })
    }))

  it.effect("anthropic: cut fails; truncated ends without message_stop", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const cut = yield* anthropicStream(sim.url, "cut-after=2")
      assert.strictEqual(cut.events.length, 2)
      assert.isDefined(cut.error)
      const trunc = yield* anthropicStream(sim.url, "truncate=2")
      assert.isUndefined(trunc.events.find((e: any) => e.type === "message_stop"))
    }))
})
