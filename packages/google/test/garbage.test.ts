/**
 * Trust nothing a provider sends (issue 14): the real `@google/genai` SDK
 * against a crafted loopback server. Every finding fails with a typed error
 * naming what was wrong — never a success with nonsense, never a defect.
 */
import { assert, describe, it } from "@effect/vitest"
import { type LLM, Llm, LlmError, type LlmRequest, SwitchboardConfigError } from "@switchboard/core"
import { Crafted } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import { assertMalformed, assertNoSdkRetries, assertRefused, generateAgainst } from "../../../test/support/crafted.ts"
import { Google } from "../src/index.ts"

const user: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hi" }], maxTokens: 10 }

const answer = (parts: unknown, usage: unknown, finishReason = "STOP") => ({
  responseId: "r1",
  modelVersion: "gemini-2.5-flash",
  candidates: [{ content: { role: "model", parts }, finishReason }],
  usageMetadata: usage
})

const modelAt = (url: string, options?: { readonly contentFilter?: "fail" | "return" }): Layer.Layer<LLM> =>
  Google.model("gemini-2.5-flash", undefined, options).pipe(
    Layer.provide(Layer.orDie(Google.layerClient({ apiKey: "AIza-test", baseURL: url })))
  )

const against = (json: unknown) => generateAgainst(modelAt, user)({ json })

const text = [{ text: "hi" }]

describe("Gemini over a crafted server: garbage is MalformedResponse", () => {
  it.live("negative usage never credits the ledger; the attempt is still recorded", () =>
    Effect.gen(function*() {
      const { exit, totals } = yield* against(answer(text, { promptTokenCount: -50, candidatesTokenCount: 5 }))
      assertMalformed(exit, "promptTokenCount")
      assert.isAtLeast(totals.costUsd, 0)
      assert.strictEqual(totals.attempts, 1)
    }))

  it.live("huge (1e308), fractional and string usage are refused", () =>
    Effect.gen(function*() {
      for (const bad of [1e308, 2.5, "12"]) {
        const { exit, totals } = yield* against(answer(text, { promptTokenCount: 10, candidatesTokenCount: bad }))
        assertMalformed(exit, "candidatesTokenCount")
        assert.isTrue(Number.isFinite(totals.costUsd) && totals.costUsd >= 0)
      }
    }))

  it.live("a part whose text is not a string is MalformedResponse, not text \"\"", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(answer([{ text: 7 }], { promptTokenCount: 1, candidatesTokenCount: 1 }))
      assertMalformed(exit, "text")
    }))

  it.live("a candidate without content is a missing answer, not an empty one", () =>
    Effect.gen(function*() {
      const { exit } = yield* against({ candidates: [{ finishReason: "STOP" }], usageMetadata: { promptTokenCount: 1 } })
      assertMalformed(exit, "content")
    }))

  it.live("a function call without a name is MalformedResponse", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(answer([{ functionCall: { args: {} } }], { promptTokenCount: 1 }))
      assertMalformed(exit, "name")
    }))

  it.live("a body of null is MalformedResponse", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(null)
      assertMalformed(exit, "")
    }))

  it.live("a SAFETY finish fails with ContentFiltered by default, and is returned with contentFilter: return", () =>
    Effect.gen(function*() {
      const server = yield* Crafted.serve(() => ({ json: answer(text, { promptTokenCount: 3 }, "SAFETY") }))
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt(server.url))))
      assert.instanceOf(error, LlmError.ContentFiltered)
      assert.strictEqual(error.text, "hi")
      const response = yield* Llm.generate(user).pipe(Effect.provide(modelAt(server.url, { contentFilter: "return" })))
      assert.strictEqual(response.finishReason, "content-filter")
    }))
})

describe("Gemini client: network, configuration, SDK retries", () => {
  it.live("SDK retries are off: a 500, a 429 and a 503 reach the server once each", () =>
    Effect.gen(function*() {
      yield* assertNoSdkRetries(modelAt, user, [500, 429, 503].map((status) => ({
        status,
        headers: { "retry-after": "0" },
        json: { error: { code: status, message: "boom", status: "UNAVAILABLE" } }
      })))
    }))

  it.live("a refused port is NetworkError { cause: refused }", () =>
    Effect.gen(function*() {
      yield* assertRefused(modelAt, user)
    }))

  it.effect("a baseURL that is not an absolute http(s) URL fails the client layer at build, naming Google.baseURL", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Google.layerClient({ apiKey: "k", baseURL: "generativelanguage.googleapis.com" })))
      assert.instanceOf(error, SwitchboardConfigError.SwitchboardConfigError)
      assert.strictEqual(error.path, "Google.baseURL")
    }))
})
