import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Stream } from "effect"
import { Llm, LlmRequest } from "../src/index.ts"

const origin = { provider: "test", model: "m" }
const user = (content: string) => ({ role: "user" as const, content })

const invalid = (request: LlmRequest.LlmRequest) => {
  const problem = LlmRequest.check(request, origin)
  assert.isDefined(problem, "expected the request to be rejected")
  return problem!
}

describe("LlmRequest.check", () => {
  it("accepts a well-formed request", () => {
    assert.isUndefined(LlmRequest.check({
      messages: [
        user("what is the weather?"),
        { role: "assistant", content: [{ type: "tool-call", id: "c1", name: "weather", input: { city: "Oslo" } }] },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "c1", output: { temp: 3 } }] },
        { role: "user", content: [{ type: "text", text: "and this?" }, { type: "image", url: "https://x/y.png" }] }
      ],
      temperature: 0.7,
      topP: 0.9,
      maxTokens: 100,
      seed: 7,
      stop: ["\n\n"],
      tools: [{ name: "weather", parameters: { type: "object" } }],
      toolChoice: { type: "tool", name: "weather" },
      deadline: Duration.seconds(3)
    }, origin))
  })

  const cases: ReadonlyArray<[string, LlmRequest.LlmRequest, string]> = [
    ["no messages", { messages: [] }, "messages"],
    ["negative maxTokens", { messages: [user("x")], maxTokens: -1 }, "maxTokens"],
    ["zero maxTokens", { messages: [user("x")], maxTokens: 0 }, "maxTokens"],
    ["fractional maxTokens", { messages: [user("x")], maxTokens: 1.5 }, "maxTokens"],
    ["temperature above 2", { messages: [user("x")], temperature: 2.5 }, "temperature"],
    ["negative temperature", { messages: [user("x")], temperature: -0.1 }, "temperature"],
    ["NaN temperature", { messages: [user("x")], temperature: Number.NaN }, "temperature"],
    ["topP of 0", { messages: [user("x")], topP: 0 }, "topP"],
    ["fractional seed", { messages: [user("x")], seed: 0.5 }, "seed"],
    ["empty stop sequence", { messages: [user("x")], stop: ["ok", ""] }, "stop[1]"],
    ["bad role", { messages: [{ role: "robot" as "user", content: "x" }] }, "messages[0].role"],
    [
      "tool result with no call",
      { messages: [user("x"), { role: "tool", content: [{ type: "tool-result", toolCallId: "nope", output: 1 }] }] },
      "messages[1].content[0].toolCallId"
    ],
    [
      "tool call from a user",
      { messages: [{ role: "user", content: [{ type: "tool-call", id: "a", name: "t", input: {} }] }] },
      "messages[0].content[0]"
    ],
    ["tool message as a string", { messages: [user("x"), { role: "tool", content: "42" }] }, "messages[1].content"],
    ["image with neither url nor data", { messages: [{ role: "user", content: [{ type: "image" }] }] }, "messages[0].content[0]"],
    [
      "inline image without media type",
      { messages: [{ role: "user", content: [{ type: "image", data: "aGk=" }] }] },
      "messages[0].content[0].mediaType"
    ],
    ["bad tool name", { messages: [user("x")], tools: [{ name: "has space", parameters: {} }] }, "tools[0].name"],
    [
      "duplicate tool name",
      { messages: [user("x")], tools: [{ name: "a", parameters: {} }, { name: "a", parameters: {} }] },
      "tools[1].name"
    ],
    ["tool choice naming no tool", { messages: [user("x")], toolChoice: { type: "tool", name: "ghost" } }, "toolChoice.name"],
    ["required tool choice without tools", { messages: [user("x")], toolChoice: "required" }, "toolChoice"],
    ["zero deadline", { messages: [user("x")], deadline: 0 }, "deadline"]
  ]
  for (const [name, request, field] of cases) {
    it(`rejects ${name}, naming ${field}`, () => {
      const problem = invalid(request)
      assert.strictEqual(problem._tag, "InvalidRequest")
      assert.strictEqual(problem.field, field)
      assert.include(problem.message, field)
      assert.strictEqual(problem.provider, "test")
    })
  }

  it("accepts a system prompt with no messages", () => {
    assert.isUndefined(LlmRequest.check({ messages: [], system: "be brief" }, origin))
  })
})

describe("LlmRequest.decode", () => {
  it.effect("decodes untrusted JSON into a request", () =>
    Effect.gen(function*() {
      const request = yield* LlmRequest.decode({ messages: [{ role: "user", content: "hi" }], temperature: 0 })
      assert.strictEqual(request.temperature, 0)
    }))

  it.effect("fails with InvalidRequest when the shape is wrong", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(LlmRequest.decode({ messages: "hello" }))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.include(error.message, "messages")
    }))
})

describe("validation before any provider call", () => {
  it.effect("an invalid request never reaches the provider", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate({ messages: [user("x")], maxTokens: -5 }))
      assert.strictEqual(error._tag, "InvalidRequest")
      const seen = yield* Llm.LlmTest.use((t) => t.requests)
      assert.strictEqual(seen.length, 0)
    }).pipe(Effect.provide(Llm.layerTest([{ text: "never" }]))))

  it.effect("an invalid streamed request fails before the provider is asked", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream({ messages: [user("x")], temperature: 9 })))
      assert.strictEqual(error._tag, "InvalidRequest")
      assert.strictEqual((yield* Llm.LlmTest.use((t) => t.requests)).length, 0)
    }).pipe(Effect.provide(Llm.layerTest([{ text: "never" }]))))
})

describe("LlmRequest.withDefaults", () => {
  const ask = { messages: [user("x")] }
  it("fills only what the request leaves out", () => {
    const fill = LlmRequest.withDefaults({ temperature: 0.2, maxTokens: 100 })
    assert.deepStrictEqual(fill({ ...ask, maxTokens: 5 }), { ...ask, maxTokens: 5, temperature: 0.2 })
  })
  it("returns the same request when nothing needs filling", () => {
    const request = { ...ask, temperature: 1, maxTokens: 5 }
    assert.strictEqual(LlmRequest.withDefaults({ temperature: 0.2, maxTokens: 100 })(request), request)
    assert.strictEqual(LlmRequest.withDefaults(undefined)(request), request)
  })
  it("never takes messages from the defaults", () => {
    const fill = LlmRequest.withDefaults({ messages: [user("injected")] } as LlmRequest.Defaults)
    assert.deepStrictEqual(fill(ask), ask)
  })
})
