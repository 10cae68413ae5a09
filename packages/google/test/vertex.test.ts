import { assert, layer } from "@effect/vitest"
import { type GoogleGenAIOptions } from "@google/genai"
import { Llm } from "@switchboard/core"
import { Sim } from "@switchboard/sim"
import { ConfigProvider, Duration, Effect, Layer, Redacted, Stream } from "effect"
import { createRequire } from "node:module"
import { Google } from "../src/index.ts"
import { recorder, user } from "./helpers.ts"

/** The access token the `vertex` provider accepts (as `Authorization: Bearer`). */
const token = "ya29.sim-vertex-token-4242"
const project = "my-project"
const location = "us-central1"

const models = [
  { id: "gemini-2.5-flash", contextWindow: 1_048_576, maxOutput: 65_536 },
  { id: "gemini-3-pro-preview", contextWindow: 1_048_576, maxOutput: 65_536 }
]

const simConfig = {
  providers: {
    vertex: { protocol: "gemini" as const, models, apiKeys: [token] },
    gemini: { protocol: "gemini" as const, models }
  }
}

const vertexClient = (baseURL: string, options: Partial<Google.VertexOptions> = {}) =>
  Google.layerVertex({ project, location, accessToken: Redacted.make(token), baseURL, ...options })

const vertexModel = (baseURL: string, options: Partial<Google.VertexOptions> = {}) =>
  Google.model("gemini-2.5-flash").pipe(Layer.provide(vertexClient(baseURL, options)))

/** The google-auth-library that @google/genai uses (the SDK's dependency, not this package's). */
const sdkRequire = createRequire(createRequire(import.meta.url).resolve("@google/genai"))
type AuthClient = NonNullable<NonNullable<GoogleGenAIOptions["googleAuthOptions"]>["authClient"]>
const { OAuth2Client } = sdkRequire("google-auth-library") as { OAuth2Client: new() => AuthClient }

const flip = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.flip(effect)

layer(Sim.layer(simConfig), { excludeTestServices: true })("Google.layerVertex against the simulator", (it) => {
  it.effect("generate calls Vertex's generateContent path with the access token as a Bearer header", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const proxy = yield* recorder(sim.providerUrl("vertex"))
      const response = yield* Llm.generate(user("Why is the sky blue?")).pipe(Effect.provide(vertexModel(proxy.url)))
      assert.isAbove(response.text.length, 0)
      assert.strictEqual(response.provider, "google")
      assert.strictEqual(response.model, "gemini-2.5-flash")
      assert.strictEqual(response.finishReason, "stop")
      assert.isAbove(response.usage.outputTokens, 0)
      const seen = proxy.seen[0]!
      assert.strictEqual(seen.method, "POST")
      assert.strictEqual(
        seen.path,
        `/v1beta1/projects/${project}/locations/${location}/publishers/google/models/gemini-2.5-flash:generateContent`
      )
      assert.strictEqual(seen.headers.authorization, `Bearer ${token}`)
      assert.isUndefined(seen.headers["x-goog-api-key"])
      // Same request, same reply as on the Gemini API.
      const gemini = yield* Llm.generate(user("Why is the sky blue?")).pipe(
        Effect.provide(Google.model("gemini-2.5-flash").pipe(
          Layer.provide(Google.layerClient({ apiKey: "AIza-x", baseURL: sim.providerUrl("gemini") }))
        ))
      )
      assert.strictEqual(response.text, gemini.text)
    }))

  it.effect("stream reads Vertex's streamGenerateContent?alt=sse into text deltas and a finish", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const proxy = yield* recorder(sim.providerUrl("vertex"))
      const vertex = vertexModel(proxy.url)
      const whole = yield* Llm.generate(user("Count to five")).pipe(Effect.provide(vertex))
      const parts = yield* Stream.runCollect(Llm.stream(user("Count to five"))).pipe(Effect.provide(vertex))
      const deltas = parts.filter((p) => p.type === "text-delta")
      assert.isAbove(deltas.length, 1)
      assert.strictEqual(deltas.map((p) => p.type === "text-delta" ? p.text : "").join(""), whole.text)
      const finish = parts.find((p) => p.type === "finish")
      assert.isDefined(finish)
      assert.strictEqual(finish?.type === "finish" ? finish.response.finishReason : undefined, "stop")
      assert.strictEqual(
        proxy.seen[1]!.path,
        `/v1beta1/projects/${project}/locations/${location}/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse`
      )
    }))

  it.effect("a Vertex 429 is RateLimited with the RetryInfo delay; a 503 stream is Overloaded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const limited = yield* flip(Llm.generate(user("hi")).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex"), { headers: { "x-sim-fault": "status=429;retry-after=7" } }))
      ))
      assert.strictEqual(limited._tag, "RateLimited")
      assert.isTrue(limited._tag === "RateLimited" && limited.retryAfter !== undefined)
      if (limited._tag === "RateLimited") assert.strictEqual(Duration.toMillis(limited.retryAfter!), 7_000)
      const overloaded = yield* flip(Stream.runCollect(Llm.stream(user("hi"))).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex"), { headers: { "x-sim-fault": "status=503" } }))
      ))
      assert.strictEqual(overloaded._tag, "Overloaded")
    }))

  it.effect("an unknown model on Vertex is ModelNotFound", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const error = yield* flip(Llm.generate({ ...user("hi"), model: "gemini-nope" }).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex")))
      ))
      assert.strictEqual(error._tag, "ModelNotFound")
    }))

  it.effect("a rejected token is AuthenticationFailed, and the token never appears in the error", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const wrong = "ya29.wrong-token-7777"
      const error = yield* flip(Llm.generate(user("hi")).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex"), { accessToken: wrong }))
      ))
      assert.strictEqual(error._tag, "AuthenticationFailed")
      assert.notInclude(JSON.stringify(error), wrong)
      assert.notInclude(String(error), wrong)
      // Even when the server echoes the token back, it is scrubbed.
      const echoed = yield* flip(Llm.generate(user("hi")).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex"), {
          headers: { "x-sim-fault": `status=500;message=upstream rejected Bearer ${token}` }
        }))
      ))
      assert.strictEqual(echoed._tag, "ServerError")
      assert.include(echoed.message, "upstream rejected Bearer")
      assert.notInclude(echoed.message, token)
      assert.notInclude(JSON.stringify(echoed), token)
      assert.notInclude(String(echoed), token)
    }))

  it.effect("listModels on Vertex lists publisher models with ids usable in Google.model", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const proxy = yield* recorder(sim.providerUrl("vertex"))
      const listed = yield* Google.listModels.pipe(Effect.provide(vertexClient(proxy.url)))
      assert.deepStrictEqual(listed.map((m) => m.id), ["gemini-2.5-flash", "gemini-3-pro-preview"])
      assert.strictEqual(listed[0]!.name, "publishers/google/models/gemini-2.5-flash")
      assert.strictEqual(proxy.seen[0]!.path, "/v1beta1/publishers/google/models")
      assert.strictEqual(proxy.seen[0]!.headers.authorization, `Bearer ${token}`)
      const response = yield* Llm.generate({ ...user("hi"), model: listed[1]!.id }).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex")))
      )
      assert.strictEqual(response.model, "gemini-3-pro-preview")
      const denied = yield* flip(Google.listModels.pipe(
        Effect.provide(vertexClient(sim.providerUrl("vertex"), { accessToken: "ya29.nope" }))
      ))
      assert.strictEqual(denied._tag, "AuthenticationFailed")
    }))

  it.effect("authClient: a ready google-auth-library client authenticates the calls", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const authClient = new OAuth2Client()
      authClient.setCredentials({ access_token: token, expiry_date: Date.now() + 3_600_000 })
      const response = yield* Llm.generate(user("hi")).pipe(
        Effect.provide(Google.model("gemini-2.5-flash").pipe(
          Layer.provide(Google.layerVertex({ project, location, authClient, baseURL: sim.providerUrl("vertex") }))
        ))
      )
      assert.isAbove(response.text.length, 0)
    }))

  it.effect("accessToken takes precedence over credentials, so no token is fetched from Google", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const response = yield* Llm.generate(user("hi")).pipe(
        Effect.provide(vertexModel(sim.providerUrl("vertex"), {
          credentials: { client_email: "bot@my-project.iam.gserviceaccount.com", private_key: "not-a-key" }
        }))
      )
      assert.isAbove(response.text.length, 0)
    }))

  it.effect("layerVertexConfig with an accessToken override calls Vertex for GOOGLE_CLOUD_PROJECT", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.SimServer
      const proxy = yield* recorder(sim.providerUrl("vertex"))
      const response = yield* Llm.generate(user("hi")).pipe(
        Effect.provide(Google.model("gemini-2.5-flash").pipe(
          Layer.provide(Google.layerVertexConfig({ accessToken: token, baseURL: proxy.url })),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
            GOOGLE_CLOUD_PROJECT: "env-project",
            GOOGLE_CLOUD_LOCATION: "europe-west4"
          })))
        ))
      )
      assert.isAbove(response.text.length, 0)
      assert.match(proxy.seen[0]!.path, /^\/v1beta1\/projects\/env-project\/locations\/europe-west4\/publishers\/google\/models\//)
    }))
})
