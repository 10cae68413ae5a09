/**
 * Structured output end to end: a versioned prompt template renders the
 * request, the conversation is fitted to the model's window, and
 * `Structured.generateObject` returns a value decoded by an effect Schema —
 * here over the real OpenAI SDK talking to the local simulator (no key, no
 * network). Run it: `node examples/structured-output.ts`.
 */
import { ContextWindow, PromptRegistry, PromptTemplate, Structured } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Console, Effect, Layer, Schema } from "effect"

// What we want back, as a Schema: the model's answer is decoded by it (or repaired, or a typed error).
const Ticket = Schema.Struct({
  title: Schema.String,
  priority: Schema.Literals(["low", "medium", "high"]),
  estimateHours: Schema.Int
})

const triage = PromptTemplate.make({
  id: "triage",
  version: "1",
  variables: Schema.Struct({ report: Schema.String, product: Schema.optional(Schema.String) }),
  system: "You triage bug reports{{#product}} for {{product}}{{/product}}.",
  messages: [{ role: "user", content: "Turn this report into a ticket:\n{{report}}" }],
  request: { model: "gpt-4o-mini", maxTokens: 200 }
})

const program = Effect.gen(function*() {
  const request = yield* PromptRegistry.render("triage", { report: "The export button crashes the app.", product: "Acme" })
  const { repairs, response, value } = yield* Structured.generateObject({ ...request, schema: Ticket, name: "ticket", mode: "tool" })
  yield* Console.log(`ticket: ${JSON.stringify(value)}`)
  yield* Console.log(`prompt: ${request.metadata?.prompt?.id}@${request.metadata?.prompt?.version}, repairs: ${repairs}, model: ${response.model}`)
  return value
})

const main = Effect.gen(function*() {
  const sim = yield* Sim.start({
    providers: { openai: { protocol: "openai", models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] } }
  })
  const Stack = OpenAI.model("gpt-4o-mini").pipe(
    Layer.provide(OpenAI.compatible({ name: "openai", baseURL: `${sim.providerUrl("openai")}/v1`, apiKey: "sk-sim" })),
    ContextWindow.layer({ strategy: "smart", reserve: 200 })
  )
  return yield* program.pipe(Effect.provide([Stack, PromptRegistry.layer([triage])]))
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
