/**
 * Every recorded Bedrock fixture of the simulator, replayed through the real
 * SDK and this layer (`x-sim-replay`). The directory is listed, so a new
 * fixture without an expectation here fails the suite.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Llm, type LlmError, type LlmResponse } from "@switchboard/core"
import { Replay, Sim } from "@switchboard/sim"
import { Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { modelLayer, replay, user } from "./helpers.ts"

interface Success {
  readonly text: string
  readonly reasoning?: string
  readonly finish: LlmResponse.FinishReason
  readonly usage: Partial<LlmResponse.Usage>
  readonly toolCalls?: ReadonlyArray<{ id: string; name: string; input: unknown }>
}
interface Failure {
  readonly error: LlmError.Tag
  readonly retryAfter?: undefined
  readonly scope?: string
}
type Expectation = Success | Failure

const strawberryStream = "There are **3** r's in \"strawberry\":\n\n1. st**r**awbe**r****r**y"
const strawberryThinking =
  "Let me count the r's in \"strawberry\":\n\ns-t-r-a-w-b-e-r-r-y\n\nr appears at positions 3, 8, and 9.\n\nSo there are 3 r's."
const paris =
  "The capital of France is Paris. Paris is not only the capital city but also the most populous city in France, and it is a major center for culture, commerce, fashion, and international diplomacy. Known for its historical landmarks, such as the Eiffel Tower, the Louvre Museum, and Notre-Dame Cathedral, Paris is often referred to as \"The City of Light\" or \"The City of Love.\""
const hello: Success = {
  text: "Hello! It's nice to meet you. How can I help you today?",
  reasoning:
    "The user has greeted me with a simple \"Hello\". I should respond in a friendly and welcoming manner. This is a straightforward greeting, so I'll respond warmly and ask how I can help them today.",
  finish: "stop",
  usage: { inputTokens: 36, outputTokens: 73, totalTokens: 109, cachedInputTokens: 0 }
}
const parisStream: Success = {
  text: paris,
  finish: "stop",
  usage: { inputTokens: 13, outputTokens: 82, totalTokens: 95 }
}

const expectations: Record<string, Expectation> = {
  "converse-cache-read.http.json": {
    text: "21",
    finish: "stop",
    usage: { inputTokens: 1324, cachedInputTokens: 1322, cacheWriteTokens: 0, outputTokens: 5, totalTokens: 1329 }
  },
  "converse-cache-write.http.json": {
    text: "21",
    finish: "stop",
    usage: { inputTokens: 1324, cachedInputTokens: 0, cacheWriteTokens: 1322, outputTokens: 5, totalTokens: 1329 }
  },
  "converse-max-tokens.http.json": {
    text: "The capital of France is",
    finish: "length",
    usage: { inputTokens: 13, outputTokens: 5, totalTokens: 18 }
  },
  "converse-reasoning.json": {
    text: "There are **3** r's in \"strawberry\":\n\n1. st**r**awbe**r****r**y",
    finish: "stop",
    usage: { inputTokens: 51, outputTokens: 78, totalTokens: 129 }
  },
  "converse-stream-reasoning.events.jsonl": {
    text: strawberryStream,
    reasoning: strawberryThinking,
    finish: "stop",
    usage: { inputTokens: 51, outputTokens: 94, totalTokens: 145 }
  },
  "converse-stream-reasoning.eventstream.bin": hello,
  "converse-stream-reasoning.eventstream.decoded.jsonl": hello,
  "converse-stream-reasoning.headers.json": hello,
  "converse-stream-text.events.jsonl": {
    text:
      "Let me count the \"r\"s in \"strawberry\":\n\ns-t-**r**-a-w-b-e-**r**-**r**-y\n\nThere are **3** r's in \"strawberry.\"",
    finish: "stop",
    usage: { inputTokens: 22, outputTokens: 55, totalTokens: 77 }
  },
  "converse-stream-text.eventstream.bin": parisStream,
  "converse-stream-text.eventstream.decoded.jsonl": parisStream,
  "converse-stream-text.headers.json": parisStream,
  "converse-text.json": {
    text:
      "Let me count the \"r\"s in \"strawberry\":\n\ns-t-**r**-a-w-b-e-**r**-**r**-y\n\nThere are **3** \"r\"s in \"strawberry.\"",
    finish: "stop",
    usage: { inputTokens: 22, outputTokens: 57, totalTokens: 79, cachedInputTokens: 0, cacheWriteTokens: 0 }
  },
  "converse-tool-use.http.json": {
    text:
      "<thinking> To determine the capital of France, I can use the provided tool that returns the capital of a given country. Since the country in question is France, I will use the tool with the country parameter set to \"France\". </thinking>\n",
    finish: "tool-calls",
    usage: { inputTokens: 426, outputTokens: 66, totalTokens: 492 },
    toolCalls: [{ id: "tooluse_Ze_bgl9CSqu8aJv7XD-_Dw", name: "get_capital", input: { country: "France" } }]
  },
  // Recorded without x-amzn-ErrorType: the SDK names it "Unknown"; the message says the model id is unknown.
  "error-400-validation-invalid-model.http.json": { error: "ModelNotFound" },
  "transcribed-error-429-throttling.http.json": { error: "RateLimited", scope: "tokens" }
}

const dir = Path.join(Replay.defaultFixturesDir, "bedrock")
const files = Fs.readdirSync(dir).filter((f) => !f.endsWith(".md")).sort()
const isStream = (file: string) =>
  file.endsWith(".eventstream.bin") || file.endsWith(".jsonl") || file.endsWith(".headers.json")

describe("Bedrock fixtures", () => {
  it("every fixture file has an expectation", () => {
    assert.deepStrictEqual(files, Object.keys(expectations).sort())
  })
})

layer(Sim.layer(), { excludeTestServices: true })("Bedrock fixture replay", (it) => {
  for (const file of files) {
    const expected = expectations[file]
    if (expected === undefined) continue
    it.effect(`${file} decodes to ${"error" in expected ? expected.error : `"${expected.finish}" with its usage`}`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = modelLayer(sim, replay(`bedrock/${file}`))
        if ("error" in expected) {
          const error = isStream(file)
            ? yield* Effect.flip(Stream.runCollect(Llm.stream(user("x"))).pipe(Effect.provide(layer)))
            : yield* Effect.flip(Llm.generate(user("x")).pipe(Effect.provide(layer)))
          assert.strictEqual(error._tag, expected.error)
          if (error._tag === "RateLimited") {
            assert.strictEqual(error.scope, expected.scope)
            assert.isUndefined(error.retryAfter)
          }
          return
        }
        let response: LlmResponse.LlmResponse
        if (isStream(file)) {
          const parts = yield* Stream.runCollect(Llm.stream(user("x"))).pipe(Effect.provide(layer))
          const last = parts[parts.length - 1]
          if (last?.type !== "finish") return assert.fail("no finish part")
          response = last.response
          const text = parts.map((p) => (p.type === "text-delta" ? p.text : "")).join("")
          const reasoning = parts.map((p) => (p.type === "reasoning-delta" ? p.text : "")).join("")
          assert.strictEqual(text, expected.text)
          assert.strictEqual(reasoning, expected.reasoning ?? "")
        } else {
          response = yield* Llm.generate(user("x")).pipe(Effect.provide(layer))
        }
        assert.strictEqual(response.text, expected.text)
        assert.strictEqual(response.finishReason, expected.finish)
        for (const [key, value] of Object.entries(expected.usage)) {
          assert.strictEqual(response.usage[key as keyof LlmResponse.Usage], value, `usage.${key}`)
        }
        assert.deepStrictEqual(
          response.toolCalls.map(({ id, input, name }) => ({ id, name, input })),
          expected.toolCalls ?? []
        )
      }))
  }
})
