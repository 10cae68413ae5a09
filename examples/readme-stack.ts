/**
 * The README's "A stack in 20 lines" example, kept here so `pnpm test` type-checks it.
 */
import { Anthropic } from "@switchboard/anthropic"
import { Budget, CircuitBreaker, Fallback, Llm, RateLimit, ResponseCache, Retry, type LLM } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"

const guarded = <E, R>(provider: Layer.Layer<LLM, E, R>) =>
  provider.pipe(Retry.layer({ times: 2, base: "200 millis" }), CircuitBreaker.layer({ failureThreshold: 5, cooldown: "30 seconds" }))

const Stack = Fallback.layer([
  guarded(OpenAI.model("gpt-4o-mini").pipe(Layer.provide(OpenAI.layerClientConfig()))),
  guarded(Anthropic.model("claude-haiku-4-5").pipe(Layer.provide(Anthropic.layerClientConfig())))
]).pipe(
  RateLimit.layer({ requests: { limit: 500, window: "1 minute" }, onExceeded: "wait" }),
  Budget.layer({ limitUsd: 20, window: "day", models: [{ provider: "anthropic", model: "claude-haiku-4-5" }] }),
  ResponseCache.layer({ capacity: 10_000, ttl: "1 hour" })
)

const program = Llm.generateText("Summarise Effect in one line").pipe(
  Llm.withDeadline("20 seconds"),
  Effect.catchTag("BudgetExceeded", (e) => Effect.succeed(`over budget: ${e.message}`))
)
program.pipe(Effect.flatMap(Console.log), Effect.provide(Stack), NodeRuntime.runMain)
