/**
 * `pnpm demo`: the smallest Switchboard program. Until the full demo lands it
 * builds an `LLM` from the scripted test layer, calls it through a retry of
 * one scripted 429, and prints the reply with its attempts.
 */
import { Duration, Effect } from "effect"
import { Llm, LlmError } from "@switchboard/core"

const TestProvider = Llm.layerTest({
  provider: "demo",
  model: "gpt-4o-mini",
  steps: [
    { error: new LlmError.RateLimited({ provider: "demo", scope: "requests", source: "provider", retryAfter: Duration.millis(50) }) },
    { text: "Hello from Switchboard: one typed LLM service, any provider behind it." }
  ]
})

const program = Effect.gen(function*() {
  const first = yield* Llm.generate({ messages: [{ role: "user", content: "Say hello" }] }).pipe(
    Effect.catchTag("RateLimited", (error) =>
      Effect.gen(function*() {
        yield* Effect.log(`rate limited (${error.message}); waiting and trying once more`)
        yield* Effect.sleep(error.retryAfter ?? Duration.millis(100))
        return yield* Llm.generate({ messages: [{ role: "user", content: "Say hello" }] })
      }))
  )
  console.log(`reply: ${first.text}`)
  console.log(`model: ${first.provider}/${first.model}  tokens: ${first.usage.totalTokens}  cost: $${first.costUsd.toFixed(8)}`)
})

Effect.runPromise(program.pipe(Effect.provide(TestProvider))).catch((error) => {
  console.error(error)
  process.exit(1)
})
