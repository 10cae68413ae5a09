/**
 * Structured output over the real OpenAI SDK and the simulator, in each mode:
 * a recording `fetch` shows what reached the wire, replayed fixtures play the
 * model's replies (bad then good), and the example program runs as a process.
 */
import { assert, describe, it } from "@effect/vitest"
import { ContextWindow, Llm, Structured } from "@switchboard/core"
import { OpenAI } from "@switchboard/openai"
import { Sim } from "@switchboard/sim"
import { Effect, Layer, Schema, Stream } from "effect"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const City = Schema.Struct({ name: Schema.String, population: Schema.Int })
const ask = { messages: [{ role: "user" as const, content: "The largest city of France?" }], maxTokens: 100 }

/** An OpenAI chat completion whose assistant message says `content`. */
const completion = (content: string) => ({
  id: "chatcmpl-fixture",
  object: "chat.completion",
  created: 1770933883,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 }
})

const fixturesDir = (() => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "switchboard-structured-"))
  Fs.mkdirSync(Path.join(dir, "openai"))
  const write = (name: string, content: string) =>
    Fs.writeFileSync(Path.join(dir, "openai", name), JSON.stringify(completion(content)))
  write("missing-population.json", "{\"name\": \"Paris\"}")
  write("paris.json", "{\"name\": \"Paris\", \"population\": 2102650}")
  write("paris-in-prose.json", "Sure! Here it is:\n```json\n{\"name\": \"Paris\", \"population\": 2102650}\n```\nAnything else?")
  write("refusal.json", "I would rather not answer.")
  return dir
})()

const config = {
  fixturesDir,
  providers: {
    openai: { protocol: "openai" as const, models: [{ id: "gpt-4o-mini", contextWindow: 128_000, maxOutput: 16_384 }] }
  }
}

/** The OpenAI provider layer over the simulator, with every request body it sends. */
const openai = (sim: Sim.SimHandle) => {
  const bodies: Array<Record<string, unknown>> = []
  const fetch: typeof globalThis.fetch = (input, init) => {
    if (typeof init?.body === "string") bodies.push(JSON.parse(init.body) as Record<string, unknown>)
    return globalThis.fetch(input, init)
  }
  const layer = OpenAI.model("gpt-4o-mini").pipe(
    Layer.provide(OpenAI.compatible({ name: "openai", baseURL: `${sim.providerUrl("openai")}/v1`, apiKey: "sk-test", fetch }))
  )
  return { layer, bodies }
}

describe("Structured over the real OpenAI SDK and the simulator", () => {
  it.live("json mode: native response_format json_schema on the wire; a bad reply is repaired once", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ replay: "openai/missing-population.json" }, { replay: "openai/paris.json" }] })
      const { bodies, layer } = openai(sim)
      const result = yield* Structured.generateObject({ schema: City, mode: "json", name: "city", ...ask }).pipe(
        Effect.provide(layer)
      )
      assert.deepStrictEqual(result.value, { name: "Paris", population: 2102650 })
      assert.strictEqual(result.repairs, 1)
      assert.strictEqual(bodies.length, 2)
      const format = bodies[0]!["response_format"] as { type: string; json_schema: { name: string; schema: { required: unknown } } }
      assert.strictEqual(format.type, "json_schema")
      assert.strictEqual(format.json_schema.name, "city")
      assert.deepStrictEqual(format.json_schema.schema.required, ["name", "population"])
      const repair = bodies[1]!["messages"] as ReadonlyArray<{ role: string; content: string }>
      assert.deepStrictEqual(repair.map((m) => m.role), ["user", "assistant", "user"])
      assert.include(repair[2]!.content, "population: Missing key")
    }))

  it.live("tool mode: a forced tool call on the wire, its arguments decoded (the simulator fills them from the schema)", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const { bodies, layer } = openai(sim)
      const result = yield* Structured.generateObject({ schema: City, mode: "tool", name: "city", ...ask }).pipe(
        Effect.provide(layer)
      )
      assert.strictEqual(result.repairs, 0)
      assert.strictEqual(typeof result.value.name, "string")
      assert.isTrue(Number.isInteger(result.value.population))
      assert.deepStrictEqual(bodies[0]!["tool_choice"], { type: "function", function: { name: "city" } })
      const tools = bodies[0]!["tools"] as ReadonlyArray<{ function: { name: string; parameters: { required: unknown } } }>
      assert.deepStrictEqual(tools.map((t) => [t.function.name, t.function.parameters.required]), [["city", ["name", "population"]]])
    }))

  it.live("prompt mode: the schema in the system prompt, JSON pulled out of a prose-wrapped fenced reply", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ replay: "openai/paris-in-prose.json" }] })
      const { bodies, layer } = openai(sim)
      const result = yield* Structured.generateObject({ schema: City, mode: "prompt", ...ask }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(result.value, { name: "Paris", population: 2102650 })
      const messages = bodies[0]!["messages"] as ReadonlyArray<{ role: string; content: string }>
      assert.strictEqual(messages[0]!.role, "system")
      assert.include(messages[0]!.content, "JSON Schema")
      assert.isUndefined(bodies[0]!["response_format"])
      assert.isUndefined(bodies[0]!["tools"])
    }))

  it.live("auto on gpt-4o-mini picks native JSON schema; a model that never complies ends in StructuredOutputError", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      yield* sim.setFaults("openai", { script: [{ replay: "openai/refusal.json", times: 3 }] })
      const { bodies, layer } = openai(sim)
      const error = yield* Effect.flip(
        Structured.generateObject({ schema: City, model: "gpt-4o-mini", repairs: 2, ...ask }).pipe(Effect.provide(layer))
      )
      assert.strictEqual(error._tag, "StructuredOutputError")
      assert.strictEqual(bodies.length, 3)
      assert.strictEqual((bodies[0]!["response_format"] as { type: string }).type, "json_schema")
    }))

  it.live("streamObject in tool mode over the SDK's stream: arguments reassembled from the wire deltas, then decoded", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const { bodies, layer } = openai(sim)
      const parts = yield* Stream.runCollect(
        Structured.streamObject({ schema: City, mode: "tool", name: "city", ...ask })
      ).pipe(Effect.provide(layer))
      assert.strictEqual(bodies[0]!["stream"], true)
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type, "object")
      const value = last.type === "object" ? last.value : undefined
      assert.isTrue(typeof value?.name === "string" && Number.isInteger(value.population))
    }))

  it.live("checkTools over the SDK: a tool call the simulator fills from the JSON schema decodes with the tool's Schema", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const { layer } = openai(sim)
      const weather = { name: "weather", schema: Schema.Struct({ city: Schema.String, days: Schema.Int }) }
      const response = yield* Llm.generate({ ...ask, tools: [Structured.tool(weather)] }).pipe(
        Effect.provide(layer.pipe(Structured.checkTools([weather])))
      )
      const input = response.toolCalls[0]?.input as { city: unknown; days: unknown } | undefined
      assert.strictEqual(typeof input?.city, "string")
      assert.strictEqual(input?.days, 42)
    }))

  it.live("ContextWindow.layer fits the request before the SDK sends it", () =>
    Effect.gen(function*() {
      const sim = yield* Sim.start(config)
      const { bodies, layer } = openai(sim)
      const long = Array.from({ length: 30 }, (_, i) => ({ role: i % 2 === 0 ? "user" as const : "assistant" as const, content: `turn ${i} `.repeat(20) }))
      yield* Llm.generate({ messages: long, model: "gpt-4o-mini" }).pipe(
        Effect.provide(layer.pipe(ContextWindow.layer({ strategy: "start", maxInputTokens: 300 })))
      )
      const sent = bodies[0]!["messages"] as ReadonlyArray<{ content: string }>
      assert.isBelow(sent.length, 30)
      assert.strictEqual(sent[sent.length - 1]!.content, long[29]!.content)
    }))
})

describe("examples/structured-output.ts", () => {
  it("runs and prints the decoded ticket", () => {
    const script = fileURLToPath(new URL("../examples/structured-output.ts", import.meta.url))
    const result = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 60_000 })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.match(result.stdout, /ticket: \{"title":"[^"]+","priority":"(low|medium|high)","estimateHours":\d+\}/)
    assert.include(result.stdout, "prompt: triage@1, repairs: 0")
  }, 60_000)
})
