/**
 * Trust nothing a provider sends (issue 14): the real `openai` SDK against a
 * crafted loopback server answering 200 with garbage. Every finding fails
 * with a typed error naming what was wrong — never a success with nonsense,
 * never a defect — and the ledger keeps only what can be trusted.
 */
import { assert, describe, it } from "@effect/vitest"
import { type LLM, Llm, LlmError, type LlmRequest, SwitchboardConfigError } from "@switchboard/core"
import { Crafted, Sim } from "@switchboard/sim"
import { Effect, Layer, Stream } from "effect"
import { assertMalformed, assertRefused, generateAgainst } from "../../../test/support/crafted.ts"
import { OpenAI } from "../src/index.ts"

const user: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hi" }], maxTokens: 10 }

const completion = (message: Record<string, unknown>, usage: unknown, finish = "stop") => ({
  id: "chatcmpl-x",
  object: "chat.completion",
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }],
  usage
})
const usage = (prompt: unknown, completionTokens: unknown) => ({
  prompt_tokens: prompt,
  completion_tokens: completionTokens,
  total_tokens: 15
})

const modelAt = (url: string): Layer.Layer<LLM> =>
  OpenAI.model("gpt-4o-mini").pipe(Layer.provide(Layer.orDie(OpenAI.layerClient({ apiKey: "sk-test", baseURL: `${url}/v1` }))))

/** Generates once against a server answering `json`, with a ledger; the exit and the ledger's totals. */
const against = (json: unknown) => generateAgainst(modelAt, user)({ json })

describe("OpenAI over a crafted server: garbage is MalformedResponse", () => {
  it.live("negative usage never credits the ledger", () =>
    Effect.gen(function*() {
      const { exit, totals } = yield* against(completion({ content: "hi" }, usage(-50, 5)))
      assertMalformed(exit, "prompt_tokens")
      assert.isAtLeast(totals.costUsd, 0)
      assert.isAtLeast(totals.inputTokens, 0)
      assert.strictEqual(totals.attempts, 1, "the attempt is still recorded")
    }))

  it.live("huge (1e308), fractional and string usage are refused, never infinite or free", () =>
    Effect.gen(function*() {
      for (const bad of [1e308, 2.5, "12"]) {
        const { exit, totals } = yield* against(completion({ content: "hi" }, usage(10, bad)))
        assertMalformed(exit, "completion_tokens")
        assert.isTrue(Number.isFinite(totals.costUsd) && totals.costUsd >= 0)
        assert.isTrue(Number.isFinite(totals.outputTokens))
      }
    }))

  it.live("wrong-typed text is MalformedResponse, not text \"\"", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(completion({ content: 12345 }, usage(10, 5)))
      assertMalformed(exit, "content")
    }))

  it.live("a tool call without a name is MalformedResponse, not a call named \"\"", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(
        completion({ content: null, tool_calls: [{ id: "call_1", type: "function", function: { arguments: "{}" } }] }, usage(10, 5), "tool_calls")
      )
      assertMalformed(exit, "name")
    }))

  it.live("a body of null is MalformedResponse", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(null)
      assertMalformed(exit, "")
    }))

  it.live("a stream chunk with negative usage fails the stream with MalformedResponse", () =>
    Effect.gen(function*() {
      const events = [
        { id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "hi" }, finish_reason: "stop" }] },
        { id: "c", object: "chat.completion.chunk", choices: [], usage: usage(-5, 2) }
      ]
      const server = yield* Crafted.serve(() => ({
        headers: { "content-type": "text/event-stream" },
        body: events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("") + "data: [DONE]\n\n"
      }))
      const error = yield* Effect.flip(Stream.runCollect(Llm.stream(user)).pipe(Effect.provide(modelAt(server.url))))
      assert.instanceOf(error, LlmError.MalformedResponse)
      assert.include(error.detail, "prompt_tokens")
    }))
})

describe("OpenAI network errors and client configuration", () => {
  it.live("a refused port is NetworkError { cause: refused, url }", () =>
    Effect.gen(function*() {
      const { error, url } = yield* assertRefused(modelAt, user)
      assert.strictEqual(error.url, `${url}/v1/chat/completions`)
    }))

  it.live("an unknown host is NetworkError { cause: dns }", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt("http://no-such-host.invalid"))))
      assert.instanceOf(error, LlmError.NetworkError)
      assert.strictEqual(error.cause, "dns")
    }))

  it.effect("a baseURL that is not an absolute http(s) URL fails the client layer at build, naming OpenAI.baseURL", () =>
    Effect.gen(function*() {
      for (const baseURL of ["api.openai.com/v1", "ftp://host/v1", "not a url"]) {
        const error = yield* Effect.flip(Layer.build(OpenAI.layerClient({ apiKey: "k", baseURL })))
        assert.instanceOf(error, SwitchboardConfigError.SwitchboardConfigError)
        assert.strictEqual(error.path, "OpenAI.baseURL")
      }
      const compatible = yield* Effect.flip(Layer.build(OpenAI.compatible({ name: "x", baseURL: "localhost:11434" })))
      assert.strictEqual(compatible.path, "OpenAI.compatible.baseURL")
    }))

  it.live("a baseURL without /v1 (a 404 for the path) is not ModelNotFound", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start({ providers: { openai: { protocol: "openai", models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] } } })
      const wrong = OpenAI.model("gpt-4o-mini").pipe(
        Layer.provide(Layer.orDie(OpenAI.layerClient({ apiKey: "k", baseURL: `${sim.url}/openai` })))
      )
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(wrong)))
      assert.notStrictEqual(error._tag, "ModelNotFound")
      assert.instanceOf(error, LlmError.InvalidRequest)
      assert.strictEqual(error.field, "baseURL")
      assert.isFalse(error.retryable)
    }))
})
