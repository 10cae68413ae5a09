import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Sim } from "../src/index.ts"
import { call, config, geminiClient, longText, rejection, weatherSchema } from "./helpers.ts"

const model = "gemini-2.5-flash"
const fault = (value: string) => ({ httpOptions: { headers: { "x-sim-fault": value } } })

layer(Sim.layer(config()), { excludeTestServices: true })("gemini protocol through @google/genai", (it) => {
  it.effect("generateContent answers deterministically with usageMetadata", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const a = yield* call(() => client.models.generateContent({ model, contents: "Hello" }))
      const b = yield* call(() => client.models.generateContent({ model, contents: "Hello" }))
      assert.strictEqual(a.text, b.text)
      assert.strictEqual(a.candidates![0]!.finishReason, "STOP")
      assert.strictEqual(a.usageMetadata!.candidatesTokenCount, a.text!.split(" ").length)
      assert.strictEqual(a.usageMetadata!.totalTokenCount, a.usageMetadata!.promptTokenCount! + a.usageMetadata!.candidatesTokenCount!)
    }))

  it.effect("streamGenerateContent?alt=sse streams the same text", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const plain = yield* call(() => client.models.generateContent({ model, contents: "stream" }))
      const streamed = yield* call(async () => {
        let text = ""
        let finish: string | undefined
        for await (const c of await client.models.generateContentStream({ model, contents: "stream" })) {
          text += c.text ?? ""
          finish = c.candidates?.[0]?.finishReason ?? finish
        }
        return { text, finish }
      })
      assert.strictEqual(streamed.text, plain.text)
      assert.strictEqual(streamed.finish, "STOP")
    }))

  it.effect("maxOutputTokens gives MAX_TOKENS; content-filter gives SAFETY", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const r = yield* call(() => client.models.generateContent({ model, contents: "x", config: { maxOutputTokens: 4 } }))
      assert.strictEqual(r.candidates![0]!.finishReason, "MAX_TOKENS")
      assert.strictEqual(r.usageMetadata!.candidatesTokenCount, 4)
      const f = yield* call(() => client.models.generateContent({ model, contents: "x", config: fault("content-filter") }))
      assert.strictEqual(f.candidates![0]!.finishReason, "SAFETY")
    }))

  it.effect("functionCall from the declared tool, text after a functionResponse", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const tools = [{ functionDeclarations: [{ name: "get_weather", parametersJsonSchema: weatherSchema }] }]
      const r = yield* call(() => client.models.generateContent({ model, contents: "weather?", config: { tools } }))
      const fc = r.functionCalls![0]!
      assert.strictEqual(fc.name, "get_weather")
      assert.deepStrictEqual(Object.keys(fc.args!).sort(), ["city", "days", "unit"])
      const after = yield* call(() =>
        client.models.generateContent({
          model,
          config: { tools },
          contents: [
            { role: "user", parts: [{ text: "weather?" }] },
            { role: "model", parts: [{ functionCall: fc }] },
            { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { ok: true } } }] }
          ]
        })
      )
      assert.isUndefined(after.functionCalls)
      assert.isTrue(after.text!.length > 0)
    }))

  it.effect("NOT_FOUND for an unknown model, INVALID_ARGUMENT for a long prompt, models list", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const nf = yield* rejection(() => client.models.generateContent({ model: "gemini-nope", contents: "x" }))
      assert.strictEqual(nf.status, 404)
      assert.match(nf.message, /NOT_FOUND/)
      const cl = yield* rejection(() => client.models.generateContent({ model, contents: longText(2500) }))
      assert.strictEqual(cl.status, 400)
      assert.match(cl.message, /The input token count \(\d+\) exceeds the maximum number of tokens allowed \(2000\)/)
      const list = yield* call(async () => {
        const out: Array<string> = []
        for await (const m of await client.models.list()) out.push(m.name!)
        return out
      })
      assert.deepStrictEqual(list, [`models/${model}`])
    }))

  it.effect("errors carry google.rpc status names; 429 carries RetryInfo", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = geminiClient(sim.url)
      const cases = [
        [400, "INVALID_ARGUMENT"],
        [403, "PERMISSION_DENIED"],
        [404, "NOT_FOUND"],
        [429, "RESOURCE_EXHAUSTED"],
        [500, "INTERNAL"],
        [503, "UNAVAILABLE"]
      ] as const
      for (const [status, name] of cases) {
        const e = yield* rejection(() => client.models.generateContent({ model, contents: "x", config: fault(`status=${status};retry-after=7`) }))
        assert.strictEqual(e.status, status)
        const body = JSON.parse(e.message.slice(e.message.indexOf("{")))
        assert.strictEqual(body.error.status, name)
        assert.strictEqual(body.error.code, status)
        if (status === 429) {
          const info = body.error.details.find((d: { "@type": string }) => d["@type"].endsWith("google.rpc.RetryInfo"))
          assert.strictEqual(info.retryDelay, "7s")
        }
      }
    }))
})

describe("gemini keys", () => {
  it.live("apiKeys: a wrong key is 400 API_KEY_INVALID as on the real API", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ apiKeys: ["AIza-good"] }))
      yield* call(() => geminiClient(sim.url, "gemini", "AIza-good").models.generateContent({ model, contents: "x" }))
      const e = yield* rejection(() => geminiClient(sim.url, "gemini", "AIza-bad-777").models.generateContent({ model, contents: "x" }))
      assert.strictEqual(e.status, 400)
      assert.match(e.message, /API_KEY_INVALID/)
      assert.notInclude(e.message, "AIza-bad-777")
    }))
})
