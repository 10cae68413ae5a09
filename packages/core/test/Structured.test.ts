import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import { CostLedger, Llm, type LlmError, LlmRequest, Structured } from "../src/index.ts"

const structuredError = (error: LlmError.LlmError) => {
  if (error._tag !== "StructuredOutputError") throw new Error(`expected StructuredOutputError, got ${error._tag}`)
  return error
}

const City = Schema.Struct({ name: Schema.String, population: Schema.Int })
const question = { role: "user" as const, content: "The largest city of France?" }
const ask = { messages: [question] }
const paris = JSON.stringify({ name: "Paris", population: 2102650 })

const lastUserText = (request: LlmRequest.LlmRequest) => {
  const last = request.messages[request.messages.length - 1]!
  return LlmRequest.contentText(last.content)
}

describe("Structured.generateObject", () => {
  it.effect("an invalid reply then a valid one: one repair turn quoting the issues, and the decoded value", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "{\"name\": \"Paris\", \"population\": \"lots\"}" }, { text: `Here you go:\n${paris}` }])
      const result = yield* Structured.generateObject({ schema: City, mode: "prompt", ...ask }).pipe(
        Effect.provide(test.layer)
      )
      assert.deepStrictEqual(result.value, { name: "Paris", population: 2102650 })
      assert.strictEqual(result.repairs, 1)
      assert.strictEqual(result.response.text, `Here you go:\n${paris}`)
      const requests = yield* test.requests
      assert.strictEqual(requests.length, 2)
      // prompt mode: the JSON Schema rides in the system prompt
      assert.include(requests[0]!.system ?? "", "\"population\"")
      // the repair turn: the bad reply, then the issues
      const repair = requests[1]!
      assert.deepStrictEqual(repair.messages.slice(0, 2), [
        question,
        { role: "assistant", content: "{\"name\": \"Paris\", \"population\": \"lots\"}" }
      ])
      assert.include(lastUserText(repair), "population: Expected")
    }))

  it.effect("always invalid: StructuredOutputError after exactly `repairs` repair turns, with the issues and the text", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "I'd rather not say." }])
      const error = structuredError(yield* Effect.flip(
        Structured.generateObject({ schema: City, mode: "prompt", repairs: 3, ...ask }).pipe(Effect.provide(test.layer))
      ))
      assert.strictEqual(error._tag, "StructuredOutputError")
      assert.strictEqual(error.issues, "the reply holds no JSON value")
      assert.strictEqual(error.text, "I'd rather not say.")
      assert.strictEqual((yield* test.requests).length, 4)
      const defaults = yield* Llm.makeTest([{ text: "{}" }])
      const again = structuredError(yield* Effect.flip(
        Structured.generateObject({ schema: City, mode: "prompt", ...ask }).pipe(Effect.provide(defaults.layer))
      ))
      assert.include(again.issues, "name: Missing key")
      assert.include(again.issues, "population: Missing key")
      assert.strictEqual((yield* defaults.requests).length, 3)
    }))

  it.effect("repairs: 0 fails on the first bad reply", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "nope" }])
      yield* Effect.flip(Structured.generateObject({ schema: City, mode: "prompt", repairs: 0, ...ask }).pipe(Effect.provide(test.layer)))
      assert.strictEqual((yield* test.requests).length, 1)
    }))

  it.effect("json mode sends the Schema as a native json-schema responseFormat", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "```json\n" + paris + "\n```" }])
      const result = yield* Structured.generateObject({ schema: City, mode: "json", name: "city", ...ask }).pipe(
        Effect.provide(test.layer)
      )
      assert.strictEqual(result.value.name, "Paris")
      const [sent] = yield* test.requests
      assert.strictEqual(sent?.responseFormat?.type, "json-schema")
      assert.deepStrictEqual(sent?.responseFormat?.type === "json-schema" ? sent.responseFormat.name : undefined, "city")
      assert.deepStrictEqual(
        sent?.responseFormat?.type === "json-schema" ? sent.responseFormat.schema["required"] : undefined,
        ["name", "population"]
      )
    }))

  it.effect("tool mode forces a call of one tool and decodes its input; a bad input gets a tool-result repair", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([
        { text: "", toolCalls: [{ id: "t1", name: "city", input: { name: "Paris" } }] },
        { text: "", toolCalls: [{ id: "t2", name: "city", input: { name: "Paris", population: 2102650 } }] }
      ])
      const result = yield* Structured.generateObject({ schema: City, mode: "tool", name: "city", ...ask }).pipe(
        Effect.provide(test.layer)
      )
      assert.deepStrictEqual(result.value, { name: "Paris", population: 2102650 })
      assert.strictEqual(result.repairs, 1)
      const [first, second] = yield* test.requests
      assert.deepStrictEqual(first?.toolChoice, { type: "tool", name: "city" })
      assert.deepStrictEqual(first?.tools?.map((t) => t.name), ["city"])
      const answer = second!.messages[2]!
      assert.strictEqual(answer.role, "tool")
      const part = Array.isArray(answer.content) ? answer.content[0] : undefined
      assert.strictEqual(part?.type === "tool-result" ? part.toolCallId : undefined, "t1")
      assert.strictEqual(part?.type === "tool-result" ? part.isError : undefined, true)
      assert.include(lastUserText(second!), "population: Missing key")
    }))

  it.effect("auto picks json where the catalog says jsonSchema, tool where only tools, prompt elsewhere", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Structured.resolveMode("auto", { model: "gpt-4o" }), "json")
      assert.strictEqual(yield* Structured.resolveMode("auto", { provider: "anthropic", model: "claude-haiku-4-5" }), "tool")
      assert.strictEqual(yield* Structured.resolveMode("auto", { model: "meta.llama3-8b-instruct-v1:0" }), "prompt")
      assert.strictEqual(yield* Structured.resolveMode("auto", { model: "my-local-model" }), "prompt")
      assert.strictEqual(yield* Structured.resolveMode("tool", { model: "gpt-4o" }), "tool")
      const test = yield* Llm.makeTest([{ text: paris }])
      yield* Structured.generateObject({ schema: City, model: "gpt-4o", ...ask }).pipe(Effect.provide(test.layer))
      const [sent] = yield* test.requests
      assert.strictEqual(sent?.responseFormat?.type, "json-schema")
    }))

  it.effect("every attempt, repairs included, is an ordinary call recorded in the CostLedger", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "no" }, { text: "still no" }, { text: paris }])
      const result = yield* Structured.generateObject({ schema: City, mode: "prompt", model: "gpt-4o-mini", ...ask }).pipe(
        Effect.provide(test.layer)
      )
      assert.strictEqual(result.repairs, 2)
      const snapshot = yield* CostLedger.snapshot
      assert.strictEqual(snapshot.total.attempts, 3)
      assert.isAbove(snapshot.total.costUsd, 0)
    }).pipe(Effect.provide(CostLedger.layer)))

  it.effect("bad repairs or mode fail with InvalidRequest naming the field, before any call", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: paris }])
      const repairs = yield* Effect.flip(
        Structured.generateObject({ schema: City, repairs: -1, ...ask }).pipe(Effect.provide(test.layer))
      )
      assert.deepStrictEqual([repairs._tag, repairs._tag === "InvalidRequest" ? repairs.field : ""], ["InvalidRequest", "repairs"])
      const mode = yield* Effect.flip(
        Structured.generateObject({ schema: City, mode: "xml" as never, ...ask }).pipe(Effect.provide(test.layer))
      )
      assert.deepStrictEqual([mode._tag, mode._tag === "InvalidRequest" ? mode.field : ""], ["InvalidRequest", "mode"])
      assert.strictEqual((yield* test.requests).length, 0)
    }))

  it.effect("provider errors pass through untouched", () =>
    Effect.gen(function*() {
      const { LlmError } = yield* Effect.promise(() => import("../src/index.ts"))
      const test = yield* Llm.makeTest([{ error: new LlmError.Overloaded({ provider: "test" }) }])
      const error = yield* Effect.flip(Structured.generateObject({ schema: City, ...ask }).pipe(Effect.provide(test.layer)))
      assert.strictEqual(error._tag, "Overloaded")
    }))
})

describe("Structured.streamObject", () => {
  it.effect("streams partial values as the JSON arrives, then the decoded object", () =>
    Effect.gen(function*() {
      const chunks = ["Sure: {\"na", "me\": \"Par", "is\", \"popu", "lation\": 21", "02650}"]
      const parts = yield* Stream.runCollect(
        Structured.streamObject({ schema: City, mode: "prompt", ...ask })
      ).pipe(Effect.provide(Llm.layerTest([{ text: chunks.join(""), chunks }])))
      const partials = parts.filter((p) => p.type === "partial").map((p) => p.value)
      assert.deepStrictEqual(partials, [
        {},
        { name: "Par" },
        { name: "Paris" },
        { name: "Paris", population: 21 },
        { name: "Paris", population: 2102650 }
      ])
      const last = parts[parts.length - 1]!
      assert.strictEqual(last.type, "object")
      assert.deepStrictEqual(last.type === "object" ? last.value : undefined, { name: "Paris", population: 2102650 })
    }))

  it.effect("a final value that does not decode is repaired in a new stream", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "{\"name\": 1}" }, { text: paris }])
      const parts = yield* Stream.runCollect(
        Structured.streamObject({ schema: City, mode: "json", ...ask })
      ).pipe(Effect.provide(test.layer))
      const last = parts[parts.length - 1]!
      assert.deepStrictEqual(last.type === "object" ? [last.value, last.repairs] : undefined, [
        { name: "Paris", population: 2102650 },
        1
      ])
      assert.deepStrictEqual(parts.filter((p) => p.type === "partial").map((p) => p.type === "partial" ? p.attempt : -1), [0, 1])
      assert.strictEqual((yield* test.requests).length, 2)
    }))

  it.effect("tool mode reassembles the streamed arguments", () =>
    Effect.gen(function*() {
      const parts = yield* Stream.runCollect(
        Structured.streamObject({ schema: City, mode: "tool", name: "city", ...ask })
      ).pipe(Effect.provide(Llm.layerTest([{ text: "", toolCalls: [{ id: "t", name: "city", input: { name: "Lyon", population: 522250 } }] }])))
      const last = parts[parts.length - 1]!
      assert.deepStrictEqual(last.type === "object" ? last.value : undefined, { name: "Lyon", population: 522250 })
    }))

  it.effect("always invalid: StructuredOutputError after the repairs", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([{ text: "nothing" }])
      const error = yield* Effect.flip(Stream.runDrain(
        Structured.streamObject({ schema: City, mode: "prompt", repairs: 1, ...ask })
      ).pipe(Effect.provide(test.layer)))
      assert.strictEqual(error._tag, "StructuredOutputError")
      assert.strictEqual((yield* test.requests).length, 2)
    }))
})

describe("Structured.checkTools", () => {
  const Weather = Schema.Struct({ city: Schema.String, days: Schema.Int })
  const weather = { name: "weather", schema: Weather }
  const withTools = { ...ask, tools: [Structured.tool(weather)] }
  const run = (step: Parameters<typeof Llm.layerTest>[0], request: LlmRequest.LlmRequest = withTools) =>
    Llm.generate(request).pipe(Effect.provide(Llm.layerTest(step).pipe(Structured.checkTools([weather]))))

  it.effect("a valid call comes back with its input decoded", () =>
    Effect.gen(function*() {
      const response = yield* run([{ text: "", toolCalls: [{ id: "c", name: "weather", input: "{\"city\": \"Oslo\", \"days\": 3}" }] }])
      assert.deepStrictEqual(response.toolCalls[0]?.input, { city: "Oslo", days: 3 })
    }))

  it.effect("a call whose input breaks the tool's Schema is a MalformedResponse naming the tool and the issue", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(run([{ text: "", toolCalls: [{ id: "c", name: "weather", input: { city: "Oslo" } }] }]))
      assert.strictEqual(error._tag, "MalformedResponse")
      assert.include(error.message, "weather")
      assert.include(error.message, "days: Missing key")
      assert.isTrue(error.retryable)
    }))

  it.effect("empty or non-JSON arguments, a nameless call and an undeclared tool are MalformedResponse, never lost", () =>
    Effect.gen(function*() {
      const empty = yield* Effect.flip(run([{ text: "", toolCalls: [{ id: "c", name: "weather", input: "" }] }]))
      assert.include(empty.message, "city: Missing key")
      const broken = yield* Effect.flip(run([{ text: "", toolCalls: [{ id: "c", name: "weather", input: "{\"city\": " }] }]))
      assert.include(broken.message, "not JSON")
      // A nameless call is refused by the leaf itself (the provider sanity rules), before checkTools.
      const nameless = yield* Effect.flip(run([{ text: "", toolCalls: [{ id: "c", name: "", input: {} }] }]))
      assert.strictEqual(nameless._tag, "MalformedResponse")
      assert.include(nameless.message, "tool call c has no name")
      const undeclared = yield* Effect.flip(run([{ text: "", toolCalls: [{ id: "c", name: "shell", input: {} }] }]))
      assert.include(undeclared.message, "does not declare")
    }))

  it.effect("streamed arguments are reassembled from their deltas and checked at the finish", () =>
    Effect.gen(function*() {
      const test = yield* Llm.makeTest([
        { text: "", toolCalls: [{ id: "c", name: "weather", input: { city: "Oslo", days: "three" } }] },
        { text: "", toolCalls: [{ id: "d", name: "weather", input: { city: "Oslo", days: 3 } }] }
      ])
      const layer = test.layer.pipe(Structured.checkTools([weather]))
      const error = yield* Effect.flip(Stream.runDrain(Llm.stream(withTools)).pipe(Effect.provide(layer)))
      assert.strictEqual(error._tag, "MalformedResponse")
      assert.include(error.message, "days: Expected")
      const parts = yield* Stream.runCollect(Llm.stream(withTools)).pipe(Effect.provide(layer))
      const finish = parts[parts.length - 1]
      assert.deepStrictEqual(finish?.type === "finish" ? finish.response.toolCalls[0]?.input : undefined, { city: "Oslo", days: 3 })
    }))

  it.effect("calls of tools without a Schema pass unchecked", () =>
    Effect.gen(function*() {
      const request = { ...ask, tools: [{ name: "free", parameters: { type: "object" } }] }
      const response = yield* run([{ text: "", toolCalls: [{ id: "c", name: "free", input: { anything: 1 } }] }], request)
      assert.deepStrictEqual(response.toolCalls[0]?.input, { anything: 1 })
    }))
})

