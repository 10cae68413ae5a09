/**
 * The pure halves of the layer, for what the simulator cannot produce: every
 * stop reason, thinking-token usage, and broken tool-input JSON in a stream.
 */
import { assert, describe, it } from "@effect/vitest"
import type * as Api from "@anthropic-ai/sdk/resources/messages"
import { finishReasonOf, toParams, usageOf } from "../src/internal/mapping.ts"
import { makeAccumulator } from "../src/internal/stream.ts"
import { toLlmError } from "../src/internal/errors.ts"
import { APIError } from "@anthropic-ai/sdk"

const origin = { provider: "anthropic", model: "claude-haiku-4-5" }

const events = (...list: ReadonlyArray<unknown>) => list as ReadonlyArray<Api.RawMessageStreamEvent>

const start = {
  type: "message_start",
  message: { id: "msg_1", model: "claude-haiku-4-5", content: [], usage: { input_tokens: 5, output_tokens: 1 } }
}

describe("mapping", () => {
  it("maps every stop reason", () => {
    assert.deepStrictEqual(
      ["end_turn", "stop_sequence", "max_tokens", "model_context_window_exceeded", "tool_use", "refusal", "pause_turn", null]
        .map(finishReasonOf),
      ["stop", "stop", "length", "length", "tool-calls", "content-filter", "other", "other"]
    )
  })

  it("counts cache reads and writes in inputTokens and thinking tokens as reasoning", () => {
    assert.deepStrictEqual(
      usageOf({
        input_tokens: 10,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 20,
        output_tokens: 50,
        output_tokens_details: { thinking_tokens: 30 }
      }),
      { inputTokens: 130, outputTokens: 50, cachedInputTokens: 100, cacheWriteTokens: 20, reasoningTokens: 30, totalTokens: 180 }
    )
  })

  it("merges consecutive same-role messages and skips tool_choice without tools", () => {
    const { params } = toParams(
      {
        messages: [{ role: "user", content: "a" }, { role: "user", content: [{ type: "text", text: "b" }] }],
        toolChoice: "auto"
      },
      "m",
      10
    )
    assert.deepStrictEqual(params.messages, [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }])
    assert.notProperty(params, "tool_choice")
  })
})

describe("stream fold", () => {
  it("fails with MalformedResponse when a tool call's streamed input is not JSON", () => {
    const fold = makeAccumulator({ origin, jsonTool: undefined, startedAt: 0, rateLimit: undefined })
    const outputs = events(
      start,
      { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "toolu_1", name: "f", input: {} } },
      { type: "content_block_delta", index: 0, delta: { type: "input_json_delta", partial_json: "{\"a\": " } },
      { type: "content_block_stop", index: 0 }
    ).map((event) => fold.step(event, 0))
    const last = outputs[outputs.length - 1] as { _tag?: string; message?: string }
    assert.strictEqual(last._tag, "MalformedResponse")
    assert.match(last.message!, /tool call "f"/)
    assert.isFalse(fold.finished())
  })

  it("takes input usage from message_start and output usage from message_delta", () => {
    const fold = makeAccumulator({ origin, jsonTool: undefined, startedAt: 0, rateLimit: undefined })
    let finish: unknown
    for (
      const event of events(
        start,
        { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
        { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "hi" } },
        { type: "content_block_stop", index: 0 },
        { type: "message_delta", delta: { stop_reason: "max_tokens" }, usage: { output_tokens: 9 } },
        { type: "message_stop" }
      )
    ) {
      const out = fold.step(event, 40) as ReadonlyArray<{ type: string; response?: unknown }>
      finish = out.find((p) => p.type === "finish")?.response ?? finish
    }
    const response = finish as { text: string; finishReason: string; latencyMs: number; usage: { inputTokens: number; outputTokens: number } }
    assert.strictEqual(response.text, "hi")
    assert.strictEqual(response.finishReason, "length")
    assert.strictEqual(response.usage.inputTokens, 5)
    assert.strictEqual(response.usage.outputTokens, 9)
    assert.strictEqual(response.latencyMs, 40)
    assert.isTrue(fold.finished())
  })
})

describe("errors", () => {
  it("maps an in-band error event by its type and scrubs the key from its message", () => {
    const key = "sk-ant-SECRET-abcdef"
    const error = toLlmError(
      new APIError(undefined, { type: "error", error: { type: "rate_limit_error", message: `slow down ${key}` } }, undefined, new Headers()),
      { provider: "anthropic", model: "m", secrets: [key], timeoutMs: 1000, now: Date.now() }
    )
    assert.strictEqual(error._tag, "RateLimited")
    assert.notInclude(error.message, key)
  })
})
