/**
 * Typed objects out of a model: ask for a value of an `effect/Schema`, get
 * the decoded value, or a `StructuredOutputError` saying what was wrong.
 *
 * {@link generateObject} asks in one of three ways:
 *
 * - `"json"`: the provider's native JSON-schema output (`responseFormat`),
 * - `"tool"`: a forced call of one tool whose parameters are the schema,
 * - `"prompt"`: the JSON Schema in the system prompt, the JSON pulled out of
 *   the reply with `Extract.json` (fenced, bare or wrapped in prose);
 *
 * `"auto"` (the default) reads the catalog (`Pricing`) for the request's
 * model: native JSON schema where it has `capabilities.jsonSchema`, forced
 * tool use where it has `tools`, prompt mode elsewhere (and for models the
 * catalog does not know). A reply that does not decode is answered with a
 * repair turn quoting the issues, up to `repairs` times (default 2). Each
 * attempt is an ordinary call through the `LLM` in context, so retries,
 * budgets and the `CostLedger` see every one.
 *
 * {@link streamObject} streams the value as it forms, then the decoded
 * value. {@link checkTools} checks the tool calls of any request against
 * the tools' Schemas.
 *
 * @since 0.1.0
 */
import { Effect, Option, Result, Schema, SchemaIssue, Stream } from "effect"
import { Tool as AiTool } from "effect/ai"
import { generate as llmGenerate, LLM, stream as llmStream, transform } from "../LLM.ts"
import { InvalidRequest, type LlmError, MalformedResponse, StructuredOutputError } from "../LlmError.ts"
import type { LlmRequest, Message, Part, Tool, ToolCallPart } from "../LlmRequest.ts"
import type { LlmResponse, StreamPart } from "../LlmResponse.ts"
import { Pricing } from "../money/Pricing.ts"
import * as Extract from "./Extract.ts"

/**
 * How {@link generateObject} asks for the object.
 *
 * @since 0.1.0
 * @category models
 */
export type Mode = "auto" | "json" | "tool" | "prompt"

const modes: ReadonlyArray<string> = ["auto", "json", "tool", "prompt"]

/**
 * A schema an object is decoded with (no decoding services).
 *
 * @since 0.1.0
 * @category models
 */
export type ObjectSchema = Schema.Top & { readonly DecodingServices: never }

/**
 * What {@link generateObject} takes: a request plus the schema and options.
 *
 * @since 0.1.0
 * @category models
 */
export type Options<S extends ObjectSchema> = LlmRequest & {
  readonly schema: S
  /** Repair turns after a reply that does not decode (default 2). */
  readonly repairs?: number | undefined
  readonly mode?: Mode | undefined
  /** The name of the object (json-schema name, tool name); default `"output"`. */
  readonly name?: string | undefined
  readonly description?: string | undefined
  /** The provider whose catalog entry `"auto"` reads (default: any with the model's name). */
  readonly provider?: string | undefined
}

/**
 * The decoded value, the response it came from, and how many repair turns it
 * took.
 *
 * @since 0.1.0
 * @category models
 */
export interface Generated<A> {
  readonly value: A
  readonly response: LlmResponse
  readonly repairs: number
}

/**
 * The JSON Schema of an effect Schema, as sent to providers (the same
 * document Effect's own `LanguageModel.generateObject` sends).
 *
 * @since 0.1.0
 * @category converting
 */
export const jsonSchema = (schema: Schema.Top): Record<string, unknown> =>
  AiTool.getJsonSchemaFromSchema(schema) as Record<string, unknown>

/**
 * The mode `"auto"` resolves to for a model: `"json"` when the catalog says
 * it supports JSON-schema output, `"tool"` when it supports tools, else
 * `"prompt"` (also for a model the catalog does not know, or no model).
 *
 * @since 0.1.0
 * @category getters
 */
export const resolveMode = (
  mode: Mode,
  target: { readonly provider?: string | undefined; readonly model?: string | undefined }
): Effect.Effect<Exclude<Mode, "auto">> =>
  mode !== "auto"
    ? Effect.succeed(mode)
    : Effect.map(Effect.service(Pricing), (pricing) => {
      if (target.model === undefined) return "prompt"
      const entry = pricing.lookup(target.provider ?? "", target.model)
      return entry?.capabilities.jsonSchema === true ? "json" : entry?.capabilities.tools === true ? "tool" : "prompt"
    })

const formatter = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Decodes a JSON value with `schema` (through its JSON codec); the failure is
 * every issue as `path: message` lines.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeValue = <S extends ObjectSchema>(schema: S, value: unknown): Result.Result<S["Type"], string> => {
  const decoded = Schema.decodeUnknownResult(Schema.toCodecJson(schema) as unknown as ObjectSchema)(value, {
    errors: "all"
  })
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success as S["Type"])
  const lines = formatter(decoded.failure.issue).issues.map((issue) => {
    const at = (issue.path ?? []).map((key) => String(typeof key === "object" ? key.key : key)).join(".")
    return at.length > 0 ? `${at}: ${issue.message}` : issue.message
  })
  return Result.fail(lines.join("\n"))
}

interface Shape {
  readonly mode: Exclude<Mode, "auto">
  readonly name: string
  readonly schema: Record<string, unknown>
}

const instruction = (shape: Shape): string =>
  `Answer with one JSON value that matches this JSON Schema, and nothing else:\n${JSON.stringify(shape.schema)}`

const shaped = (request: LlmRequest, shape: Shape, description: string | undefined): LlmRequest => {
  switch (shape.mode) {
    case "json":
      return { ...request, responseFormat: { type: "json-schema", name: shape.name, schema: shape.schema } }
    case "tool": {
      const tool: Tool = {
        name: shape.name,
        description: description ?? "Return the answer as this tool's arguments.",
        parameters: shape.schema
      }
      return {
        ...request,
        tools: [...(request.tools ?? []).filter((t) => t.name !== shape.name), tool],
        toolChoice: { type: "tool", name: shape.name }
      }
    }
    case "prompt":
      return {
        ...request,
        system: request.system === undefined || request.system.length === 0
          ? instruction(shape)
          : `${request.system}\n\n${instruction(shape)}`
      }
  }
}

/** What one reply said: the JSON value found (or why none), and the call that carried it. */
interface Reading {
  readonly value: Option.Option<unknown>
  readonly missing: string
  readonly call: ToolCallPart | undefined
}

const inputOf = (input: unknown): Option.Option<unknown> =>
  typeof input === "string" ? (input.trim().length === 0 ? Option.some({}) : Extract.json(input)) : Option.some(input)

const read = (shape: Shape, text: string, toolCalls: ReadonlyArray<ToolCallPart>): Reading => {
  if (shape.mode === "tool") {
    const call = toolCalls.find((c) => c.name === shape.name)
    if (call === undefined) return { value: Option.none(), missing: `the reply did not call the tool ${shape.name}`, call }
    return { value: inputOf(call.input), missing: `the arguments of ${shape.name} are not JSON`, call }
  }
  return { value: Extract.json(text), missing: "the reply holds no JSON value", call: undefined }
}

/** The conversation continued with the bad reply and a turn asking for a fix. */
const repairTurn = (request: LlmRequest, shape: Shape, text: string, reading: Reading, issues: string): LlmRequest => {
  const messages: Array<Message> = [...request.messages]
  if (shape.mode === "tool" && reading.call !== undefined) {
    const content: Array<Part> = []
    if (text.length > 0) content.push({ type: "text", text })
    content.push(reading.call)
    messages.push({ role: "assistant", content })
    messages.push({
      role: "tool",
      content: [{ type: "tool-result", toolCallId: reading.call.id, output: `Invalid arguments:\n${issues}`, isError: true }]
    })
    messages.push({
      role: "user",
      content: `The arguments of ${shape.name} do not match its schema:\n${issues}\nCall ${shape.name} again with corrected arguments.`
    })
  } else {
    messages.push({ role: "assistant", content: text.length > 0 ? text : "(no text)" })
    messages.push({
      role: "user",
      content: shape.mode === "tool"
        ? `You must call the tool ${shape.name} with arguments matching its schema:\n${issues}`
        : `Your reply does not match the required JSON Schema:\n${issues}\nReply again with only the corrected JSON.`
    })
  }
  return { ...request, messages }
}

const prepare = <S extends ObjectSchema>(options: Options<S>) =>
  Effect.gen(function*() {
    const { description, mode, name, provider, repairs, schema, ...request } = options
    const rounds = repairs ?? 2
    const origin = { provider: provider ?? "switchboard", ...(request.model !== undefined ? { model: request.model } : {}) }
    if (!Number.isInteger(rounds) || rounds < 0) {
      return yield* new InvalidRequest({
        ...origin,
        field: "repairs",
        message: `repairs: must be a non-negative integer, got ${rounds}`
      })
    }
    if (mode !== undefined && !modes.includes(mode)) {
      return yield* new InvalidRequest({
        ...origin,
        field: "mode",
        message: `mode: must be "auto", "json", "tool" or "prompt", got ${JSON.stringify(mode)}`
      })
    }
    const resolved = yield* resolveMode(mode ?? "auto", { provider, model: request.model })
    const objectName = name ?? "output"
    const shape: Shape = { mode: resolved, name: objectName, schema: jsonSchema(schema) }
    return { shape, rounds, request: request as LlmRequest, description }
  })

/**
 * Asks the `LLM` in context for a value of `schema` and decodes it, feeding
 * decode issues back as repair turns up to `repairs` times (default 2); then
 * fails with `StructuredOutputError { issues, text }` (the last reply's).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Structured } from "@switchboard/core"
 *
 * const City = Schema.Struct({ name: Schema.String, population: Schema.Finite })
 * const program = Effect.map(
 *   Structured.generateObject({ schema: City, messages: [{ role: "user", content: "The largest city of France?" }] }),
 *   ({ value }) => value.population
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const generateObject: <S extends ObjectSchema>(
  options: Options<S>
) => Effect.Effect<Generated<S["Type"]>, LlmError | StructuredOutputError, LLM> = Effect.fn("Structured.generateObject")(
  function*<S extends ObjectSchema>(options: Options<S>) {
    const { description, request: base, rounds, shape } = yield* prepare(options)
    yield* Effect.annotateCurrentSpan({ "llm.structured.mode": shape.mode })
    let request = shaped(base, shape, description)
    for (let attempt = 0;; attempt++) {
      const response = yield* llmGenerate(request)
      const reading = read(shape, response.text, response.toolCalls)
      const decoded = Option.isSome(reading.value)
        ? decodeValue(options.schema, reading.value.value)
        : Result.fail(reading.missing)
      if (Result.isSuccess(decoded)) return { value: decoded.success, response, repairs: attempt }
      if (attempt >= rounds) {
        return yield* new StructuredOutputError({
          provider: response.provider,
          model: response.model,
          issues: decoded.failure,
          text: reading.call !== undefined ? JSON.stringify(reading.call.input) : response.text
        })
      }
      request = repairTurn(request, shape, response.text, reading, decoded.failure)
    }
  }
)

/**
 * A part of {@link streamObject}: the value as parsed so far (`partial`, not
 * yet checked), then the decoded `object` with its response.
 *
 * @since 0.1.0
 * @category models
 */
export type ObjectPart<A> =
  | { readonly type: "partial"; readonly value: unknown; readonly attempt: number }
  | { readonly type: "object"; readonly value: A; readonly response: LlmResponse; readonly repairs: number }

/**
 * Streams the object as it forms: a `partial` part each time the JSON read
 * so far (parsed incrementally with `Extract.partialJson`) changes, then one
 * `object` part with the decoded value. A final value that does not decode
 * starts a repair turn (a new stream, whose partials carry the next
 * `attempt`), up to `repairs` (default 2); then `StructuredOutputError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const streamObject = <S extends ObjectSchema>(
  options: Options<S>
): Stream.Stream<ObjectPart<S["Type"]>, LlmError | StructuredOutputError, LLM> =>
  Stream.unwrap(Effect.map(prepare(options), ({ description, request: base, rounds, shape }) => {
    const attemptStream = (
      request: LlmRequest,
      attempt: number
    ): Stream.Stream<ObjectPart<S["Type"]>, LlmError | StructuredOutputError, LLM> =>
      Stream.suspend(() => {
        let text = ""
        const calls = new Map<string, { name: string | undefined; input: string }>()
        let last = ""
        const partial = (source: string): Stream.Stream<ObjectPart<S["Type"]>> => {
          const value = Extract.partialJson(source)
          if (Option.isNone(value)) return Stream.empty
          const key = JSON.stringify(value.value)
          if (key === last) return Stream.empty
          last = key
          return Stream.make({ type: "partial" as const, value: value.value, attempt })
        }
        const onPart = (part: StreamPart): Stream.Stream<ObjectPart<S["Type"]>, LlmError | StructuredOutputError, LLM> => {
          switch (part.type) {
            case "text-delta":
              text += part.text
              return shape.mode === "tool" ? Stream.empty : partial(text)
            case "reasoning-delta":
              return Stream.empty
            case "tool-call-delta": {
              const call = calls.get(part.id) ?? { name: undefined, input: "" }
              call.name ??= part.name
              call.input += part.inputDelta
              calls.set(part.id, call)
              return shape.mode === "tool" && call.name === shape.name ? partial(call.input) : Stream.empty
            }
            case "finish": {
              const response = part.response
              const toolCalls = response.toolCalls.length > 0
                ? response.toolCalls
                : [...calls].map(([id, call]): ToolCallPart => ({
                  type: "tool-call",
                  id,
                  name: call.name ?? "",
                  input: call.input
                }))
              const replyText = response.text.length > 0 ? response.text : text
              const reading = read(shape, replyText, toolCalls)
              const decoded = Option.isSome(reading.value)
                ? decodeValue(options.schema, reading.value.value)
                : Result.fail(reading.missing)
              if (Result.isSuccess(decoded)) {
                return Stream.make({ type: "object" as const, value: decoded.success, response, repairs: attempt })
              }
              if (attempt >= rounds) {
                return Stream.fail(
                  new StructuredOutputError({
                    provider: response.provider,
                    model: response.model,
                    issues: decoded.failure,
                    text: reading.call !== undefined ? JSON.stringify(reading.call.input) : replyText
                  })
                )
              }
              return attemptStream(repairTurn(request, shape, replyText, reading, decoded.failure), attempt + 1)
            }
          }
        }
        return Stream.flatMap(llmStream(request), onPart)
      })
    return attemptStream(shaped(base, shape, description), 0)
  }))

// ---------------------------------------------------------------------------
// Tool calls checked
// ---------------------------------------------------------------------------

/**
 * A tool with the Schema of its input.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolSpec<S extends ObjectSchema = ObjectSchema> {
  readonly name: string
  readonly description?: string | undefined
  readonly schema: S
}

/**
 * The request `Tool` of a {@link ToolSpec} (its parameters are the JSON
 * Schema of its Schema).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tool = <S extends ObjectSchema>(spec: ToolSpec<S>): Tool => ({
  name: spec.name,
  ...(spec.description !== undefined ? { description: spec.description } : {}),
  parameters: jsonSchema(spec.schema)
})

const checkCall = (
  specs: ReadonlyMap<string, ToolSpec>,
  request: LlmRequest,
  origin: { readonly provider: string; readonly model: string },
  call: ToolCallPart
): Result.Result<ToolCallPart, MalformedResponse> => {
  const malformed = (detail: string) => Result.fail(new MalformedResponse({ ...origin, detail }))
  if (typeof call.name !== "string" || call.name.length === 0) {
    return malformed(`tool call ${JSON.stringify(call.id)} names no tool`)
  }
  if (request.tools !== undefined && !request.tools.some((t) => t.name === call.name)) {
    return malformed(`tool call ${call.id} calls ${JSON.stringify(call.name)}, which the request does not declare`)
  }
  const spec = specs.get(call.name)
  if (spec === undefined) return Result.succeed(call)
  const input = inputOf(call.input)
  if (Option.isNone(input)) return malformed(`tool call ${call.id} of ${call.name}: the arguments are not JSON`)
  const decoded = decodeValue(spec.schema, input.value)
  if (Result.isFailure(decoded)) {
    return malformed(`tool call ${call.id} of ${call.name}: the arguments do not match its schema: ${decoded.failure}`)
  }
  return Result.succeed({ ...call, input: decoded.success })
}

const checkResponse = (
  specs: ReadonlyMap<string, ToolSpec>,
  request: LlmRequest,
  response: LlmResponse,
  streamed?: ReadonlyMap<string, { readonly name: string | undefined; readonly input: string }>
): Result.Result<LlmResponse, MalformedResponse> => {
  const origin = { provider: response.provider, model: response.model }
  // A stream's calls are checked as reassembled from their deltas (what came over the wire), also
  // those the final response lacks.
  const calls: Array<ToolCallPart> = response.toolCalls.map((call) => {
    const deltas = streamed?.get(call.id)
    return deltas === undefined ? call : { ...call, name: deltas.name ?? call.name, input: deltas.input }
  })
  if (streamed !== undefined) {
    for (const [id, call] of streamed) {
      if (!calls.some((c) => c.id === id)) calls.push({ type: "tool-call", id, name: call.name ?? "", input: call.input })
    }
  }
  if (calls.length === 0) return Result.succeed(response)
  const checked: Array<ToolCallPart> = []
  for (const call of calls) {
    const result = checkCall(specs, request, origin, call)
    if (Result.isFailure(result)) return Result.fail(result.failure)
    checked.push(result.success)
  }
  const byId = new Map(checked.map((call) => [call.id, call]))
  return Result.succeed({
    ...response,
    toolCalls: checked,
    content: response.content.map((part) => part.type === "tool-call" ? byId.get(part.id) ?? part : part)
  })
}

/**
 * Wraps a service so every tool call a model makes is checked: a call that
 * names no tool or a tool the request did not declare, or whose arguments
 * (reassembled from the stream's deltas) are not JSON or do not decode with
 * the tool's Schema, fails the call with `MalformedResponse` naming the tool
 * and the issues — it is never passed on or dropped silently. Valid calls
 * come back with their `input` decoded.
 *
 * `MalformedResponse` rather than `InvalidRequest`: the request was right and
 * the model's answer broke it, so the failure is retryable and may fall back
 * to another model (InvalidRequest blames the caller and stops both).
 *
 * @since 0.1.0
 * @category combinators
 */
export const wrapCheckTools = (tools: ReadonlyArray<ToolSpec>) => (llm: LLM["Service"]): LLM["Service"] => {
  const specs = new Map(tools.map((spec) => [spec.name, spec]))
  return LLM.of({
    generate: (request) =>
      Effect.flatMap(llm.generate(request), (response) => Effect.fromResult(checkResponse(specs, request, response))),
    stream: (request) =>
      Stream.suspend(() => {
        const calls = new Map<string, { name: string | undefined; input: string }>()
        return Stream.mapEffect(llm.stream(request), (part): Effect.Effect<StreamPart, LlmError> => {
          if (part.type === "tool-call-delta") {
            const call = calls.get(part.id) ?? { name: undefined, input: "" }
            call.name ??= part.name
            call.input += part.inputDelta
            calls.set(part.id, call)
            return Effect.succeed(part)
          }
          if (part.type !== "finish") return Effect.succeed(part)
          return Effect.map(
            Effect.fromResult(checkResponse(specs, request, part.response, calls)),
            (response): StreamPart => ({ type: "finish", response })
          )
        })
      })
  })
}

/**
 * {@link wrapCheckTools} as a layer combinator.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Llm, Structured } from "@switchboard/core"
 *
 * const weather = { name: "weather", schema: Schema.Struct({ city: Schema.String }) }
 * const checked = Llm.layerTest([{ text: "" }]).pipe(Structured.checkTools([weather]))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const checkTools = (tools: ReadonlyArray<ToolSpec>) => transform(wrapCheckTools(tools))
