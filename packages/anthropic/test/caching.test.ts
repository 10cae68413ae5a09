/**
 * Provider prompt caching: `cache: true` on a text part becomes Anthropic's
 * `cache_control`; the simulator, like the real API, caches only the marked
 * prefix; cache reads and writes are reported and priced.
 */
import { assert, layer } from "@effect/vitest"
import { Llm, type LlmRequest, Pricing } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect } from "effect"
import { llm, recorder, simConfig } from "./helpers.ts"

// A long prefix of its own per test: the simulator's prompt cache lives as long as the server.
const long = (seed: string) => `${seed}: ${"The quick brown fox jumps over the lazy dog. ".repeat(200)}`

const request = (cache: boolean, last: string, seed = "a"): LlmRequest.LlmRequest => ({
  messages: [
    { role: "system", content: [{ type: "text", text: long(seed), cache }] },
    { role: "user", content: [{ type: "text", text: long(seed), cache }] },
    { role: "user", content: last }
  ]
})

layer(Sim.layer(simConfig), { excludeTestServices: true })("Anthropic prompt caching", (it) => {
  it.effect("cache: true is sent as cache_control on the marked blocks (system and messages)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const seen = recorder()
      yield* Llm.generate(request(true, "q")).pipe(Effect.provide(llm(sim.url, { fetch: seen.fetch })))
      const body = seen.last()
      assert.deepStrictEqual(body.system.map((b: { cache_control?: unknown }) => b.cache_control), [{ type: "ephemeral" }])
      assert.deepStrictEqual(body.messages[0].content[0].cache_control, { type: "ephemeral" })
      yield* Llm.generate(request(false, "q")).pipe(Effect.provide(llm(sim.url, { fetch: seen.fetch })))
      assert.strictEqual(typeof seen.last().system, "string")
      assert.notInclude(JSON.stringify(seen.last()), "cache_control")
    }))

  it.effect("only a marked prefix is cached: a write, then a read, priced at the cache prices; unmarked, nothing", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const model = llm(sim.url, { model: "claude-haiku-4-5" })
      const unmarked = yield* Llm.generate(request(false, "zero", "b")).pipe(Effect.provide(model))
      assert.strictEqual(unmarked.usage.cacheWriteTokens, 0)
      assert.strictEqual(unmarked.usage.cachedInputTokens, 0)
      const write = yield* Llm.generate(request(true, "first", "b")).pipe(Effect.provide(model))
      const read = yield* Llm.generate(request(true, "second", "b")).pipe(Effect.provide(model))
      assert.isAbove(write.usage.cacheWriteTokens, 1000)
      assert.strictEqual(write.usage.cachedInputTokens, 0)
      assert.strictEqual(read.usage.cachedInputTokens, write.usage.cacheWriteTokens)
      assert.strictEqual(read.usage.cacheWriteTokens, 0)
      // Priced from the catalog: writes at cacheWritePerMillion, reads at cachedInputPerMillion.
      const entry = (yield* Pricing.Pricing).lookup("anthropic", "claude-haiku-4-5")!
      const expected = (usage: typeof write.usage) =>
        ((usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteTokens) * entry.inputPerMillion +
          usage.cachedInputTokens * entry.cachedInputPerMillion! +
          usage.cacheWriteTokens * entry.cacheWritePerMillion! +
          usage.outputTokens * entry.outputPerMillion) / 1e6
      assert.closeTo(write.costUsd, expected(write.usage), 1e-12)
      assert.closeTo(read.costUsd, expected(read.usage), 1e-12)
      assert.isBelow(read.costUsd, write.costUsd)
    }))
})
