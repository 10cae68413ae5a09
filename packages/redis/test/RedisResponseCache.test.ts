import { assert, describe, it } from "@effect/vitest"
import { Events, Llm, SwitchboardConfigError } from "@switchboard/core"
import { Effect, Exit, Layer, Stream } from "effect"
import { afterAll, beforeAll } from "vitest"
import { Redis, RedisResponseCache } from "../src/index.ts"
import { type RedisServer, startRedis } from "./redisServer.ts"

let server: RedisServer
beforeAll(async () => {
  server = await startRedis()
})
afterAll(async () => {
  await server.stop()
})

let run = 0
const prefix = () => `c${process.pid}-${run++}:`
const mini = { provider: "openai", model: "gpt-4o-mini" }
const secretPrompt = "my very private prompt 12345"
const ask = { messages: [{ role: "user" as const, content: secretPrompt }], temperature: 0 }

/** One instance: a test leaf (answering after `delay` ms) under the Redis cache, on its own connection. */
const instance = (p: string, options: Partial<RedisResponseCache.Options> = {}, delay = 0) => {
  const leaf = Llm.layerTest({
    ...mini,
    steps: [{ text: "the answer", chunks: ["the ", "answer"], usage: { inputTokens: 5, outputTokens: 2 }, delay }]
  })
  return leaf.pipe(
    Redis.responseCache({ ttl: "1 minute", ...options }),
    Layer.provideMerge(leaf),
    Layer.provide(Redis.layer({ url: server.url, prefix: p, commandTimeout: "250 millis" })),
    Layer.merge(Events.layer())
  )
}

const generate = Effect.gen(function*() {
  return yield* (yield* Llm.LLM).generate(ask)
})
const providerCalls = Effect.gen(function*() {
  return (yield* (yield* Llm.LlmTest).requests).length
})

describe("RedisResponseCache", () => {
  it.live("a miss in one instance is a hit in another (hit shape), and no Redis key holds the prompt", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* Layer.build(instance(p))
      const b = yield* Layer.build(instance(p))
      const first = yield* Effect.provide(generate, a)
      assert.isFalse(first.cached)
      assert.isAbove(first.costUsd, 0)
      const second = yield* Effect.provide(generate, b)
      assert.deepStrictEqual([second.text, second.cached, second.costUsd, second.attempts.length], ["the answer", true, 0, 0])
      assert.strictEqual(yield* Effect.provide(providerCalls, b), 0)
      const keys = yield* Effect.promise(() => server.command("KEYS", `${p}*`))
      assert.include(keys, `${p}cache`)
      assert.notInclude(keys, "private")
    }).pipe(Effect.scoped))

  it.live("identical calls from two instances at once make one provider call (cross-instance lock)", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* Layer.build(instance(p, {}, 150))
      const b = yield* Layer.build(instance(p, {}, 150))
      const [x, y] = yield* Effect.all([Effect.provide(generate, a), Effect.provide(generate, b)], { concurrency: 2 })
      assert.strictEqual(x.text, "the answer")
      assert.strictEqual(y.text, "the answer")
      const calls = (yield* Effect.provide(providerCalls, a)) + (yield* Effect.provide(providerCalls, b))
      assert.strictEqual(calls, 1)
      assert.strictEqual([x.cached, y.cached].filter(Boolean).length, 1)
    }).pipe(Effect.scoped))

  it.live("a stream is stored as its parts and replayed part by part in another instance", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* Layer.build(instance(p))
      const b = yield* Layer.build(instance(p))
      const stream = Effect.gen(function*() {
        return yield* Stream.runCollect((yield* Llm.LLM).stream(ask))
      })
      const live = yield* Effect.provide(stream, a)
      const replayed = yield* Effect.provide(stream, b)
      assert.deepStrictEqual(replayed.filter((part) => part.type === "text-delta"), live.filter((part) => part.type === "text-delta"))
      const finish = replayed[replayed.length - 1]
      assert.isTrue(finish?.type === "finish" && finish.response.cached)
      assert.strictEqual(yield* Effect.provide(providerCalls, b), 0)
      // A whole-response call is answered from the stored stream too.
      assert.isTrue((yield* Effect.provide(generate, b)).cached)
    }).pipe(Effect.scoped))

  it.live("an entry above maxEntryBytes is not stored", () =>
    Effect.gen(function*() {
      const p = prefix()
      const a = yield* Layer.build(instance(p, { maxEntryBytes: 10 }))
      const b = yield* Layer.build(instance(p, { maxEntryBytes: 10 }))
      yield* Effect.provide(generate, a)
      assert.isFalse((yield* Effect.provide(generate, b)).cached)
      assert.strictEqual(yield* Effect.provide(providerCalls, b), 1)
    }).pipe(Effect.scoped))

  it.live("Redis down: the cache is a miss (the provider answers) and StoreDegraded is published", () =>
    Effect.gen(function*() {
      const p = prefix()
      const events: Array<Events.LlmEvent> = []
      const a = yield* Layer.build(instance(p))
      yield* Effect.forkScoped(Effect.provide(Stream.runForEach(Events.stream, (e) => Effect.sync(() => events.push(e))), a))
      yield* Effect.yieldNow
      yield* Effect.promise(() => server.kill())
      const answer = yield* Effect.provide(Effect.exit(generate), a)
      yield* Effect.promise(() => server.restart())
      assert.isTrue(Exit.isSuccess(answer) && answer.value.text === "the answer")
      assert.isTrue(events.some((e) => e._tag === "StoreDegraded" && e.store === "cache"))
    }).pipe(Effect.scoped))

  it.effect("bad options fail the layer with SwitchboardConfigError naming them", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(Layer.build(Redis.layer({ url: "http://nope", commandTimeout: -1 })))
      assert.instanceOf(bad, SwitchboardConfigError.SwitchboardConfigError)
      assert.strictEqual(bad.path, "Redis.url")
      assert.deepStrictEqual(bad.issues?.map((issue) => issue.path), ["Redis.url", "Redis.commandTimeout"])
    }).pipe(Effect.scoped))
})
