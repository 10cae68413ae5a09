/**
 * Every recorded OpenAI fixture of the simulator, replayed byte for byte
 * (`x-sim-replay`) through the real SDK inside the layer.
 */
import { assert, layer } from "@effect/vitest"
import { Llm, type LlmError, type LlmResponse } from "@switchboard/core"
import { Replay, Sim } from "@switchboard/sim"
import { Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { client, generate, llm, SimLayer, user } from "./support.ts"

interface Success {
  readonly kind: "generate" | "stream"
  readonly text: string | ((text: string) => boolean)
  readonly finishReason: LlmResponse.FinishReason
  /** input, output, total, cached, reasoning */
  readonly usage: readonly [number, number, number, number, number]
  readonly toolCalls?: ReadonlyArray<{ readonly id?: string; readonly name: string; readonly input: unknown }>
}

interface Failure {
  readonly kind: "generate" | "stream"
  readonly error: LlmError.LlmError["_tag"]
  readonly check?: (error: LlmError.LlmError) => void
}

const expected: Record<string, Success | Failure> = {
  "chat-finish-length.http.json": {
    kind: "generate",
    text: "**Title: The Last Ember of Eldoria**\n\n",
    finishReason: "length",
    usage: [16, 10, 26, 0, 0]
  },
  "chat-reasoning-tokens-o3-mini.http.json": {
    kind: "generate",
    text: "Hello there! How can I help you today?",
    finishReason: "stop",
    usage: [7, 87, 94, 0, 64]
  },
  "chat-stream-text-long.chunks.jsonl": {
    kind: "stream",
    text: (text) => text.startsWith("**Holiday Name:** Harmony Day\n\n") && text.length === 1724,
    finishReason: "stop",
    usage: [16, 300, 316, 0, 0]
  },
  "chat-stream-text-usage.headers.json": {
    kind: "stream",
    text: "The capital of the UK is London.",
    finishReason: "stop",
    usage: [78, 9, 87, 0, 0]
  },
  "chat-stream-text-usage.sse": {
    kind: "stream",
    text: "The capital of the UK is London.",
    finishReason: "stop",
    usage: [78, 9, 87, 0, 0]
  },
  "chat-stream-tool-call-deltas.headers.json": {
    kind: "stream",
    text: "",
    finishReason: "tool-calls",
    usage: [53, 15, 68, 0, 0],
    toolCalls: [{ id: "call_ZR5UUuTt3pf61kjwAJIYdVMj", name: "get_capital", input: { country: "UK" } }]
  },
  "chat-stream-tool-call-deltas.sse": {
    kind: "stream",
    text: "",
    finishReason: "tool-calls",
    usage: [53, 15, 68, 0, 0],
    toolCalls: [{ id: "call_ZR5UUuTt3pf61kjwAJIYdVMj", name: "get_capital", input: { country: "UK" } }]
  },
  "chat-text.json": {
    kind: "generate",
    text: (text) => text.startsWith("**Holiday Name:** Galaxy Day") && text.length === 1842,
    finishReason: "stop",
    usage: [16, 363, 379, 0, 0]
  },
  "chat-tool-calls.http.json": {
    kind: "generate",
    text: "",
    finishReason: "tool-calls",
    usage: [104, 16, 120, 0, 0],
    toolCalls: [{ id: "call_SkEQ3ZGSJC8m6AvaIGNuuKdm", name: "get_capital", input: { country: "England" } }]
  },
  // The legacy /v1/completions shape (`text_completion`, choices[].text) is
  // not a Chat Completions answer: replayed here it is a MalformedResponse.
  "completions-legacy-finish-length.json": {
    kind: "generate",
    error: "MalformedResponse",
    check: (error) => assert.include(error.message, "text_completion")
  },
  "error-400-decimal-below-min-responses-api.http.json": {
    kind: "generate",
    error: "InvalidRequest",
    check: (error) => assert.include(error.message, "Invalid 'temperature'")
  },
  "error-400-unsupported-parameter-max-tokens.json": {
    kind: "generate",
    error: "InvalidRequest",
    check: (error) => assert.include(error.message, "max_completion_tokens")
  },
  "error-400-unsupported-parameter-stop.http.json": {
    kind: "generate",
    error: "InvalidRequest",
    check: (error) => assert.include(error.message, "'stop' is not supported")
  },
  "error-400-unsupported-value-system-role.http.json": {
    kind: "generate",
    error: "InvalidRequest",
    check: (error) => assert.include(error.message, "does not support 'system'")
  },
  "error-404-model-not-found.http.json": {
    kind: "generate",
    error: "ModelNotFound",
    check: (error) => assert.include(error.message, "non-existent-model")
  },
  "transcribed-error-400-context-length-exceeded.http.json": {
    kind: "generate",
    error: "ContextLengthExceeded",
    check: (error) => {
      assert.strictEqual(error._tag, "ContextLengthExceeded")
      if (error._tag === "ContextLengthExceeded") {
        assert.strictEqual(error.limit, 4097)
        assert.strictEqual(error.requested, 4294)
      }
    }
  }
}

const dir = Path.join(Replay.defaultFixturesDir, "openai")
const files = Fs.readdirSync(dir).filter((name) => !name.endsWith(".md")).sort()

const replay = (sim: Sim.SimHandle, file: string, kind: "generate" | "stream") => {
  const model = llm(client(sim, { headers: { "x-sim-replay": `openai/${file}` } }))
  return kind === "generate"
    ? generate(model, user("hi"))
    : Stream.runCollect(Llm.stream(user("hi"))).pipe(
      Effect.provide(model),
      Effect.map((parts) => {
        const last = parts[parts.length - 1]
        assert.strictEqual(last?.type, "finish")
        const response = (last as Extract<LlmResponse.StreamPart, { type: "finish" }>).response
        const deltas = parts.flatMap((p) => p.type === "text-delta" ? [p.text] : []).join("")
        assert.strictEqual(deltas, response.text, "the text deltas add up to the finish text")
        return response
      })
    )
}

layer(SimLayer, { excludeTestServices: true })("OpenAI fixtures", (it) => {
  it.effect("every fixture file of packages/sim/fixtures/openai has an expectation", () =>
    Effect.sync(() => {
      assert.isTrue(files.length >= 16)
      assert.deepStrictEqual(files.filter((file) => expected[file] === undefined), [])
    }))

  for (const file of files) {
    const expectation = expected[file]
    if (expectation === undefined) continue
    it.effect(`replays ${file}`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        if ("error" in expectation) {
          const error = yield* Effect.flip(replay(sim, file, expectation.kind))
          assert.strictEqual(error._tag, expectation.error)
          assert.strictEqual((error as { provider: string }).provider, "openai")
          expectation.check?.(error)
          return
        }
        const response = yield* replay(sim, file, expectation.kind)
        if (typeof expectation.text === "string") assert.strictEqual(response.text, expectation.text)
        else assert.isTrue(expectation.text(response.text), response.text.slice(0, 80))
        assert.strictEqual(response.finishReason, expectation.finishReason)
        const u = response.usage
        assert.deepStrictEqual(
          [u.inputTokens, u.outputTokens, u.totalTokens, u.cachedInputTokens, u.reasoningTokens],
          [...expectation.usage]
        )
        assert.deepStrictEqual(
          response.toolCalls.map((call) => ({ id: call.id, name: call.name, input: call.input })),
          (expectation.toolCalls ?? []).map((call) => ({ id: call.id, name: call.name, input: call.input }))
        )
        assert.strictEqual(response.provider, "openai")
        assert.isTrue(response.costUsd >= 0)
      }))
  }

  it.effect("ignores scrubbed placeholder rate-limit headers instead of reporting nonsense numbers", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      // chat-finish-length.http.json carries scrubbed placeholders ("X-RATELIMIT-…-XXX"): no rate-limit info.
      const placeholder = yield* replay(sim, "chat-finish-length.http.json", "generate")
      assert.isUndefined(placeholder.rateLimit)
    }))
})
