/**
 * The gateway as a real process (`switchboard serve` on a free loopback
 * port) in front of the simulator, driven by the official OpenAI and
 * Anthropic SDKs: what an outside client sees.
 */
import AnthropicSdk from "@anthropic-ai/sdk"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Sim } from "@switchboard/sim"
import OpenAISdk from "openai"
import { type GatewayProcess, startGateway } from "./gatewayProcess.ts"


const simConfig = {
  providers: {
    openai: { protocol: "openai" as const, models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] },
    slow: {
      protocol: "openai" as const,
      models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }],
      latency: { ttftMs: 50, perTokenMs: 100 }
    },
    anthropic: { protocol: "anthropic" as const, models: [{ id: "claude-haiku-4-5", contextWindow: 200_000, maxOutput: 64_000 }] }
  }
}

const serve = (simUrl: string): Promise<GatewayProcess> =>
  startGateway(["serve", "test/fixtures/gateway-server.ts", "--port", "0"], { ...process.env, SWITCHBOARD_SIM_URL: simUrl })

let sim: Sim.SimPromiseHandle
let gateway: GatewayProcess

beforeAll(async () => {
  sim = await Sim.startPromise(simConfig)
  gateway = await serve(sim.url)
}, 30_000)

afterAll(async () => {
  gateway?.child.kill("SIGTERM")
  await gateway?.exited
  await sim?.close()
})

const openai = (key = "sk-e2e-team-a") => new OpenAISdk({ apiKey: key, baseURL: `${gateway.url}/v1`, maxRetries: 0 })
const anthropic = (key = "sk-e2e-team-a") => new AnthropicSdk({ apiKey: key, baseURL: gateway.url, maxRetries: 0 })

const rejection = async (p: () => Promise<unknown>): Promise<any> => {
  try {
    const value = await p()
    throw new Error(`expected a rejection, got ${JSON.stringify(value)?.slice(0, 200)}`)
  } catch (error) {
    return error
  }
}

const outcomes = (provider: string, model: string) => sim.stats().providers[provider]?.models[model]?.outcomes ?? {}

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 200; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const hello = [{ role: "user" as const, content: "Say hello to the gateway." }]

describe("gateway process", () => {
  it("OpenAI SDK: JSON and streaming through the gateway to the simulator", async () => {
    const { data, response } = await openai().chat.completions.create({ model: "fast", messages: hello, max_tokens: 40 }).withResponse()
    assert.isTrue((data.choices[0]!.message.content ?? "").length > 0)
    assert.isTrue(data.usage!.prompt_tokens > 0 && data.usage!.completion_tokens > 0)
    assert.strictEqual(response.headers.get("x-switchboard-provider"), "openai")
    assert.strictEqual(response.headers.get("x-switchboard-model"), "gpt-4o-mini")
    assert.isTrue(Number(response.headers.get("x-switchboard-cost-usd")) > 0)

    const stream = await openai().chat.completions.create({
      model: "fast",
      messages: hello,
      max_tokens: 40,
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let usage: OpenAISdk.CompletionUsage | null | undefined
    let finish: string | null | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish ??= chunk.choices[0]?.finish_reason
      usage ??= chunk.usage
    }
    assert.isTrue(text.length > 0)
    assert.strictEqual(finish, "stop")
    assert.isTrue((usage?.completion_tokens ?? 0) > 0)
  })

  it("Anthropic SDK: JSON and streaming, and tool calls both ways", async () => {
    const message = await anthropic().messages.create({ model: "claude", max_tokens: 40, messages: hello })
    assert.strictEqual(message.content[0]?.type, "text")
    assert.isTrue(message.usage.input_tokens > 0)
    const final = await anthropic().messages.stream({ model: "claude", max_tokens: 40, messages: hello }).finalMessage()
    assert.strictEqual(final.stop_reason, "end_turn")
    assert.isTrue(final.content[0]?.type === "text" && final.content[0].text.length > 0)

    const tools = [{ name: "get_weather", input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] } }]
    const call = await anthropic().messages.create({
      model: "claude",
      max_tokens: 100,
      tools,
      tool_choice: { type: "tool", name: "get_weather" },
      messages: [{ role: "user", content: "Weather in Paris?" }]
    })
    const use = call.content.find((block) => block.type === "tool_use")
    assert.strictEqual(call.stop_reason, "tool_use")
    assert.strictEqual(use?.type === "tool_use" ? use.name : "", "get_weather")
    const answer = await anthropic().messages.create({
      model: "claude",
      max_tokens: 100,
      tools,
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: call.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use!.type === "tool_use" ? use!.id : "", content: "sunny" }] }
      ]
    })
    assert.strictEqual(answer.stop_reason, "end_turn")

    const openaiCall = await openai().chat.completions.create({
      model: "fast",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [{ type: "function", function: { name: "get_weather", parameters: tools[0]!.input_schema } }],
      tool_choice: "required"
    })
    const toolCall = openaiCall.choices[0]!.message.tool_calls?.[0]
    assert.strictEqual(openaiCall.choices[0]!.finish_reason, "tool_calls")
    assert.strictEqual(toolCall?.type === "function" ? toolCall.function.name : "", "get_weather")
    assert.isObject(JSON.parse(toolCall?.type === "function" ? toolCall.function.arguments : ""))
  })

  it("fallback across providers behind one route: OpenAI's 500 is answered by Anthropic", async () => {
    await sim.setFaults("openai", { script: [{ status: 500, times: 1 }] })
    try {
      const { data, response } = await openai().chat.completions.create({ model: "default", messages: hello, max_tokens: 30 }).withResponse()
      assert.isTrue((data.choices[0]!.message.content ?? "").length > 0)
      assert.strictEqual(response.headers.get("x-switchboard-provider"), "anthropic")
      assert.strictEqual(response.headers.get("x-switchboard-attempts"), "2")
    } finally {
      sim.clearFaults("openai")
    }
  })

  it("a provider's 429 reaches the client as 429 with retry-after", async () => {
    await sim.setFaults("openai", { script: [{ status: 429, retryAfter: 3, times: 2 }] })
    try {
      const limited = await rejection(() => openai().chat.completions.create({ model: "fast", messages: hello }))
      assert.isTrue(limited instanceof OpenAISdk.RateLimitError)
      assert.strictEqual(limited.headers.get("retry-after"), "3")
      const streamed = await rejection(async () => {
        const stream = await anthropic().messages.create({ model: "fast", max_tokens: 20, messages: hello, stream: true })
        for await (const _ of stream) { /* drain */ }
      })
      assert.isTrue(streamed instanceof AnthropicSdk.RateLimitError)
      assert.strictEqual(streamed.headers.get("retry-after"), "3")
    } finally {
      sim.clearFaults("openai")
    }
  })

  it("a key's budget is enforced: calls succeed until it is spent, then 429 budget_exceeded; spend never passes the limit", async () => {
    let spent = 0
    let refused: any
    for (let i = 0; i < 60 && refused === undefined; i++) {
      try {
        const { response } = await openai("sk-e2e-team-b").chat.completions.create({ model: "fast", messages: hello, max_tokens: 20 }).withResponse()
        spent += Number(response.headers.get("x-switchboard-cost-usd"))
      } catch (error) {
        refused = error
      }
    }
    assert.isDefined(refused, "the budget ran out")
    assert.strictEqual(refused.status, 429)
    assert.strictEqual(refused.error.type, "budget_exceeded")
    assert.isTrue(spent > 0 && spent <= 0.0002, `spent ${spent}`)
    const other = await openai().chat.completions.create({ model: "fast", messages: hello, max_tokens: 20 })
    assert.isTrue((other.choices[0]!.message.content ?? "").length > 0, "another tenant is unaffected")
    const forbidden = await rejection(() => openai("sk-e2e-team-b").chat.completions.create({ model: "claude", messages: hello }))
    assert.strictEqual(forbidden.status, 403)
  })

  it("bad key, bad JSON, oversized body and unknown route: each with its status and body", async () => {
    const bad = await rejection(() => openai("sk-nope").chat.completions.create({ model: "fast", messages: hello }))
    assert.strictEqual(bad.status, 401)
    assert.strictEqual(bad.error.type, "authentication_error")
    const badAnthropic = await rejection(() => anthropic("sk-nope").messages.create({ model: "fast", max_tokens: 5, messages: hello }))
    assert.strictEqual(badAnthropic.status, 401)
    assert.strictEqual(badAnthropic.error.error.type, "authentication_error")

    const post = async (body: string) => {
      const response = await fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: "Bearer sk-e2e-team-a", "content-type": "application/json" },
        body
      })
      return { status: response.status, body: await response.json() as any }
    }
    const badJson = await post("{\"model\":")
    assert.strictEqual(badJson.status, 400)
    assert.strictEqual(badJson.body.error.param, "body")
    const oversized = await post(JSON.stringify({ model: "fast", messages: [{ role: "user", content: "x".repeat(11 * 1024 * 1024) }] }))
    assert.strictEqual(oversized.status, 400)
    assert.strictEqual(oversized.body.error.code, "request_too_large")
    const unknown = await rejection(() => openai().chat.completions.create({ model: "gpt-nope", messages: hello }))
    assert.strictEqual(unknown.status, 404)
    assert.strictEqual(unknown.error.code, "model_not_found")
  })

  it("a client that disconnects mid-stream cancels the provider call", async () => {
    const before = outcomes("slow", "gpt-4o-mini").aborted ?? 0
    const controller = new AbortController()
    const stream = await openai().chat.completions.create(
      { model: "slow", messages: hello, max_tokens: 200, stream: true },
      { signal: controller.signal }
    )
    for await (const chunk of stream) {
      if ((chunk.choices[0]?.delta.content ?? "").length > 0) break
    }
    await until(() => (outcomes("slow", "gpt-4o-mini").aborted ?? 0) > before, "the simulator to see the call aborted")
  })

  it("the access log names tenant, route, provider, status and cost, never the key or the prompt", async () => {
    await openai().chat.completions.create({ model: "fast", messages: [{ role: "user", content: "a secret prompt 7731" }] })
    await until(() => gateway.output().includes("\"tenant\":\"team-a\""), "an access log line")
    const lines = gateway.output().split("\n").filter((line) => line.includes("gateway access"))
    assert.isTrue(lines.length > 0)
    const entry = JSON.parse(lines.at(-1)!)
    const fields = entry.annotations ?? entry
    assert.strictEqual(fields.route, "fast")
    assert.strictEqual(fields.provider, "openai")
    assert.strictEqual(fields.status, 200)
    assert.isNumber(fields.costUsd)
    assert.notInclude(gateway.output(), "sk-e2e-team-a")
    assert.notInclude(gateway.output(), "secret prompt 7731")
  })

  it("SIGTERM stops accepting, drains a running stream to its end, then exits 0", async () => {
    const second = await serve(sim.url)
    const client = new OpenAISdk({ apiKey: "sk-e2e-team-a", baseURL: `${second.url}/v1`, maxRetries: 0 })
    const stream = await client.chat.completions.create({ model: "slow", messages: hello, max_tokens: 60, stream: true })
    let text = ""
    let finish: string | null | undefined
    let signalled = false
    let streamEnded = false
    let refusedWhileDraining: Promise<boolean> | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish ??= chunk.choices[0]?.finish_reason
      if (!signalled && text.length > 0) {
        signalled = true
        second.child.kill("SIGTERM")
        // While the stream drains, a new connection is refused.
        refusedWhileDraining = (async () => {
          for (let i = 0; i < 100 && !streamEnded; i++) {
            const refused = await fetch(`${second.url}/health`, { headers: { connection: "close" } }).then(() => false, () => true)
            if (refused) return !streamEnded
            await new Promise((r) => setTimeout(r, 20))
          }
          return false
        })()
      }
    }
    streamEnded = true
    assert.isTrue(signalled)
    assert.strictEqual(finish, "stop", "the stream ran to its end")
    assert.isTrue(await refusedWhileDraining, "new connections were refused while the stream drained")
    assert.strictEqual(await second.exited, 0)
    const refused = await rejection(() => fetch(`${second.url}/health`))
    assert.isTrue(refused instanceof Error)
  })
})
