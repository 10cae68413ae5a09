/**
 * Every recorded Gemini fixture of the simulator, replayed byte for byte
 * (`x-sim-replay`) through the real SDK and this package's layer.
 */
import { assert, layer } from "@effect/vitest"
import { Llm, type LlmError, type LlmResponse } from "@switchboard/core"
import { Replay, Sim } from "@switchboard/sim"
import { Duration, Effect, Stream } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { llm, simConfig, user } from "./helpers.ts"

interface Success {
  readonly text: string | ((text: string) => boolean)
  readonly finishReason: LlmResponse.FinishReason
  readonly usage: { readonly input: number; readonly output: number; readonly reasoning?: number }
  readonly toolCalls?: ReadonlyArray<{ readonly name: string; readonly input: unknown }>
  /** Total length of the streamed reasoning deltas (thought parts). */
  readonly reasoningChars?: number
}

interface Failure {
  readonly error: LlmError.LlmError["_tag"]
  readonly retryAfterMs?: number
}

const strawberry = "There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y."

const expected: Record<string, Success | Failure> = {
  "error-429-resource-exhausted-retryinfo.json": { error: "RateLimited", retryAfterMs: 34_400 },
  "error-429-resource-exhausted.http.json": { error: "RateLimited" },
  "finish-max-tokens.http.json": { text: "The capital of France is", finishReason: "length", usage: { input: 15, output: 5 } },
  "finish-safety.http.json": { text: "", finishReason: "content-filter", usage: { input: 14, output: 0 } },
  "generate-content-text.json": { text: strawberry, finishReason: "stop", usage: { input: 9, output: 272, reasoning: 244 } },
  "generate-content-tool-call.json": {
    text: "",
    finishReason: "tool-calls",
    usage: { input: 29, output: 908, reasoning: 893 },
    toolCalls: [{ name: "weather", input: { location: "San Francisco" } }]
  },
  "stream-text-gemini3.chunks.jsonl": {
    text: "There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y",
    finishReason: "stop",
    usage: { input: 9, output: 208, reasoning: 185 }
  },
  "stream-text.headers.json": { text: "The capital of France is Paris.\n", finishReason: "stop", usage: { input: 13, output: 8 } },
  "stream-text.sse": { text: "The capital of France is Paris.\n", finishReason: "stop", usage: { input: 13, output: 8 } },
  "stream-thinking.headers.json": {
    text: (t) => t.startsWith("This is a great question! Safely crossing the street") && t.length === 1938,
    finishReason: "stop",
    usage: { input: 34, output: 1256, reasoning: 787 },
    reasoningChars: 1575
  },
  "stream-thinking.sse": {
    text: (t) => t.startsWith("This is a great question! Safely crossing the street") && t.length === 1938,
    finishReason: "stop",
    usage: { input: 34, output: 1256, reasoning: 787 },
    reasoningChars: 1575
  },
  "stream-tool-call-thought-signature.headers.json": {
    text: "",
    finishReason: "tool-calls",
    usage: { input: 29, output: 212, reasoning: 202 },
    toolCalls: [{ name: "get_country", input: {} }]
  },
  "stream-tool-call-thought-signature.sse": {
    text: "",
    finishReason: "tool-calls",
    usage: { input: 29, output: 212, reasoning: 202 },
    toolCalls: [{ name: "get_country", input: {} }]
  },
  "stream-tool-call.chunks.jsonl": {
    text: "",
    finishReason: "tool-calls",
    usage: { input: 29, output: 60, reasoning: 45 },
    toolCalls: [{ name: "weather", input: { location: "San Francisco" } }]
  },
  "transcribed-error-403-permission-denied.http.json": { error: "PermissionDenied" },
  "transcribed-error-503-unavailable.http.json": { error: "Overloaded" }
}

const fixtureDir = Path.join(Replay.defaultFixturesDir, "google")
const files = Fs.readdirSync(fixtureDir).filter((f) => !f.endsWith(".md")).sort()
const isStream = (file: string) => /\.(sse|chunks\.jsonl|headers\.json)$/.test(file)

const checkSuccess = (file: string, want: Success, response: LlmResponse.LlmResponse) => {
  if (typeof want.text === "string") assert.strictEqual(response.text, want.text, file)
  else assert.isTrue(want.text(response.text), `${file}: unexpected text ${JSON.stringify(response.text.slice(0, 80))}`)
  assert.strictEqual(response.finishReason, want.finishReason, file)
  assert.strictEqual(response.usage.inputTokens, want.usage.input, file)
  assert.strictEqual(response.usage.outputTokens, want.usage.output, file)
  assert.strictEqual(response.usage.reasoningTokens, want.usage.reasoning ?? 0, file)
  assert.strictEqual(response.usage.totalTokens, want.usage.input + want.usage.output, file)
  assert.deepStrictEqual(
    response.toolCalls.map((c) => ({ name: c.name, input: c.input })),
    want.toolCalls ?? [],
    file
  )
  for (const call of response.toolCalls) assert.isAbove(call.id.length, 0)
}

layer(Sim.layer(simConfig()), { excludeTestServices: true })("Google fixtures (x-sim-replay)", (it) => {
  it("every Gemini fixture file has an expectation here", () => {
    assert.deepStrictEqual(Object.keys(expected).sort(), files)
  })

  for (const file of files) {
    const want = expected[file]
    if (want === undefined) continue
    it.effect(`${file} → ${"error" in want ? want.error : `${want.finishReason}`} via ${isStream(file) ? "stream" : "generate"}`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const layer = llm(sim, { headers: { "x-sim-replay": `google/${file}` }, contentFilter: "return" })
        const request = user("replayed")
        if ("error" in want) {
          const error = yield* Effect.flip(Llm.generate(request).pipe(Effect.provide(layer)))
          assert.strictEqual(error._tag, want.error)
          const retryAfter = "retryAfter" in error ? error.retryAfter : undefined
          assert.strictEqual(retryAfter === undefined ? undefined : Duration.toMillis(retryAfter), want.retryAfterMs)
          return
        }
        if (!isStream(file)) {
          checkSuccess(file, want, yield* Llm.generate(request).pipe(Effect.provide(layer)))
          return
        }
        const parts = yield* Stream.runCollect(Llm.stream(request)).pipe(Effect.provide(layer))
        const last = parts[parts.length - 1]
        assert.strictEqual(last?.type, "finish")
        if (last?.type !== "finish") return
        checkSuccess(file, want, last.response)
        const text = parts.map((p) => (p.type === "text-delta" ? p.text : "")).join("")
        assert.strictEqual(text, last.response.text)
        const reasoning = parts.map((p) => (p.type === "reasoning-delta" ? p.text : "")).join("")
        assert.strictEqual(reasoning.length, want.reasoningChars ?? 0)
        const deltas = parts.filter((p) => p.type === "tool-call-delta")
        assert.deepStrictEqual(
          deltas.map((d) => d.type === "tool-call-delta" ? { id: d.id, name: d.name, input: JSON.parse(d.inputDelta) } : {}),
          last.response.toolCalls.map((c) => ({ id: c.id, name: c.name, input: c.input }))
        )
      }))
  }
})
