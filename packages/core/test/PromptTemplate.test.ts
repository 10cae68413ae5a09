import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import Mustache from "mustache"
import { Llm, LlmTest, PromptTemplate } from "../src/index.ts"

const Vars = Schema.Struct({
  text: Schema.String,
  tone: Schema.optional(Schema.String),
  count: Schema.optional(Schema.Int),
  items: Schema.optional(Schema.Array(Schema.String))
})

const summarize = PromptTemplate.make({
  id: "summarize",
  version: "3",
  variables: Vars,
  system: "You summarize{{#tone}} in a {{tone}} tone{{/tone}}{{^tone}} neutrally{{/tone}}.",
  messages: [
    { role: "user", content: "Summarize{{#count}} in {{count}} words{{/count}}: {{text}}" },
    { role: "user", content: [{ type: "text", text: "{{#items}}- {{.}}\n{{/items}}", cache: true }] }
  ],
  request: { model: "gpt-4o-mini", temperature: 0.2, metadata: { task: "summary" } }
})

describe("PromptTemplate.make", () => {
  it.effect("refuses a placeholder that names no variable of the Schema, naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.make({
        id: "t",
        version: "1",
        variables: Schema.Struct({ name: Schema.String }),
        messages: [{ role: "user", content: "Hi {{name}}, {{nmae}}" }]
      }))
      assert.strictEqual(error._tag, "PromptTemplateError")
      assert.strictEqual(error.variable, "nmae")
      assert.strictEqual(error.field, "messages[0].content")
      assert.include(error.message, "{{nmae}}")
    }))

  it.effect("checks the system prompt and section names too", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.make({
        id: "t",
        version: "1",
        variables: Schema.Struct({ name: Schema.String }),
        system: "{{#admin}}secret{{/admin}}",
        messages: [{ role: "user", content: "{{name}}" }]
      }))
      assert.strictEqual(error.variable, "admin")
      assert.strictEqual(error.field, "system")
    }))

  it.effect("refuses partials, dotted lookups and unbalanced sections: nothing in a template reaches code", () =>
    Effect.gen(function*() {
      const make = (content: string) =>
        Effect.flip(PromptTemplate.make({
          id: "t",
          version: "1",
          variables: Schema.Struct({ name: Schema.String }),
          messages: [{ role: "user", content }]
        }))
      assert.include((yield* make("{{> other}}")).message, "partials are not supported")
      assert.include((yield* make("{{name.constructor}}")).message, "not a variable name")
      assert.include((yield* make("{{#name}}open")).message, "does not parse")
    }))

  it.effect("refuses an empty id or version", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.make({
        id: "t",
        version: "",
        variables: Schema.Struct({}),
        messages: [{ role: "user", content: "x" }]
      }))
      assert.strictEqual(error.field, "version")
    }))
})

describe("PromptTemplate.render", () => {
  it.effect("fills variables, renders set sections, and carries metadata.prompt and the request fields", () =>
    Effect.gen(function*() {
      const template = yield* summarize
      const request = yield* PromptTemplate.render(template, {
        text: "<b>Tom & Jerry</b>",
        tone: "playful",
        count: 20,
        items: ["a", "b"]
      })
      assert.strictEqual(request.system, "You summarize in a playful tone.")
      assert.deepStrictEqual(request.messages, [
        { role: "user", content: "Summarize in 20 words: <b>Tom & Jerry</b>" },
        { role: "user", content: [{ type: "text", text: "- a\n- b\n", cache: true }] }
      ])
      assert.strictEqual(request.model, "gpt-4o-mini")
      assert.strictEqual(request.temperature, 0.2)
      assert.deepStrictEqual(request.metadata, { task: "summary", prompt: { id: "summarize", version: "3" } })
    }))

  it.effect("HTML is never escaped, {{{x}}} and {{& x}} are the same as {{x}}, and Mustache's global escape is left alone", () =>
    Effect.gen(function*() {
      const template = yield* PromptTemplate.make({
        id: "raw",
        version: "1",
        variables: Schema.Struct({ code: Schema.String }),
        messages: [{ role: "user", content: "{{code}} | {{{code}}} | {{& code}}{{! a comment }}" }]
      })
      const request = yield* PromptTemplate.render(template, { code: "a < b && c > \"d\"" })
      assert.deepStrictEqual(request.messages, [{ role: "user", content: "a < b && c > \"d\" | a < b && c > \"d\" | a < b && c > \"d\"" }])
      assert.strictEqual(Mustache.render("{{x}}", { x: "<" }), "&lt;")
    }))

  it.effect("optional variables left out: {{#x}} sections vanish and {{^x}} sections render", () =>
    Effect.gen(function*() {
      const request = yield* PromptTemplate.render(yield* summarize, { text: "hello" })
      assert.strictEqual(request.system, "You summarize neutrally.")
      assert.deepStrictEqual(request.messages[0], { role: "user", content: "Summarize: hello" })
      assert.deepStrictEqual(request.messages[1], { role: "user", content: [{ type: "text", text: "", cache: true }] })
    }))

  it.effect("an empty string counts as unset for sections", () =>
    Effect.gen(function*() {
      const request = yield* PromptTemplate.render(yield* summarize, { text: "x", tone: "" })
      assert.strictEqual(request.system, "You summarize neutrally.")
    }))

  it.effect("a number is set even when it is 0: its section renders", () =>
    Effect.gen(function*() {
      const request = yield* PromptTemplate.render(yield* summarize, { text: "x", count: 0 })
      assert.deepStrictEqual(request.messages[0], { role: "user", content: "Summarize in 0 words: x" })
    }))

  it.effect("a function value is never called by the engine (no code execution through variables)", () =>
    Effect.gen(function*() {
      let called = 0
      const template = yield* PromptTemplate.make({
        id: "fn",
        version: "1",
        variables: Schema.Struct({ value: Schema.Unknown }),
        messages: [{ role: "user", content: "[{{value}}]{{#value}}section{{/value}}" }]
      })
      const request = yield* PromptTemplate.render(template, { value: () => `ran ${++called}` })
      assert.strictEqual(called, 0)
      assert.deepStrictEqual(request.messages, [{ role: "user", content: "[]" }])
    }))

  it.effect("a missing required variable fails naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.render(yield* summarize, {} as never))
      assert.strictEqual(error._tag, "PromptTemplateError")
      assert.strictEqual(error.variable, "text")
      assert.strictEqual(error.version, "3")
      assert.include(error.message, "text: Missing key")
    }))

  it.effect("an ill-typed variable fails naming it and what was expected", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.render(yield* summarize, { text: "x", count: 2.5 }))
      assert.strictEqual(error.variable, "count")
      assert.include(error.message, "count: Expected an integer")
      const wrong = yield* Effect.flip(PromptTemplate.render(yield* summarize, { text: 42 } as never))
      assert.strictEqual(wrong.variable, "text")
      assert.include(wrong.message, "Expected string")
    }))

  it.effect("an unknown variable is refused rather than silently ignored", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PromptTemplate.render(yield* summarize, { text: "x", colour: "red" } as never))
      assert.strictEqual(error.variable, "colour")
    }))

  it.effect("defaults fill variables the caller leaves out, and are decoded like any value", () =>
    Effect.gen(function*() {
      const template = yield* PromptTemplate.make({
        id: "greet",
        version: "1",
        variables: Schema.Struct({ name: Schema.String, greeting: Schema.String }),
        defaults: { greeting: "Hello" },
        messages: [{ role: "user", content: "{{greeting}}, {{name}}!" }]
      })
      assert.deepStrictEqual((yield* PromptTemplate.render(template, { name: "Ada" } as never)).messages, [
        { role: "user", content: "Hello, Ada!" }
      ])
      assert.deepStrictEqual((yield* PromptTemplate.render(template, { name: "Ada", greeting: "Hi" })).messages, [
        { role: "user", content: "Hi, Ada!" }
      ])
    }))

  it.effect("the rendered request goes through the LLM and arrives with its metadata.prompt", () =>
    Effect.gen(function*() {
      const request = yield* PromptTemplate.render(yield* summarize, { text: "hello" })
      yield* Llm.generate(request)
      const [seen] = yield* (yield* LlmTest.LlmTest).requests
      assert.deepStrictEqual(seen?.metadata?.prompt, { id: "summarize", version: "3" })
    }).pipe(Effect.provide(Llm.layerTest([{ text: "ok" }]))))
})

describe("PromptTemplate.compareVersions", () => {
  it("orders numeric segments as numbers", () => {
    const sorted = ["1.10", "1.9", "2", "1.9.1", "1"].sort(PromptTemplate.compareVersions)
    assert.deepStrictEqual(sorted, ["1", "1.9", "1.9.1", "1.10", "2"])
  })
})
