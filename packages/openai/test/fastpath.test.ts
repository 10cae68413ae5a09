/**
 * The hand-written fast paths for the common chat.completion body and chunk
 * must never accept what the Schema refuses, nor read anything differently:
 * for thousands of generated bodies and chunks (valid, near-valid and
 * garbage), the fast path and the Schema alone agree on the outcome, the
 * error detail and what is read.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { assertAgreement, wire } from "../../../test/support/fastpath.ts"
import * as Mapping from "../src/internal/mapping.ts"

const origin = { provider: "openai", model: "gpt-4o-mini" }

const { mostly, text, count } = wire()

const field = <A>(arb: fc.Arbitrary<A>) => fc.option(arb, { nil: undefined, freq: 3 })

const usage = mostly(
  fc.record({
    prompt_tokens: count,
    completion_tokens: count,
    total_tokens: count,
    prompt_tokens_details: mostly(fc.record({ cached_tokens: count })),
    completion_tokens_details: mostly(fc.record({ reasoning_tokens: count }))
  }, { requiredKeys: [] })
)

const chunk = mostly(
  fc.record({
    id: text,
    model: text,
    usage,
    x_groq: field(mostly(fc.record({ usage }))),
    choices: mostly(
      fc.array(
        mostly(
          fc.record({
            index: fc.oneof(count, fc.constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY)),
            delta: mostly(
              fc.record({
                content: text,
                refusal: text,
                reasoning_content: text,
                reasoning: text,
                tool_calls: field(mostly(fc.array(fc.record({ index: count, id: text }))))
              }, { requiredKeys: [] })
            ),
            finish_reason: text
          }, { requiredKeys: [] })
        ),
        { maxLength: 3 }
      )
    )
  }, { requiredKeys: [] })
)

const body = mostly(
  fc.record({
    id: text,
    usage,
    choices: mostly(
      fc.array(
        mostly(
          fc.record({
            message: mostly(
              fc.record({
                content: fc.oneof(text, fc.array(fc.record({ text }), { maxLength: 2 })),
                refusal: text,
                tool_calls: field(mostly(fc.array(fc.record({ id: text }), { maxLength: 2 })))
              }, { requiredKeys: [] })
            ),
            finish_reason: text
          }, { requiredKeys: [] })
        ),
        { maxLength: 3 }
      )
    )
  }, { requiredKeys: [] })
)

describe("OpenAI decoding fast paths", () => {
  it("a chunk: the fast path and the Schema agree on outcome, detail and deltas", () => {
    assertAgreement(chunk, {
      fast: (value) => Mapping.decodeChunk(value, origin),
      slow: (value) => Mapping.decodeChunkWithSchema(value, origin),
      read: (decoded) => Mapping.readChunk(decoded, { usage: false }, { calls: new Map() })
    })
  })

  it("a body: the fast path and the Schema agree on outcome, detail and every field read", () => {
    assertAgreement(body, {
      fast: (value) => Mapping.decodeBody(value, origin),
      slow: (value) => Mapping.decodeBodyWithSchema(value, origin),
      read: (decoded) => decoded
    })
  })

  it("the common shapes take the fast path (the same object back, no Schema copy)", () => {
    const common = {
      id: "chatcmpl-1",
      model: "gpt-4o-mini",
      choices: [{ index: 0, delta: { content: "Hel" }, finish_reason: null }],
      usage: null
    }
    assert.strictEqual(Mapping.decodeChunk(common, origin), common)
    const done = { id: "chatcmpl-1", choices: [], usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 } }
    assert.strictEqual(Mapping.decodeChunk(done, origin), done)
    const withTool = { choices: [{ delta: { tool_calls: [{ index: 0, function: { name: "f", arguments: "{" } }] } }] }
    assert.notStrictEqual(Mapping.decodeChunk(withTool, origin), withTool)
  })
})
