/**
 * The README's calls (curl as `fetch`, the OpenAI and Anthropic SDKs) against
 * the README's gateway shape, with scripted models in place of real providers.
 */
import Anthropic from "@anthropic-ai/sdk"
import { assert, describe, it } from "@effect/vitest"
import { Fallback, LlmTest } from "@switchboard/core"
import { Gateway } from "@switchboard/gateway"
import { Effect } from "effect"
import OpenAI from "openai"

describe("README", () => {
  it.live("curl, the OpenAI SDK and the Anthropic SDK against a served gateway", () =>
    Effect.gen(function*() {
      const gpt = yield* LlmTest.makeTest({ provider: "openai", model: "gpt-4o-mini", steps: [{ text: "Hello from gpt" }] })
      const claude = yield* LlmTest.makeTest({ provider: "anthropic", model: "claude-haiku-4-5", steps: [{ text: "Hello from claude" }] })
      yield* Effect.gen(function*() {
        const { url } = yield* Gateway.GatewayServer
        const curl = yield* Effect.promise(async () => {
          const response = await fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: { authorization: "Bearer team-a-key", "content-type": "application/json" },
            body: JSON.stringify({ model: "default", messages: [{ role: "user", content: "Hello" }] })
          })
          return await response.json() as { choices: Array<{ message: { content: string } }> }
        })
        assert.strictEqual(curl.choices[0]?.message.content, "Hello from gpt")

        const client = new OpenAI({ apiKey: "team-a-key", baseURL: `${url}/v1` })
        const reply = yield* Effect.promise(() =>
          client.chat.completions.create({ model: "default", messages: [{ role: "user", content: "Hello" }] })
        )
        assert.strictEqual(reply.choices[0]?.message.content, "Hello from gpt")

        const anthropic = new Anthropic({ apiKey: "team-a-key", baseURL: url })
        const message = yield* Effect.promise(() =>
          anthropic.messages.create({ model: "claude", max_tokens: 100, messages: [{ role: "user", content: "Hello" }] })
        )
        assert.deepStrictEqual(message.content, [{ type: "text", text: "Hello from claude" }] as typeof message.content)
      }).pipe(Effect.provide(Gateway.layer({
        port: 0,
        accessLog: false,
        keys: [{ key: "team-a-key", tenant: "team-a", budget: { limitUsd: 5, window: "day" } }],
        routes: { default: Fallback.layer([gpt.layer, claude.layer]), claude: claude.layer }
      })))
    }))
})
