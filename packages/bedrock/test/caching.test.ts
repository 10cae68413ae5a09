/**
 * Provider prompt caching: `cache: true` on a text part becomes a Converse
 * `cachePoint` block after it; the simulator, like Bedrock, caches only up to
 * a cache point; cache reads and writes are reported and priced.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Llm, type LlmRequest } from "@switchboard/core"
import { Crafted, Sim } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import { Bedrock } from "../src/index.ts"
import { modelLayer, NOVA } from "./helpers.ts"

const long = (seed: string) => `${seed}: ${"The quick brown fox jumps over the lazy dog. ".repeat(200)}`

const request = (cache: boolean, last: string, seed: string): LlmRequest.LlmRequest => ({
  messages: [
    { role: "system", content: [{ type: "text", text: long(seed), cache }] },
    { role: "user", content: [{ type: "text", text: long(seed), cache }, { type: "text", text: last }] }
  ]
})

describe("Bedrock prompt caching: what is sent", () => {
  it.live("cache: true adds a cachePoint block after the marked text, in system and in messages; unmarked, none", () =>
    Effect.gen(function*() {
      const server = yield* Crafted.serve(() => ({
        json: {
          output: { message: { role: "assistant", content: [{ text: "ok" }] } },
          stopReason: "end_turn",
          usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 }
        }
      }))
      const model = Bedrock.model(NOVA).pipe(Layer.provide(Layer.orDie(Bedrock.layerClient({
        region: "us-east-1",
        endpoint: server.url,
        credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" }
      }))))
      yield* Llm.generate(request(true, "q", "a")).pipe(Effect.provide(model))
      const body = JSON.parse(server.received[0]!.body)
      assert.deepStrictEqual(body.system[1], { cachePoint: { type: "default" } })
      assert.deepStrictEqual(body.messages[0].content[1], { cachePoint: { type: "default" } })
      yield* Llm.generate(request(false, "q", "a")).pipe(Effect.provide(model))
      assert.notInclude(server.received[1]!.body, "cachePoint")
    }))
})

layer(Sim.layer(), { excludeTestServices: true })("Bedrock prompt caching: what the simulator does", (it) => {
  it.effect("only a prefix up to a cachePoint is cached: a write, then a read; unmarked, nothing", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const unmarked = yield* Llm.generate(request(false, "zero", "b")).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(unmarked.usage.cacheWriteTokens, 0)
      assert.strictEqual(unmarked.usage.cachedInputTokens, 0)
      const write = yield* Llm.generate(request(true, "first", "b")).pipe(Effect.provide(modelLayer(sim)))
      const read = yield* Llm.generate(request(true, "second", "b")).pipe(Effect.provide(modelLayer(sim)))
      assert.isAbove(write.usage.cacheWriteTokens, 1000)
      assert.strictEqual(read.usage.cachedInputTokens, write.usage.cacheWriteTokens)
      assert.strictEqual(read.usage.cacheWriteTokens, 0)
    }))
})
