/**
 * The hand-written fast paths for the common chat.completion body and chunk
 * must never accept what the Schema refuses, nor read anything differently:
 * for thousands of generated bodies and chunks (valid, near-valid and
 * garbage), the fast path and the Schema alone agree on the outcome, the
 * error detail and what is read.
 */
import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@switchboard/core"
import fc from "fast-check"
import * as Mapping from "../src/internal/mapping.ts"

const origin = { provider: "openai", model: "gpt-4o-mini" }

/** A JSON value with sorted keys and `undefined` members dropped, to compare two readings. */
const canonical = (u: unknown): string =>
  JSON.stringify(u, (_, value: unknown) =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
      : value)

// Field values around what the wire allows: mostly absent, null or the right type, sometimes a near
// miss, so that most generated values are valid but for one field.
const anything = fc.constantFrom<unknown>(undefined, null, "", "text", 0, 7, -1, 1.5, 1e308, "12", true, {}, [])
const mostly = <A>(valid: fc.Arbitrary<A>) =>
  fc.oneof({ weight: 12, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: anything })
const text = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.string({ maxLength: 4 })))
const count = mostly(fc.oneof(fc.constantFrom<unknown>(undefined, null), fc.nat()))
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

const agree = (fast: unknown, slow: unknown, read: (decoded: never) => unknown) => {
  if (slow instanceof LlmError.MalformedResponse) {
    assert.instanceOf(fast, LlmError.MalformedResponse, `the fast path accepted what the Schema refuses: ${slow.detail}`)
    assert.strictEqual((fast as LlmError.MalformedResponse).detail, slow.detail)
    return
  }
  assert.notInstanceOf(fast, LlmError.MalformedResponse, "the fast path refused what the Schema accepts")
  assert.strictEqual(canonical(read(fast as never)), canonical(read(slow as never)))
}

describe("OpenAI decoding fast paths", () => {
  it("a chunk: the fast path and the Schema agree on outcome, detail and deltas", () => {
    fc.assert(
      fc.property(chunk, (value) =>
        agree(
          Mapping.decodeChunk(value, origin),
          Mapping.decodeChunkWithSchema(value, origin),
          (decoded) => Mapping.readChunk(decoded, { usage: false }, { calls: new Map() })
        )),
      { numRuns: 5_000 }
    )
  })

  it("a body: the fast path and the Schema agree on outcome, detail and every field read", () => {
    fc.assert(
      fc.property(body, (value) => agree(Mapping.decodeBody(value, origin), Mapping.decodeBodyWithSchema(value, origin), (decoded) => decoded)),
      { numRuns: 5_000 }
    )
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
