import { assert, describe, it, layer } from "@effect/vitest"
import { GoogleGenAI, type GoogleGenAIOptions } from "@google/genai"
import { Effect } from "effect"
import { createRequire } from "node:module"
import { Sim } from "../src/index.ts"
import { call, config, geminiClient, rejection } from "./helpers.ts"

const model = "gemini-2.5-flash"
const project = "my-project"
const location = "us-central1"
const fault = (value: string) => ({ httpOptions: { headers: { "x-sim-fault": value } } })

// The google-auth-library that @google/genai itself uses (a dependency of the
// SDK, not of this package): an OAuth2Client holding a token that does not
// expire soon is used as is, so nothing is fetched from Google.
const sdkRequire = createRequire(createRequire(import.meta.url).resolve("@google/genai"))
type AuthClient = NonNullable<NonNullable<GoogleGenAIOptions["googleAuthOptions"]>["authClient"]>
const { OAuth2Client } = sdkRequire("google-auth-library") as { OAuth2Client: new() => AuthClient }

const tokenClient = (token: string) => {
  const client = new OAuth2Client()
  client.setCredentials({ access_token: token, expiry_date: Date.now() + 3_600_000 })
  return client
}

/** `@google/genai` in Vertex AI mode, pointed at the sim's provider `name`. */
const vertexClient = (url: string, name = "gemini", token = "ya29.test-token") =>
  new GoogleGenAI({
    vertexai: true,
    project,
    location,
    googleAuthOptions: { authClient: tokenClient(token) },
    httpOptions: { baseUrl: `${url}/${name}` }
  })

const generatePath = (url: string, name = "gemini", m = model) =>
  `${url}/${name}/v1beta1/projects/${project}/locations/${location}/publishers/google/models/${m}:generateContent`

const body = JSON.stringify({ contents: [{ role: "user", parts: [{ text: "Hello" }] }] })

layer(Sim.layer(config()), { excludeTestServices: true })("gemini protocol on Vertex AI paths through @google/genai", (it) => {
  it.effect("generateContent on Vertex answers like the Gemini API for the same request", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const vertex = yield* call(() => vertexClient(sim.url).models.generateContent({ model, contents: "Hello" }))
      const gemini = yield* call(() => geminiClient(sim.url).models.generateContent({ model, contents: "Hello" }))
      assert.isAbove(vertex.text!.length, 0)
      assert.strictEqual(vertex.text, gemini.text)
      assert.strictEqual(vertex.candidates![0]!.finishReason, "STOP")
      assert.deepStrictEqual(vertex.usageMetadata, gemini.usageMetadata)
    }))

  it.effect("serves POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* call(() =>
        fetch(generatePath(sim.url), { method: "POST", headers: { "content-type": "application/json" }, body })
      )
      assert.strictEqual(response.status, 200)
      const json = yield* call(() => response.json() as Promise<any>)
      assert.strictEqual(json.candidates[0].finishReason, "STOP")
      const v1 = yield* call(() =>
        fetch(generatePath(sim.url).replace("/v1beta1/", "/v1/"), { method: "POST", headers: { "content-type": "application/json" }, body })
      )
      assert.strictEqual(v1.status, 200)
    }))

  it.effect("streamGenerateContent?alt=sse on Vertex streams the same text", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = vertexClient(sim.url)
      const plain = yield* call(() => client.models.generateContent({ model, contents: "stream" }))
      const streamed = yield* call(async () => {
        let text = ""
        let chunks = 0
        let finish: string | undefined
        for await (const c of await client.models.generateContentStream({ model, contents: "stream" })) {
          chunks++
          text += c.text ?? ""
          finish = c.candidates?.[0]?.finishReason ?? finish
        }
        return { text, finish, chunks }
      })
      assert.strictEqual(streamed.text, plain.text)
      assert.strictEqual(streamed.finish, "STOP")
      assert.isAbove(streamed.chunks, 1)
    }))

  it.effect("models.list and models.get on Vertex return publisher models", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = vertexClient(sim.url)
      const list = yield* call(async () => {
        const out: Array<string> = []
        for await (const m of await client.models.list()) out.push(m.name!)
        return out
      })
      assert.deepStrictEqual(list, [`publishers/google/models/${model}`])
      const one = yield* call(() => client.models.get({ model }))
      assert.strictEqual(one.name, `publishers/google/models/${model}`)
      assert.strictEqual(one.version, "001")
      const missing = yield* rejection(() => client.models.get({ model: "gemini-nope" }))
      assert.strictEqual(missing.status, 404)
    }))

  it.effect("Vertex errors use the Google error body: unknown model NOT_FOUND, 429 with RetryInfo", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const client = vertexClient(sim.url)
      const nf = yield* rejection(() => client.models.generateContent({ model: "gemini-nope", contents: "x" }))
      assert.strictEqual(nf.status, 404)
      const nfBody = JSON.parse(nf.message.slice(nf.message.indexOf("{")))
      assert.strictEqual(nfBody.error.status, "NOT_FOUND")
      assert.include(nfBody.error.message, "Publisher Model `publishers/google/models/gemini-nope`")
      const rl = yield* rejection(() => client.models.generateContent({ model, contents: "x", config: fault("status=429;retry-after=7") }))
      assert.strictEqual(rl.status, 429)
      const rlBody = JSON.parse(rl.message.slice(rl.message.indexOf("{")))
      assert.strictEqual(rlBody.error.status, "RESOURCE_EXHAUSTED")
      const info = rlBody.error.details.find((d: { "@type": string }) => d["@type"].endsWith("google.rpc.RetryInfo"))
      assert.strictEqual(info.retryDelay, "7s")
      const unavailable = yield* rejection(() =>
        client.models.generateContentStream({ model, contents: "x", config: fault("status=503") })
      )
      assert.strictEqual(unavailable.status, 503)
    }))
})

describe("gemini keys on Vertex AI paths", () => {
  it.live("apiKeys: a key is accepted as `Authorization: Bearer`; a wrong or missing token is 401 UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config({ apiKeys: ["ya29.good"] }))
      const ok = yield* call(() => vertexClient(sim.url, "gemini", "ya29.good").models.generateContent({ model, contents: "x" }))
      assert.isAbove(ok.text!.length, 0)

      const wrong = yield* rejection(() => vertexClient(sim.url, "gemini", "ya29.bad-777").models.generateContent({ model, contents: "x" }))
      assert.strictEqual(wrong.status, 401)
      const wrongBody = JSON.parse(wrong.message.slice(wrong.message.indexOf("{")))
      assert.strictEqual(wrongBody.error.status, "UNAUTHENTICATED")
      assert.include(wrongBody.error.message, "Expected OAuth 2 access token")
      assert.notInclude(wrong.message, "ya29.bad-777")

      const missing = yield* call(() =>
        fetch(generatePath(sim.url), { method: "POST", headers: { "content-type": "application/json" }, body })
      )
      assert.strictEqual(missing.status, 401)
      const missingBody = (yield* call(() => missing.json())) as any
      assert.strictEqual(missingBody.error.details[0].reason, "CREDENTIALS_MISSING")

      // An API key header is not a Vertex credential.
      const keyHeader = yield* call(() =>
        fetch(generatePath(sim.url), { method: "POST", headers: { "content-type": "application/json", "x-goog-api-key": "ya29.good" }, body })
      )
      assert.strictEqual(keyHeader.status, 401)

      const list = yield* call(async () => {
        const out: Array<string> = []
        for await (const m of await vertexClient(sim.url, "gemini", "ya29.good").models.list()) out.push(m.name!)
        return out
      })
      assert.deepStrictEqual(list, [`publishers/google/models/${model}`])
      const badList = yield* rejection(() => vertexClient(sim.url, "gemini", "ya29.bad").models.list())
      assert.strictEqual(badList.status, 401)
    }))
})
