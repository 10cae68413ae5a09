/**
 * The hand-written fast path for the common `message` body (text blocks
 * only) must never accept what the Schema refuses, nor read anything
 * differently: for thousands of generated bodies (valid, near-valid and
 * garbage), the fast path and the Schema alone agree on the outcome, the
 * error detail and what the mapping reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"
import * as Mapping from "../src/internal/mapping.ts"

const origin = { provider: "anthropic", model: "claude-haiku-4-5" }

/** A JSON value with sorted keys and `undefined` members dropped, to compare two readings. */
const canonical = (u: unknown): string =>
  JSON.stringify(u, (_, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value)

// Field values around what the wire allows: mostly absent, null or the right type, sometimes a near miss.
const anything = fc.constantFrom<unknown>(undefined, null, "", "text", 0, 7, -1, 1.5, 1e308, "12", true, {}, [])
const mostly = <A>(valid: fc.Arbitrary<A>) =>
  fc.oneof({ weight: 12, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anything })
const text = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.string({ maxLength: 4 })))
const count = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.nat()))

const usage = mostly(
  fc.record({
    input_tokens: count,
    output_tokens: count,
    cache_read_input_tokens: count,
    cache_creation_input_tokens: count,
    output_tokens_details: mostly(fc.record({ thinking_tokens: count }, { requiredKeys: [] }))
  }, { requiredKeys: [] })
)

const block = mostly(
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ type: fc.constant("text"), text }, { requiredKeys: ["type"] }) },
    {
      weight: 1,
      arbitrary: fc.record({
        type: mostly(fc.constantFrom("text", "tool_use", "thinking", "redacted_thinking")),
        text,
        thinking: text,
        id: text,
        name: text,
        input: anything
      }, { requiredKeys: [] })
    }
  )
)

const body = mostly(
  fc.record({
    id: text,
    model: text,
    type: mostly(fc.constant("message")),
    content: mostly(fc.array(block, { maxLength: 3 })),
    stop_reason: text,
    usage
  }, { requiredKeys: [] })
)

/** Everything the mapping reads of a decoded message. */
const read = (message: Mapping.WireMessage) => ({
  id: message.id,
  model: message.model,
  stop: message.stop_reason,
  usage: Mapping.usageOf(message.usage),
  answer: Mapping.answerOf(message.content, message.stop_reason, undefined, origin),
  answerWithTool: Mapping.answerOf(message.content, message.stop_reason, { name: "json_output" }, origin)
})

describe("Anthropic decoding fast path", () => {
  it("a message body: the fast path and the Schema agree on outcome, detail and every field read", () => {
    fc.assert(
      fc.property(body, (value) => {
        const fast = Mapping.decodeMessage(value, origin)
        const slow = Mapping.decodeMessageSchemaOnly(value, origin)
        if (slow instanceof LlmError.MalformedResponse) {
          assert.instanceOf(fast, LlmError.MalformedResponse, `the fast path accepted what the Schema refuses: ${slow.detail}`)
          assert.strictEqual((fast as LlmError.MalformedResponse).detail, slow.detail)
          return
        }
        assert.notInstanceOf(fast, LlmError.MalformedResponse, "the fast path refused what the Schema accepts")
        assert.strictEqual(canonical(read(fast as Mapping.WireMessage)), canonical(read(slow)))
      }),
      { numRuns: 5_000 }
    )
  })

  it("the common shape takes the fast path (the same object back, no Schema copy)", () => {
    const common = {
      id: "msg_1",
      type: "message",
      role: "assistant",
      model: "claude-haiku-4-5",
      content: [{ type: "text", text: "Hello!" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 12, output_tokens: 3, cache_creation: { ephemeral_5m_input_tokens: 0 } }
    }
    assert.strictEqual(Mapping.decodeMessage(common, origin), common)
    const toolUse = { ...common, content: [{ type: "tool_use", id: "toolu_1", name: "f", input: {} }] }
    assert.notStrictEqual(Mapping.decodeMessage(toolUse, origin), toolUse)
    const badUsage = { ...common, usage: { input_tokens: -1 } }
    assert.instanceOf(Mapping.decodeMessage(badUsage, origin), LlmError.MalformedResponse)
  })
})
