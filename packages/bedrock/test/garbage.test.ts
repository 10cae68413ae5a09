/**
 * Trust nothing a provider sends (issue 14): the real
 * `@aws-sdk/client-bedrock-runtime` against a crafted loopback server. Every
 * finding fails with a typed error naming what was wrong — never a success
 * with nonsense, never a defect (the BigInt `TypeError` included).
 */
import { assert, describe, it } from "@effect/vitest"
import { type LLM, Llm, LlmError, type LlmRequest, SwitchboardConfigError } from "@switchboard/core"
import { Crafted } from "@switchboard/sim"
import { Effect, Layer } from "effect"
import { assertMalformed, assertNoSdkRetries, assertRefused, generateAgainst } from "../../../test/support/crafted.ts"
import { Bedrock } from "../src/index.ts"

const user: LlmRequest.LlmRequest = { messages: [{ role: "user", content: "hi" }], maxTokens: 10 }
const NOVA = "us.amazon.nova-micro-v1:0"

const converse = (content: unknown, usage: unknown, stopReason = "end_turn") => ({
  output: { message: { role: "assistant", content } },
  stopReason,
  usage,
  metrics: { latencyMs: 10 }
})

const modelAt = (url: string, options?: { readonly contentFilter?: "fail" | "return" }): Layer.Layer<LLM> =>
  Bedrock.model(NOVA, undefined, options).pipe(
    Layer.provide(Layer.orDie(Bedrock.layerClient({
      region: "us-east-1",
      endpoint: url,
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret-test-key" }
    })))
  )

const against = generateAgainst(modelAt, user)

const text = [{ text: "hi" }]

describe("Bedrock over a crafted server: garbage is MalformedResponse", () => {
  it.live("negative usage never credits the ledger; the attempt is still recorded", () =>
    Effect.gen(function*() {
      const { exit, totals } = yield* against({ json: converse(text, { inputTokens: -50, outputTokens: 5, totalTokens: 5 }) })
      assertMalformed(exit, "inputTokens")
      assert.isAtLeast(totals.costUsd, 0)
      assert.strictEqual(totals.attempts, 1)
    }))

  it.live("a usage count too big for a number (the SDK's BigInt) is MalformedResponse, not a TypeError defect", () =>
    Effect.gen(function*() {
      const body = JSON.stringify(converse(text, { inputTokens: 10, outputTokens: 1, totalTokens: 11 }))
        .replace("\"outputTokens\":1", "\"outputTokens\":123456789012345678901234567890")
      const { exit, totals } = yield* against({ body, headers: { "content-type": "application/json" } })
      assertMalformed(exit, "outputTokens")
      assert.isTrue(Number.isFinite(totals.costUsd) && totals.costUsd >= 0)
    }))

  it.live("1e308, fractional and string usage are refused", () =>
    Effect.gen(function*() {
      for (const bad of [1e308, 2.5, "12"]) {
        const { exit } = yield* against({ json: converse(text, { inputTokens: 10, outputTokens: bad, totalTokens: 11 }) })
        assertMalformed(exit, "outputTokens")
      }
    }))

  it.live("a toolUse without a name is MalformedResponse, not an empty success", () =>
    Effect.gen(function*() {
      const { exit } = yield* against({
        json: converse([{ toolUse: { toolUseId: "t1", input: {} } }], { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, "tool_use")
      })
      assertMalformed(exit, "no name")
    }))

  it.live("bodies {}, [], null and one without output are a missing answer, never an empty charged one", () =>
    Effect.gen(function*() {
      for (const json of [{}, [], { stopReason: "end_turn", usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 } }]) {
        const { exit } = yield* against({ json })
        assertMalformed(exit, "")
      }
      const { exit } = yield* against({ body: "null", headers: { "content-type": "application/json" } })
      assertMalformed(exit, "")
    }))

  it.live("a guardrail stop fails with ContentFiltered by default, and is returned with contentFilter: return", () =>
    Effect.gen(function*() {
      const json = converse(text, { inputTokens: 3, outputTokens: 1, totalTokens: 4 }, "guardrail_intervened")
      const server = yield* Crafted.serve(() => ({ json }))
      const error = yield* Effect.flip(Llm.generate(user).pipe(Effect.provide(modelAt(server.url))))
      assert.instanceOf(error, LlmError.ContentFiltered)
      assert.strictEqual(error.text, "hi")
      const response = yield* Llm.generate(user).pipe(Effect.provide(modelAt(server.url, { contentFilter: "return" })))
      assert.strictEqual(response.finishReason, "content-filter")
    }))
})

describe("Bedrock client: network, configuration, SDK retries", () => {
  it.live("SDK retries are off: a 500, a 429 and a 503 reach the server once each", () =>
    Effect.gen(function*() {
      const errors = [[500, "InternalServerException"], [429, "ThrottlingException"], [503, "ServiceUnavailableException"]] as const
      yield* assertNoSdkRetries(modelAt, user, errors.map(([status, type]) => ({
        status,
        headers: { "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` },
        json: { message: "boom" }
      })))
    }))

  it.live("a refused port is NetworkError { cause: refused }", () =>
    Effect.gen(function*() {
      yield* assertRefused(modelAt, user)
    }))

  it.effect("an endpoint that is not an absolute http(s) URL fails the client layer at build, naming Bedrock.endpoint", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Bedrock.layerClient({ region: "us-east-1", endpoint: "bedrock.local:4010" })))
      assert.instanceOf(error, SwitchboardConfigError.SwitchboardConfigError)
      assert.strictEqual(error.path, "Bedrock.endpoint")
    }))
})
