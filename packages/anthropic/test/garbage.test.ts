/**
 * Trust nothing a provider sends (issue 14): the real `@anthropic-ai/sdk`
 * against a crafted loopback server. Every finding fails with a typed error
 * naming what was wrong — never a success with nonsense, never a defect.
 */
import { assert, describe, it } from "@effect/vitest"
import { CostLedger, type LLM, Llm, LlmError, type LlmRequest, SwitchboardConfigError } from "@switchboard/core"
import { Crafted } from "@switchboard/sim"
import { Effect, Exit, Layer } from "effect"
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

const against = (json: unknown) =>
  Effect.gen(function*() {
    const server = yield* Crafted.serve(() => ({ json }))
    return yield* Effect.gen(function*() {
      const exit = yield* Effect.exit(Llm.generate(user))
      const totals = (yield* CostLedger.snapshot).total
      return { exit, totals }
    }).pipe(Effect.provide(Layer.merge(modelAt(server.url), CostLedger.layer)))
  })

const malformed = (exit: Exit.Exit<unknown, LlmError.LlmError>, mentions: string) => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
  assert.strictEqual(reason?._tag, "Fail", "a typed failure, not a defect")
  const failure = (reason as { error: LlmError.LlmError }).error
  assert.instanceOf(failure, LlmError.MalformedResponse)
  assert.include((failure as LlmError.MalformedResponse).detail, mentions)
}

const text = [{ type: "text", text: "hi" }]

describe("Anthropic over a crafted server: garbage is MalformedResponse", () => {
  it.live("negative usage never credits the ledger; the attempt is still recorded", () =>
    Effect.gen(function*() {
      const { exit, totals } = yield* against(message(text, { input_tokens: -50, output_tokens: 5 }))
      malformed(exit, "input_tokens")
      assert.isAtLeast(totals.costUsd, 0)
      assert.strictEqual(totals.attempts, 1)
    }))

  it.live("huge (1e308), fractional and string usage are refused", () =>
    Effect.gen(function*() {
      for (const bad of [1e308, 2.5, "12"]) {
        const { exit, totals } = yield* against(message(text, { input_tokens: 10, output_tokens: bad }))
        malformed(exit, "output_tokens")
        assert.isTrue(Number.isFinite(totals.costUsd) && totals.costUsd >= 0)
      }
    }))

  it.live("a text block whose text is not a string is MalformedResponse, not text \"\"", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(message([{ type: "text", text: 42 }], { input_tokens: 1, output_tokens: 1 }))
      malformed(exit, "text")
    }))

  it.live("a tool_use block without a name is MalformedResponse, never a lost call", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(
        message([{ type: "tool_use", id: "toolu_1", input: {} }], { input_tokens: 1, output_tokens: 1 }, "tool_use")
      )
      malformed(exit, "no name")
    }))

  it.live("a body of null is MalformedResponse", () =>
    Effect.gen(function*() {
      const { exit } = yield* against(null)
      malformed(exit, "")
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
      for (const status of [500, 429, 529]) {
        const server = yield* Crafted.serve(() => ({
          status,
          headers: { "retry-after": "0", "x-should-retry": "true" },
          json: { type: "error", error: { type: "api_error", message: "boom" } }
        }))
        yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt(server.url))))
        assert.strictEqual(server.received.length, 1, `status ${status}`)
      }
    }))

  it.live("a refused port is NetworkError { cause: refused, url }", () =>
    Effect.gen(function*() {
      const server = yield* Effect.scoped(Crafted.serve(() => ({ json: {} })))
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt(server.url))))
      assert.instanceOf(error, LlmError.NetworkError)
      assert.strictEqual(error.cause, "refused")
      assert.strictEqual(error.url, `${server.url}/v1/messages`)
    }))

  it.effect("a baseURL that is not an absolute http(s) URL fails the client layer at build, naming Anthropic.baseURL", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Anthropic.layerClient({ apiKey: "k", baseURL: "api.anthropic.com" })))
      assert.instanceOf(error, SwitchboardConfigError.SwitchboardConfigError)
      assert.strictEqual(error.path, "Anthropic.baseURL")
    }))
})
