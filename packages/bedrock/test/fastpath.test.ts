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
import * as Mapping from "../src/internal/mapping.ts"
import * as Events from "../src/internal/stream.ts"

const origin = { provider: "bedrock", model: "us.amazon.nova-micro-v1:0" }

/** A JSON value with sorted keys and `undefined` members dropped, to compare two readings. */
const canonical = (u: unknown): string =>
  JSON.stringify(u, (_, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : typeof value === "bigint"
      ? `${value}n`
      : value)

// Field values around what the SDK hands over: mostly absent, null or the right type, sometimes a near
// miss (a `BigInt` is what the SDK parses from a huge number).
const anything = fc.constantFrom<unknown>(undefined, null, "", "text", 0, 7, -1, 1.5, 1e308, 10n ** 20n, "12", true, {}, [])
const mostly = <A>(valid: fc.Arbitrary<A>) =>
  fc.oneof({ weight: 12, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anything })
const text = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.string({ maxLength: 4 })))
const count = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.nat()))
const rare = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined, freq: 5 })

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
    fc.assert(
      fc.property(output, (value) => {
        const fast = Mapping.decodeOutput(value, origin)
        const slow = Mapping.decodeOutputSchemaOnly(value, origin)
        if (slow instanceof LlmError.MalformedResponse) {
          assert.instanceOf(fast, LlmError.MalformedResponse, `the fast path accepted what the Schema refuses: ${slow.detail}`)
          assert.strictEqual((fast as LlmError.MalformedResponse).detail, slow.detail)
          return
        }
        assert.notInstanceOf(fast, LlmError.MalformedResponse, "the fast path refused what the Schema accepts")
        assert.strictEqual(canonical(read(fast as Mapping.WireOutput)), canonical(read(slow)))
      }),
      { numRuns: 5_000 }
    )
  })

  it("a stream event: the fast path and the Schema agree on outcome, detail and every field read", () => {
    fc.assert(
      fc.property(event, (value) => {
        const fast = Events.decodeEvent(value, origin)
        const slow = Events.decodeEventSchemaOnly(value, origin)
        if (slow instanceof LlmError.MalformedResponse) {
          assert.instanceOf(fast, LlmError.MalformedResponse, `the fast path accepted what the Schema refuses: ${slow.detail}`)
          assert.strictEqual((fast as LlmError.MalformedResponse).detail, slow.detail)
          return
        }
        assert.notInstanceOf(fast, LlmError.MalformedResponse, "the fast path refused what the Schema accepts")
        assert.strictEqual(canonical(readEvent(fast as Events.WireEvent)), canonical(readEvent(slow)))
      }),
      { numRuns: 5_000 }
    )
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
