import { ConverseCommand, ConverseStreamCommand } from "@aws-sdk/client-bedrock-runtime"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Replay, Sim } from "../src/index.ts"
import { decodeFrames } from "../src/internal/eventstream.ts"
import { anthropicClient, bedrockClient, call, config, geminiClient, openaiClient } from "./helpers.ts"

const files = Replay.list()
const isStream = (f: string) => /\.(sse|chunks\.jsonl|events\.jsonl|eventstream\.bin|eventstream\.decoded\.jsonl|headers\.json)$/.test(f)

/** How many events the recorded stream holds (SSE `data:` lines minus [DONE], or event-stream frames). */
const expectedEvents = (f: string): number => {
  const r = Replay.load(Replay.defaultFixturesDir, f, "openai")
  if (f.startsWith("bedrock/")) return decodeFrames(r.body).length
  // The Anthropic SDK drops `ping` events; the others yield every data line but [DONE].
  return Buffer.from(r.body).toString("utf8").split(/\r?\n/).filter((l) =>
    l.startsWith("data:") && !l.includes("[DONE]") && !/"type":\s*"ping"/.test(l)
  ).length
}

const statusOf = (f: string) => Replay.load(Replay.defaultFixturesDir, f, "openai").status
const bodyOf = (f: string): any => {
  const text = Buffer.from(Replay.load(Replay.defaultFixturesDir, f, "openai").body).toString("utf8")
  return JSON.parse(text)
}

describe("fixture inventory", () => {
  it("covers all four providers", () => {
    for (const dir of ["openai/", "anthropic/", "google/", "bedrock/"]) {
      assert.isTrue(files.some((f) => f.startsWith(dir)), dir)
    }
    assert.isAbove(files.length, 50)
  })
})

layer(Sim.layer(config()), { excludeTestServices: true })("replay of every fixture through the official SDK", (it) => {
  for (const file of files) {
    it.effect(`replays ${file}`, () =>
      Effect.gen(function*() {
        const sim = yield* Sim.SimServer
        const headers = { "x-sim-replay": file }
        const status = statusOf(file)
        const stream = isStream(file)
        if (file.startsWith("openai/")) {
          const client = openaiClient(sim.url)
          const req = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "x" }] }
          if (stream) {
            const chunks = yield* call(async () => {
              const out = []
              for await (const c of await client.chat.completions.create({ ...req, stream: true }, { headers })) out.push(c)
              return out
            })
            assert.strictEqual(chunks.length, expectedEvents(file))
          } else if (status >= 400) {
            const e = yield* call(() => client.chat.completions.create(req, { headers }).then(() => undefined, (e: any) => e))
            assert.strictEqual(e.status, status)
            assert.strictEqual(e.error.message, bodyOf(file).error.message)
          } else if (file.includes("completions-legacy")) {
            const r = yield* call(() => client.completions.create({ model: "gpt-4o-mini", prompt: "x" }, { headers }))
            assert.deepStrictEqual(JSON.parse(JSON.stringify(r)), bodyOf(file))
          } else {
            const r = yield* call(() => client.chat.completions.create(req, { headers }))
            assert.deepStrictEqual(JSON.parse(JSON.stringify(r)), bodyOf(file))
          }
        } else if (file.startsWith("anthropic/")) {
          const client = anthropicClient(sim.url)
          const req = { model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "user" as const, content: "x" }] }
          if (stream) {
            const events = yield* call(async () => {
              const out = []
              for await (const e of await client.messages.create({ ...req, stream: true }, { headers })) out.push(e)
              return out
            })
            assert.strictEqual(events.length, expectedEvents(file))
            assert.strictEqual(events[0]!.type, "message_start")
            assert.strictEqual(events[events.length - 1]!.type, "message_stop")
          } else if (status >= 400) {
            const e = yield* call(() => client.messages.create(req, { headers }).then(() => undefined, (e: any) => e))
            assert.strictEqual(e.status, status)
            assert.strictEqual(e.error.error.type, bodyOf(file).error.type)
          } else {
            const r = yield* call(() => client.messages.create(req, { headers }))
            assert.deepStrictEqual(JSON.parse(JSON.stringify(r)), bodyOf(file))
          }
        } else if (file.startsWith("google/")) {
          const client = geminiClient(sim.url, "gemini", "AIza-test", headers)
          const req = { model: "gemini-2.5-flash", contents: "x" }
          if (stream) {
            const chunks = yield* call(async () => {
              const out = []
              for await (const c of await client.models.generateContentStream(req)) out.push(c)
              return out
            })
            assert.strictEqual(chunks.length, expectedEvents(file))
            assert.isString(chunks[0]!.responseId)
          } else if (status >= 400) {
            const e = yield* call(() => client.models.generateContent(req).then(() => undefined, (e: any) => e))
            assert.strictEqual(e.status, status)
            assert.include(e.message, bodyOf(file).error.status)
          } else {
            const r = yield* call(() => client.models.generateContent(req))
            assert.strictEqual(r.responseId, bodyOf(file).responseId)
            assert.strictEqual(r.candidates![0]!.finishReason, bodyOf(file).candidates[0].finishReason)
          }
        } else if (file.startsWith("bedrock/")) {
          const client = bedrockClient(sim.url, "bedrock", "AKIDTEST", headers)
          const req = { modelId: "us.amazon.nova-micro-v1:0", messages: [{ role: "user" as const, content: [{ text: "x" }] }] }
          if (stream) {
            const out = yield* call(() => client.send(new ConverseStreamCommand(req)))
            const events = yield* call(async () => {
              const list = []
              for await (const e of out.stream!) list.push(e)
              return list
            })
            assert.strictEqual(events.length, expectedEvents(file))
            assert.isDefined(events.find((e) => e.messageStop))
          } else if (status >= 400) {
            const e = yield* call(() => client.send(new ConverseCommand(req)).then(() => undefined, (e: any) => e))
            assert.strictEqual(e.$metadata.httpStatusCode, status)
            assert.strictEqual(e.message, bodyOf(file).message)
          } else {
            const r = yield* call(() => client.send(new ConverseCommand(req)))
            assert.strictEqual(r.stopReason, bodyOf(file).stopReason)
            const { inputTokens, outputTokens, totalTokens } = bodyOf(file).usage
            assert.deepStrictEqual([r.usage!.inputTokens, r.usage!.outputTokens, r.usage!.totalTokens], [inputTokens, outputTokens, totalTokens])
          }
        } else {
          assert.fail(`fixture outside a provider folder: ${file}`)
        }
      }))
  }

  it.effect("a fault plan step { replay } serves a fixture too", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      yield* sim.setFaults("openai", { script: [{ replay: "openai/chat-text.json" }] })
      const r = yield* call(() => openaiClient(sim.url).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }))
      assert.strictEqual(r.id, "chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU")
      yield* sim.clearFaults("openai")
    }))

  it.effect("replay paths cannot escape the fixtures directory", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const r = yield* call(() =>
        fetch(`${sim.url}/openai/v1/chat/completions`, { method: "POST", headers: { "x-sim-replay": "../package.json" }, body: "{}" })
      )
      assert.strictEqual(r.status, 400)
      assert.include(yield* call(() => r.text()), "escapes")
    }))
})

describe("replay sources", () => {
  it("the raw .eventstream.bin is served byte for byte", () => {
    const f = "bedrock/converse-stream-text.eventstream.bin"
    const r = Replay.load(Replay.defaultFixturesDir, f, "bedrock")
    assert.isTrue(Buffer.from(r.body).equals(Fs.readFileSync(Path.join(Replay.defaultFixturesDir, f))))
    assert.strictEqual(r.headers["content-type"], "application/vnd.amazon.eventstream")
  })
})
