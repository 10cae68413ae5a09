/**
 * Trust nothing a provider sends (issue 14): the real `@anthropic-ai/sdk`
 * against a crafted loopback server. Every finding fails with a typed error
 * naming what was wrong — never a success with nonsense, never a defect.
 */
import { assert, describe, it } from "@effect/vitest"
import { type LLM, Llm, LlmError, type LlmRequest, SwitchboardConfigError } from "@switchboard/core"
import { Crafted } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import { assertMalformed, assertNoSdkRetries, assertRefused, generateAgainst } from "../../../test/support/crafted.ts"
import { Anthropic } from "../src/index.ts"

const user: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hi" }], maxTokens: 10 }

const message = (content: unknown, usage: unknown, stop = "end_turn") => ({
  id: "msg_x",
  type: "message",
  role: "assistant",
  model: "claude-haiku-4-5",
  content,
  stop_reason: stop,
  usage
})

const modelAt = (url: string, options?: { readonly contentFilter?: "fail" | "return" }): Layer.Layer<LLM> =>
  Anthropic.model("claude-haiku-4-5", undefined, options).pipe(
    Layer.provide(Layer.orDie(Anthropic.layerClient({ apiKey: "sk-ant-test", baseURL: url })))
  )

const against = (json: unknown) => generateAgainst(modelAt, user)({ json })

const text = [{ type: "text", text: "hi" }]

describe("Anthropic over a crafted server: garbage is MalformedResponse", () => {
  it.live("negative usage never credits the ledger; the attempt is still recorded", () =>
    Effect.gen(function*() {
      const { exit, totals } = yield* against(message(text, { input_tokens: -50, output_tokens: 5 }))
      assertMalformed(exit, "input_tokens")
      assert.isAtLeast(totals.costUsd, 0)
      assert.strictEqual(totals.attempts, 1)
    }))

  it.live("huge (1e308), fractional and string usage are refused", () =>
    Effect.gen(function*() {
      for (const bad of [1e308, 2.5, "12"]) {
        const { exit, totals } = yield* against(message(text, { input_tokens: 10, output_tokens: bad }))
        assertMalformed(exit, "output_tokens")
        assert.isTrue(Number.isFinite(totals.costUsd) && totals.costUsd >= 0)
      }
    }))

  it.live("a text block whose text is not a string is MalformedResponse, not text \"\"", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(message([{ type: "text", text: 42 }], { input_tokens: 1, output_tokens: 1 }))
      assertMalformed(exit, "text")
    }))

  it.live("a tool_use block without a name is MalformedResponse, never a lost call", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(
        message([{ type: "tool_use", id: "toolu_1", input: {} }], { input_tokens: 1, output_tokens: 1 }, "tool_use")
      )
      assertMalformed(exit, "no name")
    }))

  it.live("a body of null is MalformedResponse", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(null)
      assertMalformed(exit, "")
    }))

  it.live("a refusal fails with ContentFiltered by default, and is returned with contentFilter: return", () =>
    Effect.gen(function*() {
      const server = yield* Crafted.serve(() => ({ json: message(text, { input_tokens: 3, output_tokens: 1 }, "refusal") }))
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt(server.url))))
      assert.instanceOf(error, LlmError.ContentFiltered)
      assert.strictEqual(error.text, "hi")
      const response = yield* Llm.generate(user).pipe(Effect.provide(modelAt(server.url, { contentFilter: "return" })))
      assert.strictEqual(response.finishReason, "content-filter")
    }))
})

describe("Anthropic client: network, configuration, SDK retries", () => {
  it.live("SDK retries are off: a 500 and a 429 with retry-after reach the server once each", () =>
    Effect.gen(function*() {
      yield* assertNoSdkRetries(modelAt, user, [500, 429, 529].map((status) => ({
        status,
        headers: { "retry-after": "0", "x-should-retry": "true" },
        json: { type: "error", error: { type: "api_error", message: "boom" } }
      })))
    }))

  it.live("a refused port is NetworkError { cause: refused, url }", () =>
    Effect.gen(function*() {
      const { error, url } = yield* assertRefused(modelAt, user)
      assert.strictEqual(error.url, `${url}/v1/messages`)
    }))

  it.effect("a baseURL that is not an absolute http(s) URL fails the client layer at build, naming Anthropic.baseURL", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Anthropic.layerClient({ apiKey: "k", baseURL: "api.anthropic.com" })))
      assert.instanceOf(error, SwitchboardConfigError.SwitchboardConfigError)
      assert.strictEqual(error.path, "Anthropic.baseURL")
    }))
})
