/**
 * Every recorded Anthropic fixture of the simulator, served as recorded
 * (`x-sim-replay`) and decoded through the layer with the real SDK inside.
 * The directory is listed, so a new fixture without an expectation fails.
 */
import { assert, describe, expect, it, layer } from "@effect/vitest"
import { Llm, type LlmError, type LlmResponse } from "@switchboard/core"
import { Replay, Sim } from "@switchboard/sim"
import { Duration, Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { llm, user } from "./helpers.ts"

type Usage = Pick<LlmResponse.Usage, "inputTokens" | "outputTokens" | "cachedInputTokens" | "cacheWriteTokens">

type Expectation =
  | {
    readonly kind: "generate" | "stream"
    readonly text: string | ((text: string) => boolean)
    readonly reasoning?: string
    readonly finishReason: LlmResponse.FinishReason
    readonly usage: Usage
    readonly toolCalls?: ReadonlyArray<{ id: string; name: string; input: unknown }>
    readonly requestsLimit?: number
  }
  | {
    readonly kind: "error"
    readonly tag: LlmError.LlmError["_tag"]
    readonly retryAfterMs?: number
    readonly detail?: RegExp
  }

const usage = (input: number, output: number, cached = 0, written = 0): Usage => ({
  inputTokens: input + cached + written,
  outputTokens: output,
  cachedInputTokens: cached,
  cacheWriteTokens: written
})

const pelican = "\ndef pelican():\n    return \"A large waterbird with a long bill and a throat pouch for catching fish.\"\n"
const stopSequence: Expectation = {
  kind: "stream",
  text: pelican,
  finishReason: "stop",
  usage: usage(16, 28),
  requestsLimit: 20000
}
const thinking: Expectation = {
  kind: "stream",
  text: "1. **Pouch** - references their iconic bill pouch\n2. **Pelé** - playful take on \"pelican\"",
  reasoning: "The user wants two names for a pet pelican, and they want me to be brief. I'll suggest two names " +
    "that would suit a pelican well.\n\nSome good options:\n- Pelé (play on pelican)\n- Pouch (referencing their " +
    "bill pouch)\n- Captain Beak\n- Squirt\n- Scoop\n- Wing\n\nLet me give two brief, catchy names:",
  finishReason: "stop",
  usage: usage(46, 133),
  requestsLimit: 20000
}
const streamText: Expectation = {
  kind: "stream",
  text: "Hello",
  finishReason: "stop",
  usage: usage(10, 4),
  requestsLimit: 20000
}
const streamTool: Expectation = {
  kind: "stream",
  text: "",
  finishReason: "tool-calls",
  usage: usage(543, 40),
  toolCalls: [{ id: "toolu_01CzN6riCPqw4pVSuTd9Dwn7", name: "pelican_name_generator", input: {} }],
  requestsLimit: 20000
}

const expectations: Record<string, Expectation> = {
  "error-400-invalid-request.http.json": { kind: "error", tag: "InvalidRequest", detail: /effort level 'xhigh'/ },
  "error-404-not-found-model.http.json": { kind: "error", tag: "ModelNotFound", detail: /claude-does-not-exist/ },
  "message-cache-read.http.json": {
    kind: "generate",
    text: (text) => text.startsWith("# What is Python?\n\nPython is a high-level") && text.endsWith("NASA, and Instagram."),
    finishReason: "stop",
    usage: usage(3, 406, 1111)
  },
  "message-text.json": {
    kind: "generate",
    text: "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?",
    finishReason: "stop",
    usage: usage(12, 29)
  },
  "message-tool-use.http.json": {
    kind: "generate",
    text: "I'll help you find the capital city using the available tools.",
    finishReason: "tool-calls",
    usage: usage(628, 50),
    toolCalls: [{ id: "toolu_01Ttepb9joVoQFHP568v7UAL", name: "country_source", input: {} }]
  },
  "stream-stop-sequence.sse": stopSequence,
  "stream-stop-sequence.headers.json": stopSequence,
  "stream-text-sonnet45.chunks.jsonl": {
    kind: "stream",
    text: "Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?",
    finishReason: "stop",
    usage: usage(12, 30)
  },
  "stream-text.sse": streamText,
  "stream-text.headers.json": streamText,
  "stream-thinking.sse": thinking,
  "stream-thinking.headers.json": thinking,
  "stream-tool-use.sse": streamTool,
  "stream-tool-use.headers.json": streamTool,
  "transcribed-error-429-rate-limit.http.json": { kind: "error", tag: "RateLimited", detail: /rate limit/ },
  "transcribed-error-529-overloaded.http.json": { kind: "error", tag: "Overloaded", detail: /Overloaded/ }
}

const files = Fs.readdirSync(Path.join(Replay.defaultFixturesDir, "anthropic")).filter((f) => !f.endsWith(".md")).sort()

describe("fixture coverage", () => {
  it("every Anthropic fixture file has an expectation", () => {
    assert.isAbove(files.length, 10)
    assert.deepStrictEqual(files, Object.keys(expectations).sort())
  })
})

const checkResponse = (response: LlmResponse.LlmResponse, expected: Extract<Expectation, { text: unknown }>) => {
  if (typeof expected.text === "string") assert.strictEqual(response.text, expected.text)
  else assert.isTrue(expected.text(response.text), `unexpected text: ${response.text.slice(0, 80)}`)
  assert.strictEqual(response.finishReason, expected.finishReason)
  const { inputTokens, outputTokens, cachedInputTokens, cacheWriteTokens } = response.usage
  assert.deepStrictEqual({ inputTokens, outputTokens, cachedInputTokens, cacheWriteTokens }, expected.usage)
  assert.strictEqual(response.usage.totalTokens, inputTokens + outputTokens)
  assert.deepStrictEqual(
    response.toolCalls,
    (expected.toolCalls ?? []).map((call) => ({ type: "tool-call" as const, ...call }))
  )
  assert.strictEqual(response.rateLimit?.requestsLimit, expected.requestsLimit)
  assert.isAbove(response.costUsd, 0)
}

layer(Sim.layer(), { excludeTestServices: true })("fixtures replayed through the layer", (it) => {
  for (const file of files) {
    const expected = expectations[file]
    if (expected === undefined) continue
    it.effect(`${file} decodes as recorded`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = llm(sim.url, { headers: { "x-sim-replay": `anthropic/${file}` } })
        switch (expected.kind) {
          case "generate": {
            checkResponse(yield* Llm.generate(user("replay")).pipe(Effect.provide(layer)), expected)
            return
          }
          case "stream": {
            const parts = yield* Stream.runCollect(Llm.stream(user("replay")).pipe(Stream.provide(layer)))
            const last = parts[parts.length - 1]!
            assert.strictEqual(last.type, "finish")
            if (last.type !== "finish") return
            checkResponse(last.response, expected)
            const text = parts.flatMap((p) => (p.type === "text-delta" ? [p.text] : [])).join("")
            assert.strictEqual(text, last.response.text)
            const reasoning = parts.flatMap((p) => (p.type === "reasoning-delta" ? [p.text] : [])).join("")
            assert.strictEqual(reasoning, expected.reasoning ?? "")
            if (reasoning.length > 0) expect(last.response.text).not.toContain(reasoning.slice(0, 20))
            for (const call of expected.toolCalls ?? []) {
              assert.isTrue(parts.some((p) => p.type === "tool-call-delta" && p.id === call.id && p.name === call.name))
            }
            return
          }
          case "error": {
            const generated = yield* Effect.flip(Llm.generate(user("replay")).pipe(Effect.provide(layer)))
            const streamed = yield* Effect.flip(Stream.runCollect(Llm.stream(user("replay")).pipe(Stream.provide(layer))))
            for (const error of [generated, streamed]) {
              assert.strictEqual(error._tag, expected.tag)
              const after = "retryAfter" in error ? error.retryAfter : undefined
              assert.strictEqual(after === undefined ? undefined : Duration.toMillis(after), expected.retryAfterMs)
              if (expected.detail !== undefined) assert.match(error.message, expected.detail)
            }
          }
        }
      }))
  }
})
