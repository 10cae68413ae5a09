import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Budget, Llm, RateLimit, ResponseCache } from "../src/index.ts"

// The example of docs/limits.md, verbatim (imports from "../src/index.ts" instead of "@switchboard/core").
const program = Effect.gen(function*() {
  const budget = yield* Budget.make({ limitUsd: 5, window: "day", price: { provider: "openai", model: "gpt-4o-mini" } })
  const stack = Llm.layerTest([{ text: "hi", usage: { inputTokens: 8, outputTokens: 2 } }]).pipe(
    RateLimit.layer({ requests: { limit: 100, window: "1 minute" }, onExceeded: "wait", maxWait: "5 seconds" }),
    budget.layer,
    ResponseCache.layer({ capacity: 1_000, ttl: "10 minutes" })
  )
  const text = yield* Llm.generateText("hello").pipe(Effect.provide(stack))
  const spent = (yield* budget.state()).spentUsd
  return { text, spent }
})

describe("docs/limits.md", () => {
  it.effect("the example runs: the answer comes through the stack and its cost is charged", () =>
    Effect.gen(function*() {
      const { spent, text } = yield* program
      assert.strictEqual(text, "hi")
      assert.isAbove(spent, 0)
    }))
})
