/**
 * "Use Switchboard with effect/ai": OpenAI with an Anthropic fallback behind
 * Effect's own `LanguageModel`, driven by a `Chat` with a `Toolkit`.
 *
 * `node examples/effect-ai.ts` runs it on the embedded simulator with OpenAI
 * in an outage, so the fallback happens underneath; the effect/ai code does
 * not change for the real APIs (use `OpenAI.layerClientConfig()` and
 * `Anthropic.layerClientConfig()` instead of the simulator clients).
 */
import { Anthropic } from "@switchboard/anthropic"
import { CircuitBreaker, Fallback, LanguageModel as Interop, Retry } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, Layer, Schema } from "effect"
import { Chat, Tool, Toolkit } from "effect/ai"
import { fileURLToPath } from "node:url"

// 1. Tools, the effect/ai way.
const GetWeather = Tool.make("GetWeather", {
  description: "The current weather in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const GetTime = Tool.make("GetTime", {
  description: "The local time in a city",
  parameters: Schema.Struct({ city: Schema.String }),
  success: Schema.String
})
const CityTools = Toolkit.make(GetWeather, GetTime)
const CityToolsLive = CityTools.toLayer({
  GetWeather: ({ city }) => Effect.succeed(`18°C and sunny in ${city}`),
  GetTime: ({ city }) => Effect.succeed(`12:00 in ${city}`)
})

// 2. A Switchboard stack: OpenAI first, Anthropic when it fails, as effect/ai's LanguageModel.
const languageModel = (urls: { readonly openai: string; readonly anthropic: string }) => {
  const guarded = <E, R>(leaf: Layer.Layer<import("@switchboard/core").LLM, E, R>) =>
    leaf.pipe(
      Retry.layer({ times: 1, base: "50 millis" }),
      CircuitBreaker.layer({ failureThreshold: 3, cooldown: "30 seconds" })
    )
  const stack = Fallback.layer([
    guarded(OpenAI.model("gpt-4o-mini").pipe(
      Layer.provide(OpenAI.compatible({ name: "openai", baseURL: urls.openai, apiKey: "sk-demo" }))
    )),
    guarded(Anthropic.model("claude-haiku-4-5").pipe(
      Layer.provide(Anthropic.layerClient({ apiKey: "sk-ant-demo", baseURL: urls.anthropic }))
    ))
  ])
  return Interop.model("switchboard", "openai-then-anthropic").pipe(Layer.provide(stack))
}

// 3. Plain effect/ai: a Chat that calls tools until the model answers.
const ask = (question: string, tool: "GetWeather" | "GetTime") =>
  Effect.gen(function*() {
    const chat = yield* Chat.fromPrompt([{ role: "system", content: "Answer briefly, using the tools." }])
    let response = yield* chat.generateText({ prompt: question, toolkit: CityTools, toolChoice: { tool } })
    const used = response.toolCalls.map((call) => call.name)
    while (response.toolCalls.length > 0) {
      response = yield* chat.generateText({ prompt: [], toolkit: CityTools })
    }
    const meta = Interop.metadataOf(response.content)
    return {
      answer: response.text,
      tools: used,
      answeredBy: meta?.provider,
      attempts: meta?.attempts.map((a) => `${a.provider}:${a.outcome}`) ?? [],
      outputTokens: response.usage.outputTokens.total
    }
  })

/** The whole example on the embedded simulator, OpenAI in an outage. */
export const main = Effect.scoped(Effect.gen(function*() {
  const sim = yield* Sim.start({
    providers: {
      openai: { protocol: "openai", models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
      anthropic: { protocol: "anthropic", models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }] }
    }
  })
  yield* sim.setFaults("openai", { outages: [{ status: 503, durationMs: 3_600_000 }] })
  const model = languageModel({ openai: `${sim.providerUrl("openai")}/v1`, anthropic: sim.providerUrl("anthropic") })
  return yield* Effect.all([
    ask("What is the weather in Oslo?", "GetWeather"),
    ask("What time is it in Lima?", "GetTime")
  ]).pipe(Effect.provide([model, CityToolsLive]))
}))

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  Effect.runPromise(main).then(
    (results) => {
      for (const r of results) {
        console.log(`tools ${r.tools.join(", ")} | answered by ${r.answeredBy} | attempts ${r.attempts.join(" ")}`)
        console.log(`  ${r.answer}`)
      }
    },
    (error) => {
      console.error(error)
      process.exitCode = 1
    }
  )
}
