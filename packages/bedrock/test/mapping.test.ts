/**
 * Request mapping: what Converse receives for each request shape, checked on
 * the mapped input and, for one full request, on the JSON the SDK put on the
 * wire (captured by a middleware after serialization).
 */
import { assert, describe, it } from "@effect/vitest"
import { Llm, type LlmRequest } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { Effect } from "effect"
import { Bedrock } from "../src/index.ts"
import { jsonInstruction, noToolsInstruction, type Prepared, toConverseInput } from "../src/internal/mapping.ts"
import { modelLayer, NOVA } from "./helpers.ts"

const origin = { provider: "bedrock", model: NOVA }
const png = "iVBORw0KGgo="
const weather: LlmRequest.Tool = {
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
}

const prepare = (request: LlmRequest.LlmRequest): Prepared => {
  const result = toConverseInput(request, origin)
  if ("_tag" in result) throw new Error(`unexpected ${result._tag}: ${result.message}`)
  return result
}

const rejection = (request: LlmRequest.LlmRequest) => {
  const result = toConverseInput(request, origin)
  if (!("_tag" in result)) throw new Error("expected InvalidRequest")
  return result
}

describe("toConverseInput", () => {
  it("puts request.system and system-role messages in `system`, and merges consecutive turns of one role", () => {
    const { input } = prepare({
      system: "Be brief.",
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "Hi" },
        { role: "user", content: [{ type: "text", text: "there" }] },
        { role: "assistant", content: "Bonjour" }
      ]
    })
    assert.deepStrictEqual(input.system, [{ text: "Be brief." }, { text: "Answer in French." }])
    assert.deepStrictEqual(input.messages, [
      { role: "user", content: [{ text: "Hi" }, { text: "there" }] },
      { role: "assistant", content: [{ text: "Bonjour" }] }
    ])
    assert.strictEqual(input.modelId, NOVA)
  })

  it("maps tool calls to toolUse and tool results (a tool turn) to a user toolResult with json or text content", () => {
    const { input } = prepare({
      tools: [weather],
      messages: [
        { role: "user", content: "Weather?" },
        { role: "assistant", content: [{ type: "tool-call", id: "t1", name: "get_weather", input: { city: "Paris" } }] },
        {
          role: "tool",
          content: [
            { type: "tool-result", toolCallId: "t1", output: { temp: 21 } },
            { type: "tool-result", toolCallId: "t1", output: "failed", isError: true }
          ]
        },
        { role: "user", content: "Thanks" }
      ]
    })
    assert.deepStrictEqual(input.messages?.[1], {
      role: "assistant",
      content: [{ toolUse: { toolUseId: "t1", name: "get_weather", input: { city: "Paris" } } }]
    })
    assert.deepStrictEqual(input.messages?.[2], {
      role: "user",
      content: [
        { toolResult: { toolUseId: "t1", content: [{ json: { temp: 21 } }], status: "success" } },
        { toolResult: { toolUseId: "t1", content: [{ text: "failed" }], status: "error" } },
        { text: "Thanks" }
      ]
    })
  })

  it("maps tools and every tool choice (required → any, named → tool, auto → auto)", () => {
    const tools = [weather]
    const spec = { toolSpec: { name: "get_weather", description: "Weather for a city", inputSchema: { json: weather.parameters } } }
    const base = { messages: [{ role: "user" as const, content: "x" }], tools }
    assert.deepStrictEqual(prepare(base).input.toolConfig as unknown, { tools: [spec] })
    assert.deepStrictEqual(prepare({ ...base, toolChoice: "auto" }).input.toolConfig?.toolChoice, { auto: {} })
    assert.deepStrictEqual(prepare({ ...base, toolChoice: "required" }).input.toolConfig?.toolChoice, { any: {} })
    assert.deepStrictEqual(
      prepare({ ...base, toolChoice: { type: "tool", name: "get_weather" } }).input.toolConfig?.toolChoice,
      { tool: { name: "get_weather" } }
    )
  })

  it("tool choice none drops the tools, or keeps them with an instruction when the history holds tool blocks", () => {
    const plain = prepare({ messages: [{ role: "user", content: "x" }], tools: [weather], toolChoice: "none" })
    assert.isUndefined(plain.input.toolConfig)
    const history = prepare({
      tools: [weather],
      toolChoice: "none",
      messages: [
        { role: "user", content: "x" },
        { role: "assistant", content: [{ type: "tool-call", id: "t1", name: "get_weather", input: {} }] },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "t1", output: "sunny" }] }
      ]
    })
    assert.strictEqual(history.input.toolConfig?.tools?.length, 1)
    assert.isUndefined(history.input.toolConfig?.toolChoice)
    assert.deepStrictEqual(history.input.system, [{ text: noToolsInstruction }])
  })

  it("declares a tool the history uses but the request no longer lists (Converse requires toolConfig)", () => {
    const { input } = prepare({
      messages: [
        { role: "user", content: "x" },
        { role: "assistant", content: [{ type: "tool-call", id: "t1", name: "lookup", input: {} }] },
        { role: "tool", content: [{ type: "tool-result", toolCallId: "t1", output: [1, 2] }] }
      ]
    })
    assert.deepStrictEqual(input.toolConfig, { tools: [{ toolSpec: { name: "lookup", inputSchema: { json: { type: "object" } } } }] })
    assert.deepStrictEqual(input.messages?.[2]?.content?.[0], {
      toolResult: { toolUseId: "t1", content: [{ text: "[1,2]" }], status: "success" }
    })
  })

  it("maps maxTokens, temperature, topP and stop sequences to inferenceConfig; seed has no Converse field", () => {
    const { input } = prepare({
      messages: [{ role: "user", content: "x" }],
      maxTokens: 64,
      temperature: 0.2,
      topP: 0.9,
      stop: ["END"],
      seed: 7
    })
    assert.deepStrictEqual(input.inferenceConfig, { maxTokens: 64, temperature: 0.2, topP: 0.9, stopSequences: ["END"] })
    assert.notInclude(JSON.stringify(input), "seed")
  })

  it("decodes base64 images (data, or a data: URL) to bytes and keeps s3:// URIs as s3Location", () => {
    const { input } = prepare({
      messages: [{
        role: "user",
        content: [
          { type: "image", data: png, mediaType: "image/png" },
          { type: "image", url: `data:image/jpeg;base64,${png}` },
          { type: "image", url: "s3://bucket/cat.webp" }
        ]
      }]
    })
    const content = input.messages?.[0]?.content ?? []
    const bytes = Buffer.from(png, "base64")
    assert.deepStrictEqual(content[0], { image: { format: "png", source: { bytes } } })
    assert.deepStrictEqual(content[1], { image: { format: "jpeg", source: { bytes } } })
    assert.deepStrictEqual(content[2], { image: { format: "webp", source: { s3Location: { uri: "s3://bucket/cat.webp" } } } })
  })

  it("an http image URL or an unsupported image type is InvalidRequest naming the field", () => {
    const url = rejection({ messages: [{ role: "user", content: [{ type: "image", url: "https://x.test/cat.png" }] }] })
    assert.strictEqual(url.field, "messages[0].content[0].url")
    const type = rejection({
      messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "image", data: png, mediaType: "image/bmp" }] }]
    })
    assert.strictEqual(type.field, "messages[0].content[1].mediaType")
  })

  it("json format adds a system instruction; json-schema forces a tool carrying the schema", () => {
    const json = prepare({ messages: [{ role: "user", content: "x" }], responseFormat: { type: "json" } })
    assert.deepStrictEqual(json.input.system, [{ text: jsonInstruction }])
    const schema = { type: "object", properties: { a: { type: "string" } } }
    const forced = prepare({
      messages: [{ role: "user", content: "x" }],
      responseFormat: { type: "json-schema", name: "my answer", schema }
    })
    assert.strictEqual(forced.formatTool, "my_answer")
    assert.deepStrictEqual(forced.input.toolConfig?.toolChoice, { tool: { name: "my_answer" } })
    assert.deepStrictEqual(forced.input.toolConfig?.tools?.[0]?.toolSpec?.inputSchema, { json: schema })
  })

  it("json-schema with the request's own tools goes in the system instruction, leaving tool choice alone", () => {
    const schema = { type: "object", properties: { a: { type: "string" } } }
    const { formatTool, input } = prepare({
      messages: [{ role: "user", content: "x" }],
      tools: [weather],
      responseFormat: { type: "json-schema", name: "answer", schema }
    })
    assert.isUndefined(formatTool)
    assert.strictEqual(input.toolConfig?.tools?.length, 1)
    assert.include(input.system?.[0]?.text ?? "", JSON.stringify(schema))
  })
})

describe("on the wire", () => {
  it.live("the SDK sends the mapped request: system, image bytes as base64, tools, inference config", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start()
      const bodies: Array<string> = []
      yield* Effect.gen(function*() {
        const client = yield* Bedrock.BedrockClient
        client.sdk.middlewareStack.add(
          (next) => (args) => {
            const body = (args.request as { body?: unknown }).body
            if (typeof body === "string") bodies.push(body)
            else if (body instanceof Uint8Array) bodies.push(new TextDecoder().decode(body))
            return next(args)
          },
          { step: "finalizeRequest", name: "testCaptureBody" }
        )
        yield* Llm.generate({
          system: "Be brief.",
          messages: [{
            role: "user",
            content: [{ type: "text", text: "What is this?" }, { type: "image", data: png, mediaType: "image/png" }]
          }],
          tools: [weather],
          toolChoice: "auto",
          maxTokens: 50,
          temperature: 0.5,
          stop: ["STOP"]
        })
      }).pipe(Effect.provide(modelLayer(sim)))
      assert.strictEqual(bodies.length, 1)
      assert.deepStrictEqual(JSON.parse(bodies[0]!), {
        messages: [{ role: "user", content: [{ text: "What is this?" }, { image: { format: "png", source: { bytes: png } } }] }],
        system: [{ text: "Be brief." }],
        inferenceConfig: { maxTokens: 50, temperature: 0.5, stopSequences: ["STOP"] },
        toolConfig: {
          tools: [{ toolSpec: { name: "get_weather", description: "Weather for a city", inputSchema: { json: weather.parameters } } }],
          toolChoice: { auto: {} }
        }
      })
    }))
})
