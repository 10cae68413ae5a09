/**
 * The consumer test's user program: what a new user writes after
 * `npm install`-ing the packed tarballs. It is type-checked in the consumer
 * project (strict, then `strict: false`; `skipLibCheck` off), compiled, and run
 * with plain `node`.
 *
 * A fallback stack over the simulator: the primary OpenAI endpoint is a dead
 * port (a `NetworkError`, retried once, then skipped), Anthropic on the
 * simulator answers. Then OpenAI on the simulator answers directly. With
 * `SIM_URL` set it talks to a running `switchboard-sim` bin; otherwise it
 * starts the simulator in process. It prints one `RESULT {...}` line.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Anthropic } from "@switchboard/anthropic"
import { Fallback, Llm, type LlmError, Retry, type SwitchboardConfigError } from "@switchboard/core"
import { ProviderError } from "@switchboard/core/provider"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, Layer } from "effect"

const request = { messages: [{ role: "user" as const, content: "Say hello" }], maxTokens: 20 }

const simUrl = Effect.gen(function*() {
  const external = process.env["SIM_URL"]
  if (external !== undefined && external !== "") return external
  const sim = yield* Sim.start()
  return sim.url
})

const program = Effect.gen(function*() {
  const url = yield* simUrl
  const dead = OpenAI.model("gpt-4o-mini").pipe(
    Layer.provide(OpenAI.compatible({ name: "openai", baseURL: "http://127.0.0.1:9/v1", apiKey: "sk-test" })),
    Retry.layer({ times: 1, base: "10 millis" })
  )
  const anthropic = Anthropic.model("claude-haiku-4-5").pipe(
    Layer.provide(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: `${url}/anthropic` }))
  )
  const openai = OpenAI.model("gpt-4o-mini").pipe(
    Layer.provide(OpenAI.compatible({ name: "openai", baseURL: `${url}/openai/v1`, apiKey: "sk-test" }))
  )

  const viaFallback = yield* Llm.generate(request).pipe(Effect.provide(Fallback.layer([dead, anthropic])))
  const direct = yield* Llm.generate(request).pipe(Effect.provide(openai))
  const failed: LlmError.LlmError | SwitchboardConfigError.SwitchboardConfigError = yield* Llm.generate(request).pipe(Effect.provide(dead), Effect.flip)

  const result = {
    fallback: {
      provider: viaFallback.provider,
      text: viaFallback.text,
      attempts: viaFallback.attempts.map((a) => `${a.provider}:${a.outcome}`)
    },
    direct: { provider: direct.provider, text: direct.text },
    error: failed._tag,
    // the provider authors' subpath resolves at run time too
    redacted: ProviderError.redact("key sk-secret-123 leaked", ["sk-secret-123"])
  }
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
