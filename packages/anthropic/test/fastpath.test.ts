/**
 * The hand-written fast paths for the common `message` body (text blocks
 * only) and for stream events must never accept what the Schema refuses,
 * nor read anything differently: for thousands of generated bodies and
 * events (valid, near-valid and garbage), the fast path and the Schema alone
 * agree on the outcome, the error detail and what the mapping reads.
 */
import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"
import { assertAgreement, wire } from "../../../test/support/fastpath.ts"
import * as Mapping from "../src/internal/mapping.ts"
import * as Events from "../src/internal/stream.ts"

const origin = { provider: "anthropic", model: "claude-haiku-4-5" }

const { anything, mostly, text, count } = wire()

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

const event = mostly(
  fc.record({
    type: mostly(fc.constantFrom(
      "message_start",
      "content_block_start",
      "ping",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
      "error"
    )),
    index: mostly(fc.oneof(fc.constant(undefined), fc.nat({ max: 3 }))),
    message: mostly(fc.record({ id: text, model: text, usage }, { requiredKeys: [] })),
    content_block: mostly(
      fc.record({ type: mostly(fc.constantFrom("text", "thinking", "tool_use")), text, thinking: text, id: text, name: text, input: anything }, {
        requiredKeys: []
      })
    ),
    delta: mostly(
      fc.record({
        type: mostly(fc.constantFrom(undefined, "text_delta", "thinking_delta", "input_json_delta", "signature_delta")),
        text,
        thinking: text,
        partial_json: text,
        stop_reason: text
      }, { requiredKeys: [] })
    ),
    usage
  }, { requiredKeys: ["type"] })
)

/** The counts of a decoded usage object, as the table reads them. */
const counts = (u: Mapping.RawUsage | null | undefined) =>
  u === undefined || u === null ? u : {
    input_tokens: u.input_tokens,
    output_tokens: u.output_tokens,
    cache_read_input_tokens: u.cache_read_input_tokens,
    cache_creation_input_tokens: u.cache_creation_input_tokens,
    thinking_tokens: u.output_tokens_details === undefined || u.output_tokens_details === null
      ? u.output_tokens_details
      : u.output_tokens_details.thinking_tokens
  }

/** Every field the stream table reads of a decoded event. */
const readEvent = (e: Events.WireEvent) => ({
  type: e.type,
  index: e.index,
  message: e.message === undefined ? e.message : { id: e.message.id, model: e.message.model, usage: counts(e.message.usage) },
  block: e.content_block === undefined ? e.content_block : {
    type: e.content_block.type,
    text: e.content_block.text,
    thinking: e.content_block.thinking,
    id: e.content_block.id,
    name: e.content_block.name,
    input: e.content_block.input
  },
  delta: e.delta === undefined ? e.delta : {
    type: e.delta.type,
    text: e.delta.text,
    thinking: e.delta.thinking,
    partial_json: e.delta.partial_json,
    stop_reason: e.delta.stop_reason
  },
  usage: counts(e.usage)
})

/** Everything the mapping reads of a decoded message. */
const read = (message: Mapping.WireMessage) => ({
  id: message.id,
  model: message.model,
  stop: message.stop_reason,
  usage: Mapping.usageOf(message.usage),
  answer: Mapping.answerOf(message.content, message.stop_reason, undefined, origin),
  answerWithTool: Mapping.answerOf(message.content, message.stop_reason, { name: "json_output" }, origin)
})

describe("Anthropic decoding fast paths", () => {
  it("a message body: the fast path and the Schema agree on outcome, detail and every field read", () => {
    assertAgreement(body, {
      fast: (value) => Mapping.decodeMessage(value, origin),
      slow: (value) => Mapping.decodeMessageSchemaOnly(value, origin),
      read
    })
  })

  it("a stream event: the fast path and the Schema agree on outcome, detail and every field read", () => {
    assertAgreement(event, {
      fast: (value) => Events.decodeEvent(value, origin),
      slow: (value) => Events.decodeEventSchemaOnly(value, origin),
      read: readEvent
    })
  })

  it("the common shapes take the fast path (the same object back, no Schema copy)", () => {
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
    const delta = { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hel" } }
    assert.strictEqual(Events.decodeEvent(delta, origin), delta)
    const badIndex = { type: "content_block_delta", index: "0", delta: { type: "text_delta", text: "Hel" } }
    assert.instanceOf(Events.decodeEvent(badIndex, origin), LlmError.MalformedResponse)
  })
})
