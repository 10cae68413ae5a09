/**
 * The hand-written fast paths for the common Converse output (text blocks
 * only) and the common ConverseStream events must never accept what the
 * Schema refuses, nor read anything differently: for thousands of generated
 * outputs and events (valid, near-valid and garbage), the fast path and the
 * Schema alone agree on the outcome, the error detail and every field read.
 */
import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"
import { assertAgreement, wire } from "../../../test/support/fastpath.ts"
import * as Mapping from "../src/internal/mapping.ts"
import * as Events from "../src/internal/stream.ts"

const origin = { provider: "bedrock", model: "us.amazon.nova-micro-v1:0" }

const { anything, mostly, text, count, rare } = wire([10n ** 20n])

const usage = mostly(
  fc.record({
    inputTokens: count,
    outputTokens: count,
    totalTokens: count,
    cacheReadInputTokens: count,
    cacheWriteInputTokens: count,
    serverToolUsage: anything
  }, { requiredKeys: [] })
)

const block = mostly(
  fc.record({
    text,
    toolUse: rare(mostly(fc.record({ toolUseId: text, name: text, input: anything }, { requiredKeys: [] }))),
    reasoningContent: rare(anything)
  }, { requiredKeys: [] })
)

const output = mostly(
  fc.record({
    $metadata: fc.constant({ httpStatusCode: 200, requestId: "r-1" }),
    output: mostly(fc.record({ message: mostly(fc.record({ role: text, content: mostly(fc.array(block, { maxLength: 3 })) }, { requiredKeys: [] })) }, { requiredKeys: [] })),
    stopReason: text,
    usage,
    metrics: anything
  }, { requiredKeys: [] })
)

const index = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.nat({ max: 3 })))
const exception = rare(mostly(fc.record({ message: text }, { requiredKeys: [] })))
const event = mostly(
  fc.record({
    messageStart: rare(mostly(fc.record({ role: text }, { requiredKeys: [] }))),
    contentBlockStart: rare(
      mostly(
        fc.record({
          contentBlockIndex: index,
          start: mostly(fc.record({ toolUse: mostly(fc.record({ toolUseId: text, name: text }, { requiredKeys: [] })) }, { requiredKeys: [] }))
        }, { requiredKeys: [] })
      )
    ),
    contentBlockDelta: rare(
      mostly(
        fc.record({
          contentBlockIndex: index,
          delta: mostly(
            fc.record({
              text,
              toolUse: rare(mostly(fc.record({ input: text }, { requiredKeys: [] }))),
              reasoningContent: rare(mostly(fc.record({ text, signature: text }, { requiredKeys: [] })))
            }, { requiredKeys: [] })
          )
        }, { requiredKeys: [] })
      )
    ),
    contentBlockStop: rare(mostly(fc.record({ contentBlockIndex: index }, { requiredKeys: [] }))),
    messageStop: rare(mostly(fc.record({ stopReason: text }, { requiredKeys: [] }))),
    metadata: rare(mostly(fc.record({ usage, metrics: anything }, { requiredKeys: [] }))),
    throttlingException: exception,
    modelStreamErrorException: exception
  }, { requiredKeys: [] })
)

const orAbsent = <A, B>(u: A | null | undefined, f: (a: A) => B) => u === undefined || u === null ? u : f(u)

/** Every field the stream table reads of a decoded event. */
const readEvent = (e: Events.WireEvent) => ({
  start: orAbsent(e.contentBlockStart, (s) => ({
    index: s.contentBlockIndex,
    toolUse: orAbsent(s.start, (st) => orAbsent(st.toolUse, (t) => ({ id: t.toolUseId, name: t.name })))
  })),
  delta: orAbsent(e.contentBlockDelta, (d) => ({
    index: d.contentBlockIndex,
    delta: orAbsent(d.delta, (x) => ({
      text: x.text,
      toolUse: orAbsent(x.toolUse, (t) => ({ input: t.input })),
      reasoning: orAbsent(x.reasoningContent, (r) => ({ text: r.text }))
    }))
  })),
  stop: orAbsent(e.messageStop, (m) => ({ stopReason: m.stopReason })),
  metadata: orAbsent(e.metadata, (m) => ({ usage: orAbsent(m.usage, (u) => Mapping.usageOf(u)) })),
  throttling: orAbsent(e.throttlingException, (x) => ({ message: x.message })),
  modelStreamError: orAbsent(e.modelStreamErrorException, (x) => ({ message: x.message }))
})

/** Every field the mapping reads of a decoded output. */
const read = (o: Mapping.WireOutput) => ({
  content: o.output.message.content.map((b) => ({
    text: b.text,
    toolUse: b.toolUse === undefined || b.toolUse === null
      ? b.toolUse
      : { toolUseId: b.toolUse.toolUseId, name: b.toolUse.name, input: b.toolUse.input }
  })),
  stopReason: o.stopReason,
  usage: Mapping.usageOf(o.usage)
})

describe("Bedrock decoding fast paths", () => {
  it("a Converse output: the fast path and the Schema agree on outcome, detail and every field read", () => {
    assertAgreement(output, {
      fast: (value) => Mapping.decodeOutput(value, origin),
      slow: (value) => Mapping.decodeOutputSchemaOnly(value, origin),
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
      $metadata: { httpStatusCode: 200 },
      output: { message: { role: "assistant", content: [{ text: "Hello" }] } },
      stopReason: "end_turn",
      usage: { inputTokens: 9, outputTokens: 2, totalTokens: 11 },
      metrics: { latencyMs: 100 }
    }
    assert.strictEqual(Mapping.decodeOutput(common, origin), common)
    const tool = { ...common, output: { message: { content: [{ toolUse: { toolUseId: "t", name: "f", input: {} } }] } } }
    assert.notStrictEqual(Mapping.decodeOutput(tool, origin), tool)
    const huge = { ...common, usage: { inputTokens: 10n ** 20n } }
    assert.instanceOf(Mapping.decodeOutput(huge, origin), LlmError.MalformedResponse)
    const delta = { contentBlockDelta: { contentBlockIndex: 0, delta: { text: "Hel" } } }
    assert.strictEqual(Events.decodeEvent(delta, origin), delta)
    const badText = { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 5 } } }
    assert.instanceOf(Events.decodeEvent(badText, origin), LlmError.MalformedResponse)
  })
})
