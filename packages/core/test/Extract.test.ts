import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import * as fc from "fast-check"
import { Extract } from "../src/index.ts"

describe("Extract.json", () => {
  it("reads a bare JSON reply", () => {
    assert.deepStrictEqual(Extract.json(' {"a": 1, "b": [true, null]}\n'), Option.some({ a: 1, b: [true, null] }))
  })

  it("reads JSON from a ```json fence, preferring it over other fences", () => {
    const text = "Here is some code:\n```ts\nconst x = {y: 1}\n```\nand the answer:\n```json\n{\"city\": \"Paris\"}\n```\n"
    assert.deepStrictEqual(Extract.json(text), Option.some({ city: "Paris" }))
  })

  it("reads JSON wrapped in prose, braces inside strings included", () => {
    const text = "Sure! Here you go: {\"note\": \"use } and { freely\", \"n\": 2}. Anything else?"
    assert.deepStrictEqual(Extract.json(text), Option.some({ note: "use } and { freely", n: 2 }))
  })

  it("skips a brace that does not start JSON and finds the array after it", () => {
    assert.deepStrictEqual(Extract.json("set {x} then [1, 2, 3] done"), Option.some([1, 2, 3]))
  })

  it("is None when the reply holds no JSON", () => {
    assert.isTrue(Option.isNone(Extract.json("I cannot answer that.")))
    assert.isTrue(Option.isNone(Extract.json("{\"unterminated\": ")))
  })
})

describe("Extract.codeBlocks", () => {
  it("lists fenced blocks with their languages in order, ~~~ fences included", () => {
    const text = "a\n```Python\nprint(1)\n```\nb\n~~~\nplain\ntext\n~~~\n"
    assert.deepStrictEqual(Extract.codeBlocks(text), [
      { language: "python", code: "print(1)" },
      { language: undefined, code: "plain\ntext" }
    ])
  })

  it("keeps a block cut off at the end of the reply", () => {
    assert.deepStrictEqual(Extract.codeBlocks("```js\nlet a = 1\nlet b"), [{ language: "js", code: "let a = 1\nlet b" }])
  })

  it("a ``` line inside a ```` block stays code", () => {
    const text = "````md\n```\ninner\n```\n````"
    assert.deepStrictEqual(Extract.codeBlocks(text), [{ language: "md", code: "```\ninner\n```" }])
  })

  it("is empty for a reply without fences", () => {
    assert.deepStrictEqual(Extract.codeBlocks("just words"), [])
  })
})

describe("Extract.partialJson", () => {
  it("reads every prefix of a streamed object as the value so far", () => {
    const full = 'Result: {"name": "Ada", "langs": ["en", "fr"], "age": 36}'
    const seen: Array<unknown> = []
    for (let i = 1; i <= full.length; i++) {
      const value = Extract.partialJson(full.slice(0, i))
      if (Option.isSome(value)) seen.push(value.value)
    }
    assert.deepStrictEqual(seen[0], {})
    assert.deepStrictEqual(seen[seen.length - 1], { name: "Ada", langs: ["en", "fr"], age: 36 })
    assert.isTrue(seen.some((v) => JSON.stringify(v) === JSON.stringify({ name: "A" })))
    assert.isTrue(seen.some((v) => JSON.stringify(v) === JSON.stringify({ name: "Ada", langs: ["en", "f"] })))
    // never a dangling key without its value
    assert.isFalse(seen.some((v) => typeof v === "object" && v !== null && "langs" in v && (v as { langs: unknown }).langs === undefined))
  })

  it("is None before any JSON starts", () => {
    assert.isTrue(Option.isNone(Extract.partialJson("Thinking about it")))
  })
})

describe("Extract properties", () => {
  it("any JSON value: Extract.json reads it back bare, fenced and in prose; every prefix has a partial value or none, never a throw", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value)
        const back = JSON.parse(text) as unknown
        if (typeof value === "object" && value !== null) {
          assert.deepStrictEqual(Extract.json(`Here:\n\`\`\`json\n${text}\n\`\`\`\nbye`), Option.some(back))
          assert.deepStrictEqual(Extract.json(`The answer is ${text} as requested.`), Option.some(back))
          for (let i = 0; i <= text.length; i++) Extract.partialJson(text.slice(0, i))
          assert.deepStrictEqual(Extract.partialJson(text), Option.some(back))
        }
        assert.deepStrictEqual(Extract.json(text), Option.some(back))
      }),
      { numRuns: 200 }
    )
  })
})
