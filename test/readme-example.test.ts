/**
 * The core README's example, run through the published package name, so the
 * workspace exports and the documented program stay true.
 */
import { assert, describe, it } from "@effect/vitest"
import { Llm, LlmError } from "@switchboard/core"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

describe("core README example", () => {
  it.effect("retries once after RateLimited, waiting its Retry-After", () =>
    Effect.gen(function*() {
      const ask = Llm.generate({ messages: [{ role: "user", content: "Say hello" }], maxTokens: 50 })
      const program = ask.pipe(
        Effect.catchTag("RateLimited", (error) =>
          Effect.sleep(error.retryAfter ?? Duration.seconds(1)).pipe(Effect.andThen(ask)))
      )
      const fiber = yield* Effect.forkChild(program)
      yield* TestClock.adjust("49 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const reply = yield* Fiber.join(fiber)
      assert.strictEqual(reply.text, "Hello!")
      assert.strictEqual((yield* Llm.LlmTest.use((t) => t.requests)).length, 2)
    }).pipe(Effect.provide(Llm.layerTest([
      {
        error: new LlmError.RateLimited({
          provider: "demo",
          scope: "requests",
          source: "provider",
          retryAfter: Duration.millis(50)
        })
      },
      { text: "Hello!" }
    ]))))
})
