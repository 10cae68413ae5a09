/**
 * The example of `docs/resilience.md`, run as written (through the package
 * name), so the documented stack stays true.
 */
import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, Deadline, Fallback, Hedge, Llm, Retry } from "@switchboard/core"
import { Effect } from "effect"

describe("docs/resilience.md example", () => {
  it.effect("the documented stack builds and answers from the primary", () =>
    Effect.gen(function*() {
      const primary = Llm.layerTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "hi" }] })
      const backup = Llm.layerTest({ provider: "anthropic", model: "claude-haiku-4-5", steps: [{ text: "hello" }] })

      const Stack = Fallback.layer([
        primary.pipe(
          Retry.layer({ times: 2, base: "200 millis", max: "2 seconds" }),
          CircuitBreaker.layer({ failureThreshold: 5, cooldown: "30 seconds" }),
          Hedge.layer({ after: "1 second", backup })
        ),
        { layer: backup, contextWindow: 200_000, prefill: true }
      ], { midStream: "continue" }).pipe(Deadline.layer("10 seconds"))

      const program = Llm.generateText("Say hi").pipe(Effect.provide(Stack)) // "hi"
      assert.strictEqual(yield* program, "hi")
    }))
})
