/**
 * The hand-written fast path for the common Gemini response or chunk (text
 * parts only) must never accept what the Schema refuses, nor read anything
 * differently: for thousands of generated bodies (valid, near-valid and
 * garbage), the fast path and the Schema alone agree on the outcome, the
 * error detail and every field the table reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"
import { assertAgreement, wire } from "../../../test/support/fastpath.ts"
import * as Stream from "../src/internal/stream.ts"

const origin = { provider: "google", model: "gemini-2.5-flash" }

const { anything, mostly, text, count, rare } = wire()

const flag = mostly(fc.constantFrom<unknown>(undefined, null, true, false))

const usage = mostly(
  fc.record({
    promptTokenCount: count,
    toolUsePromptTokenCount: count,
    candidatesTokenCount: count,
    thoughtsTokenCount: count,
    cachedContentTokenCount: count,
    totalTokenCount: count
  }, { requiredKeys: [] })
)

const part = mostly(
  fc.record({
    text,
    thought: flag,
    thoughtSignature: text,
    functionCall: rare(mostly(fc.record({ id: text, name: text, args: anything }, { requiredKeys: [] })))
  }, { requiredKeys: [] })
)

const candidate = mostly(
  fc.record({
    content: mostly(fc.record({ parts: mostly(fc.array(part, { maxLength: 3 })), role: text }, { requiredKeys: [] })),
    finishReason: text,
    index: count
  }, { requiredKeys: [] })
)

const body = mostly(
  fc.record({
    responseId: text,
    modelVersion: text,
    candidates: mostly(fc.array(candidate, { maxLength: 2 })),
    promptFeedback: rare(mostly(fc.record({ blockReason: text, blockReasonMessage: text }, { requiredKeys: [] }))),
    usageMetadata: usage
  }, { requiredKeys: [] })
)

/** Every field the table reads of a decoded response. */
const read = (r: Stream.WireResponse) => ({
  responseId: r.responseId,
  usage: r.usageMetadata === undefined || r.usageMetadata === null ? r.usageMetadata : {
    promptTokenCount: r.usageMetadata.promptTokenCount,
    toolUsePromptTokenCount: r.usageMetadata.toolUsePromptTokenCount,
    candidatesTokenCount: r.usageMetadata.candidatesTokenCount,
    thoughtsTokenCount: r.usageMetadata.thoughtsTokenCount,
    cachedContentTokenCount: r.usageMetadata.cachedContentTokenCount,
    totalTokenCount: r.usageMetadata.totalTokenCount
  },
  promptFeedback: r.promptFeedback === undefined || r.promptFeedback === null ? r.promptFeedback : {
    blockReason: r.promptFeedback.blockReason,
    blockReasonMessage: r.promptFeedback.blockReasonMessage
  },
  candidates: r.candidates?.map((c) => ({
    finishReason: c.finishReason,
    content: c.content === undefined || c.content === null ? c.content : {
      parts: c.content.parts?.map((p) => ({
        text: p.text,
        thought: p.thought,
        thoughtSignature: p.thoughtSignature,
        functionCall: p.functionCall === undefined || p.functionCall === null
          ? p.functionCall
          : { id: p.functionCall.id, name: p.functionCall.name, args: p.functionCall.args }
      }))
    }
  }))
})

describe("Gemini decoding fast path", () => {
  it("a response or chunk: the fast path and the Schema agree on outcome, detail and every field read", () => {
    assertAgreement(body, {
      fast: (value) => Stream.decodeResponse(value, origin),
      slow: (value) => Stream.decodeResponseSchemaOnly(value, origin),
      read
    })
  })

  it("the common shapes take the fast path (the same object back, no Schema copy)", () => {
    const common = {
      candidates: [{ content: { parts: [{ text: "Hello" }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 2, totalTokenCount: 11 },
      modelVersion: "gemini-2.5-flash",
      responseId: "abc"
    }
    assert.strictEqual(Stream.decodeResponse(common, origin), common)
    const call = { candidates: [{ content: { parts: [{ functionCall: { name: "f", args: {} } }] } }] }
    assert.notStrictEqual(Stream.decodeResponse(call, origin), call)
    const badUsage = { ...common, usageMetadata: { promptTokenCount: 1.5 } }
    assert.instanceOf(Stream.decodeResponse(badUsage, origin), LlmError.MalformedResponse)
  })
})
