import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Batch, Events, Llm, LlmError } from "../src/index.ts"

const request = (content: string) => ({ messages: [{ role: "user" as const, content }] })

describe("Batch.generateAll", () => {
  it.effect("results in order, each a Result: one failure does not fail the batch", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest({
        respond: (r) => {
          const text = (r.messages[0]!.content as string)
          return text === "bad"
            ? { error: new LlmError.InvalidRequest({ provider: "test", message: "bad item" }) }
            : { text: text.toUpperCase(), delay: text === "slow" ? "300 millis" : "10 millis" }
        }
      })
      const fiber = yield* Effect.forkChild(
        Batch.generateAll(["slow", "bad", "fast"].map(request), { concurrency: 3 }).pipe(Effect.provide(test.layer))
      )
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        results.map((r) => Result.isSuccess(r) ? r.success.text : r.failure._tag),
        ["SLOW", "InvalidRequest", "FAST"]
      )
    }))

  it.effect("runs at most `concurrency` at a time and reports progress after every item", () =>
    Effect.gen(function*() {
      let inFlight = 0
      let most = 0
      const test = yield* Llm.makeTest({ steps: [{ text: "ok", delay: "100 millis" }] })
      const tracked = {
        ...test.service,
        generate: (r: Parameters<typeof test.service.generate>[0]) =>
          Effect.suspend(() => {
            most = Math.max(most, ++inFlight)
            return Effect.ensuring(test.service.generate(r), Effect.sync(() => inFlight--))
          })
      }
      const events: Array<Events.LlmEvent> = []
      const fiber = yield* Effect.forkChild(Effect.gen(function*() {
        const bus = yield* Events.LlmEvents
        yield* Effect.forkChild(Stream.runForEach(bus.events, (e) => Effect.sync(() => events.push(e))))
        yield* Effect.yieldNow
        const out = yield* Batch.generateAll(Array.from({ length: 7 }, (_, i) => request(`r${i}`)), { concurrency: 2 })
        yield* Effect.yieldNow
        return out
      }).pipe(Effect.provideService(Llm.LLM, tracked), Effect.provide(Events.layer())))
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.join(fiber)
      assert.strictEqual(results.length, 7)
      assert.strictEqual(most, 2)
      const progress = events.filter((e): e is Events.BatchProgress => e._tag === "BatchProgress")
      assert.deepStrictEqual(progress.map((p) => p.done), [1, 2, 3, 4, 5, 6, 7])
      assert.deepStrictEqual(progress[6], { _tag: "BatchProgress", done: 7, failed: 0, total: 7 })
    }))

  it.effect("a bad concurrency is a SwitchboardConfigError, before any request is sent", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "ok" }])
      const error = yield* Effect.flip(Batch.generateAll([request("x")], { concurrency: 0 }).pipe(Effect.provide(test.layer)))
      assert.strictEqual(error.path, "Batch.concurrency")
      assert.strictEqual((yield* test.requests).length, 0)
    }))
})
