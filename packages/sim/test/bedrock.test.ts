import { ConverseCommand, ConverseStreamCommand, type ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Sim } from "../src/index.ts"
import { bedrockClient, call, config, longText, rejection, weatherSchema } from "./helpers.ts"

const modelId = "us.amazon.nova-micro-v1:0"
const user = (text: string) => [{ role: "user" as const, content: [{ text }] }]

const drain = async (stream: AsyncIterable<ConverseStreamOutput> | undefined) => {
  const events: Array<ConverseStreamOutput> = []
  for await (const e of stream ?? []) events.push(e)
  return events
}

layer(Sim.layer(config()), { excludeTestServices: true })("bedrock protocol through @aws-sdk/client-bedrock-runtime", (it) => {
  it.effect("Converse answers deterministically with usage and end_turn", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = bedrockClient(sim.url)
      const a = yield* call(() => client.send(new ConverseCommand({ modelId, messages: user("Hello") })))
      const b = yield* call(() => client.send(new ConverseCommand({ modelId, messages: user("Hello") })))
      assert.strictEqual(a.$metadata.httpStatusCode, 200)
      assert.strictEqual(a.stopReason, "end_turn")
      const text = a.output!.message!.content![0]!.text!
      assert.strictEqual(text, b.output!.message!.content![0]!.text)
      assert.strictEqual(a.usage!.outputTokens, text.split(" ").length)
      assert.strictEqual(a.usage!.totalTokens, a.usage!.inputTokens! + a.usage!.outputTokens!)
    }))

  it.effect("ConverseStream decodes event-stream frames to the same text and usage", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = bedrockClient(sim.url)
      const plain = yield* call(() => client.send(new ConverseCommand({ modelId, messages: user("stream") })))
      const out = yield* call(() => client.send(new ConverseStreamCommand({ modelId, messages: user("stream") })))
      const events = yield* call(() => drain(out.stream))
      const text = events.map((e) => e.contentBlockDelta?.delta?.text ?? "").join("")
      assert.strictEqual(text, plain.output!.message!.content![0]!.text)
      assert.strictEqual(events.find((e) => e.messageStop)!.messageStop!.stopReason, "end_turn")
      assert.deepStrictEqual(events.find((e) => e.metadata)!.metadata!.usage, plain.usage)
    }))

  it.effect("inferenceConfig.maxTokens gives max_tokens; content-filter gives content_filtered", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* call(() => bedrockClient(sim.url).send(new ConverseCommand({ modelId, messages: user("x"), inferenceConfig: { maxTokens: 3 } })))
      assert.strictEqual(r.stopReason, "max_tokens")
      assert.strictEqual(r.usage!.outputTokens, 3)
      const f = yield* call(() =>
        bedrockClient(sim.url, "bedrock", "AKIDTEST", { "x-sim-fault": "content-filter" }).send(new ConverseCommand({ modelId, messages: user("x") }))
      )
      assert.strictEqual(f.stopReason, "content_filtered")
    }))

  it.effect("toolUse (JSON and streamed), text after a toolResult", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = bedrockClient(sim.url)
      const toolConfig = { tools: [{ toolSpec: { name: "get_weather", inputSchema: { json: weatherSchema as never } } }] }
      const r = yield* call(() => client.send(new ConverseCommand({ modelId, messages: user("weather?"), toolConfig })))
      assert.strictEqual(r.stopReason, "tool_use")
      const toolUse = r.output!.message!.content![0]!.toolUse!
      assert.strictEqual(toolUse.name, "get_weather")
      assert.deepStrictEqual(Object.keys(toolUse.input as object).sort(), ["city", "days", "unit"])
      const out = yield* call(() => client.send(new ConverseStreamCommand({ modelId, messages: user("weather?"), toolConfig })))
      const events = yield* call(() => drain(out.stream))
      const start = events.find((e) => e.contentBlockStart)!.contentBlockStart!.start!.toolUse!
      assert.strictEqual(start.toolUseId, toolUse.toolUseId)
      const input = events.map((e) => e.contentBlockDelta?.delta?.toolUse?.input ?? "").join("")
      assert.deepStrictEqual(JSON.parse(input), toolUse.input)
      const after = yield* call(() =>
        client.send(
          new ConverseCommand({
            modelId,
            toolConfig,
            messages: [
              ...user("weather?"),
              { role: "assistant", content: [{ toolUse }] },
              { role: "user", content: [{ toolResult: { toolUseId: toolUse.toolUseId!, content: [{ text: "sunny" }] } }] }
            ]
          })
        )
      )
      assert.strictEqual(after.stopReason, "end_turn")
    }))

  it.effect("unknown model is ValidationException 400 (as recorded); long prompt is ValidationException", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = bedrockClient(sim.url)
      const nf = yield* rejection(() => client.send(new ConverseCommand({ modelId: "nope.model-v1:0", messages: user("x") })))
      assert.strictEqual(nf.name, "ValidationException")
      assert.strictEqual(nf.$metadata.httpStatusCode, 400)
      assert.strictEqual(nf.message, "The provided model identifier is invalid.")
      const cl = yield* rejection(() => client.send(new ConverseCommand({ modelId, messages: user(longText(2500)) })))
      assert.strictEqual(cl.name, "ValidationException")
      assert.match(cl.message, /Input is too long/)
    }))

  it.effect("every error status maps to its exception name and x-amzn-ErrorType", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const cases = [
        [400, "ValidationException"],
        [403, "AccessDeniedException"],
        [404, "ResourceNotFoundException"],
        [408, "ModelTimeoutException"],
        [429, "ThrottlingException"],
        [500, "InternalServerException"],
        [503, "ServiceUnavailableException"]
      ] as const
      for (const [status, name] of cases) {
        const client = bedrockClient(sim.url, "bedrock", "AKIDTEST", { "x-sim-fault": `status=${status}` })
        const e = yield* rejection(() => client.send(new ConverseCommand({ modelId, messages: user("x") })))
        assert.strictEqual(e.name, name)
        assert.strictEqual(e.$metadata.httpStatusCode, status)
        assert.isString(e.$metadata.requestId)
      }
    }))

  it.effect("stream exceptions arrive as :message-type exception frames", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = bedrockClient(sim.url, "bedrock", "AKIDTEST", { "x-sim-fault": "stream-error=2" })
      const out = yield* call(() => client.send(new ConverseStreamCommand({ modelId, messages: user("x") })))
      const e = yield* rejection(() => drain(out.stream))
      assert.strictEqual(e.name, "ServiceUnavailableException")
    }))

  it.effect("GET /foundation-models lists modelSummaries", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const body = yield* call(() => fetch(`${sim.providerUrl("bedrock")}/foundation-models`).then((r) => r.json()))
      assert.strictEqual(body.modelSummaries[0].modelId, modelId)
      assert.strictEqual(body.modelSummaries[0].providerName, "Amazon")
    }))
})

describe("bedrock keys", () => {
  it.live("apiKeys: an unknown SigV4 access key id is 403 UnrecognizedClientException", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ apiKeys: ["AKIDGOOD"] }))
      yield* call(() => bedrockClient(sim.url, "bedrock", "AKIDGOOD").send(new ConverseCommand({ modelId, messages: user("x") })))
      const e = yield* rejection(() => bedrockClient(sim.url, "bedrock", "AKIDBAD").send(new ConverseCommand({ modelId, messages: user("x") })))
      assert.strictEqual(e.name, "UnrecognizedClientException")
      assert.strictEqual(e.$metadata.httpStatusCode, 403)
    }))
})
